//! CSV input, streamed: the file is cut into blocks of whole records (never inside
//! a quoted field), each block decoded on its own (UTF-8, or GBK/GB18030 as Chinese
//! Excel writes it) and typed in parallel, with the line each block starts on so
//! every row keeps the number a user sees in an editor. Before the first block the
//! delimiter (`,` `;` tab `|`) and the header row (a title row above it is skipped)
//! are found by which reading names the most of the table's columns.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use super::cells::{Layout, TextColumns};
use super::validate::{FileRef, Problem};
use super::Chunk;
use crate::model::TableDef;
use crate::{Error, Result};

/// Bytes per block: a few hundred thousand rows of scores.
const BLOCK_BYTES: usize = 8 << 20;
/// Rows above the header a title may take.
const HEADER_SEARCH_ROWS: usize = 10;
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// What the start of a CSV file says about the rest.
pub struct CsvStart {
    pub headers: Vec<String>,
    pub header_line: usize,
    pub delimiter: u8,
}

/// An open CSV file: its header has been read; [`CsvBlocks`] yields the rest.
pub struct CsvBlocks {
    name: String,
    file: std::fs::File,
    /// Bytes read but not yet handed out (the tail after the last whole record).
    pending: Vec<u8>,
    /// The line `pending` starts on.
    line: usize,
    eof: bool,
}

/// One block of whole records and the line it starts on.
pub struct Block {
    pub bytes: Vec<u8>,
    pub first_line: usize,
}

/// Opens `path`, finds its delimiter and header, and positions after the header.
pub fn open(path: &Path, name: &str, def: &TableDef) -> Result<(CsvStart, CsvBlocks)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut first = Vec::with_capacity(BLOCK_BYTES);
    (&mut file)
        .take(BLOCK_BYTES as u64)
        .read_to_end(&mut first)
        .map_err(|e| Error::io(path, e))?;
    if first.is_empty() {
        return Err(Error::input(
            name,
            "the file is empty: no header row and no data",
        ));
    }
    let start = first.strip_prefix(b"\xEF\xBB\xBF").map_or(0, |_| 3);
    let first = first.split_off(start);
    // The header is searched in whole lines only.
    let head_end = if first.len() < BLOCK_BYTES {
        first.len()
    } else {
        memchr::memrchr(b'\n', &first).map_or(first.len(), |i| i + 1)
    };
    let head = decode(name, &first[..head_end])?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let preferred = if extension == "tsv" { b'\t' } else { b',' };
    let mut best: Option<(usize, u8, usize, Vec<String>, usize)> = None;
    for delimiter in
        std::iter::once(preferred).chain(DELIMITERS.into_iter().filter(|d| *d != preferred))
    {
        let mut reader = reader(head.as_bytes(), delimiter);
        let mut record = csv::StringRecord::new();
        for _ in 0..HEADER_SEARCH_ROWS {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                _ => break,
            }
            let cells: Vec<String> = record.iter().map(str::to_string).collect();
            let known = Layout::known_columns(def, &cells);
            let line = record
                .position()
                .map_or(1, |p| start_line(head.as_bytes(), p));
            let end = reader.position().byte() as usize;
            if known > best.as_ref().map_or(0, |b| b.0) {
                best = Some((known, delimiter, line, cells, end));
            }
            if known > 0 {
                // The first row naming columns is the header, for this delimiter.
                break;
            }
        }
    }
    let (delimiter, header_line, headers, header_end) = match best {
        Some((_, d, line, cells, end)) => (d, line, cells, end),
        None => {
            // Nothing names a column: the first row is the header, as written.
            let mut reader = reader(head.as_bytes(), preferred);
            let mut record = csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Error::input(
                        name,
                        "the file is empty: no header row and no data",
                    ))
                }
                Err(e) => {
                    return Err(Error::input(
                        name,
                        format!("cannot read the header row: {e}"),
                    ))
                }
            }
            let line = record
                .position()
                .map_or(1, |p| start_line(head.as_bytes(), p));
            let end = reader.position().byte() as usize;
            (
                preferred,
                line,
                record.iter().map(str::to_string).collect(),
                end,
            )
        }
    };
    // `header_end` counts bytes of the decoded head; map it back to the file's bytes
    // by the lines before it (a decoded GBK line is longer than its bytes).
    // After a `\r\n` header the reader stops before the `\n`.
    let header_end = header_end + usize::from(head.as_bytes().get(header_end) == Some(&b'\n'));
    let lines_before = head.as_bytes()[..header_end]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let mut offset = 0;
    for _ in 0..lines_before {
        offset += memchr::memchr(b'\n', &first[offset..]).map_or(first.len() - offset, |i| i + 1);
    }
    let pending = if header_end >= head.len() && head_end == first.len() {
        Vec::new()
    } else {
        first[offset.min(first.len())..].to_vec()
    };
    let eof = (first.len() + start) < BLOCK_BYTES;
    Ok((
        CsvStart {
            headers,
            header_line,
            delimiter,
        },
        CsvBlocks {
            name: name.to_string(),
            file,
            pending,
            line: 1 + lines_before,
            eof,
        },
    ))
}

fn reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes)
}

impl Iterator for CsvBlocks {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Result<Block>> {
        loop {
            if !self.eof && self.pending.len() < BLOCK_BYTES {
                let mut more = Vec::with_capacity(BLOCK_BYTES);
                match (&mut self.file)
                    .take(BLOCK_BYTES as u64)
                    .read_to_end(&mut more)
                {
                    Ok(0) => self.eof = true,
                    Ok(_) => {
                        self.pending.extend_from_slice(&more);
                        continue;
                    }
                    Err(e) => return Some(Err(Error::io(&self.name, e))),
                }
            }
            if self.pending.is_empty() {
                return None;
            }
            let cut = if self.eof {
                self.pending.len()
            } else {
                match self.last_record_end() {
                    Some(cut) => cut,
                    None if self.pending.len() < 8 * BLOCK_BYTES => {
                        // One record longer than a block: read on.
                        let mut more = Vec::with_capacity(BLOCK_BYTES);
                        match (&mut self.file).take(BLOCK_BYTES as u64).read_to_end(&mut more) {
                            Ok(0) => self.eof = true,
                            Ok(_) => self.pending.extend_from_slice(&more),
                            Err(e) => return Some(Err(Error::io(&self.name, e))),
                        }
                        continue;
                    }
                    None => {
                        return Some(Err(Error::input(
                            &self.name,
                            format!(
                                "line {}: a quoted field runs on for more than {} MB; is a closing quote missing?",
                                self.line,
                                (8 * BLOCK_BYTES) >> 20
                            ),
                        )))
                    }
                }
            };
            let rest = self.pending.split_off(cut);
            let bytes = std::mem::replace(&mut self.pending, rest);
            let first_line = self.line;
            self.line += memchr::memchr_iter(b'\n', &bytes).count();
            return Some(Ok(Block { bytes, first_line }));
        }
    }
}

impl CsvBlocks {
    /// The end of the last whole record in `pending`: after its last newline outside
    /// quotes.
    fn last_record_end(&self) -> Option<usize> {
        // `pending` starts at a record boundary, outside quotes.
        let mut in_quotes = false;
        let mut cut = None;
        for i in memchr::memchr2_iter(b'"', b'\n', &self.pending) {
            if self.pending[i] == b'"' {
                in_quotes = !in_quotes;
            } else if !in_quotes {
                cut = Some(i + 1);
            }
        }
        cut
    }
}

/// Types one block's records into `columns`; a record that is not valid CSV ends the
/// ingest with its line.
pub fn type_block(
    block: &Block,
    delimiter: u8,
    name: &str,
    def: &'static TableDef,
    layout: &Layout,
    file: &FileRef,
    problems: &mut Vec<Problem>,
) -> Result<Chunk> {
    let text = decode(name, &block.bytes)?;
    let mut reader = reader(text.as_bytes(), delimiter);
    let rows_guess = block.bytes.len() / 24 + 1;
    let mut columns = TextColumns::new(def, layout, file, rows_guess);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| p.line() as usize + block.first_line - 1);
                return Err(Error::input(
                    name,
                    format!("line {line}: not valid CSV: {e}"),
                ));
            }
        }
        let line = record
            .position()
            .map_or(0, |p| start_line(text.as_bytes(), p) + block.first_line - 1);
        if record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        // Fields split at ASCII delimiters of valid UTF-8 text are valid UTF-8.
        let cell = |i: usize| std::str::from_utf8(&record[i]).unwrap_or("");
        columns.push(line, record.len(), cell, problems);
    }
    columns.finish()
}

/// The text of the cells `wanted` names, (line, field), as `block` holds them (trimmed).
pub fn cells_at(
    block: &Block,
    delimiter: u8,
    name: &str,
    wanted: &std::collections::HashSet<(usize, usize)>,
) -> Result<std::collections::HashMap<(usize, usize), String>> {
    let text = decode(name, &block.bytes)?;
    let mut reader = reader(text.as_bytes(), delimiter);
    let mut record = csv::ByteRecord::new();
    let mut found = std::collections::HashMap::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        let line = record
            .position()
            .map_or(0, |p| start_line(text.as_bytes(), p) + block.first_line - 1);
        for (field, bytes) in record.iter().enumerate() {
            if wanted.contains(&(line, field)) {
                let cell = String::from_utf8_lossy(bytes).trim().to_string();
                found.insert((line, field), cell);
            }
        }
    }
    Ok(found)
}

/// The line a record starts on. The reader places a record where it began reading
/// it, before the blank lines (and the `\n` of a `\r\n`) it skipped on the way.
fn start_line(text: &[u8], position: &csv::Position) -> usize {
    let mut line = position.line() as usize;
    for byte in text.iter().skip(position.byte() as usize) {
        match byte {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
}

/// UTF-8 if the bytes are valid UTF-8, otherwise GB18030, the superset of GBK that
/// Excel writes on Chinese Windows.
fn decode<'a>(name: &str, bytes: &'a [u8]) -> Result<Cow<'a, str>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(Error::input(
            name,
            "the file is neither UTF-8 nor GBK/GB18030 text; save it as CSV UTF-8",
        ));
    }
    Ok(text)
}

//! CSV input: UTF-8 (with or without BOM) or GBK/GB18030 as exported by Chinese
//! Excel, told apart without flags by whether the bytes are valid UTF-8.

use std::borrow::Cow;

use super::raw::{RawRow, RawTable};
use crate::{Error, Result};

pub fn read(path: &str, bytes: &[u8]) -> Result<RawTable> {
    let text = decode(path, bytes)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let headers = match records.next() {
        None => {
            return Err(Error::input(
                path,
                "the file is empty: no header row and no data",
            ))
        }
        Some(header) => header
            .map_err(|e| Error::input(path, format!("cannot read the header row: {e}")))?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>(),
    };
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::input(path, format!("line {line}: not valid CSV: {e}"))
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(RawRow {
            line,
            cells: record.iter().map(str::to_string).collect(),
        });
    }
    Ok(RawTable {
        path: path.to_string(),
        headers,
        rows,
    })
}

/// UTF-8 if the bytes are valid UTF-8 (a BOM is dropped), otherwise GB18030, the
/// superset of GBK that Excel writes on Chinese Windows.
fn decode<'a>(path: &str, bytes: &'a [u8]) -> Result<Cow<'a, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(Error::input(
            path,
            "the file is neither UTF-8 nor GBK/GB18030 text; save it as CSV UTF-8",
        ));
    }
    Ok(text)
}

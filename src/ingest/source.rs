//! The files one ingest reads: named one by one or as directories (a hive-partitioned
//! Parquet export, one CSV per year), each recognised by its first bytes (a workbook
//! saved with a `.csv` name is still a workbook), opened at its header, and cut into
//! pieces that are typed and checked on every core.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::cells::{HeaderCheck, Layout, TextColumns};
use super::csv::{self as csv_input, Block};
use super::validate::{FileRef, Problem};
use super::{parquet, xlsx, Chunk};
use crate::model::TableDef;
use crate::{Error, Result};

/// Data rows per piece of a sheet.
const SHEET_PIECE_ROWS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Parquet,
}

/// One input file.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// As the user named it, for messages.
    pub name: String,
    pub format: Format,
    /// The year a `year=YYYY` directory gives.
    pub year: Option<i32>,
    pub size: u64,
}

/// The files `paths` name, directories walked in name order.
pub fn resolve(paths: &[PathBuf], sheet: Option<&str>) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            if files.is_empty() {
                return Err(Error::input(
                    path.display(),
                    "the directory holds no CSV, XLSX or Parquet files",
                ));
            }
            for file in files {
                let year = hive_year(file.strip_prefix(path).unwrap_or(&file));
                inputs.push(input(&file, year)?);
            }
        } else {
            inputs.push(input(path, None)?);
        }
    }
    if sheet.is_some() && !inputs.iter().any(|i| i.format == Format::Xlsx) {
        return Err(Error::usage("--sheet applies only to XLSX files"));
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Hidden files, _SUCCESS markers, _delta_log and the like are not data.
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_data_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_data_file(path: &Path) -> bool {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        extension.as_str(),
        "csv" | "txt" | "tsv" | "xlsx" | "xlsm" | "parquet" | "pq"
    )
}

/// `year=2024` anywhere in the path below the directory named.
fn hive_year(relative: &Path) -> Option<i32> {
    relative.components().find_map(|c| {
        c.as_os_str()
            .to_str()
            .and_then(|s| s.strip_prefix("year="))
            .and_then(|y| y.parse().ok())
    })
}

fn input(path: &Path, year: Option<i32>) -> Result<Input> {
    let name = path.display().to_string();
    let mut magic = [0u8; 4];
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size == 0 {
        return Err(Error::input(
            &name,
            "the file is empty: no header row and no data",
        ));
    }
    {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let _ = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = if magic.starts_with(b"PK") {
        Format::Xlsx
    } else if &magic == b"PAR1" {
        Format::Parquet
    } else {
        match extension.as_str() {
            "xlsx" | "xlsm" => Format::Xlsx,
            "parquet" | "pq" => Format::Parquet,
            _ => Format::Csv,
        }
    };
    Ok(Input {
        path: path.to_path_buf(),
        name,
        format,
        year,
        size,
    })
}

/// What every piece of one opened file shares.
#[derive(Debug)]
pub struct Meta {
    pub file: FileRef,
    pub layout: Layout,
    pub year: Option<i32>,
    pub delimiter: u8,
    /// The file's bytes, and its rows when known up front (sheets, Parquet).
    pub size: u64,
    pub rows: usize,
}

/// A part of one file to type and check.
pub enum Piece {
    Csv(Block),
    Rows(Vec<(usize, Vec<String>)>),
    Batch {
        batch: RecordBatch,
        first_row: usize,
    },
}

impl Piece {
    /// Bytes of the file this piece covers, for the progress bar.
    pub fn bytes(&self, meta: &Meta) -> u64 {
        let share = |rows: usize| meta.size * rows as u64 / meta.rows.max(1) as u64;
        match self {
            Piece::Csv(block) => block.bytes.len() as u64,
            Piece::Rows(rows) => share(rows.len()),
            Piece::Batch { batch, .. } => share(batch.num_rows()),
        }
    }
}

/// The pieces of one file, in order.
pub type Pieces = Box<dyn Iterator<Item = Result<Piece>> + Send>;

/// An opened input: its layout (or the problems of its header) and its pieces.
pub struct Opened {
    pub meta: Arc<Meta>,
    pub header: HeaderCheck,
    pub pieces: Pieces,
}

pub fn open(
    input: &Input,
    order: usize,
    def: &'static TableDef,
    sheet: Option<&str>,
    strict: bool,
) -> Result<Opened> {
    let (name, headers, header_line, delimiter, rows, pieces): (_, _, _, _, _, Pieces) =
        match input.format {
            Format::Csv => {
                let (start, blocks) = csv_input::open(&input.path, &input.name, def)?;
                let pieces = Box::new(blocks.map(|b| b.map(Piece::Csv)));
                let header = (start.headers, start.header_line);
                (
                    input.name.clone(),
                    header.0,
                    header.1,
                    start.delimiter,
                    0,
                    pieces,
                )
            }
            Format::Xlsx => {
                let bytes = std::fs::read(&input.path).map_err(|e| Error::io(&input.path, e))?;
                let sheet = xlsx::read(&input.name, bytes, sheet, def)?;
                let rows = sheet.rows.len();
                let mut all = sheet.rows.into_iter();
                let pieces = Box::new(std::iter::from_fn(move || {
                    let piece: Vec<_> = all.by_ref().take(SHEET_PIECE_ROWS).collect();
                    (!piece.is_empty()).then_some(Ok(Piece::Rows(piece)))
                }));
                (
                    sheet.name,
                    sheet.headers,
                    sheet.header_line,
                    b',',
                    rows,
                    pieces,
                )
            }
            Format::Parquet => {
                let (headers, rows, reader) = parquet::open(&input.path, &input.name)?;
                let pieces = Box::new(batches(reader, input.name.clone()));
                (input.name.clone(), headers, 1, b',', rows, pieces)
            }
        };
    let file = FileRef::new(&name, order);
    let (layout, mut header) = Layout::new(def, &headers, header_line, strict, &file);
    if input.year.is_some() {
        // A hive-partitioned file's year is its directory's.
        header
            .problems
            .retain(|p| !(p.column == "year" && p.rule.starts_with("required column is missing")));
    }
    Ok(Opened {
        meta: Arc::new(Meta {
            file,
            layout,
            year: input.year,
            delimiter,
            size: input.size,
            rows,
        }),
        header,
        pieces,
    })
}

fn batches(reader: ParquetRecordBatchReader, name: String) -> impl Iterator<Item = Result<Piece>> {
    let mut first_row = 1;
    reader.map(move |batch| {
        let batch =
            batch.map_err(|e| Error::input(&name, format!("not a readable Parquet file: {e}")))?;
        let rows = batch.num_rows();
        let piece = Piece::Batch { first_row, batch };
        first_row += rows;
        Ok(piece)
    })
}

/// Types `piece` into the table's columns; the cells that do not parse are in
/// `problems`.
pub fn type_piece(
    def: &'static TableDef,
    meta: &Meta,
    piece: &Piece,
    problems: &mut Vec<Problem>,
) -> Result<Chunk> {
    match piece {
        Piece::Csv(block) => csv_input::type_block(
            block,
            meta.delimiter,
            &meta.file.name,
            def,
            &meta.layout,
            &meta.file,
            problems,
        ),
        Piece::Rows(rows) => {
            let mut columns = TextColumns::new(def, &meta.layout, &meta.file, rows.len());
            for (line, cells) in rows {
                columns.push(*line, cells.len(), |i| cells[i].as_str(), problems);
            }
            columns.finish()
        }
        Piece::Batch { batch, first_row } => parquet::type_batch(
            batch,
            *first_row,
            meta.year,
            def,
            &meta.layout,
            &meta.file,
            problems,
        ),
    }
}

/// Puts the file's own text of each problem's cell in its value: a rule checks the
/// typed value (`5.50`), the user looks for what the file says (`5.5`). Parquet cells
/// are typed in the file, so their values stay.
pub fn quote_file_text(
    def: &TableDef,
    meta: &Meta,
    piece: &Piece,
    problems: &mut [Problem],
) -> Result<()> {
    let field = |p: &Problem| {
        def.column_index(&p.column)
            .and_then(|c| meta.layout.positions[c])
    };
    let wanted: std::collections::HashSet<(usize, usize)> = problems
        .iter()
        .filter_map(|p| field(p).map(|f| (p.line, f)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let texts = match piece {
        Piece::Csv(block) => csv_input::cells_at(block, meta.delimiter, &meta.file.name, &wanted)?,
        Piece::Rows(rows) => rows
            .iter()
            .flat_map(|(line, cells)| {
                let wanted = &wanted;
                cells
                    .iter()
                    .enumerate()
                    .filter(move |(f, _)| wanted.contains(&(*line, *f)))
                    .map(move |(f, text)| ((*line, f), text.trim().to_string()))
            })
            .collect(),
        Piece::Batch { .. } => return Ok(()),
    };
    for problem in problems {
        if let Some(text) = field(problem).and_then(|f| texts.get(&(problem.line, f))) {
            problem.value = text.clone();
        }
    }
    Ok(())
}

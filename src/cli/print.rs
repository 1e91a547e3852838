//! Writing query results: an aligned table for people, CSV, JSON and Parquet for
//! programs, to standard output or a file.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::parquet::arrow::ArrowWriter;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table with a row count
    Table,
    /// One block per row, a line per column (psql's \x)
    Expanded,
    Csv,
    /// A JSON array of objects
    Json,
    /// Parquet (needs --output or a redirected standard output)
    Parquet,
}

pub struct Output {
    format: OutputFormat,
    sink: Sink,
    target: String,
}

/// The destination, remembering whether its reader went away: the writers of some
/// formats turn that error into text, and a closed pipe must end the command quietly.
struct Sink {
    inner: Box<dyn Write + Send>,
    closed: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf);
        self.note(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.inner.flush();
        self.note(flushed)
    }
}

impl Sink {
    fn note<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl Output {
    pub fn open(path: Option<&Path>, format: OutputFormat) -> Result<Self> {
        let (sink, target): (Box<dyn Write + Send>, String) = match path {
            Some(path) => (
                Box::new(File::create(path).map_err(|e| Error::io(path, e))?),
                path.display().to_string(),
            ),
            None => {
                if format == OutputFormat::Parquet && std::io::stdout().is_terminal() {
                    return Err(Error::usage(
                        "Parquet is binary: write it to a file with --output FILE",
                    ));
                }
                (Box::new(std::io::stdout()), "standard output".to_string())
            }
        };
        Ok(Output {
            format,
            sink: Sink {
                inner: sink,
                closed: false,
            },
            target,
        })
    }

    /// Appends to `path` (the REPL's `\o FILE`).
    pub fn append(path: &Path, format: OutputFormat) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Output {
            format,
            sink: Sink {
                inner: Box::new(file),
                closed: false,
            },
            target: path.display().to_string(),
        })
    }

    pub fn write(&mut self, schema: SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let written = self.write_format(schema, batches);
        match written {
            Err(_) if self.sink.closed => Err(Error::io(
                &self.target,
                std::io::ErrorKind::BrokenPipe.into(),
            )),
            other => other,
        }
    }

    fn write_format(&mut self, schema: SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let io = |e: std::io::Error, target: &str| Error::io(target, e);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        match self.format {
            OutputFormat::Table | OutputFormat::Expanded => {
                let text = match self.format {
                    OutputFormat::Table => format!("{}\n", table(&schema, batches)?),
                    _ => expanded(&schema, batches)?,
                };
                let plural = if rows == 1 { "" } else { "s" };
                writeln!(self.sink, "{text}({rows} row{plural})")
                    .map_err(|e| io(e, &self.target))?;
            }
            OutputFormat::Csv => {
                let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut self.sink);
                if batches.is_empty() {
                    writer.write(&crate::output::csv_ready(&RecordBatch::new_empty(schema))?)?;
                }
                for batch in batches {
                    writer.write(&crate::output::csv_ready(batch)?)?;
                }
            }
            OutputFormat::Json => {
                let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut self.sink);
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
                writeln!(self.sink).map_err(|e| io(e, &self.target))?;
            }
            OutputFormat::Parquet => {
                let mut writer = ArrowWriter::try_new(&mut self.sink, schema, None)
                    .map_err(|e| Error::input(&self.target, e))?;
                for batch in batches {
                    writer
                        .write(batch)
                        .map_err(|e| Error::input(&self.target, e))?;
                }
                writer.close().map_err(|e| Error::input(&self.target, e))?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.sink.flush().map_err(|e| Error::io(&self.target, e))
    }
}

/// What the table prints for NULL, unlike an empty text.
pub const NULL: &str = "NULL";

/// The aligned text table: numbers right-aligned, NULL printed as [`NULL`], wide
/// (Chinese) characters counted as two columns.
pub fn table(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<comfy_table::Table> {
    use comfy_table::{Cell, CellAlignment, Table};
    let mut table = Table::new();
    table.load_preset("||--+-++|    ++++++");
    // Headers stay on the left over right-aligned numbers.
    table.set_header(
        schema
            .fields()
            .iter()
            .map(|f| Cell::new(f.name()).set_alignment(CellAlignment::Left)),
    );
    for_each_row(batches, |cells| {
        table.add_row(cells.into_iter().map(Cell::new));
    })?;
    for (i, field) in schema.fields().iter().enumerate() {
        if field.data_type().is_numeric() {
            if let Some(column) = table.column_mut(i) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    Ok(table)
}

/// psql's expanded display: a `-[ RECORD n ]-` block per row, one `column | value` line
/// per column.
pub fn expanded(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    use std::fmt::Write as _;
    let width = schema
        .fields()
        .iter()
        .map(|f| f.name().chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let mut n = 0;
    for_each_row(batches, |cells| {
        n += 1;
        let _ = writeln!(
            text,
            "-[ RECORD {n} ]{}",
            "-".repeat(width.saturating_sub(8))
        );
        for (field, cell) in schema.fields().iter().zip(cells) {
            let _ = writeln!(text, "{:<width$} | {cell}", field.name());
        }
    })?;
    Ok(text)
}

/// Calls `row` with each row's cells as the table prints them (NULL as [`NULL`]).
fn for_each_row(batches: &[RecordBatch], mut row: impl FnMut(Vec<String>)) -> Result<()> {
    let options = FormatOptions::new().with_null(NULL);
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for i in 0..batch.num_rows() {
            row(formatters.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    Ok(())
}

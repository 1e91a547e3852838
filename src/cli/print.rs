//! Writing query results: an aligned table for people, CSV, JSON and Parquet for
//! programs, to standard output or a file.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned text table with a row count
    Table,
    Csv,
    /// A JSON array of objects
    Json,
    /// Parquet (needs --output or a redirected standard output)
    Parquet,
}

pub struct Output {
    format: OutputFormat,
    sink: Box<dyn Write + Send>,
    target: String,
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
            sink,
            target,
        })
    }

    pub fn write(&mut self, schema: SchemaRef, batches: &[RecordBatch]) -> Result<()> {
        let io = |e: std::io::Error, target: &str| Error::io(target, e);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        match self.format {
            OutputFormat::Table => {
                let table = if batches.is_empty() {
                    pretty_format_batches(&[RecordBatch::new_empty(schema)])?
                } else {
                    pretty_format_batches(batches)?
                };
                writeln!(self.sink, "{table}").map_err(|e| io(e, &self.target))?;
                writeln!(
                    self.sink,
                    "({rows} row{})",
                    if rows == 1 { "" } else { "s" }
                )
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

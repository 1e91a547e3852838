//! Ingest: read a CSV, XLSX or Parquet file, check every rule over the whole file and
//! against the stored tables, and only then write it as one Delta commit.

mod csv;
mod parquet;
pub mod raw;
pub mod stored;
pub mod validate;
mod xlsx;

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::model::table_or_err;
use crate::storage::{Warehouse, WriteMode};
use crate::{Engine, Error, Result};
use raw::RawTable;
use validate::Problems;

/// Rows per Arrow batch handed to the Delta writer.
const BATCH_ROWS: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct IngestRequest<'a> {
    pub table: &'a str,
    pub file: &'a Path,
    pub mode: WriteMode,
    /// The XLSX sheet to read; the first one when `None`.
    pub sheet: Option<&'a str>,
    /// Draw a progress bar on standard error.
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct IngestSummary {
    pub table: String,
    pub rows: usize,
    pub years: Vec<i32>,
    pub version: u64,
    pub mode: WriteMode,
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let years = match self.years.as_slice() {
            [] => String::new(),
            [y] => format!(" for {y}"),
            [first, .., last] => format!(" for {first}–{last}"),
        };
        let verb = match self.mode {
            WriteMode::Append => "appended",
            WriteMode::ReplaceYear => "replaced year(s) with",
        };
        write!(
            f,
            "{}: {verb} {} rows{years}; table is now at version {}",
            self.table, self.rows, self.version
        )
    }
}

/// Checks `request.file` against every rule and, when it passes, commits it.
pub async fn ingest(warehouse: &Warehouse, request: IngestRequest<'_>) -> Result<IngestSummary> {
    let def = table_or_err(request.table)?;
    let bar = progress_bar(request.progress);
    bar.set_message(format!("reading {}", request.file.display()));
    let raw = read_file(request.file, request.sheet)?;

    bar.set_length(raw.rows.len() as u64);
    bar.set_message("checking rows");
    let mut problems = Problems::new(&raw.path, def);
    let rows = validate::check_file(&raw, def, &mut problems, &|n| bar.set_position(n))?;

    bar.set_message("checking against the warehouse");
    // The checks read the tables themselves, never the rollups.
    let engine = Engine::open_raw(warehouse.clone(), crate::AsOf::Latest).await?;
    stored::check_stored(&engine, def, &rows, request.mode, &mut problems).await?;
    problems.into_result()?;

    bar.set_message("writing");
    let years = rows.years(def);
    let batches = rows.to_batches(def, BATCH_ROWS)?;
    let source = request.file.display().to_string();
    let version = warehouse
        .commit(def, batches, request.mode, &years, &source)
        .await?;
    bar.set_message("updating rollups");
    // The commit stands whatever happens here: a rollup left behind is never read
    // (the table functions read the raw tables) until the next ingest rebuilds it.
    if let Err(e) = crate::rollup::after_commit(warehouse, def.name, version, &years).await {
        log::warn!(
            "{}: rollups not updated ({e}); run `kpidb rollups --rebuild`",
            def.name
        );
    }
    bar.finish_and_clear();
    Ok(IngestSummary {
        table: def.name.to_string(),
        rows: rows.len(),
        years,
        version,
        mode: request.mode,
    })
}

/// Reads a file by its extension, or by its first bytes when the extension says nothing.
pub fn read_file(path: &Path, sheet: Option<&str>) -> Result<RawTable> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::input(
            &name,
            "the file is empty: no header row and no data",
        ));
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if sheet.is_some()
        && !matches!(extension.as_str(), "xlsx" | "xlsm")
        && !bytes.starts_with(b"PK")
    {
        return Err(Error::usage("--sheet applies only to XLSX files"));
    }
    match extension.as_str() {
        "xlsx" | "xlsm" => xlsx::read(&name, bytes, sheet),
        "parquet" | "pq" => parquet::read(&name, bytes),
        "csv" | "txt" | "tsv" => csv::read(&name, &bytes),
        _ if bytes.starts_with(b"PAR1") => parquet::read(&name, bytes),
        _ if bytes.starts_with(b"PK") => xlsx::read(&name, bytes, sheet),
        _ => csv::read(&name, &bytes),
    }
}

fn progress_bar(enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} rows, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

//! Ranking reports (排名通报) from SQL: `reports.toml` names reports made of SQL
//! sections; a run reads one pinned snapshot of the warehouse and writes Excel, HTML
//! with charts, Markdown and CSV, each stamped with the table versions and the SQL.
//!
//! - [`spec`]: `reports.toml`, checked at load.
//! - [`run`]: parameters, sections, the tables and versions each section read.
//! - [`cells`]: results as typed cells with labels and display formats.
//! - [`xlsx`], [`html`] (with [`charts`]), [`markdown`], [`csv`]: the formats.
//! - [`archive`]: run directories with their manifest, newest-run lookup, pruning.
//! - [`schedule`]: cron runs inside `kpidb serve` or `kpidb report schedule`.

pub mod archive;
pub mod cells;
pub mod charts;
pub mod csv;
pub mod html;
pub mod markdown;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use archive::Manifest;
pub use schedule::{Clock, Scheduler};
pub use spec::{Format, Report, Reports};

use crate::engine::SessionHook;
use crate::functions::FunctionOptions;
use crate::storage::{AsOf, Warehouse};
use crate::{Engine, Result};

/// The shipped reports file (the annual ranking circular), written out from the
/// binary on first use ([`crate::sample::shipped`]).
pub fn shipped_reports() -> Result<PathBuf> {
    crate::sample::shipped::reports()
}

/// One run's request.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Parameter values over the report's defaults (checked by [`Report::overrides`]).
    pub params: BTreeMap<String, spec::Value>,
    /// The warehouse pin; `Latest` reads (and records) the current versions.
    pub as_of: AsOf,
    /// Write into this directory instead of the report's archive.
    pub out: Option<PathBuf>,
    /// Formats to write instead of the report's own.
    pub formats: Option<Vec<Format>>,
    /// Where the report's queries run, when not here (a Ballista cluster).
    pub hook: Option<Arc<dyn SessionHook>>,
    /// Write the report even when its year has no data or every section is empty.
    pub allow_empty: bool,
}

/// Runs `report` on one pinned engine and writes its outputs.
pub async fn run_report(
    warehouse: &Warehouse,
    options: FunctionOptions,
    report: &Report,
    request: RunRequest,
) -> Result<Manifest> {
    let mut engine = Engine::open_with(warehouse.clone(), request.as_of, options).await?;
    if let Some(hook) = &request.hook {
        engine = engine.with_hook(hook.as_ref()).await?;
    }
    let outcome = run::execute(&engine, report, request.params, request.allow_empty).await?;
    let formats = request.formats.unwrap_or_else(|| report.formats.clone());
    // Rendering and file writes block: keep them off the async workers (a server runs beside).
    let out = request.out;
    tokio::task::spawn_blocking(move || match out {
        Some(dir) => archive::write(&outcome, &formats, &dir),
        None => archive::archive(&outcome, &formats),
    })
    .await
    .map_err(|e| crate::Error::usage(format!("report '{}': writing stopped: {e}", report.name)))?
}

/// One scheduled run: the latest data, the report's own parameters and formats,
/// archived; what `kpidb serve` and `kpidb report schedule` give their [`Scheduler`].
pub async fn scheduled_run(
    warehouse: Warehouse,
    options: FunctionOptions,
    hook: Option<Arc<dyn SessionHook>>,
    report: Report,
) -> Result<String> {
    let manifest = run_report(
        &warehouse,
        options,
        &report,
        RunRequest {
            as_of: AsOf::Latest,
            hook,
            ..Default::default()
        },
    )
    .await?;
    let mut message = format!(
        "wrote {} (data versions {})",
        manifest.dir.display(),
        manifest.as_of_version
    );
    for note in &manifest.notes {
        message.push_str(&format!("; note: {note}"));
    }
    Ok(message)
}

/// The reports: the file `--reports` (or KPIDB_REPORTS) names, else kpidb.toml's
/// `reports`, else `reports.toml` in the current directory, else the shipped one.
/// Runs are archived under `archive` when given (kpidb.toml's `archive`), else under
/// each report's `output_dir` beside its file; the shipped reports' runs go to
/// `./reports`, where the user is, never into the shipped copy.
pub fn load(
    flag: Option<PathBuf>,
    configured: Option<PathBuf>,
    archive: Option<PathBuf>,
) -> Result<Reports> {
    let named = flag
        .or(configured)
        .or_else(|| Some(PathBuf::from("reports.toml")).filter(|p| p.is_file()));
    let (path, archive) = match named {
        Some(path) => (path, archive),
        None => (
            shipped_reports()?,
            archive.or_else(|| Some(PathBuf::from("reports"))),
        ),
    };
    let reports = Reports::load(&path)?;
    Ok(match archive {
        Some(dir) => {
            let dir = std::path::absolute(&dir).map_err(|e| crate::Error::io(&dir, e))?;
            reports.archive_in(&dir)
        }
        None => reports,
    })
}

/// Paths of a run's files, for printing.
pub fn files(manifest: &Manifest) -> Vec<PathBuf> {
    manifest
        .files
        .iter()
        .map(|f| manifest.dir.join(&f.file))
        .chain(std::iter::once(manifest.dir.join(archive::MANIFEST)))
        .collect()
}

/// Whether a path lies inside `dir` (for serving run files only from the archive).
pub fn within(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

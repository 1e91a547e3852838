//! The warehouse: a directory holding one Delta Lake table per model table.
//! Owns creating, opening, committing to and reading the history of those tables,
//! and pinning every table at once for time travel (see [`AsOf`]).

mod as_of;
mod files;
mod live;
mod sources;
mod staged;
mod unavailable;

pub use as_of::AsOf;
pub use files::{DataFile, DeltaSnapshotTable, TableFiles};
pub use live::{LiveTable, Snapshot};
pub use sources::{Source, SourceFormat};
pub use staged::{CommitLock, Committed, Staged, StagedWrite};
pub use unavailable::UnavailableTable;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{col, lit};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::CommitInfo;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use futures::TryStreamExt;
use url::Url;

use crate::model::{TableDef, LATER_TABLES, TABLES};
use crate::{Error, Result};

/// How an ingest changes a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WriteMode {
    /// Add the rows to what is stored.
    Append,
    /// Replace every stored row of the years present in the input, in one commit.
    ReplaceYear,
    /// Replace every stored row of the table (departments, indicators), in one
    /// commit; rows other tables refer to must stay.
    Replace,
}

/// One entry of a table's history.
#[derive(Debug, Clone)]
pub struct Commit {
    pub version: u64,
    pub timestamp: Option<DateTime<Utc>>,
    pub operation: String,
    /// What kpidb recorded with the commit (source file, mode, rows), as JSON.
    pub details: String,
}

/// A warehouse directory holding this file is read-only; the file's text says why and
/// what to do instead (the copy of the sample shipped in the binary has one).
pub const READ_ONLY: &str = "_kpidb_read_only";

#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
    /// Why nothing may be written here, from the [`READ_ONLY`] file.
    read_only: Option<std::sync::Arc<str>>,
    /// Read-only tables from outside the warehouse (`[[sources]]`).
    sources: std::sync::Arc<[Source]>,
}

impl Warehouse {
    /// Opens an existing warehouse, checking every table of the model is there.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = absolute(&local(root.as_ref())?)?;
        if !root.is_dir() {
            return Err(Error::usage(format!(
                "warehouse {} does not exist; create an empty one with `kpidb init {}`, \
                 or a copy of the sample city with `kpidb gen-sample --out {}` (with no \
                 --data, KPIDB_DATA or `data` in kpidb.toml, kpidb reads the sample it ships)",
                root.display(),
                root.display(),
                root.display()
            )));
        }
        // A warehouse made before the later tables lacks them; it is still whole.
        let first: Vec<&TableDef> = TABLES
            .iter()
            .copied()
            .filter(|t| !LATER_TABLES.iter().any(|l| l.name == t.name))
            .collect();
        let missing: Vec<&str> = first
            .iter()
            .filter(|t| !root.join(t.name).join("_delta_log").is_dir())
            .map(|t| t.name)
            .collect();
        if missing.len() == first.len() {
            return Err(Error::usage(format!(
                "{} is not a kpidb warehouse (it holds none of the tables); create one with `kpidb init DIR`",
                root.display()
            )));
        }
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "warehouse {} is incomplete: missing table(s) {}",
                root.display(),
                missing.join(", ")
            )));
        }
        let marker = root.join(READ_ONLY);
        let read_only = match std::fs::read_to_string(&marker) {
            Ok(reason) => Some(reason.trim().into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&marker, e)),
        };
        Ok(Warehouse {
            root,
            read_only,
            sources: Vec::new().into(),
        })
    }

    /// The warehouse with `sources` attached beside its tables.
    pub fn with_sources(self, sources: Vec<Source>) -> Self {
        Warehouse {
            sources: sources.into(),
            ..self
        }
    }

    /// The read-only tables from outside the warehouse that sessions see beside it.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Whether `def`'s table exists here: a warehouse made before the later tables
    /// ([`LATER_TABLES`]) lacks them until they are added.
    pub fn has(&self, def: &TableDef) -> bool {
        self.root.join(def.name).join("_delta_log").is_dir()
    }

    /// Adds, empty at version 0, the later tables a writable warehouse made before them
    /// lacks; returns their names. Safe when several processes do it at once.
    pub async fn add_later_tables(&self) -> Result<Vec<&'static str>> {
        let mut added = Vec::new();
        if self.read_only.is_some() {
            return Ok(added);
        }
        for def in LATER_TABLES {
            if self.has(def) {
                continue;
            }
            let empty = vec![RecordBatch::new_empty(def.schema())];
            match self.create_table(def, empty, "upgrade").await {
                Ok(_) => added.push(def.name),
                // Another process added it first.
                Err(_) if self.has(def) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(added)
    }

    /// Refuses a write to a read-only warehouse, saying why and what to do instead.
    pub fn writable(&self) -> Result<()> {
        match &self.read_only {
            None => Ok(()),
            Some(reason) => Err(Error::usage(format!(
                "{} is read-only, so nothing was written: {reason}",
                self.root.display()
            ))),
        }
    }

    /// Creates a warehouse with every table empty, at version 0.
    pub async fn init(root: impl AsRef<Path>) -> Result<Self> {
        let warehouse = Self::create_dir(root.as_ref())?;
        for def in TABLES {
            warehouse
                .create_table(def, vec![RecordBatch::new_empty(def.schema())], "init")
                .await?;
        }
        Ok(warehouse)
    }

    /// Makes the directory of a new warehouse; refuses one that already has content.
    pub(crate) fn create_dir(root: &Path) -> Result<Self> {
        let root = &local(root)?;
        require_empty(root)?;
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(Warehouse {
            root: absolute(root)?,
            read_only: None,
            sources: Vec::new().into(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn table_url(&self, def: &TableDef) -> Result<Url> {
        let dir = self.root.join(def.name);
        Url::from_directory_path(&dir)
            .map_err(|_| Error::usage(format!("{} is not a valid directory path", dir.display())))
    }

    /// The table at its latest version.
    pub async fn latest(&self, def: &TableDef) -> Result<DeltaTable> {
        Ok(deltalake::open_table(self.table_url(def)?).await?)
    }

    /// The table as `as_of` pins it, or why it cannot be read at that point.
    pub async fn load(&self, def: &TableDef, as_of: &AsOf) -> Result<Result<DeltaTable, String>> {
        let url = self.table_url(def)?;
        let latest = self.latest(def).await?;
        let latest_version = latest.version().unwrap_or(0);
        match as_of.version_for(def.name) {
            AsOf::Latest => Ok(Ok(latest)),
            AsOf::Version(v) if v == latest_version => Ok(Ok(latest)),
            AsOf::Version(v) if v > latest_version => Ok(Err(format!(
                "table {} has no version {v} (its versions are 0 to {latest_version}); \
                 pin tables one by one with --as-of-version {}={latest_version},… or use --as-of TIMESTAMP",
                def.name, def.name
            ))),
            AsOf::Version(v) => Ok(Ok(deltalake::open_table_with_version(url, v).await?)),
            AsOf::Timestamp(ts) => {
                // Resolved from the commit times `kpidb history` shows, not from file
                // modification times, which a copy or a git checkout resets.
                let history = self.history(def).await?;
                match history.iter().find(|c| c.timestamp.is_some_and(|t| t <= ts)) {
                    Some(commit) if commit.version == latest_version => Ok(Ok(latest)),
                    Some(commit) => Ok(Ok(deltalake::open_table_with_version(url, commit.version).await?)),
                    None => Ok(Err(format!(
                        "table {} did not exist at {} (its first commit is at {})",
                        def.name,
                        ts.to_rfc3339(),
                        history
                            .last()
                            .and_then(|c| c.timestamp)
                            .map(|c| c.to_rfc3339())
                            .unwrap_or_default()
                    ))),
                }
            }
            AsOf::Versions(_) => unreachable!("version_for resolves a per-table pin"),
        }
    }

    /// The latest version of every table: a snapshot that `--as-of-version` accepts.
    pub async fn versions(&self) -> Result<BTreeMap<String, u64>> {
        let mut versions = BTreeMap::new();
        for def in TABLES.iter().filter(|def| self.has(def)) {
            let table = self.latest(def).await?;
            versions.insert(def.name.to_string(), table.version().unwrap_or(0));
        }
        Ok(versions)
    }

    /// Creates `def`'s table from `batches` (possibly one empty batch) at version 0.
    pub(crate) async fn create_table(
        &self,
        def: &TableDef,
        batches: Vec<RecordBatch>,
        source: &str,
    ) -> Result<u64> {
        let url = self.table_url(def)?;
        std::fs::create_dir_all(self.root.join(def.name))
            .map_err(|e| Error::io(self.root.join(def.name), e))?;
        let table = DeltaTable::try_from_url(url).await?;
        let mut write = table
            .write(batches)
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_table_name(def.name)
            .with_description(def.description)
            .with_writer_properties(writer_properties())
            .with_commit_properties(commit_properties(source, "create", None));
        if def.partitioned() {
            write = write.with_partition_columns(["year"]);
        }
        let table = write.await?;
        Ok(table.version().unwrap_or(0))
    }

    /// Writes `batches` to `def`'s table in one Delta commit and returns the new version.
    /// `years` are the years present in the batches (for replace-year).
    pub async fn commit(
        &self,
        def: &TableDef,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        years: &[i32],
        source: &str,
    ) -> Result<u64> {
        self.writable()?;
        let table = self.latest(def).await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let mut write = table
            .write(batches)
            .with_writer_properties(writer_properties())
            .with_commit_properties(commit_properties(source, mode_name(mode), Some(rows)));
        if def.partitioned() {
            write = write.with_partition_columns(["year"]);
        }
        write = match mode {
            WriteMode::Append => write.with_save_mode(SaveMode::Append),
            WriteMode::Replace => write.with_save_mode(SaveMode::Overwrite),
            WriteMode::ReplaceYear => {
                if !def.partitioned() {
                    return Err(Error::usage(format!(
                        "--mode replace-year needs a table with a year column; {} has none",
                        def.name
                    )));
                }
                let years = years.iter().map(|y| lit(*y)).collect();
                write
                    .with_save_mode(SaveMode::Overwrite)
                    .with_replace_where(col("year").in_list(years, false))
            }
        };
        let table = write.await?;
        Ok(table.version().unwrap_or(0))
    }

    /// Every commit of `def`'s table, newest first.
    pub async fn history(&self, def: &TableDef) -> Result<Vec<Commit>> {
        if !self.has(def) {
            return Ok(Vec::new());
        }
        let table = self.latest(def).await?;
        Ok(commit_infos(&table, None)
            .await?
            .into_iter()
            .map(|(version, info)| {
                let mut details: Vec<String> = info
                    .info
                    .iter()
                    .filter(|(k, _)| k.starts_with("kpidb."))
                    .map(|(k, v)| format!("{}={}", k.trim_start_matches("kpidb."), plain(v)))
                    .collect();
                details.sort();
                let details = details.join(" ");
                Commit {
                    version,
                    timestamp: info.timestamp.and_then(DateTime::from_timestamp_millis),
                    operation: info.operation.unwrap_or_default(),
                    details,
                }
            })
            .collect())
    }
}

/// How kpidb writes Parquet: Snappy pages, dictionary-encoded columns (the codes
/// repeat in every year), page-level min/max statistics for pruning, and row groups
/// of at most 1 Mi rows, so a year of national scores splits over both cores' scans.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("kpidb {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Refuses a directory that exists with something in it: kpidb writes only into
/// new or empty directories.
pub(crate) fn require_empty(dir: &Path) -> Result<()> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        if entries.next().is_some() {
            return Err(Error::usage(format!(
                "{} already exists and is not empty; choose a new directory",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The newest `limit` commits of `table` (all when `None`), newest first, with their
/// versions.
pub(crate) async fn commit_infos(
    table: &DeltaTable,
    limit: Option<usize>,
) -> Result<Vec<(u64, CommitInfo)>> {
    let latest = table.version().unwrap_or(0);
    let infos: Vec<CommitInfo> = table.history(limit).try_collect().await?;
    Ok(infos
        .into_iter()
        .enumerate()
        .map(|(i, info)| {
            let version = info
                .info
                .get("version")
                .and_then(|v| v.as_u64())
                .unwrap_or(latest.saturating_sub(i as u64));
            (version, info)
        })
        .collect())
}

fn mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Append => "append",
        WriteMode::ReplaceYear => "replace-year",
        WriteMode::Replace => "replace",
    }
}

fn commit_properties(source: &str, mode: &str, rows: Option<usize>) -> CommitProperties {
    let mut metadata = vec![
        ("kpidb.source".to_string(), serde_json::json!(source)),
        ("kpidb.mode".to_string(), serde_json::json!(mode)),
    ];
    if let Some(rows) = rows {
        metadata.push(("kpidb.rows".to_string(), serde_json::json!(rows)));
    }
    CommitProperties::default().with_metadata(metadata)
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The local directory `root` names. A URL is never taken for a directory (`s3://b/w`
/// would otherwise become a folder `s3:` here): `file://` URLs are their path, every
/// other scheme is refused by name.
fn local(root: &Path) -> Result<PathBuf> {
    let text = root.to_string_lossy();
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(root.to_path_buf());
    };
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return Ok(root.to_path_buf());
    }
    if scheme.eq_ignore_ascii_case("file") {
        return Ok(PathBuf::from(rest));
    }
    Err(Error::usage(format!(
        "{text}: warehouses on {scheme}:// are not supported; a warehouse is a local \
         directory (a path, or a file:// URL). Nothing was read or written."
    )))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

//! The warehouse: a directory, or a prefix of an S3-compatible bucket, holding one
//! Delta Lake table per model table.
//! Owns creating, opening, committing to and reading the history of those tables,
//! and pinning every table at once for time travel (see [`AsOf`]). Reads a snapshot's
//! files with DataFusion's Parquet scan ([`FilesTable`]), keeping small scans' files in
//! memory ([`Resident`]).

mod as_of;
mod files;
mod lease;
mod live;
mod location;
mod native;
mod resident;
mod s3;
mod sources;
mod staged;
mod unavailable;

pub use as_of::AsOf;
pub use files::{DataFile, DeltaSnapshotTable, TableFiles};
pub use live::{LiveTable, Snapshot};
pub use location::Location;
pub use native::FilesTable;
pub use resident::Resident;
pub use s3::{BucketRegistry, StoreSettings};
pub use sources::{Source, SourceFormat};
pub use staged::{CommitLock, Committed, Staged, StagedWrite};
pub use unavailable::UnavailableTable;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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

/// The rows a scan of `provider` with `filters` reads, where the Delta log records
/// them: a warehouse table or a rollup read as plain Parquet files. `None` for any
/// other table (an external source, the catalog's, one that cannot be read).
pub fn rows_read(
    provider: &dyn datafusion::datasource::TableProvider,
    state: &dyn datafusion::catalog::Session,
    filters: &[datafusion::logical_expr::Expr],
) -> Option<u64> {
    if let Some(live) = provider.downcast_ref::<LiveTable>() {
        return rows_read(live.snapshot().provider.as_ref(), state, filters);
    }
    if let Some(snapshot) = provider.downcast_ref::<DeltaSnapshotTable>() {
        return snapshot.rows_read(state, filters);
    }
    provider
        .downcast_ref::<FilesTable>()?
        .rows_read(state, filters)
}

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
    location: Location,
    /// Why nothing may be written here, from the [`READ_ONLY`] file.
    read_only: Option<Arc<str>>,
    /// Read-only tables from outside the warehouse (`[[sources]]`).
    sources: Arc<[Source]>,
    /// The tables a warehouse in a bucket holds, listed when it was opened (a
    /// directory is looked at each time).
    present: Arc<RwLock<BTreeSet<&'static str>>>,
    /// How buckets are reached: this warehouse's, and those of its sources.
    storage: Arc<StoreSettings>,
}

impl Warehouse {
    /// Opens an existing warehouse in a local directory, checking every table of the
    /// model is there.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = local(root.as_ref())?;
        if !root.is_dir() {
            return Err(missing(&root.display().to_string()));
        }
        let present = TABLES
            .iter()
            .filter(|t| root.join(t.name).join("_delta_log").is_dir())
            .map(|t| t.name)
            .collect();
        let marker = root.join(READ_ONLY);
        let read_only = match std::fs::read_to_string(&marker) {
            Ok(reason) => Some(reason.trim().into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&marker, e)),
        };
        Self::whole(Location::Dir(root), present, read_only)
    }

    /// Opens the warehouse at `location`: a local directory (a path or file:// URL) or
    /// a bucket prefix (`s3://BUCKET/PREFIX`, reached with `settings`).
    pub async fn open_at(location: &str, settings: &StoreSettings) -> Result<Self> {
        let location = Location::parse(location, settings)?;
        if let Some(dir) = location.dir() {
            let mut warehouse = Self::open(dir)?;
            warehouse.storage = Arc::new(settings.clone());
            return Ok(warehouse);
        }
        let listed =
            futures::future::try_join_all(TABLES.iter().map(|t| location.holds_table(t.name)))
                .await?;
        let present: BTreeSet<&'static str> = TABLES
            .iter()
            .zip(listed)
            .filter(|(_, there)| *there)
            .map(|(t, _)| t.name)
            .collect();
        if present.is_empty() && location.is_empty().await? {
            return Err(missing(&location.to_string()));
        }
        let read_only = location
            .read_text(READ_ONLY)
            .await?
            .map(|reason| reason.trim().into());
        let mut warehouse = Self::whole(location, present, read_only)?;
        warehouse.storage = Arc::new(settings.clone());
        Ok(warehouse)
    }

    /// The warehouse at `location` holding `present`, if that is a whole warehouse.
    fn whole(
        location: Location,
        present: BTreeSet<&'static str>,
        read_only: Option<Arc<str>>,
    ) -> Result<Self> {
        // A warehouse made before the later tables lacks them; it is still whole.
        let first: Vec<&TableDef> = TABLES
            .iter()
            .copied()
            .filter(|t| !LATER_TABLES.iter().any(|l| l.name == t.name))
            .collect();
        let missing: Vec<&str> = first
            .iter()
            .filter(|t| !present.contains(t.name))
            .map(|t| t.name)
            .collect();
        if missing.len() == first.len() {
            return Err(Error::usage(format!(
                "{location} is not a kpidb warehouse (it holds none of the tables); create one with `kpidb init {location}`"
            )));
        }
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "warehouse {location} is incomplete: missing table(s) {}",
                missing.join(", ")
            )));
        }
        Ok(Warehouse {
            location,
            read_only,
            sources: Vec::new().into(),
            present: Arc::new(RwLock::new(present)),
            storage: Arc::default(),
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

    /// How the buckets this warehouse reads (its own, its sources') are reached.
    pub fn storage(&self) -> &StoreSettings {
        &self.storage
    }

    /// Whether `def`'s table exists here: a warehouse made before the later tables
    /// ([`LATER_TABLES`]) lacks them until they are added.
    pub fn has(&self, def: &TableDef) -> bool {
        match self.location.dir() {
            Some(dir) => dir.join(def.name).join("_delta_log").is_dir(),
            None => self.present.read().expect("table list").contains(def.name),
        }
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
                Err(_) if self.location.holds_table(def.name).await.unwrap_or(false) => {
                    self.present.write().expect("table list").insert(def.name);
                }
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
                self.location
            ))),
        }
    }

    /// Creates a warehouse in a local directory with every table empty, at version 0.
    pub async fn init(root: impl AsRef<Path>) -> Result<Self> {
        Self::init_in(Location::Dir(local(root.as_ref())?)).await
    }

    /// Creates a warehouse at `location` (a directory or `s3://BUCKET/PREFIX`) with
    /// every table empty, at version 0.
    pub async fn init_at(location: &str, settings: &StoreSettings) -> Result<Self> {
        Self::init_in(Location::parse(location, settings)?).await
    }

    async fn init_in(location: Location) -> Result<Self> {
        let warehouse = Self::create(location).await?;
        for def in TABLES {
            warehouse
                .create_table(def, vec![RecordBatch::new_empty(def.schema())], "init")
                .await?;
        }
        Ok(warehouse)
    }

    /// An empty new warehouse at `location`; refuses one that already has content.
    pub(crate) async fn create(location: Location) -> Result<Self> {
        if !location.is_empty().await? {
            return Err(Error::usage(format!(
                "{location} already exists and is not empty; choose a new directory or prefix"
            )));
        }
        location.prepare("")?;
        Ok(Warehouse {
            location,
            read_only: None,
            sources: Vec::new().into(),
            present: Arc::default(),
            storage: Arc::default(),
        })
    }

    /// Where the warehouse is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn table_url(&self, def: &TableDef) -> Result<Url> {
        self.location.url(def.name)
    }

    /// The table at its latest version.
    pub async fn latest(&self, def: &TableDef) -> Result<DeltaTable> {
        self.location.open_delta(self.table_url(def)?, None).await
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
            AsOf::Version(v) => Ok(Ok(self.location.open_delta(url, Some(v)).await?)),
            AsOf::Timestamp(ts) => {
                // Resolved from the commit times `kpidb history` shows, not from file
                // modification times, which a copy or a git checkout resets.
                let history = self.history(def).await?;
                match history.iter().find(|c| c.timestamp.is_some_and(|t| t <= ts)) {
                    Some(commit) if commit.version == latest_version => Ok(Ok(latest)),
                    Some(commit) => Ok(Ok(self
                        .location
                        .open_delta(url, Some(commit.version))
                        .await?)),
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
        self.location.prepare(def.name)?;
        let table = self.location.delta(url)?;
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
        self.present.write().expect("table list").insert(def.name);
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

/// Says a warehouse is not at `location` and how to make one.
fn missing(location: &str) -> Error {
    Error::usage(format!(
        "warehouse {location} does not exist; create an empty one with `kpidb init {location}`, \
         or a copy of the sample city with `kpidb gen-sample --out {location}` (with no \
         --data, KPIDB_DATA or `data` in kpidb.toml, kpidb reads the sample it ships)"
    ))
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
/// would otherwise become a folder `s3:` here): `file://` URLs are their path, a bucket
/// is opened with [`Warehouse::open_at`], and every other scheme is refused by name.
fn local(root: &Path) -> Result<PathBuf> {
    match Location::parse(&root.to_string_lossy(), &StoreSettings::default())? {
        Location::Dir(dir) => Ok(dir),
        Location::Bucket(_) => Err(Error::usage(format!(
            "{}: a warehouse in a bucket is opened with its [storage] settings (Warehouse::open_at)",
            root.display()
        ))),
    }
}

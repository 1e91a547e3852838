//! Writes that stream into a table's directory before they are committed, and the
//! commit that makes them visible: exactly on top of the version they were checked
//! against, or not at all. Files written but never committed are invisible to every
//! reader (a killed ingest leaves the previous version, plus files vacuum removes).
//!
//! Commits of every kpidb process to one warehouse are serialised by a lock file
//! ([`CommitLock`]), held while an ingest re-checks what landed since it read and
//! commits, so rules across tables (a score's department, a replaced year's
//! projects) cannot be broken by two commits passing each other.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use deltalake::datafile::writer::{DeltaWriter, WriterConfig};
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::DeltaTable;
use object_store::ObjectStoreExt;

use super::location::delta_error;
use super::{commit_properties, mode_name, writer_properties, Warehouse, WriteMode};
use crate::model::TableDef;
use crate::{Error, Result};

/// Parquet files being written into one table, not yet part of any version.
pub struct StagedWrite {
    url: url::Url,
    table: DeltaTable,
    writer: DeltaWriter,
    rows: usize,
}

/// Files written and closed, ready to commit.
pub struct Staged {
    table: DeltaTable,
    adds: Vec<Add>,
    pub rows: usize,
}

/// What a commit did.
#[derive(Debug, Clone)]
pub struct Committed {
    pub version: u64,
    /// Rows removed per year by `--mode replace-year`; by `--mode replace`, under
    /// `None`.
    pub replaced: BTreeMap<Option<i32>, u64>,
}

impl StagedWrite {
    pub async fn open(warehouse: &Warehouse, def: &TableDef) -> Result<Self> {
        warehouse.writable()?;
        let table = warehouse.latest(def).await?;
        let config = table.snapshot()?.table_config();
        let partitions = if def.partitioned() {
            vec!["year".to_string()]
        } else {
            Vec::new()
        };
        let writer_config = WriterConfig::new(
            def.schema(),
            partitions,
            Some(writer_properties()),
            Some(NonZeroU64::from(config.target_file_size())),
            None,
            config.num_indexed_cols(),
            None,
        );
        let writer = DeltaWriter::new(table.object_store(), writer_config);
        Ok(StagedWrite {
            url: warehouse.table_url(def)?,
            table,
            writer,
            rows: 0,
        })
    }

    /// Streams `batch` (in the table's schema) into data files.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        let url = &self.url;
        self.writer
            .write(batch)
            .await
            .map_err(|e| delta_error(url, e))
    }

    /// Closes the files.
    pub async fn finish(self) -> Result<Staged> {
        let adds = self
            .writer
            .close()
            .await
            .map_err(|e| delta_error(&self.url, e))?;
        Ok(Staged {
            table: self.table,
            adds,
            rows: self.rows,
        })
    }

    /// Stops writing and removes what was written.
    pub async fn discard(self) {
        let table = self.table.clone();
        match self.writer.close().await {
            Ok(adds) => remove_files(&table, &adds).await,
            Err(e) => log::warn!("discarding written files: {e}"),
        }
    }
}

impl Staged {
    pub async fn discard(self) {
        remove_files(&self.table, &self.adds).await;
    }

    /// Commits the files as the version after `read_version`, which the input was
    /// checked against. `Ok(None)`: that version is no longer the latest (someone
    /// committed since); nothing was committed and the files are kept for a retry.
    /// `years` are the years the input holds (for replace-year).
    pub async fn commit(
        &self,
        warehouse: &Warehouse,
        def: &TableDef,
        read_version: u64,
        mode: WriteMode,
        years: &[i32],
        source: &str,
    ) -> Result<Option<Committed>> {
        let url = warehouse.table_url(def)?;
        let base = warehouse
            .location()
            .open_delta(url, Some(read_version))
            .await?;
        let state = base.snapshot()?;
        let mut actions: Vec<Action> = self.adds.iter().cloned().map(Action::Add).collect();
        let mut replaced = BTreeMap::new();
        let partition_by = def.partitioned().then(|| vec!["year".to_string()]);
        let operation = match mode {
            WriteMode::Append => DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by,
                predicate: None,
            },
            WriteMode::ReplaceYear => {
                if !def.partitioned() {
                    return Err(Error::usage(format!(
                        "--mode replace-year needs a table with a year column; {} has none",
                        def.name
                    )));
                }
                for file in state.log_data().iter() {
                    let year = file
                        .partition_values_map()
                        .get("year")
                        .cloned()
                        .flatten()
                        .and_then(|y| y.parse::<i32>().ok());
                    if let Some(year) = year.filter(|y| years.contains(y)) {
                        *replaced.entry(Some(year)).or_insert(0) +=
                            file.num_records().unwrap_or(0) as u64;
                        actions.push(Action::Remove(file.remove_action(true)));
                    }
                }
                years.iter().for_each(|y| {
                    replaced.entry(Some(*y)).or_insert(0);
                });
                DeltaOperation::Write {
                    mode: SaveMode::Overwrite,
                    partition_by,
                    predicate: Some(format!(
                        "year IN ({})",
                        years
                            .iter()
                            .map(|y| y.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            WriteMode::Replace => {
                let mut rows = 0;
                for file in state.log_data().iter() {
                    rows += file.num_records().unwrap_or(0) as u64;
                    actions.push(Action::Remove(file.remove_action(true)));
                }
                replaced.insert(None, rows);
                DeltaOperation::Write {
                    mode: SaveMode::Overwrite,
                    partition_by,
                    predicate: None,
                }
            }
        };
        let properties = commit_properties(source, mode_name(mode), Some(self.rows));
        let result = CommitBuilder::from(properties)
            .with_actions(actions)
            .with_max_retries(0)
            .build(Some(state), base.log_store(), operation)
            .await;
        match result {
            Ok(done) => Ok(Some(Committed {
                version: done.version(),
                replaced,
            })),
            Err(deltalake::DeltaTableError::VersionAlreadyExists(_)) => Ok(None),
            Err(deltalake::DeltaTableError::Transaction {
                source: deltalake::kernel::transaction::TransactionError::MaxCommitAttempts(_),
            }) => Ok(None),
            Err(e) => Err(delta_error(&warehouse.table_url(def)?, e)),
        }
    }
}

async fn remove_files(table: &DeltaTable, adds: &[Add]) {
    let store = table.object_store();
    for add in adds {
        let path = deltalake::Path::from_url_path(&add.path)
            .unwrap_or_else(|_| deltalake::Path::from(add.path.as_str()));
        if let Err(e) = store.delete(&path).await {
            log::warn!("could not remove uncommitted file {}: {e}", add.path);
        }
    }
}

/// The lock every commit of kpidb to one warehouse holds; released when dropped
/// (or, sooner and surely, by [`CommitLock::release`]).
pub enum CommitLock {
    /// A locked file in the warehouse directory.
    File(std::fs::File),
    /// A lease object in the warehouse's bucket.
    Lease(super::lease::Lease),
}

impl CommitLock {
    /// Releases the lock now (a lease is removed before this returns).
    pub async fn release(self) {
        if let CommitLock::Lease(lease) = self {
            lease.release().await;
        }
    }
}

impl Warehouse {
    /// Waits until no other kpidb process is committing to this warehouse.
    pub async fn lock_commits(&self) -> Result<CommitLock> {
        self.writable()?;
        if let Some((url, store, prefix)) = self.location().bucket() {
            let path = object_store::path::Path::from(format!("{prefix}/{LOCK}"));
            let url = format!("{url}{LOCK}");
            let lease = super::lease::Lease::acquire(Arc::clone(store), path, &url).await?;
            return Ok(CommitLock::Lease(lease));
        }
        let dir = self
            .location()
            .dir()
            .expect("a warehouse is a directory or a bucket");
        let path: PathBuf = dir.join(LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| Error::usage(format!("waiting for the commit lock: {e}")))?
            .map_err(|e| Error::io(&path, e))?;
        Ok(CommitLock::File(file))
    }
}

const LOCK: &str = "_kpidb_commit.lock";

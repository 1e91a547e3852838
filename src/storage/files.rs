//! A Delta snapshot as a table provider that also knows its data files, so a query
//! planned here can be shipped to a cluster as a plain list of Parquet files instead
//! of a Delta snapshot other processes would have to replay.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;

use super::FilesTable;
use serde::{Deserialize, Serialize};

/// The data files of one Delta snapshot: what a cluster reads instead of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableFiles {
    /// The table's root, for messages.
    pub table: String,
    /// The Delta version these files make up.
    pub version: u64,
    /// Partition columns, in the order of [`DataFile::partition_values`].
    pub partition_columns: Vec<String>,
    pub files: Vec<DataFile>,
    /// Why the files alone do not describe the table (deletion vectors, column
    /// mapping); such a snapshot is read only where it was opened.
    pub unsupported: Option<String>,
}

/// One Parquet file of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataFile {
    /// Absolute URL of the file.
    pub url: String,
    pub size: u64,
    /// Delta's text form of each partition value; `None` is NULL.
    pub partition_values: Vec<Option<String>>,
    /// Rows in the file, as the Delta log records them (planners size joins by it).
    #[serde(default)]
    pub rows: Option<u64>,
}

impl TableFiles {
    /// Lists the files of `table`'s loaded snapshot.
    pub fn of(table: &DeltaTable) -> crate::Result<Self> {
        let state = table.snapshot()?;
        let partition_columns = state.metadata().partition_columns().to_vec();
        let store = table.log_store();
        let mut unsupported = None;
        if state
            .metadata()
            .configuration()
            .get("delta.columnMapping.mode")
            .is_some_and(|mode| mode != "none")
        {
            unsupported = Some("it uses Delta column mapping".to_string());
        }
        let mut root = store.root_url().clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let mut files = Vec::new();
        for file in state.log_data().iter() {
            if file.deletion_vector_descriptor().is_some() {
                unsupported = Some("it has deletion vectors".to_string());
            }
            let values = file.partition_values_map();
            let path = file.path();
            let url = match url::Url::parse(&path) {
                Ok(absolute) => absolute,
                Err(_) => root
                    .join(&path)
                    .map_err(|e| crate::Error::input(&root, format!("data file {path}: {e}")))?,
            };
            files.push(DataFile {
                url: url.to_string(),
                size: file.size().max(0) as u64,
                rows: file.num_records().map(|n| n as u64),
                partition_values: partition_columns
                    .iter()
                    .map(|c| values.get(c).cloned().flatten())
                    .collect(),
            });
        }
        Ok(TableFiles {
            table: store.root_url().to_string(),
            version: table.version().unwrap_or_default(),
            partition_columns,
            files,
            unsupported,
        })
    }
}

/// A Delta snapshot as a table: its files read by DataFusion's own Parquet scan
/// ([`FilesTable`]) when they alone describe it, else through Delta's own provider;
/// plus the snapshot's [`TableFiles`].
#[derive(Debug)]
pub struct DeltaSnapshotTable {
    inner: Arc<dyn TableProvider>,
    native: Option<FilesTable>,
    files: Arc<TableFiles>,
}

impl DeltaSnapshotTable {
    /// The provider of `table`'s loaded snapshot.
    pub async fn open(table: &DeltaTable) -> crate::Result<Self> {
        let inner = table.table_provider().await?;
        let files = TableFiles::of(table)?;
        let native = files
            .unsupported
            .is_none()
            .then(|| FilesTable::new(files.clone(), inner.schema()));
        Ok(DeltaSnapshotTable {
            inner,
            native,
            files: Arc::new(files),
        })
    }

    pub fn files(&self) -> &Arc<TableFiles> {
        &self.files
    }

    /// The rows a scan with `filters` reads ([`FilesTable::rows_read`]); `None` when
    /// the snapshot is read through Delta's own provider.
    pub fn rows_read(&self, state: &dyn Session, filters: &[Expr]) -> Option<u64> {
        self.native.as_ref()?.rows_read(state, filters)
    }
}

#[async_trait]
impl TableProvider for DeltaSnapshotTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        match &self.native {
            Some(native) => native.supports_filters_pushdown(filters),
            None => self.inner.supports_filters_pushdown(filters),
        }
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match &self.native {
            Some(native) => native.scan(state, projection, filters, limit).await,
            None => self.inner.scan(state, projection, filters, limit).await,
        }
    }
}

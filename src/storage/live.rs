//! A warehouse table as the session sees it: one Delta snapshot (or the reason none
//! can be read) that a long-running server swaps for a newer one after an ingest,
//! without re-registering anything. Each scan reads the snapshot current at that
//! moment.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// One readable (or unreadable) state of a table.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The Delta version read; `None` when the table cannot be read at the pin.
    pub version: Option<u64>,
    pub provider: Arc<dyn TableProvider>,
}

#[derive(Debug)]
pub struct LiveTable {
    current: RwLock<Snapshot>,
}

impl LiveTable {
    pub fn new(snapshot: Snapshot) -> Self {
        LiveTable {
            current: RwLock::new(snapshot),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn version(&self) -> Option<u64> {
        self.snapshot().version
    }

    /// Replaces the snapshot every later scan reads.
    pub fn replace(&self, snapshot: Snapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot;
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.snapshot().provider.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.snapshot().provider.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let provider = self.snapshot().provider;
        provider.scan(state, projection, filters, limit).await
    }
}

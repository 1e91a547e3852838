//! pg_catalog as datafusion-pg-catalog ships it, with some of its tables replaced by
//! ones that also hold kpidb's rows (its functions, its keys, its descriptions).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{cast, lit, Expr, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;

/// Replaces the named tables of `catalog`'s pg_catalog schema in `ctx`; every other
/// table stays as it was.
pub fn replace(
    ctx: &SessionContext,
    catalog: &str,
    tables: HashMap<&'static str, Arc<dyn TableProvider>>,
) -> Result<()> {
    let Some(catalog) = ctx.catalog(catalog) else {
        return exec_err!("catalog {catalog} not found");
    };
    let Some(inner) = catalog.schema("pg_catalog") else {
        return exec_err!("pg_catalog is not set up");
    };
    catalog.register_schema("pg_catalog", Arc::new(Overlay { inner, tables }))?;
    Ok(())
}

/// Replaces one table of `catalog`'s pg_catalog with the rows of `batch`.
pub fn replace_with_rows(
    ctx: &SessionContext,
    catalog: &str,
    name: &'static str,
    batch: RecordBatch,
) -> Result<()> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    replace(
        ctx,
        catalog,
        HashMap::from([(name, Arc::new(table) as Arc<dyn TableProvider>)]),
    )
}

/// The table `name` of pg_catalog as it stands now.
pub async fn shipped(
    ctx: &SessionContext,
    catalog: &str,
    name: &str,
) -> Result<Arc<dyn TableProvider>> {
    let schema = ctx.catalog(catalog).and_then(|c| c.schema("pg_catalog"));
    match schema {
        Some(schema) => match schema.table(name).await? {
            Some(table) => Ok(table),
            None => exec_err!("pg_catalog.{name} is missing"),
        },
        None => exec_err!("pg_catalog is not set up"),
    }
}

/// `table`'s rows followed by `more`'s, which has the same columns (a view over both,
/// so the shipped rows stay as live as they were).
pub fn with_rows(
    table: Arc<dyn TableProvider>,
    more: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>> {
    let added = LogicalPlanBuilder::scan("kpidb", provider_as_source(more), None)?.build()?;
    let plan = LogicalPlanBuilder::scan("shipped", provider_as_source(table), None)?
        .union(added)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `table` with its column `name` computed by `value` (a view over `table`).
pub fn with_column(
    table: Arc<dyn TableProvider>,
    name: &str,
    value: Expr,
) -> Result<Arc<dyn TableProvider>> {
    let scan = LogicalPlanBuilder::scan("shipped", provider_as_source(table), None)?.build()?;
    let columns: Vec<Expr> = scan
        .schema()
        .columns()
        .into_iter()
        .map(|c| match c.name == name {
            true => value.clone().alias(name),
            false => Expr::Column(c),
        })
        .collect();
    let plan = LogicalPlanBuilder::from(scan).project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `table` with one more column, `name`, NULL in every row (a view over `table`), when
/// it lacks one that clients read.
pub fn with_null_column(
    table: Arc<dyn TableProvider>,
    name: &str,
    data_type: DataType,
) -> Result<Arc<dyn TableProvider>> {
    if table.schema().column_with_name(name).is_some() {
        return Ok(table);
    }
    let scan = LogicalPlanBuilder::scan("shipped", provider_as_source(table), None)?.build()?;
    let mut columns: Vec<Expr> = scan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    columns.push(cast(lit(ScalarValue::Null), data_type).alias(name));
    let plan = LogicalPlanBuilder::from(scan).project(columns)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

#[derive(Debug)]
struct Overlay {
    inner: Arc<dyn SchemaProvider>,
    tables: HashMap<&'static str, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for Overlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.tables.get(name) {
            Some(table) => Ok(Some(table.clone())),
            None => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.inner.table_exist(name)
    }
}

//! The machinery shared by kpidb's table functions: each is a fixed output schema and
//! a SQL query over the warehouse tables, planned in the calling session and inlined
//! into the query like a view. So a table function sees the same pinned versions as
//! the query around it (time travel), new ingests as soon as the session does, and the
//! partition pruning of its `WHERE year …` filters.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemorySchemaProvider,
    SchemaProvider, Session,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{internal_err, plan_err, Result, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{col, Documentation, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::ExecutionPlan;

use crate::rollup::CATALOG as ROLLUP_CATALOG;

/// A table function's result: a logical plan over the session's tables that the
/// planner inlines like a view, so outer filters and projections reach the scans.
#[derive(Debug)]
pub struct SqlTable {
    schema: SchemaRef,
    plan: LogicalPlan,
}

impl SqlTable {
    /// Plans `sql` (whose columns are those of `schema`, in order; each is cast to its
    /// declared type) in the calling session, ordered by `order_by`.
    pub fn plan(
        session: &dyn Session,
        schema: SchemaRef,
        sql: &str,
        order_by: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        Self::plan_with(session, schema, sql, order_by, &[])
    }

    /// As [`SqlTable::plan`], with `rollups` (name, provider) readable in `sql` as
    /// `kpidb_rollup.public.<name>`: the exact snapshots found fresh, not whatever a
    /// name would resolve to later.
    pub fn plan_with(
        session: &dyn Session,
        schema: SchemaRef,
        sql: &str,
        order_by: &str,
        rollups: &[(&str, Arc<dyn TableProvider>)],
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return internal_err!("kpidb table functions run in a DataFusion SessionState");
        };
        let with_rollups;
        let state = if rollups.is_empty() {
            state
        } else {
            let schema = MemorySchemaProvider::new();
            for (name, provider) in rollups {
                schema.register_table(name.to_string(), Arc::clone(provider))?;
            }
            let catalog = MemoryCatalogProvider::new();
            catalog.register_schema("public", Arc::new(schema))?;
            let catalogs = WithRollups {
                inner: Arc::clone(state.catalog_list()),
                rollups: Arc::new(catalog),
            };
            with_rollups = SessionStateBuilder::new_from_existing(state.clone())
                .with_catalog_list(Arc::new(catalogs))
                .build();
            &with_rollups
        };
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|field| {
                format!(
                    "CAST(\"{0}\" AS {1}) AS \"{0}\"",
                    field.name(),
                    sql_type(field.data_type())
                )
            })
            .collect();
        // The optimizer drops an ORDER BY without LIMIT in a view; a limit no result
        // reaches keeps the rows in the documented order for `SELECT * FROM f(…)`.
        // Not i64::MAX: planners multiply row estimates (this limit) by row widths.
        let sql = format!(
            "SELECT {} FROM ({sql}) AS t ORDER BY {order_by} LIMIT {UNREACHED_LIMIT}",
            columns.join(", "),
        );
        // Resolving the session's registered tables completes without I/O, so the
        // planning future is driven to completion here, where the trait is synchronous.
        let plan = futures::executor::block_on(state.create_logical_plan(&sql))?;
        Ok(Arc::new(SqlTable { schema, plan }))
    }
}

/// More rows than any table function returns (a trillion).
const UNREACHED_LIMIT: u64 = 1_000_000_000_000;

/// Turns the sorts that keep a table function's order back into plain sorts: pushed
/// into a sort, the unreached limit makes it a top-k whose heap holds every row,
/// twice as slow as sorting them.
#[derive(Debug, Default)]
pub struct UnreachedLimits;

impl PhysicalOptimizerRule for UnreachedLimits {
    fn name(&self) -> &str {
        "kpidb_unreached_limits"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let unreached = Some(UNREACHED_LIMIT as usize);
        plan.transform_up(|node| {
            if let Some(sort) = node.downcast_ref::<SortExec>() {
                if sort.fetch() == unreached {
                    let plain = SortExec::new(sort.expr().clone(), Arc::clone(sort.input()))
                        .with_preserve_partitioning(sort.preserve_partitioning());
                    return Ok(Transformed::yes(Arc::new(plain) as Arc<dyn ExecutionPlan>));
                }
            }
            if let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() {
                if merge.fetch() == unreached {
                    let plain = SortPreservingMergeExec::new(
                        merge.expr().clone(),
                        Arc::clone(merge.input()),
                    );
                    return Ok(Transformed::yes(Arc::new(plain) as Arc<dyn ExecutionPlan>));
                }
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The session's catalogs plus the rollup catalog, for planning one table function.
#[derive(Debug)]
struct WithRollups {
    inner: Arc<dyn CatalogProviderList>,
    rollups: Arc<dyn CatalogProvider>,
}

impl CatalogProviderList for WithRollups {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        let mut names = self.inner.catalog_names();
        names.push(ROLLUP_CATALOG.to_string());
        names
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        if name == ROLLUP_CATALOG {
            Some(Arc::clone(&self.rollups))
        } else {
            self.inner.catalog(name)
        }
    }
}

fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Int64 => "BIGINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        other => other.to_string(),
    }
}

#[async_trait]
impl TableProvider for SqlTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        Some(Cow::Borrowed(&self.plan))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Reached only when the plan was not inlined; plan it like a view.
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        if let Some(filter) = filters.iter().cloned().reduce(|a, b| a.and(b)) {
            plan = plan.filter(filter)?;
        }
        if let Some(projection) = projection {
            let columns = projection.iter().map(|&i| col(self.schema.field(i).name()));
            plan = plan.project(columns)?;
        }
        let plan = plan.limit(0, limit)?.build()?;
        state.create_physical_plan(&plan).await
    }
}

/// Builds a schema from (name, type, nullable) triples.
pub fn schema(columns: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, t, nullable)| Field::new(*n, t.clone(), *nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The text type table functions return, the one the warehouse's text columns have.
pub const TEXT: DataType = DataType::Utf8View;

/// Reads constant arguments, with errors that name the function and its signature.
pub struct Args<'a> {
    name: &'static str,
    signature: &'static str,
    exprs: &'a [Expr],
}

impl<'a> Args<'a> {
    pub fn new(
        name: &'static str,
        signature: &'static str,
        exprs: &'a [Expr],
        min: usize,
        max: usize,
    ) -> Result<Self> {
        if exprs.len() < min || exprs.len() > max {
            return plan_err!(
                "{name}: expected {signature}, but got {} argument{}",
                exprs.len(),
                if exprs.len() == 1 { "" } else { "s" }
            );
        }
        Ok(Args {
            name,
            signature,
            exprs,
        })
    }

    /// The argument's value when it is constant: a literal, or an expression of
    /// literals such as `2023 - 4` (report parameters are substituted into SQL so).
    fn literal(&self, i: usize) -> Option<ScalarValue> {
        let expr = self.exprs.get(i)?.clone();
        let simplifier = ExprSimplifier::new(SimplifyContext::builder().build());
        match simplifier.simplify(expr).ok()? {
            Expr::Literal(value, _) => Some(value),
            Expr::Cast(cast) => match *cast.expr {
                Expr::Literal(value, _) => Some(value),
                _ => None,
            },
            _ => None,
        }
    }

    /// A constant integer argument.
    pub fn int(&self, i: usize, what: &str) -> Result<i64> {
        match self.literal(i).map(|v| v.cast_to(&DataType::Int64)) {
            Some(Ok(ScalarValue::Int64(Some(v)))) => Ok(v),
            _ => plan_err!(
                "{}: expected {}; {what} must be a constant integer, got {}",
                self.name,
                self.signature,
                self.exprs[i]
            ),
        }
    }

    /// A constant, finite number argument, as a double.
    pub fn number(&self, i: usize, what: &str) -> Result<f64> {
        match self.literal(i).map(|v| v.cast_to(&DataType::Float64)) {
            Some(Ok(ScalarValue::Float64(Some(v)))) if v.is_finite() => Ok(v),
            _ => plan_err!(
                "{}: expected {}; {what} must be a constant number, got {}",
                self.name,
                self.signature,
                self.exprs[i]
            ),
        }
    }

    /// A constant year: an integer from 1 to 9999 (so that the years around it exist).
    pub fn year(&self, i: usize, what: &str) -> Result<i64> {
        let year = self.int(i, what)?;
        if !(1..=9999).contains(&year) {
            return plan_err!(
                "{}: {what} must be a year from 1 to 9999, got {year}",
                self.name
            );
        }
        Ok(year)
    }

    /// A constant text argument, if given.
    pub fn text(&self, i: usize, what: &str) -> Result<Option<String>> {
        if i >= self.exprs.len() {
            return Ok(None);
        }
        match self.literal(i) {
            Some(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => Ok(Some(s)),
            _ => plan_err!(
                "{}: expected {}; {what} must be a constant text, got {}",
                self.name,
                self.signature,
                self.exprs[i]
            ),
        }
    }
}

/// A table function's documentation with its output columns listed.
pub fn document(
    description: &str,
    signature: &str,
    columns: &SchemaRef,
    example: &str,
    arguments: &[(&str, &str)],
) -> Documentation {
    let mut text = format!("{description} Output columns:");
    for field in columns.fields() {
        let _ = write!(
            text,
            " {} ({}),",
            field.name(),
            sql_type(field.data_type()).to_lowercase()
        );
    }
    text.pop();
    text.push('.');
    let mut builder =
        Documentation::builder(Default::default(), text, signature).with_sql_example(example);
    for (name, description) in arguments {
        builder = builder.with_argument(*name, *description);
    }
    builder.build()
}

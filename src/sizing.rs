//! Plans sized to the rows they read. A query whose scans together read few rows (the
//! ex-ante reviews of a year, a rollup's department totals, the sample city) is
//! planned in one partition: no repartitioning, no second aggregation stage, no
//! merge, which on a few thousand rows cost more than the work they split. The rows
//! are the Delta log's counts of the files each scan keeps after its partition
//! filters ([`crate::storage::rows_read`]); a scan of anything whose size is not
//! recorded keeps the session's partitions. Such a plan also passes no dynamic filters
//! from joins, top-k sorts or aggregates down to its scans: they pay on large tables.
//! A kept plan ([`crate::plans`]) over few rows is planned once and run again, each run
//! a copy with its operators' state and its scans' metrics renewed.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::scalar_subquery::ScalarSubqueryExec;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

use crate::plans::Kept;
use crate::shared::{share_repeats, RunSlots, SharedExec, SharedPlanner};

/// At most this many rows read in all, a plan runs in one partition. A decoded and
/// aggregated row costs a few nanoseconds, so splitting 100,000 of them over two cores
/// saves about what the exchange between the partitions costs.
pub const FEW_ROWS: u64 = 100_000;

/// DataFusion's physical planner, given one partition for plans over few rows.
#[derive(Debug, Default)]
pub struct SizedPlanner;

#[async_trait]
impl QueryPlanner for SizedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        physical_plan(logical_plan, session).await
    }
}

/// Plans `plan` (optimised) in `session`, or in a copy of it with one partition when
/// the plan reads few rows. A kept plan ([`Kept`]) over few rows is planned by its
/// first run only: every run, the first too, executes a [`run_copy`] of that physical
/// plan, which itself never runs. Such plans pass no dynamic filters down, the state a
/// copy would not renew.
pub async fn physical_plan(
    plan: &LogicalPlan,
    session: &dyn Session,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(kept) = Kept::of(plan) else {
        return Ok(sized(plan, session).await?.0);
    };
    if let Some(physical) = kept.physical() {
        if let Some(copy) = run_copy(&physical, Checked::Before, &mut RunSlots::default())? {
            return Ok(copy);
        }
    }
    let (physical, few) = sized(kept.plan(), session).await?;
    if !few || recursive(kept.plan()) || shares_results(&physical) {
        return Ok(physical);
    }
    match run_copy(&physical, Checked::Now, &mut RunSlots::default())? {
        Some(copy) => {
            kept.keep_physical(physical);
            Ok(copy)
        }
        // A scan whose copies would share what it gathers: planned afresh every run.
        None => Ok(physical),
    }
}

/// A copy of a kept physical plan for one run: each operator's state reset
/// (DataFusion's `reset_plan_states`, as recursive queries re-run theirs) and each
/// Parquet scan given a source of its own. A scan's source holds the metrics its files
/// register as they open, and a reset keeps the scan's source: shared by every run, it
/// would grow by each file of each run for as long as the plan is kept. `None` when a
/// file scan is not one whose source this can renew exactly.
///
/// Each operator takes its copied inputs keeping the properties it has (they are the
/// same plan's), as a reset does: recomputing them costs more than the rest of a small
/// question's planning. The readers of a shared subplan ([`SharedExec`]) share one new
/// slot of `slots`, this run's.
fn run_copy(
    plan: &Arc<dyn ExecutionPlan>,
    checked: Checked,
    slots: &mut RunSlots,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        if let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() {
            return Ok(renewed_scan(scan, config, checked));
        }
    }
    let mut inputs = Vec::new();
    for input in plan.children() {
        match run_copy(input, checked, slots)? {
            Some(input) => inputs.push(input),
            None => return Ok(None),
        }
    }
    if let (Some(shared), [input]) = (plan.downcast_ref::<SharedExec>(), &inputs[..]) {
        return Ok(Some(shared.for_run(Arc::clone(input), slots)));
    }
    let keep = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep);
    let copy = match inputs.is_empty() {
        true => Arc::clone(plan),
        false => Arc::clone(plan).replace_children(inputs, keep)?,
    };
    Ok(Some(copy.reset_state()?))
}

/// A file scan with a source of its own: a Parquet source rebuilt from the parts it was
/// made of (its schema, options, predicate, readers and projection). `None` for another
/// file format, or a Parquet source the rebuilt one does not match. (A scan of rows in
/// memory gathers nothing between runs: a reset is all it needs.)
fn renewed_scan(
    scan: &DataSourceExec,
    config: &FileScanConfig,
    checked: Checked,
) -> Option<Arc<dyn ExecutionPlan>> {
    let source = config.file_source().downcast_ref::<ParquetSource>()?;
    let mut fresh = ParquetSource::new(source.table_schema().clone())
        .with_table_parquet_options(source.table_parquet_options().clone());
    if let Some(predicate) = source.filter() {
        fresh = fresh.with_predicate(predicate);
    }
    if let Some(readers) = source.parquet_file_reader_factory() {
        fresh = fresh.with_parquet_file_reader_factory(Arc::clone(readers));
    }
    if let Some(projection) = source.projection() {
        let projected = fresh.try_pushdown_projection(projection).ok()??;
        fresh = projected.downcast_ref::<ParquetSource>()?.clone();
    }
    // What the source shows (its predicate, the order it reads row groups in) and what
    // it reads must be the scan's own; a batch size is given to each run's source as
    // it opens, and a metadata size hint only sizes the first read of a footer.
    if checked == Checked::Now {
        let same = fresh.table_schema().table_schema() == source.table_schema().table_schema()
            && fresh.table_parquet_options() == source.table_parquet_options()
            && fresh.projection() == source.projection()
            && Shown(&fresh).to_string() == Shown(source).to_string();
        if !same {
            return None;
        }
    }
    let mut config = config.clone();
    config.file_source = Arc::new(fresh);
    Some(Arc::new(scan.clone().with_data_source(Arc::new(config))))
}

/// Whether a plan's scans are to be checked as they are renewed: when the plan is kept,
/// which is `Now`; rebuilding a source from the same parts gives the same source every
/// run after (and showing one builds its pruning predicate, costlier than the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checked {
    Now,
    Before,
}

/// A file source as `EXPLAIN VERBOSE` shows it.
struct Shown<'a>(&'a dyn FileSource);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_extra(DisplayFormatType::Verbose, f)
    }
}

/// `plan` planned, and whether it was planned as reading few rows: in one partition,
/// without dynamic filters. Either way a subplan it names more than once that reads few
/// rows is computed once per run ([`crate::shared`]).
async fn sized(
    plan: &LogicalPlan,
    session: &dyn Session,
) -> Result<(Arc<dyn ExecutionPlan>, bool)> {
    // A subplan named more than once (a CTE's references) computed once per run.
    let shared = share_repeats(plan, |subplan| reads_few_rows(subplan, session))?;
    let plan = shared.as_ref().unwrap_or(plan);
    let planner = DefaultPhysicalPlanner::with_extension_planners(vec![
        Arc::new(KeptInput),
        Arc::new(SharedPlanner::default()),
    ]);
    if let Some(state) = session.as_any().downcast_ref::<SessionState>() {
        if reads_few_rows(plan, session) {
            let mut one = state.clone();
            let options = one.config_mut().options_mut();
            options.execution.target_partitions = 1;
            // Filters that a join's build side, a top-k or an aggregate pass down to
            // the scans as they run prune the files and row groups of large tables;
            // over few rows their plumbing costs more than they skip.
            let optimizer = &mut options.optimizer;
            optimizer.enable_dynamic_filter_pushdown = false;
            optimizer.enable_join_dynamic_filter_pushdown = false;
            optimizer.enable_topk_dynamic_filter_pushdown = false;
            optimizer.enable_aggregate_dynamic_filter_pushdown = false;
            return Ok((planner.create_physical_plan(plan, &one).await?, true));
        }
    }
    Ok((planner.create_physical_plan(plan, session).await?, false))
}

/// Whether `plan` holds a recursive query (in a subquery too), whose physical plan is
/// not run twice.
fn recursive(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let walked = plan.apply_with_subqueries(|node| {
        found = matches!(node, LogicalPlan::RecursiveQuery(_));
        Ok(match found {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    found || walked.is_err()
}

/// Whether `plan` computes scalar subqueries into a container its copies share (and a
/// reset clears), so that copies running at once would read each other's.
fn shares_results(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.exists(|node| Ok(node.downcast_ref::<ScalarSubqueryExec>().is_some()))
        .unwrap_or(true)
}

/// Plans a [`Kept`] node below the root of a plan (a frame's plan built upon) as the
/// plan it keeps.
struct KeptInput;

#[async_trait]
impl ExtensionPlanner for KeptInput {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        _physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match node.as_any().downcast_ref::<Kept>() {
            Some(kept) => Ok(Some(
                planner.create_physical_plan(kept.plan(), session).await?,
            )),
            None => Ok(None),
        }
    }
}

/// Whether every scan of `plan`, subqueries and kept plans included, has a recorded
/// size, and all together read at most [`FEW_ROWS`].
pub fn reads_few_rows(plan: &LogicalPlan, session: &dyn Session) -> bool {
    rows_scanned(plan, session).is_some_and(|rows| rows <= FEW_ROWS)
}

/// The rows the scans of `plan` read, once past [`FEW_ROWS`] any number above it;
/// `None` when a scan's size is not recorded.
fn rows_scanned(plan: &LogicalPlan, session: &dyn Session) -> Option<u64> {
    let mut rows: Option<u64> = Some(0);
    let walked = plan.apply_with_subqueries(|node| {
        let read = match node {
            LogicalPlan::TableScan(scan) => {
                // The filters as the physical planner hands them to the scan.
                let filters = unnormalize_cols(scan.filters.iter().cloned());
                source_as_provider(&scan.source).ok().and_then(|provider| {
                    crate::storage::rows_read(provider.as_ref(), session, &filters)
                })
            }
            _ => match Kept::of(node) {
                Some(kept) => rows_scanned(kept.plan(), session),
                None => return Ok(TreeNodeRecursion::Continue),
            },
        };
        rows = match (rows, read) {
            (Some(sum), Some(read)) => Some(sum.saturating_add(read)),
            _ => None,
        };
        match rows {
            Some(rows) if rows <= FEW_ROWS => Ok(TreeNodeRecursion::Continue),
            _ => Ok(TreeNodeRecursion::Stop),
        }
    });
    walked.ok().and(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{DataFile, FilesTable, TableFiles};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A session over a table of two years, `rows` per year as the log records them
    /// (`None`: not recorded), planned by [`SizedPlanner`] with two partitions.
    fn session(rows: [Option<u64>; 2]) -> SessionContext {
        let files = [2022, 2023]
            .into_iter()
            .zip(rows)
            .flat_map(|(year, rows)| {
                (0..2).map(move |part| DataFile {
                    url: format!("file:///kpidb-sizing/year={year}/part-{part}.parquet"),
                    size: 1 << 20,
                    partition_values: vec![Some(year.to_string())],
                    rows: rows.map(|rows| rows / 2),
                })
            })
            .collect();
        let files = TableFiles {
            table: "file:///kpidb-sizing/".into(),
            version: 3,
            partition_columns: vec!["year".into()],
            files,
            unsupported: None,
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("dept_code", DataType::Utf8, false),
            Field::new("score", DataType::Int64, false),
            Field::new("year", DataType::Int32, false),
        ]));
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_query_planner(Arc::new(SizedPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("scores", Arc::new(FilesTable::new(files, schema)))
            .unwrap();
        ctx
    }

    /// The physical plan of `sql`, as `EXPLAIN` shows it.
    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        text
    }

    /// Whether `sql` plans with an exchange between partitions.
    async fn repartitions(ctx: &SessionContext, sql: &str) -> bool {
        plan(ctx, sql).await.contains("RepartitionExec")
    }

    /// Whether `sql` plans with a filter that a join or a top-k passes to a scan as it runs.
    async fn filters_dynamically(ctx: &SessionContext, sql: &str) -> bool {
        plan(ctx, sql).await.contains("DynamicFilter")
    }

    /// This year's departments beside last year's: a join whose build side could
    /// filter the other side's scan.
    const YEAR_ON_YEAR: &str = "SELECT a.dept_code, a.score - b.score FROM scores a \
        JOIN scores b ON b.dept_code = a.dept_code AND b.year = 2022 WHERE a.year = 2023";

    const BY_DEPARTMENT: &str = "SELECT dept_code, sum(score) FROM scores GROUP BY dept_code";
    const ONE_YEAR: &str =
        "SELECT dept_code, sum(score) FROM scores WHERE year = 2023 GROUP BY dept_code";

    #[tokio::test]
    async fn few_rows_plan_in_one_partition() {
        let ctx = session([Some(40_000), Some(60_000)]);
        assert!(!repartitions(&ctx, BY_DEPARTMENT).await);
        assert!(!repartitions(&ctx, ONE_YEAR).await);
        // A subquery's scan counts too: 100,000 + 60,000 rows.
        let both = format!(
            "{BY_DEPARTMENT} HAVING sum(score) > (SELECT avg(score) FROM scores WHERE year = 2023)"
        );
        assert!(repartitions(&ctx, &both).await, "{both}");
    }

    #[tokio::test]
    async fn many_rows_keep_the_partitions() {
        let ctx = session([Some(900_000), Some(60_000)]);
        assert!(repartitions(&ctx, BY_DEPARTMENT).await);
        // The partition filter leaves the 60,000 rows of 2023 to read.
        assert!(!repartitions(&ctx, ONE_YEAR).await);
        assert!(repartitions(&ctx, &ONE_YEAR.replace("= 2023", "= 2022")).await);
    }

    #[tokio::test]
    async fn few_rows_plan_without_dynamic_filters() {
        let few = session([Some(40_000), Some(60_000)]);
        assert!(!filters_dynamically(&few, YEAR_ON_YEAR).await);
        let top = "SELECT dept_code FROM scores ORDER BY score DESC LIMIT 3";
        assert!(!filters_dynamically(&few, top).await);
        let many = session([Some(900_000), Some(600_000)]);
        assert!(filters_dynamically(&many, YEAR_ON_YEAR).await);
        assert!(filters_dynamically(&many, top).await);
    }

    /// How many of `times` physical plannings of `sql`, kept as the Engine keeps it,
    /// reused the first run's plan; each plan as `EXPLAIN` shows it.
    async fn kept_runs(ctx: &SessionContext, sql: &str, times: usize) -> (u64, Vec<String>) {
        let cache = crate::plans::PlanCache::new();
        let state = ctx.state();
        let statement = state
            .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
            .unwrap();
        let (lookup, _) = cache.lookup(&state, &statement, Vec::new()).await;
        let planned = state.statement_to_plan(statement).await.unwrap();
        let optimized = state.optimize(&planned).unwrap();
        let kept = cache.keep(lookup, &planned, optimized, &[]);
        assert!(crate::plans::Kept::of(&kept).is_some());
        let mut plans = Vec::new();
        let mut physical: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        for _ in 0..times {
            let frame = crate::plans::frame(state.clone(), kept.clone());
            let plan = frame.create_physical_plan().await.unwrap();
            assert!(
                physical.iter().all(|p| !Arc::ptr_eq(p, &plan)),
                "a run was given a plan another run executes"
            );
            plans.push(displayable(plan.as_ref()).indent(true).to_string());
            physical.push(plan);
        }
        (cache.physical_hits(), plans)
    }

    #[tokio::test]
    async fn a_kept_plan_over_few_rows_is_planned_once() {
        let few = session([Some(40_000), Some(60_000)]);
        let (reused, plans) = kept_runs(&few, YEAR_ON_YEAR, 3).await;
        assert_eq!(reused, 2);
        assert!(plans.iter().all(|p| *p == plans[0]), "{plans:?}");
        assert!(plans[0].contains("HashJoinExec"), "{}", plans[0]);
        // Over many rows each run plans afresh, with the filters the join passes on.
        let many = session([Some(900_000), Some(600_000)]);
        let (reused, plans) = kept_runs(&many, YEAR_ON_YEAR, 2).await;
        assert_eq!(reused, 0);
        assert!(plans[0].contains("DynamicFilter"), "{}", plans[0]);
        // A recursive query is never run twice from one plan.
        let recursive =
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) \
            SELECT * FROM n";
        let (reused, _) = kept_runs(&few, recursive, 2).await;
        assert_eq!(reused, 0);
        // Nor one whose scalar subqueries' values its copies would share.
        let above_average = "SELECT dept_code FROM scores WHERE year = 2023 \
            AND score > (SELECT avg(score) FROM scores WHERE year = 2022)";
        let (reused, plans) = kept_runs(&few, above_average, 2).await;
        assert!(plans[0].contains("ScalarSubqueryExec"), "{}", plans[0]);
        assert_eq!(reused, 0);
    }

    #[tokio::test]
    async fn unrecorded_sizes_keep_the_partitions() {
        let ctx = session([Some(10), None]);
        assert!(repartitions(&ctx, BY_DEPARTMENT).await);
        // Only the recorded year is read.
        assert!(!repartitions(&ctx, &ONE_YEAR.replace("= 2023", "= 2022")).await);
    }
}

//! Aggregates grouped by partition columns, without hashing every row.
//!
//! A hash aggregate looks up the group of each row it reads. When the grouping columns
//! are a table's partition columns (`GROUP BY year` over `dept_scores`), every file
//! holds one group, so a batch of rows is one group, or a few runs of one group each
//! where batches from several files were put together. [`AggregateByRuns`] swaps such
//! aggregates (partial or single-stage) for [`RunAggregateExec`], which splits each
//! batch into its runs of equal keys and feeds each run whole to its group's
//! accumulators: one lookup per run, and the accumulators' vectorised kernels over the
//! run's values (a decimal `sum` is Arrow's `sum`, not an add per row and group).
//!
//! The answer does not depend on the rows arriving in runs: any input gives the hash
//! aggregate's answer, only slower where runs are short. The rule picks the aggregates
//! whose keys come from partition columns, where runs are long.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::{cast, partition};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    replace_children_if_necessary, DisplayAs, DisplayFormatType, ExecutionPlan,
    InputDistributionRequirements, InputOrderMode, PlanProperties,
};
use futures::StreamExt;

/// The physical rule: aggregates grouped only by partition columns run by runs.
#[derive(Debug, Default)]
pub struct AggregateByRuns;

impl PhysicalOptimizerRule for AggregateByRuns {
    fn name(&self) -> &str {
        "AggregateByRuns"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !runs_apply(aggregate) || !keys_from_partitions(aggregate) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(RunAggregateExec::try_new(
                aggregate.clone(),
            )?)))
        })
        .data()
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `aggregate` can run by runs and give the same answer: one grouping set of
/// plain keys, a first or only stage, no order it must keep or take, nothing that
/// needs rows one by one (per-aggregate filters, ordered aggregates), no limit.
fn runs_apply(aggregate: &AggregateExec) -> bool {
    let group = aggregate.group_expr();
    matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
    ) && group.is_single()
        && !group.is_empty()
        && aggregate.limit_options().is_none()
        && *aggregate.input_order_mode() == InputOrderMode::Linear
        && aggregate.properties().output_ordering().is_none()
        && aggregate.dynamic_expressions_produced().is_empty()
        && aggregate.filter_expr().iter().all(Option::is_none)
        && aggregate
            .aggr_expr()
            .iter()
            .all(|a| a.order_bys().is_empty() && !a.expressions().is_empty())
        && group.expr().iter().all(|(expr, _)| {
            expr.downcast_ref::<Column>().is_some()
                && expr
                    .data_type(&aggregate.input_schema())
                    .is_ok_and(|t| plain_key(&t))
        })
}

/// Types whose values group as they compare (no floats: NaN and -0.0).
fn plain_key(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Date32
                | DataType::Date64
                | DataType::Boolean
                | DataType::Decimal128(_, _)
        )
}

/// Whether every key of `aggregate` is a partition column of the files its input reads.
fn keys_from_partitions(aggregate: &AggregateExec) -> bool {
    aggregate.group_expr().expr().iter().all(|(expr, _)| {
        expr.downcast_ref::<Column>()
            .is_some_and(|c| partition_column(aggregate.input(), c.index()))
    })
}

/// Whether column `index` of `plan` is, unchanged, a partition column of a file scan.
fn partition_column(plan: &Arc<dyn ExecutionPlan>, index: usize) -> bool {
    if let Some(source) = plan.downcast_ref::<DataSourceExec>() {
        let Some(config) = source.data_source().downcast_ref::<FileScanConfig>() else {
            return false;
        };
        let schema = plan.schema();
        let Some(field) = schema.fields().get(index) else {
            return false;
        };
        return config
            .table_partition_cols()
            .iter()
            .any(|p| p.name() == field.name());
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let index = match filter.projection() {
            Some(projection) => match projection.get(index) {
                Some(&i) => i,
                None => return false,
            },
            None => index,
        };
        return partition_column(filter.input(), index);
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        return projection
            .expr()
            .get(index)
            .and_then(|e| e.expr.downcast_ref::<Column>())
            .is_some_and(|c| partition_column(projection.input(), c.index()));
    }
    // Repartitioning, coalescing, cooperative yielding: rows pass through as they are.
    match plan.children().as_slice() {
        [child] if child.schema() == plan.schema() => partition_column(child, index),
        _ => false,
    }
}

/// An aggregate that feeds each run of equal keys to its group's accumulators. It
/// keeps the hash aggregate it replaces, whose schema, properties, requirements and
/// display it has (`RunAggregateExec` in `EXPLAIN`).
#[derive(Debug)]
pub struct RunAggregateExec {
    aggregate: AggregateExec,
}

impl RunAggregateExec {
    /// Runs `aggregate` by runs; it must be one [`AggregateByRuns`] accepts.
    pub fn try_new(aggregate: AggregateExec) -> Result<Self> {
        if !runs_apply(&aggregate) {
            return internal_err!("RunAggregateExec: this aggregate cannot run by runs");
        }
        Ok(RunAggregateExec { aggregate })
    }
}

impl DisplayAs for RunAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunAggregateExec, as ")?;
        self.aggregate.fmt_as(t, f)
    }
}

impl ExecutionPlan for RunAggregateExec {
    fn name(&self) -> &str {
        "RunAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.aggregate.input_distribution_requirements()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = replace_children_if_necessary(Arc::new(self.aggregate.clone()), children)?;
        let Some(aggregate) = aggregate.downcast_ref::<AggregateExec>() else {
            return internal_err!("RunAggregateExec: its aggregate changed kind");
        };
        Ok(Arc::new(RunAggregateExec::try_new(aggregate.clone())?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .aggregate
            .input()
            .execute(partition, Arc::clone(&context))?;
        let schema = self.schema();
        let runs = Runs {
            keys: self
                .aggregate
                .group_expr()
                .expr()
                .iter()
                .map(|(e, _)| Arc::clone(e))
                .collect(),
            aggregates: self.aggregate.aggr_expr().to_vec(),
            finish: !matches!(self.aggregate.mode(), AggregateMode::Partial),
            schema: Arc::clone(&schema),
            reservation: MemoryConsumer::new(format!("RunAggregateExec[{partition}]"))
                .register(context.memory_pool()),
        };
        let output = futures::stream::once(runs.aggregate(input));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

/// One partition's aggregation.
struct Runs {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Final values (a single-stage aggregate) rather than partial states.
    finish: bool,
    schema: SchemaRef,
    reservation: MemoryReservation,
}

/// The groups met so far, in the order they were met, and their accumulators.
#[derive(Default)]
struct Groups {
    index: HashMap<Vec<ScalarValue>, usize>,
    keys: Vec<Vec<ScalarValue>>,
    accumulators: Vec<Vec<Box<dyn Accumulator>>>,
}

impl Runs {
    async fn aggregate(mut self, mut input: SendableRecordBatchStream) -> Result<RecordBatch> {
        let mut groups = Groups::default();
        while let Some(batch) = input.next().await {
            self.add(&mut groups, &batch?)?;
        }
        self.output(groups)
    }

    fn add(&mut self, groups: &mut Groups, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let evaluate = |e: &Arc<dyn PhysicalExpr>| e.evaluate(batch)?.into_array(rows);
        let keys: Vec<ArrayRef> = self.keys.iter().map(evaluate).collect::<Result<_>>()?;
        let values: Vec<Vec<ArrayRef>> = self
            .aggregates
            .iter()
            .map(|a| a.expressions().iter().map(evaluate).collect())
            .collect::<Result<_>>()?;
        for run in partition(&keys)?.ranges() {
            let key: Vec<ScalarValue> = keys
                .iter()
                .map(|k| ScalarValue::try_from_array(k, run.start))
                .collect::<Result<_>>()?;
            let at = match groups.index.get(&key) {
                Some(&at) => at,
                None => {
                    let accumulators = self
                        .aggregates
                        .iter()
                        .map(|a| a.create_accumulator())
                        .collect::<Result<_>>()?;
                    groups.accumulators.push(accumulators);
                    groups.keys.push(key.clone());
                    groups.index.insert(key, groups.keys.len() - 1);
                    groups.keys.len() - 1
                }
            };
            let whole = run.start == 0 && run.end == rows;
            for (accumulator, values) in groups.accumulators[at].iter_mut().zip(&values) {
                if whole {
                    accumulator.update_batch(values)?;
                } else {
                    let run_values: Vec<ArrayRef> = values
                        .iter()
                        .map(|v| v.slice(run.start, run.len()))
                        .collect();
                    accumulator.update_batch(&run_values)?;
                }
            }
        }
        let held: usize = groups
            .accumulators
            .iter()
            .flatten()
            .map(|a| a.size())
            .sum::<usize>()
            + groups
                .keys
                .iter()
                .flatten()
                .map(|k| k.size())
                .sum::<usize>();
        self.reservation.try_resize(held)
    }

    /// One row per group: its keys, then each aggregate's state (or value).
    fn output(self, mut groups: Groups) -> Result<RecordBatch> {
        if groups.keys.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        let mut columns: Vec<ArrayRef> = (0..self.keys.len())
            .map(|i| ScalarValue::iter_to_array(groups.keys.iter().map(|k| k[i].clone())))
            .collect::<Result<_>>()?;
        for a in 0..self.aggregates.len() {
            if self.finish {
                let values = groups
                    .accumulators
                    .iter_mut()
                    .map(|g| g[a].evaluate())
                    .collect::<Result<Vec<_>>>()?;
                columns.push(ScalarValue::iter_to_array(values)?);
            } else {
                let states = groups
                    .accumulators
                    .iter_mut()
                    .map(|g| g[a].state())
                    .collect::<Result<Vec<_>>>()?;
                let fields = states.first().map_or(0, Vec::len);
                for f in 0..fields {
                    columns.push(ScalarValue::iter_to_array(
                        states.iter().map(|s| s[f].clone()),
                    )?);
                }
            }
        }
        if columns.len() != self.schema.fields().len() {
            return internal_err!(
                "RunAggregateExec: {} columns for a schema of {}",
                columns.len(),
                self.schema.fields().len()
            );
        }
        // A value's own type where the plan's differs only in how it is written down
        // (a list's item name, a decimal's precision after a sum).
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column)
                } else {
                    Ok(cast(&column, field.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Rows whose keys come in runs of every length (1 to 40), repeat across batches,
    /// and include NULL, with NULL values too: a deterministic mix.
    fn table() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("dept", DataType::Utf8, true),
            Field::new("score", DataType::Decimal128(7, 2), true),
            Field::new("n", DataType::Int64, true),
        ]));
        let mut state = 7u64;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let batches = (0..6)
            .map(|_| {
                let (mut year, mut dept, mut score, mut n) = (vec![], vec![], vec![], vec![]);
                while year.len() < 500 {
                    let run = 1 + next(40) as usize;
                    let y = match next(9) {
                        0 => None,
                        v => Some(2015 + v as i32),
                    };
                    let d = ["a", "b", "c"][next(3) as usize];
                    for _ in 0..run {
                        year.push(y);
                        dept.push((next(11) != 0).then_some(d));
                        score.push((next(13) != 0).then(|| next(10_000) as i128));
                        n.push((next(17) != 0).then(|| next(1_000) as i64 - 500));
                    }
                }
                let score = Decimal128Array::from(score)
                    .with_precision_and_scale(7, 2)
                    .unwrap();
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Int32Array::from(year)),
                        Arc::new(StringArray::from(dept)),
                        Arc::new(score),
                        Arc::new(Int64Array::from(n)),
                    ],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    fn session(partitions: usize) -> SessionContext {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new()
                .with_target_partitions(partitions)
                .with_batch_size(97),
        );
        let (schema, batches) = table();
        let split = batches.len() / partitions;
        let parts = batches.chunks(split.max(1)).map(|c| c.to_vec()).collect();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, parts).unwrap()))
            .unwrap();
        ctx
    }

    /// Every aggregate the rule would accept run by runs, wherever its keys come from.
    fn by_runs_everywhere(plan: Arc<dyn ExecutionPlan>) -> (Arc<dyn ExecutionPlan>, usize) {
        let mut swapped = 0;
        let plan = plan
            .transform_up(|node| match node.downcast_ref::<AggregateExec>() {
                Some(a) if runs_apply(a) => {
                    swapped += 1;
                    let exec = RunAggregateExec::try_new(a.clone())?;
                    Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
                }
                _ => Ok(Transformed::no(node)),
            })
            .data()
            .unwrap();
        (plan, swapped)
    }

    async fn answers(ctx: &SessionContext, sql: &str) -> (String, String, usize) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let hashed = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        let (runs, swapped) = by_runs_everywhere(plan);
        let by_runs = collect(runs, ctx.task_ctx()).await.unwrap();
        (
            pretty_format_batches(&hashed).unwrap().to_string(),
            pretty_format_batches(&by_runs).unwrap().to_string(),
            swapped,
        )
    }

    #[tokio::test]
    async fn runs_of_any_length_give_the_hash_aggregates_answer() {
        let questions = [
            "SELECT year, count(*), sum(score), min(score), max(score), avg(score) \
             FROM t GROUP BY year ORDER BY year",
            "SELECT year, dept, count(score), sum(n), avg(n), count(DISTINCT n) \
             FROM t GROUP BY year, dept ORDER BY year, dept",
            "SELECT dept, sum(score * 10), max(n) FROM t WHERE score * 10 < 6000 \
             GROUP BY dept ORDER BY dept",
            "SELECT year, count(*) FROM t WHERE n > 10000 GROUP BY year ORDER BY year",
        ];
        for partitions in [1, 3] {
            let ctx = session(partitions);
            for sql in questions {
                let (hashed, by_runs, swapped) = answers(&ctx, sql).await;
                assert!(swapped > 0, "no aggregate swapped in {sql}");
                assert_eq!(hashed, by_runs, "{sql} in {partitions} partition(s)");
            }
        }
    }

    #[tokio::test]
    async fn keys_not_from_partition_columns_stay_hashed() {
        let ctx = session(2);
        let plan = ctx
            .sql("SELECT year, sum(score) FROM t GROUP BY year")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let plan = AggregateByRuns
            .optimize(plan, &ConfigOptions::default())
            .unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(!shown.contains("RunAggregateExec"), "{shown}");
    }
}

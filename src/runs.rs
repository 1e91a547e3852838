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
//!
//! A filter right under such an aggregate runs inside it when every aggregate skips
//! NULL arguments (`sum`, `count`, `min`, `max`, `avg`, …). Where most of a batch's
//! rows pass, the rest are not copied out: they stay, their arguments made NULL, and a
//! run none of whose rows pass is skipped, so no group appears that the filter would
//! have emptied. Where few pass, they are copied out as the filter would.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    downcast_integer_array, make_array, Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray,
    PrimitiveArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::compute::{cast, filter_record_batch, partition};
use datafusion::arrow::datatypes::{DataType, Date32Type, Date64Type, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::cast::as_boolean_array;
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
use datafusion::physical_expr::projection::ProjectionRef;
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
    /// The filter under the aggregate, when it runs here ([`maskable_filter`]).
    mask: Option<Mask>,
}

/// A filter run inside a [`RunAggregateExec`]: its predicate, the columns it passes
/// on, and the plan it reads.
#[derive(Debug, Clone)]
struct Mask {
    predicate: Arc<dyn PhysicalExpr>,
    projection: Option<ProjectionRef>,
    input: Arc<dyn ExecutionPlan>,
}

/// The aggregates that skip a NULL argument: under them a row a filter drops may stay
/// with its arguments made NULL.
const SKIP_NULLS: [&str; 10] = [
    "sum", "count", "min", "max", "avg", "bool_and", "bool_or", "bit_and", "bit_or", "bit_xor",
];

/// The filter right under `aggregate`, when it can run inside it: every aggregate
/// skips NULL arguments and the filter has no row limit.
fn maskable_filter(aggregate: &AggregateExec) -> Option<Mask> {
    let filter = aggregate.input().downcast_ref::<FilterExec>()?;
    let skip_nulls = aggregate
        .aggr_expr()
        .iter()
        .all(|a| SKIP_NULLS.contains(&a.fun().name()));
    (skip_nulls && filter.fetch().is_none()).then(|| Mask {
        predicate: Arc::clone(filter.predicate()),
        projection: filter.projection().clone(),
        input: Arc::clone(filter.input()),
    })
}

impl Mask {
    /// `batch` (the filter's input) as the aggregate reads it: `None` when no row
    /// passes; else the passing rows copied out when they are few, or every row
    /// with the bits of those that pass when they are most.
    fn apply(&self, batch: &RecordBatch) -> Result<Option<(RecordBatch, Option<BooleanBuffer>)>> {
        let rows = batch.num_rows();
        let passed = self.predicate.evaluate(batch)?.into_array(rows)?;
        let passed = as_boolean_array(&passed)?;
        let pass = match passed.nulls() {
            Some(nulls) => passed.values() & nulls.inner(),
            None => passed.values().clone(),
        };
        let kept = pass.count_set_bits();
        if kept == 0 {
            return Ok(None);
        }
        let batch = match &self.projection {
            Some(columns) => batch.project(columns)?,
            None => batch.clone(),
        };
        Ok(match kept {
            _ if kept == rows => Some((batch, None)),
            _ if kept * 2 < rows => {
                let pass = BooleanArray::new(pass, None);
                Some((filter_record_batch(&batch, &pass)?, None))
            }
            _ => Some((batch, Some(pass))),
        })
    }
}

/// `array` with the rows not in `pass` made NULL; its values are not copied.
fn masked(array: &ArrayRef, pass: &BooleanBuffer) -> Result<ArrayRef> {
    let nulls = NullBuffer::union(array.nulls(), Some(&NullBuffer::new(pass.clone())));
    Ok(make_array(
        array.to_data().into_builder().nulls(nulls).build()?,
    ))
}

impl RunAggregateExec {
    /// Runs `aggregate` by runs; it must be one [`AggregateByRuns`] accepts.
    pub fn try_new(aggregate: AggregateExec) -> Result<Self> {
        if !runs_apply(&aggregate) {
            return internal_err!("RunAggregateExec: this aggregate cannot run by runs");
        }
        let mask = maskable_filter(&aggregate);
        Ok(RunAggregateExec { aggregate, mask })
    }
}

impl DisplayAs for RunAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunAggregateExec, ")?;
        if let Some(mask) = &self.mask {
            write!(
                f,
                "filter {} inside (rows failing it masked or dropped), ",
                mask.predicate
            )?;
        }
        write!(f, "as ")?;
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
        match &self.mask {
            Some(mask) => vec![&mask.input],
            None => vec![self.aggregate.input()],
        }
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        if let Some(mask) = &self.mask {
            if f(&mask.predicate)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // A filter run here gets the new child, and stays the aggregate's input.
        let children = match &self.mask {
            Some(_) => vec![replace_children_if_necessary(
                Arc::clone(self.aggregate.input()),
                children,
            )?],
            None => children,
        };
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
        let input = self.children()[0].execute(partition, Arc::clone(&context))?;
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
            mask: self.mask.clone(),
            schema: Arc::clone(&schema),
            reservation: MemoryConsumer::new(format!("RunAggregateExec[{partition}]"))
                .register(context.memory_pool()),
        };
        let output = futures::stream::once(runs.aggregate(input));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

/// Whether every row of `array` holds its first row's value, told without comparing
/// neighbours for the integer and date keys partition columns have (most batches are
/// one file's rows, a single run); `false` for other types and for nulls, which
/// [`partition`] then splits.
fn constant(array: &ArrayRef) -> bool {
    fn same<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>) -> bool {
        let values = array.values();
        let Some(first) = values.first() else {
            return true;
        };
        array.null_count() == 0
            && values
                .chunks(256)
                .all(|chunk| chunk.iter().fold(true, |same, v| same & (v == first)))
    }
    downcast_integer_array!(
        array => same(array),
        DataType::Date32 => same(array.as_primitive::<Date32Type>()),
        DataType::Date64 => same(array.as_primitive::<Date64Type>()),
        _ => false,
    )
}

/// One partition's aggregation.
struct Runs {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Final values (a single-stage aggregate) rather than partial states.
    finish: bool,
    mask: Option<Mask>,
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
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (batch, pass) = match &self.mask {
            Some(mask) => match mask.apply(batch)? {
                Some(kept) => kept,
                None => return Ok(()),
            },
            None => (batch.clone(), None),
        };
        let rows = batch.num_rows();
        let evaluate = |e: &Arc<dyn PhysicalExpr>| e.evaluate(&batch)?.into_array(rows);
        let argument = |e: &Arc<dyn PhysicalExpr>| match &pass {
            Some(pass) => masked(&evaluate(e)?, pass),
            None => evaluate(e),
        };
        let keys: Vec<ArrayRef> = self.keys.iter().map(evaluate).collect::<Result<_>>()?;
        let values: Vec<Vec<ArrayRef>> = self
            .aggregates
            .iter()
            .map(|a| a.expressions().iter().map(argument).collect())
            .collect::<Result<_>>()?;
        let runs: Vec<_> = if keys.iter().all(constant) {
            std::iter::once(0..rows).collect()
        } else {
            partition(&keys)?.ranges()
        };
        for run in runs {
            if pass
                .as_ref()
                .is_some_and(|p| p.slice(run.start, run.len()).count_set_bits() == 0)
            {
                continue;
            }
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
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Rows whose keys come in runs of every length (1 to 40, and some of 100 to 400,
    /// longer than a batch), repeat across batches, and include NULL, with NULL values
    /// too: a deterministic mix.
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
                    // Short runs, and now and then one longer than a batch, whose
                    // batches hold one key only.
                    let run = match next(5) {
                        0 => 100 + next(300),
                        _ => 1 + next(40),
                    } as usize;
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

    /// The answers of `sql` hashed and by runs, how many aggregates ran by runs, and
    /// whether one of them runs its filter.
    async fn answers(ctx: &SessionContext, sql: &str) -> (String, String, usize, bool) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let hashed = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        let (runs, swapped) = by_runs_everywhere(plan);
        let masks = displayable(runs.as_ref())
            .indent(true)
            .to_string()
            .contains("masked");
        let by_runs = collect(runs, ctx.task_ctx()).await.unwrap();
        (
            pretty_format_batches(&hashed).unwrap().to_string(),
            pretty_format_batches(&by_runs).unwrap().to_string(),
            swapped,
            masks,
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
            // Most rows pass (masked), about a third pass (copied out), and the
            // filter's NULLs (n is NULL) fail.
            "SELECT year, count(*), count(n), sum(score), min(n), max(score), avg(n) \
             FROM t WHERE n > -200 GROUP BY year ORDER BY year",
            "SELECT year, dept, count(*), sum(n), max(score) FROM t WHERE n > 200 \
             GROUP BY year, dept ORDER BY year, dept",
            // A projection the filter makes, and an aggregate that counts NULLs too
            // (the filter then stays a filter).
            "SELECT year, sum(n) FROM (SELECT year, n FROM t WHERE score > 30) \
             GROUP BY year ORDER BY year",
            "SELECT year, median(n) FROM t WHERE n > -200 GROUP BY year ORDER BY year",
        ];
        for partitions in [1, 3] {
            let ctx = session(partitions);
            for sql in questions {
                let (hashed, by_runs, swapped, masks) = answers(&ctx, sql).await;
                assert!(swapped > 0, "no aggregate swapped in {sql}");
                assert_eq!(hashed, by_runs, "{sql} in {partitions} partition(s)");
                let maskable = sql.contains("WHERE") && !sql.contains("median");
                assert_eq!(masks, maskable, "filter run inside or not: {sql}");
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

//! A subplan a query names more than once, computed once per run and read by each of
//! its references. DataFusion plans a common table expression once per reference: a
//! question that names its department totals three times (the year-by-year totals, and
//! joined again for the first year's and the last year's) reads and computes them three
//! times. The physical planner ([`crate::sizing`]) hands an optimised plan to
//! [`share_repeats`], which marks each subplan under an alias (a CTE's reference, a
//! derived table) that occurs more than once, reads few rows and holds nothing volatile;
//! each mark is planned as a [`SharedExec`], and the readers of one subplan share a
//! [`Slot`]: the first to run computes the subplan, all of them read its rows. The rows
//! are held in memory for the run, so only subplans over few rows are shared.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, DFSchemaRef, DataFusionError, Result};
use datafusion::datasource::source_as_provider;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, SubqueryAlias, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    collect, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::future::{BoxFuture, FutureExt, Shared as SharedFuture};
use futures::StreamExt;

/// `plan` with every subplan under an alias that occurs more than once, reads few rows
/// (`few`) and holds no volatile function marked as [`Shared`]; `None` when there is
/// none. A reference is a chain of aliases (`t_first` of the CTE `totals`) over the
/// subplan; the outermost repeat is marked, not the repeats within it.
pub fn share_repeats(
    plan: &LogicalPlan,
    few: impl Fn(&LogicalPlan) -> bool,
) -> Result<Option<LogicalPlan>> {
    let mut seen = References::default();
    count_references(plan, &mut seen);
    let mut ids: HashMap<LogicalPlan, usize> = HashMap::new();
    for subplan in seen.order {
        if seen.counts[subplan] > 1 && !volatile(subplan) && few(subplan) {
            let id = ids.len();
            ids.insert(subplan.clone(), id);
        }
    }
    // A recursive query's work table is another thing each reference reads anew.
    if ids.is_empty() || plan.exists(|node| Ok(matches!(node, LogicalPlan::RecursiveQuery(_))))? {
        return Ok(None);
    }
    // The first reference of each subplan, by which the others are checked: equal plans
    // whose scans read the same tables (a plan's equality compares tables by name).
    let mut first: HashMap<usize, LogicalPlan> = HashMap::new();
    let marked = plan.clone().transform_down(|node| {
        if !matches!(node, LogicalPlan::SubqueryAlias(_)) {
            return Ok(Transformed::no(node));
        }
        let subplan = aliased(&node);
        let Some(&id) = ids.get(subplan) else {
            return Ok(Transformed::no(node));
        };
        let reference = first.entry(id).or_insert_with(|| subplan.clone());
        if !same_tables(reference, subplan) {
            return Ok(Transformed::no(node));
        }
        let shared = LogicalPlan::Extension(Extension {
            node: Arc::new(Shared {
                id,
                input: subplan.clone(),
            }),
        });
        let node = realiased(&node, shared)?;
        Ok(Transformed::new(node, true, TreeNodeRecursion::Jump))
    })?;
    Ok(Some(marked.data))
}

/// The subplans under chains of aliases in a plan: how often each is named, and the
/// order they are first met in (which numbers them, so `EXPLAIN` stays the same).
#[derive(Default)]
struct References<'a> {
    counts: HashMap<&'a LogicalPlan, usize>,
    order: Vec<&'a LogicalPlan>,
}

/// Counts in `seen` the references of each subplan under a chain of aliases in `plan`.
fn count_references<'a>(plan: &'a LogicalPlan, seen: &mut References<'a>) {
    let mut node = plan;
    if matches!(node, LogicalPlan::SubqueryAlias(_)) {
        node = aliased(node);
        let count = seen.counts.entry(node).or_default();
        if *count == 0 {
            seen.order.push(node);
        }
        *count += 1;
    }
    for input in node.inputs() {
        count_references(input, seen);
    }
}

/// What a chain of aliases names: `plan` below its aliases.
fn aliased(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => aliased(&alias.input),
        _ => plan,
    }
}

/// The chain of aliases `plan` starts with, over `subplan` in place of what it names.
fn realiased(plan: &LogicalPlan, subplan: LogicalPlan) -> Result<LogicalPlan> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => {
            Ok(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(realiased(&alias.input, subplan)?),
                alias.alias.clone(),
            )?))
        }
        _ => Ok(subplan),
    }
}

/// Whether `plan` (its subqueries too) evaluates a volatile function, whose value
/// each reference would draw afresh.
fn volatile(plan: &LogicalPlan) -> bool {
    let mut volatile = false;
    let walked = plan.apply_with_subqueries(|node| {
        volatile = node.expressions().iter().any(Expr::is_volatile);
        Ok(match volatile {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    volatile || walked.is_err()
}

/// Whether the scans of `a` and `b`, two equal plans, read the same table providers
/// (each scan its own source, perhaps, over one provider: the rollup rewrite's).
fn same_tables(a: &LogicalPlan, b: &LogicalPlan) -> bool {
    let providers = |plan: &LogicalPlan| {
        let mut providers = Vec::new();
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                providers.push(match source_as_provider(&scan.source) {
                    Ok(provider) => Arc::as_ptr(&provider) as *const () as usize,
                    Err(_) => Arc::as_ptr(&scan.source) as *const () as usize,
                });
            }
            Ok(TreeNodeRecursion::Continue)
        });
        providers
    };
    providers(a) == providers(b)
}

/// A subplan read by more than one reference; `id` tells the subplans of one plan
/// apart. `EXPLAIN` shows it as `Shared: subplan=ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct Shared {
    id: usize,
    input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for Shared {
    fn name(&self) -> &str {
        "Shared"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Shared: subplan={}", self.id)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 {
            return internal_err!("a shared subplan has one input");
        }
        Ok(Shared {
            id: self.id,
            input: inputs.swap_remove(0),
        })
    }
}

/// Plans [`Shared`] nodes, giving the readers of one subplan one [`Slot`]: one planner
/// per physical plan.
#[derive(Debug, Default)]
pub struct SharedPlanner {
    slots: Mutex<HashMap<usize, Arc<Slot>>>,
}

#[async_trait]
impl ExtensionPlanner for SharedPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(shared) = node.as_any().downcast_ref::<Shared>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("a shared subplan has one input");
        };
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(slots.entry(shared.id).or_default())
        };
        Ok(Some(Arc::new(SharedExec::new(
            shared.id,
            Arc::clone(input),
            slot,
        ))))
    }
}

/// The rows of a shared subplan, or why they could not be had.
type Rows = std::result::Result<Arc<Vec<RecordBatch>>, Arc<DataFusionError>>;

/// Where the readers of one subplan find its rows in one run: the computation the first
/// reader started, which every reader awaits.
#[derive(Default)]
pub struct Slot {
    rows: Mutex<Option<SharedFuture<BoxFuture<'static, Rows>>>>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Slot")
    }
}

/// The slots of one run's copy of a plan: the copies of one subplan's readers share
/// one new slot (see [`SharedExec::for_run`]).
#[derive(Debug, Default)]
pub struct RunSlots(HashMap<usize, Arc<Slot>>);

/// One reader of a shared subplan: all its rows, in one partition, computed by
/// whichever reader of the slot runs first. One partition in no particular order, so
/// that every reader reads the same rows however the physical optimizer partitioned
/// the subplan below each reader.
#[derive(Debug)]
pub struct SharedExec {
    id: usize,
    input: Arc<dyn ExecutionPlan>,
    slot: Arc<Slot>,
    properties: Arc<PlanProperties>,
}

impl SharedExec {
    /// This reader over `input` (a copy of its subplan) for one run's copy of the plan:
    /// the readers copied with the same `slots` share one new slot.
    pub fn for_run(
        &self,
        input: Arc<dyn ExecutionPlan>,
        slots: &mut RunSlots,
    ) -> Arc<dyn ExecutionPlan> {
        let key = Arc::as_ptr(&self.slot) as usize;
        let slot = Arc::clone(slots.0.entry(key).or_default());
        Arc::new(SharedExec {
            id: self.id,
            input,
            slot,
            properties: Arc::clone(&self.properties),
        })
    }

    fn new(id: usize, input: Arc<dyn ExecutionPlan>, slot: Arc<Slot>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        SharedExec {
            id,
            input,
            slot,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedExec: subplan={}", self.id)
    }
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &str {
        "SharedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    /// Its new input with the same slot: the physical optimizer's rewrites of each
    /// reader keep them one subplan's readers.
    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("SharedExec has one input");
        }
        Ok(Arc::new(SharedExec::new(
            self.id,
            children.swap_remove(0),
            Arc::clone(&self.slot),
        )))
    }

    /// A slot of its own: a plan re-run by DataFusion (a recursive query's) computes
    /// each reader's subplan for itself.
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SharedExec {
            id: self.id,
            input: Arc::clone(&self.input),
            slot: Arc::default(),
            properties: Arc::clone(&self.properties),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("SharedExec has one partition, not {partition}");
        }
        let rows = {
            let mut rows = self.slot.rows.lock().unwrap_or_else(|e| e.into_inner());
            let input = Arc::clone(&self.input);
            rows.get_or_insert_with(|| {
                async move {
                    match collect(input, context).await {
                        Ok(batches) => Ok(Arc::new(batches)),
                        Err(e) => Err(Arc::new(e)),
                    }
                }
                .boxed()
                .shared()
            })
            .clone()
        };
        let batches = futures::stream::once(rows).flat_map(|rows| {
            let batches: Vec<Result<RecordBatch>> = match rows {
                Ok(batches) => batches.iter().cloned().map(Ok).collect(),
                Err(e) => vec![Err(DataFusionError::Shared(e))],
            };
            futures::stream::iter(batches)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            batches,
        )))
    }
}

//! Bounds on what one query may take from a shared server: memory (one pool for the
//! whole server), time (a deadline that covers physical planning and every row sent),
//! cancellation, and the files it may touch (the warehouse's files, read-only).
//!
//! [`LimitedPlanner`] wraps DataFusion's planner: it refuses any plan that is not a
//! pure query and puts a [`LimitExec`] on top of the plan, whose stream ends the query
//! with an error at the deadline or on cancel. Dropping that stream stops the work
//! underneath, so a runaway query frees its threads and memory.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{cast, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::object_store::{
    self as object_store, local::LocalFileSystem, path::Path as ObjectPath, CopyOptions,
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::Notify;
use url::Url;

use super::budget::{BoundedPool, Budget};
use super::metrics::Metrics;
use super::policy;
use super::Shared;
use crate::storage::Warehouse;

/// The runtime every server session shares: one memory pool of `memory_limit`
/// bytes that also refuses once the heap is at the budget's ceiling, no spill files,
/// and files readable only under the warehouse (a directory or a bucket prefix) and the
/// configured `[[sources]]`; nothing writable.
pub fn runtime(
    budget: &Arc<Budget>,
    memory_limit: usize,
    warehouse: &Warehouse,
) -> Result<Arc<RuntimeEnv>> {
    let pool = BoundedPool::new(
        Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(memory_limit),
            NonZeroUsize::new(3).expect("non-zero"),
        )),
        Arc::clone(budget),
    );
    let registry = DefaultObjectStoreRegistry::new();
    // Local roots, and per bucket its store and the prefixes that may be read.
    let mut local_roots = Vec::new();
    let mut buckets: BTreeMap<String, (Arc<dyn ObjectStore>, Vec<ObjectPath>)> = BTreeMap::new();
    let external = |e: crate::Error| DataFusionError::External(Box::new(e));
    match warehouse.location().bucket() {
        None => local_roots.extend(warehouse.location().dir().map(|d| d.to_path_buf())),
        Some((url, store, prefix)) => {
            let entry = buckets
                .entry(bucket_of(url))
                .or_insert_with(|| (Arc::clone(store), Vec::new()));
            entry.1.push(prefix);
        }
    }
    for source in warehouse.sources() {
        let Some(url) = source.url() else {
            local_roots.push(source.location.clone());
            continue;
        };
        let store = match buckets.get(&bucket_of(&url)) {
            Some((store, _)) => Arc::clone(store),
            None => warehouse.storage().bucket_store(&url).map_err(external)?,
        };
        let entry = buckets
            .entry(bucket_of(&url))
            .or_insert((store, Vec::new()));
        entry.1.push(ObjectPath::from(url.path().trim_matches('/')));
    }
    for (bucket, (store, prefixes)) in buckets {
        let url = Url::parse(&bucket).map_err(|e| DataFusionError::External(Box::new(e)))?;
        registry.register_store(&url, Arc::new(Confined::new(store, prefixes, bucket)));
    }
    let local = Url::parse("file://").expect("file URL");
    registry.register_store(&local, Arc::new(Confined::local(&local_roots)?));
    RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        // No spilling: a server writes no temporary files, and the memory limit is a limit.
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .with_object_store_registry(Arc::new(registry))
        .build_arc()
}

/// `s3://BUCKET` of a URL in that bucket.
fn bucket_of(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

/// A store as a server sees it: read-only, and only under its roots. Whatever SQL
/// names, nothing else can be read and nothing written.
#[derive(Debug)]
struct Confined {
    inner: Arc<dyn ObjectStore>,
    roots: Vec<ObjectPath>,
    /// The store's name, for `Display`.
    name: String,
}

impl Confined {
    fn new(inner: Arc<dyn ObjectStore>, roots: Vec<ObjectPath>, name: String) -> Self {
        Confined { inner, roots, name }
    }

    /// The local file system under `dirs` (as given and with links resolved).
    fn local(dirs: &[std::path::PathBuf]) -> Result<Self> {
        let mut roots = Vec::new();
        for dir in dirs {
            let absolute = std::path::absolute(dir)?;
            for dir in [Some(absolute), std::fs::canonicalize(dir).ok()]
                .into_iter()
                .flatten()
            {
                let path = ObjectPath::from_absolute_path(&dir)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                roots.push(path);
            }
        }
        Ok(Confined::new(
            Arc::new(LocalFileSystem::new()),
            roots,
            "file://".into(),
        ))
    }

    fn check(&self, location: &ObjectPath) -> object_store::Result<()> {
        if self.roots.iter().any(|root| location.prefix_matches(root)) {
            Ok(())
        } else {
            Err(denied(location, "is outside the warehouse"))
        }
    }
}

fn denied(location: &ObjectPath, why: &str) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: location.to_string(),
        source: Box::new(policy::ReadOnly(format!(
            "kpidb serves only the warehouse's tables: /{location} {why}"
        ))),
    }
}

impl fmt::Display for Confined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Confined({}, {:?})", self.name, self.roots)
    }
}

#[async_trait]
impl ObjectStore for Confined {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(denied(location, "cannot be written"))
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(denied(location, "cannot be written"))
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        locations
            .map(|location| location.and_then(|l| Err(denied(&l, "cannot be deleted"))))
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        match prefix {
            Some(prefix) if self.check(prefix).is_ok() => self.inner.list(Some(prefix)),
            Some(prefix) => futures::stream::once(futures::future::ready(Err(denied(
                prefix,
                "is outside the warehouse",
            ))))
            .boxed(),
            None => futures::stream::once(futures::future::ready(Err(denied(
                &ObjectPath::default(),
                "is outside the warehouse",
            ))))
            .boxed(),
        }
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let prefix = prefix.cloned().unwrap_or_default();
        self.check(&prefix)?;
        self.inner.list_with_delimiter(Some(&prefix)).await
    }

    async fn copy_opts(
        &self,
        _from: &ObjectPath,
        to: &ObjectPath,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(denied(to, "cannot be written"))
    }
}

/// Per-session limits: the query timeout, the connection's cancel signal, and
/// where to count finished queries.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub cancel: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub protocol: &'static str,
}

/// Why a query was stopped.
#[derive(Debug)]
pub enum Stopped {
    Timeout(Duration),
    Cancelled,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Timeout(limit) => write!(
                f,
                "query stopped: it ran longer than the server's query_timeout of {}",
                humanize(*limit)
            ),
            Stopped::Cancelled => f.write_str("query cancelled at the client's request"),
        }
    }
}

impl std::error::Error for Stopped {}

fn humanize(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A client's query as [`plan_query`] planned it.
#[derive(Debug)]
pub struct Planned {
    pub plan: LogicalPlan,
    /// Whether `plan` is optimised already (kept, or made now), so running it needs
    /// no optimizer pass again.
    pub optimized: bool,
}

impl Planned {
    /// The rows of the plan, in `session`: an optimised plan is not optimised twice.
    pub async fn frame(self, session: &SessionContext) -> Result<DataFrame> {
        if self.optimized {
            Ok(crate::plans::frame(session.state(), self.plan))
        } else {
            session.execute_logical_plan(self.plan).await
        }
    }
}

/// Plans `statement` in `session` within `timeout`, and checks the plan is a pure
/// query ([`policy::verify`]). Both protocols plan client SQL through here. A query
/// without parameters comes back optimised, and is kept in `shared.plans` for the next
/// time the same statement comes under the same settings, relations and versions.
pub async fn plan_query(
    shared: &Shared,
    session: &SessionContext,
    statement: DFStatement,
    timeout: Duration,
) -> Result<Planned> {
    let state = session.state();
    let (lookup, kept) = shared
        .plans
        .lookup(&state, &statement, shared.engine.generation())
        .await;
    if let Some(plan) = kept {
        shared.metrics.plan_reused();
        return Ok(Planned {
            plan,
            optimized: true,
        });
    }
    let relations = crate::engine::relations_written(&statement);
    let plan = match tokio::time::timeout(timeout, state.statement_to_plan(statement)).await {
        Ok(plan) => plan.map_err(|e| crate::engine::name_missing_table(e, &relations))?,
        Err(_) => {
            return Err(DataFusionError::External(Box::new(Stopped::Timeout(
                timeout,
            ))))
        }
    };
    policy::verify(&plan)?;
    let Some(optimized) = promised_types(&state, &plan)? else {
        return Ok(Planned {
            plan,
            optimized: false,
        });
    };
    let optimized = shared
        .plans
        .keep(lookup, &plan, optimized, &shared.engine.generation());
    Ok(Planned {
        plan: optimized,
        optimized: true,
    })
}

/// `plan` optimised, answering in the column types its schema promises; `None` when
/// it takes parameters (types settle when they are bound) or does not optimise (the
/// same error comes, in its place, when it runs). Clients are told those types before
/// the rows come (a PostgreSQL column type), and a row of another type cannot be
/// sent; DataFusion's optimizer can change them, e.g. simplifying
/// `avg(CASE WHEN FALSE THEN 1 ELSE decimal_column END)` from float8 to numeric. When
/// it does, the optimized plan is returned under a projection casting back.
fn promised_types(state: &SessionState, plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    if !plan.get_parameter_types()?.is_empty() {
        return Ok(None);
    }
    let Ok(optimized) = state.optimize(plan) else {
        return Ok(None);
    };
    let promised = plan.schema();
    let actual = optimized.schema();
    if actual.fields().len() != promised.fields().len()
        || actual
            .fields()
            .iter()
            .zip(promised.fields())
            .all(|(a, p)| a.data_type() == p.data_type())
    {
        return Ok(Some(optimized));
    }
    let columns: Vec<Expr> = actual
        .iter()
        .zip(promised.iter())
        .map(|((qualifier, field), (_, wanted))| {
            let column = Expr::Column(datafusion::common::Column::from((qualifier, field)));
            let column = if field.data_type() == wanted.data_type() {
                column
            } else {
                cast(column, wanted.data_type().clone())
            };
            column.alias(wanted.name())
        })
        .collect();
    LogicalPlanBuilder::from(optimized)
        .project(columns)?
        .build()
        .map(Some)
}

#[derive(Debug)]
pub struct LimitedPlanner {
    limits: Limits,
}

impl LimitedPlanner {
    pub fn new(limits: Limits) -> Self {
        LimitedPlanner { limits }
    }
}

#[async_trait]
impl QueryPlanner for LimitedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        policy::verify(logical_plan)?;
        let started = Instant::now();
        let planning = crate::sizing::physical_plan(logical_plan, session);
        let plan = match tokio::time::timeout(self.limits.timeout, planning).await {
            Ok(plan) => plan?,
            Err(_) => {
                return Err(DataFusionError::External(Box::new(Stopped::Timeout(
                    self.limits.timeout,
                ))))
            }
        };
        Ok(Arc::new(LimitExec::new(plan, self.limits.clone(), started)))
    }
}

/// The top of every server plan: passes rows through until the deadline or a cancel.
#[derive(Debug)]
pub struct LimitExec {
    input: Arc<dyn ExecutionPlan>,
    limits: Limits,
    started: Instant,
}

impl LimitExec {
    fn new(input: Arc<dyn ExecutionPlan>, limits: Limits, started: Instant) -> Self {
        LimitExec {
            input,
            limits,
            started,
        }
    }
}

impl DisplayAs for LimitExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LimitExec: timeout={}", humanize(self.limits.timeout))
    }
}

impl ExecutionPlan for LimitExec {
    fn name(&self) -> &str {
        "LimitExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
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

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "LimitExec has exactly one child".into(),
            ));
        }
        Ok(Arc::new(LimitExec::new(
            children.swap_remove(0),
            self.limits.clone(),
            self.started,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.input.schema();
        let (input, work) = on_query_runtime(Arc::clone(&self.input), partition, context);
        let remaining = self.limits.timeout.saturating_sub(self.started.elapsed());
        let cancel = self.limits.cancel.clone();
        let timeout = self.limits.timeout;
        let stop = Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(remaining) => Stopped::Timeout(timeout),
                _ = cancel.notified() => Stopped::Cancelled,
            }
        });
        let stream = Limited {
            input,
            _work: work,
            stop,
            done: false,
            observer: Observer {
                metrics: self.limits.metrics.clone(),
                protocol: self.limits.protocol,
                started: self.started,
                finished: false,
            },
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

struct Limited {
    input: SendableRecordBatchStream,
    /// The query's work on the query runtime, stopped when this stream is dropped.
    _work: AbortOnDrop,
    stop: Pin<Box<dyn Future<Output = Stopped> + Send>>,
    done: bool,
    observer: Observer,
}

impl Stream for Limited {
    type Item = Result<datafusion::arrow::record_batch::RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(stopped) = self.stop.as_mut().poll(cx) {
            self.done = true;
            self.observer.finish(false);
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(stopped)))));
        }
        let next = self.input.poll_next_unpin(cx);
        match &next {
            Poll::Ready(None) => {
                self.done = true;
                self.observer.finish(true);
            }
            Poll::Ready(Some(Err(_))) => {
                self.done = true;
                self.observer.finish(false);
            }
            _ => {}
        }
        next
    }
}

/// The runtime queries run on: as many threads as cores, apart from the one that
/// accepts connections, keeps deadlines, answers cancels and moves bytes, so a query
/// that keeps every core busy cannot delay any of those, nor another client's turn.
fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("kpidb-query")
            .thread_stack_size(crate::THREAD_STACK)
            .enable_all()
            .build()
            .expect("the query runtime starts")
    })
}

/// Runs partition `partition` of `plan` on the query runtime; its batches come back
/// through a small channel, so the caller's runtime only moves them on.
fn on_query_runtime(
    plan: Arc<dyn ExecutionPlan>,
    partition: usize,
    context: Arc<TaskContext>,
) -> (SendableRecordBatchStream, AbortOnDrop) {
    let schema = plan.schema();
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let work = query_runtime().spawn(async move {
        // Executed here, so whatever the plan spawns runs here too.
        let mut stream = match plan.execute(partition, context) {
            Ok(stream) => stream,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        while let Some(item) = stream.next().await {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    let batches = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        Box::pin(RecordBatchStreamAdapter::new(schema, batches)),
        AbortOnDrop(work),
    )
}

/// Stops a query's work when its stream is dropped (finished, timed out, cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Makes every join yield its thread between batches: a join can produce batch after
/// batch without polling its inputs (a cross join of small tables), and so without
/// ever giving other queries, or its own deadline, a turn.
#[derive(Debug, Default)]
pub struct YieldingJoins;

impl PhysicalOptimizerRule for YieldingJoins {
    fn name(&self) -> &str {
        "YieldingJoins"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let join = node.is::<CrossJoinExec>()
                || node.is::<NestedLoopJoinExec>()
                || node.is::<HashJoinExec>()
                || node.is::<SortMergeJoinExec>()
                || node.is::<SymmetricHashJoinExec>();
            Ok(if join {
                Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>)
            } else {
                Transformed::no(node)
            })
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Records the query's duration when its stream ends, fails or is dropped.
struct Observer {
    metrics: Arc<Metrics>,
    protocol: &'static str,
    started: Instant,
    finished: bool,
}

impl Observer {
    fn finish(&mut self, ok: bool) {
        if !self.finished {
            self.finished = true;
            self.metrics
                .query_finished(self.protocol, self.started.elapsed(), ok);
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_files_are_readable_only_inside_the_warehouse() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = dir.path().join("warehouse");
        let opened = Warehouse::init(&warehouse).await.unwrap();
        std::fs::write(warehouse.join("inside.txt"), "ok").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
        let runtime = runtime(&Budget::new(64 << 20), 64 << 20, &opened).unwrap();
        let store = runtime
            .object_store_registry
            .get_store(&Url::parse("file:///").unwrap())
            .unwrap();
        let inside = ObjectPath::from_absolute_path(warehouse.join("inside.txt")).unwrap();
        let outside = ObjectPath::from_absolute_path(dir.path().join("outside.txt")).unwrap();
        assert!(store.get_opts(&inside, GetOptions::default()).await.is_ok());
        let err = store
            .get_opts(&outside, GetOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("outside the warehouse"), "{err}");
        let err = store
            .put_opts(&inside, PutPayload::from("x"), PutOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot be written"), "{err}");
        assert!(store.list(None).next().await.unwrap().is_err());
    }
}

//! An executor lost in the middle of a job. Ballista 55 rolls a running stage back
//! when an executor it read from is lost, and runs all of that stage's partitions
//! again; but what the first attempt had already handed to the next stage stays
//! there, so the next stage reads those partitions twice and the job "succeeds" with
//! a wrong answer. kpidb never lets that answer out:
//!
//! - on the scheduler, [`RerunGuard`] reports a job failed, with Ballista's own
//!   executor-loss words, when it finishes after any of its stages ran a second
//!   attempt; and a shuffle fetch failure fails its job at once
//!   ([`STAGE_MAX_FAILURES`]) instead of rolling the stage back;
//! - on the client, [`RunAgain`] runs such a failed job once more from the start,
//!   as a new job on the executors that are left, before any row has been returned.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use ballista_core::error::Result as BallistaResult;
use ballista_core::serde::protobuf::{job_status, task_status, FailedTask, JobStatus};
use ballista_core::{JobId, JobStatusSubscriber};
use ballista_scheduler::cluster::{JobState, JobStateEventStream};
use ballista_scheduler::state::execution_graph::ExecutionGraphBox;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::{StreamExt, TryStreamExt};

/// Stage attempts before a job fails: one, so that a shuffle fetch failure fails the
/// job (Ballista's "Shuffle fetch partition error from Executor …") rather than
/// rolling its stage back.
pub const STAGE_MAX_FAILURES: usize = 1;

/// Words only [`RerunGuard`] puts in a job's failure, which [`RunAgain`] looks for.
const RAN_AGAIN: &str = "ran again after handing on part of their output";

/// The scheduler's job store, with jobs whose stages ran twice reported failed.
pub struct RerunGuard {
    inner: Arc<dyn JobState>,
}

impl RerunGuard {
    pub fn new(inner: Arc<dyn JobState>) -> Self {
        RerunGuard { inner }
    }
}

fn attempt(stage: &ExecutionStage) -> usize {
    match stage {
        ExecutionStage::UnResolved(s) => s.stage_attempt_num,
        ExecutionStage::Resolved(s) => s.stage_attempt_num,
        ExecutionStage::Running(s) => s.stage_attempt_num,
        ExecutionStage::Successful(s) => s.stage_attempt_num,
        ExecutionStage::Failed(s) => s.stage_attempt_num,
    }
}

/// The executor a lost task names ("Task failure due to Executor X lost"), if any.
fn lost_executor(graph: &ExecutionGraphBox) -> String {
    let marker = "Task failure due to Executor ";
    graph
        .stages()
        .values()
        .filter_map(|s| s.task_infos())
        .flatten()
        .find_map(|t| match &t.task_status {
            task_status::Status::Failed(FailedTask { error, .. }) => error
                .split(marker)
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| "(unknown)".to_owned())
}

/// Why a job that says it succeeded must fail: a stage of it ran a second attempt.
fn ran_twice(graph: &ExecutionGraphBox) -> Option<String> {
    if !matches!(
        graph.status().status,
        Some(job_status::Status::Successful(_))
    ) {
        return None;
    }
    let mut stages: Vec<usize> = graph
        .stages()
        .iter()
        .filter(|(_, s)| attempt(s) > 0)
        .map(|(id, _)| *id)
        .collect();
    if stages.is_empty() {
        return None;
    }
    stages.sort_unstable();
    Some(format!(
        "Task failure due to Executor {} lost (stages {stages:?} of this job {RAN_AGAIN}, \
         which would be read twice; the job is failed rather than answer wrong)",
        lost_executor(graph)
    ))
}

#[async_trait::async_trait]
impl JobState for RerunGuard {
    async fn save_job(&self, job_id: &JobId, graph: &ExecutionGraphBox) -> BallistaResult<()> {
        match ran_twice(graph) {
            Some(message) => {
                log::warn!("job {job_id}: {message}");
                let mut failed = graph.cloned();
                failed.fail_job(message);
                self.inner.save_job(job_id, &failed).await
            }
            None => self.inner.save_job(job_id, graph).await,
        }
    }

    fn accept_job(&self, job_id: &JobId, job_name: &str, queued_at: u64) -> BallistaResult<()> {
        self.inner.accept_job(job_id, job_name, queued_at)
    }
    fn pending_job_number(&self) -> usize {
        self.inner.pending_job_number()
    }
    async fn submit_job(
        &self,
        job_id: JobId,
        graph: &ExecutionGraphBox,
        subscriber: Option<JobStatusSubscriber>,
    ) -> BallistaResult<()> {
        self.inner.submit_job(job_id, graph, subscriber).await
    }
    async fn get_jobs(&self) -> BallistaResult<HashSet<JobId>> {
        self.inner.get_jobs().await
    }
    async fn get_all_jobs(&self) -> BallistaResult<HashSet<JobId>> {
        self.inner.get_all_jobs().await
    }
    async fn get_job_status(&self, job_id: &JobId) -> BallistaResult<Option<JobStatus>> {
        self.inner.get_job_status(job_id).await
    }
    async fn get_execution_graph(
        &self,
        job_id: &JobId,
    ) -> BallistaResult<Option<ExecutionGraphBox>> {
        self.inner.get_execution_graph(job_id).await
    }
    async fn fail_unscheduled_job(&self, job_id: &JobId, reason: String) -> BallistaResult<()> {
        self.inner.fail_unscheduled_job(job_id, reason).await
    }
    async fn remove_job(&self, job_id: &JobId) -> BallistaResult<()> {
        self.inner.remove_job(job_id).await
    }
    async fn try_acquire_job(&self, job_id: &JobId) -> BallistaResult<Option<ExecutionGraphBox>> {
        self.inner.try_acquire_job(job_id).await
    }
    async fn job_state_events(&self) -> BallistaResult<JobStateEventStream> {
        self.inner.job_state_events().await
    }
    async fn create_or_update_session(
        &self,
        session_id: &str,
        config: &SessionConfig,
    ) -> BallistaResult<Arc<SessionContext>> {
        self.inner
            .create_or_update_session(session_id, config)
            .await
    }
    async fn remove_session(&self, session_id: &str) -> BallistaResult<()> {
        self.inner.remove_session(session_id).await
    }
    fn produce_config(&self) -> SessionConfig {
        self.inner.produce_config()
    }
}

/// A cluster job that runs once more, as a new job, when the scheduler failed it
/// because an executor was lost while it ran. Nothing has been returned by then: a
/// failed job hands out no rows.
#[derive(Debug)]
pub struct RunAgain {
    job: Arc<dyn ExecutionPlan>,
}

impl RunAgain {
    pub fn around(job: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(RunAgain { job })
    }
}

/// Whether `error` is a job failed for an executor lost while it ran.
fn lost_mid_job(error: &DataFusionError) -> bool {
    let text = error.to_string();
    text.contains(RAN_AGAIN) || text.contains("Shuffle fetch partition error from Executor")
}

impl DisplayAs for RunAgain {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunAgainOnExecutorLoss")
    }
}

impl ExecutionPlan for RunAgain {
    fn name(&self) -> &str {
        "RunAgainOnExecutorLoss"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        self.job.properties()
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.job]
    }
    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(RunAgain::around(children.swap_remove(0)))
    }
    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let first = self.job.execute(partition, context.clone())?;
        let job = self.job.clone();
        let schema = first.schema();
        let rows = futures::stream::once(async move {
            let mut first = first.peekable();
            let failed = matches!(
                std::pin::Pin::new(&mut first).peek().await,
                Some(Err(e)) if lost_mid_job(e)
            );
            if failed {
                log::warn!("an executor was lost while the job ran; running it again");
                Ok::<_, DataFusionError>(job.execute(partition, context)?.boxed())
            } else {
                Ok(first.boxed())
            }
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
    }
}

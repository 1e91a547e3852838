//! Which plans go to the cluster. A plan that reads warehouse tables, and only
//! them, runs there; one that reads nothing (`SELECT 1`) or reads what lives only in
//! this session (information_schema, pg_catalog for BI tools) runs here, as Ballista
//! itself does for information_schema.

use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::extension::SessionConfigExt;
use ballista_core::planner::BallistaQueryPlanner;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Result;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_proto::protobuf::LogicalPlanNode;

use super::codec::shippable;

pub struct ClusterPlanner {
    remote: BallistaQueryPlanner<LogicalPlanNode>,
    local: DefaultPhysicalPlanner,
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterPlanner")
    }
}

impl ClusterPlanner {
    /// Plans for the scheduler at `endpoint`, with the codec and settings of `state`.
    pub fn new(endpoint: String, state: &SessionState) -> Self {
        let config = state.config().clone().upgrade_for_ballista();
        ClusterPlanner {
            remote: BallistaQueryPlanner::with_extension(
                endpoint,
                config.ballista_config(),
                config.ballista_logical_extension_codec(),
            ),
            local: DefaultPhysicalPlanner::default(),
        }
    }
}

/// Whether `plan` reads at least one table and every table it reads can be shipped.
pub fn runs_on_cluster(plan: &LogicalPlan) -> bool {
    let (mut shipped, mut local) = (false, false);
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let ok = source_as_provider(&scan.source)
                .map(|provider| shippable(&provider).is_ok())
                .unwrap_or(false);
            if ok {
                shipped = true;
            } else {
                local = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    shipped && !local
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if runs_on_cluster(plan) {
            let job = self.remote.create_physical_plan(plan, state).await?;
            Ok(super::lost::RunAgain::around(job))
        } else {
            self.local.create_physical_plan(plan, state).await
        }
    }
}

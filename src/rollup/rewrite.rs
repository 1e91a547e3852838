//! Plain SQL reads the rollups too: an optimizer rule that answers an aggregate over
//! dept_scores from `dept_totals` when the rollup is fresh for the versions the
//! session reads and can answer it exactly.
//!
//! It fires on `Aggregate` over `dept_scores` (through filters and plain projections)
//! when every grouping column and every column a filter reads is `year` or
//! `dept_code`, and every aggregate is `sum(score)`, `count(*)` or `count(<a column
//! that is never NULL>)` without DISTINCT, FILTER or ORDER BY: a sum of sums and a sum
//! of counts are the same numbers. The rollup's rows are renamed to look like
//! dept_scores' (`dept_scores.year`, `dept_scores.dept_code`), so every expression
//! above stays as it was, and each result keeps its name and type. `EXPLAIN` shows
//! the rollup's scan (`kpidb_rollup.public.dept_totals`) when it fires.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::functions_aggregate::sum::sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    cast, col, Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, TableScan,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::Rollups;

/// The columns a dept_totals row keeps of dept_scores'.
const KEPT: &[&str] = &["year", "dept_code"];

/// Rewrites aggregates over dept_scores onto the fresh dept_totals rollup.
#[derive(Debug)]
pub struct ReadRollups {
    rollups: Arc<Rollups>,
}

impl ReadRollups {
    pub fn new(rollups: Arc<Rollups>) -> Self {
        ReadRollups { rollups }
    }
}

impl OptimizerRule for ReadRollups {
    fn name(&self) -> &str {
        "kpidb_read_rollups"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match self.answer(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// What lies between the aggregate and the scan, kept in the rewritten plan.
enum Step {
    Filter(Expr),
    Alias(TableReference),
}

impl ReadRollups {
    fn answer(&self, aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
        // Down to the scan through filters, aliases (`FROM dept_scores s`) and
        // projections of plain columns, keeping the filters and aliases (top first).
        let mut steps = Vec::new();
        let mut node = aggregate.input.as_ref();
        let scan: &TableScan = loop {
            match node {
                LogicalPlan::Filter(filter) if reads_only_kept(&filter.predicate) => {
                    steps.push(Step::Filter(filter.predicate.clone()));
                    node = filter.input.as_ref();
                }
                LogicalPlan::SubqueryAlias(alias) => {
                    steps.push(Step::Alias(alias.alias.clone()));
                    node = alias.input.as_ref();
                }
                LogicalPlan::Projection(projection)
                    if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
                {
                    node = projection.input.as_ref();
                }
                LogicalPlan::TableScan(scan) if scan.table_name.table() == "dept_scores" => {
                    break scan;
                }
                _ => return Ok(None),
            }
        };
        if scan.fetch.is_some() || !scan.filters.iter().all(reads_only_kept) {
            return Ok(None);
        }
        if !aggregate.group_expr.iter().all(is_kept_column) {
            return Ok(None);
        }
        // Each aggregate as one over the rollup, cast back to the original type.
        let groups = aggregate.group_expr.len();
        let mut measures = Vec::with_capacity(aggregate.aggr_expr.len());
        for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
            let field = aggregate.schema.field(groups + i);
            let Some(over_rollup) = measure(expr) else {
                return Ok(None);
            };
            measures.push(cast(over_rollup, field.data_type().clone()).alias(field.name()));
        }
        let Some(provider) = self.rollups.fresh("dept_totals") else {
            return Ok(None);
        };
        // The rollup's rows under dept_scores' name, so the expressions above resolve.
        let rollup = TableReference::full(super::CATALOG, "public", "dept_totals");
        let mut builder = LogicalPlanBuilder::scan(rollup, provider_as_source(provider), None)?
            .project(vec![
                col("year"),
                col("dept_code"),
                col("total_score"),
                col("indicators_scored"),
            ])?
            .alias(scan.table_name.clone())?;
        for filter in scan.filters.iter().cloned() {
            builder = builder.filter(filter)?;
        }
        for step in steps.into_iter().rev() {
            builder = match step {
                Step::Filter(predicate) => builder.filter(predicate)?,
                Step::Alias(name) => builder.alias(name)?,
            };
        }
        let rewritten = builder
            .aggregate(aggregate.group_expr.clone(), measures)?
            .build()?;
        Ok(Some(rewritten))
    }
}

fn is_kept_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(Column { name, .. }) if KEPT.contains(&name.as_str()))
}

fn reads_only_kept(expr: &Expr) -> bool {
    expr.column_refs()
        .iter()
        .all(|c| KEPT.contains(&c.name.as_str()))
}

/// `expr` (an aggregate of dept_scores) as an aggregate of dept_totals, if it has one.
fn measure(expr: &Expr) -> Option<Expr> {
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr.clone().unalias() else {
        return None;
    };
    if params.distinct || params.filter.is_some() || !params.order_by.is_empty() {
        return None;
    }
    let total = |name: &str| Expr::Column(Column::new_unqualified(name));
    match (func.name(), params.args.as_slice()) {
        ("sum", [Expr::Column(c)]) if c.name == "score" => Some(sum(total("total_score"))),
        // count(*) is count(1); every column of dept_scores is required (never NULL).
        ("count", [Expr::Literal(..)]) => Some(sum(total("indicators_scored"))),
        ("count", [Expr::Column(c)])
            if crate::model::DEPT_SCORES
                .columns
                .iter()
                .any(|k| k.name == c.name && k.required) =>
        {
            Some(sum(total("indicators_scored")))
        }
        _ => None,
    }
}

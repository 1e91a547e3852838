//! Plain SQL reads the rollups too: an optimizer rule that answers an aggregate over
//! dept_scores from `dept_totals` when the rollup is fresh for the versions the
//! session reads and can answer it exactly.
//!
//! It fires on `Aggregate` over `dept_scores` (through filters and plain projections)
//! when every grouping column and every column a filter reads is `year` or
//! `dept_code`, and every aggregate is `sum(score)`, `sum(max_score)`, `min`/`max` of
//! `score`, `year` or `dept_code`, `count(*)` or `count(<a column that is never
//! NULL>)` without DISTINCT, FILTER or ORDER BY: a sum of sums, a sum of counts and
//! the least of least values are the same numbers. The rollup's rows are renamed to
//! look like dept_scores' (`dept_scores.year`, `dept_scores.dept_code`), so every
//! expression above stays as it was, and each result keeps its name and type. Grouped
//! by both year and dept_code, each group is one rollup row, and the aggregate becomes
//! a projection of that row's columns (no aggregation at all). `EXPLAIN` shows the
//! rollup's scan (`kpidb_rollup.public.dept_totals`) when it fires.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::functions_aggregate::sum::sum;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{
    cast, col, lit, Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, TableScan,
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
        let rewritten = match &plan {
            LogicalPlan::Window(window) => self.answer_ranked(window)?,
            LogicalPlan::Aggregate(aggregate) => match self.answer(aggregate)? {
                Some(rewritten) => Some(rewritten),
                None => self.answer_by_level2(aggregate)?,
            },
            _ => None,
        };
        match rewritten {
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
            let Some(over_rollup) = Measure::of(expr).map(Measure::over_rows) else {
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
                col("total_max_score"),
                col("lowest_score"),
                col("highest_score"),
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
        // Grouped by the rollup's whole key, each group is one rollup row: its columns
        // are the answer, without aggregating again.
        if covers_key(aggregate) {
            if let Some(rows) = one_row_per_group(builder.clone(), aggregate)? {
                return Ok(Some(rows));
            }
        }
        let rewritten = builder
            .aggregate(aggregate.group_expr.clone(), measures)?
            .build()?;
        Ok(Some(rewritten))
    }
}

/// Whether `aggregate` groups by every column of dept_totals' key (year, dept_code).
fn covers_key(aggregate: &Aggregate) -> bool {
    KEPT.iter().all(|key| {
        aggregate
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::Column(c) if c.name == *key))
    })
}

/// `aggregate` answered by a projection of the rollup's rows (`rows`), one row per
/// group, when every measure is a column of that row and the columns come out the
/// same as the aggregate's.
fn one_row_per_group(
    rows: LogicalPlanBuilder,
    aggregate: &Aggregate,
) -> Result<Option<LogicalPlan>> {
    let groups = aggregate.group_expr.len();
    let mut exprs = aggregate.group_expr.clone();
    for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
        let Some(value) = Measure::of(expr).map(Measure::of_row) else {
            return Ok(None);
        };
        let (qualifier, field) = aggregate.schema.qualified_field(groups + i);
        exprs.push(
            cast(value, field.data_type().clone())
                .alias_qualified(qualifier.cloned(), field.name()),
        );
    }
    let plan = rows.project(exprs)?.build()?;
    let same = aggregate.schema.fields().len() == plan.schema().fields().len()
        && leads_with(plan.schema(), &aggregate.schema);
    Ok(same.then_some(plan))
}

/// Whether the first columns of `schema` are those of `columns`: the same names under
/// the same qualifiers, of the same types (a rewrite's plan against the node it replaces).
pub(super) fn leads_with(schema: &DFSchema, columns: &DFSchema) -> bool {
    schema.fields().len() >= columns.fields().len()
        && columns
            .iter()
            .zip(schema.iter())
            .all(|((q1, f1), (q2, f2))| {
                q1 == q2 && f1.name() == f2.name() && f1.data_type() == f2.data_type()
            })
}

/// The columns a level2_totals row keeps: of dept_scores, and of indicators.
const SCORE_SIDE: &[&str] = &["year", "dept_code"];
const INDICATOR_SIDE: &[&str] = &["level1", "level2"];

/// One side of a join down to its scan: the scan, the name its columns go by above
/// (an alias, or the table's name), and the filters on the way.
struct Side<'a> {
    scan: &'a TableScan,
    qualifier: TableReference,
    filters: Vec<Expr>,
}

fn side(mut node: &LogicalPlan) -> Option<Side<'_>> {
    let mut alias = None;
    let mut filters = Vec::new();
    loop {
        match node {
            LogicalPlan::SubqueryAlias(a) if alias.is_none() => {
                alias = Some(a.alias.clone());
                node = a.input.as_ref();
            }
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                node = p.input.as_ref();
            }
            LogicalPlan::Filter(f) => {
                filters.push(f.predicate.clone());
                node = f.input.as_ref();
            }
            LogicalPlan::TableScan(scan) if scan.fetch.is_none() => {
                filters.extend(scan.filters.iter().cloned());
                return Some(Side {
                    scan,
                    qualifier: alias.unwrap_or_else(|| scan.table_name.clone()),
                    filters,
                });
            }
            _ => return None,
        }
    }
}

/// Whether `expr` is `framework = 'dept'`: level2_totals holds the dept framework's
/// indicators, the only ones dept_scores refers to.
fn is_dept_framework(expr: &Expr) -> bool {
    let Expr::BinaryExpr(binary) = expr else {
        return false;
    };
    let is_framework =
        |e: &Expr| matches!(e.clone().unalias(), Expr::Column(c) if c.name == "framework");
    let is_dept = |e: &Expr| match e {
        Expr::Literal(value, _) => value.to_string() == "dept",
        Expr::Cast(c) => matches!(c.expr.as_ref(), Expr::Literal(v, _) if v.to_string() == "dept"),
        _ => false,
    };
    binary.op == datafusion::logical_expr::Operator::Eq
        && ((is_framework(&binary.left) && is_dept(&binary.right))
            || (is_dept(&binary.left) && is_framework(&binary.right)))
}

/// An aggregate over dept_scores joined to indicators that level2_totals can answer,
/// taken apart: the names each side goes by above the join, the filters on the way
/// (naming those sides), what each aggregate sums, and the fresh rollup.
pub(super) struct Level2Query {
    pub scores: TableReference,
    pub indicators: TableReference,
    pub filters: Vec<Expr>,
    /// Per aggregate expression: the dept_scores column it sums (`score`, `max_score`).
    pub summed: Vec<String>,
    provider: Arc<dyn TableProvider>,
}

impl Level2Query {
    /// The rollup's rows under the names each side's columns go by above the join,
    /// filtered; with the stored rank from the bottom as `rank` when asked for.
    pub fn rows(&self, rank: Option<&str>) -> Result<LogicalPlanBuilder> {
        let named =
            |name: &str, side: &TableReference| col(name).alias_qualified(Some(side.clone()), name);
        let mut columns = vec![
            named("year", &self.scores),
            named("dept_code", &self.scores),
            named("level1", &self.indicators),
            named("level2", &self.indicators),
            named("score", &self.scores),
            named("max_score", &self.scores),
        ];
        if let Some(rank) = rank {
            columns.push(col("rank_from_bottom").alias(rank));
        }
        let rollup = TableReference::full(super::CATALOG, "public", "level2_totals");
        let mut builder =
            LogicalPlanBuilder::scan(rollup, provider_as_source(Arc::clone(&self.provider)), None)?
                .project(columns)?;
        for filter in &self.filters {
            builder = builder.filter(filter.clone())?;
        }
        Ok(builder)
    }
}

impl ReadRollups {
    /// An aggregate over dept_scores joined to indicators on indicator_code, grouped
    /// and filtered by year, dept_code, level1 and level2, summing score and
    /// max_score: answered from level2_totals.
    fn answer_by_level2(&self, aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
        let Some(query) = self.level2_query(aggregate)? else {
            return Ok(None);
        };
        let groups = aggregate.group_expr.len();
        let measures = query.summed.iter().enumerate().map(|(i, summed)| {
            let field = aggregate.schema.field(groups + i);
            let over = sum(Expr::Column(Column::new(
                Some(query.scores.clone()),
                summed,
            )));
            cast(over, field.data_type().clone()).alias(field.name())
        });
        let rewritten = query
            .rows(None)?
            .aggregate(aggregate.group_expr.clone(), measures)?
            .build()?;
        Ok(Some(rewritten))
    }

    /// `aggregate` taken apart, when level2_totals can answer it and is fresh.
    pub(super) fn level2_query(&self, aggregate: &Aggregate) -> Result<Option<Level2Query>> {
        let mut filters = Vec::new();
        let mut node = aggregate.input.as_ref();
        let join = loop {
            match node {
                LogicalPlan::Filter(f) => {
                    filters.push(f.predicate.clone());
                    node = f.input.as_ref();
                }
                LogicalPlan::Projection(p)
                    if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
                {
                    node = p.input.as_ref();
                }
                LogicalPlan::Join(join) => break join,
                _ => return Ok(None),
            }
        };
        let keyed_on_indicator = matches!(
            join.on.as_slice(),
            [(Expr::Column(a), Expr::Column(b))]
                if a.name == "indicator_code" && b.name == "indicator_code"
        );
        if join.join_type != datafusion::logical_expr::JoinType::Inner
            || join.filter.is_some()
            || !keyed_on_indicator
        {
            return Ok(None);
        }
        let (Some(left), Some(right)) = (side(&join.left), side(&join.right)) else {
            return Ok(None);
        };
        let (scores, indicators) =
            match (left.scan.table_name.table(), right.scan.table_name.table()) {
                ("dept_scores", "indicators") => (left, right),
                ("indicators", "dept_scores") => (right, left),
                _ => return Ok(None),
            };
        filters.extend(scores.filters.iter().cloned());
        filters.extend(indicators.filters.iter().cloned());
        filters.retain(|f| !is_dept_framework(f));
        let kept = |name: &str| SCORE_SIDE.contains(&name) || INDICATOR_SIDE.contains(&name);
        if !filters
            .iter()
            .all(|f| f.column_refs().iter().all(|c| kept(&c.name)))
            || !aggregate
                .group_expr
                .iter()
                .all(|e| matches!(e, Expr::Column(c) if kept(&c.name)))
        {
            return Ok(None);
        }
        let mut summed = Vec::with_capacity(aggregate.aggr_expr.len());
        for expr in &aggregate.aggr_expr {
            let Expr::AggregateFunction(AggregateFunction { func, params }) =
                expr.clone().unalias()
            else {
                return Ok(None);
            };
            match params.args.as_slice() {
                [Expr::Column(c)] if c.name == "score" || c.name == "max_score" => {
                    summed.push(c.name.clone())
                }
                _ => return Ok(None),
            };
            if func.name() != "sum"
                || params.distinct
                || params.filter.is_some()
                || !params.order_by.is_empty()
            {
                return Ok(None);
            }
        }
        let Some(provider) = self.rollups.fresh("level2_totals") else {
            return Ok(None);
        };
        // Below an alias the scan's filters name the table; name the side instead.
        let filters = filters
            .into_iter()
            .map(|filter| {
                filter
                    .transform(|e| {
                        Ok(match e {
                            Expr::Column(c) => {
                                let side = match SCORE_SIDE.contains(&c.name.as_str()) {
                                    true => &scores.qualifier,
                                    false => &indicators.qualifier,
                                };
                                Transformed::yes(Expr::Column(Column::new(
                                    Some(side.clone()),
                                    c.name,
                                )))
                            }
                            other => Transformed::no(other),
                        })
                    })
                    .map(|t| t.data)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Level2Query {
            scores: scores.qualifier,
            indicators: indicators.qualifier,
            filters,
            summed,
            provider,
        }))
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

/// An aggregate of dept_scores in dept_totals' terms.
enum Measure {
    /// The sum of a rollup column (`sum(score)` is the sum of `total_score`).
    Sum(&'static str),
    /// The least of a rollup column.
    Min(&'static str),
    /// The greatest of a rollup column.
    Max(&'static str),
    /// `count(*)`, or the count of a column that is never NULL: the sum of `indicators_scored`.
    Count,
    /// `min` / `max` of a key column: every rollup row stands for at least one score of
    /// its year and department, so the same aggregate over the rollup's rows.
    OfKey(Expr, Column),
}

impl Measure {
    /// `expr` (an aggregate of dept_scores) in dept_totals' terms, if it has them.
    fn of(expr: &Expr) -> Option<Measure> {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = expr.clone().unalias()
        else {
            return None;
        };
        if params.distinct || params.filter.is_some() || !params.order_by.is_empty() {
            return None;
        }
        let never_null = |name: &str| {
            crate::model::DEPT_SCORES
                .columns
                .iter()
                .any(|k| k.name == name && k.required)
        };
        match (func.name(), params.args.as_slice()) {
            ("sum", [Expr::Column(c)]) if c.name == "score" => Some(Measure::Sum("total_score")),
            ("sum", [Expr::Column(c)]) if c.name == "max_score" => {
                Some(Measure::Sum("total_max_score"))
            }
            ("min", [Expr::Column(c)]) if c.name == "score" => Some(Measure::Min("lowest_score")),
            ("max", [Expr::Column(c)]) if c.name == "score" => Some(Measure::Max("highest_score")),
            ("min" | "max", [Expr::Column(c)]) if KEPT.contains(&c.name.as_str()) => {
                Some(Measure::OfKey(expr.clone().unalias(), c.clone()))
            }
            // count(*) is count(1); count(NULL) is 0 and stays on the raw scores.
            ("count", [Expr::Literal(value, _)]) if !value.is_null() => Some(Measure::Count),
            ("count", [Expr::Column(c)]) if never_null(&c.name) => Some(Measure::Count),
            _ => None,
        }
    }

    /// The aggregate over the rollup's rows.
    fn over_rows(self) -> Expr {
        let total = |name: &str| Expr::Column(Column::new_unqualified(name));
        match self {
            Measure::Sum(name) => sum(total(name)),
            Measure::Min(name) => min(total(name)),
            Measure::Max(name) => max(total(name)),
            // A count over no rows is 0, where the sum of the rollup's counts is NULL.
            Measure::Count => coalesce(vec![
                cast(sum(total("indicators_scored")), DataType::Int64),
                lit(0i64),
            ]),
            Measure::OfKey(aggregate, _) => aggregate,
        }
    }

    /// The value for one group of the rollup's key: a column of its one row.
    fn of_row(self) -> Expr {
        let total = |name: &str| Expr::Column(Column::new_unqualified(name));
        match self {
            Measure::Sum(name) | Measure::Min(name) | Measure::Max(name) => total(name),
            Measure::Count => cast(total("indicators_scored"), DataType::Int64),
            Measure::OfKey(_, column) => Expr::Column(column),
        }
    }
}

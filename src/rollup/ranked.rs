//! Plain SQL's bottom n per level-2 indicator reads the ranks level2_totals stores.
//!
//! `RANK() OVER (PARTITION BY level1, level2 ORDER BY <the score rate> ASC)` over the
//! level-2 subtotals of one year, each department's score and max_score summed over
//! the dept_scores ⋈ indicators join, is exactly the `rank_from_bottom` column of
//! level2_totals, which is ranked the same way when a year is written. The window is
//! then replaced by a projection of that column, and a filter on it (`rank <= 3`)
//! reaches the rollup's scan, whose rows are stored lowest rank first.
//!
//! It fires when, between the window and the aggregate, there are only projections and
//! aliases; the aggregate is one level2_totals answers ([`ReadRollups::level2_query`])
//! grouped by exactly level1, level2 and dept_code (and year); the rows are those of
//! one year (a `year = <literal>` filter, or year among the groups and the partition);
//! no filter reads dept_code (a filter on departments would change the ranks); the
//! window is a single `RANK()` partitioned by level1, level2 (and year) and ordered
//! ascending, nulls last, by the rate in a form that orders and ties exactly as
//! `score_rate` does: `score_rate(score, max_score)`, or
//! `CASE WHEN max_score = 0 THEN NULL ELSE CAST(score * k AS DOUBLE) / CAST(max_score * k
//! AS DOUBLE) END` with `k` a whole multiple of 10^scale, which divides the same two
//! whole numbers once. Anything else keeps its window (over the rollup's subtotals
//! when [`ReadRollups`] answers the aggregate). `EXPLAIN` shows no window operator and
//! `rank_from_bottom` read from `kpidb_rollup.public.level2_totals` when it fires.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Case, WindowFunction};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    cast, Aggregate, BinaryExpr, Expr, LogicalPlan, Operator, Projection, SubqueryAlias, Window,
};

use super::rewrite::{leads_with, Level2Query, ReadRollups};

/// The name the stored rank goes by between the rollup's scan and the window it replaces.
const RANK: &str = "__kpidb_rank_from_bottom";

/// What the aggregate's measures are called once an expression is taken down to it.
const SUM_SCORE: &str = "sum(score)";
const SUM_MAX_SCORE: &str = "sum(max_score)";

impl ReadRollups {
    /// `window` with its rank read from level2_totals, when that is the same rank.
    pub(super) fn answer_ranked(&self, window: &Window) -> Result<Option<LogicalPlan>> {
        let [expr] = window.window_expr.as_slice() else {
            return Ok(None);
        };
        let Expr::WindowFunction(function) = bare(expr) else {
            return Ok(None);
        };
        let WindowFunction { fun, params } = function.as_ref();
        let [order] = params.order_by.as_slice() else {
            return Ok(None);
        };
        if fun.name() != "rank"
            || !params.args.is_empty()
            || params.filter.is_some()
            || params.distinct
            || !order.asc
            || order.nulls_first
        {
            return Ok(None);
        }
        // Down to the aggregate through projections and aliases only: any filter or
        // limit in between would change which rows are ranked.
        let mut between = Vec::new();
        let mut node = window.input.as_ref();
        let aggregate = loop {
            match node {
                LogicalPlan::Projection(p) => {
                    between.push(node);
                    node = p.input.as_ref();
                }
                LogicalPlan::SubqueryAlias(a) => {
                    between.push(node);
                    node = a.input.as_ref();
                }
                LogicalPlan::Aggregate(a) => break a,
                _ => return Ok(None),
            }
        };
        let Some(query) = self.level2_query(aggregate)? else {
            return Ok(None);
        };
        if !self.ranks_alike(window, aggregate, &query, &params.partition_by, &order.expr)? {
            return Ok(None);
        }
        let Some(rows) = rows_with_rank(aggregate, &query)? else {
            return Ok(None);
        };
        // Every node between carries the rank up beside its own columns.
        let mut plan = rows;
        for node in between.into_iter().rev() {
            plan = carry_rank(node, plan)?;
        }
        // The window's columns: its input's, then the stored rank as the window's.
        let input = window.input.schema();
        let mut exprs: Vec<Expr> = (0..input.fields().len())
            .map(|i| Expr::Column(Column::from(input.qualified_field(i))))
            .collect();
        let (qualifier, field) = window.schema.qualified_field(input.fields().len());
        exprs.push(
            cast(last_column(&plan), field.data_type().clone())
                .alias_qualified(qualifier.cloned(), field.name()),
        );
        let projection =
            Projection::try_new_with_schema(exprs, Arc::new(plan), Arc::clone(&window.schema))?;
        Ok(Some(LogicalPlan::Projection(projection)))
    }

    /// Whether the window's partition and order, taken down to the aggregate, rank
    /// one year's rows by level1, level2 and the score rate, as the rollup stores.
    fn ranks_alike(
        &self,
        window: &Window,
        aggregate: &Aggregate,
        query: &Level2Query,
        partition_by: &[Expr],
        order: &Expr,
    ) -> Result<bool> {
        let groups: BTreeSet<String> = aggregate
            .group_expr
            .iter()
            .filter_map(|e| match e {
                Expr::Column(c) => Some(c.name.clone()),
                _ => None,
            })
            .collect();
        let mut partition = BTreeSet::new();
        for expr in partition_by {
            match down_to(window.input.as_ref(), expr.clone(), query)? {
                Some(Expr::Column(c)) => partition.insert(c.name),
                _ => return Ok(false),
            };
        }
        let one_year = query.filters.iter().any(pins_year);
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let by_level2: BTreeSet<String> = names(&["level1", "level2"]);
        let grained = if groups == names(&["dept_code", "level1", "level2"]) {
            one_year && partition == by_level2
        } else if groups == names(&["dept_code", "level1", "level2", "year"]) {
            partition == names(&["level1", "level2", "year"])
                || (one_year && partition == by_level2)
        } else {
            false
        };
        let departments_kept = query
            .filters
            .iter()
            .all(|f| f.column_refs().iter().all(|c| c.name != "dept_code"));
        let Some(scale) = score_scale(aggregate, query) else {
            return Ok(false);
        };
        let rated = match down_to(window.input.as_ref(), order.clone(), query)? {
            Some(rate) => is_rate(&rate, scale),
            None => false,
        };
        Ok(grained && departments_kept && rated)
    }
}

/// The aggregate's rows read from the rollup (one rollup row per group), under the
/// aggregate's own names and types, with the stored rank last.
fn rows_with_rank(aggregate: &Aggregate, query: &Level2Query) -> Result<Option<LogicalPlan>> {
    let side = |name: &str| match name {
        "year" | "dept_code" => query.scores.clone(),
        _ => query.indicators.clone(),
    };
    let mut exprs = Vec::with_capacity(aggregate.schema.fields().len() + 1);
    for (i, group) in aggregate.group_expr.iter().enumerate() {
        let Expr::Column(c) = group else {
            return Ok(None);
        };
        let (qualifier, field) = aggregate.schema.qualified_field(i);
        exprs.push(
            Expr::Column(Column::new(Some(side(&c.name)), c.name.clone()))
                .alias_qualified(qualifier.cloned(), field.name()),
        );
    }
    let groups = aggregate.group_expr.len();
    for (i, summed) in query.summed.iter().enumerate() {
        let (qualifier, field) = aggregate.schema.qualified_field(groups + i);
        let stored = Expr::Column(Column::new(Some(query.scores.clone()), summed.clone()));
        exprs.push(
            cast(stored, field.data_type().clone())
                .alias_qualified(qualifier.cloned(), field.name()),
        );
    }
    exprs.push(Expr::Column(Column::new_unqualified(RANK)));
    let plan = query.rows(Some(RANK))?.project(exprs)?.build()?;
    // The same columns as the aggregate's (then the rank), or no rewrite.
    Ok(leads_with(plan.schema(), &aggregate.schema).then_some(plan))
}

/// `node` rebuilt over `input` (its own input with the rank last), passing the rank on.
fn carry_rank(node: &LogicalPlan, input: LogicalPlan) -> Result<LogicalPlan> {
    Ok(match node {
        LogicalPlan::Projection(p) => {
            let mut exprs = p.expr.clone();
            exprs.push(last_column(&input));
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(input))?)
        }
        LogicalPlan::SubqueryAlias(a) => {
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), a.alias.clone())?)
        }
        other => return datafusion::common::internal_err!("no rank through {}", other.display()),
    })
}

fn last_column(plan: &LogicalPlan) -> Expr {
    let schema = plan.schema();
    Expr::Column(Column::from(
        schema.qualified_field(schema.fields().len() - 1),
    ))
}

/// `expr`, over `node`'s columns, rewritten over the aggregate below it: its groups
/// by their names (`level1`, `year`, …), its sums as `sum(score)` and `sum(max_score)`.
/// `None` when it reads anything else.
fn down_to(mut node: &LogicalPlan, mut expr: Expr, query: &Level2Query) -> Result<Option<Expr>> {
    loop {
        let (schema, input): (&DFSchema, &LogicalPlan) = match node {
            LogicalPlan::Projection(p) => (&p.schema, &p.input),
            LogicalPlan::SubqueryAlias(a) => (&a.schema, &a.input),
            LogicalPlan::Aggregate(a) => (&a.schema, &a.input),
            _ => return Ok(None),
        };
        let mut unknown = false;
        expr = expr
            .transform(|e| {
                let Expr::Column(c) = &e else {
                    return Ok(Transformed::no(e));
                };
                let Ok(i) = schema.index_of_column(c) else {
                    unknown = true;
                    return Ok(Transformed::no(e));
                };
                let below = match node {
                    LogicalPlan::Projection(p) => p.expr[i].clone().unalias_nested().data,
                    LogicalPlan::SubqueryAlias(a) => {
                        Expr::Column(Column::from(a.input.schema().qualified_field(i)))
                    }
                    LogicalPlan::Aggregate(a) => match a.group_expr.get(i) {
                        Some(Expr::Column(g)) => Expr::Column(Column::new_unqualified(&g.name)),
                        Some(_) => {
                            unknown = true;
                            return Ok(Transformed::no(e));
                        }
                        None => Expr::Column(Column::new_unqualified(
                            match query.summed[i - a.group_expr.len()].as_str() {
                                "score" => SUM_SCORE,
                                _ => SUM_MAX_SCORE,
                            },
                        )),
                    },
                    _ => unreachable!("matched above"),
                };
                Ok(Transformed::yes(below))
            })?
            .data;
        if unknown {
            return Ok(None);
        }
        if matches!(node, LogicalPlan::Aggregate(_)) {
            return Ok(Some(expr));
        }
        node = input;
    }
}

/// The scale of the summed scores (the rate's whole numbers are score × 10^scale).
fn score_scale(aggregate: &Aggregate, query: &Level2Query) -> Option<i8> {
    let groups = aggregate.group_expr.len();
    let scales: Vec<i8> = query
        .summed
        .iter()
        .enumerate()
        .map(
            |(i, _)| match aggregate.schema.field(groups + i).data_type() {
                DataType::Decimal128(_, s) | DataType::Decimal256(_, s) => Some(*s),
                _ => None,
            },
        )
        .collect::<Option<_>>()?;
    let first = *scales.first()?;
    scales.iter().all(|s| *s == first).then_some(first)
}

/// Whether one of the conjuncts of `filter` is `year = <literal>`.
fn pins_year(filter: &Expr) -> bool {
    split_conjunction(filter).into_iter().any(|conjunct| {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
            return false;
        };
        let is_year = |e: &Expr| matches!(bare(e), Expr::Column(c) if c.name == "year");
        let is_literal = |e: &Expr| matches!(bare(e), Expr::Literal(v, _) if !v.is_null());
        *op == Operator::Eq
            && ((is_year(left) && is_literal(right)) || (is_literal(left) && is_year(right)))
    })
}

/// Whether `expr` (over the aggregate's terms) orders and ties exactly as the stored
/// `score_rate(score, max_score)`.
fn is_rate(expr: &Expr, scale: i8) -> bool {
    let is = |e: &Expr, name: &str| matches!(bare(e), Expr::Column(c) if c.name == name);
    match expr {
        Expr::ScalarFunction(f) if f.name() == "score_rate" => {
            matches!(f.args.as_slice(), [s, m] if is(s, SUM_SCORE) && is(m, SUM_MAX_SCORE))
        }
        Expr::Case(Case {
            expr: None,
            when_then_expr,
            else_expr: Some(otherwise),
        }) => {
            let [(when, then)] = when_then_expr.as_slice() else {
                return false;
            };
            let zero_points = match when.as_ref() {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Eq,
                    right,
                }) => {
                    (is(left, SUM_MAX_SCORE) && whole(right) == Some(0))
                        || (whole(left) == Some(0) && is(right, SUM_MAX_SCORE))
                }
                _ => false,
            };
            let null = matches!(bare(then), Expr::Literal(v, _) if v.is_null());
            zero_points && null && is_exact_quotient(otherwise, scale)
        }
        _ => false,
    }
}

/// `CAST(score * k AS DOUBLE) / CAST(max_score * k AS DOUBLE)`, `k` a whole multiple
/// of 10^scale (and at most 10^6, so the products stay whole doubles): the correctly
/// rounded quotient of the same two whole numbers `score_rate` divides.
fn is_exact_quotient(expr: &Expr, scale: i8) -> bool {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Divide,
        right,
    }) = expr
    else {
        return false;
    };
    let as_double = |e: &Expr| match e {
        Expr::Cast(c) if c.field.data_type() == &DataType::Float64 => Some(c.expr.as_ref().clone()),
        _ => None,
    };
    let (Some(numerator), Some(denominator)) = (as_double(left), as_double(right)) else {
        return false;
    };
    let unit = 10i128.pow(u32::try_from(scale).unwrap_or(u32::MAX).min(18));
    match (
        scaled(&numerator, SUM_SCORE),
        scaled(&denominator, SUM_MAX_SCORE),
    ) {
        (Some(a), Some(b)) => a == b && a % unit == 0 && (1..=1_000_000).contains(&a),
        _ => false,
    }
}

/// `k` when `expr` is `<term> * k` or `k * <term>` with `k` a whole literal.
fn scaled(expr: &Expr, term: &str) -> Option<i128> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Multiply,
        right,
    }) = bare(expr)
    else {
        return None;
    };
    let is_term = |e: &Expr| matches!(bare(e), Expr::Column(c) if c.name == term);
    match (is_term(left), is_term(right)) {
        (true, false) => whole(right),
        (false, true) => whole(left),
        _ => None,
    }
}

/// The whole number a literal holds, through casts.
fn whole(expr: &Expr) -> Option<i128> {
    let Expr::Literal(value, _) = bare(expr) else {
        return None;
    };
    match value {
        ScalarValue::Decimal128(Some(v), _, s) => {
            let unit = 10i128.checked_pow(u32::try_from(*s).ok()?)?;
            (v % unit == 0).then(|| v / unit)
        }
        ScalarValue::Int8(Some(_))
        | ScalarValue::Int16(Some(_))
        | ScalarValue::Int32(Some(_))
        | ScalarValue::Int64(Some(_))
        | ScalarValue::UInt8(Some(_))
        | ScalarValue::UInt16(Some(_))
        | ScalarValue::UInt32(Some(_))
        | ScalarValue::UInt64(Some(_)) => value.to_string().parse().ok(),
        _ => None,
    }
}

/// `expr` without the casts that keep its value (to wider decimals and integers),
/// which type coercion puts around columns and literals.
fn bare(mut expr: &Expr) -> &Expr {
    loop {
        match expr {
            Expr::Cast(c) if keeps_value(c.field.data_type()) => expr = c.expr.as_ref(),
            Expr::TryCast(c) if keeps_value(c.field.data_type()) => expr = c.expr.as_ref(),
            Expr::Alias(a) => expr = a.expr.as_ref(),
            _ => return expr,
        }
    }
}

fn keeps_value(to: &DataType) -> bool {
    matches!(to, DataType::Decimal128(..) | DataType::Decimal256(..)) || to.is_integer()
}

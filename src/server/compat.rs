//! Rewrites that let BI tools' catalog queries run on DataFusion. Only the
//! PostgreSQL front end applies them, to the statements clients send.
//!
//! Catalog queries (SQLAlchemy's column reflection, which Superset runs on connect)
//! use correlated scalar subqueries that return one row without aggregating, such as
//! `(SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = a.attrelid)`.
//! DataFusion plans a correlated scalar subquery only when it aggregates, so such a
//! subquery's single output is wrapped in `max(…)`: the same value for zero or one
//! row, which is what these subqueries return.
//!
//! psql's `\d+` builds arrays from subqueries, `array(SELECT … FROM …)`, which
//! DataFusion does not plan; [`array_subqueries`] writes each as the scalar subquery
//! `(SELECT array_agg(…) FROM …)`, the same array (NULL rather than `{}` when empty).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, FunctionArguments, GroupByExpr, SelectItem,
    SetExpr, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "every",
    "first_value",
    "last_value",
];

pub fn aggregate_scalar_subqueries(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Subquery(query) = expr {
            if let SetExpr::Select(select) = query.body.as_mut() {
                let grouped = match &select.group_by {
                    GroupByExpr::Expressions(exprs, _) => !exprs.is_empty(),
                    GroupByExpr::All(_) => true,
                };
                if select.projection.len() == 1
                    && !grouped
                    && select.having.is_none()
                    && !select.from.is_empty()
                {
                    wrap_in_max(&mut select.projection[0]);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `x LIKE p ESCAPE 'c'` with another escape than the backslash (SQLAlchemy writes
/// `ESCAPE '/'`): DataFusion takes only the backslash, so the pattern is rewritten
/// for it ([`super::like_escape`]).
pub fn like_escapes(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = expr
        {
            let escape = escape_char.as_ref().map(|e| e.value.clone());
            if let Some(escape @ Value::SingleQuotedString(text)) = &escape {
                if text != "\\" {
                    let call = format!("{}({pattern}, {escape})", super::like_escape::NAME);
                    if let Ok(rewritten) = Parser::new(&PostgreSqlDialect {})
                        .try_with_sql(&call)
                        .and_then(|mut parser| parser.parse_expr())
                    {
                        **pattern = rewritten;
                        *escape_char = None;
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

pub fn array_subqueries(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr {
            let is_array = function.name.to_string().eq_ignore_ascii_case("array");
            if let (true, FunctionArguments::Subquery(query)) = (is_array, &function.args) {
                let mut query = query.clone();
                if let SetExpr::Select(select) = query.body.as_mut() {
                    if select.projection.len() == 1 {
                        wrap_in(&mut select.projection[0], "array_agg");
                        *expr = Expr::Subquery(query);
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `generate_subscripts(a, dim)` (SQLAlchemy numbers index and key columns with it
/// beside `unnest(a)`): DataFusion has no such function, so it becomes
/// `unnest(range(1, cardinality(a) + 1))` for the first dimension, and no rows for any
/// other, as PostgreSQL gives for a one-dimensional array.
pub fn subscripts(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let named = function
            .name
            .0
            .last()
            .is_some_and(|p| p.to_string().eq_ignore_ascii_case("generate_subscripts"));
        let FunctionArguments::List(list) = &function.args else {
            return ControlFlow::Continue(());
        };
        if let (true, [array, dimension]) = (named, list.args.as_slice()) {
            let text = format!(
                "unnest(CASE WHEN {dimension} = 1 THEN range(1, CAST(cardinality({array}) AS BIGINT) + 1) END)"
            );
            if let Ok(rewritten) = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&text)
                .and_then(|mut parser| parser.parse_expr())
            {
                *expr = rewritten;
            }
        }
        ControlFlow::Continue(())
    });
}

/// pg_catalog's boolean columns that clients compare with PostgreSQL's boolean
/// literals written as text (SQLAlchemy 1.4: `ix.indisprimary = 'f'`).
const BOOLEAN_COLUMNS: &[&str] = &[
    "indisprimary",
    "indisunique",
    "indisvalid",
    "indisclustered",
    "indimmediate",
    "indisready",
    "indislive",
    "attisdropped",
    "atthasdef",
    "attnotnull",
    "attislocal",
    "relhasindex",
    "relisshared",
    "relhasrules",
    "relhastriggers",
    "relhassubclass",
    "relrowsecurity",
    "relispartition",
    "condeferrable",
    "condeferred",
    "convalidated",
    "conislocal",
    "typisdefined",
    "typnotnull",
    "proretset",
    "proisstrict",
];

/// `indisprimary = 'f'`: DataFusion does not read text as a boolean in a comparison,
/// PostgreSQL does; for pg_catalog's boolean columns `'t'`/`'f'` (and `'true'`,
/// `'false'`, …) are written as the booleans they stand for.
pub fn boolean_literals(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::BinaryOp { left, op, right } = expr {
            if matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
                if is_boolean_column(left) {
                    as_boolean(right);
                } else if is_boolean_column(right) {
                    as_boolean(left);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `CASE WHEN c THEN (SELECT x FROM t WHERE w) END` (SQLAlchemy 2.1's column
/// reflection): DataFusion cannot run a correlated subquery under CASE, so the
/// condition moves into the subquery, `(SELECT x FROM t WHERE (w) AND (c))`: NULL
/// when `c` does not hold, as the CASE gives. A condition holding a subquery of its
/// own stays as it is (DataFusion plans that CASE).
pub fn case_subqueries(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        let Expr::Case {
            operand: None,
            conditions,
            else_result,
            ..
        } = expr
        else {
            return ControlFlow::<()>::Continue(());
        };
        let no_else = match else_result.as_deref() {
            None => true,
            Some(Expr::Value(v)) => matches!(v.value, Value::Null),
            Some(_) => false,
        };
        let [when] = conditions.as_slice() else {
            return ControlFlow::Continue(());
        };
        let Expr::Subquery(query) = &when.result else {
            return ControlFlow::Continue(());
        };
        let mut query = query.clone();
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        if !no_else || select.from.is_empty() || has_subquery(&when.condition) {
            return ControlFlow::Continue(());
        }
        let condition = Expr::Nested(Box::new(when.condition.clone()));
        select.selection = Some(match select.selection.take() {
            Some(filter) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(filter))),
                op: BinaryOperator::And,
                right: Box::new(condition),
            },
            None => condition,
        });
        *expr = Expr::Subquery(query);
        ControlFlow::Continue(())
    });
}

fn has_subquery(expr: &Expr) -> bool {
    let mut expr = expr.clone();
    visit_expressions_mut(&mut expr, |e| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

fn is_boolean_column(expr: &Expr) -> bool {
    let name = match expr {
        Expr::Identifier(ident) => Some(&ident.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| &p.value),
        _ => None,
    };
    name.is_some_and(|n| BOOLEAN_COLUMNS.contains(&n.to_ascii_lowercase().as_str()))
}

/// A text literal that PostgreSQL reads as a boolean, made that boolean.
fn as_boolean(expr: &mut Expr) {
    if let Expr::Value(value) = expr {
        if let Value::SingleQuotedString(text) = &value.value {
            let truth = match text.to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
                "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
                _ => None,
            };
            if let Some(truth) = truth {
                value.value = Value::Boolean(truth);
            }
        }
    }
}

fn wrap_in_max(item: &mut SelectItem) {
    let text = match item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
            expr.to_string().to_ascii_lowercase()
        }
        _ => return,
    };
    if AGGREGATES
        .iter()
        .any(|name| text.contains(&format!("{name}(")))
    {
        return;
    }
    wrap_in(item, "max");
}

/// `item`'s expression as the argument of the aggregate `function`.
fn wrap_in(item: &mut SelectItem, function: &str) {
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    let text = expr.to_string();
    let Ok(wrapped) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&format!("{function}({text})"))
        .and_then(|mut parser| parser.parse_expr())
    else {
        return;
    };
    *item = match alias {
        Some(alias) => SelectItem::ExprWithAlias {
            expr: wrapped,
            alias,
        },
        None => SelectItem::UnnamedExpr(wrapped),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_booleans_compared_with_catalog_flags_become_booleans() {
        let sql = "SELECT 1 FROM pg_index ix JOIN pg_class c ON c.oid = ix.indrelid \
                   WHERE ix.indisprimary = 'f' AND 't' = indisunique AND c.relkind = 'f'";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        boolean_literals(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT 1 FROM pg_index ix JOIN pg_class c ON c.oid = ix.indrelid \
             WHERE ix.indisprimary = false AND true = indisunique AND c.relkind = 'f'"
        );
    }

    #[test]
    fn a_subquery_under_case_takes_the_condition_into_its_filter() {
        let sql = "SELECT CASE WHEN a.atthasdef THEN (SELECT d.x FROM d WHERE d.k = a.k) ELSE NULL END AS x, \
                   CASE WHEN a.y THEN (SELECT 1 FROM d) ELSE 2 END AS kept FROM a";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        case_subqueries(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT (SELECT d.x FROM d WHERE (d.k = a.k) AND (a.atthasdef)) AS x, \
             CASE WHEN a.y THEN (SELECT 1 FROM d) ELSE 2 END AS kept FROM a"
        );
    }

    #[test]
    fn subscripts_become_a_range_beside_the_unnest() {
        let sql = "SELECT unnest(i.indkey) AS attnum, generate_subscripts(i.indkey, 1) AS ord, \
                   pg_catalog.generate_subscripts(i.indkey, $5::INTEGER) AS o FROM pg_index i";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        subscripts(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT unnest(i.indkey) AS attnum, \
             unnest(CASE WHEN 1 = 1 THEN range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1) END) AS ord, \
             unnest(CASE WHEN $5::INTEGER = 1 THEN range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1) END) AS o \
             FROM pg_index i"
        );
    }

    #[test]
    fn wraps_only_unaggregated_scalar_subqueries() {
        let sql = "SELECT a.x, (SELECT d.y FROM d WHERE d.k = a.k) AS y, \
                   (SELECT count(*) FROM d WHERE d.k = a.k) AS n FROM a";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        aggregate_scalar_subqueries(&mut statement);
        let text = statement.to_string();
        assert!(text.contains("(SELECT max(d.y) FROM d"), "{text}");
        assert!(text.contains("(SELECT count(*) FROM d"), "{text}");
    }

    #[test]
    fn like_escapes_other_than_the_backslash_are_rewritten() {
        let sql = "SELECT nspname FROM n WHERE nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        like_escapes(&mut statement);
        let text = statement.to_string();
        assert!(
            text.contains("NOT LIKE kpidb_like_pattern('pg/_' || '%', '/')")
                && !text.contains("ESCAPE"),
            "{text}"
        );
    }

    #[test]
    fn array_subqueries_become_array_agg() {
        let sql = "SELECT array_to_string(c.reloptions || array(select 'toast.' || x from unnest(t.reloptions) x), ', ') FROM c";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        array_subqueries(&mut statement);
        let text = statement.to_string();
        assert!(
            text.contains("(SELECT array_agg('toast.' || x) FROM"),
            "{text}"
        );
    }
}

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
    visit_expressions_mut, Expr, FunctionArguments, GroupByExpr, SelectItem, SetExpr, Statement,
    Value,
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

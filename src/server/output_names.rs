//! Result columns of unaliased expressions named as PostgreSQL names them, for the
//! clients of the PostgreSQL front end: BI tools show these names as headers.
//!
//! DataFusion names `SELECT count(*), perf_grade(91)` after the whole expression,
//! `count(*)` and `perf_grade(Int64(91))`; PostgreSQL says `count` and `perf_grade`.
//! PostgreSQL's rule (`FigureColname` in its parser): a column reference or field
//! access is named after its last name, a function call after the function, a cast
//! after what it casts or else after the type (`'1'::integer` is `int4`), a scalar
//! subquery after its one column, `CASE` is `case`, `ARRAY[…]` is `array`,
//! `EXISTS (…)` is `exists`, and anything else `?column?`.
//!
//! Each unaliased expression of every SELECT is given that name as an alias, except
//! where the alias could change what the query means: when the projection has a
//! wildcard (its names are not known here), and when the name appears in HAVING
//! (where DataFusion, unlike PostgreSQL, reads aliases).
//!
//! PostgreSQL lets two output columns share a name (`SELECT count(*), count(*)`,
//! `SELECT current_database(), current_catalog`); DataFusion refuses it. Every column
//! after the first of a name is given that name with [`REPEAT_MARK`] and its position
//! appended, which no query can mention, and the front end shows names up to the mark
//! ([`shown`]), so the client sees PostgreSQL's names, repeats included.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, DataType, Expr, Ident, Query, Select, SelectItem, SetExpr, Statement, Value,
    VisitorMut,
};

/// Names the unaliased expressions of every SELECT in `statement`.
pub fn name_outputs(statement: &mut Statement) {
    let _ = crate::walk::visit_mut(statement, &mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<Self::Break> {
        name_projection(select);
        ControlFlow::Continue(())
    }
}

/// Marks a repeated output name: `count` + mark + position. A control character, so
/// no SQL a client writes can name it.
pub const REPEAT_MARK: char = '\u{1f}';

/// The name a client is shown for an output column: up to the [`REPEAT_MARK`].
pub fn shown(name: &str) -> &str {
    name.split(REPEAT_MARK).next().unwrap_or(name)
}

fn name_projection(select: &mut Select) {
    if select.projection.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return;
    }
    let in_having = select.having.as_ref().map(identifiers).unwrap_or_default();
    let mut seen: HashSet<String> = HashSet::new();
    for (position, item) in select.projection.iter_mut().enumerate() {
        // The name the item has now (None: DataFusion's own), and the one it would get.
        let (current, proposed) = match &*item {
            SelectItem::ExprWithAlias { alias, .. } => (Some(ident_name(alias)), None),
            SelectItem::UnnamedExpr(expr) => match unwrapped(expr) {
                // `user` and `current_role` become the user's name, so they are named.
                Expr::Identifier(ident)
                    if ident.quote_style.is_none() && super::roles::is_register(&ident.value) =>
                {
                    (None, name(expr).0)
                }
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => (name(expr).0, None),
                _ => (
                    None,
                    Some(name(expr).0.unwrap_or_else(|| "?column?".into())),
                ),
            },
            _ => (None, None),
        };
        let proposed = proposed.filter(|p| !in_having.contains(p));
        let Some(shown) = proposed.clone().or(current) else {
            continue;
        };
        let alias = if seen.insert(shown.clone()) {
            match proposed {
                Some(proposed) => proposed,
                None => continue,
            }
        } else {
            format!("{shown}{REPEAT_MARK}{position}")
        };
        let alias = Ident::with_quote('"', alias);
        match item {
            SelectItem::UnnamedExpr(expr) => {
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias,
                };
            }
            SelectItem::ExprWithAlias { alias: old, .. } => *old = alias,
            _ => {}
        }
    }
}

fn unwrapped(expr: &Expr) -> &Expr {
    match expr {
        Expr::Nested(inner) => unwrapped(inner),
        other => other,
    }
}

/// Strength of a name, as PostgreSQL ranks them: a cast keeps its operand's name
/// only when that name is strong.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Strength {
    None,
    Weak,
    Strong,
}

/// PostgreSQL's name for `expr`, with its strength.
fn name(expr: &Expr) -> (Option<String>, Strength) {
    let strong = |n: String| (Some(n), Strength::Strong);
    let weak = |n: &str| (Some(n.to_string()), Strength::Weak);
    match expr {
        Expr::Identifier(ident) => strong(ident_name(ident)),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(last) => strong(ident_name(last)),
            None => (None, Strength::None),
        },
        Expr::CompoundFieldAccess { root, access_chain } => {
            let field = access_chain.iter().rev().find_map(|access| match access {
                AccessExpr::Dot(Expr::Identifier(ident)) => Some(ident_name(ident)),
                _ => None,
            });
            match field {
                Some(field) => strong(field),
                None => name(root),
            }
        }
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => name(inner),
        Expr::Function(function) => match function.name.0.last() {
            Some(part) => match part.as_ident() {
                Some(ident) => strong(ident_name(ident)),
                None => strong(part.to_string().to_lowercase()),
            },
            None => (None, Strength::None),
        },
        Expr::Cast {
            expr, data_type, ..
        } => match name(expr) {
            (Some(n), Strength::Strong) => strong(n),
            _ => (Some(type_name(data_type)), Strength::Weak),
        },
        Expr::TypedString(typed) => (Some(type_name(&typed.data_type)), Strength::Weak),
        Expr::Case { .. } => weak("case"),
        Expr::Array(_) => weak("array"),
        Expr::Tuple(_) => weak("row"),
        Expr::Exists { .. } => strong("exists".into()),
        Expr::Subquery(query) => subquery_name(query),
        Expr::Extract { .. } => strong("extract".into()),
        Expr::Substring { .. } => strong("substring".into()),
        Expr::Position { .. } => strong("position".into()),
        Expr::Overlay { .. } => strong("overlay".into()),
        Expr::Trim { .. } => strong("btrim".into()),
        Expr::Ceil { .. } => strong("ceil".into()),
        Expr::Floor { .. } => strong("floor".into()),
        Expr::AtTimeZone { .. } => strong("timezone".into()),
        Expr::Interval(_) => (Some("interval".into()), Strength::Weak),
        Expr::Value(value) if matches!(value.value, Value::Null) => (None, Strength::None),
        _ => (None, Strength::None),
    }
}

/// A scalar subquery is named after its one output column.
fn subquery_name(query: &Query) -> (Option<String>, Strength) {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return (None, Strength::None);
    };
    match select.projection.as_slice() {
        [SelectItem::ExprWithAlias { alias, .. }] => (Some(ident_name(alias)), Strength::Strong),
        [SelectItem::UnnamedExpr(expr)] => name(expr),
        _ => (None, Strength::None),
    }
}

/// PostgreSQL's internal name of a type, as it names a cast column (`int4`, `text`).
fn type_name(data_type: &DataType) -> String {
    let text = data_type.to_string().to_lowercase();
    let base = text.split('(').next().unwrap_or(&text).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "double" | "float8" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "character varying" | "varchar" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => other,
    }
    .to_string()
}

/// An identifier as a name: folded to lower case unless quoted, as both PostgreSQL
/// and DataFusion do.
pub fn ident_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// Every name an expression mentions, folded.
fn identifiers(expr: &Expr) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut expr = expr.clone();
    let _ = crate::walk::exprs_mut(&mut expr, |e| {
        match e {
            Expr::Identifier(ident) => {
                found.insert(ident_name(ident));
            }
            Expr::CompoundIdentifier(parts) => {
                found.extend(parts.iter().map(ident_name));
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        name_outputs(&mut statement);
        statement.to_string()
    }

    #[test]
    fn expressions_are_named_as_postgresql_names_them() {
        assert_eq!(
            named(
                "SELECT count(*), public.perf_grade(91), d.year, score::float8, \
                 '1'::integer, CASE WHEN x THEN 1 END, year + 1, (SELECT max(y) FROM t), \
                 EXISTS (SELECT 1), ARRAY[1], (r).n, \"Sum\"(x) FROM d"
            ),
            "SELECT count(*) AS \"count\", public.perf_grade(91) AS \"perf_grade\", d.year, \
             score::FLOAT8 AS \"score\", '1'::INTEGER AS \"int4\", \
             CASE WHEN x THEN 1 END AS \"case\", year + 1 AS \"?column?\", \
             (SELECT max(y) AS \"max\" FROM t) AS \"max\", EXISTS (SELECT 1 AS \"?column?\") AS \"exists\", \
             ARRAY[1] AS \"array\", (r).n AS \"n\", \"Sum\"(x) AS \"Sum\" FROM d"
        );
    }

    #[test]
    fn names_that_would_change_the_meaning_stay_as_they_are() {
        // A wildcard; a name HAVING mentions.
        assert_eq!(
            named("SELECT *, count(*) FROM d"),
            "SELECT *, count(*) FROM d"
        );
        assert_eq!(
            named("SELECT sum(x) FROM d GROUP BY k HAVING sum > 1"),
            "SELECT sum(x) FROM d GROUP BY k HAVING sum > 1"
        );
    }

    #[test]
    fn repeated_names_are_marked_and_shown_as_postgresql_shows_them() {
        let mark = REPEAT_MARK;
        assert_eq!(
            named("SELECT count(*), count(x), max(y) AS m, 1 AS m, k, k FROM d"),
            format!(
                "SELECT count(*) AS \"count\", count(x) AS \"count{mark}1\", max(y) AS m, \
                 1 AS \"m{mark}3\", k, k AS \"k{mark}5\" FROM d"
            )
        );
        assert_eq!(
            named("SELECT count, count(*) FROM d GROUP BY count"),
            format!("SELECT count, count(*) AS \"count{mark}1\" FROM d GROUP BY count")
        );
        assert_eq!(shown(&format!("count{mark}1")), "count");
        assert_eq!(shown("count"), "count");
    }
}

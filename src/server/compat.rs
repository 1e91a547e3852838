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

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CaseWhen, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax, ObjectNamePart,
    OneOrManyWithParens, Query, SelectItem, SetExpr, Statement, Subscript, TableFactor,
    TableWithJoins, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::walk::{exprs_mut, relations_mut};

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
    let _ = exprs_mut(statement, |expr| {
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
    let _ = exprs_mut(statement, |expr| {
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
                    if let Some(rewritten) = parsed(&call) {
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
    let _ = exprs_mut(statement, |expr| {
        if let Expr::Function(function) = expr {
            let is_array = function.name.to_string().eq_ignore_ascii_case("array");
            if let (true, FunctionArguments::Subquery(query)) = (is_array, &function.args) {
                if let Some(transform) = element_transform(query) {
                    *expr = transform;
                    return ControlFlow::<()>::Continue(());
                }
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

/// `array(SELECT e FROM unnest(a) x)`, an array made from each element `x` of an array
/// that usually belongs to the outer row (psql's `\d+` reads
/// `array(select 'toast.' || x from unnest(tc.reloptions) x)`): DataFusion cannot
/// decorrelate an unnest of an outer column, so it becomes `array_transform(a, x -> e)`,
/// the same elements in the same order. Only the plain form is taken: one unnest, no
/// WHERE, grouping, ordering or limit.
fn element_transform(query: &Query) -> Option<Expr> {
    if query.order_by.is_some() || query.limit_clause.is_some() || query.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let plain = select.selection.is_none()
        && select.having.is_none()
        && select.distinct.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let ([from], [item], true) = (select.from.as_slice(), select.projection.as_slice(), plain)
    else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let (array, alias) = match &from.relation {
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } => match array_exprs.as_slice() {
            [array] => (array.clone(), alias.as_ref()?),
            _ => return None,
        },
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality: false,
            ..
        } if name
            .0
            .last()
            .is_some_and(|p| p.to_string().eq_ignore_ascii_case("unnest")) =>
        {
            match args.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => {
                    (array.clone(), alias.as_ref()?)
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    // `unnest(a) x` names the column x; `unnest(a) AS t(x)` names it x too.
    let element = match alias.columns.as_slice() {
        [] => alias.name.clone(),
        [column] => column.name.clone(),
        _ => return None,
    };
    let body = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    let mut call = parsed(&format!("array_transform({array}, NULL)"))?;
    if let Expr::Function(function) = &mut call {
        if let FunctionArguments::List(list) = &mut function.args {
            list.args[1] =
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(LambdaFunction {
                    params: OneOrManyWithParens::One(LambdaFunctionParameter {
                        name: element,
                        data_type: None,
                    }),
                    body: Box::new(body),
                    syntax: LambdaSyntax::Arrow,
                })));
        }
    }
    Some(call)
}

/// `generate_subscripts(a, dim)` (SQLAlchemy numbers index and key columns with it
/// beside `unnest(a)`): DataFusion has no such function, so it becomes
/// `unnest(range(1, cardinality(a) + 1))` for the first dimension, and no rows for any
/// other, as PostgreSQL gives for a one-dimensional array.
pub fn subscripts(statement: &mut Statement) {
    rewrite_calls(statement, "generate_subscripts", |args| {
        match args {
        [array, dimension] => Some(format!(
            "unnest(CASE WHEN {dimension} = 1 THEN range(1, CAST(cardinality({array}) AS BIGINT) + 1) END)"
        )),
        _ => None,
    }
    });
}

/// `information_schema._pg_expandarray(a)` (pgjdbc's getPrimaryKeys), PostgreSQL's
/// set-returning function of `(x, n)` rows, one per element `x` of `a` at position
/// `n`: written as the struct of two zipped unnests, which DataFusion plans.
pub fn expand_arrays(statement: &mut Statement) {
    rewrite_calls(statement, "_pg_expandarray", |args| {
        match args {
        [array] => Some(format!(
            "named_struct('x', unnest({array}), 'n', unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1)))"
        )),
        _ => None,
    }
    });
}

/// Each call of the function `name` (under any schema) replaced by the SQL that
/// `text` writes from its arguments, where it writes one.
fn rewrite_calls(
    statement: &mut Statement,
    name: &str,
    text: impl Fn(&[FunctionArg]) -> Option<String>,
) {
    let _ = exprs_mut(statement, |expr| {
        let Expr::Function(function) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let named = function
            .name
            .0
            .last()
            .is_some_and(|p| p.to_string().eq_ignore_ascii_case(name));
        let FunctionArguments::List(list) = &function.args else {
            return ControlFlow::Continue(());
        };
        if let (true, Some(text)) = (named, text(&list.args)) {
            if let Some(rewritten) = parsed(&text) {
                *expr = rewritten;
            }
        }
        ControlFlow::Continue(())
    });
}

/// `(composite).field`, PostgreSQL's field access (`(result.keys).x`), which DataFusion
/// writes `composite['field']`. In `con.confkey[1]` the names before the first
/// subscript name the column and stay.
pub fn field_access(statement: &mut Statement) {
    let _ = exprs_mut(statement, |expr| {
        if let Expr::CompoundFieldAccess { root, access_chain } = expr {
            let named = matches!(**root, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
            let column_parts = match named {
                true => access_chain
                    .iter()
                    .position(|a| matches!(a, AccessExpr::Subscript(_)))
                    .unwrap_or(access_chain.len()),
                false => 0,
            };
            for access in access_chain.iter_mut().skip(column_parts) {
                if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                    let name = super::output_names::ident_name(field);
                    *access = AccessExpr::Subscript(Subscript::Index {
                        index: Expr::Value(Value::SingleQuotedString(name).with_empty_span()),
                    });
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// information_schema's views that DataFusion's information_schema lacks or shapes
/// otherwise than PostgreSQL, which kpidb keeps in pg_catalog: the constraint views
/// ([`super::pg_keys`]) and `columns` ([`super::information_schema`]).
const REDIRECTED_VIEWS: &[&str] = &[
    "columns",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "constraint_column_usage",
];

/// `information_schema.table_constraints` and `.columns` (Metabase's field sync) and
/// the other [`REDIRECTED_VIEWS`] read from where kpidb keeps them.
pub fn information_schema_views(statement: &mut Statement) {
    let _ = relations_mut(statement, |name| {
        if let [schema, view] = name.0.as_mut_slice() {
            let is_view = |part: &ObjectNamePart| {
                part.as_ident().is_some_and(|i| {
                    REDIRECTED_VIEWS.contains(&i.value.to_ascii_lowercase().as_str())
                })
            };
            let in_information_schema = schema
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("information_schema"));
            if in_information_schema && is_view(view) {
                *schema = ObjectNamePart::Identifier(Ident::new("pg_catalog"));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `CAST(x AS regclass)` of a computed name (Metabase's
/// `format('%I.%I', schema, table)::regclass`): DataFusion casts regclass as an
/// integer, so the name is looked up with [`super::to_regclass`] (an oid passes
/// through). A literal name was already looked up by datafusion-pg-catalog.
pub fn regclass_casts(statement: &mut Statement) {
    let _ = exprs_mut(statement, |expr| {
        if let Expr::Cast {
            expr: operand,
            data_type,
            ..
        } = expr
        {
            let text = data_type.to_string().to_ascii_lowercase();
            let regclass = text == "regclass" || text == "pg_catalog.regclass";
            if regclass && !matches!(**operand, Expr::Value(_)) {
                if let Some(call) = parsed(&format!("to_regclass({operand})")) {
                    *expr = call;
                }
            }
        }
        ControlFlow::<()>::Continue(())
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
    let _ = exprs_mut(statement, |expr| {
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

/// kpidb has no sequences, so `pg_get_serial_sequence(…)` is NULL for every column
/// ([`super::pg_keys`]); it is written as that NULL here, and a scalar subquery whose
/// filter then compares with NULL (SQLAlchemy 2.1 reads identity options from
/// pg_sequence by `seqrelid = pg_get_serial_sequence(…)::regclass::oid`) has no rows,
/// so it is NULL too. DataFusion could not plan that subquery, which reads the outer
/// query in its SELECT list.
pub fn serial_sequences(statement: &mut Statement) {
    let _ = exprs_mut(statement, |expr| {
        match expr {
            Expr::Function(function)
                if function.name.0.last().is_some_and(|p| {
                    p.to_string().eq_ignore_ascii_case("pg_get_serial_sequence")
                }) =>
            {
                *expr = Expr::Value(Value::Null.with_empty_span());
            }
            Expr::Subquery(query) => {
                if let SetExpr::Select(select) = query.body.as_ref() {
                    let never = select
                        .selection
                        .clone()
                        .is_some_and(|filter| conjuncts(filter).iter().any(compares_with_null));
                    if never
                        && !counts(&select.projection)
                        && select.group_by == GroupByExpr::Expressions(vec![], vec![])
                    {
                        *expr = Expr::Value(Value::Null.with_empty_span());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `x = NULL` (through casts): never true.
fn compares_with_null(condition: &Expr) -> bool {
    fn null(expr: &Expr) -> bool {
        match expr {
            Expr::Value(v) => matches!(v.value, Value::Null),
            Expr::Cast { expr, .. } | Expr::Nested(expr) => null(expr),
            _ => false,
        }
    }
    match condition {
        Expr::BinaryOp { left, op, right } => {
            matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
            ) && (null(left) || null(right))
        }
        Expr::Nested(inner) => compares_with_null(inner),
        _ => false,
    }
}

/// `(SELECT x FROM t WHERE t.k = a.k AND a.flag)`: a condition in a correlated
/// scalar subquery that reads only the outer query's columns (SQLAlchemy 2.1's
/// column reflection puts `pg_attribute.atthasdef` there, "not needed but pg seems to
/// like it"). DataFusion cannot decorrelate such a filter, so it moves out, into
/// `CASE WHEN a.flag THEN (SELECT x FROM t WHERE t.k = a.k) END`: NULL when it does
/// not hold, as the subquery's empty answer is. Left alone where an empty answer is
/// not NULL (`count`).
pub fn outer_conditions(statement: &mut Statement) {
    let _ = exprs_mut(statement, |expr| {
        let Expr::Subquery(query) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let Some(filter) = select.selection.take() else {
            return ControlFlow::Continue(());
        };
        if select.projection.len() != 1 || counts(&select.projection) {
            select.selection = Some(filter);
            return ControlFlow::Continue(());
        }
        let local = relation_names(&select.from);
        let (outer, inner): (Vec<Expr>, Vec<Expr>) = conjuncts(filter)
            .into_iter()
            .partition(|c| reads_only_outer(c, &local));
        select.selection = conjoin(inner);
        let Some(condition) = conjoin(outer) else {
            return ControlFlow::Continue(());
        };
        let subquery = Expr::Subquery(query.clone());
        *expr = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen {
                condition,
                result: subquery,
            }],
            else_result: None,
        };
        ControlFlow::Continue(())
    });
}

/// The names a query's FROM gives its relations: aliases, else table names (whole
/// and last part).
fn relation_names(from: &[TableWithJoins]) -> HashSet<String> {
    let mut names = HashSet::new();
    let mut add = |factor: &TableFactor| match factor {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => {
            names.insert(alias.name.value.to_lowercase());
        }
        TableFactor::Table { name, .. } => {
            names.insert(name.to_string().to_lowercase());
            if let Some(last) = name.0.last() {
                names.insert(last.to_string().to_lowercase());
            }
        }
        _ => {
            // A relation this cannot name: nothing counts as outer.
            names.insert(String::new());
        }
    };
    for table in from {
        add(&table.relation);
        for join in &table.joins {
            add(&join.relation);
        }
    }
    names
}

/// Whether `condition` reads columns, all qualified by relations not in `local`,
/// and nothing else that could depend on the subquery's rows.
fn reads_only_outer(condition: &Expr, local: &HashSet<String>) -> bool {
    if local.contains("") || has_subquery(condition) {
        return false;
    }
    let mut outer = 0;
    let mut expr = condition.clone();
    let stopped = exprs_mut(&mut expr, |e| match e {
        Expr::Identifier(_) => ControlFlow::Break(()),
        Expr::CompoundIdentifier(parts) => {
            let qualifier = parts[..parts.len().saturating_sub(1)]
                .iter()
                .map(|p| p.value.to_lowercase())
                .collect::<Vec<_>>();
            let named_here = (1..=qualifier.len())
                .any(|n| local.contains(&qualifier[qualifier.len() - n..].join(".")));
            if named_here || qualifier.is_empty() {
                ControlFlow::Break(())
            } else {
                outer += 1;
                ControlFlow::Continue(())
            }
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break();
    !stopped && outer > 0
}

/// `a AND b AND c` as `[a, b, c]`.
fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn conjoin(parts: Vec<Expr>) -> Option<Expr> {
    parts.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

fn has_subquery(expr: &Expr) -> bool {
    let mut expr = expr.clone();
    exprs_mut(&mut expr, |e| match e {
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

/// `text` parsed as one PostgreSQL expression (the rewrites write their output as SQL).
fn parsed(text: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut parser| parser.parse_expr())
        .ok()
}

/// Whether a subquery's SELECT list counts, so that its empty answer is 0, not NULL:
/// the rewrites that answer an empty subquery with NULL leave it alone.
fn counts(projection: &[SelectItem]) -> bool {
    projection
        .iter()
        .any(|item| item.to_string().to_ascii_lowercase().contains("count("))
}

/// `item`'s expression as the argument of the aggregate `function`.
fn wrap_in(item: &mut SelectItem, function: &str) {
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    let Some(wrapped) = parsed(&format!("{function}({expr})")) else {
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
    fn conditions_on_the_outer_query_move_out_of_correlated_subqueries() {
        let sql = "SELECT (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
                   WHERE pg_catalog.pg_attribute.atthasdef AND d.adrelid = pg_catalog.pg_attribute.attrelid) AS x, \
                   (SELECT y FROM pg_catalog.pg_attrdef WHERE pg_attrdef.adnum = 1 AND flag) AS kept_unqualified, \
                   (SELECT count(*) FROM d WHERE a.flag) AS kept_count \
                   FROM pg_catalog.pg_attribute";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        outer_conditions(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT CASE WHEN pg_catalog.pg_attribute.atthasdef THEN \
             (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
             WHERE d.adrelid = pg_catalog.pg_attribute.attrelid) END AS x, \
             (SELECT y FROM pg_catalog.pg_attrdef WHERE pg_attrdef.adnum = 1 AND flag) AS kept_unqualified, \
             (SELECT count(*) FROM d WHERE a.flag) AS kept_count FROM pg_catalog.pg_attribute"
        );
    }

    #[test]
    fn a_subquery_comparing_with_the_serial_sequence_is_null() {
        let sql = "SELECT CASE WHEN (a.attidentity != '') THEN (SELECT json_build_object('always', a.attidentity = 'a') \
                   FROM pg_catalog.pg_sequence WHERE a.attidentity != '' AND pg_catalog.pg_sequence.seqrelid = \
                   CAST(CAST(pg_catalog.pg_get_serial_sequence(CAST(CAST(a.attrelid AS REGCLASS) AS TEXT), a.attname) AS REGCLASS) AS OID)) \
                   ELSE NULL END AS identity_options, (SELECT count(*) FROM t WHERE t.x = NULL) AS n FROM pg_attribute a";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        serial_sequences(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT CASE WHEN (a.attidentity <> '') THEN NULL ELSE NULL END AS identity_options, \
             (SELECT count(*) FROM t WHERE t.x = NULL) AS n FROM pg_attribute a"
        );
    }

    #[test]
    fn expanded_arrays_and_their_fields_become_unnests_and_subscripts() {
        let sql = "SELECT (information_schema._pg_expandarray(i.indkey)).n AS key_seq, \
                   _pg_expandarray(i.indkey) AS keys FROM pg_index i WHERE (r.KEYS).X = 1 \
                   AND con.confkey[pos.n] = 2";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        expand_arrays(&mut statement);
        field_access(&mut statement);
        let expanded = "named_struct('x', unnest(i.indkey), 'n', \
                        unnest(range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1)))";
        assert_eq!(
            statement.to_string(),
            format!(
                "SELECT ({expanded})['n'] AS key_seq, {expanded} AS keys FROM pg_index i \
                 WHERE (r.KEYS)['x'] = 1 AND con.confkey[pos.n] = 2"
            )
        );
    }

    #[test]
    fn information_schema_constraint_views_are_read_from_pg_catalog() {
        let sql = "SELECT 1 FROM \"information_schema\".\"table_constraints\" AS tc \
                   JOIN information_schema.key_column_usage kc ON true JOIN information_schema.columns c ON true \
                   JOIN information_schema.tables t ON true";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        information_schema_views(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT 1 FROM pg_catalog.\"table_constraints\" AS tc \
             JOIN pg_catalog.key_column_usage kc ON true JOIN pg_catalog.columns c ON true JOIN information_schema.tables t ON true"
        );
    }

    #[test]
    fn computed_names_cast_to_regclass_are_looked_up() {
        let sql = "SELECT CAST(CAST(format('%I.%I', s, t) AS REGCLASS) AS OID), 'pg_class'::regclass, a.attrelid::regclass FROM x";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        regclass_casts(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT CAST(to_regclass(format('%I.%I', s, t)) AS OID), 'pg_class'::REGCLASS, to_regclass(a.attrelid) FROM x"
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
        let sql =
            "SELECT array(SELECT attname FROM pg_attribute a WHERE a.attrelid = c.oid) FROM c";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        array_subqueries(&mut statement);
        let text = statement.to_string();
        assert!(
            text.contains("(SELECT array_agg(attname) FROM pg_attribute"),
            "{text}"
        );
    }

    #[test]
    fn arrays_of_unnested_elements_become_array_transform() {
        for (from, element) in [
            ("pg_catalog.unnest(t.reloptions) x", "x"),
            ("unnest(t.reloptions) x", "x"),
            ("unnest(t.reloptions) AS u(x)", "x"),
        ] {
            let sql = format!(
                "SELECT array_to_string(c.reloptions || array(select 'toast.' || {element} from {from}), ', ') FROM c"
            );
            let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
                .unwrap()
                .remove(0);
            array_subqueries(&mut statement);
            let text = statement.to_string();
            assert!(
                text.contains("array_transform(t.reloptions, x -> 'toast.' || x)"),
                "{from}: {text}"
            );
        }
        // With a filter it stays a subquery.
        let sql = "SELECT array(select x from unnest(t.o) x WHERE x > 1) FROM c";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        array_subqueries(&mut statement);
        assert!(statement.to_string().contains("array_agg(x)"));
    }
}

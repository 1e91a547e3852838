//! Bound parameters as table-function arguments: `SELECT * FROM dept_ranking($1)`
//! over the extended protocol (prepared statements, psycopg 3's server-side binding,
//! pgjdbc past its prepare threshold, dashboard variables).
//!
//! A table function is planned when it is called, so its arguments must be constants
//! by then, while a prepared statement is planned before its parameters are known.
//! Such a statement is therefore planned twice:
//! - at Parse, to describe it: its table-function placeholders replaced by sample
//!   constants (the output columns of a table function do not depend on its
//!   arguments), and the placeholders kept visible, with their types, in a filter
//!   that is always true, so the client is told how many parameters to send and of
//!   which type ([`describe`]);
//! - at Execute, with every parameter in place as a constant ([`bind`]); that plan
//!   is the one that runs.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ParamValues, Result, ScalarValue};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{lit, Expr as DfExpr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Statement, TableFactor, Value, Visitor, VisitorMut,
};

use crate::walk::{exprs_mut, visit, visit_mut};

/// A placeholder among a table function's arguments: its number (`$2` is 2),
/// whether the argument is a year, and whether it may be a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub number: usize,
    pub year: bool,
    pub fraction: bool,
}

/// The placeholders `statement` passes to table functions.
pub fn slots(statement: &Statement) -> Vec<Slot> {
    struct Find(Vec<Slot>);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let Some((name, args)) = crate::shape::table_function_call(factor) {
                let name = name.to_string();
                let years = crate::functions::YEAR_ARGUMENTS
                    .iter()
                    .find(|(f, _, _)| name.eq_ignore_ascii_case(f))
                    .map_or(0, |(_, _, n)| *n);
                for (i, arg) in args.into_iter().enumerate() {
                    if let Some(number) = under_casts(arg) {
                        let fraction = crate::functions::FRACTION_ARGUMENTS
                            .iter()
                            .any(|(f, at)| name.eq_ignore_ascii_case(f) && *at == i);
                        self.0.push(Slot {
                            number,
                            year: i < years,
                            fraction,
                        });
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(Vec::new());
    let _ = visit(statement, &mut find);
    find.0
}

/// The plan that describes `statement` at Parse: its table-function placeholders
/// replaced by sample constants, their numbers and types kept in a filter that is
/// always true. `plan` plans a statement as the server does; a non-year argument is
/// tried as a number, then as a text: a grade scheme, then an object kind.
pub async fn describe<F, Fut, E>(
    statement: &Statement,
    slots: &[Slot],
    plan: F,
) -> Result<LogicalPlan, E>
where
    F: Fn(Statement) -> Fut,
    Fut: std::future::Future<Output = Result<LogicalPlan, E>>,
{
    let mut last = None;
    for other in [
        SampleArg::Number,
        SampleArg::Text("mof"),
        SampleArg::Text("project"),
    ] {
        let sample = sampled(statement, slots, other);
        match plan(sample).await {
            Ok(planned) => {
                let kept = slots.iter().fold(lit(true), |kept, slot| {
                    let data_type = match (slot.year, other) {
                        (true, _) => DataType::Int64,
                        (false, SampleArg::Number) if slot.fraction => DataType::Float64,
                        (false, SampleArg::Number) => DataType::Int64,
                        (false, SampleArg::Text(_)) => DataType::Utf8,
                    };
                    let placeholder = DfExpr::Placeholder(Placeholder::new_with_field(
                        format!("${}", slot.number),
                        Some(std::sync::Arc::new(
                            datafusion::arrow::datatypes::Field::new("", data_type, true),
                        )),
                    ));
                    kept.and(placeholder.is_null().or(lit(true)))
                });
                return Ok(LogicalPlanBuilder::from(planned)
                    .filter(kept)
                    .and_then(|b| b.build())
                    .expect("a boolean filter over a planned query"));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once"))
}

#[derive(Debug, Clone, Copy)]
enum SampleArg {
    Number,
    Text(&'static str),
}

/// `statement` with its table-function placeholders replaced: years by 2000, other
/// arguments by 1 or a text.
fn sampled(statement: &Statement, slots: &[Slot], other: SampleArg) -> Statement {
    let mut statement = statement.clone();
    let _ = visit_mut(
        &mut statement,
        &mut InCalls(|expr: &mut Expr| {
            if let Some(number) = under_casts(expr) {
                let year = slots.iter().any(|s| s.number == number && s.year);
                *expr = match (year, other) {
                    (true, _) => number_expr("2000"),
                    (false, SampleArg::Number) => number_expr("1"),
                    (false, SampleArg::Text(text)) => {
                        Expr::value(Value::SingleQuotedString(text.into()))
                    }
                };
            }
        }),
    );
    statement
}

/// `statement` with every placeholder replaced by its bound value, as a constant.
pub fn bind(statement: &Statement, params: &ParamValues) -> Result<Statement> {
    let values: Vec<ScalarValue> = match params {
        ParamValues::List(values) => values.iter().map(|v| v.value.clone()).collect(),
        ParamValues::Map(_) => return Ok(statement.clone()),
    };
    let mut statement = statement.clone();
    let mut failed = None;
    let _ = exprs_mut(&mut statement, |expr| {
        if let Some(number) = placeholder(expr) {
            match values.get(number - 1).map(constant) {
                Some(Ok(constant)) => *expr = constant,
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
        }
        ControlFlow::<()>::Continue(())
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(statement),
    }
}

/// A bound value as SQL: `2023`, `'mof'`, `CAST('2023-01-01' AS DATE)`, `NULL`.
fn constant(value: &ScalarValue) -> Result<Expr> {
    datafusion::sql::unparser::expr_to_sql(&lit(value.clone()))
}

fn number_expr(text: &str) -> Expr {
    Expr::value(Value::Number(text.into(), false))
}

/// The number of a `$n` placeholder.
fn placeholder(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The placeholder an argument is, perhaps cast (`$1::int`) or in parentheses.
fn under_casts(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => under_casts(expr),
        other => placeholder(other),
    }
}

/// Calls `change` on each expression given as a table-function argument.
struct InCalls<F>(F);

impl<F: FnMut(&mut Expr)> VisitorMut for InCalls<F> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let args = match factor {
            TableFactor::Table {
                args: Some(args), ..
            } => &mut args.args,
            TableFactor::Function { args, .. } => args,
            _ => return ControlFlow::Continue(()),
        };
        for arg in args {
            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
            | FunctionArg::Named {
                arg: FunctionArgExpr::Expr(e),
                ..
            } = arg
            {
                (self.0)(e);
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ParamValues;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn statement(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn finds_the_placeholders_table_functions_take() {
        let s = statement(
            "SELECT * FROM dept_ranking($1) r JOIN indicator_callouts($2, $3) c USING (dept_code) WHERE r.rank < $4",
        );
        assert_eq!(
            slots(&s),
            [
                Slot {
                    number: 1,
                    year: true,
                    fraction: false
                },
                Slot {
                    number: 2,
                    year: true,
                    fraction: false
                },
                Slot {
                    number: 3,
                    year: false,
                    fraction: false
                }
            ]
        );
        assert!(slots(&statement("SELECT * FROM dept_scores WHERE year = $1")).is_empty());
        assert_eq!(
            slots(&statement("SELECT * FROM dept_ranking($1::text)")),
            [Slot {
                number: 1,
                year: true,
                fraction: false
            }]
        );
        let cast = statement("SELECT count(*) FROM dept_ranking($1::text)");
        assert_eq!(
            sampled(&cast, &slots(&cast), SampleArg::Number).to_string(),
            "SELECT count(*) FROM dept_ranking(2000)"
        );
    }

    #[test]
    fn samples_then_binds() {
        let s = statement("SELECT * FROM grade_distribution($1, $2) WHERE projects > $3");
        let found = slots(&s);
        assert_eq!(
            sampled(&s, &found, SampleArg::Text("mof")).to_string(),
            "SELECT * FROM grade_distribution(2000, 'mof') WHERE projects > $3"
        );
        let params = ParamValues::from(vec![
            ScalarValue::Int32(Some(2023)),
            ScalarValue::Utf8(Some("local".into())),
            ScalarValue::Int64(Some(0)),
        ]);
        assert_eq!(
            bind(&s, &params).unwrap().to_string(),
            "SELECT * FROM grade_distribution(2023, 'local') WHERE projects > 0"
        );
    }
}

//! Which years hold data, and which are complete: every department of the year scored
//! on every level-3 indicator of the department framework (the `dept` rows of
//! `indicators`). Reports take the newest complete year for `year = "latest"`; the
//! command line and reports name the years there are when asked about one with none.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int32Type, Int64Type};
use datafusion::sql::sqlparser::ast::{
    Expr, Statement, TableFactor, UnaryOperator, Value, Visitor,
};

use datafusion::sql::parser::Statement as DFStatement;

use crate::model::TABLES;
use crate::{Engine, Result};

/// One year of department scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptYear {
    pub year: i32,
    /// Departments with at least one score that year.
    pub departments: u64,
    /// Of those, the departments scored on every framework indicator.
    pub complete: u64,
    /// The fewest indicators any department of the year has scored.
    pub fewest: u64,
}

impl DeptYear {
    pub fn is_complete(&self) -> bool {
        self.departments > 0 && self.complete == self.departments
    }
}

/// The department framework's level-3 indicators and each year of dept_scores, oldest first.
pub async fn dept_years(engine: &Engine) -> Result<(u64, Vec<DeptYear>)> {
    let framework = engine
        .query("SELECT CAST(count(*) AS BIGINT) FROM indicators WHERE framework = 'dept'")
        .await?;
    let framework = framework
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
        .unwrap_or(0) as u64;
    let batches = engine
        .query(&format!(
            "SELECT CAST(y AS INT) AS year, CAST(count(*) AS BIGINT) AS departments,
                    CAST(sum(CASE WHEN scored >= {framework} THEN 1 ELSE 0 END) AS BIGINT) AS complete,
                    CAST(min(scored) AS BIGINT) AS fewest
             FROM (SELECT year AS y, dept_code, count(*) AS scored FROM dept_scores
                   GROUP BY year, dept_code)
             GROUP BY y ORDER BY y"
        ))
        .await?;
    let mut years = Vec::new();
    for batch in &batches {
        let year = batch.column(0).as_primitive::<Int32Type>();
        let counts: Vec<_> = (1..4)
            .map(|i| batch.column(i).as_primitive::<Int64Type>())
            .collect();
        for row in 0..batch.num_rows() {
            years.push(DeptYear {
                year: year.value(row),
                departments: counts[0].value(row) as u64,
                complete: counts[1].value(row) as u64,
                fewest: counts[2].value(row) as u64,
            });
        }
    }
    Ok((framework, years))
}

/// The year `year = "latest"` means: the newest complete year of dept_scores, with a
/// note for every newer year passed over and for a complete year with fewer
/// departments than the year before. `None`: dept_scores holds no rows.
pub async fn latest_complete(engine: &Engine) -> Result<Option<(i32, Vec<String>)>> {
    let (framework, years) = dept_years(engine).await?;
    let Some(newest) = years.last() else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    let chosen = match years.iter().rposition(DeptYear::is_complete) {
        Some(i) => i,
        None => {
            notes.push(format!(
                "no year has every department scored on all {framework} indicators of the \
                 department framework; {} is the newest year with scores",
                newest.year
            ));
            years.len() - 1
        }
    };
    let year = years[chosen].year;
    for skipped in &years[chosen + 1..] {
        notes.push(format!(
            "{} is not complete: {} of its {} departments are scored on all {framework} \
             indicators (the fewest scored: {}); using {year}, the newest complete year \
             (--param year={} to use {} anyway)",
            skipped.year,
            skipped.complete,
            skipped.departments,
            skipped.fewest,
            skipped.year,
            skipped.year
        ));
    }
    if let Some(before) = chosen.checked_sub(1).map(|i| &years[i]) {
        if years[chosen].departments < before.departments {
            notes.push(format!(
                "{year} has {} departments scored, {} had {}",
                years[chosen].departments, before.year, before.departments
            ));
        }
    }
    Ok(Some((year, notes)))
}

/// The years `table` holds rows for.
pub async fn of_table(engine: &Engine, table: &str) -> Result<BTreeSet<i32>> {
    let batches = engine
        .query(&format!(
            "SELECT DISTINCT CAST(year AS INT) AS y FROM {table}"
        ))
        .await?;
    let mut years = BTreeSet::new();
    for batch in &batches {
        let column = batch.column(0).as_primitive::<Int32Type>();
        years.extend(
            (0..column.len())
                .filter(|&i| column.is_valid(i))
                .map(|i| column.value(i)),
        );
    }
    Ok(years)
}

/// The years any table with a year column holds rows for.
pub async fn with_data(engine: &Engine) -> Result<BTreeSet<i32>> {
    let mut years = BTreeSet::new();
    for def in TABLES.iter().filter(|t| t.partitioned()) {
        years.extend(of_table(engine, def.name).await?);
    }
    Ok(years)
}

/// Years as a reader wants them: runs joined, `2015, 2019–2023`; `none` when empty.
pub fn describe(years: &BTreeSet<i32>) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for &year in years {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == year => *end = year,
            _ => runs.push((year, year)),
        }
    }
    if runs.is_empty() {
        return "none".into();
    }
    runs.iter()
        .map(|&(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a}, {b}"),
            _ => format!("{a}–{b}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table function asked about years: its name and the years among its constant
/// arguments (two for a range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub function: String,
    pub table: &'static str,
    pub years: Vec<i64>,
}

/// The year-taking table functions `statement` calls with constant years.
pub fn asked(statement: &DFStatement) -> Vec<Asked> {
    match statement {
        DFStatement::Statement(s) => asked_in(s),
        DFStatement::Explain(explain) => asked(&explain.statement),
        _ => Vec::new(),
    }
}

fn asked_in(statement: &Statement) -> Vec<Asked> {
    struct Calls(Vec<Asked>);
    impl Visitor for Calls {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            let Some((name, args)) = crate::shape::table_function_call(factor) else {
                return ControlFlow::Continue(());
            };
            let function = name.to_string().to_lowercase();
            let known = crate::functions::YEAR_ARGUMENTS
                .iter()
                .find(|(f, _, _)| *f == function);
            if let Some(&(_, table, count)) = known {
                let years: Vec<i64> = args.iter().take(count).filter_map(|e| int(e)).collect();
                if years.len() == count.min(args.len()) && !years.is_empty() {
                    self.0.push(Asked {
                        function,
                        table,
                        years,
                    });
                }
            }
            ControlFlow::Continue(())
        }
    }
    fn int(expr: &Expr) -> Option<i64> {
        match expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse().ok(),
                _ => None,
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => int(expr).map(|i| -i),
            Expr::Nested(e) => int(e),
            _ => None,
        }
    }
    let mut calls = Calls(Vec::new());
    let _ = crate::walk::visit(statement, &mut calls);
    calls.0
}

/// For a statement that returned no rows, given its calls ([`asked`]): a note for each
/// year-taking table function asked about years its table holds no rows for, naming
/// the years there are.
pub async fn empty_result_notes(engine: &Engine, calls: &[Asked]) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for call in calls {
        let present = of_table(engine, call.table).await?;
        let (from, to) = match call.years.as_slice() {
            [year] => (*year, *year),
            [from, to, ..] => (*from.min(to), *from.max(to)),
            [] => continue,
        };
        if present.iter().any(|&y| (from..=to).contains(&i64::from(y))) {
            continue;
        }
        let asked = if from == to {
            format!("for {from}")
        } else {
            format!("from {from} to {to}")
        };
        notes.push(format!(
            "{}: {} has no rows {asked}; its years are {}",
            call.function,
            call.table,
            describe(&present)
        ));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_read_as_runs() {
        let years: BTreeSet<i32> = [2015, 2019, 2020, 2021, 2023, 2024].into();
        assert_eq!(describe(&years), "2015, 2019–2021, 2023, 2024");
        assert_eq!(describe(&BTreeSet::new()), "none");
    }

    #[test]
    fn the_years_asked_are_the_constant_ones() {
        let statement = |sql: &str| {
            DFStatement::Statement(Box::new(
                datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &datafusion::sql::sqlparser::dialect::GenericDialect {},
                    sql,
                )
                .unwrap()
                .remove(0),
            ))
        };
        let calls = asked(&statement(
            "SELECT * FROM DEPT_RANKING(1800) r JOIN dept_trend(2019, 2023) t USING (dept_code)
             WHERE r.rank IN (SELECT rank FROM exante_summary(year => 2020))",
        ));
        let found: Vec<(&str, &[i64])> = calls
            .iter()
            .map(|c| (c.function.as_str(), c.years.as_slice()))
            .collect();
        assert_eq!(
            found,
            [
                ("dept_ranking", &[1800][..]),
                ("dept_trend", &[2019, 2023][..]),
                ("exante_summary", &[2020][..])
            ]
        );
        assert!(asked(&statement("SELECT * FROM dept_ranking($1)")).is_empty());
        assert!(asked(&statement("SELECT * FROM dept_scores")).is_empty());
    }
}

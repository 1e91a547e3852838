//! `dept_ranking(year)`: the whole-department ranking of a year by total score, with
//! ties ranked as SQL RANK (1, 2, 2, 4) and the movement from exactly the year before.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;

use super::perf_grade::GradeScheme;
use crate::rollup::Rollups;

use super::sql_table::{document, schema, Args, SqlTable, TEXT};

const SIGNATURE: &str = "dept_ranking(year INTEGER)";

#[derive(Debug)]
pub struct DeptRanking {
    pub scheme: GradeScheme,
    pub rollups: Option<Arc<Rollups>>,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("rank", DataType::Int64, false),
        ("dept_code", TEXT, false),
        ("dept_name", TEXT, true),
        ("total_score", DataType::Decimal128(9, 2), false),
        ("grade", TEXT, true),
        ("prev_rank", DataType::Int64, true),
        ("rank_change", DataType::Int64, true),
        ("score_change", DataType::Decimal128(9, 2), true),
        ("indicators_scored", DataType::Int64, false),
        ("complete", DataType::Boolean, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "The departments of a year ranked by total score (the sum of their indicator scores), \
         highest first; ties share a rank and skip the next (1, 2, 2, 4). grade is perf_grade of the \
         total in the configured scheme. prev_rank, rank_change (prev_rank − rank: positive moved up) \
         and score_change compare with exactly the year before and are NULL for a department not \
         ranked that year. A department missing indicator scores ranks on what it has: \
         indicators_scored counts them and complete says whether it has a score for every \
         level-3 indicator of the department framework (the `dept` rows of indicators).",
        SIGNATURE,
        &columns(),
        "SELECT rank, dept_name, total_score, grade, rank_change FROM dept_ranking(2023) LIMIT 10;",
        &[("year", "the evaluation year")],
    )
}

impl TableFunctionImpl for DeptRanking {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("dept_ranking", SIGNATURE, call.exprs(), 1, 1)?;
        let year = args.year(0, "year")?;
        let prior = year - 1;
        let scheme = self.scheme.name();
        // Department totals: from the rollup when it is fresh, else summed from the
        // scores. Complete means scored on the whole department framework.
        let rollup = self.rollups.as_ref().and_then(|r| r.fresh("dept_totals"));
        let totals = match rollup {
            Some(_) => format!(
                "SELECT year, dept_code, total_score, indicators_scored
                 FROM kpidb_rollup.public.dept_totals WHERE year IN ({year}, {prior})"
            ),
            None => format!(
                "SELECT year, dept_code, sum(score) AS total_score, count(*) AS indicators_scored
                 FROM dept_scores WHERE year IN ({year}, {prior})
                 GROUP BY year, dept_code"
            ),
        };
        let indicators_of_year =
            "SELECT count(*) AS n FROM indicators WHERE framework = 'dept'".to_string();
        let rollups: Vec<_> = rollup.into_iter().map(|p| ("dept_totals", p)).collect();
        SqlTable::plan_with(
            call.session(),
            columns(),
            &format!(
                "WITH totals AS ({totals}),
                 ranked AS (
                   SELECT *, RANK() OVER (PARTITION BY year ORDER BY total_score DESC) AS rnk,
                          count(*) OVER (PARTITION BY year) AS ranked_departments
                   FROM totals),
                 indicators_of_year AS ({indicators_of_year})
                 SELECT cur.rnk AS rank, cur.dept_code, d.dept_name, cur.total_score,
                        perf_grade(cur.total_score, '{scheme}') AS grade,
                        prev.rnk AS prev_rank,
                        CAST(prev.rnk AS BIGINT) - CAST(cur.rnk AS BIGINT) AS rank_change,
                        cur.total_score - prev.total_score AS score_change,
                        cur.indicators_scored,
                        cur.indicators_scored >= i.n AS complete
                 FROM ranked cur
                 CROSS JOIN indicators_of_year i
                 LEFT JOIN departments d ON d.dept_code = cur.dept_code
                 LEFT JOIN ranked prev ON prev.year = {prior} AND prev.dept_code = cur.dept_code
                 WHERE cur.year = {year}"
            ),
            "rank, dept_code",
            &rollups,
        )
    }
}

//! `dept_trend(from_year, to_year)`: each department's total-score trend over a span of
//! years, as a least-squares slope in points per year.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::Documentation;

use crate::rollup::Rollups;

use super::sql_table::{document, schema, Args, SqlTable, TEXT};

const SIGNATURE: &str = "dept_trend(from_year INTEGER, to_year INTEGER)";

/// A slope of at least this many points per year, up or down, is a trend.
pub const TREND_THRESHOLD: f64 = 0.5;

#[derive(Debug)]
pub struct DeptTrend {
    pub rollups: Option<Arc<Rollups>>,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("dept_code", TEXT, false),
        ("dept_name", TEXT, true),
        ("years_present", DataType::Int64, false),
        ("first_total", DataType::Decimal128(9, 2), false),
        ("last_total", DataType::Decimal128(9, 2), false),
        ("slope", DataType::Float64, true),
        ("direction", TEXT, true),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "Each department's total score over from_year..to_year (inclusive): the years it was \
         scored, its first and last totals, and the least-squares slope of total against year in \
         points per year (gaps are fine: it fits the years present). direction is 'improving' \
         for a slope ≥ 0.5, 'declining' for ≤ −0.5, 'stable' between; slope and direction are \
         NULL for a department scored in one year only.",
        SIGNATURE,
        &columns(),
        "SELECT dept_name, first_total, last_total, slope, direction FROM dept_trend(2019, 2023)\nORDER BY slope DESC;",
        &[("from_year", "first year of the span"), ("to_year", "last year of the span")],
    )
}

impl TableFunctionImpl for DeptTrend {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("dept_trend", SIGNATURE, call.exprs(), 2, 2)?;
        let (from, to) = (args.year(0, "from_year")?, args.year(1, "to_year")?);
        if from > to {
            return plan_err!("dept_trend: from_year {from} is after to_year {to}");
        }
        let t = TREND_THRESHOLD;
        // Department totals per year: from the rollup when it is fresh.
        let rollup = self.rollups.as_ref().and_then(|r| r.fresh("dept_totals"));
        let totals = match rollup {
            Some(_) => format!(
                "SELECT dept_code, year, total_score AS total
                 FROM kpidb_rollup.public.dept_totals WHERE year BETWEEN {from} AND {to}"
            ),
            None => format!(
                "SELECT dept_code, year, sum(score) AS total
                 FROM dept_scores WHERE year BETWEEN {from} AND {to}
                 GROUP BY dept_code, year"
            ),
        };
        let rollups: Vec<_> = rollup.into_iter().map(|p| ("dept_totals", p)).collect();
        SqlTable::plan_with(
            call.session(),
            columns(),
            &format!(
                "WITH totals AS ({totals}),
                 fitted AS (
                   SELECT dept_code, count(*) AS years_present,
                          first_value(total ORDER BY year) AS first_total,
                          last_value(total ORDER BY year) AS last_total,
                          -- Least squares on exact sums (decimal totals, integer years from
                          -- {from}), divided once: the same double whatever order the rows
                          -- are summed in, from the raw scores or from the rollup.
                          CASE WHEN count(*) >= 2
                               THEN CAST(count(*) * sum(total * (year - {from})) - sum(year - {from}) * sum(total) AS DOUBLE)
                                    / CAST(count(*) * sum((year - {from}) * (year - {from})) - sum(year - {from}) * sum(year - {from}) AS DOUBLE)
                          END AS slope
                   FROM totals GROUP BY dept_code)
                 SELECT f.dept_code, d.dept_name, f.years_present, f.first_total, f.last_total, f.slope,
                        CASE WHEN f.slope IS NULL THEN NULL
                             WHEN f.slope >= {t} THEN 'improving'
                             WHEN f.slope <= -{t} THEN 'declining'
                             ELSE 'stable' END AS direction
                 FROM fitted f LEFT JOIN departments d ON d.dept_code = f.dept_code"
            ),
            "dept_code",
            &rollups,
        )
    }
}

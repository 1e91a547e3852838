//! `indicator_callouts(year, n)`: for each level-2 indicator, the departments in the
//! bottom n by score rate on it (点名通报), every department tied at the cut-off included.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::Documentation;

use crate::rollup::Rollups;

use super::sql_table::{document, schema, Args, SqlTable, TEXT};

const SIGNATURE: &str = "indicator_callouts(year INTEGER, n INTEGER)";

#[derive(Debug)]
pub struct IndicatorCallouts {
    pub rollups: Option<Arc<Rollups>>,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("level1", TEXT, false),
        ("level2", TEXT, false),
        ("dept_code", TEXT, false),
        ("dept_name", TEXT, true),
        ("score", DataType::Decimal128(9, 2), false),
        ("max_score", DataType::Decimal128(9, 2), false),
        ("score_rate", DataType::Float64, true),
        ("rank_from_bottom", DataType::Int64, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "For each level-2 indicator of the department framework, the departments ranked in the \
         bottom n by score rate on it (the sum of their level-3 scores under it over the points \
         available), lowest first. rank_from_bottom follows RANK, so every department tied at the \
         cut-off is included and a list may hold more than n.",
        SIGNATURE,
        &columns(),
        "SELECT level2, dept_name, score_rate FROM indicator_callouts(2023, 3);",
        &[
            ("year", "the evaluation year"),
            ("n", "how many from the bottom (≥ 1)"),
        ],
    )
}

impl TableFunctionImpl for IndicatorCallouts {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("indicator_callouts", SIGNATURE, call.exprs(), 2, 2)?;
        let year = args.year(0, "year")?;
        let n = args.int(1, "n")?;
        if n < 1 {
            return plan_err!("indicator_callouts: n must be at least 1, got {n}");
        }
        // Level-2 subtotals per department: from the rollup when it is fresh.
        let rollup = self.rollups.as_ref().and_then(|r| r.fresh("level2_totals"));
        // The rollup holds each year's rows already rated and ranked.
        let ranked = match rollup {
            Some(_) => format!(
                "SELECT level1, level2, dept_code, score, max_score, score_rate, rank_from_bottom
                 FROM kpidb_rollup.public.level2_totals
                 WHERE year = {year} AND rank_from_bottom <= {n}"
            ),
            None => format!(
                "SELECT *, score_rate(score, max_score) AS score_rate,
                        RANK() OVER (PARTITION BY level1, level2
                                     ORDER BY score_rate(score, max_score) ASC) AS rank_from_bottom
                 FROM (SELECT i.level1, i.level2, s.dept_code,
                              sum(s.score) AS score, sum(s.max_score) AS max_score
                       FROM dept_scores s
                       JOIN indicators i ON i.indicator_code = s.indicator_code
                       WHERE s.year = {year} AND i.framework = 'dept'
                       GROUP BY i.level1, i.level2, s.dept_code)"
            ),
        };
        let rollups: Vec<_> = rollup.into_iter().map(|p| ("level2_totals", p)).collect();
        SqlTable::plan_with(
            call.session(),
            columns(),
            &format!(
                "WITH ranked AS ({ranked})
                 SELECT r.level1, r.level2, r.dept_code, d.dept_name, r.score, r.max_score,
                        r.score_rate, r.rank_from_bottom
                 FROM ranked r LEFT JOIN departments d ON d.dept_code = r.dept_code
                 WHERE r.rank_from_bottom <= {n}"
            ),
            "level1, level2, rank_from_bottom, dept_code",
            &rollups,
        )
    }
}

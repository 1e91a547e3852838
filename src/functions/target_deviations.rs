//! `target_deviations(year, tolerance)`: the year-end targets met far below or far
//! above their value — unmet targets, and targets set too low (目标设定偏低).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::Documentation;

use super::objects::names;
use super::sql_table::{document, schema, Args, SqlTable, TEXT};
use crate::model::MEASURE;

const SIGNATURE: &str = "target_deviations(year INTEGER, tolerance NUMERIC)";

#[derive(Debug)]
pub struct TargetDeviations;

pub fn columns() -> SchemaRef {
    schema(&[
        ("object_kind", TEXT, false),
        ("object_code", TEXT, false),
        ("name", TEXT, true),
        ("indicator_code", TEXT, false),
        ("indicator", TEXT, true),
        ("comparator", TEXT, false),
        ("unit", TEXT, true),
        ("target_value", MEASURE, true),
        ("actual_value", MEASURE, true),
        ("completion_rate", DataType::Float64, false),
        ("deviation", TEXT, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "The quantitative year-end targets of a year whose completion_rate is below \
         1 − tolerance ('under': not met) or above 1 + tolerance ('over': over-achieved, which \
         suggests a target set too low), furthest from 1 first. Qualitative targets and targets \
         without a year-end result (as_of_month 12) are left out.",
        SIGNATURE,
        &columns(),
        "SELECT * FROM target_deviations(2023, 0.2);",
        &[
            ("year", "the year evaluated"),
            (
                "tolerance",
                "how far from 1 a completion rate may be, e.g. 0.2",
            ),
        ],
    )
}

impl TableFunctionImpl for TargetDeviations {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("target_deviations", SIGNATURE, call.exprs(), 2, 2)?;
        let year = args.year(0, "year")?;
        let tolerance = args.number(1, "tolerance")?;
        if tolerance < 0.0 {
            return plan_err!("target_deviations: tolerance must be 0 or more, got {tolerance}");
        }
        let (joins, name) = names("d", &year.to_string());
        let (low, high) = (1.0 - tolerance, 1.0 + tolerance);
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "WITH d AS (
                   SELECT t.object_kind, t.object_code, t.indicator_code, t.comparator, t.unit,
                          t.target_value, r.actual_value,
                          completion_rate(r.actual_value, t.target_value, t.comparator) AS completion_rate
                   FROM perf_targets t
                   JOIN target_results r
                     ON t.year = r.year AND t.object_kind = r.object_kind
                    AND t.object_code = r.object_code AND t.indicator_code = r.indicator_code
                   WHERE t.year = {year} AND r.year = {year} AND r.as_of_month = 12
                     AND t.comparator <> 'qualitative')
                 SELECT d.*, {name} AS name, i.level3 AS indicator,
                        CASE WHEN d.completion_rate < 1 THEN 'under' ELSE 'over' END AS deviation,
                        abs(d.completion_rate - 1) AS distance
                 FROM d
                 LEFT JOIN indicators i ON i.indicator_code = d.indicator_code
                 {joins}
                 WHERE d.completion_rate < {low:?} OR d.completion_rate > {high:?}"
            ),
            "distance DESC, object_kind, object_code, indicator_code",
        )
    }
}

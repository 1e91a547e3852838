//! `monitoring_warnings(year, month)`: the dual monitoring (双监控) of a month —
//! budget execution against time progress, and targets unlikely to be met — as red,
//! yellow and green warnings.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;

use super::objects::{execution_by, month_argument, names};
use super::sql_table::{document, schema, Args, SqlTable, TEXT};
use crate::model::MONEY;

const SIGNATURE: &str = "monitoring_warnings(year INTEGER, month INTEGER)";

/// The execution gaps at or below which a warning is red and yellow
/// (`[functions] monitoring_red_gap` / `monitoring_yellow_gap`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub red: f64,
    pub yellow: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            red: -0.20,
            yellow: -0.10,
        }
    }
}

#[derive(Debug)]
pub struct MonitoringWarnings {
    pub thresholds: Thresholds,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("object_kind", TEXT, false),
        ("object_code", TEXT, false),
        ("name", TEXT, true),
        ("budget_amount", MONEY, true),
        ("executed_amount", MONEY, true),
        ("execution_rate", DataType::Float64, true),
        ("time_progress", DataType::Float64, false),
        ("execution_gap", DataType::Float64, true),
        ("targets", DataType::Int64, false),
        ("unlikely_targets", DataType::Int64, false),
        ("level", TEXT, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "Every department and project with budget execution reported by the end of the month \
         (the latest report at or before it; execution is cumulative) or with a target judged \
         unlikely in that month's progress, worst first. execution_rate = executed / budget; \
         time_progress = month / 12; execution_gap = execution_rate − time_progress. level is \
         'red' when execution_gap ≤ −0.20 or any target is 'unlikely', 'yellow' when \
         execution_gap ≤ −0.10, else 'green' (thresholds: [functions] monitoring_red_gap and \
         monitoring_yellow_gap in kpidb.toml); the comparisons are exact on the decimal \
         amounts. A zero budget has no rate and no gap. The practice of 预算执行和绩效目标实现 \
         程度\"双监控\" (Ministry of Finance, 绩效监控管理办法).",
        SIGNATURE,
        &columns(),
        "SELECT level, count(*) FROM monitoring_warnings(2023, 6) GROUP BY level;",
        &[
            ("year", "the budget year"),
            (
                "month",
                "the month monitored, 1–12 (6: the mid-year monitoring)",
            ),
        ],
    )
}

impl TableFunctionImpl for MonitoringWarnings {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("monitoring_warnings", SIGNATURE, call.exprs(), 2, 2)?;
        let year = args.year(0, "year")?;
        let month = month_argument(&args, "monitoring_warnings", 1)?;
        let (joins, name) = names("o", &year.to_string());
        let execution = execution_by(year, month);
        // gap ≤ g ⇔ 12·executed − month·budget ≤ 12·g·budget, exact in decimals.
        let at_or_below = |gap: f64| {
            format!(
                "(x.budget_amount > 0 AND 12 * x.executed_amount - {month} * x.budget_amount
                   <= 12 * CAST('{gap}' AS DECIMAL(20, 10)) * x.budget_amount)"
            )
        };
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "WITH x AS ({execution}),
                 unlikely AS (
                   SELECT object_kind, object_code, count(*) AS unlikely_targets
                   FROM target_results
                   WHERE year = {year} AND as_of_month = {month} AND likelihood = 'unlikely'
                   GROUP BY object_kind, object_code),
                 targets AS (
                   SELECT object_kind, object_code, count(*) AS targets
                   FROM perf_targets WHERE year = {year} GROUP BY object_kind, object_code),
                 o AS (SELECT object_kind, object_code FROM x
                       UNION SELECT object_kind, object_code FROM unlikely)
                 SELECT o.object_kind, o.object_code, {name} AS name,
                        x.budget_amount, x.executed_amount,
                        CASE WHEN x.budget_amount > 0
                             THEN CAST(x.executed_amount AS DOUBLE) / CAST(x.budget_amount AS DOUBLE)
                        END AS execution_rate,
                        CAST({month} AS DOUBLE) / 12 AS time_progress,
                        CASE WHEN x.budget_amount > 0
                             THEN CAST(12 * x.executed_amount - {month} * x.budget_amount AS DOUBLE)
                                  / CAST(12 * x.budget_amount AS DOUBLE)
                        END AS execution_gap,
                        coalesce(targets.targets, 0) AS targets,
                        coalesce(unlikely.unlikely_targets, 0) AS unlikely_targets,
                        CASE WHEN coalesce(unlikely.unlikely_targets, 0) > 0 OR {red} THEN 'red'
                             WHEN {yellow} THEN 'yellow'
                             ELSE 'green' END AS level,
                        CASE WHEN coalesce(unlikely.unlikely_targets, 0) > 0 OR {red} THEN 0
                             WHEN {yellow} THEN 1 ELSE 2 END AS severity
                 FROM o
                 LEFT JOIN x ON o.object_kind = x.object_kind AND o.object_code = x.object_code
                 LEFT JOIN unlikely ON o.object_kind = unlikely.object_kind
                                   AND o.object_code = unlikely.object_code
                 LEFT JOIN targets ON o.object_kind = targets.object_kind
                                  AND o.object_code = targets.object_code
                 {joins}",
                red = at_or_below(self.thresholds.red),
                yellow = at_or_below(self.thresholds.yellow),
            ),
            "severity, execution_gap NULLS LAST, object_kind, object_code",
        )
    }
}

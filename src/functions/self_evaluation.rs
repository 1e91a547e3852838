//! `self_evaluation(year [, object_kind])`: the year-end self-evaluation (绩效自评) of
//! every department and project with year-end target results, scored as the Ministry
//! of Finance's project self-evaluation practice scores it: budget execution 10
//! points, performance targets 90.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;

use super::objects::{execution_by, kind_argument, names};
use super::perf_grade::GradeScheme;
use super::sql_table::{document, schema, Args, SqlTable, TEXT};
use crate::model::{MONEY, SCORE};

const SIGNATURE: &str = "self_evaluation(year INTEGER [, object_kind TEXT])";

#[derive(Debug)]
pub struct SelfEvaluation {
    pub scheme: GradeScheme,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("object_kind", TEXT, false),
        ("object_code", TEXT, false),
        ("name", TEXT, true),
        ("budget_amount", MONEY, true),
        ("executed_amount", MONEY, true),
        ("execution_rate", DataType::Float64, true),
        ("execution_points", SCORE, false),
        ("target_points", SCORE, false),
        ("total_score", SCORE, false),
        ("grade", TEXT, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "The year-end self-evaluation of every department and project with year-end \
         (as_of_month 12) target results in the year, best first. Scoring (the Ministry of \
         Finance's project self-evaluation practice, 项目支出绩效自评: 预算执行率 10 分, 绩效指标 \
         90 分): execution_points = min(executed / budget, 1) × 10 from the latest execution \
         reported in the year (0 without a budget or a report); target_points = Σ target_points \
         over the object's targets (a target without a year-end result earns 0), scaled to 90 \
         when its max_scores do not add up to 90; each rounded half-up to two decimals, and \
         total_score = execution_points + target_points, graded as perf_grade (the configured \
         scheme).",
        SIGNATURE,
        &columns(),
        "SELECT * FROM self_evaluation(2023, 'project') LIMIT 10;",
        &[
            ("year", "the year evaluated"),
            (
                "object_kind",
                "'dept' or 'project' (optional; both when left out)",
            ),
        ],
    )
}

/// The common table expressions that end in `scored`: each self-evaluated object's
/// (object_kind, object_code, budget_amount, executed_amount, execution_rate,
/// execution_points, target_points) in `year`; `only` is an extra condition on the
/// results (`AND object_kind = …`) or empty. results_application reads them too.
pub(super) fn scored(year: i64, only: &str) -> String {
    let execution = execution_by(year, 12);
    format!(
        "results AS (
           SELECT object_kind, object_code, indicator_code, actual_value, awarded_score
           FROM target_results WHERE year = {year} AND as_of_month = 12 {only}),
         evaluated AS (SELECT DISTINCT object_kind, object_code FROM results),
         earned AS (
           SELECT t.object_kind, t.object_code,
                  sum(coalesce(target_points(r.actual_value, t.target_value, t.comparator,
                                             t.max_score, r.awarded_score), 0)) AS earned,
                  sum(t.max_score) AS possible
           FROM perf_targets t
           JOIN evaluated e ON t.object_kind = e.object_kind AND t.object_code = e.object_code
           LEFT JOIN results r ON t.object_kind = r.object_kind AND t.object_code = r.object_code
                              AND t.indicator_code = r.indicator_code
           WHERE t.year = {year}
           GROUP BY t.object_kind, t.object_code),
         scored AS (
           SELECT earned.object_kind, earned.object_code, x.budget_amount, x.executed_amount,
                  CASE WHEN x.budget_amount > 0
                       THEN CAST(x.executed_amount AS DOUBLE) / CAST(x.budget_amount AS DOUBLE)
                  END AS execution_rate,
                  coalesce(target_points(x.executed_amount, x.budget_amount, '>=', 10), 0) AS execution_points,
                  coalesce(target_points(earned.earned, earned.possible, '>=', 90), 0) AS target_points
           FROM earned
           LEFT JOIN ({execution}) AS x
             ON earned.object_kind = x.object_kind AND earned.object_code = x.object_code)"
    )
}

impl TableFunctionImpl for SelfEvaluation {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("self_evaluation", SIGNATURE, call.exprs(), 1, 2)?;
        let year = args.year(0, "year")?;
        let only = match kind_argument(&args, "self_evaluation", 1)? {
            Some(kind) => format!("AND object_kind = '{kind}'"),
            None => String::new(),
        };
        let (joins, name) = names("scored", &year.to_string());
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "WITH {scored}
                 SELECT scored.object_kind, scored.object_code, {name} AS name,
                        scored.budget_amount, scored.executed_amount, scored.execution_rate,
                        scored.execution_points, scored.target_points,
                        scored.execution_points + scored.target_points AS total_score,
                        perf_grade(scored.execution_points + scored.target_points, '{scheme}') AS grade
                 FROM scored {joins}",
                scored = scored(year, &only),
                scheme = self.scheme.name(),
            ),
            "object_kind, total_score DESC, object_code",
        )
    }
}

//! SQL the target, monitoring and results functions share: the name of the
//! department or project a row is about, and the execution reported by a month.

use datafusion::common::{plan_err, Result};

use super::sql_table::Args;
use crate::model::aliases::canonical_value;
use crate::model::OBJECT_KINDS;

/// LEFT JOINs that name what `alias` (a relation with object_kind and object_code)
/// is about in `year`, and the name expression: a department's dept_name or a
/// project's project_name.
pub fn names(alias: &str, year: &str) -> (String, &'static str) {
    (
        format!(
            "LEFT JOIN departments named_dept
               ON {alias}.object_kind = 'dept' AND named_dept.dept_code = {alias}.object_code
             LEFT JOIN projects named_project
               ON {alias}.object_kind = 'project' AND named_project.year = {year}
              AND named_project.project_code = {alias}.object_code"
        ),
        "coalesce(named_dept.dept_name, named_project.project_name)",
    )
}

/// Each object's execution as last reported by the end of `month` of `year`: its
/// row of the greatest as_of_month ≤ month (execution is cumulative, so a month
/// without a report takes the one before it).
pub fn execution_by(year: i64, month: i64) -> String {
    format!(
        "SELECT object_kind, object_code, as_of_month, budget_amount, executed_amount
         FROM (SELECT *, row_number() OVER (PARTITION BY object_kind, object_code
                                            ORDER BY as_of_month DESC) AS latest
               FROM budget_execution WHERE year = {year} AND as_of_month <= {month}) AS reported
         WHERE latest = 1"
    )
}

/// The optional object_kind argument `i`: `None` for both kinds.
pub fn kind_argument(args: &Args, name: &str, i: usize) -> Result<Option<&'static str>> {
    let Some(kind) = args.text(i, "object_kind")? else {
        return Ok(None);
    };
    let kind = canonical_value("object_kind", kind.trim());
    match OBJECT_KINDS.iter().find(|k| **k == kind) {
        Some(kind) => Ok(Some(kind)),
        None => plan_err!(
            "{name}: unknown object_kind '{kind}'; the kinds are {}",
            OBJECT_KINDS.join(", ")
        ),
    }
}

/// A month argument: 1 to 12.
pub fn month_argument(args: &Args, name: &str, i: usize) -> Result<i64> {
    let month = args.int(i, "month")?;
    if !(1..=12).contains(&month) {
        return plan_err!("{name}: month must be from 1 to 12, got {month}");
    }
    Ok(month)
}

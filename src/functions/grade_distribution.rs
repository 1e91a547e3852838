//! `grade_distribution(year [, scheme])`: the finance key evaluations of a year by grade.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::Documentation;

use super::perf_grade::GradeScheme;
use super::sql_table::{document, schema, Args, SqlTable, TEXT};

const SIGNATURE: &str = "grade_distribution(year INTEGER [, scheme TEXT])";

#[derive(Debug)]
pub struct GradeDistribution {
    pub scheme: GradeScheme,
}

pub fn columns() -> SchemaRef {
    schema(&[("grade", TEXT, false), ("projects", DataType::Int64, false)])
}

pub fn documentation() -> Documentation {
    document(
        "How many finance key evaluations (eval_kind 'finance_evaluation') of a year fall in each \
         grade, best grade first; grades no project reached are left out. Unscored evaluations \
         are not counted. scheme is as in perf_grade (default from the configuration).",
        SIGNATURE,
        &columns(),
        "SELECT * FROM grade_distribution(2023, 'local');  -- 优秀 2, 良好 13, 一般 1",
        &[
            ("year", "the evaluation year"),
            ("scheme", "'mof', 'local' or 'en' (optional)"),
        ],
    )
}

impl TableFunctionImpl for GradeDistribution {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("grade_distribution", SIGNATURE, call.exprs(), 1, 2)?;
        let year = args.year(0, "year")?;
        let scheme = match args.text(1, "scheme")? {
            None => self.scheme,
            Some(name) => match GradeScheme::parse(&name) {
                Some(s) => s,
                None => {
                    return plan_err!(
                        "grade_distribution: unknown scheme '{name}'; the schemes are {}",
                        GradeScheme::NAMES
                    )
                }
            },
        };
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "SELECT perf_grade(total_score, '{}') AS grade, count(*) AS projects, min(total_score) AS best
                 FROM evaluations
                 WHERE year = {year} AND eval_kind = 'finance_evaluation' AND total_score IS NOT NULL
                 GROUP BY 1",
                scheme.name()
            ),
            "best DESC",
        )
    }
}

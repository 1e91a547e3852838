//! `results_application(evaluated_year)`: how a year's evaluation results were used
//! in later budgets (结果应用), and whether each decision follows the policy: 低效无效
//! 资金一律削减或取消, good results kept or given priority.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;

use super::perf_grade::GradeScheme;
use super::sql_table::{document, schema, Args, SqlTable, TEXT};
use crate::model::aliases::canonical_value;
use crate::model::{ACTIONS, MONEY, SCORE};

const SIGNATURE: &str = "results_application(evaluated_year INTEGER)";

/// The actions that follow the policy for each grade band, best band first: a bit
/// per action of [`ACTIONS`]. `[functions.results_policy]` in kpidb.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultsPolicy(pub [u8; 4]);

impl Default for ResultsPolicy {
    /// 优 prioritise or maintain; 良 maintain or cut; 中 cut; 差 cut or cancel.
    fn default() -> Self {
        let bit = |action: &str| 1u8 << ACTIONS.iter().position(|a| *a == action).unwrap_or(0);
        ResultsPolicy([
            bit("prioritise") | bit("maintain"),
            bit("maintain") | bit("cut"),
            bit("cut"),
            bit("cut") | bit("cancel"),
        ])
    }
}

impl ResultsPolicy {
    /// The policy from `{grade: [action, …]}`; a grade is named in any scheme (优,
    /// 优秀, excellent), an action in English or Chinese; grades left out keep the default.
    pub fn from_map(map: &BTreeMap<String, Vec<String>>) -> std::result::Result<Self, String> {
        let mut policy = ResultsPolicy::default();
        for (grade, actions) in map {
            let band = [GradeScheme::Mof, GradeScheme::Local, GradeScheme::En]
                .iter()
                .find_map(|s| s.labels().iter().position(|l| *l == grade.trim()))
                .ok_or_else(|| {
                    format!(
                        "results_policy: unknown grade '{grade}'; name one of 优/良/中/差 \
                         (or 优秀/良好/一般/较差, excellent/good/fair/poor)"
                    )
                })?;
            let mut bits = 0u8;
            for action in actions {
                let action = canonical_value("action", action.trim());
                let i = ACTIONS.iter().position(|a| *a == action).ok_or_else(|| {
                    format!(
                        "results_policy: unknown action '{action}' for {grade}; the actions are {}",
                        ACTIONS.join(", ")
                    )
                })?;
                bits |= 1 << i;
            }
            policy.0[band] = bits;
        }
        Ok(policy)
    }

    /// The actions allowed in band `band`.
    fn allowed(&self, band: usize) -> Vec<&'static str> {
        ACTIONS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0[band] & (1 << i) != 0)
            .map(|(_, a)| *a)
            .collect()
    }
}

impl<'de> serde::Deserialize<'de> for ResultsPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        ResultsPolicy::from_map(&map).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug)]
pub struct ResultsApplication {
    pub scheme: GradeScheme,
    pub policy: ResultsPolicy,
}

pub fn columns() -> SchemaRef {
    schema(&[
        ("object_kind", TEXT, false),
        ("object_code", TEXT, false),
        ("name", TEXT, true),
        ("budget_year", DataType::Int32, false),
        ("score", SCORE, false),
        ("score_source", TEXT, false),
        ("grade", TEXT, false),
        ("requested_amount", MONEY, false),
        ("approved_amount", MONEY, false),
        ("change", MONEY, false),
        ("action", TEXT, false),
        ("follows_policy", DataType::Boolean, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "Each department and project evaluated in the year that has a budget decision using \
         that evaluation (budget_decisions.evaluated_year), with its score and grade, the \
         amounts requested and approved, the change (approved − requested) and the action, and \
         follows_policy: whether the action is one the grade → action policy allows \
         ([functions.results_policy] in kpidb.toml; default 优 prioritise or maintain, 良 \
         maintain or cut, 中 cut, 差 cut or cancel — 低效无效资金一律削减或取消). The score is the \
         finance evaluation where there is one (a project's finance_evaluation total_score; a \
         department's whole-department evaluation, Σ dept_scores), else the year's \
         self_evaluation total_score. Policy breaches first.",
        SIGNATURE,
        &columns(),
        "SELECT * FROM results_application(2023) WHERE NOT follows_policy;",
        &[(
            "evaluated_year",
            "the year whose evaluation results were used",
        )],
    )
}

impl TableFunctionImpl for ResultsApplication {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("results_application", SIGNATURE, call.exprs(), 1, 1)?;
        let year = args.year(0, "evaluated_year")?;
        let scheme = self.scheme;
        let follows: Vec<String> = scheme
            .labels()
            .iter()
            .enumerate()
            .map(|(band, label)| {
                let allowed: Vec<String> = self
                    .policy
                    .allowed(band)
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect();
                match allowed.is_empty() {
                    true => format!("WHEN '{label}' THEN FALSE"),
                    false => format!("WHEN '{label}' THEN d.action IN ({})", allowed.join(", ")),
                }
            })
            .collect();
        let (joins, name) = super::objects::names("d", &year.to_string());
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "WITH {scored},
                 finance AS (
                   SELECT 'project' AS object_kind, project_code AS object_code,
                          total_score AS score, 'finance_evaluation' AS score_source
                   FROM evaluations
                   WHERE year = {year} AND eval_kind = 'finance_evaluation' AND total_score IS NOT NULL
                   UNION ALL
                   SELECT 'dept', dept_code, sum(score), 'dept_evaluation'
                   FROM dept_scores WHERE year = {year} GROUP BY dept_code),
                 own AS (
                   SELECT s.object_kind, s.object_code, s.execution_points + s.target_points AS score,
                          'self_evaluation' AS score_source
                   FROM scored s
                   LEFT JOIN finance f ON f.object_kind = s.object_kind AND f.object_code = s.object_code
                   WHERE f.object_code IS NULL),
                 scores AS (SELECT * FROM finance UNION ALL SELECT * FROM own),
                 d AS (
                   SELECT b.object_kind, b.object_code, b.budget_year, b.requested_amount,
                          b.approved_amount, b.action, scores.score, scores.score_source,
                          perf_grade(scores.score, '{scheme}') AS grade
                   FROM budget_decisions b
                   JOIN scores ON scores.object_kind = b.object_kind AND scores.object_code = b.object_code
                   WHERE b.evaluated_year = {year})
                 SELECT d.object_kind, d.object_code, {name} AS name, d.budget_year, d.score,
                        d.score_source, d.grade, d.requested_amount, d.approved_amount,
                        d.approved_amount - d.requested_amount AS change, d.action,
                        CASE d.grade {follows} ELSE FALSE END AS follows_policy
                 FROM d {joins}",
                scored = super::self_evaluation::scored(year, ""),
                scheme = scheme.name(),
                follows = follows.join(" "),
            ),
            "follows_policy, object_kind, score DESC, object_code",
        )
    }
}

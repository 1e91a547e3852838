//! kpidb's SQL functions, one file each. `register_all` is the one place they are added
//! to a session and `documentation` the one place `\df` and FUNCTIONS.md read.
//!
//! | function | kind |
//! |---|---|
//! | perf_grade, score_rate, cut_rate, yoy_pct, completion_rate, target_points | scalar |
//! | prior_year | window |
//! | lowest_k, coverage_rate, rectification_rate | aggregate |
//! | dept_ranking, indicator_callouts, dept_trend, grade_distribution, exante_summary | table |
//! | self_evaluation, monitoring_warnings, target_deviations, results_application | table |
//!
//! `objects` holds the SQL the target, monitoring and results functions share;
//! `sql_table` the machinery of every table function.

mod completion_rate;
mod coverage_rate;
mod cut_rate;
pub mod dept_ranking;
pub mod dept_trend;
pub mod exante_summary;
pub mod grade_distribution;
pub mod indicator_callouts;
mod lowest_k;
pub mod monitoring_warnings;
pub(crate) mod numeric;
mod objects;
pub mod perf_grade;
mod prior_year;
mod rectification_rate;
pub mod results_application;
mod score_rate;
pub mod self_evaluation;
mod sql_table;
pub mod target_deviations;
pub mod target_points;
mod yoy_pct;

use std::sync::Arc;

use datafusion::execution::context::SessionState;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use monitoring_warnings::Thresholds;
pub use perf_grade::GradeScheme;
pub use results_application::ResultsPolicy;
pub use sql_table::UnreachedLimits;

use crate::rollup::Rollups;

/// The table functions that take years: each one's name, the table whose years it
/// reads, and how many of its first arguments are years.
pub const YEAR_ARGUMENTS: &[(&str, &str, usize)] = &[
    ("dept_ranking", "dept_scores", 1),
    ("indicator_callouts", "dept_scores", 1),
    ("dept_trend", "dept_scores", 2),
    ("grade_distribution", "evaluations", 1),
    ("exante_summary", "exante_reviews", 1),
    ("self_evaluation", "target_results", 1),
    ("monitoring_warnings", "budget_execution", 1),
    ("target_deviations", "target_results", 1),
    ("results_application", "evaluations", 1),
];

/// The table-function arguments that may be fractions (a tolerance), by function and
/// position: a bound parameter there is described as a double, not an integer.
pub const FRACTION_ARGUMENTS: &[(&str, usize)] = &[("target_deviations", 1)];

/// `[functions]` in kpidb.toml.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionsConfig {
    /// Default scheme of perf_grade: "mof" (优/良/中/差), "local" (优秀/良好/一般/较差) or "en".
    #[serde(default)]
    pub grade_scheme: GradeScheme,
    /// Whether the table functions read the rollups built at ingest (default true).
    #[serde(default)]
    pub rollups: Option<bool>,
    /// monitoring_warnings: an execution gap at or below this is red (default -0.20).
    #[serde(default)]
    pub monitoring_red_gap: Option<f64>,
    /// monitoring_warnings: an execution gap at or below this is yellow (default -0.10).
    #[serde(default)]
    pub monitoring_yellow_gap: Option<f64>,
    /// results_application: the actions each grade allows, e.g. `优 = ["prioritise",
    /// "maintain"]`; grades left out keep the default.
    #[serde(default)]
    pub results_policy: Option<ResultsPolicy>,
}

impl FunctionsConfig {
    pub fn options(&self) -> FunctionOptions {
        let defaults = Thresholds::default();
        FunctionOptions {
            grade_scheme: self.grade_scheme,
            rollups: self.rollups.unwrap_or(true),
            thresholds: Thresholds {
                red: self.monitoring_red_gap.unwrap_or(defaults.red),
                yellow: self.monitoring_yellow_gap.unwrap_or(defaults.yellow),
            },
            policy: self.results_policy.unwrap_or_default(),
        }
    }
}

/// Settings the functions take from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct FunctionOptions {
    /// The scheme perf_grade, dept_ranking and grade_distribution use when none is given.
    pub grade_scheme: GradeScheme,
    /// Whether the table functions read fresh rollups (`[functions] rollups`, default
    /// true); false always reads the raw tables.
    pub rollups: bool,
    /// The execution gaps of monitoring_warnings' red and yellow levels.
    pub thresholds: Thresholds,
    /// The grade → action policy of results_application.
    pub policy: ResultsPolicy,
}

impl Default for FunctionOptions {
    fn default() -> Self {
        FunctionOptions {
            grade_scheme: GradeScheme::default(),
            rollups: true,
            thresholds: Thresholds::default(),
            policy: ResultsPolicy::default(),
        }
    }
}

/// kpidb's scalar functions (public for benches and embedders).
pub fn scalars(options: FunctionOptions) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(perf_grade::PerfGrade::new(options.grade_scheme)),
        score_rate::udf(),
        cut_rate::udf(),
        yoy_pct::udf(),
        ScalarUDF::from(completion_rate::CompletionRate::new()),
        ScalarUDF::from(target_points::TargetPoints::new()),
    ]
}

fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(lowest_k::LowestK::new()),
        AggregateUDF::from(coverage_rate::CoverageRate::new()),
        AggregateUDF::from(rectification_rate::RectificationRate::new()),
    ]
}

fn windows() -> Vec<WindowUDF> {
    vec![WindowUDF::from(prior_year::PriorYear::new())]
}

/// Registers kpidb's scalar, aggregate and window functions on `state`: all a cluster's
/// scheduler and executors need, the table functions having been planned by then.
pub fn register_row_functions(state: &mut SessionState, options: FunctionOptions) {
    for f in scalars(options) {
        // Registering replaces any function of the same name; nothing to report.
        let _ = state.register_udf(Arc::new(f));
    }
    for f in aggregates() {
        let _ = state.register_udaf(Arc::new(f));
    }
    for f in windows() {
        let _ = state.register_udwf(Arc::new(f));
    }
}

/// Registers every kpidb function on `ctx`; the table functions read `rollups` where
/// they are fresh (none: always the raw tables).
pub fn register_all(ctx: &SessionContext, options: FunctionOptions, rollups: Option<Arc<Rollups>>) {
    for f in scalars(options) {
        ctx.register_udf(f);
    }
    for f in aggregates() {
        ctx.register_udaf(f);
    }
    for f in windows() {
        ctx.register_udwf(f);
    }
    let scheme = options.grade_scheme;
    ctx.register_udtf(
        "dept_ranking",
        Arc::new(dept_ranking::DeptRanking {
            scheme,
            rollups: rollups.clone(),
        }),
    );
    ctx.register_udtf(
        "indicator_callouts",
        Arc::new(indicator_callouts::IndicatorCallouts {
            rollups: rollups.clone(),
        }),
    );
    ctx.register_udtf("dept_trend", Arc::new(dept_trend::DeptTrend { rollups }));
    ctx.register_udtf(
        "grade_distribution",
        Arc::new(grade_distribution::GradeDistribution { scheme }),
    );
    ctx.register_udtf("exante_summary", Arc::new(exante_summary::ExanteSummary));
    ctx.register_udtf(
        "self_evaluation",
        Arc::new(self_evaluation::SelfEvaluation { scheme }),
    );
    ctx.register_udtf(
        "monitoring_warnings",
        Arc::new(monitoring_warnings::MonitoringWarnings {
            thresholds: options.thresholds,
        }),
    );
    ctx.register_udtf(
        "target_deviations",
        Arc::new(target_deviations::TargetDeviations),
    );
    ctx.register_udtf(
        "results_application",
        Arc::new(results_application::ResultsApplication {
            scheme,
            policy: options.policy,
        }),
    );
}

/// (name, kind, documentation) of every kpidb function, in the order of the module table.
pub fn documentation() -> Vec<(String, &'static str, Documentation)> {
    let options = FunctionOptions::default();
    let mut docs = Vec::new();
    for f in scalars(options) {
        docs.push((
            f.name().to_string(),
            "scalar",
            f.documentation().cloned().expect("documented"),
        ));
    }
    for f in windows() {
        docs.push((
            f.name().to_string(),
            "window",
            f.documentation().cloned().expect("documented"),
        ));
    }
    for f in aggregates() {
        docs.push((
            f.name().to_string(),
            "aggregate",
            f.documentation().cloned().expect("documented"),
        ));
    }
    docs.push((
        "dept_ranking".into(),
        "table",
        dept_ranking::documentation(),
    ));
    docs.push((
        "indicator_callouts".into(),
        "table",
        indicator_callouts::documentation(),
    ));
    docs.push(("dept_trend".into(), "table", dept_trend::documentation()));
    docs.push((
        "grade_distribution".into(),
        "table",
        grade_distribution::documentation(),
    ));
    docs.push((
        "exante_summary".into(),
        "table",
        exante_summary::documentation(),
    ));
    docs.push((
        "self_evaluation".into(),
        "table",
        self_evaluation::documentation(),
    ));
    docs.push((
        "monitoring_warnings".into(),
        "table",
        monitoring_warnings::documentation(),
    ));
    docs.push((
        "target_deviations".into(),
        "table",
        target_deviations::documentation(),
    ));
    docs.push((
        "results_application".into(),
        "table",
        results_application::documentation(),
    ));
    docs
}

/// FUNCTIONS.md: every function's description, syntax, arguments and example.
pub fn markdown() -> String {
    let mut out = String::from(
        "# kpidb functions\n\n<!-- Generated by `kpidb functions --markdown`; edit the function's file in src/functions/. -->\n\n",
    );
    for (name, kind, doc) in documentation() {
        out.push_str(&format!(
            "## `{name}` ({kind})\n\n{}\n\n```sql\n{}\n```\n\n",
            doc.description, doc.syntax_example
        ));
        if let Some(args) = &doc.arguments {
            for (arg, text) in args {
                out.push_str(&format!("- `{arg}`: {text}\n"));
            }
            out.push('\n');
        }
        if let Some(example) = &doc.sql_example {
            out.push_str(&format!("Example:\n\n```sql\n{example}\n```\n\n"));
        }
    }
    out
}

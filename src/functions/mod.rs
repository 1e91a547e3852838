//! kpidb's SQL functions, one file each. `register_all` is the one place they are added
//! to a session and `documentation` the one place `\df` and FUNCTIONS.md read.
//!
//! | function | kind |
//! |---|---|
//! | perf_grade, score_rate, cut_rate, yoy_pct | scalar |
//! | prior_year | window |
//! | lowest_k, coverage_rate | aggregate |
//! | dept_ranking, indicator_callouts, dept_trend, grade_distribution, exante_summary | table |

mod coverage_rate;
mod cut_rate;
pub mod dept_ranking;
pub mod dept_trend;
pub mod exante_summary;
pub mod grade_distribution;
pub mod indicator_callouts;
mod lowest_k;
pub(crate) mod numeric;
pub mod perf_grade;
mod prior_year;
mod score_rate;
mod sql_table;
mod yoy_pct;

use std::sync::Arc;

use datafusion::execution::context::SessionState;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use perf_grade::GradeScheme;

use crate::rollup::Rollups;

/// The table functions that take years: each one's name, the table whose years it
/// reads, and how many of its first arguments are years.
pub const YEAR_ARGUMENTS: &[(&str, &str, usize)] = &[
    ("dept_ranking", "dept_scores", 1),
    ("indicator_callouts", "dept_scores", 1),
    ("dept_trend", "dept_scores", 2),
    ("grade_distribution", "evaluations", 1),
    ("exante_summary", "exante_reviews", 1),
];

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
}

impl FunctionsConfig {
    pub fn options(&self) -> FunctionOptions {
        FunctionOptions {
            grade_scheme: self.grade_scheme,
            rollups: self.rollups.unwrap_or(true),
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
}

impl Default for FunctionOptions {
    fn default() -> Self {
        FunctionOptions {
            grade_scheme: GradeScheme::default(),
            rollups: true,
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
    ]
}

fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(lowest_k::LowestK::new()),
        AggregateUDF::from(coverage_rate::CoverageRate::new()),
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

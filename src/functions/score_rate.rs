//! `score_rate(score, max_score)`: the share of the points an indicator gave.

use std::sync::LazyLock;

use datafusion::logical_expr::{DocSection, Documentation, ScalarUDF};

use super::numeric::{ratio, Rate};

const SIGNATURE: &str = "score_rate(score NUMERIC, max_score NUMERIC) -> DOUBLE";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection::default(),
        "The share of its points an indicator scored: score / max_score, as a double. \
         NULL when max_score is 0 or NULL (never a division by zero).",
        SIGNATURE,
    )
    .with_sql_example(
        "SELECT dept_code, score_rate(score, max_score) FROM dept_scores WHERE year = 2023;",
    )
    .with_argument("score", "points scored")
    .with_argument("max_score", "points available")
    .build()
});

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Rate::new(
        "score_rate",
        SIGNATURE,
        |score, max| (max != 0).then(|| ratio(score, max)),
        |score, max| (max != 0.0).then(|| score / max),
        &DOC,
    ))
}

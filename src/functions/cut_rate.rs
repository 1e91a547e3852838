//! `cut_rate(requested, approved)`: the share of a request cut by an ex-ante review.

use std::sync::LazyLock;

use datafusion::logical_expr::{DocSection, Documentation, ScalarUDF};

use super::numeric::{ratio, Rate};

const SIGNATURE: &str = "cut_rate(requested NUMERIC, approved NUMERIC) -> DOUBLE";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection::default(),
        "The share of a requested amount cut by review: (requested − approved) / requested, \
         as a double; the difference is exact for decimal money. NULL when requested is 0 or \
         either is NULL. For a year's average cut rate use Σcut / Σrequested: \
         cut_rate(sum(requested_amount), sum(approved_amount)).",
        SIGNATURE,
    )
    .with_sql_example(
        "SELECT cut_rate(sum(requested_amount), sum(approved_amount)) FROM exante_reviews\n\
         WHERE year = 2023 AND conclusion <> 'returned';  -- 0.38083…",
    )
    .with_argument("requested", "amount requested (万元)")
    .with_argument("approved", "amount approved (万元)")
    .build()
});

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Rate::new(
        "cut_rate",
        SIGNATURE,
        |requested, approved| (requested != 0).then(|| ratio(requested - approved, requested)),
        |requested, approved| (requested != 0.0).then(|| (requested - approved) / requested),
        &DOC,
    ))
}

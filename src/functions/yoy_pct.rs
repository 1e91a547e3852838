//! `yoy_pct(current, previous)`: year-over-year change relative to the previous value.

use std::sync::LazyLock;

use datafusion::logical_expr::{DocSection, Documentation, ScalarUDF};

use super::numeric::{ratio, Rate};

const SIGNATURE: &str = "yoy_pct(current NUMERIC, previous NUMERIC) -> DOUBLE";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection::default(),
        "Year-over-year change as a fraction: (current − previous) / |previous|, a double. \
         NULL when previous is 0 or NULL. Pair it with prior_year() so a missing year \
         gives NULL instead of comparing across the gap.",
        SIGNATURE,
    )
    .with_sql_example(
        "SELECT year, budget, yoy_pct(budget, prior_year(budget, year) OVER (ORDER BY year))\n\
         FROM (SELECT year, sum(budget_amount) AS budget FROM unit_budgets GROUP BY year);",
    )
    .with_argument("current", "this year's value")
    .with_argument("previous", "the previous year's value")
    .build()
});

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Rate::new(
        "yoy_pct",
        SIGNATURE,
        |current, previous| (previous != 0).then(|| ratio(current - previous, previous.abs())),
        |current, previous| (previous != 0.0).then(|| (current - previous) / previous.abs()),
        &DOC,
    ))
}

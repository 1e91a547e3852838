//! `exante_summary(year)`: the ex-ante review totals of a year as the annual report
//! states them. The cut rate is Σcut / Σrequested (not a mean of rates), rounded
//! half-up to two decimals in percent.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;

use super::sql_table::{document, schema, Args, SqlTable};

const SIGNATURE: &str = "exante_summary(year INTEGER)";

#[derive(Debug)]
pub struct ExanteSummary;

pub fn columns() -> SchemaRef {
    schema(&[
        ("projects_reviewed", DataType::Int64, false),
        ("requested_total", DataType::Decimal128(18, 2), false),
        ("approved_total", DataType::Decimal128(18, 2), false),
        ("cut_total", DataType::Decimal128(18, 2), false),
        ("cut_rate", DataType::Decimal128(5, 2), true),
        ("rejected", DataType::Int64, false),
        ("returned", DataType::Int64, false),
    ])
}

pub fn documentation() -> Documentation {
    document(
        "One row of ex-ante review totals for a year (none for a year without reviews). Returned \
         projects are not reviewed: they count only in returned. Amounts are exact decimals in 万元; \
         cut_rate is cut_total / requested_total in percent, rounded half-up to two decimals \
         (NULL when nothing was requested).",
        SIGNATURE,
        &columns(),
        "SELECT * FROM exante_summary(2023);  -- 59, 24053.22, 14892.89, 9160.33, 38.08, 4, 1",
        &[("year", "the budget year reviewed")],
    )
}

impl TableFunctionImpl for ExanteSummary {
    fn call_with_args(&self, call: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let args = Args::new("exante_summary", SIGNATURE, call.exprs(), 1, 1)?;
        let year = args.year(0, "year")?;
        // Half-up on exact hundredths: floor((cut * 10000 * 2 + requested) / (2 * requested)).
        SqlTable::plan(
            call.session(),
            columns(),
            &format!(
                "WITH totals AS (
                   SELECT count(*) FILTER (WHERE conclusion <> 'returned') AS projects_reviewed,
                          coalesce(sum(requested_amount) FILTER (WHERE conclusion <> 'returned'), 0) AS requested_total,
                          coalesce(sum(approved_amount) FILTER (WHERE conclusion <> 'returned'), 0) AS approved_total,
                          count(*) FILTER (WHERE conclusion = 'reject') AS rejected,
                          count(*) FILTER (WHERE conclusion = 'returned') AS returned
                   FROM exante_reviews WHERE year = {year}
                   HAVING count(*) > 0),
                 cents AS (
                   SELECT *, requested_total - approved_total AS cut_total,
                          CAST(requested_total * 100 AS DECIMAL(38, 0)) AS requested_cents,
                          CAST((requested_total - approved_total) * 100 AS DECIMAL(38, 0)) AS cut_cents
                   FROM totals)
                 SELECT projects_reviewed, requested_total, approved_total, cut_total,
                        CASE WHEN requested_cents = 0 THEN NULL
                             ELSE CAST(floor((cut_cents * 20000 + requested_cents) / (requested_cents * 2)) AS DECIMAL(38, 0)) / 100
                        END AS cut_rate,
                        rejected, returned
                 FROM cents"
            ),
            "projects_reviewed",
        )
    }
}

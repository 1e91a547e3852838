//! `yoy_pct(current, previous)`: year-over-year change relative to the previous value.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::numeric::{binary_rate, check_count, coerce, ratio};

const SIGNATURE: &str = "yoy_pct(current NUMERIC, previous NUMERIC) -> DOUBLE";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct YoyPct {
    signature: Signature,
}

impl YoyPct {
    pub fn new() -> Self {
        YoyPct {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for YoyPct {
    fn name(&self) -> &str {
        "yoy_pct"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_count(self.name(), SIGNATURE, arg_types, 2, 2)?;
        Ok(vec![coerce(self.name(), SIGNATURE, arg_types)?; 2])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        binary_rate(
            self.name(),
            &args.args,
            |current, previous| (previous != 0).then(|| ratio(current - previous, previous.abs())),
            |current, previous| (previous != 0.0).then(|| (current - previous) / previous.abs()),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}

//! `cut_rate(requested, approved)`: the share of a request cut by an ex-ante review.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::numeric::{binary_rate, check_count, coerce, ratio};

const SIGNATURE: &str = "cut_rate(requested NUMERIC, approved NUMERIC) -> DOUBLE";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CutRate {
    signature: Signature,
}

impl CutRate {
    pub fn new() -> Self {
        CutRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CutRate {
    fn name(&self) -> &str {
        "cut_rate"
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
            |requested, approved| (requested != 0).then(|| ratio(requested - approved, requested)),
            |requested, approved| (requested != 0.0).then(|| (requested - approved) / requested),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}

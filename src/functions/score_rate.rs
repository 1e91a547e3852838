//! `score_rate(score, max_score)`: the share of the points an indicator gave.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use super::numeric::{binary_rate, check_count, coerce, ratio};

const SIGNATURE: &str = "score_rate(score NUMERIC, max_score NUMERIC) -> DOUBLE";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScoreRate {
    signature: Signature,
}

impl ScoreRate {
    pub fn new() -> Self {
        ScoreRate {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ScoreRate {
    fn name(&self) -> &str {
        "score_rate"
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
            |score, max| (max != 0).then(|| ratio(score, max)),
            |score, max| (max != 0.0).then(|| score / max),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: std::sync::OnceLock<Documentation> = std::sync::OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DocSection::default(),
                "The share of its points an indicator scored: score / max_score, as a double. \
                 NULL when max_score is 0 or NULL (never a division by zero).",
                SIGNATURE,
            )
            .with_sql_example("SELECT dept_code, score_rate(score, max_score) FROM dept_scores WHERE year = 2023;")
            .with_argument("score", "points scored")
            .with_argument("max_score", "points available")
            .build()
        }))
    }
}

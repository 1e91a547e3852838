//! `version()` as PostgreSQL clients expect it: drivers and BI tools (SQLAlchemy,
//! hence Superset) parse "PostgreSQL X.Y" out of it to pick their dialect.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Version {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(Version {
        signature: Signature::nullary(Volatility::Stable),
    })
}

pub fn text() -> String {
    format!(
        "PostgreSQL 16.6 (kpidb {}, Apache DataFusion {}) on {}-{}, read-only",
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

impl ScalarUDFImpl for Version {
    fn name(&self) -> &str {
        "version"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text()))))
    }
}

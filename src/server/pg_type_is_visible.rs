//! `pg_type_is_visible(oid)`: whether a type is visible on the search path. kpidb has
//! one schema and no user types, so every type is; SQLAlchemy's reflection asks.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeIsVisible {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(PgTypeIsVisible {
        signature: Signature::any(1, Volatility::Stable),
    })
}

impl ScalarUDFImpl for PgTypeIsVisible {
    fn name(&self) -> &str {
        "pg_type_is_visible"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let visible = ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)));
        match &args.args[0] {
            ColumnarValue::Scalar(_) => Ok(visible),
            ColumnarValue::Array(_) => {
                Ok(ColumnarValue::Array(visible.to_array(args.number_rows)?))
            }
        }
    }
}

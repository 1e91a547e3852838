//! `pg_type_is_visible(oid)` and `pg_function_is_visible(oid)`: whether a type or a
//! function is visible on the search path. kpidb has one schema, so every one is;
//! SQLAlchemy's reflection and psql's `\df` ask.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsVisible {
    name: &'static str,
    signature: Signature,
}

/// `pg_type_is_visible` and `pg_function_is_visible`.
pub fn udfs() -> [ScalarUDF; 3] {
    [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
    ]
    .map(|name| {
        ScalarUDF::from(IsVisible {
            name,
            signature: Signature::any(1, Volatility::Stable),
        })
    })
}

impl ScalarUDFImpl for IsVisible {
    fn name(&self) -> &str {
        self.name
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

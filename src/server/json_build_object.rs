//! `json_build_object(key, value, …)`: a JSON object from alternating keys and values,
//! as PostgreSQL builds it. SQLAlchemy 2.1 asks for columns' identity and collation
//! options this way when it reflects columns.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(JsonBuildObject {
        signature: Signature::variadic_any(Volatility::Stable),
    })
}

/// A value as JSON: numbers and booleans as themselves, NULL as null, the rest as text.
fn json(value: ScalarValue) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s),
        other if other.data_type().is_numeric() => other
            .to_string()
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(other.to_string())),
        other => Value::String(other.to_string()),
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !args.len().is_multiple_of(2) {
            return plan_err!(
                "json_build_object takes keys and values in pairs, got {} arguments",
                args.len()
            );
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let mut objects = Vec::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let mut object = Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                if key.is_null() {
                    return plan_err!("json_build_object: a key is NULL");
                }
                let key = match key {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => s,
                    other => other.to_string(),
                };
                object.insert(key, json(ScalarValue::try_from_array(&pair[1], row)?));
            }
            objects.push(Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(objects))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_json_kinds() {
        assert_eq!(json(ScalarValue::Int64(Some(3))), Value::from(3));
        assert_eq!(json(ScalarValue::Boolean(Some(true))), Value::Bool(true));
        assert_eq!(json(ScalarValue::Utf8(None)), Value::Null);
        assert_eq!(
            json(ScalarValue::Utf8(Some("a\"b".into()))).to_string(),
            "\"a\\\"b\""
        );
    }
}

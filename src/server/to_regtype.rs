//! `to_regtype(name)`: the OID of a PostgreSQL type name, NULL when there is none.
//! psycopg calls it on connect to look up optional types (SQLAlchemy asks for
//! `hstore`), so it must exist and answer NULL for what kpidb does not have.

use std::sync::Arc;

use crate::functions::numeric::columnar;
use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The built-in types kpidb's columns and results use, by their PostgreSQL names.
const TYPES: &[(&str, i32)] = &[
    ("bool", 16),
    ("boolean", 16),
    ("bytea", 17),
    ("int8", 20),
    ("bigint", 20),
    ("int2", 21),
    ("smallint", 21),
    ("int4", 23),
    ("integer", 23),
    ("text", 25),
    ("oid", 26),
    ("float4", 700),
    ("real", 700),
    ("float8", 701),
    ("double precision", 701),
    ("varchar", 1043),
    ("character varying", 1043),
    ("date", 1082),
    ("time", 1083),
    ("timestamp", 1114),
    ("timestamp without time zone", 1114),
    ("timestamptz", 1184),
    ("timestamp with time zone", 1184),
    ("interval", 1186),
    ("numeric", 1700),
    ("decimal", 1700),
];

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToRegtype {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(ToRegtype {
        signature: Signature::any(1, Volatility::Stable),
    })
}

impl ScalarUDFImpl for ToRegtype {
    fn name(&self) -> &str {
        "to_regtype"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null] => {
                Ok(DataType::Int32)
            }
            _ => plan_err!("to_regtype: expected to_regtype(name TEXT), got {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let names = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let oids: Int32Array = (0..names.len())
            .map(|i| {
                if names.is_null(i) {
                    return None;
                }
                let name = names.value(i).trim().trim_matches('"').to_ascii_lowercase();
                let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
                TYPES.iter().find(|(n, _)| *n == name).map(|(_, oid)| *oid)
            })
            .collect();
        columnar(Arc::new(oids), scalar)
    }
}

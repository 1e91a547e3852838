//! `has_table_privilege`, `has_any_column_privilege`, `has_column_privilege`,
//! `has_schema_privilege`, `has_database_privilege` and `has_function_privilege`
//! as the read-only server grants them: reading (SELECT, USAGE, CONNECT, EXECUTE)
//! yes, anything that writes or creates (INSERT, UPDATE, DELETE, TRUNCATE, CREATE,
//! TEMPORARY, REFERENCES, TRIGGER) and grant options no. Metabase asks for each table
//! to decide what its users may change; datafusion-pg-catalog's versions say yes to all.
//! As in PostgreSQL, a comma-separated list is granted when any of it is.

use std::sync::Arc;

use crate::functions::numeric::columnar;
use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

const NAMES: &[&str] = &[
    "has_table_privilege",
    "has_any_column_privilege",
    "has_column_privilege",
    "has_schema_privilege",
    "has_database_privilege",
    "has_function_privilege",
];

/// What a client may do here: read.
const GRANTED: &[&str] = &["select", "usage", "connect", "execute"];

pub fn udfs() -> Vec<ScalarUDF> {
    NAMES
        .iter()
        .map(|name| {
            ScalarUDF::from(HasPrivilege {
                name,
                signature: Signature::variadic_any(Volatility::Stable),
            })
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HasPrivilege {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.len() {
            2..=4 => Ok(DataType::Boolean),
            n => plan_err!(
                "{}: expected 2 to 4 arguments ([user,] object, privilege), got {n}",
                self.name
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let last = args.args.last().expect("checked in return_type");
        let privileges = cast(&last.to_array(args.number_rows)?, &DataType::Utf8)?;
        let privileges = privileges.as_string::<i32>();
        let granted: BooleanArray = (0..privileges.len())
            .map(|i| (!privileges.is_null(i)).then(|| granted(privileges.value(i))))
            .collect();
        columnar(Arc::new(granted), scalar)
    }
}

/// Whether any privilege of the list `asked` is granted.
fn granted(asked: &str) -> bool {
    asked.split(',').any(|p| {
        let p = p.trim().to_ascii_lowercase();
        GRANTED.contains(&p.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::granted;

    #[test]
    fn reading_is_granted_and_writing_is_not() {
        assert!(granted("SELECT") && granted("usage") && granted("INSERT, SELECT"));
        // A list is granted when any of it is, as in PostgreSQL.
        assert!(granted("USAGE, CREATE") && !granted("delete, TRUNCATE"));
        assert!(!granted("CREATE") && !granted("SELECT WITH GRANT OPTION") && !granted("update"));
    }
}

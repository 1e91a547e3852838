//! `current_setting(name [, missing_ok])`, PostgreSQL's settings lookup, which BI tools
//! call on connect (Grafana reads `server_version_num` to pick its SQL dialect). The
//! server answers with the values its PostgreSQL front end announces, and
//! pg_catalog.pg_settings lists the same ([`install_settings`]).

use std::sync::Arc;

use crate::functions::numeric::columnar;
use datafusion::arrow::array::{new_null_array, Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The settings a client can read, as a PostgreSQL 16 server reports them.
const SETTINGS: &[(&str, &str)] = &[
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("search_path", "public"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("datestyle", "ISO, YMD"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("default_transaction_read_only", "on"),
    ("transaction_read_only", "on"),
    ("transaction_isolation", "read committed"),
    ("is_superuser", "off"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("block_size", "8192"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("application_name", ""),
];

/// pg_catalog.pg_settings with [`SETTINGS`] as its rows, in the shipped table's
/// columns (datafusion-pg-catalog lists only `standard_conforming_strings`; pgjdbc
/// reads `max_index_keys` there before `getImportedKeys`, DBeaver its settings).
pub async fn install_settings(ctx: &SessionContext, catalog: &str) -> Result<()> {
    let shipped = super::overlay::shipped(ctx, catalog, "pg_settings").await?;
    let schema = shipped.schema();
    let names = || SETTINGS.iter().map(|(name, _)| *name);
    let values = || SETTINGS.iter().map(|(_, value)| *value);
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "name" => Arc::new(StringArray::from_iter_values(names())),
                "setting" | "reset_val" | "boot_val" => {
                    Arc::new(StringArray::from_iter_values(values()))
                }
                "source" => Arc::new(StringArray::from_iter_values(names().map(|_| "default"))),
                _ => new_null_array(field.data_type(), SETTINGS.len()),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema, columns)?;
    super::overlay::replace_with_rows(ctx, catalog, "pg_settings", batch)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

pub fn udf() -> ScalarUDF {
    ScalarUDF::from(CurrentSetting {
        signature: Signature::variadic_any(Volatility::Stable),
    })
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [name] | [name, DataType::Boolean] if is_text(name) => Ok(DataType::Utf8),
            _ => plan_err!(
                "current_setting: expected current_setting(name TEXT [, missing_ok BOOLEAN]), got ({})",
                args.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(flag))) => flag.unwrap_or(false),
            Some(_) => return exec_err!("current_setting: missing_ok must be a constant"),
            None => false,
        };
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let names = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            if names.is_null(i) {
                values.push(None);
                continue;
            }
            let name = names.value(i).to_ascii_lowercase();
            match SETTINGS.iter().find(|(key, _)| *key == name) {
                Some((_, value)) => values.push(Some(*value)),
                None if missing_ok => values.push(None),
                None => return exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        }
        columnar(Arc::new(StringArray::from(values)), scalar)
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
    )
}

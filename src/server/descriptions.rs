//! `obj_description(oid, 'pg_class')` and `col_description(oid, attnum)`: each
//! warehouse table's description and each column's Chinese header (部门编码 for
//! dept_code), which psql's `\d+` / `\dt+` and BI tools show beside the names; and
//! `pg_size_pretty` / `pg_table_size`, which `\dt+` asks for (a size kpidb does not
//! keep per oid is NULL, shown empty).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::oids::Oids;
use crate::model::{aliases::HEADER_ALIASES, TableDef};

/// Registers the four functions on `ctx`, whose warehouse tables have `oids`.
pub fn install(ctx: &SessionContext, oids: &Oids) {
    let tables: HashMap<i64, &'static TableDef> = oids.tables.clone();
    let columns: HashMap<(i64, i64), &'static str> = oids
        .columns
        .iter()
        .filter_map(|(at, name)| Some((*at, column_description(name)?)))
        .collect();
    let tables = Arc::new(tables);
    let columns = Arc::new(columns);
    for what in [What::Table, What::Column, What::Size, What::Pretty] {
        ctx.register_udf(ScalarUDF::from(Described {
            what,
            tables: tables.clone(),
            columns: columns.clone(),
            signature: match what {
                What::Table => Signature::variadic_any(Volatility::Stable),
                What::Column => Signature::any(2, Volatility::Stable),
                What::Size | What::Pretty => Signature::any(1, Volatility::Stable),
            },
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum What {
    Table,
    Column,
    Size,
    Pretty,
}

#[derive(Debug)]
struct Described {
    what: What,
    tables: Arc<HashMap<i64, &'static TableDef>>,
    columns: Arc<HashMap<(i64, i64), &'static str>>,
    signature: Signature,
}

impl PartialEq for Described {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for Described {}

impl std::hash::Hash for Described {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.what.hash(state);
    }
}

/// A column's description: its Chinese header, as finance bureaus write it.
pub fn column_description(column: &str) -> Option<&'static str> {
    HEADER_ALIASES
        .iter()
        .find(|(_, c)| *c == column)
        .map(|(alias, _)| *alias)
}

/// Bytes as PostgreSQL's pg_size_pretty writes them: `512 bytes`, `10 kB`, `3 MB`.
fn pretty(bytes: i64) -> String {
    let mut value = bytes;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if value.abs() < 10 * 1024 || unit == "TB" {
            return format!("{value} {unit}");
        }
        value = (value + 512) / 1024;
    }
    unreachable!("the last unit returns")
}

fn int64(arg: &ColumnarValue, rows: usize) -> Result<Int64Array> {
    let array = cast(&arg.to_array(rows)?, &DataType::Int64)?;
    Ok(array
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .unwrap_or_else(|| Int64Array::new_null(rows)))
}

impl ScalarUDFImpl for Described {
    fn name(&self) -> &str {
        match self.what {
            What::Table => "obj_description",
            What::Column => "col_description",
            What::Size => "pg_table_size",
            What::Pretty => "pg_size_pretty",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.what {
            What::Size => DataType::Int64,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let first = int64(&args.args[0], rows)?;
        let out: ArrayRef = match self.what {
            What::Table => Arc::new(
                first
                    .iter()
                    .map(|oid| Some(self.tables.get(&oid?)?.description))
                    .collect::<StringArray>(),
            ),
            What::Column => {
                let attnums = int64(&args.args[1], rows)?;
                Arc::new(
                    first
                        .iter()
                        .zip(attnums.iter())
                        .map(|(oid, attnum)| self.columns.get(&(oid?, attnum?)).copied())
                        .collect::<StringArray>(),
                )
            }
            What::Size => Arc::new(Int64Array::new_null(rows)),
            What::Pretty => Arc::new(
                first
                    .iter()
                    .map(|bytes| bytes.map(pretty))
                    .collect::<StringArray>(),
            ),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_column_descriptions_read_as_postgresql_and_the_bureaus_write_them() {
        assert_eq!(pretty(512), "512 bytes");
        assert_eq!(pretty(10 * 1024), "10 kB");
        assert_eq!(pretty(3 * 1024 * 1024), "3072 kB");
        assert_eq!(pretty(30 * 1024 * 1024), "30 MB");
        assert_eq!(column_description("year"), Some("年度"));
        assert_eq!(column_description("dept_code"), Some("部门编码"));
        assert_eq!(column_description("nope"), None);
    }
}

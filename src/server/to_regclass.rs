//! `to_regclass(name)`: the oid of a relation named `name` (`dept_scores`,
//! `public.dept_scores`, `"public"."dept_scores"`, `pg_catalog.pg_class`), NULL when
//! there is none; an oid passes through. The PostgreSQL front end also reads a cast
//! of a computed name to regclass with it (Metabase's
//! `format('%I.%I', schema, table)::regclass`), which DataFusion cannot cast.

use std::collections::HashMap;
use std::sync::Arc;

use crate::functions::numeric::columnar;
use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

#[derive(Debug)]
struct ToRegclass {
    /// Each relation's oid by `schema.name` and, for the schemas on the search path
    /// (public, pg_catalog), by its bare name.
    oids: Arc<HashMap<String, i32>>,
    signature: Signature,
}

impl PartialEq for ToRegclass {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ToRegclass {}

impl std::hash::Hash for ToRegclass {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "to_regclass".hash(state)
    }
}

/// Registers `to_regclass` with the relations pg_class lists now.
pub async fn install(ctx: &SessionContext) -> Result<()> {
    let batches = ctx
        .sql(
            "SELECT CAST(c.oid AS INT), n.nspname, c.relname FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
        )
        .await?
        .collect()
        .await?;
    let mut oids = HashMap::new();
    for batch in &batches {
        let oid = cast(batch.column(0), &DataType::Int32)?;
        let oid = oid.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let schema = cast(batch.column(1), &DataType::Utf8)?;
        let name = cast(batch.column(2), &DataType::Utf8)?;
        let (schema, name) = (schema.as_string::<i32>(), name.as_string::<i32>());
        for row in 0..batch.num_rows() {
            let (schema, name) = (schema.value(row), name.value(row));
            oids.insert(format!("{schema}.{name}"), oid.value(row));
            if schema == "public" || schema == "pg_catalog" {
                oids.entry(name.to_string()).or_insert(oid.value(row));
            }
        }
    }
    ctx.register_udf(ScalarUDF::from(ToRegclass {
        oids: Arc::new(oids),
        signature: Signature::any(1, Volatility::Stable),
    }));
    Ok(())
}

impl ScalarUDFImpl for ToRegclass {
    fn name(&self) -> &str {
        "to_regclass"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t] if t.is_integer()
                || t.is_null()
                || matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) =>
            {
                Ok(DataType::Int32)
            }
            _ => plan_err!("to_regclass: expected to_regclass(name TEXT), got {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        if input.data_type().is_integer() {
            return columnar(cast(&input, &DataType::Int32)?, scalar);
        }
        let names = cast(&input, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let oids: Int32Array = (0..names.len())
            .map(|i| {
                if names.is_null(i) {
                    return None;
                }
                self.oids.get(&unquoted(names.value(i))).copied()
            })
            .collect();
        columnar(Arc::new(oids), scalar)
    }
}

/// `"Public".dept_scores` as the key it is kept under: quoted parts as written,
/// the others folded to lower case.
fn unquoted(name: &str) -> String {
    name.trim()
        .split('.')
        .map(
            |part| match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => part.to_lowercase(),
            },
        )
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folded_unless_quoted() {
        assert_eq!(unquoted("Public.Dept_Scores"), "public.dept_scores");
        assert_eq!(unquoted("\"public\".\"Dept\"\"s\""), "public.Dept\"s");
    }
}

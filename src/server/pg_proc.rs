//! kpidb's functions in `pg_catalog.pg_proc`, in the `public` schema, with
//! `pg_get_function_arguments(oid)` and `pg_get_function_result(oid)`: what psql's
//! `\df` and BI tools' function browsers read. The rows of PostgreSQL's own functions
//! stay as datafusion-pg-catalog ships them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int16Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// kpidb's functions take oids from here up.
const FIRST_OID: i32 = 900_000;

/// One kpidb function as pg_proc and the two lookups describe it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Proc {
    oid: i32,
    name: String,
    /// `f` function, `a` aggregate, `w` window (a table function is a set-returning `f`).
    kind: &'static str,
    arguments: String,
    result: String,
}

fn procs() -> Vec<Proc> {
    crate::functions::documentation()
        .into_iter()
        .enumerate()
        .map(|(i, (name, kind, doc))| {
            // The documented syntax: `name(args) -> result`, or `name(args)` for a table.
            let syntax = doc.syntax_example.as_str();
            let (call, result) = match syntax.split_once("->") {
                Some((call, result)) => (call.trim(), result.trim().to_string()),
                None => (syntax.trim(), "TABLE".to_string()),
            };
            let arguments = first_group(call).unwrap_or_default().trim().to_string();
            // A table function returns TABLE(column type, …), its documented output columns.
            let result = match kind {
                "table" => {
                    let columns = doc
                        .description
                        .split_once("Output columns: ")
                        .map(|(_, c)| c.trim_end_matches('.'))
                        .unwrap_or("");
                    let columns: Vec<String> = top_level(columns)
                        .into_iter()
                        .filter_map(|c| {
                            let (name, rest) = c.split_once(' ')?;
                            Some(format!("{name} {}", first_group(rest)?))
                        })
                        .collect();
                    format!("TABLE({})", columns.join(", "))
                }
                _ => result,
            };
            Proc {
                oid: FIRST_OID + i as i32,
                name,
                kind: match kind {
                    "aggregate" => "a",
                    "window" => "w",
                    _ => "f",
                },
                arguments,
                result,
            }
        })
        .collect()
}

/// The text inside the first parenthesised group of `text`, nested groups kept whole.
fn first_group(text: &str) -> Option<&str> {
    let start = text.find('(')? + 1;
    let mut depth = 1;
    for (i, c) in text[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at its commas outside parentheses.
fn top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[from..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Adds kpidb's functions to `pg_catalog.pg_proc` in `ctx`, in the `public` schema,
/// and registers the two lookups. Call after the pg_catalog schema is set up.
pub async fn install(ctx: &SessionContext, catalog: &str) -> Result<()> {
    let procs = procs();
    let shipped = super::overlay::shipped(ctx, catalog, "pg_proc").await?;
    // datafusion-pg-catalog numbers namespaces as it first meets them, and keeps the
    // number: asking now fixes public's before any client asks.
    let public = ctx
        .sql("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public'")
        .await?
        .collect()
        .await?;
    let public = public
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            let oid = datafusion::arrow::compute::cast(b.column(0), &DataType::Int32).ok()?;
            oid.as_any()
                .downcast_ref::<Int32Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(2200);
    let schema = shipped.schema();
    let mut batches = ctx.read_table(shipped)?.collect().await?;
    let n = procs.len();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in schema.fields() {
        let column: ArrayRef = match (field.name().as_str(), field.data_type()) {
            ("oid", DataType::Int32) => {
                Arc::new(Int32Array::from_iter_values(procs.iter().map(|p| p.oid)))
            }
            ("pronamespace", DataType::Int32) => Arc::new(Int32Array::from(vec![public; n])),
            ("proname", DataType::Utf8) => Arc::new(StringArray::from_iter_values(
                procs.iter().map(|p| p.name.as_str()),
            )),
            ("prokind", DataType::Utf8) => {
                Arc::new(StringArray::from_iter_values(procs.iter().map(|p| p.kind)))
            }
            ("pronargs", DataType::Int16) => {
                Arc::new(Int16Array::from_iter_values(procs.iter().map(|p| {
                    p.arguments
                        .split(',')
                        .filter(|a| !a.trim().is_empty())
                        .count() as i16
                })))
            }
            (_, data_type) if field.is_nullable() => {
                datafusion::arrow::array::new_null_array(data_type, n)
            }
            (_, data_type) => ScalarValue::new_default(data_type)?.to_array_of_size(n)?,
        };
        columns.push(column);
    }
    batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    let pg_proc = Arc::new(MemTable::try_new(schema, vec![batches])?);
    let pg_proc: Arc<dyn TableProvider> = pg_proc;
    super::overlay::replace(ctx, catalog, HashMap::from([("pg_proc", pg_proc)]))?;
    let by_oid: Arc<HashMap<i32, Proc>> = Arc::new(procs.into_iter().map(|p| (p.oid, p)).collect());
    for what in [What::Arguments, What::Result] {
        ctx.register_udf(ScalarUDF::from(Lookup {
            what,
            procs: by_oid.clone(),
            signature: Signature::any(1, Volatility::Stable),
        }));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum What {
    Arguments,
    Result,
}

/// `pg_get_function_arguments(oid)` / `pg_get_function_result(oid)`: kpidb's functions
/// as their documentation writes them; NULL for other oids.
#[derive(Debug)]
struct Lookup {
    what: What,
    procs: Arc<HashMap<i32, Proc>>,
    signature: Signature,
}

impl PartialEq for Lookup {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for Lookup {}

impl std::hash::Hash for Lookup {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.what.hash(state);
    }
}

impl ScalarUDFImpl for Lookup {
    fn name(&self) -> &str {
        match self.what {
            What::Arguments => "pg_get_function_arguments",
            What::Result => "pg_get_function_result",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let oids = args.args[0].to_array(args.number_rows)?;
        let oids = datafusion::arrow::compute::cast(&oids, &DataType::Int64)?;
        let oids = oids
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .expect("cast to Int64");
        let text: StringArray = oids
            .iter()
            .map(|oid| {
                let proc = oid
                    .and_then(|o| i32::try_from(o).ok())
                    .and_then(|o| self.procs.get(&o))?;
                Some(match self.what {
                    What::Arguments => proc.arguments.clone(),
                    What::Result => proc.result.clone(),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_its_arguments_and_result() {
        let procs = procs();
        let find = |name: &str| procs.iter().find(|p| p.name == name).unwrap();
        let grade = find("perf_grade");
        assert_eq!(grade.kind, "f");
        assert_eq!(grade.arguments, "score NUMERIC [, scheme TEXT]");
        assert_eq!(grade.result, "TEXT");
        assert_eq!(find("lowest_k").kind, "a");
        assert_eq!(find("prior_year").kind, "w");
        assert_eq!(find("prior_year").arguments, "value ANY, year INTEGER");
        let ranking = find("dept_ranking");
        assert_eq!(ranking.arguments, "year INTEGER");
        assert!(
            ranking
                .result
                .starts_with("TABLE(rank bigint, dept_code varchar, ")
                && ranking.result.ends_with(", complete boolean)"),
            "{}",
            ranking.result
        );
    }
}

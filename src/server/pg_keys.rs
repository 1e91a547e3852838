//! The data model's keys and references in pg_catalog, as PostgreSQL keeps a table's
//! primary key and foreign keys, so that BI tools' reflection (SQLAlchemy's
//! `get_pk_constraint` / `get_foreign_keys`, pgjdbc's metadata) finds them:
//! - `pg_constraint`: a `p` row per table (`{table}_pkey`) and an `f` row per
//!   reference (`{table}_{columns}_fkey`), with `conkey` / `confkey` as arrays of
//!   attnums;
//! - `pg_index`: the primary keys' unique indexes, `indkey` an array (PostgreSQL's
//!   int2vector, which clients `unnest`), and their rows in `pg_class`;
//! - `pg_description`: each table's description and each column's Chinese header,
//!   beside the rows datafusion-pg-catalog ships;
//! - `pg_get_constraintdef(oid [, pretty])`: `PRIMARY KEY (…)` / `FOREIGN KEY (…)
//!   REFERENCES t(…)`, the text SQLAlchemy parses; `pg_get_serial_sequence` is NULL,
//!   as no column draws from a sequence.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, Int16Array, Int32Array, ListArray, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    col, lit, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::database::NAME;
use super::descriptions::column_description;
use super::oids::Oids;
use crate::model::TABLES;

/// Constraints take oids from here up, and each primary key's index from [`FIRST_INDEX`].
const FIRST_CONSTRAINT: i32 = 800_000;
const FIRST_INDEX: i32 = 850_000;
/// PostgreSQL's oids of the btree access method and of the bootstrap superuser.
const BTREE: i32 = 403;
/// The superuser's oid, the owner of every relation (pg_roles names it).
pub const SUPERUSER: i32 = 10;

/// One primary or foreign key of a warehouse table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Constraint {
    oid: i32,
    name: String,
    /// `p` primary key, `f` foreign key.
    kind: &'static str,
    table: i32,
    columns: Vec<&'static str>,
    attnums: Vec<i16>,
    /// The primary key's own index, or the referred table's.
    index: i32,
    /// For a foreign key: the referred table, its key and its attnums.
    referred: Option<(i32, &'static str, Vec<&'static str>, Vec<i16>)>,
}

impl Constraint {
    /// What `pg_get_constraintdef` says, as PostgreSQL writes it.
    fn definition(&self) -> String {
        let columns = self.columns.join(", ");
        match &self.referred {
            None => format!("PRIMARY KEY ({columns})"),
            Some((_, table, key, _)) => {
                format!(
                    "FOREIGN KEY ({columns}) REFERENCES {table}({})",
                    key.join(", ")
                )
            }
        }
    }
}

fn constraints(oids: &Oids) -> Vec<Constraint> {
    let attnums = |table: i64, columns: &[&str]| -> Option<Vec<i16>> {
        columns
            .iter()
            .map(|c| oids.attnum(table, c).and_then(|a| i16::try_from(a).ok()))
            .collect()
    };
    let index_of = |name: &str| {
        TABLES
            .iter()
            .position(|t| t.name == name)
            .map(|i| FIRST_INDEX + i as i32)
    };
    let mut found = Vec::new();
    for (i, table) in TABLES.iter().enumerate() {
        let Some(oid) = oids.table(table.name) else {
            continue;
        };
        if let Some(key) = attnums(oid, table.key) {
            found.push(Constraint {
                oid: 0,
                name: format!("{}_pkey", table.name),
                kind: "p",
                table: oid as i32,
                columns: table.key.to_vec(),
                attnums: key,
                index: FIRST_INDEX + i as i32,
                referred: None,
            });
        }
        for reference in table.references() {
            let referred = reference.table;
            let (Some(to), Some(columns), Some(index)) = (
                oids.table(referred.name),
                attnums(oid, reference.columns),
                index_of(referred.name),
            ) else {
                continue;
            };
            let Some(key) = attnums(to, referred.key) else {
                continue;
            };
            found.push(Constraint {
                oid: 0,
                name: format!("{}_{}_fkey", table.name, reference.columns.join("_")),
                kind: "f",
                table: oid as i32,
                columns: reference.columns.to_vec(),
                attnums: columns,
                index,
                referred: Some((to as i32, referred.name, referred.key.to_vec(), key)),
            });
        }
    }
    for (n, constraint) in found.iter_mut().enumerate() {
        constraint.oid = FIRST_CONSTRAINT + n as i32;
    }
    found
}

/// Replaces pg_constraint, pg_index and pg_description in `ctx`'s pg_catalog and
/// registers `pg_get_constraintdef` and `pg_get_serial_sequence`.
pub async fn install(ctx: &SessionContext, catalog: &str, oids: &Oids) -> Result<()> {
    let constraints = constraints(oids);
    let shipped_constraint = super::overlay::shipped(ctx, catalog, "pg_constraint").await?;
    let shipped_index = super::overlay::shipped(ctx, catalog, "pg_index").await?;
    let shipped_description = super::overlay::shipped(ctx, catalog, "pg_description").await?;

    let keys: Vec<&Constraint> = constraints.iter().filter(|c| c.kind == "p").collect();
    let pg_constraint = table(&shipped_constraint.schema(), constraints.len(), |name| {
        let column = |f: &dyn Fn(&Constraint) -> Option<i32>| -> ArrayRef {
            Arc::new(Int32Array::from_iter(constraints.iter().map(f)))
        };
        Some(match name {
            "oid" => column(&|c| Some(c.oid)),
            "conname" => Arc::new(StringArray::from_iter_values(
                constraints.iter().map(|c| c.name.as_str()),
            )),
            "connamespace" => column(&|_| Some(oids.public as i32)),
            "contype" => Arc::new(StringArray::from_iter_values(
                constraints.iter().map(|c| c.kind),
            )),
            "conrelid" => column(&|c| Some(c.table)),
            "conindid" => column(&|c| Some(c.index)),
            "confrelid" => column(&|c| Some(c.referred.as_ref().map_or(0, |r| r.0))),
            "contypid" | "conparentid" => column(&|_| Some(0)),
            "confupdtype" | "confdeltype" => text(
                constraints
                    .iter()
                    .map(|c| c.referred.as_ref().map_or(" ", |_| "a")),
            ),
            "confmatchtype" => text(
                constraints
                    .iter()
                    .map(|c| c.referred.as_ref().map_or(" ", |_| "s")),
            ),
            "convalidated" | "conislocal" | "connoinherit" => flags(constraints.len(), true),
            "condeferrable" | "condeferred" => flags(constraints.len(), false),
            "conkey" => int2s(constraints.iter().map(|c| Some(c.attnums.clone()))),
            "confkey" => int2s(
                constraints
                    .iter()
                    .map(|c| c.referred.as_ref().map(|r| r.3.clone())),
            ),
            _ => return None,
        })
    })?;
    let pg_index = table(&shipped_index.schema(), keys.len(), |name| {
        let column = |f: &dyn Fn(&Constraint) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from_iter_values(keys.iter().map(|c| f(c))))
        };
        let count = || -> ArrayRef {
            Arc::new(Int16Array::from_iter_values(
                keys.iter().map(|c| c.attnums.len() as i16),
            ))
        };
        Some(match name {
            "indexrelid" => column(&|c| c.index),
            "indrelid" => column(&|c| c.table),
            "indnatts" | "indnkeyatts" => count(),
            "indisunique" | "indisprimary" | "indimmediate" | "indisvalid" | "indisready"
            | "indislive" => flags(keys.len(), true),
            "indkey" => int2s(keys.iter().map(|c| Some(c.attnums.clone()))),
            "indoption" => int2s(keys.iter().map(|c| Some(vec![0; c.attnums.len()]))),
            "indclass" | "indcollation" => {
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                    keys.iter().map(|c| Some(vec![Some(0); c.attnums.len()])),
                ))
            }
            _ => return None,
        })
    })?;
    let mut described: Vec<(i32, i32, &str)> = Vec::new();
    for (oid, def) in &oids.tables {
        described.push((*oid as i32, 0, def.description));
    }
    for ((oid, attnum), name) in &oids.columns {
        if let Some(description) = column_description(name) {
            described.push((*oid as i32, *attnum as i32, description));
        }
    }
    described.sort();
    let description_schema = shipped_description.schema();
    let mut batches = ctx.read_table(shipped_description)?.collect().await?;
    batches.push(RecordBatch::try_new(
        description_schema.clone(),
        vec![
            Arc::new(Int32Array::from_iter_values(described.iter().map(|d| d.0))),
            Arc::new(Int32Array::from(vec![
                oids.pg_class as i32;
                described.len()
            ])),
            Arc::new(Int32Array::from_iter_values(described.iter().map(|d| d.1))),
            Arc::new(StringArray::from_iter_values(described.iter().map(|d| d.2))),
        ],
    )?);
    let pg_description = Arc::new(MemTable::try_new(description_schema, vec![batches])?);

    // pg_class with each primary key's index (relkind `i`, named as its constraint),
    // where pgjdbc's getPrimaryKeys and DBeaver look up an index's name, and with
    // `reloptions` (NULL: no table has storage options), which SQLAlchemy 1.4's index
    // reflection and psql's `\d+` read.
    // The shipped rows say owner 0; every relation is owned by the superuser, as the
    // namespaces and the database are (pg_roles lists it).
    let shipped_class = super::overlay::shipped(ctx, catalog, "pg_class").await?;
    let shipped_class = super::overlay::with_column(shipped_class, "relowner", lit(SUPERUSER))?;
    // A table with a primary key has an index (psql's `\d` lists indexes only then).
    let indexed: Vec<_> = keys.iter().map(|c| lit(c.table)).collect();
    let shipped_class = super::overlay::with_column(
        shipped_class,
        "relhasindex",
        col("oid").in_list(indexed, false),
    )?;
    let index_rows = table(&shipped_class.schema(), keys.len(), |name| {
        let ints = |f: &dyn Fn(&Constraint) -> i32| -> ArrayRef {
            Arc::new(Int32Array::from_iter_values(keys.iter().map(|c| f(c))))
        };
        Some(match name {
            "oid" | "relfilenode" => ints(&|c| c.index),
            "relname" => text(keys.iter().map(|c| c.name.as_str())),
            "relnamespace" => ints(&|_| oids.public as i32),
            "relam" => ints(&|_| BTREE),
            "relowner" => ints(&|_| SUPERUSER),
            "relkind" => text(keys.iter().map(|_| "i")),
            "relpersistence" => text(keys.iter().map(|_| "p")),
            "relreplident" => text(keys.iter().map(|_| "n")),
            "relnatts" => Arc::new(Int16Array::from_iter_values(
                keys.iter().map(|c| c.attnums.len() as i16),
            )),
            "relispopulated" => flags(keys.len(), true),
            _ => return None,
        })
    })?;
    let pg_class = super::overlay::with_rows(shipped_class, index_rows)?;
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let pg_class = super::overlay::with_null_column(pg_class, "reloptions", list)?;
    super::overlay::replace(
        ctx,
        catalog,
        HashMap::from([
            ("pg_class", pg_class),
            ("pg_constraint", pg_constraint),
            ("pg_index", pg_index),
            ("pg_description", pg_description as Arc<dyn TableProvider>),
        ])
        .into_iter()
        .chain(standard_views(&constraints, oids)?)
        .collect(),
    )?;
    let definitions = constraints
        .iter()
        .map(|c| (c.oid as i64, vec![c.definition()]))
        .collect();
    let indexes = keys
        .iter()
        .map(|c| {
            let table = oids.tables.get(&(c.table as i64)).map_or("", |t| t.name);
            let mut texts = vec![format!(
                "CREATE UNIQUE INDEX {table}_pkey ON public.{table} USING btree ({})",
                c.columns.join(", ")
            )];
            texts.extend(c.columns.iter().map(|c| c.to_string()));
            (c.index as i64, texts)
        })
        .collect();
    for (name, texts) in [
        ("pg_get_constraintdef", definitions),
        ("pg_get_indexdef", indexes),
    ] {
        ctx.register_udf(ScalarUDF::from(Definition {
            name,
            texts: Arc::new(texts),
            signature: Signature::variadic_any(Volatility::Stable),
        }));
    }
    ctx.register_udf(ScalarUDF::from(SerialSequence {
        signature: Signature::any(2, Volatility::Stable),
    }));
    Ok(())
}

/// The same keys as SQL's information_schema views give them, which Metabase reads
/// (`table_constraints` joined to `key_column_usage` for the primary keys):
/// `table_constraints`, `key_column_usage`, `referential_constraints` and
/// `constraint_column_usage`. DataFusion's information_schema has a fixed set of
/// tables, so these live in pg_catalog, where the PostgreSQL front end's rewrites
/// send `information_schema.table_constraints` and the rest.
fn standard_views(
    constraints: &[Constraint],
    oids: &Oids,
) -> Result<Vec<(&'static str, Arc<dyn TableProvider>)>> {
    let table_name = |oid: i32| oids.tables.get(&(oid as i64)).map_or("", |t| t.name);
    let kind = |c: &Constraint| match c.kind {
        "p" => "PRIMARY KEY",
        _ => "FOREIGN KEY",
    };
    let key_of = |c: &Constraint| match &c.referred {
        Some((to, _, _, _)) => constraints
            .iter()
            .find(|k| k.kind == "p" && k.table == *to)
            .map(|k| k.name.clone()),
        None => None,
    };
    let mut rows: HashMap<&'static str, Vec<Vec<Option<String>>>> = HashMap::new();
    let some = |v: &str| Some(v.to_string());
    let named = |c: &Constraint| vec![some(NAME), some("public"), some(&c.name)];
    for c in constraints {
        let table = table_name(c.table);
        let on = vec![some(NAME), some("public"), some(table)];
        rows.entry("table_constraints").or_default().push(
            [named(c), on.clone()]
                .concat()
                .into_iter()
                .chain([some(kind(c)), some("NO"), some("NO"), some("YES")])
                .collect(),
        );
        for (i, column) in c.columns.iter().enumerate() {
            let unique_position = c.referred.as_ref().map(|_| (i + 1).to_string());
            rows.entry("key_column_usage").or_default().push(
                [named(c), on.clone()]
                    .concat()
                    .into_iter()
                    .chain([some(column), Some((i + 1).to_string()), unique_position])
                    .collect(),
            );
        }
        let (used_table, used) = match &c.referred {
            Some((to, _, key, _)) => (table_name(*to), key.clone()),
            None => (table, c.columns.clone()),
        };
        for column in used {
            rows.entry("constraint_column_usage").or_default().push(
                vec![some(NAME), some("public"), some(used_table), some(column)]
                    .into_iter()
                    .chain(named(c))
                    .collect(),
            );
        }
        if let Some(key) = key_of(c) {
            rows.entry("referential_constraints").or_default().push(
                named(c)
                    .into_iter()
                    .chain([some(NAME), some("public"), Some(key)])
                    .chain([some("NONE"), some("NO ACTION"), some("NO ACTION")])
                    .collect(),
            );
        }
    }
    let names = [NAME_COLUMNS, TABLE_COLUMNS].concat();
    let views: [(&'static str, Vec<&str>); 4] = [
        (
            "table_constraints",
            [
                names.as_slice(),
                &[
                    "constraint_type",
                    "is_deferrable",
                    "initially_deferred",
                    "enforced",
                ],
            ]
            .concat(),
        ),
        (
            "key_column_usage",
            [
                names.as_slice(),
                &[
                    "column_name",
                    "ordinal_position",
                    "position_in_unique_constraint",
                ],
            ]
            .concat(),
        ),
        (
            "constraint_column_usage",
            [TABLE_COLUMNS, &["column_name"], NAME_COLUMNS].concat(),
        ),
        (
            "referential_constraints",
            [
                NAME_COLUMNS,
                &[
                    "unique_constraint_catalog",
                    "unique_constraint_schema",
                    "unique_constraint_name",
                    "match_option",
                    "update_rule",
                    "delete_rule",
                ],
            ]
            .concat(),
        ),
    ];
    views
        .into_iter()
        .map(|(view, columns)| {
            let rows = rows.remove(view).unwrap_or_default();
            let arrays = columns.iter().enumerate().map(|(i, column)| {
                let values = rows.iter().map(|row| row[i].clone());
                let array: ArrayRef = match INTEGER_COLUMNS.contains(column) {
                    true => Arc::new(Int32Array::from_iter(
                        values.map(|v| v.and_then(|v| v.parse::<i32>().ok())),
                    )),
                    false => Arc::new(StringArray::from_iter(values)),
                };
                (column.to_string(), array)
            });
            let batch = RecordBatch::try_from_iter(arrays)?;
            let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
            Ok((view, Arc::new(table) as Arc<dyn TableProvider>))
        })
        .collect()
}

/// The views' integer columns; the others are text.
const INTEGER_COLUMNS: &[&str] = &["ordinal_position", "position_in_unique_constraint"];

/// information_schema's columns naming a constraint, and a table.
const NAME_COLUMNS: &[&str] = &["constraint_catalog", "constraint_schema", "constraint_name"];
const TABLE_COLUMNS: &[&str] = &["table_catalog", "table_schema", "table_name"];

/// A table with the shipped table's columns, the array ones as arrays: `pick` gives the
/// columns kpidb fills; the others are NULL, or their type's default if not nullable.
fn table(
    shipped: &Schema,
    rows: usize,
    pick: impl Fn(&str) -> Option<ArrayRef>,
) -> Result<Arc<dyn TableProvider>> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for field in shipped.fields() {
        let column = match pick(field.name()) {
            Some(column) => column,
            None if field.is_nullable() => new_null_array(field.data_type(), rows),
            None => ScalarValue::new_default(field.data_type())?.to_array_of_size(rows)?,
        };
        fields.push(Field::new(field.name(), column.data_type().clone(), true));
        columns.push(column);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn text<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn flags(rows: usize, value: bool) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; rows]))
}

fn int2s(values: impl Iterator<Item = Option<Vec<i16>>>) -> ArrayRef {
    Arc::new(ListArray::from_iter_primitive::<Int16Type, _, _>(
        values.map(|v| v.map(|v| v.into_iter().map(Some).collect::<Vec<_>>())),
    ))
}

/// `pg_get_constraintdef(oid [, pretty])`, and `pg_get_indexdef(oid [, column,
/// pretty])`: the whole index, or its column number `column` (0 the whole).
#[derive(Debug)]
struct Definition {
    name: &'static str,
    /// By oid: the whole definition, then (for an index) each column.
    texts: Arc<HashMap<i64, Vec<String>>>,
    signature: Signature,
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Definition {}

impl std::hash::Hash for Definition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl ScalarUDFImpl for Definition {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(oids) = args.args.first() else {
            return exec_err!("{} takes an oid", self.name);
        };
        let rows = args.number_rows;
        let int64 = |value: &ColumnarValue| -> Result<datafusion::arrow::array::Int64Array> {
            let array = datafusion::arrow::compute::cast(&value.to_array(rows)?, &DataType::Int64)?;
            Ok(array
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .expect("cast to Int64")
                .clone())
        };
        let oids = int64(oids)?;
        // pg_get_indexdef's second argument is a column number; pg_get_constraintdef's a flag.
        let columns = match args.args.get(1) {
            Some(column) if self.name == "pg_get_indexdef" => Some(int64(column)?),
            _ => None,
        };
        let text: StringArray = (0..rows)
            .map(|row| {
                let oid = (!oids.is_null(row)).then(|| oids.value(row))?;
                let texts = self.texts.get(&oid)?;
                let column = columns.as_ref().map_or(0, |c| c.value(row));
                texts.get(usize::try_from(column).ok()?).cloned()
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(text)))
    }
}

/// `pg_get_serial_sequence(table, column)`: NULL, as no column draws from a sequence.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SerialSequence {
    signature: Signature,
}

impl ScalarUDFImpl for SerialSequence {
    fn name(&self) -> &str {
        "pg_get_serial_sequence"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_read_as_postgresql_writes_them() {
        let key = Constraint {
            oid: FIRST_CONSTRAINT,
            name: "dept_scores_pkey".into(),
            kind: "p",
            table: 1,
            columns: vec!["year", "dept_code"],
            attnums: vec![1, 2],
            index: FIRST_INDEX,
            referred: None,
        };
        assert_eq!(key.definition(), "PRIMARY KEY (year, dept_code)");
        let reference = Constraint {
            referred: Some((2, "projects", vec!["year", "project_code"], vec![1, 2])),
            columns: vec!["year", "project_code"],
            ..key
        };
        assert_eq!(
            reference.definition(),
            "FOREIGN KEY (year, project_code) REFERENCES projects(year, project_code)"
        );
    }
}

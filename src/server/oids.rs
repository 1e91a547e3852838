//! The oids pg_catalog gives the warehouse's tables and their columns' numbers, read
//! once when the server starts (pg_catalog keeps an oid once it has given one).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{exec_err, Result};
use datafusion::prelude::SessionContext;

use crate::model::{TableDef, TABLES};

#[derive(Debug, Default)]
pub struct Oids {
    /// Each warehouse table by its oid in pg_class.
    pub tables: HashMap<i64, &'static TableDef>,
    /// Each column's name by (table oid, attnum), as pg_attribute numbers them.
    pub columns: HashMap<(i64, i64), String>,
    /// The oids of pg_class and pg_constraint (what `'pg_catalog.pg_class'::regclass` gives):
    /// the classoid of tables' and of constraints' rows in pg_description.
    pub pg_class: i64,
    pub pg_constraint: i64,
    /// The `public` namespace, where the warehouse's tables are.
    pub public: i64,
}

impl Oids {
    pub async fn read(ctx: &SessionContext) -> Result<Oids> {
        let mut oids = Oids::default();
        let rows = query(
            ctx,
            "SELECT CAST(c.oid AS BIGINT), c.relname FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public'",
        )
        .await?;
        for (oid, name) in rows {
            if let Some(def) = TABLES.iter().find(|t| t.name == name) {
                let def: &'static TableDef = def;
                oids.tables.insert(oid, def);
            }
        }
        let batches = ctx
            .sql("SELECT CAST(attrelid AS BIGINT), CAST(attnum AS BIGINT), attname FROM pg_catalog.pg_attribute")
            .await?
            .collect()
            .await?;
        for batch in &batches {
            let (oids_of, attnums, names) = (
                int64(batch, 0)?,
                int64(batch, 1)?,
                cast(batch.column(2), &DataType::Utf8)?,
            );
            let Some(names) = names.as_any().downcast_ref::<StringArray>() else {
                continue;
            };
            for row in 0..batch.num_rows() {
                if oids.tables.contains_key(&oids_of.value(row)) {
                    oids.columns.insert(
                        (oids_of.value(row), attnums.value(row)),
                        names.value(row).to_string(),
                    );
                }
            }
        }
        let classes = query(
            ctx,
            "SELECT CAST(c.oid AS BIGINT), c.relname FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'pg_catalog' AND c.relname IN ('pg_class', 'pg_constraint')
             UNION ALL
             SELECT CAST(oid AS BIGINT), 'public' FROM pg_catalog.pg_namespace WHERE nspname = 'public'",
        )
        .await?;
        for (oid, name) in classes {
            match name.as_str() {
                "pg_class" => oids.pg_class = oid,
                "pg_constraint" => oids.pg_constraint = oid,
                _ => oids.public = oid,
            }
        }
        Ok(oids)
    }

    /// The oid of the warehouse table `name`.
    pub fn table(&self, name: &str) -> Option<i64> {
        self.tables
            .iter()
            .find(|(_, def)| def.name == name)
            .map(|(oid, _)| *oid)
    }

    /// The attnum of `column` in the table with oid `table`.
    pub fn attnum(&self, table: i64, column: &str) -> Option<i64> {
        self.columns
            .iter()
            .find(|((oid, _), name)| *oid == table && name.as_str() == column)
            .map(|((_, attnum), _)| *attnum)
    }
}

/// The (oid, name) rows of a two-column query.
async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<(i64, String)>> {
    let mut rows = Vec::new();
    for batch in ctx.sql(sql).await?.collect().await? {
        let oids = int64(&batch, 0)?;
        let names = cast(batch.column(1), &DataType::Utf8)?;
        let Some(names) = names.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("{sql}: names are not text");
        };
        for row in 0..batch.num_rows() {
            rows.push((oids.value(row), names.value(row).to_string()));
        }
    }
    Ok(rows)
}

fn int64(batch: &RecordBatch, column: usize) -> Result<Int64Array> {
    let array = cast(batch.column(column), &DataType::Int64)?;
    match array.as_any().downcast_ref::<Int64Array>() {
        Some(array) => Ok(array.clone()),
        None => exec_err!("column {column} is not an integer"),
    }
}

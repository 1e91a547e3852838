//! information_schema.columns as PostgreSQL shapes it, for the BI tools that list
//! columns there (Metabase's field sync reads `udt_name` and `is_identity`, Grafana's
//! column picker shows `data_type`): PostgreSQL's type names (`text`, `integer`,
//! `numeric`) where DataFusion's view says `Utf8View`, `Int32`, `Decimal128(7, 2)`,
//! positions counted from 1 (DataFusion's from 0), and the columns DataFusion's view
//! lacks. It is a view over DataFusion's, so it
//! stays live; DataFusion's information_schema has a fixed set of tables, so it lives
//! in pg_catalog, where the PostgreSQL front end's rewrites send
//! `information_schema.columns`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::prelude::SessionContext;

use super::database::NAME;

/// `(DataFusion's type pattern, PostgreSQL's data_type, its udt_name)`.
type Type = (&'static str, &'static str, &'static str);

/// The types, first match wins.
const TYPES: &[Type] = &[
    ("Utf8%", "text", "text"),
    ("LargeUtf8", "text", "text"),
    ("Int8", "smallint", "int2"),
    ("Int16", "smallint", "int2"),
    ("Int32", "integer", "int4"),
    ("Int64", "bigint", "int8"),
    ("UInt%", "bigint", "int8"),
    ("Float16", "real", "float4"),
    ("Float32", "real", "float4"),
    ("Float64", "double precision", "float8"),
    ("Decimal%", "numeric", "numeric"),
    ("Boolean", "boolean", "bool"),
    ("Date%", "date", "date"),
    (
        "Timestamp(%, None)",
        "timestamp without time zone",
        "timestamp",
    ),
    ("Timestamp(%", "timestamp with time zone", "timestamptz"),
    ("Time%", "time without time zone", "time"),
    ("Interval%", "interval", "interval"),
    ("%Binary%", "bytea", "bytea"),
    ("List(%Utf8%", "ARRAY", "_text"),
    ("List(%Int16%", "ARRAY", "_int2"),
    ("List(%Int32%", "ARRAY", "_int4"),
    ("List(%", "ARRAY", "_text"),
];

/// Registers pg_catalog.columns, the PostgreSQL-shaped view.
pub async fn install(ctx: &SessionContext, catalog: &str) -> Result<()> {
    let case = |pick: fn(&Type) -> &'static str| {
        let arms: String = TYPES
            .iter()
            .map(|t| format!(" WHEN data_type LIKE '{}' THEN '{}'", t.0, pick(t)))
            .collect();
        format!("CASE{arms} ELSE lower(data_type) END")
    };
    let sql = format!(
        "SELECT CASE WHEN table_catalog = '{catalog}' THEN '{NAME}' ELSE table_catalog END AS table_catalog, \
         table_schema, table_name, column_name, CAST(ordinal_position AS INT) + 1 AS ordinal_position, \
         column_default, is_nullable, {data_type} AS data_type, \
         CAST(character_maximum_length AS INT) AS character_maximum_length, \
         CAST(character_octet_length AS INT) AS character_octet_length, \
         CAST(numeric_precision AS INT) AS numeric_precision, \
         CAST(numeric_precision_radix AS INT) AS numeric_precision_radix, \
         CAST(numeric_scale AS INT) AS numeric_scale, \
         CAST(datetime_precision AS INT) AS datetime_precision, interval_type, \
         '{NAME}' AS udt_catalog, 'pg_catalog' AS udt_schema, {udt_name} AS udt_name, \
         CAST(NULL AS TEXT) AS collation_name, 'NO' AS is_identity, 'NEVER' AS is_generated, \
         CAST(NULL AS TEXT) AS generation_expression, 'NO' AS is_updatable \
         FROM information_schema.columns",
        data_type = case(|t| t.1),
        udt_name = case(|t| t.2),
    );
    let view = ctx.sql(&sql).await?.into_view();
    super::overlay::replace(
        ctx,
        catalog,
        HashMap::from([("columns", view as Arc<dyn TableProvider>)]),
    )
}

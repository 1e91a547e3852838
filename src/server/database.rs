//! The database as clients see it: `kpidb`, the name the README gives them to connect
//! with (any name is accepted), in `current_database()` (and `current_catalog`) and in
//! pg_catalog.pg_database, where DBeaver looks its database up by that name and
//! pgjdbc compares catalogs with it. DataFusion's own catalog keeps its name.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{col, create_udf, lit, when, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;

/// The database's name.
pub const NAME: &str = "kpidb";

/// `current_database()` and pg_database say [`NAME`] for `catalog`.
pub async fn install(ctx: &SessionContext, catalog: &str) -> Result<()> {
    ctx.register_udf(create_udf(
        "current_database",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::from(NAME)))),
    ));
    let shipped = super::overlay::shipped(ctx, catalog, "pg_database").await?;
    let named = when(col("datname").eq(lit(catalog)), lit(NAME)).otherwise(col("datname"))?;
    let pg_database = super::overlay::with_column(shipped, "datname", named)?;
    super::overlay::replace(
        ctx,
        catalog,
        std::collections::HashMap::from([("pg_database", pg_database)]),
    )
}

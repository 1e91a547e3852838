//! `kpidb export`: the tables as the engine reads them (latest or pinned), written as
//! plain Parquet that any engine reads: `DIR/<table>/year=YYYY/*.parquet` for tables
//! with a year (hive partitioning: the year is in the path, not in the files) and
//! `DIR/<table>/*.parquet` for the others.

use std::path::Path;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::dataframe::DataFrameWriteOptions;

use crate::model::TABLES;
use crate::{Engine, Error, Result};

/// Writes every table under `dir` (which must be new or empty); returns rows per table.
pub async fn parquet(engine: &Engine, dir: &Path) -> Result<Vec<(String, u64)>> {
    crate::storage::require_empty(dir)?;
    let mut counts = Vec::new();
    for def in TABLES {
        let out = dir.join(def.name);
        std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
        let mut options = DataFrameWriteOptions::new().with_single_file_output(false);
        if def.partitioned() {
            options = options.with_partition_by(vec!["year".to_string()]);
        }
        let frame = engine.sql(&format!("SELECT * FROM {}", def.name)).await?;
        let path = format!("{}/", out.display());
        let written = frame.write_parquet(&path, options, None).await?;
        let rows = written
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
            .filter(|c| !c.is_empty())
            .map(|c| c.value(0))
            .unwrap_or(0);
        counts.push((def.name.to_string(), rows));
    }
    Ok(counts)
}

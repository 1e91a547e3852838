//! `kpidb bench`: time one SQL statement, either on the warehouse with kpidb's
//! functions (and rollups) or on plain DataFusion over the Parquet `kpidb export`
//! wrote, with none of kpidb's functions: the baseline kpidb's domain knowledge is
//! measured against. benches/compare/ drives it beside DuckDB.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::model::TABLES;
use crate::{Engine, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngine {
    /// The warehouse, with kpidb's functions and rollups
    Kpidb,
    /// Plain DataFusion over exported Parquet, without kpidb's functions
    Datafusion,
}

pub enum Source {
    Warehouse(Engine),
    Plain(SessionContext),
}

impl Source {
    /// A plain DataFusion session with every table of an export registered over its
    /// Parquet files (`year` from the hive path, as an INT).
    pub async fn plain(dir: &Path) -> Result<Self> {
        let config = SessionConfig::new().with_target_partitions(crate::engine::num_cpus());
        let ctx = SessionContext::new_with_config(config);
        for def in TABLES {
            let path = dir.join(def.name);
            if !path.is_dir() {
                return Err(Error::usage(format!(
                    "{} has no {}; write it with `kpidb export --format parquet {}`",
                    dir.display(),
                    def.name,
                    dir.display()
                )));
            }
            let mut options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            if def.partitioned() {
                options = options.with_table_partition_cols(vec![("year".into(), DataType::Int32)]);
            }
            let url = format!("{}/", path.display());
            ctx.register_listing_table(def.name, &url, options, None, None)
                .await?;
        }
        Ok(Source::Plain(ctx))
    }

    /// Runs `sql`: (milliseconds to the logical plan, table functions expanded;
    /// milliseconds in all, to the last row; the rows).
    async fn run(&self, sql: &str) -> Result<(f64, f64, Vec<RecordBatch>)> {
        let start = Instant::now();
        let frame = match self {
            Source::Warehouse(engine) => engine.sql(sql).await?,
            Source::Plain(ctx) => ctx.sql(sql).await?,
        };
        let planned = start.elapsed().as_secs_f64() * 1000.0;
        let rows = frame.collect().await?;
        Ok((planned, start.elapsed().as_secs_f64() * 1000.0, rows))
    }
}

pub struct Timing {
    pub millis: Vec<f64>,
    /// Of each run, the part until the logical plan was made.
    pub plan_millis: Vec<f64>,
    pub result: Vec<RecordBatch>,
}

impl Timing {
    pub fn rows(&self) -> usize {
        self.result.iter().map(|b| b.num_rows()).sum()
    }

    pub fn median(&self) -> f64 {
        median(&self.millis)
    }

    /// `{"times_ms":[…],"median_ms":…,"plan_median_ms":…,"rows":…}`
    pub fn json(&self) -> String {
        serde_json::json!({
            "times_ms": self.millis,
            "median_ms": self.median(),
            "plan_median_ms": median(&self.plan_millis),
            "rows": self.rows(),
        })
        .to_string()
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs `sql` once untimed (warming the file cache and the table metadata), then
/// `runs` times, each from planning to the last row collected.
pub async fn time(source: &Source, sql: &str, runs: usize) -> Result<Timing> {
    let (_, _, mut result) = source.run(sql).await?;
    let mut millis = Vec::with_capacity(runs);
    let mut plan_millis = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (planned, total, rows) = source.run(sql).await?;
        plan_millis.push(planned);
        millis.push(total);
        result = rows;
    }
    Ok(Timing {
        millis,
        plan_millis,
        result,
    })
}

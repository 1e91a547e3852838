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
use datafusion::prelude::SessionContext;

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
    Warehouse(Box<Engine>),
    Plain(SessionContext),
}

impl Source {
    /// A plain DataFusion session with every table of an export registered over its
    /// Parquet files (`year` from the hive path, as an INT).
    pub async fn plain(dir: &Path) -> Result<Self> {
        let ctx = SessionContext::new_with_config(crate::engine::datafusion_config()?);
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

    /// Runs `sql` as `DataFrame::collect` does, timing each stage.
    async fn run(&self, sql: &str) -> Result<Run> {
        let start = Instant::now();
        let since = |start: Instant| start.elapsed().as_secs_f64() * 1000.0;
        let frame = match self {
            Source::Warehouse(engine) => engine.sql(sql).await?,
            Source::Plain(ctx) => ctx.sql(sql).await?,
        };
        let planned = since(start);
        let (state, plan) = frame.into_parts();
        let optimized = state.optimize(&plan)?;
        let optimized_at = since(start);
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, &state)
            .await?;
        let physical_at = since(start);
        let rows = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
        Ok(Run {
            plan: planned,
            optimize: optimized_at - planned,
            physical: physical_at - optimized_at,
            total: since(start),
            rows,
        })
    }
}

/// One run's milliseconds, stage by stage, and its rows.
struct Run {
    /// Until the logical plan was made (parsed, table functions expanded).
    plan: f64,
    /// In the logical optimizer (the rollup rewrites included).
    optimize: f64,
    /// In the physical planner and its optimizer.
    physical: f64,
    /// In all, to the last row.
    total: f64,
    rows: Vec<RecordBatch>,
}

pub struct Timing {
    pub millis: Vec<f64>,
    /// Of each run, the part until the logical plan was made.
    pub plan_millis: Vec<f64>,
    /// Of each run, the part in the logical optimizer.
    pub optimize_millis: Vec<f64>,
    /// Of each run, the part in physical planning.
    pub physical_millis: Vec<f64>,
    pub result: Vec<RecordBatch>,
}

impl Timing {
    pub fn rows(&self) -> usize {
        self.result.iter().map(|b| b.num_rows()).sum()
    }

    pub fn median(&self) -> f64 {
        median(&self.millis)
    }

    /// `{"times_ms":[…],"median_ms":…,"plan_median_ms":…,"optimize_median_ms":…,
    /// "physical_median_ms":…,"rows":…}`: execution is the rest of the median.
    pub fn json(&self) -> String {
        serde_json::json!({
            "times_ms": self.millis,
            "median_ms": self.median(),
            "plan_median_ms": median(&self.plan_millis),
            "optimize_median_ms": median(&self.optimize_millis),
            "physical_median_ms": median(&self.physical_millis),
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
/// `runs` times, each from planning to the last row collected; `afresh`: each run
/// plans from the SQL, not from the plan the Engine kept from the run before.
pub async fn time(source: &Source, sql: &str, runs: usize, afresh: bool) -> Result<Timing> {
    let mut timing = Timing {
        millis: Vec::with_capacity(runs),
        plan_millis: Vec::with_capacity(runs),
        optimize_millis: Vec::with_capacity(runs),
        physical_millis: Vec::with_capacity(runs),
        result: source.run(sql).await?.rows,
    };
    for _ in 0..runs {
        if let (true, Source::Warehouse(engine)) = (afresh, source) {
            engine.plans().clear();
        }
        let run = source.run(sql).await?;
        timing.plan_millis.push(run.plan);
        timing.optimize_millis.push(run.optimize);
        timing.physical_millis.push(run.physical);
        timing.millis.push(run.total);
        timing.result = run.rows;
    }
    Ok(timing)
}

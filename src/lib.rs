//! kpidb: an embedded analytics engine for government budget-performance data
//! (预算绩效管理), on Apache DataFusion with Delta Lake storage.
//!
//! Module map:
//! - [`memory`]: the process heap, counted by the global allocator.
//! - [`model`]: the tables of the data model, their Arrow types, keys and header aliases.
//! - [`storage`]: the warehouse directory of Delta tables; commits, history, time travel.
//! - [`engine`]: [`Engine`], the one place a DataFusion session is built.
//! - [`ingest`]: one pipeline from files to a commit: streamed CSV / XLSX / Parquet readers,
//!   column-wise rules on every core, checks against the stored tables, a streamed write
//!   committed under the warehouse commit lock.
//! - [`rollup`]: per-year summaries of dept_scores built at ingest, which the table
//!   functions read while they are fresh for the versions a session reads.
//! - [`functions`]: kpidb's SQL functions, one file each.
//! - [`sample`]: the deterministic sample city that reproduces the seed report.
//! - [`report`]: ranking reports from reports.toml: Excel, HTML with charts, Markdown, CSV; the scheduler.
//! - [`server`]: `kpidb serve`, the PostgreSQL wire protocol and HTTP API.
//! - [`shape`]: parsed SQL made shallow (long OR lists to IN, long chains refused) for every surface.
//! - [`cluster`]: running the same SQL on an Apache Ballista cluster: codecs, the
//!   `kpidb scheduler` and `kpidb executor` processes.
//! - [`cli`]: the `kpidb` command: query, repl, ingest, history, report, serve, gen-sample.
//! - [`config`]: where the warehouse is found, and kpidb.toml.
//! - [`export`]: every table as plain, hive-partitioned Parquet for other engines.
//! - [`bench`]: timing SQL on kpidb or on plain DataFusion over exported Parquet.
//! - [`output`]: what the CLI and the HTTP API share about writing results.
//! - [`error`]: [`Error`], split by who caused it.

pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod export;
pub mod functions;
pub mod ingest;
pub mod memory;
pub mod model;
pub mod output;
pub mod report;
pub mod rollup;
pub mod sample;
pub mod server;
pub mod shape;
pub mod storage;

pub use engine::Engine;
pub use error::{Error, Result};
pub use storage::{AsOf, Warehouse, WriteMode};

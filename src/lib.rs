//! kpidb: an embedded analytics engine for government budget-performance data
//! (预算绩效管理), on Apache DataFusion with Delta Lake storage.
//!
//! Module map, in layers: a module imports only from its own layer or the ones
//! above it in this list, never from one below (checked by `tests/integration/layers.rs`).
//!
//! 1. Foundations
//!    - [`error`]: [`Error`], split by who caused it; the ingest problem report.
//!    - [`memory`]: the process heap, counted by the global allocator.
//!    - [`model`]: the tables of the data model, their Arrow types, keys, rules and
//!      header aliases: the rules are data that ingest and the rollups read.
//! 2. Storage
//!    - [`storage`]: the warehouse of Delta tables, in a directory or an S3-compatible
//!      bucket; commits, history, time travel, external sources; small scans' files
//!      kept in memory between queries.
//! 3. SQL helpers
//!    - [`walk`]: walks over parsed SQL, compiled once for every visitor.
//!    - [`shape`]: parsed SQL made shallow (long OR lists to IN, long chains refused) for every surface.
//!    - [`output`]: what the CLI and the HTTP API share about writing results.
//!    - [`decimal`]: decimal products multiplied without per-row overflow checks where
//!      the operands' precisions rule overflow out, and comparisons of them made in 64
//!      bits where they fit (a physical rule every session has).
//!    - [`runs`]: aggregates grouped by partition columns (`GROUP BY year`) fed run by
//!      run of equal keys to their accumulators, without hashing each row (a physical
//!      rule every session has).
//!    - [`shared`]: a subplan named more than once (a CTE's references) computed once
//!      per run and read by each reference, where it reads few rows.
//!    - [`sizing`]: plans over few rows (by the Delta log's counts) made in one
//!      partition (the physical planner every session has).
//!    - [`plans`]: repeated SQL planned once: optimised plans kept while the
//!      statement, settings, relations and table versions they came from are unchanged.
//! 4. The engine and what runs in it
//!    - [`rollup`]: per-year summaries of dept_scores built at ingest, which the table
//!      functions, and plain SQL's aggregates and bottom-n ranks through an optimizer
//!      rule, read while they are fresh for the versions a session reads.
//!    - [`functions`]: kpidb's SQL functions, one file each.
//!    - [`engine`]: [`Engine`], the one place a DataFusion session is built; the
//!      cluster (layer 6) changes where plans run through its [`engine::SessionHook`].
//!    - [`years`]: which years hold data and which are complete (every department
//!      scored on the whole framework): `latest` for reports, hints for empty answers.
//!    - [`ingest`]: one pipeline from files to a commit: streamed CSV / XLSX / Parquet
//!      readers, column-wise rules on every core, checks against the stored tables, a
//!      streamed write committed under the warehouse commit lock.
//!    - [`sample`]: the deterministic sample city that reproduces the seed report, and
//!      the sample and reports shipped inside the binary.
//!    - [`export`]: every table as plain, hive-partitioned Parquet for other engines.
//!    - [`bench`]: timing SQL on kpidb or on plain DataFusion over exported Parquet.
//! 5. Reports
//!    - [`report`]: ranking reports from reports.toml: Excel, HTML with charts,
//!      Markdown, CSV; the scheduler and its job.
//! 6. Serving
//!    - [`cluster`]: running the same SQL on an Apache Ballista cluster (a session
//!      hook): codecs, the `kpidb scheduler` and `kpidb executor` processes.
//!    - [`server`]: `kpidb serve`, the PostgreSQL wire protocol and HTTP API.
//! 7. The command
//!    - [`cli`]: the `kpidb` command (query, repl, ingest, history, report, serve,
//!      gen-sample) and kpidb.toml, which gathers each layer's settings.

pub mod bench;
pub mod cli;
pub mod cluster;
pub mod decimal;
pub mod engine;
pub mod error;
pub mod export;
pub mod functions;
pub mod ingest;
pub mod memory;
pub mod model;
pub mod output;
pub mod plans;
pub mod report;
pub mod rollup;
pub mod runs;
pub mod sample;
pub mod server;
pub mod shape;
pub mod shared;
pub mod sizing;
pub mod storage;
pub mod walk;
pub mod years;

pub use engine::Engine;
pub use error::{Error, Result};
pub use storage::{AsOf, Warehouse, WriteMode};

/// The stack of every thread that plans or runs SQL: the binary's runtime, the
/// server's query runtime, and an embedding program's threads should have it too.
/// Statements are shaped to a bounded depth ([`shape`]) and that depth fits with room
/// to spare, in unoptimised builds too, whose futures and frames are larger. Only
/// the pages a thread touches take memory.
pub const THREAD_STACK: usize = 64 << 20;

//! kpidb's integration tests, in one binary so DataFusion, Ballista and the server stack
//! are linked once. Every module drives real components: the `kpidb` binary, real Delta
//! tables, a real server on 127.0.0.1:0 with real client libraries, parallel processes.
//! The sqllogictest files have their own harness (`tests/slt.rs`).

mod common;
mod optional;

mod cli;
mod clients;
mod cluster;
mod compare;
mod everyday;
mod functions;
mod fuzz;
mod ingest;
mod ingest_concurrency;
mod layers;
mod plans;
mod queries;
mod reports;
mod rollups;
mod s3;
mod server;
mod shared;

use std::io::Write;

/// Named to sort after every other test, so its summary comes at the end of the run.
#[test]
fn zz_skipped_optional_clients() {
    let summary = optional::summary();
    if !summary.is_empty() {
        let _ = write!(
            std::io::stderr(),
            "\nSKIPPED for want of an optional client (.ci/run installs them all):\n{summary}\n"
        );
    }
}

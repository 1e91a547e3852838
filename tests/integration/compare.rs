//! The benchmark comparison's answer check, at the sample city's size: kpidb's
//! functions (with and without rollups), the kpidb engine on plain SQL, plain
//! DataFusion over `kpidb export` and DuckDB over the same Parquet agree on every
//! question, and the driver writes its results. Timings at this size mean nothing;
//! BENCHMARKS.md has the real ones.
//!
//! Needs a Python with duckdb (`KPIDB_PYTHON`, as .ci/run provides); without one the
//! test is skipped with a notice (`optional.rs`), unless KPIDB_REQUIRE_CLIENTS=1.

use std::path::Path;
use std::process::Command;

use crate::optional::{self, Client};

#[test]
fn every_engine_agrees_on_every_question_at_city_size() {
    if !optional::available(Client::PythonDuckdb) {
        return;
    }
    let python = optional::python();
    let work = tempfile::tempdir().unwrap();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare/run.py");
    let out = Command::new(&python)
        .arg(&driver)
        .args(["--scales", "city", "--ingest-scales", "city"])
        .args(["--runs", "1", "--cold-runs", "1"])
        .arg("--kpidb")
        .arg(env!("CARGO_BIN_EXE_kpidb"))
        .arg("--python")
        .arg(&python)
        .arg("--work")
        .arg(work.path())
        .env_remove("KPIDB_DATA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the driver failed:\n{stderr}");
    let results = std::fs::read_to_string(work.path().join("results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&results).unwrap();
    assert_eq!(results["complete"], true, "{results}");
    let questions = results["scales"]["city"]["questions"].as_object().unwrap();
    let names: Vec<&str> = questions.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["callouts", "exante", "filtered", "grades", "ranking", "scan", "trend"],
        "{results}"
    );
    for (name, question) in questions {
        for engine in [
            "kpidb",
            "kpidb_cli",
            "kpidb_raw",
            "kpidb_plain",
            "datafusion",
            "duckdb",
        ] {
            assert!(
                question["engines"][engine]["median_ms"].is_number(),
                "{name} has no time for {engine}: {question}"
            );
        }
    }
    // The ingest table: dept_scores from CSV and from Parquet, each with its peak RSS.
    let ingest = &results["ingest"]["city"];
    assert!(
        ingest["dept_scores_rows"].as_u64().unwrap() > 1000,
        "{ingest}"
    );
    for kind in ["csv", "parquet"] {
        assert!(ingest["kpidb"][kind]["rows_per_s"].is_number(), "{ingest}");
        assert!(
            ingest["kpidb"][kind]["peak_rss_kib"].is_number(),
            "{ingest}"
        );
    }
    let markdown = std::fs::read_to_string(work.path().join("results.md")).unwrap();
    assert!(markdown.contains("Parquet / DuckDB"), "{markdown}");
    assert!(markdown.contains("kpidb / DuckDB"), "{markdown}");
}

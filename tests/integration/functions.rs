//! The built-in functions through the Engine as users reach them: partition pruning
//! seen in EXPLAIN, time travel and fresh ingests seen by the table functions, the
//! configured default grade scheme, and `\df` / FUNCTIONS.md documenting every one.

use crate::common;

use crate::common::{run, sample_copy, stderr, stdout};
use kpidb::{AsOf, Engine, Warehouse};

async fn physical_plan(engine: &Engine, sql: &str) -> String {
    let batches = engine.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    text.split("physical_plan")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn one_year_reads_only_its_partitions() {
    // With the rollups the shipped sample has, and on the raw scores without them.
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let with = Engine::open(warehouse.clone()).await.unwrap();
    let raw = Engine::open_raw(warehouse, kpidb::AsOf::Latest)
        .await
        .unwrap();
    for (engine, scores, level2) in [
        (&with, "_rollups/dept_totals", "_rollups/level2_totals"),
        (&raw, "dept_scores", "dept_scores"),
    ] {
        let plan = physical_plan(engine, "SELECT * FROM dept_ranking(2023)").await;
        assert!(plan.contains(&format!("{scores}/year=2023/")), "{plan}");
        assert!(
            plan.contains(&format!("{scores}/year=2022/")),
            "the year before is read for the change: {plan}"
        );
        for other in ["2019", "2020", "2021"] {
            assert!(
                !plan.contains(&format!("{scores}/year={other}/")),
                "year {other} was read: {plan}"
            );
        }
        for (sql, table) in [
            ("SELECT * FROM indicator_callouts(2023, 3)", level2),
            ("SELECT * FROM grade_distribution(2023)", "evaluations"),
            ("SELECT * FROM exante_summary(2023)", "exante_reviews"),
            ("SELECT * FROM dept_trend(2022, 2023)", scores),
        ] {
            let plan = physical_plan(engine, sql).await;
            assert!(
                plan.contains(&format!("{table}/year=2023/")),
                "{sql}: {plan}"
            );
            assert!(
                !plan.contains(&format!("{table}/year=2021/")),
                "{sql} read 2021: {plan}"
            );
        }
    }
}

#[test]
fn table_functions_see_ingests_and_time_travel() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rescore.csv");
    // 2023 re-scored: department 153 now has full marks, the others keep their scores.
    let csv = stdout(&run(&data, &["query", "--format", "csv",
        "SELECT year, dept_code, indicator_code, CASE WHEN dept_code = '153' THEN max_score ELSE score END AS score, max_score \
         FROM dept_scores WHERE year = 2023"]));
    std::fs::write(&file, csv).unwrap();
    let q = "SELECT rank, total_score FROM dept_ranking(2023) WHERE dept_code = '153'";
    let before = stdout(&run(&data, &["query", "--format", "csv", q]));
    let out = run(
        &data,
        &[
            "ingest",
            "dept_scores",
            file.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&run(&data, &["query", "--format", "csv", q])),
        "rank,total_score\n1,100.00\n"
    );
    assert_eq!(
        stdout(&run(
            &data,
            &["query", "--format", "csv", "--as-of-version", "0", q]
        )),
        before
    );
    assert_ne!(before, "rank,total_score\n1,100.00\n");
}

#[tokio::test]
async fn the_default_grade_scheme_comes_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kpidb.toml");
    std::fs::write(&config, "[functions]\ngrade_scheme = \"local\"\n").unwrap();
    let out = common::kpidb()
        .args([
            "--config",
            config.to_str().unwrap(),
            "query",
            "--format",
            "csv",
            "SELECT perf_grade(95) AS g, (SELECT grade FROM grade_distribution(2023) LIMIT 1) AS d",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "g,d\n优秀,优秀\n", "{}", stderr(&out));

    std::fs::write(&config, "[functions]\ngrade_scheme = \"fancy\"\n").unwrap();
    let out = common::kpidb()
        .args(["--config", config.to_str().unwrap(), "query", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bad configuration"),
        "{}",
        stderr(&out)
    );

    // The library default is mof.
    let engine = Engine::open_at(
        Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap(),
        AsOf::Latest,
    )
    .await
    .unwrap();
    let batches = engine.query("SELECT perf_grade(95)").await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("优 "), "{text}");
}

#[test]
fn every_function_is_documented_and_functions_md_is_current() {
    let out = common::kpidb().args(["functions"]).output().unwrap();
    let text = stdout(&out);
    for name in [
        "perf_grade",
        "score_rate",
        "cut_rate",
        "yoy_pct",
        "prior_year",
        "lowest_k",
        "coverage_rate",
        "dept_ranking",
        "indicator_callouts",
        "dept_trend",
        "grade_distribution",
        "exante_summary",
    ] {
        assert!(
            text.contains(&format!("{name} (")),
            "{name} is missing from \\df"
        );
    }
    let generated = stdout(
        &common::kpidb()
            .args(["functions", "--markdown"])
            .output()
            .unwrap(),
    );
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FUNCTIONS.md")).unwrap();
    assert_eq!(
        generated, committed,
        "FUNCTIONS.md is stale: run `kpidb functions --markdown > FUNCTIONS.md`"
    );
}

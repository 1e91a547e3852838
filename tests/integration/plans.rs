//! Repeated SQL planned once, through the Engine: a kept plan is handed back only while
//! the statement, the settings, the relations it names and the versions it reads are
//! those it was planned from; anything of the moment is planned every time.

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::ExecutionPlan;
use kpidb::ingest::{ingest, IngestRequest};
use kpidb::{AsOf, Engine, Warehouse, WriteMode};

use crate::common::{planned_run, sample_copy};

async fn answer(engine: &Engine, sql: &str) -> String {
    let batches = engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_plan_answers_again_until_an_ingest_changes_what_it_reads() {
    let (_tmp, data) = sample_copy();
    let warehouse = Warehouse::open(&data).unwrap();
    let engine = Engine::open(warehouse.clone()).await.unwrap();
    let pinned = Engine::open_at(
        warehouse.clone(),
        AsOf::Versions(
            engine
                .versions()
                .into_iter()
                .filter_map(|(t, v)| Some((t, v?)))
                .collect(),
        ),
    )
    .await
    .unwrap();
    let ranking = "SELECT rank, total_score FROM dept_ranking(2023) WHERE dept_code = '153'";
    let plain = "SELECT count(*) AS scored, sum(score) AS total FROM dept_scores WHERE year = 2023 AND dept_code = '153'";

    let first = answer(&engine, ranking).await;
    let plain_first = answer(&engine, plain).await;
    assert_eq!(engine.plans().hits(), 0);
    assert_eq!(engine.plans().len(), 2);
    // The same statement, spelled with other white space, is the same plan.
    assert_eq!(answer(&engine, &format!("  {ranking}\n")).await, first);
    assert_eq!(answer(&engine, plain).await, plain_first);
    assert_eq!(engine.plans().hits(), 2);
    assert_eq!(answer(&pinned, ranking).await, first);

    // 2023 re-scored: department 153 now has full marks.
    let csv = {
        let rows = engine
            .query(
                "SELECT year, dept_code, indicator_code, \
                 CASE WHEN dept_code = '153' THEN max_score ELSE score END AS score, max_score \
                 FROM dept_scores WHERE year = 2023",
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for batch in &rows {
                writer.write(batch).unwrap();
            }
        }
        out
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rescore.csv");
    std::fs::write(&file, csv).unwrap();
    ingest(
        &warehouse,
        IngestRequest {
            table: "dept_scores",
            files: std::slice::from_ref(&file),
            mode: WriteMode::ReplaceYear,
            sheet: None,
            progress: false,
            check_only: false,
            strict: false,
        },
    )
    .await
    .unwrap();

    // Until it refreshes, the engine reads the versions it read: the kept plans stand.
    assert_eq!(answer(&engine, ranking).await, first);
    let hits = engine.plans().hits();
    engine.refresh().await.unwrap();
    let after = answer(&engine, ranking).await;
    assert_eq!(
        engine.plans().hits(),
        hits,
        "a plan of older versions was reused"
    );
    assert!(after.contains("| 1    | 100.00 "), "{after}");
    let plain_after = answer(&engine, plain).await;
    assert_ne!(plain_after, plain_first);
    // The plans of the old versions are gone; the new ones are kept.
    assert_eq!(engine.plans().len(), 2);
    assert_eq!(answer(&engine, ranking).await, after);
    assert_eq!(engine.plans().hits(), hits + 1);
    // A pinned engine keeps answering at its pin.
    assert_eq!(answer(&pinned, ranking).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_settings_and_the_moment_are_never_taken_from_a_kept_plan() {
    let (_tmp, data) = sample_copy();
    let engine = Engine::open(Warehouse::open(&data).unwrap()).await.unwrap();

    // A view dropped and made again with other rows is planned again.
    engine
        .query("CREATE VIEW v AS SELECT 1 AS x")
        .await
        .unwrap();
    assert!(answer(&engine, "SELECT x FROM v").await.contains("| 1 |"));
    assert!(answer(&engine, "SELECT x FROM v").await.contains("| 1 |"));
    let hits = engine.plans().hits();
    assert_eq!(hits, 1);
    engine.query("DROP VIEW v").await.unwrap();
    engine
        .query("CREATE VIEW v AS SELECT 2 AS x")
        .await
        .unwrap();
    assert!(answer(&engine, "SELECT x FROM v").await.contains("| 2 |"));
    assert_eq!(engine.plans().hits(), hits);

    // A table made again under the same name is read, not the plan of the old one.
    engine
        .query("CREATE OR REPLACE TABLE t AS SELECT 1 AS n")
        .await
        .unwrap();
    assert!(answer(&engine, "SELECT n FROM t").await.contains("| 1 |"));
    assert!(answer(&engine, "SELECT n FROM t").await.contains("| 1 |"));
    let hits = engine.plans().hits();
    engine
        .query("CREATE OR REPLACE TABLE t AS SELECT 2 AS n")
        .await
        .unwrap();
    assert!(answer(&engine, "SELECT n FROM t").await.contains("| 2 |"));
    assert_eq!(engine.plans().hits(), hits);

    // After SET, a statement is planned under the new settings.
    let sum = "SELECT sum(score) AS s FROM dept_scores WHERE year = 2023";
    let before = answer(&engine, sum).await;
    assert_eq!(answer(&engine, sum).await, before);
    let hits = engine.plans().hits();
    engine
        .query("SET datafusion.execution.target_partitions = 1")
        .await
        .unwrap();
    assert_eq!(answer(&engine, sum).await, before);
    assert_eq!(
        engine.plans().hits(),
        hits,
        "a plan made under other settings was reused"
    );
    assert_eq!(answer(&engine, sum).await, before);
    assert_eq!(engine.plans().hits(), hits + 1);

    // The optimizer folds now() to the moment it ran: such plans are never kept,
    // in the statement or in a view it reads.
    let kept = engine.plans().len();
    let moment = |batches: Vec<datafusion::arrow::record_batch::RecordBatch>| {
        pretty_format_batches(&batches).unwrap().to_string()
    };
    let first = moment(
        engine
            .query("SELECT CAST(now() AS VARCHAR) AS t")
            .await
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = moment(
        engine
            .query("SELECT CAST(now() AS VARCHAR) AS t")
            .await
            .unwrap(),
    );
    assert_ne!(first, second);
    engine
        .query("CREATE VIEW at_the_moment AS SELECT now() AS t")
        .await
        .unwrap();
    engine.query("SELECT t FROM at_the_moment").await.unwrap();
    engine.query("SELECT t FROM at_the_moment").await.unwrap();
    assert_eq!(engine.plans().len(), kept);
    // Nor anything but a query.
    engine.query("EXPLAIN SELECT 1").await.unwrap();
    engine.query("EXPLAIN SELECT 1").await.unwrap();
    assert_eq!(engine.plans().len(), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_in_queries_answers_the_same_from_a_kept_plan() {
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let engine = Engine::open(warehouse).await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in &files {
        let sql = std::fs::read_to_string(file).unwrap();
        let mut answers = Vec::new();
        // Planned, then from the kept plan, then from the kept physical plan again.
        for _ in 0..3 {
            let mut text = String::new();
            for statement in engine.parse(&sql).unwrap() {
                let batches = engine
                    .run(statement)
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                text += &pretty_format_batches(&batches).unwrap().to_string();
            }
            answers.push(text);
        }
        assert_eq!(answers[0], answers[1], "{}", file.display());
        assert_eq!(answers[0], answers[2], "{}", file.display());
    }
    assert!(engine.plans().hits() >= 2 * files.len() as u64);
    // The sample city is small: every kept plan ran again without physical planning.
    assert!(engine.plans().physical_hits() >= files.len() as u64);
}

/// The rows each scan of a physical plan reported it returned, in plan order.
fn scanned_rows(plan: &std::sync::Arc<dyn ExecutionPlan>) -> Vec<usize> {
    let mut rows = Vec::new();
    plan.apply(|node| {
        if node.children().is_empty() {
            rows.push(node.metrics().and_then(|m| m.output_rows()).unwrap_or(0));
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_of_a_kept_physical_plan_reports_its_own_scans_alone() {
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let engine = Engine::open(warehouse).await.unwrap();
    // Raw scores, a rollup read through the rewrite, and a dimension table joined.
    let sql = "SELECT d.dept_name, s.year, sum(s.score) AS total, count(*) AS n \
               FROM dept_scores s JOIN departments d ON d.dept_code = s.dept_code \
               WHERE s.year >= 2022 GROUP BY d.dept_name, s.year ORDER BY 1, 2";
    let mut first = None;
    for run in 0..12 {
        let (physical, answer) = planned_run(&engine, sql).await;
        let rows = scanned_rows(&physical);
        assert!(rows.iter().all(|&r| r > 0), "run {run}: {rows:?}");
        // Each run's scans count that run's rows: as many as the first run's, not
        // the sum of every run's of the plan they were copied from.
        match &first {
            None => first = Some((rows, answer)),
            Some((rows_then, answer_then)) => {
                assert_eq!(&rows, rows_then, "run {run}");
                assert_eq!(&answer, answer_then, "run {run}");
            }
        }
    }
    assert!(engine.plans().physical_hits() >= 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_at_once_of_one_kept_physical_plan_answer_alike() {
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let engine = std::sync::Arc::new(Engine::open(warehouse).await.unwrap());
    // Operators that hold state while they run: joins' collected build sides, a
    // top-k sort, a window's partitions.
    let joined = "SELECT d.parent_code, r.dept_name, r.total_score, \
               rank() OVER (PARTITION BY d.sector ORDER BY r.total_score DESC) AS in_sector \
               FROM dept_ranking(2023) r JOIN departments d ON d.dept_code = r.dept_code \
               JOIN dept_ranking(2022) p ON p.dept_code = r.dept_code AND p.total_score < r.total_score \
               ORDER BY r.total_score DESC, r.dept_name LIMIT 12";
    // A scalar subquery's value: its plan is made afresh each time.
    let above = "SELECT dept_name, total_score FROM dept_ranking(2023) \
                 WHERE total_score > (SELECT avg(total_score) FROM dept_ranking(2022)) \
                 ORDER BY total_score DESC, dept_name";
    for (sql, reused) in [(joined, 8), (above, 0)] {
        let first = answer(&engine, sql).await;
        assert!(first.lines().count() > 5, "{first}");
        let before = engine.plans().physical_hits();
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let engine = std::sync::Arc::clone(&engine);
                tokio::spawn(async move { answer(&engine, sql).await })
            })
            .collect();
        for run in futures::future::join_all(runs).await {
            assert_eq!(run.unwrap(), first, "{sql}");
        }
        assert_eq!(engine.plans().physical_hits(), before + reused, "{sql}");
        // A kept plan's frame built upon: its first rows.
        let limited = engine
            .sql(sql)
            .await
            .unwrap()
            .limit(0, Some(3))
            .unwrap()
            .collect()
            .await
            .unwrap();
        let all = engine.query(sql).await.unwrap();
        let all = datafusion::arrow::compute::concat_batches(&all[0].schema(), &all).unwrap();
        assert_eq!(
            pretty_format_batches(&limited).unwrap().to_string(),
            pretty_format_batches(&[all.slice(0, 3)])
                .unwrap()
                .to_string(),
            "{sql}"
        );
        // Planned afresh, the same answer.
        engine.plans().clear();
        assert_eq!(answer(&engine, sql).await, first, "{sql}");
    }
}

//! Rollups never change an answer: after every kind of ingest (a new year, rows added
//! to a stored year, replace-year, new indicators, new departments), after a commit
//! that left them behind, and read in the past (time travel), the table functions
//! give exactly what they give from the raw scores, and they do read the rollups
//! whenever those are fresh.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use kpidb::ingest::{ingest, IngestRequest};
use kpidb::sample::SampleOptions;
use kpidb::{AsOf, Engine, Warehouse, WriteMode};

/// Every table-function call the rollups serve, over every year and one with no data.
fn calls() -> Vec<String> {
    let mut calls = Vec::new();
    for year in 2018..=2025 {
        calls.push(format!("SELECT * FROM dept_ranking({year})"));
        calls.push(format!("SELECT * FROM indicator_callouts({year}, 3)"));
    }
    // The bottom one (ties kept), and a bottom larger than any level 2.
    calls.push("SELECT * FROM indicator_callouts(2023, 1)".into());
    calls.push("SELECT * FROM indicator_callouts(2022, 1000)".into());
    calls.push("SELECT * FROM dept_trend(2019, 2023)".into());
    calls.push("SELECT * FROM dept_trend(2020, 2024)".into());
    calls.push("SELECT * FROM dept_trend(2023, 2023)".into());
    calls.push("SELECT rank, dept_code FROM dept_ranking(2023) WHERE rank <= 5".into());
    calls.extend(plain_sql().into_iter().map(|(sql, _)| sql));
    calls.extend(level2_sql().into_iter().map(|(sql, _)| sql));
    calls.extend(ranked_sql().into_iter().map(|(sql, _)| sql));
    calls
}

/// Plain SQL ranking level-2 subtotals from the bottom, and whether the ranks
/// level2_totals stores can answer it (the window is the same rank).
fn ranked_sql() -> Vec<(String, bool)> {
    // The subtotals of `filter`, grouped by `group`, ranked by `rank`, bottom `n` kept.
    let ranked = |group: &str, filter: &str, rank: &str, n: u32| {
        let order = group.replace("s.", "").replace("i.", "");
        format!(
            "SELECT * FROM (SELECT *, {rank} AS r FROM (\
               SELECT {group}, sum(s.score) AS score, sum(s.max_score) AS max_score \
               FROM dept_scores s JOIN indicators i ON i.indicator_code = s.indicator_code \
               {filter} GROUP BY {group}) t) u \
             WHERE r <= {n} ORDER BY {order}, r"
        )
    };
    let by_level2 = "i.level1, i.level2, s.dept_code";
    let by_year = "s.year, i.level1, i.level2, s.dept_code";
    let rate = "score_rate(score, max_score)";
    let exact = "CASE WHEN max_score = 0 THEN NULL \
                 ELSE CAST(score * 1000 AS DOUBLE) / CAST(max_score * 1000 AS DOUBLE) END";
    let over = |partition: &str, order: &str| {
        format!("RANK() OVER (PARTITION BY {partition} ORDER BY {order})")
    };
    let mut queries = vec![
        (
            include_str!("../../benches/compare/questions/callouts.plain.sql").to_string(),
            true,
        ),
        (
            ranked(
                by_level2,
                "WHERE s.year = 2022",
                &over("level2, level1", rate),
                1,
            ),
            true,
        ),
        (
            ranked(
                by_level2,
                "WHERE 2024 = s.year AND i.framework = 'dept'",
                &over("level1, level2", exact),
                3,
            ),
            true,
        ),
        (
            ranked(by_year, "", &over("year, level1, level2", rate), 2),
            true,
        ),
        (
            ranked(
                by_year,
                "WHERE s.year = 2023 AND i.level1 = '产出'",
                &over("level1, level2", &format!("{rate} ASC NULLS LAST")),
                3,
            ),
            true,
        ),
    ];
    for (group, filter, rank) in [
        // From the top, not the bottom.
        (
            by_level2,
            "WHERE s.year = 2023",
            over("level1, level2", &format!("{rate} DESC")),
        ),
        (
            by_level2,
            "WHERE s.year = 2023",
            format!("DENSE_RANK() OVER (PARTITION BY level1, level2 ORDER BY {rate})"),
        ),
        (
            by_level2,
            "WHERE s.year = 2023",
            format!("ROW_NUMBER() OVER (PARTITION BY level1, level2 ORDER BY {rate}, dept_code)"),
        ),
        // Fewer departments ranked than the year's.
        (
            by_level2,
            "WHERE s.year = 2023 AND s.dept_code IN ('101', '150', '160')",
            over("level1, level2", rate),
        ),
        // Rates that can tie differently: each score rounded to a double first.
        (
            by_level2,
            "WHERE s.year = 2023",
            over(
                "level1, level2",
                "CAST(score AS DOUBLE) / CAST(max_score AS DOUBLE)",
            ),
        ),
        (
            by_level2,
            "WHERE s.year = 2023",
            over("level1, level2", "score"),
        ),
        // Ranked across level-1 indicators, or across years.
        (by_level2, "WHERE s.year = 2023", over("level2", rate)),
        (
            by_level2,
            "WHERE s.year >= 2022",
            over("level1, level2", rate),
        ),
        (
            by_year,
            "WHERE s.year >= 2022",
            over("level1, level2", rate),
        ),
        (by_year, "", over("level1, level2, dept_code", rate)),
    ] {
        queries.push((ranked(group, filter, &rank, 3), false));
    }
    queries
}

/// Plain SQL joining dept_scores to indicators, and whether level2_totals can answer it.
fn level2_sql() -> Vec<(String, bool)> {
    let mut queries = Vec::new();
    for (select, group) in [
        ("i.level2", "i.level2"),
        ("s.year, i.level1, i.level2", "s.year, i.level1, i.level2"),
        ("s.dept_code", "s.dept_code"),
    ] {
        for filter in [
            "",
            "WHERE s.year = 2023 AND i.framework = 'dept'",
            "WHERE i.level1 = '产出' AND s.dept_code IN ('101', '150')",
        ] {
            queries.push((
                format!(
                    "SELECT {select}, sum(s.score) AS score, sum(s.max_score) AS max_score \
                     FROM dept_scores s JOIN indicators i ON i.indicator_code = s.indicator_code \
                     {filter} GROUP BY {group} ORDER BY {group}"
                ),
                true,
            ));
        }
    }
    for sql in [
        "SELECT i.level3, sum(s.score) FROM dept_scores s JOIN indicators i \
         ON i.indicator_code = s.indicator_code GROUP BY i.level3 ORDER BY 1",
        "SELECT i.level2, count(*) FROM dept_scores s JOIN indicators i \
         ON i.indicator_code = s.indicator_code GROUP BY i.level2 ORDER BY 1",
        "SELECT i.level2, sum(s.score) FROM dept_scores s JOIN indicators i \
         ON i.indicator_code = s.indicator_code WHERE i.framework = 'project' GROUP BY i.level2 ORDER BY 1",
    ] {
        queries.push((sql.to_string(), false));
    }
    queries
}

/// Plain SQL over dept_scores, and whether the dept_totals rollup can answer it:
/// every grouping (none, year, dept_code, both) × filter × measures, and some it cannot.
fn plain_sql() -> Vec<(String, bool)> {
    let mut queries = Vec::new();
    let groupings = ["", "year", "dept_code", "year, dept_code"];
    let filters = [
        "",
        "WHERE year = 2023",
        "WHERE year BETWEEN 2020 AND 2022 AND dept_code IN ('101', '102', '160')",
        "WHERE year >= 2024 OR dept_code LIKE '11%'",
        // No rows: a count is 0 and a sum NULL, from the rollup as from the raw rows.
        "WHERE year = 1999",
    ];
    let measures = [
        "sum(score) AS total, count(*) AS n",
        "count(indicator_code) AS scored, sum(score) / count(*) AS mean",
        "sum(max_score) AS points, min(score) AS low, max(score) AS high",
        "min(dept_code) AS first_dept, max(year) AS last_year, sum(score) / sum(max_score) AS rate",
    ];
    for grouping in groupings {
        for filter in filters {
            for measure in measures {
                let (select, group, order) = match grouping {
                    "" => (String::new(), String::new(), String::new()),
                    g => (
                        format!("{g}, "),
                        format!(" GROUP BY {g}"),
                        format!(" ORDER BY {g}"),
                    ),
                };
                queries.push((
                    format!("SELECT {select}{measure} FROM dept_scores {filter}{group}{order}"),
                    true,
                ));
            }
        }
    }
    queries.push((
        "SELECT s.year, sum(s.score) AS total FROM dept_scores s WHERE s.year > 2020 \
         GROUP BY s.year ORDER BY s.year"
            .to_string(),
        true,
    ));
    queries.push((
        "SELECT t.dept_code, t.n FROM (SELECT dept_code, count(*) AS n FROM dept_scores \
         WHERE year = 2023 GROUP BY dept_code) AS t ORDER BY t.n DESC, t.dept_code"
            .to_string(),
        true,
    ));
    queries.push((
        "SELECT year, count(*) AS score_rows, sum(score) AS score, sum(max_score) AS max_score \
         FROM dept_scores GROUP BY year ORDER BY year"
            .to_string(),
        true,
    ));
    // Grouped by the rollup's whole key under other names and orders, and read more
    // than once (the plain SQL of a trend names its totals three times).
    queries.push((
        "SELECT s.dept_code, s.year, count(s.score) AS n, max(s.score) AS high \
         FROM dept_scores AS s GROUP BY s.dept_code, s.year ORDER BY s.dept_code, s.year"
            .to_string(),
        true,
    ));
    queries.push((
        "WITH t AS (SELECT dept_code, year, sum(score) AS total FROM dept_scores \
         WHERE year BETWEEN 2019 AND 2023 GROUP BY dept_code, year) \
         SELECT a.dept_code, a.year, a.total - b.total AS change FROM t a \
         JOIN t b ON b.dept_code = a.dept_code AND b.year = a.year - 1 ORDER BY 1, 2"
            .to_string(),
        true,
    ));
    for sql in [
        // count(NULL) is 0 in every group.
        "SELECT year, dept_code, count(NULL) AS none FROM dept_scores GROUP BY year, dept_code \
         ORDER BY year, dept_code",
        "SELECT year, count(NULL) AS none FROM dept_scores GROUP BY year ORDER BY year",
        "SELECT year, min(max_score) FROM dept_scores GROUP BY year ORDER BY year",
        "SELECT year, avg(score) FROM dept_scores GROUP BY year ORDER BY year",
        "SELECT year, max(score) FROM dept_scores WHERE score < 3 GROUP BY year ORDER BY year",
        "SELECT year, sum(score) FROM dept_scores WHERE indicator_code = 'D1101' GROUP BY year ORDER BY year",
        "SELECT year, min(score), count(DISTINCT dept_code) FROM dept_scores GROUP BY year ORDER BY year",
        "SELECT indicator_code, sum(score) FROM dept_scores GROUP BY indicator_code ORDER BY 1",
    ] {
        queries.push((sql.to_string(), false));
    }
    queries
}

/// Whether `sql` reads its ranks from level2_totals on `engine`: its plan ranks nothing.
async fn reads_ranks(engine: &Engine, sql: &str) -> bool {
    let text = explain(engine, sql).await;
    assert!(
        text.contains("WindowAggExec") || text.contains("rank_from_bottom"),
        "{text}"
    );
    !text.contains("WindowAggExec")
}

/// `sql`'s plans on `engine`, logical and physical, as `EXPLAIN` prints them.
async fn explain(engine: &Engine, sql: &str) -> String {
    let batches = engine.query(&format!("EXPLAIN {sql}")).await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

/// Whether `plan` (`EXPLAIN`'s text) reads `rollup`.
fn reads(plan: &str, rollup: &str) -> bool {
    plan.contains(&format!("kpidb_rollup.public.{rollup}"))
}

/// Whether `sql` (of [`plain_sql`]) groups by year and dept_code and nothing else.
fn by_year_and_dept(sql: &str) -> bool {
    ["year, dept_code", "s.dept_code, s.year", "dept_code, year"]
        .iter()
        .any(|g| sql.contains(&format!("GROUP BY {g} ")) || sql.contains(&format!("GROUP BY {g})")))
}

async fn answers(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    for sql in calls() {
        let batches = engine
            .query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(format!(
            "{sql}\n{}",
            pretty_format_batches(&batches).unwrap()
        ));
    }
    out
}

/// The rollup answers equal the raw answers at `as_of`; returns the rollups in use.
async fn same_as_raw(warehouse: &Warehouse, as_of: AsOf, when: &str) -> Vec<&'static str> {
    let with = Engine::open_at(warehouse.clone(), as_of.clone())
        .await
        .unwrap();
    let raw = Engine::open_raw(warehouse.clone(), as_of).await.unwrap();
    assert!(raw.rollups().in_use().is_empty());
    for (a, b) in answers(&with).await.iter().zip(answers(&raw).await) {
        assert_eq!(*a, b, "{when}: the rollup answer differs from the raw one");
    }
    let in_use: Vec<&'static str> = with.rollups().in_use().into_iter().map(|r| r.0).collect();
    // Plain SQL reads a rollup exactly when it is fresh and can answer the question.
    for (rollup, queries) in [
        ("dept_totals", plain_sql()),
        ("level2_totals", level2_sql()),
    ] {
        for (sql, answerable) in queries {
            let fresh = in_use.contains(&rollup);
            let plan = explain(&with, &sql).await;
            assert_eq!(reads(&plan, rollup), answerable && fresh, "{when}: {sql}");
            assert!(!reads(&explain(&raw, &sql).await, rollup), "{when}: {sql}");
            // Grouped by year and department, each group is one dept_totals row.
            if rollup == "dept_totals" && answerable && fresh && by_year_and_dept(&sql) {
                assert!(!plan.contains("AggregateExec"), "{when}: {sql}\n{plan}");
            }
        }
    }
    for (sql, answerable) in ranked_sql() {
        let fresh = in_use.contains(&"level2_totals");
        assert_eq!(
            reads_ranks(&with, &sql).await,
            answerable && fresh,
            "{when}: {sql}"
        );
        assert!(!reads_ranks(&raw, &sql).await, "{when}: {sql}");
    }
    in_use
}

const BOTH: [&str; 2] = ["dept_totals", "level2_totals"];

async fn load(warehouse: &Warehouse, dir: &Path, table: &str, csv: &str, mode: WriteMode) {
    let file = dir.join(format!("{table}-{}.csv", csv.len()));
    std::fs::write(&file, csv).unwrap();
    ingest(
        warehouse,
        IngestRequest {
            table,
            files: std::slice::from_ref(&file),
            mode,
            sheet: None,
            progress: false,
            check_only: false,
            strict: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("ingest {table}: {e}"));
}

/// `sql`'s rows as CSV with a header, for feeding back to ingest.
async fn csv_of(warehouse: &Warehouse, sql: &str) -> String {
    let engine = Engine::open(warehouse.clone()).await.unwrap();
    let mut out = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for batch in engine.query(sql).await.unwrap() {
            writer.write(&batch).unwrap();
        }
    }
    String::from_utf8(out).unwrap()
}

fn version(versions: &std::collections::BTreeMap<String, u64>, table: &str) -> u64 {
    versions[table]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_answer_as_the_raw_scores_after_every_kind_of_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("warehouse");
    kpidb::sample::write(&root, &SampleOptions::default(), None)
        .await
        .unwrap();
    let warehouse = Warehouse::open(&root).unwrap();
    let dir = tmp.path();
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "generated").await,
        BOTH
    );
    let generated = warehouse.versions().await.unwrap();

    // A new year, 2024, for half the departments.
    let csv = csv_of(
        &warehouse,
        "SELECT 2024 AS year, dept_code, indicator_code, score, max_score FROM dept_scores \
         WHERE year = 2023 AND dept_code < '130'",
    )
    .await;
    load(&warehouse, dir, "dept_scores", &csv, WriteMode::Append).await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "a new year").await,
        BOTH
    );

    // Rows added to a stored year: the rest of 2024, scored lower.
    let csv = csv_of(
        &warehouse,
        "SELECT 2024 AS year, dept_code, indicator_code, CAST(score / 2 AS DECIMAL(7, 2)) AS score, \
         max_score FROM dept_scores WHERE year = 2023 AND dept_code >= '130'",
    )
    .await;
    load(&warehouse, dir, "dept_scores", &csv, WriteMode::Append).await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "rows added to a year").await,
        BOTH
    );
    let before_replace = warehouse.versions().await.unwrap();

    // Replace-year: 2023 re-scored, fewer departments and new scores.
    let csv = csv_of(
        &warehouse,
        "SELECT year, dept_code, indicator_code, \
         CASE WHEN dept_code = '101' THEN max_score ELSE score END AS score, max_score \
         FROM dept_scores WHERE year = 2023 AND dept_code <> '102'",
    )
    .await;
    load(&warehouse, dir, "dept_scores", &csv, WriteMode::ReplaceYear).await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "replace-year").await,
        BOTH
    );

    // A new level-2 indicator, then scores on it: the level-2 rollup follows both.
    load(
        &warehouse,
        dir,
        "indicators",
        "indicator_code,framework,level1,level2,level3,direction\n\
         D9901,dept,效益,满意度,服务对象满意度,higher\n",
        WriteMode::Append,
    )
    .await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "a new indicator").await,
        BOTH
    );
    let csv = csv_of(
        &warehouse,
        "SELECT DISTINCT 2024 AS year, dept_code, 'D9901' AS indicator_code, \
         CAST(0 AS DECIMAL(7, 2)) AS score, CAST(3 AS DECIMAL(7, 2)) AS max_score \
         FROM dept_scores WHERE year = 2024 AND dept_code < '110'",
    )
    .await;
    load(&warehouse, dir, "dept_scores", &csv, WriteMode::Append).await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "scores on the new indicator").await,
        BOTH
    );

    // New departments are not a source: the rollups stay in use.
    load(
        &warehouse,
        dir,
        "departments",
        "dept_code,dept_name,parent_code,sector\n901,市新设局,,综合\n",
        WriteMode::Append,
    )
    .await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "a new department").await,
        BOTH
    );

    // The past: each pinned state reads the rollup version that summarised it.
    for (pin, when) in [
        (&generated, "pinned at generation"),
        (&before_replace, "pinned before replace-year"),
    ] {
        let as_of = AsOf::Versions(pin.clone());
        assert_eq!(same_as_raw(&warehouse, as_of, when).await, BOTH, "{when}");
    }
    // A mix no rollup summarised (old scores, new indicators): raw for level 2.
    let mut mixed = before_replace.clone();
    mixed.insert(
        "indicators".into(),
        version(&warehouse.versions().await.unwrap(), "indicators"),
    );
    assert_eq!(
        same_as_raw(
            &warehouse,
            AsOf::Versions(mixed),
            "old scores, new indicators"
        )
        .await,
        ["dept_totals"]
    );

    // A commit that bypasses ingest leaves the rollups behind: they are not read,
    // and the answers still equal the raw ones.
    let scores = kpidb::model::table_or_err("dept_scores").unwrap();
    let batches = Engine::open(warehouse.clone())
        .await
        .unwrap()
        .query(
            "SELECT 2025 AS year, dept_code, indicator_code, score, max_score \
             FROM dept_scores WHERE year = 2024",
        )
        .await
        .unwrap();
    let batches = batches
        .iter()
        .map(|b| {
            datafusion::arrow::record_batch::RecordBatch::try_new(
                scores.schema(),
                b.columns()
                    .iter()
                    .zip(scores.schema().fields())
                    .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()).unwrap())
                    .collect(),
            )
            .unwrap()
        })
        .collect();
    let version = warehouse
        .commit(scores, batches, WriteMode::Append, &[2025], "test")
        .await
        .unwrap();
    assert!(
        same_as_raw(&warehouse, AsOf::Latest, "rollups behind")
            .await
            .is_empty(),
        "a stale rollup must not be read"
    );
    let status = kpidb::rollup::status(&warehouse).await.unwrap().join("\n");
    assert!(status.contains("stale"), "{status}");

    // The next update (here: for exactly that commit) brings them current again.
    kpidb::rollup::after_commit(&warehouse, "dept_scores", version, &[2025])
        .await
        .unwrap();
    assert_eq!(same_as_raw(&warehouse, AsOf::Latest, "rebuilt").await, BOTH);
    let status = kpidb::rollup::status(&warehouse).await.unwrap().join("\n");
    assert!(!status.contains("stale"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_without_rollups_reads_the_raw_scores_and_a_server_picks_them_up() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("warehouse");
    kpidb::sample::write(&root, &SampleOptions::default(), None)
        .await
        .unwrap();
    std::fs::remove_dir_all(root.join("_rollups")).unwrap();
    let warehouse = Warehouse::open(&root).unwrap();

    // A long-lived engine (as `kpidb serve` holds) opened before any rollup exists.
    let engine = Engine::open(warehouse.clone()).await.unwrap();
    assert!(engine.rollups().in_use().is_empty());
    let before = answers(&engine).await;

    kpidb::rollup::rebuild_all(&warehouse).await.unwrap();
    engine.refresh().await.unwrap();
    assert_eq!(
        engine
            .rollups()
            .in_use()
            .into_iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        BOTH
    );
    assert_eq!(answers(&engine).await, before);
    let plan = engine
        .query("EXPLAIN SELECT * FROM dept_ranking(2023)")
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan).unwrap().to_string();
    assert!(plan.contains("_rollups/dept_totals"), "{plan}");
    assert!(!plan.contains("dept_scores/"), "{plan}");
}

/// A dept_totals written by an older kpidb: the columns it had then, current sources,
/// and no layout recorded.
async fn write_older_dept_totals(warehouse: &Warehouse, root: &Path) {
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use deltalake::kernel::transaction::CommitProperties;
    use deltalake::operations::write::SchemaMode;
    use deltalake::protocol::SaveMode;

    let raw = Engine::open_raw(warehouse.clone(), AsOf::Latest)
        .await
        .unwrap();
    let batches = raw
        .query(
            "SELECT year, dept_code, sum(score) AS total_score, count(*) AS indicators_scored, \
             CAST(15 AS BIGINT) AS year_indicators FROM dept_scores GROUP BY year, dept_code",
        )
        .await
        .unwrap();
    let plain = |t: &DataType| match t {
        DataType::Utf8View => DataType::Utf8,
        other => other.clone(),
    };
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let schema = Arc::new(Schema::new(
                b.schema()
                    .fields()
                    .iter()
                    .map(|f| Field::new(f.name(), plain(f.data_type()), f.is_nullable()))
                    .collect::<Vec<_>>(),
            ));
            let columns = b
                .columns()
                .iter()
                .map(|c| cast(c, &plain(c.data_type())).unwrap())
                .collect();
            RecordBatch::try_new(schema, columns).unwrap()
        })
        .collect();
    let versions = warehouse.versions().await.unwrap();
    let sources = format!("dept_scores={}", version(&versions, "dept_scores"));
    // A new table: none of its commits is of this kpidb's layout.
    let location = warehouse.location();
    let rel = "_rollups/dept_totals";
    std::fs::remove_dir_all(root.join(rel)).unwrap();
    location.prepare(rel).unwrap();
    let table = location.delta(location.url(rel).unwrap()).unwrap();
    table
        .write(batches)
        .with_save_mode(SaveMode::Overwrite)
        .with_schema_mode(SchemaMode::Overwrite)
        .with_partition_columns(["year"])
        .with_commit_properties(
            CommitProperties::default()
                .with_metadata([("kpidb.sources".to_string(), serde_json::json!(sources))]),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_of_an_older_layout_is_never_read_and_the_next_ingest_rebuilds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("warehouse");
    kpidb::sample::write(&root, &SampleOptions::default(), None)
        .await
        .unwrap();
    let warehouse = Warehouse::open(&root).unwrap();
    write_older_dept_totals(&warehouse, &root).await;

    // Its sources are current, but not its columns: read neither by the functions nor
    // by plain SQL, and the answers are the raw ones.
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "an older dept_totals").await,
        ["level2_totals"]
    );
    let status = kpidb::rollup::status(&warehouse).await.unwrap().join("\n");
    assert!(
        status.contains("dept_totals") && status.contains("stale"),
        "{status}"
    );

    // The next ingest into dept_scores (here of one year, which alone would only
    // recompute that year) rebuilds it whole, in this layout.
    let csv = csv_of(
        &warehouse,
        "SELECT year, dept_code, indicator_code, score, max_score FROM dept_scores \
         WHERE year = 2023",
    )
    .await;
    load(
        &warehouse,
        tmp.path(),
        "dept_scores",
        &csv,
        WriteMode::ReplaceYear,
    )
    .await;
    assert_eq!(
        same_as_raw(&warehouse, AsOf::Latest, "after the next ingest").await,
        BOTH
    );
}

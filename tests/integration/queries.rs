//! Every file in `queries/` runs on the sample warehouse, and each seed figure
//! (seed-facts.md F1–F15) comes out exactly.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kpidb::{Engine, Warehouse};

/// (file, expected rows as CSV-like text).
const FIGURES: &[(&str, &str)] = &[
    ("f01_exante_reviewed_2023.sql", "59"),
    ("f02_exante_requested_2023.sql", "24053.22"),
    ("f03_exante_approved_2023.sql", "14892.89"),
    ("f04_exante_cut_2023.sql", "9160.33"),
    ("f05_exante_cut_rate_2023.sql", "38.08"),
    ("f06_exante_rejected_2023.sql", "4"),
    ("f07_exante_returned_2023.sql", "1"),
    ("f08_budget_units_2023.sql", "417"),
    ("f09_budget_units_total_2023.sql", "712900.00"),
    ("f10_target_coverage_2023.sql", "100.0,100.0"),
    ("f11_finance_monitoring_2023.sql", "9,253300.00,34"),
    ("f12_finance_evaluations_2023.sql", "16,9,7"),
    ("f13_evaluation_grades_2023.sql", "优秀,2\n良好,13\n一般,1"),
    ("f14_dept_evaluation_years.sql", "5,2019,2023"),
    ("f15_evaluation_suggestions_2023.sql", "73"),
];

async fn answer(engine: &Engine, sql: &str) -> String {
    let batches = engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let options = FormatOptions::default().with_null("NULL");
    let mut lines = Vec::new();
    for batch in &batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..batch.num_rows() {
            lines.push(
                formatters
                    .iter()
                    .map(|f| f.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    lines.join("\n")
}

#[tokio::test]
async fn every_query_runs_and_every_seed_figure_is_exact() {
    let engine =
        Engine::open(Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap())
            .await
            .unwrap();
    let files = crate::common::query_paths();
    let mut checked = 0;
    for file in &files {
        let sql = std::fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let got = answer(&engine, &sql).await;
        assert!(!got.is_empty(), "{name} returned no rows");
        if let Some((_, expected)) = FIGURES.iter().find(|(f, _)| *f == name) {
            assert_eq!(got, *expected, "{name}");
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        FIGURES.len(),
        "every seed figure has its query in queries/"
    );
}

/// Aggregates grouped by the partition column run by runs of equal keys
/// (`kpidb::runs`), and answer as the hash aggregate does: the same questions grouped
/// by a cast of the year (which is no partition column) are hashed.
#[tokio::test]
async fn grouping_by_the_partition_column_answers_as_hashing_does() {
    let engine = Engine::open_raw(
        Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap(),
        kpidb::AsOf::Latest,
    )
    .await
    .unwrap();
    let questions = [
        "SELECT {KEY}, count(*), sum(score), min(score), max(max_score), avg(score) \
         FROM dept_scores WHERE score * 10 < max_score * 6 GROUP BY 1 ORDER BY 1",
        "SELECT {KEY}, count(*), sum(score), sum(max_score) FROM dept_scores \
         GROUP BY 1 ORDER BY 1",
        "SELECT {KEY}, count(approved_amount), sum(approved_amount), \
         count(DISTINCT conclusion), max(requested_amount) \
         FROM exante_reviews WHERE year >= 2021 GROUP BY 1 ORDER BY 1",
        "SELECT {KEY}, eval_kind, count(total_score), avg(total_score) FROM evaluations \
         GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT {KEY}, count(*) FROM dept_scores WHERE score > 1000 GROUP BY 1",
    ];
    let plan = |sql: String| {
        let engine = &engine;
        async move {
            let explained = answer(engine, &format!("EXPLAIN {sql}")).await;
            (
                explained.contains("RunAggregateExec"),
                answer(engine, &sql).await,
            )
        }
    };
    for question in questions {
        let (runs, by_runs) = plan(question.replace("{KEY}", "year")).await;
        let (hashed_runs, hashed) =
            plan(question.replace("{KEY}", "CAST(year AS BIGINT) AS year")).await;
        let keyed_by_year = !question.contains("eval_kind");
        assert_eq!(
            runs, keyed_by_year,
            "run by runs or not as expected: {question}"
        );
        assert!(!hashed_runs, "a computed key is hashed: {question}");
        assert_eq!(by_runs, hashed, "{question}");
    }
}

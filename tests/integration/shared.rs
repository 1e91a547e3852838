//! A subplan a query names more than once, computed once per run: through the Engine
//! on the sample city, the plain-SQL trend (its department totals named three times)
//! reads them once per run, answers as the same question written without a repeat,
//! and answers alike in simultaneous runs of its kept plan; nothing volatile is shared.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::{displayable, ExecutionPlan};
use kpidb::{Engine, Warehouse};

use crate::common::planned_run;

/// The plain SQL of `dept_trend`, as the benchmark asks it.
fn trend() -> String {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/compare/questions/trend.plain.sql"
    );
    std::fs::read_to_string(file).unwrap()
}

async fn engine() -> Engine {
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    Engine::open(warehouse).await.unwrap()
}

/// The scans of `plan` that returned rows in its run.
fn scans_that_ran(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let mut ran = 0;
    plan.apply(|node| {
        let rows = node.metrics().and_then(|m| m.output_rows()).unwrap_or(0);
        if node.children().is_empty() && rows > 0 {
            ran += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    ran
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cte_named_three_times_is_read_once_per_run() {
    let engine = engine().await;
    let sql = trend();
    // The same question with each reference's years written differently: three
    // different subplans, none shared.
    let apart = sql
        .replacen(
            "year BETWEEN 2019 AND 2023",
            "year IN (2019, 2020, 2021, 2022, 2023)",
            1,
        )
        .replace(
            "JOIN totals t_first",
            "JOIN (SELECT * FROM totals WHERE year >= 2019) t_first",
        )
        .replace(
            "JOIN totals t_last",
            "JOIN (SELECT * FROM totals WHERE year <= 2023) t_last",
        );
    let (plan, answer) = planned_run(&engine, &sql).await;
    let shown = displayable(plan.as_ref()).indent(false).to_string();
    assert_eq!(shown.matches("SharedExec: subplan=0").count(), 3, "{shown}");
    // The department totals and the departments: two scans ran, not four.
    assert_eq!(scans_that_ran(&plan), 2, "{shown}");
    assert!(answer.lines().count() > 20, "{answer}");
    let (apart_plan, apart_answer) = planned_run(&engine, &apart).await;
    let apart_shown = displayable(apart_plan.as_ref()).indent(false).to_string();
    assert!(!apart_shown.contains("SharedExec"), "{apart_shown}");
    assert_eq!(answer, apart_answer);
    // Again from the kept physical plan: each run's copy reads the totals once.
    let hits = engine.plans().physical_hits();
    for _ in 0..3 {
        let (plan, again) = planned_run(&engine, &sql).await;
        assert_eq!(again, answer);
        assert_eq!(scans_that_ran(&plan), 2);
    }
    assert_eq!(engine.plans().physical_hits(), hits + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_runs_of_a_shared_subplan_answer_alike() {
    let engine = Arc::new(engine().await);
    let sql = trend();
    let (_, first) = planned_run(&engine, &sql).await;
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (engine, sql) = (Arc::clone(&engine), sql.clone());
            tokio::spawn(async move { planned_run(&engine, &sql).await.1 })
        })
        .collect();
    for answer in futures::future::join_all(runs).await {
        assert_eq!(answer.unwrap(), first);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cte_drawing_random_values_is_shared_only_where_they_are_not_read() {
    let engine = engine().await;
    // Each reference draws its own values, as DataFusion plans a CTE: a department's
    // two draws (doubles in [0, 1)) are as good as never equal.
    let sql = "WITH drawn AS (SELECT dept_code, random() AS x FROM departments) \
               SELECT count(*) AS same FROM drawn a JOIN drawn b \
               ON a.dept_code = b.dept_code WHERE a.x = b.x";
    let (plan, answer) = planned_run(&engine, sql).await;
    let shown = displayable(plan.as_ref()).indent(false).to_string();
    assert!(!shown.contains("SharedExec"), "{shown}");
    assert!(answer.contains("| 0    |"), "{answer}");
    // Where the draws are not read, the optimizer drops them and the rest is shared.
    let sql = "WITH drawn AS (SELECT dept_code, random() AS x FROM departments) \
               SELECT count(*) FROM drawn a JOIN drawn b ON a.dept_code = b.dept_code";
    let (plan, answer) = planned_run(&engine, sql).await;
    let shown = displayable(plan.as_ref()).indent(false).to_string();
    assert_eq!(shown.matches("SharedExec").count(), 2, "{shown}");
    let (_, departments) = planned_run(&engine, "SELECT count(*) FROM departments").await;
    assert_eq!(answer, departments);
}

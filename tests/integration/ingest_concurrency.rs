//! Ingests from separate processes at the same time never break the data model: each
//! outcome equals one of the serial orders, the loser of a real conflict names what
//! conflicts and writes nothing, and the rollups stay correct.

use crate::common;

use std::path::Path;
use std::process::{Child, Output, Stdio};

use crate::common::{run, sample_copy, scalar, stderr, stdout, version};

const HEADER: &str = "year,dept_code,indicator_code,score,max_score\n";

fn spawn(data: &Path, args: &[&str]) -> Child {
    common::kpidb()
        .arg("--data")
        .arg(data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kpidb starts")
}

/// Starts every command at once and waits for all of them.
fn together(data: &Path, commands: &[Vec<&str>]) -> Vec<Output> {
    let children: Vec<Child> = commands.iter().map(|args| spawn(data, args)).collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("kpidb ends"))
        .collect()
}

/// (dept_code, indicator_code) pairs: every dept indicator for `depts` departments.
fn pairs(data: &Path, where_dept: &str) -> Vec<(String, String)> {
    let out = run(
        data,
        &[
            "query",
            "--format",
            "csv",
            &format!(
                "SELECT d.dept_code, i.indicator_code FROM departments d CROSS JOIN indicators i \
                 WHERE i.framework = 'dept' AND {where_dept} ORDER BY 1, 2"
            ),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| {
            let (d, i) = l.split_once(',').unwrap();
            (d.to_string(), i.to_string())
        })
        .collect()
}

fn scores_file(
    dir: &Path,
    name: &str,
    year: i32,
    pairs: &[(String, String)],
    score: &str,
) -> String {
    let mut csv = String::from(HEADER);
    for (d, i) in pairs {
        csv.push_str(&format!("{year},{d},{i},{score},5\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_string()
}

fn count(data: &Path, sql: &str) -> u64 {
    scalar(data, sql).parse().unwrap()
}

/// The rollups are current and dept_ranking (read from them) totals the raw scores.
fn rollups_agree(data: &Path, year: i32) {
    let status = stdout(&run(data, &["rollups"]));
    assert_eq!(status.matches("current").count(), 2, "{status}");
    let ranked = stdout(&run(
        data,
        &[
            "query",
            "--format",
            "csv",
            &format!("SELECT dept_code, total_score FROM dept_ranking({year}) ORDER BY dept_code"),
        ],
    ));
    let raw = stdout(&run(
        data,
        &[
            "query",
            "--format",
            "csv",
            &format!(
                "SELECT dept_code, sum(score) AS total_score FROM dept_scores WHERE year = {year} \
                 GROUP BY dept_code ORDER BY dept_code"
            ),
        ],
    ));
    assert_eq!(
        ranked, raw,
        "dept_ranking({year}) disagrees with the raw scores"
    );
}

#[test]
fn appends_of_different_years_both_land() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let all = pairs(&data, "d.parent_code IS NULL");
    let a = scores_file(dir.path(), "a.csv", 2024, &all, "4");
    let b = scores_file(dir.path(), "b.csv", 2025, &all, "3");
    let before = version(&data, "dept_scores");
    let outs = together(
        &data,
        &[
            vec!["ingest", "dept_scores", &a],
            vec!["ingest", "dept_scores", &b],
        ],
    );
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    assert_eq!(version(&data, "dept_scores"), before + 2);
    for year in [2024, 2025] {
        assert_eq!(
            count(
                &data,
                &format!("SELECT count(*) FROM dept_scores WHERE year = {year}")
            ),
            all.len() as u64
        );
        rollups_agree(&data, year);
    }
}

#[test]
fn two_appends_of_the_same_keys_one_lands_the_other_names_the_duplicates() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let all = pairs(&data, "d.parent_code IS NULL");
    let a = scores_file(dir.path(), "a.csv", 2024, &all, "4");
    let b = scores_file(dir.path(), "b.csv", 2024, &all, "2");
    let before = version(&data, "dept_scores");
    let outs = together(
        &data,
        &[
            vec!["ingest", "dept_scores", &a],
            vec!["ingest", "dept_scores", &b],
        ],
    );
    let landed: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(landed.len(), 1, "exactly one must land: {outs:?}");
    let failed = outs.iter().find(|o| !o.status.success()).unwrap();
    let err = stderr(failed);
    assert!(
        err.contains("the warehouse already holds this row")
            && err.contains(&format!("2024, {}, {}", all[0].0, all[0].1))
            && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(version(&data, "dept_scores"), before + 1);
    assert_eq!(
        count(&data, "SELECT count(*) FROM dept_scores WHERE year = 2024"),
        all.len() as u64
    );
    assert_eq!(
        count(
            &data,
            "SELECT count(*) FROM (SELECT DISTINCT year, dept_code, indicator_code FROM dept_scores)"
        ),
        count(&data, "SELECT count(*) FROM dept_scores")
    );
    // Every 2024 score is the winner's.
    let winner_score = if outs[0].status.success() {
        "4.00"
    } else {
        "2.00"
    };
    assert_eq!(
        scalar(
            &data,
            "SELECT DISTINCT score FROM dept_scores WHERE year = 2024"
        ),
        winner_score
    );
    rollups_agree(&data, 2024);
}

#[test]
fn replace_year_racing_an_append_to_that_year_equals_a_serial_order() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // The replacement: 2023's first-level scores, all 4. The append: budget units
    // (scored nowhere) for 2023.
    let first_level = pairs(&data, "d.parent_code IS NULL");
    let units = pairs(&data, "d.parent_code IS NOT NULL");
    let units = &units[..units.len().min(300)];
    for round in 0..3 {
        let (_tmp, data) = sample_copy();
        let r = scores_file(
            dir.path(),
            &format!("r{round}.csv"),
            2023,
            &first_level,
            "4",
        );
        let a = scores_file(dir.path(), &format!("a{round}.csv"), 2023, units, "1");
        let before = version(&data, "dept_scores");
        let outs = together(
            &data,
            &[
                vec!["ingest", "dept_scores", &r, "--mode", "replace-year"],
                vec!["ingest", "dept_scores", &a],
            ],
        );
        for out in &outs {
            assert!(out.status.success(), "{}", stderr(out));
        }
        assert_eq!(version(&data, "dept_scores"), before + 2);
        let rows = count(&data, "SELECT count(*) FROM dept_scores WHERE year = 2023");
        let ones = count(
            &data,
            "SELECT count(*) FROM dept_scores WHERE year = 2023 AND score = 1",
        );
        let fours = count(
            &data,
            "SELECT count(*) FROM dept_scores WHERE year = 2023 AND score = 4",
        );
        // Replace then append: both files' rows. Append then replace: the replacement.
        let serial = (rows == (first_level.len() + units.len()) as u64
            && ones == units.len() as u64)
            || (rows == first_level.len() as u64 && ones == 0);
        assert!(
            serial && fours == first_level.len() as u64,
            "round {round}: 2023 holds {rows} rows ({ones} appended), not a serial order"
        );
        rollups_agree(&data, 2023);
    }
}

#[test]
fn a_department_removed_by_a_concurrent_replace_is_caught() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // The departments as they are, then one more that nothing refers to yet.
    let current = stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT * FROM departments ORDER BY dept_code",
        ],
    ));
    let without = dir.path().join("departments.csv");
    std::fs::write(&without, &current).unwrap();
    let extra = dir.path().join("extra.csv");
    std::fs::write(
        &extra,
        "dept_code,dept_name,parent_code,sector\n999,新设部门,,\n",
    )
    .unwrap();
    let out = run(&data, &["ingest", "departments", extra.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A score for it, while the departments are replaced by the set without it.
    let indicator = scalar(
        &data,
        "SELECT min(indicator_code) FROM indicators WHERE framework = 'dept'",
    );
    let score = dir.path().join("score.csv");
    std::fs::write(&score, format!("{HEADER}2024,999,{indicator},3,5\n")).unwrap();
    let outs = together(
        &data,
        &[
            vec![
                "ingest",
                "departments",
                without.to_str().unwrap(),
                "--mode",
                "replace",
            ],
            vec!["ingest", "dept_scores", score.to_str().unwrap()],
        ],
    );
    let (replace, append) = (&outs[0], &outs[1]);
    assert!(
        replace.status.success() != append.status.success(),
        "exactly one may land: {outs:?}"
    );
    let departments_999 = count(
        &data,
        "SELECT count(*) FROM departments WHERE dept_code = '999'",
    );
    let scores_999 = count(
        &data,
        "SELECT count(*) FROM dept_scores WHERE dept_code = '999'",
    );
    if replace.status.success() {
        let err = stderr(append);
        assert!(err.contains("value \"999\": unknown dept_code"), "{err}");
        assert_eq!((departments_999, scores_999), (0, 0));
    } else {
        let err = stderr(replace);
        assert!(
            err.contains("value \"999\": replacing departments would drop this code, which dept_scores still refers to"),
            "{err}"
        );
        assert_eq!((departments_999, scores_999), (1, 1));
    }
}

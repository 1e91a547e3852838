//! Ingest as a user runs it: every bad input gets a clear error naming the file, row,
//! column, value and rule, and the table's version does not move; good input in every
//! format lands in one commit.

use crate::common;

use std::path::Path;

use crate::common::{run, sample_copy, scalar, stderr, stdout, version};

/// Ingests `content` written to `name` and returns the output; asserts the version of
/// `table` is unchanged and the command failed, with every `expected` fragment in stderr.
fn rejects(data: &Path, table: &str, name: &str, content: &[u8], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    let before = version(data, table);
    let out = run(data, &["ingest", table, file.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "ingest of {name} should fail; stdout: {}",
        stdout(&out)
    );
    for fragment in expected {
        assert!(
            err.contains(fragment),
            "stderr of {name} lacks {fragment:?}:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        version(data, table),
        before,
        "{table} version moved after a rejected ingest"
    );
}

const SCORES_HEADER: &str = "year,dept_code,indicator_code,score,max_score\n";

#[test]
fn bad_inputs_are_refused_and_nothing_is_written() {
    let (_tmp, data) = sample_copy();
    let d = &data;
    // Wrong column count in a row, and a missing required column.
    rejects(
        d,
        "dept_scores",
        "extra.csv",
        format!("{SCORES_HEADER}2024,101,D1101,4.5,5,oops\n").as_bytes(),
        &["extra.csv row 2", "6 fields but the header has 5"],
    );
    rejects(
        d,
        "dept_scores",
        "missing.csv",
        b"year,dept_code,indicator_code,max_score\n2024,101,D1101,5\n",
        &[
            "missing.csv row 1",
            "column score",
            "required column is missing",
        ],
    );
    // Text in a numeric column.
    rejects(
        d,
        "dept_scores",
        "text.csv",
        format!("{SCORES_HEADER}2024,101,D1101,good,5\n").as_bytes(),
        &[
            "text.csv row 2, column score, value \"good\"",
            "must be a score, a number",
        ],
    );
    // A score above its max, and a negative one.
    rejects(
        d,
        "dept_scores",
        "above.csv",
        format!("{SCORES_HEADER}2024,101,D1101,5.5,5\n2024,101,D1102,-1,5\n").as_bytes(),
        &[
            "row 2, column score, value \"5.5\"",
            "above its max_score 5.00",
            "row 3, column score, value \"-1\"",
            "must not be negative",
        ],
    );
    // More than two decimals in money.
    rejects(
        d,
        "unit_budgets",
        "money.csv",
        b"year,dept_code,budget_amount,has_targets,targets_reviewed\n2024,101,12.345,true,true\n",
        &[
            "row 2, column budget_amount, value \"12.345\"",
            "at most two decimals",
        ],
    );
    // Duplicate keys within the file, and against the stored rows.
    rejects(
        d,
        "dept_scores",
        "dup.csv",
        format!("{SCORES_HEADER}2024,101,D1101,4,5\n2024,101,D1101,3,5\n").as_bytes(),
        &[
            "row 3",
            "duplicate key (year, dept_code, indicator_code)",
            "same key is on row 2",
        ],
    );
    rejects(
        d,
        "dept_scores",
        "stored.csv",
        format!("{SCORES_HEADER}2023,101,D1101,4,5\n").as_bytes(),
        &["row 2", "the warehouse already holds this row"],
    );
    // Unknown codes.
    rejects(
        d,
        "dept_scores",
        "codes.csv",
        format!("{SCORES_HEADER}2024,999,D1101,4,5\n2024,101,X9,4,5\n2024,101,P1101,4,5\n")
            .as_bytes(),
        &[
            "value \"999\": unknown dept_code",
            "value \"X9\": unknown indicator_code",
            "P1101\": indicator belongs to the project framework",
        ],
    );
    rejects(
        d,
        "evaluations",
        "project.csv",
        b"year,project_code,eval_kind,total_score,suggestions\n2023,NOPE,self,80,1\n",
        &["value \"NOPE\": unknown project_code"],
    );
    // An empty file, and one with only a header.
    rejects(
        d,
        "dept_scores",
        "empty.csv",
        b"",
        &["empty.csv: the file is empty"],
    );
    rejects(
        d,
        "dept_scores",
        "header.csv",
        SCORES_HEADER.as_bytes(),
        &["header but no data rows"],
    );
    // A truncated file: the last row is cut short.
    rejects(
        d,
        "dept_scores",
        "cut.csv",
        format!("{SCORES_HEADER}2024,101,D1101,4,5\n2024,101,D11").as_bytes(),
        &["cut.csv row 3", "3 fields but the header has 5"],
    );
}

#[test]
fn unknown_table_and_missing_sheet_are_clear_errors() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, SCORES_HEADER).unwrap();
    let out = run(&data, &["ingest", "scores", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown table 'scores'; the tables are: departments"),
        "{}",
        stderr(&out)
    );

    let xlsx = dir.path().join("scores.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet()
        .set_name("得分")
        .unwrap()
        .write_row(0, 0, ["year"])
        .unwrap();
    book.save(&xlsx).unwrap();
    let before = version(&data, "dept_scores");
    let out = run(
        &data,
        &[
            "ingest",
            "dept_scores",
            xlsx.to_str().unwrap(),
            "--sheet",
            "2024",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the workbook has no sheet '2024'; its sheets are: 得分"),
        "{}",
        stderr(&out)
    );
    assert_eq!(version(&data, "dept_scores"), before);
}

#[test]
fn truncated_xlsx_and_parquet_are_refused() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // A real XLSX and a real Parquet file, cut in half.
    let xlsx = dir.path().join("full.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .write_row(
            0,
            0,
            ["year", "dept_code", "indicator_code", "score", "max_score"],
        )
        .unwrap();
    sheet
        .write_row(1, 0, ["2024", "101", "D1101", "4", "5"])
        .unwrap();
    book.save(&xlsx).unwrap();
    let bytes = std::fs::read(&xlsx).unwrap();
    rejects(
        &data,
        "dept_scores",
        "cut.xlsx",
        &bytes[..bytes.len() / 2],
        &["cut.xlsx: not a readable XLSX workbook"],
    );

    let parquet = dir.path().join("scores.parquet");
    let out = run(&data, &["query", "--format", "parquet", "-o", parquet.to_str().unwrap(),
        "SELECT year + 1 AS year, dept_code, indicator_code, score, max_score FROM dept_scores WHERE year = 2023"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&parquet).unwrap();
    rejects(
        &data,
        "dept_scores",
        "cut.parquet",
        &bytes[..bytes.len() / 2],
        &["cut.parquet: not a readable Parquet file"],
    );

    // The whole Parquet file loads.
    let out = run(&data, &["ingest", "dept_scores", parquet.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("dept_scores: appended"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2024"),
        scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2023")
    );
}

#[test]
fn gbk_csv_with_chinese_headers_and_xlsx_load() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let text = "年度,部门编码,指标编码,得分,分值\r\n2024,101,D1101,4.5,5\r\n2024,101,D1102,3,5\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    assert!(std::str::from_utf8(&gbk).is_err(), "the file really is GBK");
    let file = dir.path().join("得分.csv");
    std::fs::write(&file, &gbk).unwrap();
    let before = version(&data, "dept_scores");
    let out = run(&data, &["ingest", "dept_scores", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The summary: rows, years, version, then the time taken.
    let summary = stdout(&out);
    let prefix = format!(
        "dept_scores: appended 2 rows for 2024; table is now at version {}; took ",
        before + 1
    );
    assert!(
        summary.trim().starts_with(&prefix) && summary.trim().ends_with(" s"),
        "{summary}"
    );
    assert_eq!(
        scalar(
            &data,
            "SELECT sum(score) FROM dept_scores WHERE year = 2024"
        ),
        "7.50"
    );

    // UTF-8 with a BOM, in a second sheet of an XLSX chosen by --sheet.
    let bom = dir.path().join("bom.csv");
    std::fs::write(
        &bom,
        "\u{feff}年度,部门编码,指标编码,得分,分值\n2024,102,D1101,5,5\n",
    )
    .unwrap();
    let out = run(&data, &["ingest", "dept_scores", bom.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let xlsx = dir.path().join("scores.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet()
        .set_name("说明")
        .unwrap()
        .write_string(0, 0, "见第二页")
        .unwrap();
    let sheet = book.add_worksheet().set_name("得分").unwrap();
    sheet
        .write_row(0, 0, ["年度", "部门编码", "指标编码", "得分", "分值"])
        .unwrap();
    sheet.write_number(1, 0, 2024).unwrap();
    sheet.write_string(1, 1, "103").unwrap();
    sheet.write_string(1, 2, "D1101").unwrap();
    sheet.write_number(1, 3, 4.25).unwrap();
    sheet.write_number(1, 4, 5).unwrap();
    book.save(&xlsx).unwrap();
    let out = run(
        &data,
        &[
            "ingest",
            "dept_scores",
            xlsx.to_str().unwrap(),
            "--sheet",
            "得分",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        scalar(
            &data,
            "SELECT score FROM dept_scores WHERE year = 2024 AND dept_code = '103'"
        ),
        "4.25"
    );
    assert_eq!(version(&data, "dept_scores"), before + 3);
}

#[test]
fn replace_year_swaps_a_year_in_one_commit_and_time_travel_reads_the_past() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let before = version(&data, "dept_scores");
    let rows_2023 = scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2023");
    let rows_2022 = scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2022");
    let file = dir.path().join("rescored.csv");
    std::fs::write(
        &file,
        format!("{SCORES_HEADER}2023,101,D1101,5,5\n2023,102,D1101,4,5\n"),
    )
    .unwrap();

    // Appending a stored year is refused; replacing it works.
    let out = run(&data, &["ingest", "dept_scores", file.to_str().unwrap()]);
    assert!(!out.status.success());
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
    assert!(
        stdout(&out).contains("replaced year(s) with 2 rows for 2023"),
        "{}",
        stdout(&out)
    );
    assert_eq!(version(&data, "dept_scores"), before + 1);
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2023"),
        "2"
    );
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2022"),
        rows_2022
    );

    // The past, by version (every table, or one table) and by timestamp.
    let q = "SELECT count(*) FROM dept_scores WHERE year = 2023";
    let at = |args: &[&str]| {
        let mut all = vec!["query", "--format", "csv"];
        all.extend_from_slice(args);
        all.push(q);
        let out = run(&data, &all);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().nth(1).unwrap().to_string()
    };
    assert_eq!(at(&["--as-of-version", &before.to_string()]), rows_2023);
    assert_eq!(
        at(&["--as-of-version", &format!("dept_scores={before}")]),
        rows_2023
    );
    assert_eq!(at(&[]), "2");
    let history = stdout(&run(&data, &["history", "dept_scores"]));
    assert!(history.contains("replace-year"), "{history}");
    let created = history
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let time = history
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(at(&["--as-of", &format!("{created}T{time}")]), rows_2023);

    // A version that does not exist is a clear error naming the table.
    let out = run(&data, &["query", "--as-of-version", "99", q]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("table dept_scores has no version 99"),
        "{}",
        stderr(&out)
    );

    // Replace-year on a table without years is refused.
    let deps = dir.path().join("deps.csv");
    std::fs::write(
        &deps,
        "dept_code,dept_name,parent_code,sector\n900,市新部门,,综合\n",
    )
    .unwrap();
    let out = run(
        &data,
        &[
            "ingest",
            "departments",
            deps.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("replace-year needs a table with a year column"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_killed_ingest_leaves_the_previous_version_readable() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // A large valid file: every department and indicator for every year the sample lacks.
    let mut csv = String::from(SCORES_HEADER);
    let depts = stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT DISTINCT dept_code FROM dept_scores ORDER BY 1",
        ],
    ));
    let inds = stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT indicator_code FROM indicators WHERE framework = 'dept' ORDER BY 1",
        ],
    ));
    let years: Vec<i32> = (1950..2019).chain(2024..2101).collect();
    let mut rows = 0u64;
    for year in &years {
        for d in depts.lines().skip(1) {
            for i in inds.lines().skip(1) {
                csv.push_str(&format!("{year},{d},{i},3.5,5\n"));
                rows += 1;
            }
        }
    }
    let file = dir.path().join("big.csv");
    std::fs::write(&file, csv).unwrap();
    let before = version(&data, "dept_scores");
    let count_before: u64 = scalar(&data, "SELECT count(*) FROM dept_scores")
        .parse()
        .unwrap();

    // Kill (SIGKILL) at growing delays: reading, checking, writing, committing. After
    // each kill the table is whole: at its previous version, or (if the commit landed
    // just before the kill) at the next one with every row.
    let mut killed_before_commit = 0;
    let mut committed = false;
    for delay_ms in [50u64, 150, 300, 500, 700, 900, 1200, 1600, 2000, 3000] {
        let mut child = common::kpidb()
            .arg("--data")
            .arg(&data)
            .args(["ingest", "dept_scores", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL; harmless if it already exited
        child.wait().unwrap();
        let count: u64 = scalar(&data, "SELECT count(*) FROM dept_scores")
            .parse()
            .unwrap();
        match version(&data, "dept_scores") {
            v if v == before => {
                assert_eq!(count, count_before, "a killed ingest left rows behind");
                killed_before_commit += 1;
            }
            v if v == before + 1 => {
                assert_eq!(
                    count,
                    count_before + rows,
                    "a commit landed without all its rows"
                );
                committed = true;
                break;
            }
            v => panic!("unexpected version {v} after a killed ingest (was {before})"),
        }
    }
    assert!(
        killed_before_commit > 0,
        "no ingest was killed before its commit"
    );
    if !committed {
        // The table still takes the same file afterwards.
        let out = run(&data, &["ingest", "dept_scores", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(version(&data, "dept_scores"), before + 1);
    }
}

#[test]
fn chinese_values_and_exante_rules() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects.csv");
    std::fs::write(
        &projects,
        "年度,项目编码,项目名称,部门编码,预算类型,项目类型,预算金额,是否设定绩效目标,绩效目标已公开\n\
         2025,X1,智慧教育平台,123,一般公共预算,项目,\"1,200.00\",是,是\n\
         2025,X2,就业补助,128,政府性基金预算,政策,300,是,否\n\
         2025,X3,前期经费,101,一般公共预算,项目,0,否,否\n",
    )
    .unwrap();
    let out = run(&data, &["ingest", "projects", projects.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // approved above requested; a rejection that approves money; a returned project with an amount.
    rejects(&data, "exante_reviews", "bad_reviews.csv",
        "年度,项目编码,申报金额,审定金额,评审结论\n2025,X1,1000,1200,部分支持\n2025,X2,300,10,不予支持\n2025,X3,50,50,退回\n".as_bytes(),
        &["row 2, column approved_amount, value \"1200\": approved_amount is above requested_amount 1000.00",
          "row 3, column approved_amount, value \"10\": a rejected project must have approved_amount 0",
          "row 4, column approved_amount, value \"50\": a returned project is not reviewed"]);

    let reviews = dir.path().join("reviews.csv");
    std::fs::write(&reviews, "年度,项目编码,送审金额,审定金额,评审结论\n2025,X1,1500,1200,部分支持\n2025,X2,300,0,不予支持\n2025,X3,50,,退回\n").unwrap();
    let out = run(
        &data,
        &["ingest", "exante_reviews", reviews.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&run(&data, &["query", "--format", "csv",
        "SELECT conclusion, approved_amount FROM exante_reviews WHERE year = 2025 ORDER BY project_code"]));
    assert_eq!(
        csv,
        "conclusion,approved_amount\npartial,1200.00\nreject,0.00\nreturned,\n"
    );

    // Replacing 2025's projects without X1 would orphan its review.
    std::fs::write(&projects, "year,project_code,project_name,dept_code,budget_book,kind,budget_amount,has_targets,targets_disclosed\n2025,X2,就业补助,128,general,policy,300,true,false\n2025,X3,前期经费,101,general,project,0,false,false\n").unwrap();
    rejects(
        &data,
        "projects",
        "projects.csv",
        &std::fs::read(&projects).unwrap(),
        &[],
    );
    let out = run(
        &data,
        &[
            "ingest",
            "projects",
            projects.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("value \"X1\": replacing year 2025 would drop this project, which exante_reviews still refers to"), "{}", stderr(&out));
}

/// Ingests `content` as `name` into dept_scores with `flags`.
fn load(
    data: &Path,
    dir: &Path,
    name: &str,
    content: &[u8],
    flags: &[&str],
) -> std::process::Output {
    let file = dir.join(name);
    std::fs::write(&file, content).unwrap();
    let mut args = vec!["ingest", "dept_scores", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    run(data, &args)
}

#[test]
fn files_as_bureaus_send_them_load() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = version(&data, "dept_scores");

    // A remarks column is ignored with a notice, and refused with --strict.
    let remarks = "年度,部门编码,指标编码,得分,分值,备注\n2024,101,D1101,4.5,5,已复核\n";
    let out = load(&data, d, "remarks.csv", remarks.as_bytes(), &["--strict"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("column 备注, value \"备注\": unknown column for table dept_scores"),
        "{}",
        stderr(&out)
    );
    let out = load(&data, d, "remarks.csv", remarks.as_bytes(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ignored column(s) 备注"),
        "{}",
        stderr(&out)
    );

    // Excel's trailing empty columns, with and without their commas on data rows.
    let trailing = "year,dept_code,indicator_code,score,max_score,,\n2024,101,D1102,4,5,,\n2024,101,D1201,4,5\n";
    let out = load(&data, d, "trailing.csv", trailing.as_bytes(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A title row above the header: rows keep the numbers an editor shows.
    let titled = "2024年度部门整体绩效评价得分表,,,,\nyear,dept_code,indicator_code,score,max_score\n2024,102,D1101,9,5\n";
    let out = load(&data, d, "titled.csv", titled.as_bytes(), &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "titled.csv row 3, column score, value \"9\": score is above its max_score 5.00"
        ),
        "{}",
        stderr(&out)
    );
    let out = load(
        &data,
        d,
        "titled.csv",
        titled.replace(",9,", ",4,").as_bytes(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Semicolons and tabs.
    let semi = "year;dept_code;indicator_code;score;max_score\n2024;102;D1102;3;5\n";
    let out = load(&data, d, "semi.csv", semi.as_bytes(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tabs = "year\tdept_code\tindicator_code\tscore\tmax_score\n2024\t102\tD1201\t3\t5\n";
    let out = load(&data, d, "tabs.txt", tabs.as_bytes(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A workbook saved with a .csv name is read as a workbook.
    let book_path = d.join("book.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .write_row(
            0,
            0,
            ["year", "dept_code", "indicator_code", "score", "max_score"],
        )
        .unwrap();
    sheet
        .write_row(1, 0, ["2024", "102", "D1202", "2", "5"])
        .unwrap();
    book.save(&book_path).unwrap();
    let out = load(
        &data,
        d,
        "book.csv",
        &std::fs::read(&book_path).unwrap(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(version(&data, "dept_scores"), before + 6);
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM dept_scores WHERE year = 2024"),
        "7"
    );
}

#[test]
fn every_problem_of_a_row_is_reported_and_check_writes_nothing() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // A score that does not parse hides neither the unknown code nor the bad max.
    rejects(
        &data,
        "dept_scores",
        "row.csv",
        format!("{SCORES_HEADER}2024,999,D1101,good,0\n").as_bytes(),
        &[
            "row 2, column score, value \"good\": must be a score, a number",
            "row 2, column max_score, value \"0\": max_score must be greater than 0",
            "row 2, column dept_code, value \"999\": unknown dept_code",
        ],
    );
    // Allowed values are listed with their Chinese words.
    rejects(
        &data,
        "projects",
        "book.csv",
        "year,project_code,project_name,dept_code,budget_book,kind,budget_amount,has_targets,targets_disclosed\n2023,PX1,新项目,101,专项,project,10,true,true\n".as_bytes(),
        &["value \"专项\": must be one of general (一般公共预算), gov_fund (政府性基金预算)"],
    );

    // --check: every check, the warehouse's too, and nothing written.
    let before = version(&data, "dept_scores");
    let good = dir.path().join("good.csv");
    std::fs::write(&good, format!("{SCORES_HEADER}2024,101,D1101,4,5\n")).unwrap();
    let out = run(
        &data,
        &["ingest", "dept_scores", good.to_str().unwrap(), "--check"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "dept_scores: 1 rows for 2024 pass every check against version {before}; nothing was written (--check)"
        )),
        "{}",
        stdout(&out)
    );
    let stored = dir.path().join("stored.csv");
    std::fs::write(&stored, format!("{SCORES_HEADER}2023,101,D1101,4,5\n")).unwrap();
    let out = run(
        &data,
        &["ingest", "dept_scores", stored.to_str().unwrap(), "--check"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the warehouse already holds this row"),
        "{}",
        stderr(&out)
    );
    assert_eq!(version(&data, "dept_scores"), before);
}

#[test]
fn a_directory_is_one_ingest_and_one_commit() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    // One CSV per year.
    let years = dir.path().join("years");
    std::fs::create_dir(&years).unwrap();
    for (year, score) in [(2024, 4), (2025, 3)] {
        std::fs::write(
            years.join(format!("{year}.csv")),
            format!("{SCORES_HEADER}{year},101,D1101,{score},5\n{year},101,D1102,{score},5\n"),
        )
        .unwrap();
    }
    let before = version(&data, "dept_scores");
    let out = run(&data, &["ingest", "dept_scores", years.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("appended 4 rows for 2024–2025"),
        "{}",
        stdout(&out)
    );
    assert_eq!(version(&data, "dept_scores"), before + 1);

    // A problem in one file of the directory names that file, and nothing lands.
    std::fs::write(
        years.join("2026.csv"),
        format!("{SCORES_HEADER}2026,101,D1101,7,5\n"),
    )
    .unwrap();
    std::fs::remove_file(years.join("2024.csv")).unwrap();
    std::fs::remove_file(years.join("2025.csv")).unwrap();
    std::fs::write(
        years.join("2027.csv"),
        format!("{SCORES_HEADER}2027,101,D1101,4,5\n2027,101,D1101,4,5\n"),
    )
    .unwrap();
    let out = run(&data, &["ingest", "dept_scores", years.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("2026.csv row 2, column score"), "{err}");
    assert!(
        err.contains("2027.csv row 3") && err.contains("the same key is on row 2"),
        "{err}"
    );
    assert_eq!(version(&data, "dept_scores"), before + 1);

    // A hive-partitioned Parquet export (the year only in the directory names) loads
    // into an empty warehouse table by table.
    let export = dir.path().join("export");
    let out = run(
        &data,
        &["export", "--format", "parquet", export.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let fresh = dir.path().join("fresh");
    let out = run(&fresh, &["init", fresh.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for table in [
        "departments",
        "indicators",
        "dept_scores",
        "unit_budgets",
        "projects",
        "exante_reviews",
        "evaluations",
        "project_scores",
    ] {
        let out = run(
            &fresh,
            &["ingest", table, export.join(table).to_str().unwrap()],
        );
        assert!(out.status.success(), "{table}: {}", stderr(&out));
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(scalar(&fresh, &sql), scalar(&data, &sql), "{table}");
    }
    assert_eq!(
        scalar(
            &fresh,
            "SELECT sum(score) FROM dept_scores WHERE year = 2023"
        ),
        scalar(
            &data,
            "SELECT sum(score) FROM dept_scores WHERE year = 2023"
        )
    );
}

#[test]
fn replacing_a_whole_table_keeps_what_other_tables_refer_to() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let current = stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT * FROM departments ORDER BY dept_code",
        ],
    ));
    let rows = current.lines().count() - 1;
    // The same departments, one renamed: replaced in one commit.
    let renamed = current.replacen(",市", ",新市", 1);
    assert_ne!(renamed, current, "a department name to change");
    let file = dir.path().join("departments.csv");
    std::fs::write(&file, &renamed).unwrap();
    let before = version(&data, "departments");
    let out = run(
        &data,
        &[
            "ingest",
            "departments",
            file.to_str().unwrap(),
            "--mode",
            "replace",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "departments: replaced the table with {rows} rows; table is now at version {}; stored rows replaced: {rows}",
            before + 1
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        scalar(
            &data,
            "SELECT count(*) FROM departments WHERE dept_name LIKE '新市%'"
        ),
        "1"
    );
    // Without department 101, which scores, budgets and projects refer to: refused.
    let without: String = renamed
        .lines()
        .filter(|l| !l.starts_with("101,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("without.csv");
    std::fs::write(&file, without).unwrap();
    let before = version(&data, "departments");
    let out = run(
        &data,
        &[
            "ingest",
            "departments",
            file.to_str().unwrap(),
            "--mode",
            "replace",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("value \"101\": replacing departments would drop this code, which dept_scores still refers to")
            && err.contains("unknown parent_code: not a dept_code in departments or this file"),
        "{err}"
    );
    assert_eq!(version(&data, "departments"), before);
}

#[test]
fn row_numbers_stay_exact_across_blocks_quoted_newlines_and_blank_lines() {
    let (_tmp, data) = sample_copy();
    // More than one 8 MB block of departments whose names hold a quoted line break,
    // with blank lines between; the last row breaks a rule.
    let mut csv = String::from("dept_code,dept_name,parent_code,sector\n");
    let mut line = 1;
    let rows = 400_000;
    for i in 0..rows {
        if i % 1000 == 999 {
            csv.push('\n');
            line += 1;
        }
        let code = format!("9{i:07}");
        let parent = if i == rows - 1 {
            code.clone()
        } else {
            String::new()
        };
        csv.push_str(&format!("{code},\"新部门\n第{i}号\",{parent},综合\n"));
        line += 2;
    }
    assert!(
        csv.len() > 9 << 20,
        "the file spans blocks: {} bytes",
        csv.len()
    );
    let bad_line = line - 1;
    rejects(
        &data,
        "departments",
        "many.csv",
        csv.as_bytes(),
        &[
            "many.csv: 1 problem found",
            &format!(
                "many.csv row {bad_line}, column parent_code, value \"9{:07}\": a department cannot be its own parent",
                rows - 1
            ),
        ],
    );
    // Windows line ends, a title row and a blank line above the header.
    rejects(
        &data,
        "departments",
        "crlf.csv",
        "部门名单,,,\r\n\r\ndept_code,dept_name,parent_code,sector\r\n901,甲,,x\r\n\r\n902,乙,902,x\r\n".as_bytes(),
        &["crlf.csv row 6, column parent_code, value \"902\": a department cannot be its own parent"],
    );
}

#[test]
fn a_sheet_with_a_title_row_keeps_its_spreadsheet_rows() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let xlsx = dir.path().join("titled.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .write_string(0, 0, "2024年度部门整体绩效评价得分表")
        .unwrap();
    sheet
        .write_row(
            1,
            0,
            ["年度", "部门编码", "指标编码", "得分", "分值", "备注"],
        )
        .unwrap();
    sheet
        .write_row(2, 0, ["2024", "101", "D1101", "4", "5", "已复核"])
        .unwrap();
    sheet
        .write_row(3, 0, ["2024", "101", "D1102", "6", "5", ""])
        .unwrap();
    book.save(&xlsx).unwrap();
    let bytes = std::fs::read(&xlsx).unwrap();
    rejects(
        &data,
        "dept_scores",
        "titled.xlsx",
        &bytes,
        &["titled.xlsx [Sheet1] row 4, column score, value \"6\": score is above its max_score 5.00"],
    );
}

#[test]
fn targets_execution_rectifications_and_decisions_keep_their_rules() {
    let (_tmp, data) = sample_copy();
    let d = &data;
    // A 2023 project and a qualitative target of it, from the sample.
    let project = scalar(
        d,
        "SELECT min(object_code) FROM perf_targets WHERE year = 2023 AND object_kind = 'project'",
    );
    let qualitative = scalar(
        d,
        "SELECT min(object_code || '/' || indicator_code) FROM perf_targets \
        WHERE year = 2023 AND object_kind = 'project' AND comparator = 'qualitative'",
    );
    let (q_code, q_indicator) = qualitative.split_once('/').unwrap();
    let max = scalar(d, &format!("SELECT max_score FROM perf_targets WHERE year = 2023 AND object_code = '{q_code}' AND indicator_code = '{q_indicator}'"));
    let quantitative = scalar(
        d,
        "SELECT min(object_code || '/' || indicator_code) FROM perf_targets \
        WHERE year = 2023 AND object_kind = 'project' AND comparator = '>='",
    );
    let (n_code, n_indicator) = quantitative.split_once('/').unwrap();

    rejects(d, "perf_targets", "targets.csv",
        format!("year,object_kind,object_code,indicator_code,unit,comparator,target_value,max_score\n\
                 2023,project,{project},P9999,个,>=,,10\n\
                 2023,project,NOPE,P3101,个,>=,5,10\n\
                 2023,project,{project},D3101,%,>=,95,0\n\
                 2023,dept,999,D3101,%,>=,95,10\n\
                 2023,unit,101,D3101,%,>,95,10\n").as_bytes(),
        &["row 2, column target_value, value \"\": a target compared with >= needs a target_value",
          "row 2, column indicator_code, value \"P9999\": unknown indicator_code: not in indicators",
          "row 3, column object_code, value \"NOPE\": unknown object_code: no such project in projects for year 2023",
          "row 4, column max_score, value \"0\": max_score must be greater than 0",
          "row 4, column indicator_code, value \"D3101\": indicator belongs to the dept framework; a project target takes project indicators",
          "row 5, column object_code, value \"999\": unknown object_code: no department",
          "row 6, column object_kind, value \"unit\": must be one of dept",
          "row 6, column comparator, value \">\": must be one of >=",
        ]);

    rejects(d, "target_results", "results.csv",
        format!("year,object_kind,object_code,indicator_code,as_of_month,actual_value,achievement,awarded_score,likelihood\n\
                 2023,project,{project},P1101,12,1,,,\n\
                 2023,project,{q_code},{q_indicator},12,,achieved,{whole}.5,\n\
                 2023,project,{n_code},{n_indicator},12,,achieved,5,likely\n\
                 2023,project,{n_code},{n_indicator},13,1.23456,,,\n",
            whole = max.split('.').next().unwrap()).as_bytes(),
        &["row 2, column indicator_code, value \"P1101\": no such target in perf_targets",
          "row 3, column awarded_score", "is above the target's max_score",
          "row 4, column actual_value, value \"\": the target is compared with >=: an actual_value is required",
          "row 4, column achievement, value \"achieved\": achievement is for qualitative targets",
          "row 4, column awarded_score, value \"5\": awarded_score is for qualitative targets",
          "row 4, column likelihood, value \"likely\": month 12 is the year-end result",
          "row 5, column as_of_month, value \"13\": as_of_month must be between 1 and 12",
          "row 5, column actual_value, value \"1.23456\": a value has at most four decimals",
        ]);

    // Execution is cumulative: within the input, and against what is stored.
    let dir = tempfile::tempdir().unwrap();
    let execution = dir.path().join("execution.csv");
    std::fs::write(
        &execution,
        "年度,对象类型,对象编码,截至月份,全年预算数,累计执行数\n\
        2023,部门,101001,1,\"1,000.00\",100\n2023,部门,101001,2,1000,250\n",
    )
    .unwrap();
    let out = run(
        d,
        &["ingest", "budget_execution", execution.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    rejects(d, "budget_execution", "later.csv",
        b"year,object_kind,object_code,as_of_month,budget_amount,executed_amount\n\
          2023,dept,101001,3,1000,200\n2023,dept,101001,5,1000,400\n2023,dept,101001,4,1000,450\n",
        &["row 2, column executed_amount, value \"200.00\": execution is cumulative: dept 101001 had 250.00 executed by month 2 of 2023, more than this month 3",
          "row 3, column executed_amount, value \"400.00\": execution is cumulative: dept 101001 had 450.00 executed by month 4 of 2023, more than this month 5",
        ]);
    // A month out of range breaks only its own rule.
    let dir2 = tempfile::tempdir().unwrap();
    let month13 = dir2.path().join("month13.csv");
    std::fs::write(&month13, "year,object_kind,object_code,as_of_month,budget_amount,executed_amount\n2023,dept,101001,13,1000,1\n").unwrap();
    let out = run(
        d,
        &["ingest", "budget_execution", month13.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert!(
        err.contains("1 problem found") && err.contains("as_of_month must be between 1 and 12"),
        "{err}"
    );
    rejects(d, "budget_execution", "negative.csv",
        b"year,object_kind,object_code,as_of_month,budget_amount,executed_amount\n2023,dept,101001,3,-1,300\n",
        &["row 2, column budget_amount, value \"-1\": an amount must not be negative"]);

    rejects(d, "rectifications", "rect.csv",
        format!("year,object_kind,object_code,source,seq,issue,due_date,closed_date\n\
                 2023,project,{project},monitoring,1,进度滞后,2023-09-30,2022-12-31\n\
                 2023,project,{project},monitoring,2,进度滞后,2023-09-31,\n\
                 2023,project,{project},audit,0,进度滞后,2023-09-30,\n").as_bytes(),
        &["row 2, column closed_date, value \"2022-12-31\": closed_date is before the start of the year 2023",
          "row 3, column due_date, value \"2023-09-31\": 2023-09-31 is not a day of the calendar",
          "row 4, column source, value \"audit\": must be one of exante",
          "row 4, column seq, value \"0\": seq must be between 1 and 99999",
        ]);

    rejects(d, "budget_decisions", "decisions.csv",
        format!("budget_year,object_kind,object_code,evaluated_year,requested_amount,approved_amount,action\n\
                 2024,project,{project},2024,100,100,maintain\n\
                 2024,project,{project},2023,100,120,prioritise\n\
                 2025,project,{project},2023,100,10,取消\n").as_bytes(),
        &["row 2, column evaluated_year, value \"2024\": the evaluated year must be before the budget year 2024",
          "row 2, column object_code",
          "row 3, column approved_amount, value \"120\": approved_amount is above requested_amount 100.00",
          "row 4, column approved_amount, value \"10\": a cancelled budget must have approved_amount 0",
        ]);

    // A department's targets and results with the spreadsheets' Chinese headers and words.
    let targets = dir.path().join("targets.csv");
    std::fs::write(
        &targets,
        "年度,对象类型,对象编码,指标编码,计量单位,比较方式,指标值,分值\n\
        2023,部门,101001,D3101,%,≥,95,60\n2023,部门,101001,D4101,,定性,,30\n",
    )
    .unwrap();
    let out = run(d, &["ingest", "perf_targets", targets.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = dir.path().join("results.csv");
    std::fs::write(
        &results,
        "年度,对象类型,对象编码,指标编码,截至月份,实际完成值,完成情况,评定得分,完成可能性\n\
        2023,部门,101001,D3101,6,40,,,较大可能完成\n2023,部门,101001,D3101,12,76,,,\n\
        2023,部门,101001,D4101,12,,部分达成,18,\n",
    )
    .unwrap();
    let out = run(d, &["ingest", "target_results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // 76/95 of 60 = 48.00, plus 18 awarded: 66 of 90; 250 of 1000 spent: 2.50 points.
    assert_eq!(
        stdout(&run(d, &["query", "--format", "csv",
            "SELECT target_points, execution_points, total_score, grade FROM self_evaluation(2023, 'dept') WHERE object_code = '101001'"])),
        "target_points,execution_points,total_score,grade\n66.00,2.50,68.50,中\n"
    );
}

#[test]
fn a_warehouse_made_before_the_target_tables_reads_them_empty_and_gains_them() {
    let (_tmp, data) = sample_copy();
    for table in kpidb::model::LATER_TABLES {
        std::fs::remove_dir_all(data.join(table.name)).unwrap();
    }
    // Opening it adds the tables, empty.
    assert_eq!(scalar(&data, "SELECT count(*) FROM perf_targets"), "0");
    for table in kpidb::model::LATER_TABLES {
        assert!(
            data.join(table.name).join("_delta_log").is_dir(),
            "{}",
            table.name
        );
    }
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM self_evaluation(2023)"),
        "0"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("execution.csv");
    std::fs::write(&file, "year,object_kind,object_code,as_of_month,budget_amount,executed_amount\n2023,dept,101,6,100,40\n").unwrap();
    let out = run(
        &data,
        &["ingest", "budget_execution", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        scalar(&data, "SELECT level FROM monitoring_warnings(2023, 6)"),
        "yellow"
    );
}

#[test]
fn replacing_targets_keeps_the_ones_results_refer_to() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.csv");
    std::fs::write(
        &file,
        "year,object_kind,object_code,indicator_code,unit,comparator,target_value,max_score\n\
        2023,dept,101,D3101,%,>=,95,90\n",
    )
    .unwrap();
    let before = version(&data, "perf_targets");
    let out = run(
        &data,
        &[
            "ingest",
            "perf_targets",
            file.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("which target_results still refers to"),
        "{err}"
    );
    assert!(
        err.contains("replacing would drop the 2023 target of dept 102 on this indicator"),
        "{err}"
    );
    assert_eq!(version(&data, "perf_targets"), before);
}

#[test]
fn rectifications_load_from_a_spreadsheet_with_date_cells() {
    let (_tmp, data) = sample_copy();
    let project = scalar(
        &data,
        "SELECT min(object_code) FROM perf_targets WHERE year = 2023 AND object_kind = 'project'",
    );
    let dir = tempfile::tempdir().unwrap();
    let xlsx = dir.path().join("整改台账.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let dates = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let sheet = book.add_worksheet();
    sheet
        .write_row(
            0,
            0,
            [
                "年度",
                "对象类型",
                "对象编码",
                "问题来源",
                "序号",
                "整改事项",
                "整改期限",
                "完成整改日期",
            ],
        )
        .unwrap();
    for (row, closed) in [(1u32, Some((2023, 11, 30))), (2, None)] {
        sheet.write_number(row, 0, 2023).unwrap();
        sheet.write_string(row, 1, "项目").unwrap();
        sheet.write_string(row, 2, &project).unwrap();
        sheet.write_string(row, 3, "事前绩效评估").unwrap();
        sheet.write_number(row, 4, 100 + row).unwrap();
        sheet.write_string(row, 5, "测算依据不充分").unwrap();
        let due = rust_xlsxwriter::ExcelDateTime::from_ymd(2023, 12, 31).unwrap();
        sheet
            .write_datetime_with_format(row, 6, &due, &dates)
            .unwrap();
        if let Some((y, m, d)) = closed {
            let closed = rust_xlsxwriter::ExcelDateTime::from_ymd(y, m, d).unwrap();
            sheet
                .write_datetime_with_format(row, 7, &closed, &dates)
                .unwrap();
        }
    }
    book.save(&xlsx).unwrap();
    let out = run(&data, &["ingest", "rectifications", xlsx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&run(&data, &["query", "--format", "csv",
        "SELECT seq, due_date, closed_date, rectification_rate(closed_date, due_date) OVER () AS rate \
         FROM rectifications WHERE seq > 100 ORDER BY seq"]));
    assert_eq!(
        csv,
        "seq,due_date,closed_date,rate\n101,2023-12-31,2023-11-30,0.5\n102,2023-12-31,,0.5\n"
    );
}

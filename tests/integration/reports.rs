//! Reports end to end: the shipped annual ranking report run by the `kpidb` binary on
//! the sample warehouse, its Excel read back cell by cell against the SQL answers, its
//! HTML, Markdown and CSV checked, reproducibility with `--as-of-version` after a new
//! ingest, bad report specs, and the scheduler inside a running `kpidb serve`.

use std::path::{Path, PathBuf};

use crate::common::{run, sample_copy, stderr, stdout, JsonResponse, Served};
use calamine::{open_workbook, Data, Reader, Xlsx};
use datafusion::arrow::array::Array;
use datafusion::arrow::util::display::array_value_to_string;
use kpidb::report::Manifest;
use kpidb::{AsOf, Engine, Warehouse};

const REPORT: &str = "annual_ranking";

/// Runs the shipped report with `args` into `out`; returns its manifest.
fn run_report(data: &Path, out: &Path, args: &[&str]) -> Manifest {
    let mut all = vec!["report", "run", REPORT, "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run(data, &all);
    assert!(
        output.status.success(),
        "report run failed: {}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("wrote:"), "{}", stdout(&output));
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let mut manifest: Manifest = serde_json::from_str(&text).unwrap();
    manifest.dir = out.to_path_buf();
    manifest
}

fn file(manifest: &Manifest, format: &str) -> PathBuf {
    let f = manifest
        .files
        .iter()
        .find(|f| f.format == format)
        .unwrap_or_else(|| panic!("no {format} in {:?}", manifest.files));
    manifest.dir.join(&f.file)
}

/// Each section's answer, re-run on the engine at the run's recorded versions.
async fn answers(
    data: &Path,
    manifest: &Manifest,
) -> Vec<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let pin = AsOf::parse_version(&manifest.as_of_version).unwrap();
    let engine = Engine::open_at(Warehouse::open(data).unwrap(), pin)
        .await
        .unwrap();
    let mut out = Vec::new();
    for section in &manifest.sections {
        out.push(engine.query(&section.sql).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_report_matches_its_sql_in_every_format() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let out = tempfile::tempdir().unwrap();
    let manifest = run_report(&data, out.path(), &[]);
    assert_eq!(
        manifest.params["year"],
        serde_json::json!(2023),
        "latest year by default"
    );
    assert_eq!(manifest.sections.len(), 8);
    for table in ["dept_scores", "departments", "indicators"] {
        assert!(
            manifest.sections[0].tables.contains(&table.to_string()) || table == "indicators",
            "ranking reads {table}: {:?}",
            manifest.sections[0].tables
        );
    }
    assert!(manifest.sections[2]
        .tables
        .contains(&"indicators".to_string()));
    assert!(manifest.sections[7]
        .tables
        .contains(&"exante_reviews".to_string()));
    let answers = answers(&data, &manifest).await;

    // Excel: a cover, one sheet per section (a heat map's is its matrix, with its rows
    // on the sheet after), the SQL sheet; every cell equals the answer.
    let mut book: Xlsx<_> = open_workbook(file(&manifest, "xlsx")).unwrap();
    let names = book.sheet_names();
    let heat_map = names
        .iter()
        .position(|n| n.ends_with("（明细）"))
        .expect("the heat map's rows have a sheet")
        - 2;
    assert_eq!(
        names.len(),
        1 + manifest.sections.len() + 1 + 1,
        "{names:?}"
    );
    assert_eq!(names[0], "封面");
    let cover = book.worksheet_range_at(0).unwrap().unwrap();
    let cover_text: Vec<String> = cover.cells().map(|(_, _, c)| c.to_string()).collect();
    assert!(cover_text.contains(&"年度部门整体绩效评价排名通报".to_string()));
    assert!(
        cover_text.contains(&manifest.as_of_version),
        "cover records the versions"
    );
    assert!(
        cover_text.iter().any(|t| t == "2023"),
        "cover records the year"
    );
    let mut cells_checked = 0;
    for (i, batches) in answers.iter().enumerate() {
        let at = if i < heat_map { i + 1 } else { i + 2 };
        let sheet = book.worksheet_range_at(at).unwrap().unwrap();
        let rows: Vec<&[Data]> = sheet.rows().collect();
        let schema = batches.first().map(|b| b.schema());
        let expected_rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows.len(), expected_rows + 1, "section {} rows", i + 1);
        let mut r = 1;
        for batch in batches {
            for row in 0..batch.num_rows() {
                for (c, column) in batch.columns().iter().enumerate() {
                    let got = rows[r].get(c).cloned().unwrap_or(Data::Empty);
                    let want = expected(column.as_ref(), row);
                    assert!(
                        same(&got, &want),
                        "section {} row {r} column {c} ({}): sheet {got:?}, SQL {want:?}",
                        i + 1,
                        schema.as_ref().unwrap().field(c).name()
                    );
                    cells_checked += 1;
                }
                r += 1;
            }
        }
    }
    assert!(cells_checked > 3000, "checked {cells_checked} cells");
    // The heat map's sheet is the department × level-2 matrix the HTML draws.
    let matrix = book.worksheet_range_at(heat_map + 1).unwrap().unwrap();
    let rows: Vec<&[Data]> = matrix.rows().collect();
    let detail = &answers[heat_map][0];
    let level2s: std::collections::BTreeSet<String> = (0..detail.num_rows())
        .map(|r| array_value_to_string(detail.column(3), r).unwrap())
        .collect();
    assert_eq!(rows.len(), 62 + 1, "a row per department");
    assert_eq!(
        rows[0].len(),
        1 + level2s.len(),
        "a column per level-2 indicator"
    );
    for cell in &rows[0][1..] {
        assert!(
            level2s.contains(&cell.to_string()),
            "{cell:?} is a level-2 indicator"
        );
    }
    assert!(
        rows[1][1..].iter().all(|c| matches!(c, Data::Float(_))),
        "{:?}",
        rows[1]
    );
    // The ranking's header is in Chinese and the rate is a fraction (shown as a percentage).
    let ranking = book.worksheet_range_at(1).unwrap().unwrap();
    assert_eq!(ranking.get((0, 0)), Some(&Data::String("排名".into())));
    let exante = book.worksheet_range_at(9).unwrap().unwrap();
    match exante.get((1, 4)) {
        Some(Data::Float(rate)) => assert!((rate - 0.3808).abs() < 1e-9, "{rate}"),
        other => panic!("cut rate cell: {other:?}"),
    }
    assert_eq!(exante.get((1, 3)), Some(&Data::Float(9160.33)));

    // HTML: self-contained, with the three kinds of chart and the numbers.
    let html = std::fs::read_to_string(file(&manifest, "html")).unwrap();
    for forbidden in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(
            !html.contains(forbidden),
            "HTML must not fetch anything: {forbidden}"
        );
    }
    assert!(html.matches("<svg").count() >= 5, "charts drawn");
    assert!(
        html.matches("class=\"bar\"").count() >= 62,
        "a ranking bar per department"
    );
    assert!(html.contains("class=\"series\""), "trend lines");
    assert!(
        html.matches("class=\"cell\"").count() >= 62 * 10,
        "a heat map cell per department and level-2 indicator"
    );
    assert!(
        html.contains(&manifest.as_of_version),
        "stamped with the versions"
    );
    assert!(html.contains("38.08%") && html.contains("9,160.33"));
    let ranking = &answers[0][0];
    for row in 0..ranking.num_rows() {
        let name = array_value_to_string(ranking.column(2), row).unwrap();
        let score = array_value_to_string(ranking.column(3), row).unwrap();
        assert!(
            html.contains(&format!("<td>{name}</td><td class=\"num\">{score}</td>")),
            "{name} {score}"
        );
    }
    assert!(html.contains(
        &manifest.sections[0]
            .sql
            .trim()
            .replace('\'', "&#39;")
            .replace('>', "&gt;")
            .replace('<', "&lt;")
    ));

    // Markdown: the tables and the SQL.
    let md = std::fs::read_to_string(file(&manifest, "md")).unwrap();
    assert!(md.starts_with("# 年度部门整体绩效评价排名通报"));
    assert!(md.contains("| 排名 | 部门编码 | 部门名称 | 总分 | 等级 |"));
    assert!(md.contains("38.08%") && md.contains(&manifest.as_of_version));

    // CSV: each section exactly as `kpidb query --format csv` answers its SQL.
    for (i, section) in manifest.sections.iter().enumerate() {
        let csv = manifest
            .files
            .iter()
            .find(|f| f.format == "csv" && f.section == Some(i + 1))
            .unwrap();
        let got = std::fs::read_to_string(out.path().join(&csv.file)).unwrap();
        let cli = run(
            &data,
            &[
                "query",
                "--format",
                "csv",
                "--as-of-version",
                &manifest.as_of_version,
                "--",
                &section.sql,
            ],
        );
        assert!(cli.status.success(), "{}", stderr(&cli));
        // With the byte-order mark Excel needs, and lists joined as Chinese lists are.
        let got = got.strip_prefix('\u{feff}').expect("a BOM starts the CSV");
        assert_eq!(got, joined_lists(&stdout(&cli)), "section {} CSV", i + 1);
    }
    let callouts = std::fs::read_to_string(file(&manifest, "html")).unwrap();
    assert!(
        !callouts.contains("<td>[") && callouts.contains("、"),
        "lists are joined"
    );
    assert!(callouts.contains("等级方案") && callouts.contains("local（优秀/良好/一般/较差）"));
}

/// The CLI's CSV with its list cells (`"[a, b]"`) written as a report writes them (`a、b`).
fn joined_lists(csv: &str) -> String {
    let mut out = String::new();
    let mut rest = csv;
    while let Some(start) = rest.find("\"[") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("]\"").expect("a list closes") + start;
        out.push_str(&rest[start + 2..end].replace(", ", "、"));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What an Excel cell should hold for one SQL value.
fn expected(column: &dyn Array, row: usize) -> Data {
    use datafusion::arrow::datatypes::DataType as T;
    if column.is_null(row) {
        return Data::Empty;
    }
    let text = array_value_to_string(column, row).unwrap();
    match column.data_type() {
        T::Boolean => Data::Bool(text == "true"),
        // Lists as a Chinese list is written: 履职效益、结转结余控制.
        T::List(_) => Data::String(
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .replace(", ", "、"),
        ),
        t if t.is_numeric() => Data::Float(text.parse().unwrap()),
        _ => Data::String(text),
    }
}

fn same(got: &Data, want: &Data) -> bool {
    match (got, want) {
        (Data::Float(a), Data::Float(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        (Data::Int(a), Data::Float(b)) => (*a as f64 - b).abs() < 1e-9,
        (a, b) => a == b,
    }
}

#[test]
fn as_of_version_reproduces_a_run_after_a_new_ingest() {
    let (_dir, data) = sample_copy();
    let first_dir = tempfile::tempdir().unwrap();
    let first = run_report(
        &data,
        first_dir.path(),
        &["--format", "csv", "--param", "year=2023"],
    );

    // Re-score 2023: one department's every indicator drops to zero.
    let export = run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT * FROM dept_scores WHERE year = 2023 ORDER BY dept_code, indicator_code",
        ],
    );
    assert!(export.status.success());
    let text = stdout(&export);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut rescored = vec![header.to_string()];
    let first_dept = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_string();
    for line in lines {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        if fields[1] == first_dept {
            fields[3] = "0".into();
        }
        rescored.push(fields.join(","));
    }
    let csv = _dir.path().join("rescored.csv");
    std::fs::write(&csv, rescored.join("\n")).unwrap();
    let ingest = run(
        &data,
        &[
            "ingest",
            "dept_scores",
            csv.to_str().unwrap(),
            "--mode",
            "replace-year",
        ],
    );
    assert!(ingest.status.success(), "{}", stderr(&ingest));

    let later_dir = tempfile::tempdir().unwrap();
    let later = run_report(&data, later_dir.path(), &["--format", "csv"]);
    assert_ne!(later.as_of_version, first.as_of_version);
    let ranking = |m: &Manifest| std::fs::read_to_string(m.dir.join(&m.files[0].file)).unwrap();
    assert_ne!(
        ranking(&later),
        ranking(&first),
        "the new scores change the ranking"
    );

    let again_dir = tempfile::tempdir().unwrap();
    let again = run_report(
        &data,
        again_dir.path(),
        &["--format", "csv", "--as-of-version", &first.as_of_version],
    );
    assert_eq!(again.as_of_version, first.as_of_version);
    for (a, b) in first.files.iter().zip(&again.files) {
        let a = std::fs::read_to_string(first.dir.join(&a.file)).unwrap();
        let b = std::fs::read_to_string(again.dir.join(&b.file)).unwrap();
        assert_eq!(a, b, "the pinned re-run gives the same numbers");
    }
}

#[test]
fn bad_specs_and_requests_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let cases = [
        ("[report.r]\ntitle = \"t\"\n[[report.r.sections]]\ntitle = \"s\"\nquery = \"nope.sql\"\n",
         "report 'r': sections[0] ('s').query: cannot read"),
        ("[report.r]\ntitle = \"t\"\nschedule = \"every monday\"\n[[report.r.sections]]\ntitle = \"s\"\nsql = \"SELECT 1\"\n",
         "report 'r': schedule: 'every monday' is not a cron expression"),
        ("[report.r]\ntitle = \"t\"\nformat = [\"xlsx\"]\n[[report.r.sections]]\ntitle = \"s\"\nsql = \"SELECT 1\"\n",
         "unknown field `format`"),
    ];
    for (text, message) in cases {
        let path = dir.path().join("reports.toml");
        std::fs::write(&path, text).unwrap();
        let out = run(
            &data,
            &["--reports", path.to_str().unwrap(), "report", "list"],
        );
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(message) && err.contains("reports.toml"),
            "{message:?} not in {err}"
        );
        assert!(!err.contains("panicked"));
    }
    let out = run(&data, &["report", "run", "no_such_report"]);
    assert!(
        stderr(&out).contains("no report 'no_such_report'") && stderr(&out).contains(REPORT),
        "{}",
        stderr(&out)
    );
    let out = run(&data, &["report", "run", REPORT, "--param", "year=last"]);
    assert!(
        stderr(&out).contains("expects an integer for year"),
        "{}",
        stderr(&out)
    );
    let out = run(&data, &["report", "run", REPORT, "--param", "yaer=2023"]);
    assert!(
        stderr(&out).contains("no parameter 'yaer'"),
        "{}",
        stderr(&out)
    );
    let list = run(&data, &["report", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("annual_ranking  年度部门整体绩效评价排名通报"));
    assert!(stdout(&list).contains("0 8 * * 1 (Asia/Shanghai)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_scheduled_reports_and_serves_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports.toml");
    std::fs::write(
        &reports,
        r#"
[report.units]
title = "预算单位"
formats = ["xlsx", "csv"]
output_dir = "out"
schedule = "*/2 * * * * *"
keep = 2
params = { year = "latest" }
[[report.units.sections]]
title = "单位数"
sql = "SELECT year, count(*) AS units, sum(budget_amount) AS budget_amount FROM unit_budgets WHERE year <= ${year} GROUP BY year ORDER BY year"

[report.broken]
title = "坏报告"
schedule = "*/2 * * * * *"
output_dir = "out"
[[report.broken.sections]]
title = "无此表"
sql = "SELECT * FROM no_such_table"
"#,
    )
    .unwrap();
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let served = Served::start(&data, "", &["--reports", reports.to_str().unwrap()]);
    let http = reqwest::Client::new();
    let mut listed = serde_json::Value::Null;
    for _ in 0..120 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        listed = http
            .get(format!("{}/api/reports", served.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let runs = |i: usize| listed[i]["status"]["runs"].as_u64().unwrap_or(0);
        if runs(0) >= 2 && runs(1) >= 4 {
            break;
        }
    }
    let (broken, units) = (&listed[0], &listed[1]);
    assert_eq!(units["name"], "units");
    assert!(units["status"]["runs"].as_u64().unwrap() >= 4, "{listed:#}");
    assert_eq!(units["status"]["failures"], 0, "{listed:#}");
    assert!(units["status"]["next_run"].is_string());
    assert_eq!(units["latest"]["params"]["year"], 2023);
    assert!(
        broken["status"]["failures"].as_u64().unwrap() >= 2,
        "a failing report keeps its schedule: {listed:#}"
    );
    assert!(
        broken["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{listed:#}"
    );
    assert!(broken["latest"].is_null());

    let xlsx = http
        .get(format!(
            "{}/api/reports/units/latest?format=xlsx",
            served.http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status(), 200);
    assert_eq!(
        xlsx.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(xlsx.headers()["x-kpidb-data-versions"]
        .to_str()
        .unwrap()
        .contains("unit_budgets="));
    assert!(
        xlsx.bytes().await.unwrap().starts_with(b"PK"),
        "an xlsx is a zip"
    );
    let csv = http
        .get(format!(
            "{}/api/reports/units/latest?format=csv&section=1",
            served.http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let csv = csv
        .strip_prefix('\u{feff}')
        .expect("report CSVs start with a BOM");
    assert!(
        csv.starts_with("year,units,budget_amount\n") && csv.contains("2023,417,712900.00"),
        "{csv}"
    );
    for (url, status) in [
        ("/api/reports/units/latest?format=html", 404),
        ("/api/reports/units/latest?format=pdf", 400),
        ("/api/reports/broken/latest?format=xlsx", 404),
        ("/api/reports/nope/latest", 404),
    ] {
        let response = http
            .get(format!("{}{url}", served.http))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{url}");
    }
    // Old runs are pruned to `keep`; the server still answers queries.
    let runs = std::fs::read_dir(dir.path().join("out/units"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    // keep = 2, plus at most one run renamed into place a moment before its pruning.
    assert!(runs <= 3, "{runs} runs kept of 4 or more");
    let answer: serde_json::Value = http
        .post(format!("{}/api/sql", served.http))
        .body("SELECT count(*) AS n FROM departments")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer.to_string().contains("\"n\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_run_over_http_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports.toml");
    std::fs::write(
        &reports,
        r#"
[report.units]
title = "预算单位"
formats = ["xlsx", "csv"]
output_dir = "out"
params = { year = "latest" }
[[report.units.sections]]
title = "单位数"
sql = "SELECT year, count(*) AS units FROM unit_budgets WHERE year = ${year} GROUP BY year"

[report.slow]
title = "慢报告"
output_dir = "out"
formats = ["csv"]
timezone = "Asia/Shanghai"
schedule = "0 8 1 1 *"
[[report.slow.sections]]
title = "很多行"
sql = "SELECT sum(value) AS total FROM range(1500000000)"
"#,
    )
    .unwrap();
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let served = Served::start(
        &data,
        crate::common::SERVER_CONFIG,
        &["--reports", reports.to_str().unwrap()],
    );
    let http = reqwest::Client::new();
    let post = |name: &str, body: &str| {
        http.post(format!("{}/api/reports/{name}/run", served.http))
            .bearer_auth(crate::common::TOKEN)
            .body(body.to_string())
            .send()
    };
    // Unauthenticated: refused, nothing run.
    let refused = http
        .post(format!("{}/api/reports/units/run", served.http))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // A run with parameters; its files are then the newest.
    let ran = post("units", r#"{"params": {"year": 2022}, "formats": ["csv"]}"#)
        .await
        .unwrap();
    assert_eq!(ran.status(), 201);
    let summary: serde_json::Value = ran.json().await.unwrap();
    assert_eq!(summary["params"]["year"], 2022, "{summary:#}");
    assert_eq!(summary["files"][0]["format"], "csv", "{summary:#}");
    let csv = http
        .get(format!(
            "{}/api/reports/units/latest?format=csv",
            served.http
        ))
        .bearer_auth(crate::common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.text().await.unwrap().contains("2022,"));
    // No body: the report's own parameters.
    let ran = post("units", "").await.unwrap();
    assert_eq!(ran.status(), 201);

    for (name, body, status, says) in [
        ("units", "{not json", 400, "the body must be JSON"),
        (
            "units",
            r#"{"params": {"yaer": 1}}"#,
            400,
            "no parameter 'yaer'",
        ),
        ("units", r#"{"formats": ["pdf"]}"#, 400, "format 'pdf'"),
        (
            "units",
            r#"{"params": {"year": 1800}}"#,
            422,
            "no table holds rows for year=1800",
        ),
        ("nope", "", 404, "no report 'nope'"),
    ] {
        let response = post(name, body).await.unwrap();
        assert_eq!(response.status(), status, "{name} {body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(says), "{name} {body}: {text}");
    }

    // One run at a time per report: a second request while the first runs is told so.
    let first = {
        let (http, url) = (
            http.clone(),
            format!("{}/api/reports/slow/run", served.http),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(crate::common::TOKEN)
                .body("{}")
                .send()
                .await
        })
    };
    let mut running = false;
    for _ in 0..600 {
        let listed: serde_json::Value = http
            .get(format!("{}/api/reports", served.http))
            .bearer_auth(crate::common::TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let slow = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "slow")
            .unwrap();
        // Times carry the report's offset.
        assert!(
            slow["status"]["next_run"]
                .as_str()
                .unwrap_or("+08:00")
                .ends_with("+08:00"),
            "{slow:#}"
        );
        if slow["running"] == true {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(running, "the slow report was seen running");
    let second = post("slow", "{}").await.unwrap();
    assert_eq!(second.status(), 409);
    assert!(second.text().await.unwrap().contains("report_running"));
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 201, "{}", first.text().await.unwrap());
}

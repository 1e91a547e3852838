//! The `kpidb` command as a user runs it: the shipped warehouse by default, every
//! output format, SQL from a file or standard input, the REPL, and clear errors.

use crate::common;

use std::io::Write;
use std::process::Stdio;

use crate::common::{kpidb, run, sample_copy, stderr, stdout};

#[test]
fn the_first_command_answers_from_the_shipped_warehouse() {
    let out = kpidb()
        .args([
            "query",
            "-f",
            concat!(env!("CARGO_MANIFEST_DIR"), "/queries/dept_ranking.sql"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("| rank | dept_code | dept_name"), "{text}");
    assert!(text.contains("市"), "department names are shown: {text}");
    assert!(text.contains("(62 rows)"), "{text}");
}

#[test]
fn an_installed_binary_needs_no_source_tree() {
    // The binary alone, somewhere else, with an empty cache: it writes out the sample
    // and the reports it carries, and answers from them.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("kpidb");
    std::fs::copy(env!("CARGO_BIN_EXE_kpidb"), &binary).unwrap();
    let cache = dir.path().join("cache");
    let installed = |args: &[&str]| {
        std::process::Command::new(&binary)
            .args(args)
            .current_dir(dir.path())
            .env("XDG_CACHE_HOME", &cache)
            .env_remove("KPIDB_DATA")
            .env_remove("KPIDB_CONFIG")
            .env_remove("KPIDB_REPORTS")
            .output()
            .unwrap()
    };
    let out = installed(&[
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM dept_ranking(2023)",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n\n62\n");
    let copies: Vec<String> = std::fs::read_dir(cache.join("kpidb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        copies.iter().any(|c| c.starts_with("sample-warehouse-")),
        "{copies:?}"
    );
    let out = installed(&["report", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("annual_ranking"), "{}", stdout(&out));

    // A warehouse that is not there says how to make one.
    let missing = dir.path().join("nowhere");
    let out = installed(&["--data", missing.to_str().unwrap(), "query", "SELECT 1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("does not exist") && err.contains("kpidb init") && err.contains("gen-sample"),
        "{err}"
    );
}

#[test]
fn output_formats_and_files() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let sql =
        "SELECT dept_code, dept_name FROM departments WHERE dept_code IN ('101', '102') ORDER BY 1";
    let csv = stdout(&run(&data, &["query", "--format", "csv", sql]));
    assert_eq!(
        csv,
        "dept_code,dept_name\n101,市委办公室\n102,市人大常委会办公室\n"
    );
    let json = stdout(&run(&data, &["query", "--format", "json", sql]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[1]["dept_name"], "市人大常委会办公室");
    let empty = stdout(&run(
        &data,
        &["query", "--format", "json", "SELECT 1 AS x WHERE false"],
    ));
    assert_eq!(empty.trim(), "[]");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.parquet");
    let out = run(
        &data,
        &[
            "query",
            "--format",
            "parquet",
            "-o",
            file.to_str().unwrap(),
            sql,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&file).unwrap().starts_with(b"PAR1"));

    // Decimal money comes out exact.
    let total = stdout(&run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT sum(budget_amount) AS t FROM unit_budgets WHERE year = 2023",
        ],
    ));
    assert_eq!(total, "t\n712900.00\n");
}

#[test]
fn sql_from_a_file_and_from_standard_input() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(
        &file,
        "-- two statements\nSELECT 1 AS a;\nSELECT count(*) AS n FROM indicators;\n",
    )
    .unwrap();
    let out = run(
        &data,
        &["query", "--format", "csv", "-f", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "n\n29\n");

    let mut child = kpidb()
        .args(["--data", data.to_str().unwrap(), "query", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM departments")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "n\n417\n");
}

#[test]
fn errors_are_one_clear_line_and_exit_non_zero() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    for (sql, expected) in [
        ("SELEC 1", "SQL error"),
        ("SELECT nope FROM departments", "No field named nope"),
        (
            "SELECT * FROM nowhere",
            "table 'nowhere' not found; the tables are departments, indicators",
        ),
        (
            "INSERT INTO departments VALUES ('1', 'x', NULL, NULL)",
            "changed only by `kpidb ingest`",
        ),
        (
            "COPY departments TO '/tmp/kpidb-copy-test.csv'",
            "changed only by `kpidb ingest`",
        ),
    ] {
        let out = run(&data, &["query", sql]);
        assert!(!out.status.success(), "{sql} should fail");
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{sql}: {err}");
        assert!(err.contains(expected), "{sql}: {err}");
        assert!(!err.contains("panicked"), "{sql}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/kpidb-copy-test.csv").exists());

    let out = run(
        std::path::Path::new("/nonexistent/warehouse"),
        &["query", "SELECT 1"],
    );
    assert!(
        stderr(&out).contains("warehouse /nonexistent/warehouse does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn datafusion_settings_come_from_the_environment() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let setting = "SELECT value FROM information_schema.df_settings \
                   WHERE name = 'datafusion.execution.target_partitions'";
    let with = |value: &str| {
        kpidb()
            .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", value)
            .arg("--data")
            .arg(&data)
            .args(["query", "--format", "csv", setting])
            .output()
            .unwrap()
    };
    let out = with("3");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "value\n3\n");
    // A ranking answers the same with one partition.
    let one = kpidb()
        .env("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "1")
        .arg("--data")
        .arg(&data)
        .args([
            "query",
            "--format",
            "csv",
            "SELECT * FROM dept_ranking(2023)",
        ])
        .output()
        .unwrap();
    let default = run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT * FROM dept_ranking(2023)",
        ],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(stdout(&one), stdout(&default));

    let out = with("many");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("DATAFUSION_* environment variable"), "{err}");
    assert!(err.contains("target_partitions"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_repl_runs_statements_across_lines_and_survives_errors() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let mut child = kpidb()
        .args(["--data", data.to_str().unwrap(), "repl"])
        .env("HOME", tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT nope;\nSELECT count(*)\n  AS units FROM unit_budgets\n  WHERE year = 2023;\n\\timing\n\\dt\n\\d dept_scores\n\\df\n\\q\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("error: "),
        "the bad statement is reported: {err}"
    );
    assert!(text.contains("|   417 |"), "{text}");
    assert!(text.contains("Timing is on."), "{text}");
    assert!(text.contains("exante_reviews"), "{text}");
    assert!(text.contains("score                decimal(7,2)"), "{text}");
}

#[test]
fn init_history_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("new");
    let out = kpidb()
        .args(["init", wh.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::scalar(&wh, "SELECT count(*) FROM dept_scores"), "0");
    let snapshot = stdout(&run(&wh, &["snapshot"]));
    assert_eq!(snapshot.trim(), "budget_decisions=0,budget_execution=0,departments=0,dept_scores=0,evaluations=0,\
        exante_reviews=0,indicators=0,perf_targets=0,project_scores=0,projects=0,rectifications=0,target_results=0,unit_budgets=0");
    let history = stdout(&run(&wh, &["history", "projects"]));
    assert!(history.contains("mode=create"), "{history}");
    // A second init on the same directory is refused.
    let out = kpidb()
        .args(["init", wh.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists and is not empty"));
}

#[test]
fn gen_sample_reproduces_the_shipped_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let (wh, csv) = (dir.path().join("wh"), dir.path().join("csv"));
    let out = kpidb()
        .args([
            "gen-sample",
            "--out",
            wh.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join("csv");
    for def in kpidb::model::TABLES {
        let name = format!("{}.csv", def.name);
        assert_eq!(
            std::fs::read(csv.join(&name)).unwrap(),
            std::fs::read(shipped.join(&name)).unwrap(),
            "{name} differs from the shipped sample"
        );
    }
}

#[test]
fn the_shipped_csvs_pass_every_ingest_rule() {
    // Loading the sample's CSVs into an empty warehouse, in dependency order, runs
    // every rule against every row, referential integrity included.
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    assert!(kpidb()
        .args(["init", wh.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join("csv");
    for def in kpidb::model::TABLES {
        let file = shipped.join(format!("{}.csv", def.name));
        let out = run(&wh, &["ingest", def.name, file.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", def.name, stderr(&out));
    }
    let (_tmp, sample) = sample_copy();
    let q = "SELECT count(*), sum(score) FROM dept_scores";
    assert_eq!(
        stdout(&run(&wh, &["query", "--format", "csv", q])),
        stdout(&run(&sample, &["query", "--format", "csv", q]))
    );
}

#[test]
fn a_url_is_never_taken_for_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let in_dir = |args: &[&str]| kpidb().current_dir(dir.path()).args(args).output().unwrap();
    for args in [
        &["init", "gcs://bucket/wh"][..],
        &[
            "--data",
            "azure://bucket/wh",
            "query",
            "SELECT count(*) FROM dept_scores",
        ],
        &["gen-sample", "--out", "oss://bucket/wh"],
        &["--data", "gs://bucket/wh", "ingest", "departments", "x.csv"],
    ] {
        let out = in_dir(args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("warehouses on") && err.contains(":// are not supported"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created in the current directory"
    );
    // file:// URLs are local directories.
    let wh = dir.path().join("wh");
    let url = format!("file://{}", wh.display());
    let out = in_dir(&["init", &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = in_dir(&[
        "--data",
        &url,
        "query",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM departments",
    ]);
    assert_eq!(stdout(&out), "n\n0\n", "{}", stderr(&out));
}

#[test]
fn sources_attach_parquet_csv_and_delta_read_only() {
    let (_tmp, data) = sample_copy();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir_all(base.join("ext")).unwrap();
    std::fs::write(
        base.join("ext/plans.csv"),
        "dept_code;plan_2024\n101;1000.5\n102;2000\n",
    )
    .unwrap();
    std::fs::create_dir_all(base.join("counts")).unwrap();
    let out = run(&data, &["query", "--format", "parquet", "-o",
        base.join("counts/part-0.parquet").to_str().unwrap(),
        "SELECT dept_code, count(*) AS scores FROM dept_scores WHERE year = 2023 GROUP BY dept_code"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::copy_dir(&data.join("departments"), &base.join("old_departments"));
    let config = base.join("kpidb.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "data = \"{}\"\n\
                 [[sources]]\nname = \"plans\"\nformat = \"csv\"\nlocation = \"ext/plans.csv\"\ndelimiter = \";\"\n\
                 [[sources]]\nname = \"score_counts\"\nformat = \"parquet\"\nlocation = \"counts\"\n\
                 [[sources]]\nname = \"old_departments\"\nformat = \"delta\"\nlocation = \"old_departments\"\n{extra}",
                data.display()
            ),
        )
        .unwrap();
    };
    write_config("");
    let query = |sql: &str| {
        kpidb()
            .args([
                "--config",
                config.to_str().unwrap(),
                "query",
                "--format",
                "csv",
                sql,
            ])
            .output()
            .unwrap()
    };
    // Joined with the warehouse, under their own names.
    let out = query(
        "SELECT d.dept_name, p.plan_2024, s.scores, o.dept_name = d.dept_name AS same \
         FROM plans p JOIN departments d ON d.dept_code = CAST(p.dept_code AS VARCHAR) \
         JOIN score_counts s ON s.dept_code = d.dept_code \
         JOIN old_departments o ON o.dept_code = d.dept_code ORDER BY d.dept_code",
    );
    assert_eq!(
        stdout(&out),
        "dept_name,plan_2024,scores,same\n市委办公室,1000.5,15,true\n市人大常委会办公室,2000.0,15,true\n",
        "{}",
        stderr(&out)
    );
    // Never written.
    for sql in [
        "INSERT INTO plans VALUES (103, 1)",
        "INSERT INTO score_counts SELECT dept_code, 1 FROM departments",
    ] {
        let out = query(sql);
        assert!(!out.status.success(), "{sql}");
        assert!(stderr(&out).contains("are not allowed"), "{}", stderr(&out));
    }
    // A bad entry names what is wrong and where.
    for (extra, expected) in [
        (
            "[[sources]]\nname = \"departments\"\nformat = \"csv\"\nlocation = \"ext/plans.csv\"\n",
            "[[sources]] name 'departments' is a warehouse table",
        ),
        (
            "[[sources]]\nname = \"missing\"\nformat = \"parquet\"\nlocation = \"nowhere\"\n",
            "source missing",
        ),
        (
            "[[sources]]\nname = \"plans\"\nformat = \"csv\"\nlocation = \"ext/plans.csv\"\n",
            "[[sources]] name 'plans' is given twice",
        ),
        (
            "[[sources]]\nname = \"x\"\nformat = \"json\"\nlocation = \"ext\"\n",
            "unknown variant `json`",
        ),
    ] {
        write_config(extra);
        let out = query("SELECT 1");
        assert!(!out.status.success(), "{extra}");
        assert!(stderr(&out).contains(expected), "{extra}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

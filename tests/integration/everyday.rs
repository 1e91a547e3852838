//! An analyst's everyday week on the command line: partial years, the shipped sample
//! kept safe, closed pipes, time zones, messages that name what was written, and the
//! table output and REPL people read.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{kpidb, run, sample_copy, scalar, stderr, stdout};

/// The command with standard output a pipe whose reader is already gone.
fn into_closed_pipe(mut cmd: Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let data = data.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["functions"],
        &["functions", "--markdown"],
        &["--help"],
        &["query", "--help"],
        &["--data", data, "history", "dept_scores"],
        &["--data", data, "snapshot"],
        &["--data", data, "query", "SELECT * FROM dept_scores"],
        &[
            "--data",
            data,
            "query",
            "--format",
            "csv",
            "SELECT * FROM dept_scores",
        ],
        &[
            "--data",
            data,
            "query",
            "--format",
            "json",
            "SELECT * FROM dept_scores",
        ],
        &["--data", data, "rollups"],
        &["--data", data, "report", "list"],
    ];
    for args in commands {
        let mut cmd = kpidb();
        cmd.args(*args)
            .env("HOME", tempfile::tempdir().unwrap().path());
        let out = into_closed_pipe(cmd);
        assert!(
            out.status.success(),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?} says nothing");
    }
    // As `| head -1` does: read a line, then go.
    let mut child = kpidb()
        .args(["--data", data, "query", "SELECT * FROM dept_scores"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("+-"), "{first}");
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    // The REPL too, with its statements on standard input.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = kpidb()
        .args(["--data", data, "repl"])
        .env("HOME", tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT * FROM dept_scores;\n\\dt\n");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn tables_print_null_apart_from_empty_and_numbers_on_the_right() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let out = run(
        &data,
        &[
            "query",
            "SELECT * FROM (VALUES (5, NULL, '', 'x'), (120, 'y', 'z', NULL)) AS v(n, a, b, c) ORDER BY n",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "| n   | a    | b | c    |", "{text}");
    assert_eq!(lines[3], "|   5 | NULL |   | x    |", "{text}");
    assert_eq!(lines[4], "| 120 | y    | z | NULL |", "{text}");
    assert_eq!(lines[6], "(2 rows)");
    let one = stdout(&run(&data, &["query", "SELECT 1 AS n"]));
    assert!(one.ends_with("(1 row)\n"), "{one}");
    // Chinese text keeps the columns aligned (two columns per character).
    let wide = stdout(&run(
        &data,
        &[
            "query",
            "SELECT dept_name, 1 AS n FROM departments WHERE dept_code = '101'",
        ],
    ));
    let widths: Vec<usize> = wide
        .lines()
        .take(5)
        .map(|l| {
            l.chars()
                .map(|c| if c as u32 >= 0x2E80 { 2 } else { 1 })
                .sum()
        })
        .collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{wide}");
}

#[test]
fn each_command_shows_and_takes_the_flags_it_uses() {
    let help = |args: &[&str]| {
        let out = kpidb().args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    for command in ["init", "gen-sample", "functions", "scheduler", "executor"] {
        let text = help(&[command]);
        for flag in ["--data", "--reports", "--cluster"] {
            let listed = text.lines().any(|l| l.trim_start().starts_with(flag));
            assert!(!listed, "{command} --help lists {flag}:\n{text}");
        }
    }
    for command in ["query", "repl", "bench"] {
        let text = help(&[command]);
        assert!(
            text.contains("--data") && text.contains("--cluster"),
            "{text}"
        );
        assert!(!text.contains("--reports"), "{command}: {text}");
    }
    for command in ["ingest", "history", "snapshot", "rollups", "export"] {
        let text = help(&[command]);
        assert!(text.contains("--data"), "{command}: {text}");
        assert!(
            !text.contains("--cluster") && !text.contains("--reports"),
            "{command}: {text}"
        );
    }
    let text = help(&["serve"]);
    assert!(
        text.contains("--reports") && text.contains("--cluster"),
        "{text}"
    );
    let text = help(&["report", "run"]);
    assert!(
        text.contains("--reports") && text.contains("--allow-empty"),
        "{text}"
    );
    // An executor reads a warehouse in a bucket too, and says where it finds one.
    let text = help(&["executor"]);
    assert!(
        text.contains("bucket") && text.contains("[storage]"),
        "{text}"
    );
    // One default per flag.
    let cores = text.lines().find(|l| l.contains("--cores")).unwrap_or("");
    assert_eq!(cores.matches("[default").count(), 1, "{text}");
    // The flag works before the command's name and after it.
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let after = kpidb()
        .args([
            "query",
            "--data",
            data.to_str().unwrap(),
            "SELECT count(*) AS n FROM departments",
        ])
        .output()
        .unwrap();
    let before = run(&data, &["query", "SELECT count(*) AS n FROM departments"]);
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(stdout(&after), stdout(&before));
}

#[test]
fn the_repl_expands_rows_switches_format_and_writes_files() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    let script = format!(
        "\\x\nSELECT 1 AS a, NULL AS b;\n\\x\n\\format csv\nSELECT 2 AS c;\n\\o {}\nSELECT 3 AS d;\nSELECT 4 AS e;\n\\o\n\\format json\nSELECT 5 AS f;\n\\format nope\n\\q\n",
        file.display()
    );
    let mut child = kpidb()
        .args(["--data", data.to_str().unwrap(), "repl"])
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{err}");
    assert!(text.contains("-[ RECORD 1 ]"), "{text}");
    assert!(text.contains("a | 1\nb | NULL\n"), "{text}");
    assert!(text.contains("c\n2\n"), "{text}");
    assert!(text.contains("[{\"f\":5}]"), "{text}");
    assert!(
        !text.contains("d\n3"),
        "\\o sends results to the file: {text}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "d\n3\ne\n4\n");
    assert!(
        err.contains("\\format nope: use table, csv or json"),
        "{err}"
    );
}

#[test]
fn an_empty_answer_says_which_years_there_are() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let out = run(&data, &["query", "SELECT * FROM dept_ranking(1800)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(0 rows)"));
    let err = stderr(&out);
    assert!(
        err.contains(
            "notice: dept_ranking: dept_scores has no rows for 1800; its years are 2019–2023"
        ),
        "{err}"
    );
    let out = run(&data, &["query", "SELECT * FROM dept_trend(1990, 1995)"]);
    assert!(
        stderr(&out).contains("dept_scores has no rows from 1990 to 1995"),
        "{}",
        stderr(&out)
    );
    // A year with data and no matching rows is just empty.
    let out = run(
        &data,
        &["query", "SELECT * FROM dept_ranking(2023) WHERE rank < 0"],
    );
    assert_eq!(stderr(&out), "");
}

/// Scores for two of the department framework's indicators in `year`, for three departments.
fn partial_year(data: &Path, year: i32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let indicators = crate::common::run(
        data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT indicator_code, max_score FROM dept_scores WHERE year = 2023 AND dept_code = '101' ORDER BY indicator_code LIMIT 2",
        ],
    );
    let mut csv = String::from("year,dept_code,indicator_code,score,max_score\n");
    for dept in ["101", "102", "103"] {
        for line in stdout(&indicators).lines().skip(1) {
            let (code, max) = line.split_once(',').unwrap();
            csv.push_str(&format!("{year},{dept},{code},{max},{max}\n"));
        }
    }
    let file = dir.path().join("partial.csv");
    std::fs::write(&file, csv).unwrap();
    let out = run(data, &["ingest", "dept_scores", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn a_partial_year_is_called_partial_and_latest_means_complete() {
    let (_tmp, data) = sample_copy();
    let _files = partial_year(&data, 2024);
    // Completeness is against the framework, not against what was scored that year.
    let out = run(
        &data,
        &[
            "query",
            "--format",
            "csv",
            "SELECT dept_code, indicators_scored, complete FROM dept_ranking(2024) ORDER BY dept_code",
        ],
    );
    assert_eq!(
        stdout(&out),
        "dept_code,indicators_scored,complete\n101,2,false\n102,2,false\n103,2,false\n"
    );
    assert_eq!(
        scalar(
            &data,
            "SELECT count(*) FILTER (WHERE complete) FROM dept_ranking(2023)"
        ),
        "62"
    );
    // "latest" is the newest complete year, and the run says what it passed over.
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(
        &data,
        &[
            "report",
            "run",
            "annual_ranking",
            "--format",
            "csv",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("year = 2023"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "notice: 2024 is not complete: 0 of its 3 departments are scored on all 15 indicators"
        ) && err.contains("--param year=2024"),
        "{err}"
    );
    let manifest = std::fs::read_to_string(out_dir.path().join("manifest.json")).unwrap();
    assert!(manifest.contains("2024 is not complete"), "{manifest}");
}

#[test]
fn a_report_on_a_year_without_data_is_refused_unless_allowed() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("run");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "run",
            "annual_ranking",
            "--param",
            "year=1800",
            "--format",
            "csv",
            "--out",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&data, &args.iter().map(|s| &**s).collect::<Vec<&str>>())
    };
    let out = args(&[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no table holds rows for year=1800")
            && err.contains("the years with data are 20")
            && err.contains("--allow-empty"),
        "{err}"
    );
    assert!(!out_path.exists(), "nothing is written");
    let out = args(&["--allow-empty"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("notice: every section is empty"),
        "{}",
        stderr(&out)
    );
    assert!(out_path.join("manifest.json").is_file());
}

/// kpidb with no warehouse of its own: the shipped sample, from an empty cache, in `cwd`.
fn as_new_user(cwd: &Path, args: &[&str]) -> std::process::Output {
    kpidb()
        .args(args)
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cwd.join("cache"))
        .env_remove("KPIDB_CONFIG")
        .env_remove("KPIDB_REPORTS")
        .output()
        .unwrap()
}

#[test]
fn the_shipped_sample_refuses_writes_and_reports_go_where_the_user_is() {
    let home = tempfile::tempdir().unwrap();
    let cwd = home.path();
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/csv/departments.csv");
    let before = stdout(&as_new_user(cwd, &["snapshot"]));
    for args in [
        vec![
            "ingest",
            "departments",
            csv.to_str().unwrap(),
            "--mode",
            "replace",
        ],
        vec!["ingest", "dept_scores", csv.to_str().unwrap()],
        vec!["rollups", "--rebuild"],
    ] {
        let out = as_new_user(cwd, &args);
        assert!(!out.status.success(), "{args:?} must be refused");
        let err = stderr(&out);
        assert!(
            err.contains("is read-only, so nothing was written")
                && err.contains("kpidb gen-sample --out DIR")
                && err.contains("--data DIR"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        stdout(&as_new_user(cwd, &["snapshot"])),
        before,
        "the sample is as shipped"
    );
    // Checking a file writes nothing, so it is allowed.
    let out = as_new_user(
        cwd,
        &[
            "ingest",
            "departments",
            csv.to_str().unwrap(),
            "--check",
            "--mode",
            "replace",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A copy of one's own takes writes.
    let own = cwd.join("mine");
    let out = as_new_user(cwd, &["gen-sample", "--out", own.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_new_user(
        cwd,
        &["--data", own.to_str().unwrap(), "rollups", "--rebuild"],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // The shipped reports archive into ./reports, where the user is.
    let out = as_new_user(cwd, &["report", "run", "annual_ranking", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<_> = std::fs::read_dir(cwd.join("reports/annual_ranking"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1, "one run archived under ./reports");
    let cache = cwd.join("cache/kpidb");
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            !path.join("reports").exists(),
            "nothing archived into {}",
            path.display()
        );
    }
    // kpidb.toml's `archive` puts every report's runs elsewhere.
    std::fs::write(cwd.join("kpidb.toml"), "archive = \"circulars\"\n").unwrap();
    let out = as_new_user(
        cwd,
        &[
            "--config",
            "kpidb.toml",
            "report",
            "run",
            "annual_ranking",
            "--format",
            "md",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cwd.join("circulars/annual_ranking").is_dir());
}

#[test]
fn times_are_read_and_printed_in_one_zone_with_their_offset() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    assert!(kpidb()
        .args(["init", wh.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/csv/departments.csv");
    let out = run(&wh, &["ingest", "departments", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let history = |zone: &str| {
        let out = kpidb()
            .args(["--data", wh.to_str().unwrap(), "history", "departments"])
            .env("KPIDB_TIMEZONE", zone)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let beijing = history("Asia/Shanghai");
    let line = beijing
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    let time = line.split_whitespace().nth(1).unwrap().to_string()
        + " "
        + line.split_whitespace().nth(2).unwrap();
    assert!(time.ends_with("+08:00"), "{beijing}");
    let utc = history("UTC");
    assert!(utc.contains("+00:00") && !utc.contains("+08:00"), "{utc}");
    // The commit's time on a UTC wall clock, a second later: read in UTC it is after
    // the commit; read in Beijing it is eight hours before it.
    let committed = chrono::DateTime::parse_from_str(&time, "%Y-%m-%d %H:%M:%S%.3f%:z").unwrap();
    let wall = (committed.with_timezone(&chrono::Utc) + chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let count = |zone: &str, at: &str| {
        kpidb()
            .args([
                "--data",
                wh.to_str().unwrap(),
                "query",
                "--format",
                "csv",
                "--as-of",
                at,
            ])
            .arg("SELECT count(*) AS n FROM departments")
            .env("KPIDB_TIMEZONE", zone)
            .output()
            .unwrap()
    };
    let out = count("UTC", &wall);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(stdout(&out), "n\n0\n", "read in UTC, the commit is seen");
    let out = count("Asia/Shanghai", &wall);
    assert!(
        !out.status.success() || stdout(&out) == "n\n0\n",
        "read in Beijing the time is before the commit: {}",
        stdout(&out)
    );
    // An explicit offset means the same instant in any zone.
    let explicit = (committed + chrono::Duration::seconds(1)).to_rfc3339();
    assert_eq!(
        stdout(&count("UTC", &explicit)),
        stdout(&count("Asia/Shanghai", &explicit))
    );
    let out = count("Mars/Olympus", &wall);
    assert!(
        stderr(&out).contains("KPIDB_TIMEZONE 'Mars/Olympus' is not a time zone"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn messages_name_what_the_user_wrote() {
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let out = run(&data, &["query", "SELECT * FROM dept_score"]);
    assert!(
        stderr(&out).contains("table 'dept_score' not found; did you mean dept_scores?"),
        "{}",
        stderr(&out)
    );
    let out = run(&data, &["query", "SELECT * FROM public.Departmnts"]);
    assert!(
        stderr(&out).contains("table 'public.Departmnts' not found; did you mean departments?"),
        "{}",
        stderr(&out)
    );
    let out = run(&data, &["query", "SELECT * FROM dept_rankng(2023)"]);
    assert!(
        stderr(&out).contains("table function 'dept_rankng' not found; did you mean dept_ranking?"),
        "{}",
        stderr(&out)
    );
    // Ingest quotes the file's own text, not the value as stored.
    let (_tmp, copy) = sample_copy();
    let code = scalar(
        &copy,
        "SELECT indicator_code FROM indicators WHERE framework = 'dept' ORDER BY 1 LIMIT 1",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scores.csv");
    std::fs::write(
        &file,
        format!("year,dept_code,indicator_code,score,max_score\n2024,101,{code},105.5,100\n"),
    )
    .unwrap();
    let out = run(&copy, &["ingest", "dept_scores", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("column score, value \"105.5\""), "{err}");
}

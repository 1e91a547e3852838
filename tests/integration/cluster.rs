//! kpidb on Apache Ballista: every query in `queries/` answers on a cluster exactly as
//! it does locally, built-in functions included, on an in-process cluster and on a
//! loopback cluster of separate processes (one scheduler, two executors); a report
//! runs there too; and an executor killed mid-query never yields a wrong answer.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kpidb::cluster::{process, ClusterUrl};
use kpidb::functions::FunctionOptions;
use kpidb::{Engine, Warehouse};

use crate::common::{kpidb, stderr, stdout};

fn query_files() -> Vec<(String, String)> {
    crate::common::query_paths()
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Column names and types, then every row as text, in the order returned.
fn render(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut lines = Vec::new();
    if let Some(first) = batches.first() {
        lines.push(
            first
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{}:{}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    for batch in batches {
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
    lines
}

async fn answer(engine: &Engine, name: &str, sql: &str) -> Vec<String> {
    let batches = engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    render(&batches)
}

async fn local_engine(data: &Path) -> Engine {
    Engine::open(Warehouse::open(data).unwrap()).await.unwrap()
}

/// Every query answers on the cluster at `url` exactly as locally, and really runs there.
async fn same_answers(data: &Path, url: &ClusterUrl) {
    let local = local_engine(data).await;
    let remote = local_engine(data).await.with_hook(url).await.unwrap();
    for (name, sql) in query_files() {
        eprintln!("{url}: {name}");
        let plan = remote
            .sql(&sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert_eq!(
            (plan.name(), plan.children().first().map(|job| job.name())),
            ("RunAgainOnExecutorLoss", Some("DistributedQueryExec")),
            "{name} did not go to the cluster"
        );
        let want = answer(&local, &name, &sql).await;
        let got = answer(&remote, &name, &sql).await;
        assert!(want.len() > 1, "{name}: no rows locally");
        assert_eq!(got, want, "{name}: cluster and local answers differ");
    }
}

#[test]
fn in_process_cluster_answers_every_query_like_local() {
    common::run_async(4, in_process_cluster())
}

async fn in_process_cluster() {
    let url = process::standalone(FunctionOptions::default(), 2, Default::default()).unwrap();
    same_answers(&kpidb::sample::shipped::warehouse().unwrap(), &url).await;

    // perf_grade grades by the scheme of the session that planned it, whatever the
    // cluster's own setting (here the default, mof).
    let english = FunctionOptions {
        grade_scheme: kpidb::functions::GradeScheme::En,
        ..FunctionOptions::default()
    };
    let warehouse = Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap();
    let local = Engine::open_with(warehouse.clone(), kpidb::AsOf::Latest, english)
        .await
        .unwrap();
    let remote = Engine::open_with(warehouse, kpidb::AsOf::Latest, english)
        .await
        .unwrap()
        .with_hook(&url)
        .await
        .unwrap();
    let sql = "SELECT perf_grade(score * 100 / max_score) AS g, count(*) AS n \
               FROM dept_scores GROUP BY g ORDER BY g";
    let want = answer(&local, "grades", sql).await;
    assert!(
        want.iter().any(|line| line.starts_with("excellent")),
        "{want:?}"
    );
    assert_eq!(answer(&remote, "grades", sql).await, want);

    // What lives only in this session runs here; a query that reads nothing, too.
    let remote = local_engine(&kpidb::sample::shipped::warehouse().unwrap())
        .await
        .with_hook(&url)
        .await
        .unwrap();
    for sql in [
        "SELECT table_name FROM information_schema.tables WHERE table_name = 'dept_scores'",
        "SELECT 1 + 1",
    ] {
        let plan = remote
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert!(
            !["DistributedQueryExec", "RunAgainOnExecutorLoss"].contains(&plan.name()),
            "{sql}"
        );
        assert_eq!(remote.query(sql).await.unwrap()[0].num_rows(), 1, "{sql}");
    }
}

#[tokio::test]
async fn an_unreachable_scheduler_is_named() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = ClusterUrl::parse(&format!("df://127.0.0.1:{port}")).unwrap();
    let err = local_engine(&kpidb::sample::shipped::warehouse().unwrap())
        .await
        .with_hook(&url)
        .await
        .err()
        .expect("no scheduler there");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "cannot reach the kpidb scheduler at df://127.0.0.1:{port}"
        )),
        "{message}"
    );

    let out = common::run(
        &kpidb::sample::shipped::warehouse().unwrap(),
        &["query", "--cluster", "http://x:1", "SELECT 1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cluster 'http://x:1'") && stderr(&out).contains("df://HOST:PORT"),
        "{}",
        stderr(&out)
    );
}

/// A child process killed when the test ends, whatever way it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kpidb scheduler` on a free loopback port and returns it with its address.
fn start_scheduler(executor_timeout: u64) -> (Proc, ClusterUrl) {
    start_scheduler_with(&["--executor-timeout", &executor_timeout.to_string()])
}

/// Starts `kpidb scheduler` on a free loopback port with `flags`.
fn start_scheduler_with(flags: &[&str]) -> (Proc, ClusterUrl) {
    let mut child = kpidb()
        .args(["scheduler", "--bind", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("scheduler starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if let Some(url) = line.strip_prefix("kpidb scheduler listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the scheduler prints its address");
    (Proc(child), ClusterUrl::parse(&url).unwrap())
}

/// Starts `kpidb executor` for `url` and waits until it has reached the scheduler.
fn start_executor(url: &ClusterUrl, work: &Path) -> Proc {
    start_executor_with(url, work, &[])
}

/// Starts `kpidb executor` for `url` with `flags` and waits until it has reached the
/// scheduler.
fn start_executor_with(url: &ClusterUrl, work: &Path, flags: &[&str]) -> Proc {
    let mut child = kpidb()
        .args(["executor", "--scheduler", &url.to_string()])
        .args(["--bind-host", "127.0.0.1", "--port", "0", "--cores", "1"])
        .args(flags)
        .arg("--work-dir")
        .arg(work)
        .env("RUST_LOG", "ballista_executor=info,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("executor starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if line.contains("Connected to scheduler") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the executor reaches the scheduler");
    Proc(child)
}

#[test]
fn loopback_cluster_of_processes_answers_like_local() {
    let work = tempfile::tempdir().unwrap();
    let (_scheduler, url) = start_scheduler(5);
    let mut executors = vec![
        start_executor(&url, &work.path().join("a")),
        start_executor(&url, &work.path().join("b")),
    ];
    let runtime = common::runtime(2);
    let data = kpidb::sample::shipped::warehouse().unwrap();
    runtime.block_on(same_answers(&data, &url));

    // The command line, as a user runs it.
    let local = ranking(&data, &[]);
    let remote = ranking(&data, &["--cluster", &url.to_string()]);
    assert!(remote.status.success(), "{}", stderr(&remote));
    assert_eq!(stdout(&remote), stdout(&local));

    // A report run on the cluster writes the same tables.
    let (a, b) = (work.path().join("local"), work.path().join("remote"));
    for (dir, cluster) in [(&a, None), (&b, Some(url.to_string()))] {
        let mut cmd = kpidb();
        cmd.arg("--data").arg(&data);
        if let Some(cluster) = cluster {
            cmd.args(["--cluster", &cluster]);
        }
        let out = cmd
            .args([
                "report",
                "run",
                "annual_ranking",
                "--format",
                "csv",
                "--out",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut csvs = 0;
    for entry in std::fs::read_dir(&a).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let other = b.join(path.file_name().unwrap());
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(&other).unwrap(),
                "{}",
                path.display()
            );
            csvs += 1;
        }
    }
    assert!(csvs >= 5, "{csvs} CSV files");

    // An executor killed mid-query: the answer is right, or the error says what happened.
    let heavy = "SELECT count(*) AS pairs, sum(a.score) AS total \
                 FROM dept_scores a JOIN dept_scores b ON a.year = b.year AND a.dept_code <> b.dept_code";
    let want = runtime.block_on(async {
        let local = local_engine(&data).await;
        render(&local.query(heavy).await.unwrap())
    });
    let outcome = runtime.block_on(async {
        let remote = local_engine(&data).await.with_hook(&url).await.unwrap();
        let query = tokio::spawn(async move { remote.query(heavy).await.map(|b| render(&b)) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut victim = executors.remove(0);
        victim.0.kill().unwrap();
        tokio::time::timeout(Duration::from_secs(180), query)
            .await
            .expect("the query ends once the executor is given up")
            .unwrap()
    });
    // Either Ballista re-ran the lost tasks on the survivor and the answer is right, or
    // the query failed with Ballista's own executor-loss error. Which one is printed.
    let happened = match outcome {
        Ok(got) => {
            assert_eq!(got, want, "a retried query must give the right answer");
            "the query was retried on the surviving executor and answered right".to_string()
        }
        Err(e) => {
            let message = e.to_string();
            let lost = is_executor_loss(&message);
            assert!(lost, "not an executor-loss error: {message}");
            format!("the query failed with the executor-loss error: {message}")
        }
    };
    let _ = writeln!(std::io::stderr(), "killed executor: {happened}");
    // The survivor goes on answering.
    let again = runtime.block_on(async {
        let remote = local_engine(&data).await.with_hook(&url).await.unwrap();
        render(&remote.query(heavy).await.unwrap())
    });
    assert_eq!(again, want);
}

/// Ballista's errors for a lost executor: "Task failure due to Executor … lost" from the
/// scheduler, "Shuffle fetch partition error from Executor …" from a reader of its output.
fn is_executor_loss(message: &str) -> bool {
    message.contains("Shuffle fetch partition error from Executor")
        || message
            .split("Task failure due to Executor ")
            .nth(1)
            .is_some_and(|rest| rest.split_whitespace().nth(1) == Some("lost"))
}

/// queries/dept_ranking.sql on `data` as CSV, with `flags` (a cluster, a configuration).
fn ranking(data: &Path, flags: &[&str]) -> std::process::Output {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries/dept_ranking.sql");
    let mut args = flags.to_vec();
    args.extend(["query", "--format", "csv", "-f", file.to_str().unwrap()]);
    common::run(data, &args)
}

/// `--tls-ca/--tls-cert/--tls-key` for the fixture CA `set` (tests/fixtures/tls/).
fn tls_flags(set: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(set);
    ["ca", "cert", "key"]
        .iter()
        .flat_map(|f| {
            [
                format!("--tls-{f}"),
                dir.join(format!("{f}.pem")).display().to_string(),
            ]
        })
        .collect()
}

/// kpidb.toml for a client of the cluster with the fixture CA `set`.
fn tls_config(dir: &Path, set: &str) -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(set);
    let path = dir.join(format!("{set}.toml"));
    std::fs::write(
        &path,
        format!(
            "[cluster_tls]\nca = \"{0}/ca.pem\"\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
            fixtures.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_cluster_over_mutual_tls_answers_and_refuses_strangers() {
    let work = tempfile::tempdir().unwrap();
    let member = tls_flags("cluster");
    let member: Vec<&str> = member.iter().map(String::as_str).collect();
    let (_scheduler, url) = start_scheduler_with(&member);
    let _executors = [
        start_executor_with(&url, &work.path().join("a"), &member),
        start_executor_with(&url, &work.path().join("b"), &member),
    ];
    let data = kpidb::sample::shipped::warehouse().unwrap();
    let local = ranking(&data, &[]);
    let cluster = url.to_string();
    let ask = |config: Option<&Path>| {
        let mut flags = vec!["--cluster", &cluster];
        let config = config.map(|c| c.display().to_string());
        if let Some(config) = &config {
            flags.extend(["--config", config]);
        }
        ranking(&data, &flags)
    };
    // A member: the same answer, over TLS both to the scheduler and from the executors.
    let answer = ask(Some(&tls_config(work.path(), "cluster")));
    assert!(answer.status.success(), "{}", stderr(&answer));
    assert_eq!(stdout(&answer), stdout(&local));
    // An executor with another CA's certificate cannot join.
    let stranger = tls_flags("stranger");
    let mut joiner = kpidb()
        .args([
            "executor",
            "--scheduler",
            &url.to_string(),
            "--port",
            "0",
            "--cores",
            "1",
        ])
        .args(&stranger)
        .env("RUST_LOG", "ballista_executor=info,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = joiner.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(log).lines().map_while(|l| l.ok()) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut refused = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                assert!(
                    !line.contains("Connected to scheduler"),
                    "a stranger joined: {line}"
                );
                refused |= line.contains("Failed to connect to scheduler");
            }
            Err(_) => break,
        }
    }
    let _ = joiner.kill();
    let _ = joiner.wait();
    assert!(refused, "the stranger executor was not refused");
    // No certificate, or one from another CA: refused, and said so.
    for config in [None, Some(tls_config(work.path(), "stranger"))] {
        let refused = ask(config.as_deref());
        assert!(!refused.status.success(), "{config:?} was served");
        let err = stderr(&refused);
        assert!(err.starts_with("error: "), "{config:?}: {err}");
        if config.is_none() {
            assert!(err.contains("[cluster_tls]"), "{err}");
        }
        assert!(!err.contains("panicked"), "{config:?}: {err}");
        assert_ne!(stdout(&refused), stdout(&local));
    }
}

#[test]
fn a_cluster_listens_beyond_loopback_only_with_tls() {
    for args in [
        &["scheduler", "--bind", "0.0.0.0:0"][..],
        &[
            "executor",
            "--scheduler",
            "df://127.0.0.1:9",
            "--bind-host",
            "0.0.0.0",
        ][..],
    ] {
        let out = kpidb().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = stderr(&out);
        assert!(
            err.contains("refusing to listen on 0.0.0.0 without TLS") && err.contains("--tls-ca"),
            "{args:?}: {err}"
        );
    }
}

//! A warehouse in an S3-compatible bucket: a real S3 server (moto's) on loopback, the
//! `kpidb` binary as a user runs it, with the credentials in the environment. Answers
//! are compared with the local sample; failures of the store are made by cutting a
//! proxy between kpidb and the server at a chosen request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::common::{kpidb, stderr, stdout, Served, PASSWORD, SERVER_CONFIG, USER};
use crate::optional::{self, Client};

/// A moto S3 server on a free loopback port, stopped on drop.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// `None` when moto is not installed (the test is then skipped, or fails under CI).
    fn start() -> Option<S3Server> {
        Self::start_with(&[])
    }

    /// The server with `env` (moto's settings) in its environment.
    fn start_with(env: &[(&str, &str)]) -> Option<S3Server> {
        if !optional::available(Client::S3Server) {
            return None;
        }
        let port = free_port();
        let child = Command::new(optional::python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let server = S3Server { child, port };
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not listen on {port} within 30 s");
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes the bucket `name`.
    fn bucket(&self, name: &str) {
        let reply = http(self.port, "PUT", &format!("/{name}"));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }

    /// The keys under `prefix` in `bucket`.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let reply = http(
            self.port,
            "GET",
            &format!("/{bucket}?list-type=2&max-keys=100000&prefix={prefix}"),
        );
        reply
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One plain HTTP request (moto does not check signatures); the whole reply.
fn http(port: u16, method: &str, target: &str) -> String {
    http_with(port, method, target, "")
}

/// One plain HTTP request with `body`; the whole reply.
fn http_with(port: u16, method: &str, target: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// Environment variables for a kpidb process.
type Env = Vec<(&'static str, String)>;

/// The environment a user sets to reach the server (the standard AWS_* variables).
fn aws_env(endpoint: &str) -> Env {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "kpidb-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "kpidb-test-secret-value".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Runs kpidb with `args` in `cwd` and `env`.
fn run_in(cwd: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = kpidb();
    cmd.current_dir(cwd).args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("kpidb runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    stdout(out)
}

/// Every queries/*.sql answered the same (CSV) on `data` as on the local sample, with
/// `extra` arguments (a cluster) on the bucket side.
fn every_query_agrees(cwd: &Path, env: &[(&str, String)], data: &str, extra: &[&str]) {
    let local = kpidb::sample::shipped::warehouse().unwrap();
    let local = local.to_str().unwrap();
    for file in crate::common::query_paths() {
        let file = file.to_str().unwrap();
        let want = ok(
            &run_in(
                cwd,
                env,
                &["--data", local, "query", "--format", "csv", "-f", file],
            ),
            file,
        );
        let mut args = vec!["--data", data];
        args.extend_from_slice(extra);
        args.extend(["query", "--format", "csv", "-f", file]);
        let got = ok(&run_in(cwd, env, &args), file);
        assert_eq!(got, want, "{file}");
    }
}

/// One year of scores: the sample's 2023 scores (full marks) as `year`.
fn scores_csv(path: &Path, year: i32) {
    let mut text = String::from("year,dept_code,indicator_code,score,max_score\n");
    let local = kpidb::sample::shipped::warehouse().unwrap();
    let out = crate::common::run(
        &local,
        &[
            "query",
            "--format",
            "csv",
            "SELECT s.dept_code, s.indicator_code, s.max_score FROM dept_scores s WHERE s.year = 2023 ORDER BY 1, 2",
        ],
    );
    let lines: Vec<String> = stdout(&out).lines().skip(1).map(str::to_string).collect();
    assert!(!lines.is_empty(), "{}", stderr(&out));
    for line in &lines {
        let mut parts = line.split(',');
        let (dept, indicator, max) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        text.push_str(&format!("{year},{dept},{indicator},{max},{max}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// A moto server with the bucket `kpi` holding the sample city at `s3://kpi/{prefix}`,
/// an empty working directory, and the environment that reaches the server.
fn city(prefix: &str) -> Option<(S3Server, tempfile::TempDir, Env)> {
    let s3 = S3Server::start()?;
    s3.bucket("kpi");
    let cwd = tempfile::tempdir().unwrap();
    let env = aws_env(&s3.endpoint());
    let out = run_in(
        cwd.path(),
        &env,
        &["gen-sample", "--out", &format!("s3://kpi/{prefix}")],
    );
    ok(&out, "gen-sample");
    Some((s3, cwd, env))
}

#[test]
fn a_warehouse_in_a_bucket_answers_like_a_local_one() {
    // The sample city, written straight into the bucket.
    let Some((s3, cwd, env)) = city("city") else {
        return;
    };
    let data = "s3://kpi/city";
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing was written in the current directory"
    );
    let keys = s3.keys("kpi", "city/");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("city/dept_scores/_delta_log/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("city/_rollups/dept_totals/")),
        "{keys:?}"
    );
    every_query_agrees(cwd.path(), &env, data, &[]);

    // A second copy under another prefix, made with `kpidb init` and settings from
    // kpidb.toml (the secret in a variable the file names).
    let config = cwd.path().join("kpidb.toml");
    std::fs::write(
        &config,
        format!(
            "data = \"s3://kpi/empty\"\n[storage]\nendpoint = \"{}\"\nallow_http = true\nregion = \"cn-north-1\"\n\
             access_key_id_env = \"CITY_KEY\"\nsecret_access_key_env = \"CITY_SECRET\"\n",
            s3.endpoint()
        ),
    )
    .unwrap();
    let by_file = [
        ("CITY_KEY", "k".to_string()),
        ("CITY_SECRET", "s".to_string()),
        ("KPIDB_CONFIG", config.display().to_string()),
    ];
    ok(
        &run_in(cwd.path(), &by_file, &["init", "s3://kpi/empty"]),
        "init",
    );
    let out = run_in(
        cwd.path(),
        &by_file,
        &[
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM departments",
        ],
    );
    assert_eq!(ok(&out, "empty"), "n\n0\n");
    let out = run_in(cwd.path(), &by_file, &["init", "s3://kpi/empty"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("s3://kpi/empty already exists and is not empty"),
        "{}",
        stderr(&out)
    );
    let unset = [("KPIDB_CONFIG", config.display().to_string())];
    let out = run_in(cwd.path(), &unset, &["query", "SELECT 1"]);
    assert!(
        stderr(&out).contains(
            "access_key_id_env names the environment variable CITY_KEY, which is not set"
        ),
        "{}",
        stderr(&out)
    );

    // Ingest, history, rollups and time travel, on the bucket as on a local copy.
    let (_keep, local) = crate::common::sample_copy();
    let csv = cwd.path().join("scores_2024.csv");
    scores_csv(&csv, 2024);
    let csv = csv.to_str().unwrap();
    let local = local.to_str().unwrap().to_string();
    for warehouse in [data, local.as_str()] {
        let out = run_in(
            cwd.path(),
            &env,
            &["--data", warehouse, "ingest", "dept_scores", csv],
        );
        assert!(
            ok(&out, "ingest").contains("table is now at version 1"),
            "{}",
            stdout(&out)
        );
    }
    let history = ok(
        &run_in(
            cwd.path(),
            &env,
            &["--data", data, "history", "dept_scores"],
        ),
        "history",
    );
    assert!(
        history.contains("mode=append") && history.contains("mode=create"),
        "{history}"
    );
    let rollups = ok(
        &run_in(cwd.path(), &env, &["--data", data, "rollups"]),
        "rollups",
    );
    assert!(
        rollups.contains("dept_scores=1") && rollups.contains("current"),
        "{rollups}"
    );
    for sql in [
        "SELECT year, sum(score) AS total, count(*) AS n FROM dept_scores GROUP BY year ORDER BY year",
        "SELECT * FROM dept_ranking(2024) ORDER BY rank, dept_code",
        "SELECT * FROM dept_trend(2020, 2024) ORDER BY dept_code",
    ] {
        for pin in [&[][..], &["--as-of-version", "dept_scores=0"][..]] {
            let answer = |warehouse: &str| {
                let mut args = vec!["--data", warehouse, "query", "--format", "csv"];
                args.extend_from_slice(pin);
                args.push(sql);
                ok(&run_in(cwd.path(), &env, &args), sql)
            };
            assert_eq!(answer(data), answer(&local), "{sql} {pin:?}");
        }
    }
    // Two ingests at once, from two processes: both land, one after the other, under
    // the commit lock in the bucket.
    let years: Vec<PathBuf> = [2025, 2026]
        .iter()
        .map(|year| {
            let path = cwd.path().join(format!("scores_{year}.csv"));
            scores_csv(&path, *year);
            path
        })
        .collect();
    let running: Vec<Child> = years
        .iter()
        .map(|path| {
            let mut cmd = kpidb();
            cmd.current_dir(cwd.path())
                .args(["--data", data, "ingest", "dept_scores"])
                .arg(path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (key, value) in &env {
                cmd.env(key, value);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run_in(
        cwd.path(),
        &env,
        &["--data", data, "query", "--format", "csv", "SELECT year, count(*) AS n FROM dept_scores WHERE year >= 2024 GROUP BY year ORDER BY year"],
    );
    let per_year = ok(&out, "years");
    assert_eq!(per_year.lines().count(), 4, "{per_year}");
    let snapshot = ok(
        &run_in(cwd.path(), &env, &["--data", data, "snapshot"]),
        "snapshot",
    );
    assert!(snapshot.contains("dept_scores=3,"), "{snapshot}");
    assert!(
        s3.keys("kpi", "city/_kpidb_commit.lock").is_empty(),
        "the lock was released"
    );

    // A report on the bucket's data, written locally.
    let out_dir = cwd.path().join("report");
    let out = run_in(
        cwd.path(),
        &env,
        &[
            "--data",
            data,
            "report",
            "run",
            "annual_ranking",
            "--param",
            "year=2023",
            "--format",
            "csv",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    ok(&out, "report");
    assert!(std::fs::read_dir(&out_dir).unwrap().count() > 0);

    // The secret never shows in what kpidb prints.
    for args in [
        &["--data", data, "history", "dept_scores"][..],
        &["--data", data, "rollups"][..],
    ] {
        let out = run_in(cwd.path(), &env, args);
        assert!(!stdout(&out).contains("kpidb-test-secret-value"));
        assert!(!stderr(&out).contains("kpidb-test-secret-value"));
    }
}

/// A TCP proxy to the S3 server that stops passing anything once a request it
/// forwards contains `trigger` (and until `restore`), as a store that fails would.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    trigger: Arc<Mutex<Option<String>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let trigger: Arc<Mutex<Option<String>>> = Arc::default();
        let (cut2, trigger2) = (cut.clone(), trigger.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (cut3, trigger3) = (cut2.clone(), trigger2.clone());
                std::thread::spawn(move || pipe(client, server, Some((cut3, trigger3))));
                let cut4 = cut2.clone();
                std::thread::spawn(move || pipe(s2, c2, Some((cut4, Arc::default()))));
            }
        });
        Proxy { port, cut, trigger }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn fail_at(&self, text: &str) {
        *self.trigger.lock().unwrap() = Some(text.to_string());
    }

    fn restore(&self) {
        *self.trigger.lock().unwrap() = None;
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn wrong_credentials_are_named() {
    // A server that checks every request's signature against the keys it issued (the
    // first three requests, which make the user, its policy and its key, excepted).
    let Some(s3) = S3Server::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]) else {
        return;
    };
    let issue = format!(
        "import boto3, json\n\
         kw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')\n\
         iam = boto3.client('iam', **kw)\n\
         iam.create_user(UserName='analyst')\n\
         iam.put_user_policy(UserName='analyst', PolicyName='s3', PolicyDocument=json.dumps(\
         {{'Version': '2012-10-17', 'Statement': [{{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}}]}}))\n\
         key = iam.create_access_key(UserName='analyst')['AccessKey']\n\
         print(key['AccessKeyId'], key['SecretAccessKey'])\n",
        s3.endpoint()
    );
    let out = Command::new(optional::python())
        .args(["-c", &issue])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let issued = stdout(&out);
    let (id, secret) = issued.trim().split_once(' ').unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let with = |secret: &str| {
        let mut env = aws_env(&s3.endpoint());
        env.retain(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"));
        env.push(("AWS_ACCESS_KEY_ID", id.to_string()));
        env.push(("AWS_SECRET_ACCESS_KEY", secret.to_string()));
        env
    };
    // The bucket, then the sample in it, with the issued key.
    let make = format!(
        "import boto3\nboto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='{id}', aws_secret_access_key='{secret}').create_bucket(Bucket='kpi')\n",
        s3.endpoint()
    );
    let out = Command::new(optional::python())
        .args(["-c", &make])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ok(
        &run_in(
            cwd.path(),
            &with(secret),
            &["gen-sample", "--out", "s3://kpi/wh"],
        ),
        "gen-sample",
    );
    let out = run_in(
        cwd.path(),
        &with(secret),
        &[
            "--data",
            "s3://kpi/wh",
            "query",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM departments",
        ],
    );
    assert!(ok(&out, "query").starts_with("n\n"));
    // A wrong secret: refused, named, and the secret never shown.
    let wrong = "not-the-secret-at-all";
    for args in [
        &["--data", "s3://kpi/wh", "query", "SELECT 1"][..],
        &["init", "s3://kpi/other"][..],
    ] {
        let out = run_in(cwd.path(), &with(wrong), args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("s3://kpi/") && err.contains("access denied: check the credentials"),
            "{args:?}: {err}"
        );
        assert!(!err.contains(wrong) && !err.contains(secret), "{err}");
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut.
#[allow(clippy::type_complexity)]
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    watch: Option<(Arc<AtomicBool>, Arc<Mutex<Option<String>>>)>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    from.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        if let Some((cut, _)) = &watch {
            if cut.load(Ordering::SeqCst) {
                break;
            }
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        if let Some((cut, trigger)) = &watch {
            if let Some(trigger) = trigger.lock().unwrap().as_deref() {
                tail.extend_from_slice(&buf[..n.min(4096)]);
                if tail.windows(trigger.len()).any(|w| w == trigger.as_bytes()) {
                    cut.store(true, Ordering::SeqCst);
                    break;
                }
                tail.drain(..tail.len().saturating_sub(256));
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn store_failures_are_named_and_lose_nothing() {
    let Some((s3, cwd, env)) = city("wh") else {
        return;
    };
    let data = "s3://kpi/wh";
    let fails = |env: &[(&str, String)], args: &[&str], says: &[&str]| {
        let out = run_in(cwd.path(), env, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        for text in says {
            assert!(err.contains(text), "{args:?}: wanted {text:?} in {err}");
        }
        assert!(
            !err.contains("panicked") && !err.contains("kpidb-test-secret-value"),
            "{err}"
        );
        err
    };
    // A bucket that does not exist, a prefix with no warehouse, a closed endpoint.
    fails(
        &env,
        &["--data", "s3://no-such-bucket/wh", "query", "SELECT 1"],
        &["s3://no-such-bucket/wh", "the bucket does not exist"],
    );
    fails(
        &env,
        &["--data", "s3://kpi/nothing", "query", "SELECT 1"],
        &[
            "warehouse s3://kpi/nothing does not exist",
            "kpidb init s3://kpi/nothing",
        ],
    );
    let closed = aws_env(&format!("http://127.0.0.1:{}", free_port()));
    fails(
        &closed,
        &["--data", data, "query", "SELECT 1"],
        &["s3://kpi/wh", "cannot be reached"],
    );

    // The store failing in the middle of an ingest: while data files are written, and
    // at the commit itself. Each time the table stays at its previous version, and the
    // next ingest goes through.
    let proxy = Proxy::start(s3.port);
    let through = aws_env(&proxy.endpoint());
    let csv = cwd.path().join("scores_2024.csv");
    scores_csv(&csv, 2024);
    let csv = csv.to_str().unwrap();
    let count = |env: &[(&str, String)]| {
        ok(
            &run_in(
                cwd.path(),
                env,
                &[
                    "--data",
                    data,
                    "query",
                    "--format",
                    "csv",
                    "SELECT count(*) AS n FROM dept_scores WHERE year = 2024",
                ],
            ),
            "count",
        )
    };
    for at in [
        "/kpi/wh/dept_scores/year",
        "PUT /kpi/wh/dept_scores/_delta_log/00000000000000000001.json",
    ] {
        proxy.fail_at(at);
        let err = fails(
            &through,
            &["--data", data, "ingest", "dept_scores", csv],
            &["s3://kpi/wh"],
        );
        assert!(!err.contains("internal"), "{err}");
        proxy.restore();
        assert_eq!(count(&env), "n\n0\n", "after a failure at {at}");
        let snapshot = ok(
            &run_in(cwd.path(), &env, &["--data", data, "snapshot"]),
            "snapshot",
        );
        assert!(
            snapshot.contains("dept_scores=0,"),
            "after a failure at {at}: {snapshot}"
        );
    }
    let out = run_in(
        cwd.path(),
        &through,
        &["--data", data, "ingest", "dept_scores", csv],
    );
    assert!(ok(&out, "ingest").contains("version 1"), "{}", stdout(&out));
    assert_eq!(count(&env), format!("n\n{}\n", count_rows(csv)));
}

fn count_rows(csv: &str) -> String {
    (std::fs::read_to_string(csv).unwrap().lines().count() - 1).to_string()
}

#[test]
fn serve_reads_only_the_warehouse_prefix() {
    let Some((s3, cwd, env)) = city("wh") else {
        return;
    };
    s3.bucket("other");
    ok(
        &run_in(
            cwd.path(),
            &env,
            &["gen-sample", "--out", "s3://kpi/private"],
        ),
        "gen-sample",
    );
    // Sources in the bucket: a CSV file in another bucket, and a Delta table under
    // another prefix of this one; configured, so readable, and nothing else is.
    let reply = http_with(
        s3.port,
        "PUT",
        "/other/plans/plans.csv",
        "dept_code,plan\n101,keep\n102,cut\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let sources = "[[sources]]\nname = \"plans\"\nformat = \"csv\"\nlocation = \"s3://other/plans/\"\n\
                   [[sources]]\nname = \"old_departments\"\nformat = \"delta\"\nlocation = \"s3://kpi/private/departments\"\n";
    let config = cwd.path().join("sources.toml");
    std::fs::write(&config, sources).unwrap();
    let joined = "SELECT p.dept_code, p.plan, d.dept_name = o.dept_name AS same FROM plans p \
                  JOIN departments d ON d.dept_code = CAST(p.dept_code AS VARCHAR) \
                  JOIN old_departments o ON o.dept_code = d.dept_code ORDER BY 1";
    let config_text = config.display().to_string();
    let out = run_in(
        cwd.path(),
        &env,
        &[
            "--config",
            &config_text,
            "--data",
            "s3://kpi/wh",
            "query",
            "--format",
            "csv",
            joined,
        ],
    );
    assert_eq!(
        ok(&out, "sources"),
        "dept_code,plan,same\n101,keep,true\n102,cut,true\n"
    );

    let before = (s3.keys("kpi", "").len(), s3.keys("other", "").len());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let served = Served::try_start(
        Path::new("s3://kpi/wh"),
        &format!("{SERVER_CONFIG}\n{sources}"),
        &[],
        &env_refs,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&served.pg_url(USER, PASSWORD), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query("SELECT count(*) FROM departments", &[])
            .await
            .unwrap();
        let n: i64 = rows[0].get(0);
        assert!(n > 0);
        let ranking = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries/dept_ranking.sql"),
        )
        .unwrap();
        let rows = client.simple_query(&ranking).await.unwrap();
        assert!(rows.len() > 10);
        let rows = client.query(joined, &[]).await.unwrap();
        assert_eq!(rows.len(), 2, "the configured sources are read");
        let rows = client.query(joined, &[]).await.unwrap();
        assert_eq!(rows.len(), 2, "the configured sources are read");
        for sql in [
            "CREATE EXTERNAL TABLE p STORED AS PARQUET LOCATION 's3://kpi/private/dept_scores/'",
            "CREATE EXTERNAL TABLE o STORED AS CSV LOCATION 's3://other/'",
            "SELECT * FROM 's3://kpi/private/departments/'",
            "COPY (SELECT 1 AS x) TO 's3://kpi/wh/x.parquet'",
            "COPY (SELECT 1 AS x) TO 's3://other/x.parquet'",
            "COPY (SELECT 1 AS x) TO '/tmp/kpidb-serve-x.parquet'",
            "INSERT INTO departments SELECT * FROM departments",
        ] {
            let err = client.simple_query(sql).await.unwrap_err();
            let text = err
                .as_db_error()
                .map(|e| e.message().to_string())
                .unwrap_or_else(|| err.to_string());
            assert!(!text.contains("panicked"), "{sql}: {text}");
        }
    });
    let after = (s3.keys("kpi", "").len(), s3.keys("other", "").len());
    assert_eq!(after, before, "the server wrote nothing");
    assert!(!Path::new("/tmp/kpidb-serve-x.parquet").exists());
}

/// Starts `kpidb scheduler`, returns it with its df:// address.
fn scheduler(cwd: &Path, env: &[(&str, String)]) -> (Child, String) {
    let mut cmd = kpidb();
    cmd.current_dir(cwd)
        .args(["scheduler", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("kpidb scheduler listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("scheduler address");
    (child, url)
}

/// Starts `kpidb executor` in its own empty directory and waits until it has reached
/// the scheduler.
fn executor(cwd: &Path, env: &[(&str, String)], url: &str) -> Child {
    std::fs::create_dir_all(cwd).unwrap();
    let mut cmd = kpidb();
    cmd.current_dir(cwd)
        .args([
            "executor",
            "--scheduler",
            url,
            "--bind-host",
            "127.0.0.1",
            "--port",
            "0",
            "--cores",
            "1",
        ])
        .env("RUST_LOG", "ballista_executor=info,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("Connected to scheduler") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("executor connects");
    child
}

#[test]
fn a_cluster_with_no_local_copy_answers_like_local() {
    let Some((s3, cwd, env)) = city("wh") else {
        return;
    };
    let data = "s3://kpi/wh";
    // Each executor with its own credentials (the [storage] of its own kpidb.toml),
    // in an empty directory: no copy of the warehouse anywhere but the bucket.
    let mut children = Vec::new();
    let (scheduler, url) = scheduler(cwd.path(), &[]);
    children.push(scheduler);
    for name in ["a", "b"] {
        let dir = cwd.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("kpidb.toml"),
            format!(
                "[storage]\nendpoint = \"{}\"\nallow_http = true\naccess_key_id_env = \"EXEC_KEY\"\nsecret_access_key_env = \"EXEC_SECRET\"\n",
                s3.endpoint()
            ),
        )
        .unwrap();
        let own = [
            ("EXEC_KEY", format!("executor-{name}")),
            ("EXEC_SECRET", "x".to_string()),
            ("KPIDB_CONFIG", dir.join("kpidb.toml").display().to_string()),
        ];
        children.push(executor(&dir, &own, &url));
    }
    let guard = Kill(children);
    every_query_agrees(cwd.path(), &env, data, &["--cluster", &url]);
    drop(guard);
}

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

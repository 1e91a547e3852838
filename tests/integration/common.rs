//! Helpers shared by the integration tests: a private copy of the sample warehouse
//! (tests never write to the shipped one) and running the `kpidb` binary as a user does.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn kpidb() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpidb"));
    cmd.env_remove("KPIDB_DATA");
    cmd
}

/// Runs kpidb with `args` against `data`.
pub fn run(data: &Path, args: &[&str]) -> Output {
    kpidb()
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("kpidb runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A writable copy of the shipped sample warehouse in a temporary directory.
pub fn sample_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("warehouse");
    copy_dir(&kpidb::sample::shipped::warehouse().unwrap(), &target);
    std::fs::remove_file(target.join(kpidb::storage::READ_ONLY))
        .expect("the shipped copy is marked read-only");
    (dir, target)
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Every queries/*.sql file, in name order.
pub fn query_paths() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("queries/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "queries/ holds {} files", files.len());
    files
}

/// The first column of the first row of `sql`'s answer as text, via the CLI's CSV output.
pub fn scalar(data: &Path, sql: &str) -> String {
    let out = run(data, &["query", "--format", "csv", sql]);
    assert!(out.status.success(), "query failed: {}", stderr(&out));
    let text = stdout(&out);
    text.lines()
        .nth(1)
        .unwrap_or("")
        .split(',')
        .next()
        .unwrap_or("")
        .to_string()
}

/// A runtime whose worker threads have the stack kpidb's own threads have
/// ([`kpidb::THREAD_STACK`]); `#[tokio::test]`'s are 2 MiB, too small for an
/// in-process cluster's futures in an unoptimised build.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_stack_size(kpidb::THREAD_STACK)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `test` on a worker of [`runtime`] (not on the test's own small thread).
pub fn run_async<F>(workers: usize, test: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = runtime(workers);
    let task = runtime.spawn(test);
    match runtime.block_on(task) {
        Ok(output) => output,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The latest version of `table`.
pub fn version(data: &Path, table: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let warehouse = kpidb::Warehouse::open(data).unwrap();
        warehouse.versions().await.unwrap()[table]
    })
}

/// A `kpidb serve` process on loopback ports chosen by the system, stopped on drop.
pub struct Served {
    child: std::process::Child,
    /// PostgreSQL address, "127.0.0.1:PORT".
    pub pg: String,
    /// HTTP base URL, "http://127.0.0.1:PORT" (https with TLS).
    pub http: String,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Serves `data` with `config` (kpidb.toml text) and extra `serve` flags.
    pub fn start(data: &Path, config: &str, flags: &[&str]) -> Served {
        Served::try_start(data, config, flags, &[]).unwrap_or_else(|e| panic!("serve failed: {e}"))
    }

    /// Like `start`, but returns what the server printed when it does not start.
    pub fn try_start(
        data: &Path,
        config: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Served, String> {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("kpidb.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut cmd = kpidb();
        cmd.arg("--data")
            .arg(data)
            .arg("--config")
            .arg(&config_path)
            .arg("serve");
        for (flag, default) in [
            ("--pg-listen", "127.0.0.1:0"),
            ("--http-listen", "127.0.0.1:0"),
        ] {
            if !flags.contains(&flag) {
                cmd.args([flag, default]);
            }
        }
        cmd.args(flags)
            .env_remove("KPIDB_USER")
            .env_remove("KPIDB_PASSWORD")
            .env_remove("KPIDB_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().expect("kpidb serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let (mut pg, mut http) = (None, None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while pg.is_none() || http.is_none() {
            match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(line) => {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words.as_slice() {
                        ["listening:", "pg", addr, ..] => pg = Some(addr.to_string()),
                        ["listening:", "http", url, ..] => http = Some(url.to_string()),
                        _ => {}
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        return Err(format!("{status}: {}", errors.lock().unwrap()));
                    }
                    if std::time::Instant::now() > deadline {
                        let _ = child.kill();
                        return Err("no listening lines within 120 s".into());
                    }
                }
            }
        }
        Ok(Served {
            child,
            pg: pg.unwrap(),
            http: http.unwrap(),
            dir,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pg_host(&self) -> &str {
        self.pg.split(':').next().unwrap()
    }

    pub fn pg_port(&self) -> u16 {
        self.pg.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A libpq-style connection string for `user`/`password`.
    pub fn pg_url(&self, user: &str, password: &str) -> String {
        format!(
            "host={} port={} user='{user}' password='{password}' dbname=kpidb",
            self.pg_host(),
            self.pg_port()
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration most server tests use: one user and one token.
pub const SERVER_CONFIG: &str = r#"
[server]
query_timeout = "20s"

[[server.users]]
name = "analyst"
password = "correct horse battery"

[[server.tokens]]
name = "scripts"
token = "0123456789abcdef0123456789abcdef"
"#;
/// `serve` flags for TLS with the test certificate (clients trust tests/fixtures/tls/ca.pem).
pub const TLS_FLAGS: &[&str] = &[
    "--tls-cert",
    "tests/fixtures/tls/cert.pem",
    "--tls-key",
    "tests/fixtures/tls/key.pem",
];
pub const USER: &str = "analyst";
pub const PASSWORD: &str = "correct horse battery";
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// `Response::json` for the tests. reqwest's own `json` feature stays off so the tests
/// build reqwest with exactly the features object_store already uses (see Cargo.toml):
/// one build of the dependencies for `cargo run` and `cargo test`.
pub trait JsonResponse {
    fn json<T: serde::de::DeserializeOwned>(
        self,
    ) -> impl std::future::Future<Output = Result<T, String>> + Send;
}

impl JsonResponse for reqwest::Response {
    async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        let body = self.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("{e} in {}", String::from_utf8_lossy(&body)))
    }
}

/// The physical plan one run of `sql` on `engine` executes (as `kpidb bench` plans it:
/// a kept plan's copy where there is one), and its answer as a table.
pub async fn planned_run(
    engine: &kpidb::Engine,
    sql: &str,
) -> (
    std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    String,
) {
    let (state, plan) = engine.sql(sql).await.unwrap().into_parts();
    let optimized = state.optimize(&plan).unwrap();
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, &state)
        .await
        .unwrap();
    let batches =
        datafusion::physical_plan::collect(std::sync::Arc::clone(&physical), state.task_ctx())
            .await
            .unwrap();
    let answer = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap();
    (physical, answer.to_string())
}

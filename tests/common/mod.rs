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

/// A copy of the shipped sample warehouse in a temporary directory.
pub fn sample_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("warehouse");
    copy_dir(&kpidb::config::shipped_sample(), &target);
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

/// The latest version of `table`.
pub fn version(data: &Path, table: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let warehouse = kpidb::Warehouse::open(data).unwrap();
        warehouse.versions().await.unwrap()[table]
    })
}

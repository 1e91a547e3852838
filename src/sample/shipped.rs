//! What ships inside the binary: the sample warehouse (`sample_data/warehouse`) and the
//! shipped reports (`reports.toml` with its `queries/report/` files). An installed
//! kpidb needs no source tree: on first use each is written out once, whole, to the
//! user's cache directory (`$XDG_CACHE_HOME/kpidb`, else `~/.cache/kpidb`), in a
//! directory named by a hash of its contents, so a newer binary never reads an older
//! copy and two processes starting at once never see half a copy.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir, DirEntry};

use crate::{Error, Result};

static WAREHOUSE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sample_data/warehouse");
static REPORT_QUERIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/queries/report");
static REPORTS_TOML: &str = include_str!("../../reports.toml");

/// Written last into a complete copy.
const COMPLETE: &str = ".kpidb-complete";

/// Why the copy of the shipped sample refuses writes ([`crate::storage::READ_ONLY`]):
/// every command without a warehouse of its own reads it.
const READ_ONLY_REASON: &str = "it is kpidb's shipped sample warehouse, which every \
command without --data reads. To load or change data, make a warehouse of your own: \
`kpidb gen-sample --out DIR` (a copy of the sample city) or `kpidb init DIR` (empty), \
then pass --data DIR (or set KPIDB_DATA, or `data` in kpidb.toml).\n";

/// The shipped sample warehouse, written out on first use, read-only.
pub fn warehouse() -> Result<PathBuf> {
    let mut files = embedded(&WAREHOUSE, Path::new(""));
    files.push((
        PathBuf::from(crate::storage::READ_ONLY),
        READ_ONLY_REASON.as_bytes(),
    ));
    write_out("sample-warehouse", &files)
}

/// The shipped reports file, with the query files it names beside it.
pub fn reports() -> Result<PathBuf> {
    let mut files = embedded(&REPORT_QUERIES, Path::new("queries/report"));
    files.push((PathBuf::from("reports.toml"), REPORTS_TOML.as_bytes()));
    Ok(write_out("reports", &files)?.join("reports.toml"))
}

/// Every file under `dir`, with its path below `prefix`.
fn embedded(dir: &'static Dir<'static>, prefix: &Path) -> Vec<(PathBuf, &'static [u8])> {
    let mut files = Vec::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => pending.push(sub),
                DirEntry::File(file) => files.push((prefix.join(file.path()), file.contents())),
            }
        }
    }
    files.sort();
    files
}

/// `<cache>/<name>-<hash>`, written from `files` unless a complete copy is there.
fn write_out(name: &str, files: &[(PathBuf, &'static [u8])]) -> Result<PathBuf> {
    let mut hasher = std::hash::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    files.hash(&mut hasher);
    let root = cache_dir()?;
    let dir = root.join(format!("{name}-{:016x}", hasher.finish()));
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    let staging = root.join(format!(".{name}-{}-{}", std::process::id(), unique()));
    let written = (|| -> std::io::Result<()> {
        for (path, contents) in files {
            let path = staging.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)?;
        }
        std::fs::write(staging.join(COMPLETE), b"")
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::io(&staging, e));
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        // Another process finished first (or an incomplete copy is in the way).
        Err(_) if dir.join(COMPLETE).is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&staging, &dir).map_err(|e| Error::io(&dir, e))?;
            Ok(dir)
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn cache_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join("kpidb");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sample_is_written_out_whole_and_once() {
        let first = warehouse().unwrap();
        for table in crate::model::TABLES {
            assert!(
                first.join(table.name).join("_delta_log").is_dir(),
                "{}",
                table.name
            );
        }
        assert_eq!(warehouse().unwrap(), first, "the same copy is used again");
        let reports = reports().unwrap();
        let text = std::fs::read_to_string(&reports).unwrap();
        assert!(text.contains("[report.annual_ranking]"));
        assert!(reports
            .parent()
            .unwrap()
            .join("queries/report/01_ranking.sql")
            .is_file());
    }
}

//! Where report runs are kept: `<output_dir>/<report>/<UTC stamp>/`, each run's files
//! beside a `manifest.json` that records its parameters, the table versions it read
//! and the SQL of every section. A run is written into a hidden directory and renamed
//! into place, so a reader (the HTTP API) never sees half a run; the oldest runs
//! beyond `keep` are removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run::Outcome;
use super::spec::{Format, Report};
use super::{csv, html, markdown, xlsx};
use crate::{Error, Result};

pub const MANIFEST: &str = "manifest.json";

/// What a run wrote and read, as saved in `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub report: String,
    pub title: String,
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub timezone: String,
    /// The `--as-of-version` pin that reproduces this run.
    pub as_of_version: String,
    pub rerun: String,
    pub versions: std::collections::BTreeMap<String, u64>,
    pub sections: Vec<ManifestSection>,
    /// Each output by format (`xlsx`, `html`, `md`; `csv` names the first section's file).
    pub files: Vec<ManifestFile>,
    /// What the reader should know: a newer year passed over as incomplete, empty sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The run's directory (not saved; filled in when read back).
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestSection {
    pub title: String,
    pub sql: String,
    pub tables: Vec<String>,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestFile {
    pub format: String,
    /// File name within the run directory.
    pub file: String,
    /// For CSV: which section (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<usize>,
}

impl Manifest {
    pub fn file(&self, format: Format, section: Option<usize>) -> Option<&ManifestFile> {
        self.files.iter().find(|f| {
            f.format == format.extension()
                && (format != Format::Csv || f.section == Some(section.unwrap_or(1)))
        })
    }
}

/// Writes every format of `outcome` into `dir` (created if missing) with its manifest.
pub fn write(outcome: &Outcome, formats: &[Format], dir: &Path) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let stem = outcome.file_stem();
    let mut files = Vec::new();
    for format in formats {
        match format {
            Format::Xlsx => {
                let name = format!("{stem}.xlsx");
                xlsx::write(outcome, &dir.join(&name))?;
                files.push(file(*format, name, None));
            }
            Format::Html => {
                let name = format!("{stem}.html");
                save(&dir.join(&name), html::render(outcome).as_bytes())?;
                files.push(file(*format, name, None));
            }
            Format::Md => {
                let name = format!("{stem}.md");
                save(&dir.join(&name), markdown::render(outcome).as_bytes())?;
                files.push(file(*format, name, None));
            }
            Format::Csv => {
                for (i, section) in outcome.sections.iter().enumerate() {
                    let name = format!("{stem}.section{}.csv", i + 1);
                    save(
                        &dir.join(&name),
                        &csv::render(section, outcome.report.csv_bom)?,
                    )?;
                    files.push(file(*format, name, Some(i + 1)));
                }
            }
        }
    }
    let manifest = Manifest {
        report: outcome.report.name.clone(),
        title: outcome.report.title.clone(),
        params: outcome
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
            .collect(),
        generated_at: outcome.generated_at.to_rfc3339(),
        timezone: outcome.report.timezone.name().to_string(),
        as_of_version: outcome.pin(),
        rerun: outcome.rerun_command(),
        versions: outcome.versions.clone(),
        sections: outcome
            .sections
            .iter()
            .map(|s| ManifestSection {
                title: s.title.clone(),
                sql: s.sql.clone(),
                tables: s.tables.clone(),
                rows: s.table.rows.len(),
            })
            .collect(),
        files,
        notes: outcome.notes.clone(),
        dir: dir.to_path_buf(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::usage(e.to_string()))?;
    save(&dir.join(MANIFEST), &json)?;
    Ok(manifest)
}

fn file(format: Format, file: String, section: Option<usize>) -> ManifestFile {
    ManifestFile {
        format: format.extension().to_string(),
        file,
        section,
    }
}

fn save(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// The directory holding a report's runs.
pub fn report_dir(report: &Report) -> PathBuf {
    report.output_dir.join(&report.name)
}

/// Writes a run into the report's archive and prunes runs beyond `keep`.
pub fn archive(outcome: &Outcome, formats: &[Format]) -> Result<Manifest> {
    let root = report_dir(&outcome.report);
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let stamp = outcome.generated_at.format("%Y%m%dT%H%M%SZ").to_string();
    // A hidden directory of this process and run alone, so runs started in the same
    // second (two `report run`s, or a run beside the scheduler) never mix files.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = root.join(format!(
        ".{stamp}.{}.{}.partial",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut manifest = match write(outcome, formats, &partial) {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let mut n = 1;
    let done = loop {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let done = root.join(&name);
        // rename fails when the target exists (non-empty), so a name is never shared.
        if !done.exists() && std::fs::rename(&partial, &done).is_ok() {
            break done;
        }
        n += 1;
        if n > 100 {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(Error::usage(format!(
                "report '{}': could not name a run directory under {}",
                outcome.report.name,
                root.display()
            )));
        }
    };
    manifest.dir = done;
    prune(&root, outcome.report.keep);
    Ok(manifest)
}

/// Finished runs, oldest first (stamps sort by time).
fn runs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
                && p.join(MANIFEST).is_file()
        })
        .collect();
    runs.sort_by_key(|p| stamp_key(p));
    runs
}

/// `20261129T080000Z-2` sorts after `20261129T080000Z`.
fn stamp_key(path: &Path) -> (String, u32) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.split_once('-') {
        Some((stamp, n)) => (stamp.to_string(), n.parse().unwrap_or(0)),
        None => (name.to_string(), 1),
    }
}

fn prune(root: &Path, keep: usize) {
    let runs = runs(root);
    if runs.len() > keep {
        for old in &runs[..runs.len() - keep] {
            if let Err(e) = std::fs::remove_dir_all(old) {
                log::warn!("report archive: could not remove {}: {e}", old.display());
            }
        }
    }
}

/// The newest finished run of `report`, if any.
pub fn latest(report: &Report) -> Result<Option<Manifest>> {
    let Some(dir) = runs(&report_dir(report)).pop() else {
        return Ok(None);
    };
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Error::input(path.display(), format!("not a report manifest: {e}")))?;
    manifest.dir = dir;
    Ok(Some(manifest))
}

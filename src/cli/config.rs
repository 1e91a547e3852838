//! `kpidb.toml` (`--config FILE` or `KPIDB_CONFIG`): the file gathers the settings
//! of the layers below, each declared by its owner (`[functions]` in
//! [`crate::functions`], `[server]` in [`crate::server`]), and says where the warehouse
//! is: `--data`, else `KPIDB_DATA`, else the file's `data`, else the sample shipped
//! inside the binary ([`crate::sample::shipped`]), so a first command answers real
//! questions.

use std::path::PathBuf;

/// The configuration file. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The warehouse directory (relative to this file); `--data` / KPIDB_DATA win.
    pub data: Option<PathBuf>,
    /// The reports file (relative to this file); `--reports` / KPIDB_REPORTS win.
    pub reports: Option<PathBuf>,
    /// Where report runs are archived (relative to this file), for every report
    /// [default: each report's `output_dir` beside its reports file; `./reports` for
    /// the shipped reports].
    pub archive: Option<PathBuf>,
    #[serde(default)]
    pub functions: crate::functions::FunctionsConfig,
    /// The time zone times are read in (`--as-of`) and printed in (`kpidb history`),
    /// an IANA name [default: Asia/Shanghai, like the reports]; KPIDB_TIMEZONE wins.
    /// Times with an explicit offset are always accepted.
    pub timezone: Option<String>,
    /// Run queries, `kpidb serve` and reports on the Ballista cluster whose scheduler
    /// is at this df://HOST:PORT; `--cluster` / KPIDB_CLUSTER win.
    pub cluster: Option<String>,
    /// The cluster's mutual TLS (CA, this member's certificate and key), for clients
    /// of a cluster and for `kpidb scheduler` / `kpidb executor`.
    pub cluster_tls: Option<crate::cluster::tls::ClusterTls>,
    /// `kpidb serve` settings.
    #[serde(default)]
    pub server: crate::server::ServerConfig,
    /// Read-only tables from Parquet, CSV or Delta data outside the warehouse.
    #[serde(default)]
    pub sources: Vec<crate::storage::Source>,
    /// How to reach an S3-compatible object store, for `data = "s3://BUCKET/PREFIX"`.
    #[serde(default)]
    pub storage: crate::storage::StoreSettings,
}

impl Config {
    /// Reads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&std::path::Path>) -> crate::Result<Self> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
        toml::from_str(&text)
            .map_err(|e| crate::Error::input(path.display(), format!("bad configuration: {e}")))
    }

    /// The warehouse: the `--data` flag (or KPIDB_DATA), else this file's `data`,
    /// else the shipped sample.
    pub fn data_dir(
        &self,
        flag: Option<PathBuf>,
        file: Option<&std::path::Path>,
    ) -> crate::Result<PathBuf> {
        if let Some(flag) = flag {
            return Ok(flag);
        }
        match &self.data {
            Some(data) if data.to_string_lossy().contains("://") => Ok(data.clone()),
            Some(data) => Ok(relative_to(file, data)),
            None => crate::sample::shipped::warehouse(),
        }
    }

    /// The reports file this configuration names, relative to the configuration file.
    pub fn reports_file(&self, file: Option<&std::path::Path>) -> Option<PathBuf> {
        self.reports
            .as_ref()
            .map(|reports| relative_to(file, reports))
    }

    /// The report archive this configuration names, relative to the configuration file.
    pub fn archive_dir(&self, file: Option<&std::path::Path>) -> Option<PathBuf> {
        self.archive
            .as_ref()
            .map(|archive| relative_to(file, archive))
    }

    /// The cluster's TLS files, relative to the configuration file.
    pub fn cluster_tls(
        &self,
        file: Option<&std::path::Path>,
    ) -> Option<crate::cluster::tls::ClusterTls> {
        let base = file.and_then(|f| f.parent());
        self.cluster_tls.as_ref().map(|tls| tls.relative_to(base))
    }

    /// The cluster to run on: the `--cluster` flag, else this file's `cluster`, else none.
    pub fn cluster(
        &self,
        flag: Option<&str>,
        file: Option<&std::path::Path>,
    ) -> crate::Result<Option<crate::cluster::ClusterUrl>> {
        match flag.or(self.cluster.as_deref()) {
            Some(text) if !text.trim().is_empty() => Ok(Some(
                crate::cluster::ClusterUrl::parse(text)?.with_tls(self.cluster_tls(file)),
            )),
            _ => Ok(None),
        }
    }

    /// The configured time zone: KPIDB_TIMEZONE, else this file's `timezone`, else Asia/Shanghai.
    pub fn zone(&self) -> crate::Result<chrono_tz::Tz> {
        let (name, source) = match std::env::var("KPIDB_TIMEZONE") {
            Ok(name) if !name.trim().is_empty() => (name, "KPIDB_TIMEZONE"),
            _ => match &self.timezone {
                Some(name) => (name.clone(), "kpidb.toml `timezone`"),
                None => return Ok(chrono_tz::Asia::Shanghai),
            },
        };
        name.trim().parse().map_err(|_| {
            crate::Error::usage(format!(
                "{source} '{name}' is not a time zone; use an IANA name such as \
                 Asia/Shanghai, Asia/Urumqi or UTC"
            ))
        })
    }

    /// The `[[sources]]`, their names checked (once each) and locations relative to
    /// the configuration file.
    pub fn sources(
        &self,
        file: Option<&std::path::Path>,
    ) -> crate::Result<Vec<crate::storage::Source>> {
        let base = file.and_then(|f| f.parent());
        let mut seen = std::collections::BTreeSet::new();
        self.sources
            .iter()
            .map(|source| {
                if !seen.insert(source.name.as_str()) {
                    return Err(crate::Error::usage(format!(
                        "[[sources]] name '{}' is given twice",
                        source.name
                    )));
                }
                source.resolved(base)
            })
            .collect()
    }

    pub fn function_options(&self) -> crate::functions::FunctionOptions {
        self.functions.options()
    }
}

/// `path` as written in the configuration `file`: relative to the file's directory.
fn relative_to(file: Option<&std::path::Path>, path: &std::path::Path) -> PathBuf {
    file.and_then(|f| f.parent())
        .map(|dir| dir.join(path))
        .unwrap_or_else(|| path.to_path_buf())
}

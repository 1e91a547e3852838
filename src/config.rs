//! Where kpidb finds its warehouse: `--data`, else `KPIDB_DATA`, else the sample
//! warehouse shipped in `sample_data/`, so a first command answers real questions.
//! And the settings of `kpidb.toml` (`--config FILE` or `KPIDB_CONFIG`).

use std::path::PathBuf;

/// The sample warehouse shipped with the source tree.
pub fn shipped_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sample_data")
        .join("warehouse")
}

/// The warehouse directory to use, given the `--data` flag (clap fills it from
/// `KPIDB_DATA` when the flag is absent).
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(shipped_sample)
}

/// The configuration file. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub functions: FunctionsConfig,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionsConfig {
    /// Default scheme of perf_grade: "mof" (优/良/中/差), "local" (优秀/良好/一般/较差) or "en".
    #[serde(default)]
    pub grade_scheme: crate::functions::GradeScheme,
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

    pub fn function_options(&self) -> crate::functions::FunctionOptions {
        crate::functions::FunctionOptions {
            grade_scheme: self.functions.grade_scheme,
        }
    }
}

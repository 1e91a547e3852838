//! Where kpidb finds its warehouse: `--data`, else `KPIDB_DATA`, else the sample
//! warehouse shipped in `sample_data/`, so a first command answers real questions.

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

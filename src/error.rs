//! The one error type of kpidb, split by who caused the error: the user's command,
//! the user's data, or the storage and query engines underneath.

use std::fmt;
use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command, flag or name the user gave that cannot be acted on.
    #[error("{0}")]
    Usage(String),

    /// An input file that cannot be read as a table (encoding, format, truncation).
    #[error("{path}: {message}")]
    Input { path: String, message: String },

    /// Rows that break the data model's rules; nothing was written.
    #[error("{0}")]
    Validation(Box<ValidationReport>),

    /// A file-system operation on a path the user named or the warehouse owns.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// An object store (a bucket) that failed or refused; the URL names the place,
    /// never a secret.
    #[error("{url}: {message}")]
    Store { url: String, message: String },

    #[error("{}", clean_datafusion_message(.0))]
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error("warehouse: {0}")]
    Delta(#[from] deltalake::DeltaTableError),

    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn input(path: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        Error::Input {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Whether the error is a write to a closed pipe (`kpidb functions | head -1`),
    /// which a command-line tool ends on quietly, with success.
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return true;
                }
            }
            cause = e.source();
        }
        false
    }
}

impl From<ValidationReport> for Error {
    fn from(report: ValidationReport) -> Self {
        Error::Validation(Box::new(report))
    }
}

/// DataFusion wraps errors in context layers ("External error: ...", backtraces);
/// a user wants the innermost sentence, prefixed by what kind of mistake it was.
fn clean_datafusion_message(err: &datafusion::error::DataFusionError) -> String {
    use datafusion::error::DataFusionError as E;
    match err.find_root() {
        E::SQL(e, _) => format!("SQL error: {e}"),
        E::Plan(m) => format!("planning error: {m}"),
        E::Execution(m) => format!("execution error: {m}"),
        E::SchemaError(e, _) => format!("schema error: {e}"),
        E::NotImplemented(m) => format!("not supported: {m}"),
        E::ResourcesExhausted(m) => format!("resources exhausted: {m}"),
        E::Configuration(m) => format!("configuration error: {m}"),
        other => other.to_string(),
    }
}

/// How many problems a report prints; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 30;

/// One broken rule.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file as the user named it.
    pub file: Arc<str>,
    /// The file's place among the inputs, so problems sort by file, then row.
    pub order: usize,
    pub line: usize,
    pub column: String,
    pub value: String,
    pub rule: String,
}

/// Every problem found in one ingest; nothing is written when it is not empty.
#[derive(Debug, Clone)]
pub struct ValidationReport {
    /// The input as the user named it (a file, a directory, or several files).
    pub file: String,
    pub table: String,
    pub problems: Vec<Problem>,
    /// Problems found beyond those kept in `problems`.
    pub uncounted: usize,
    /// Said under the first line: how the check came about (a re-check after a
    /// concurrent commit).
    pub note: Option<String>,
}

impl ValidationReport {
    pub fn total(&self) -> usize {
        self.problems.len() + self.uncounted
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.total();
        writeln!(
            f,
            "{}: {n} problem{} found; nothing was written to {}",
            self.file,
            if n == 1 { "" } else { "s" },
            self.table
        )?;
        if let Some(note) = &self.note {
            writeln!(f, "  ({note})")?;
        }
        for p in self.problems.iter().take(SHOWN_PROBLEMS) {
            writeln!(
                f,
                "  {} row {}, column {}, value \"{}\": {}",
                p.file, p.line, p.column, p.value, p.rule
            )?;
        }
        if n > SHOWN_PROBLEMS {
            writeln!(f, "  … and {} more problems", n - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationReport {}

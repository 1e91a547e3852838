//! The one error type of kpidb, split by who caused the error: the user's command,
//! the user's data, or the storage and query engines underneath.

use crate::ingest::validate::ValidationReport;

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

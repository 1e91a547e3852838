//! One mapping from what went wrong to what each protocol says: an HTTP status and a
//! stable code for the JSON API, a SQLSTATE for PostgreSQL clients, and the message.

use datafusion::error::DataFusionError;

use super::limits::Stopped;
use super::policy::ReadOnly;
use crate::shape::TooComplex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// Stable name for the HTTP API (`read_only`, `syntax_error`, …).
    pub code: &'static str,
    pub sqlstate: &'static str,
    pub status: u16,
    pub message: String,
}

impl ClientError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        let (sqlstate, status) = match code {
            "read_only" => ("42501", 403),
            "syntax_error" => ("42601", 400),
            "undefined_table" => ("42P01", 400),
            "undefined_column" => ("42703", 400),
            "undefined_function" => ("42883", 400),
            "planning_error" => ("42000", 400),
            "bad_request" => ("22023", 400),
            "not_supported" => ("0A000", 400),
            "data_error" => ("22000", 422),
            "timeout" => ("57014", 504),
            "cancelled" => ("57014", 499),
            "out_of_memory" => ("53200", 503),
            "unauthorized" => ("28P01", 401),
            "not_found" => ("42P01", 404),
            "not_acceptable" => ("0A000", 406),
            "too_many_connections" => ("53300", 503),
            "too_complex" => ("54001", 400),
            "invalid_regex" => ("2201B", 400),
            _ => ("XX000", 500),
        };
        ClientError {
            code,
            sqlstate,
            status,
            message: message.into(),
        }
    }

    pub fn from_datafusion(error: &DataFusionError) -> Self {
        let mut client = Self::classify(error);
        client.message = plain(&client.message);
        if client.code == "internal" && is_signature_mismatch(&client.message) {
            client = ClientError::new("undefined_function", client.message);
        }
        client
    }

    fn classify(error: &DataFusionError) -> Self {
        use DataFusionError as E;
        let root = error.find_root();
        if let E::External(inner) = root {
            if let Some(read_only) = inner.downcast_ref::<ReadOnly>() {
                return ClientError::new("read_only", read_only.to_string());
            }
            if inner.to_string().starts_with("regex parse error") {
                return ClientError::new(
                    "invalid_regex",
                    format!("invalid regular expression: {inner}"),
                );
            }
            if let Some(complex) = inner.downcast_ref::<TooComplex>() {
                return ClientError::new("too_complex", complex.to_string());
            }
            if let Some(stopped) = inner.downcast_ref::<Stopped>() {
                let code = match stopped {
                    Stopped::Timeout(_) => "timeout",
                    Stopped::Cancelled => "cancelled",
                };
                return ClientError::new(code, stopped.to_string());
            }
        }
        match root {
            E::SQL(e, _) => ClientError::new("syntax_error", format!("SQL error: {e}")),
            E::Plan(m) if m.contains("table") && m.contains("not found") => {
                ClientError::new("undefined_table", m.clone())
            }
            E::Plan(m) if m.contains("Invalid function") || m.contains("function") && m.contains("not found") => {
                ClientError::new("undefined_function", m.clone())
            }
            E::Plan(m) => ClientError::new("planning_error", m.clone()),
            E::SchemaError(e, _) => ClientError::new("undefined_column", e.to_string()),
            E::NotImplemented(m) => ClientError::new("not_supported", format!("not supported: {m}")),
            E::ResourcesExhausted(m) => ClientError::new(
                "out_of_memory",
                format!(
                    "query stopped: it needs more memory than the server's memory_limit allows ({m})"
                ),
            ),
            E::Execution(m) => ClientError::new("data_error", m.clone()),
            E::ArrowError(e, _) => ClientError::new("data_error", e.to_string()),
            // An error in a filter evaluated while reading Parquet (a function refusing
            // a value) reaches here as text inside the reader's error.
            E::ParquetError(e) => ClientError::new("data_error", inner_execution(&e.to_string())),
            E::Configuration(m) => ClientError::new("bad_request", m.clone()),
            other => ClientError::new("internal", other.to_string()),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `…Execution("what went wrong")…` → `what went wrong`; other text as it is.
fn inner_execution(text: &str) -> String {
    const OPEN: &str = "Execution(\"";
    match text.find(OPEN) {
        Some(start) => {
            let rest = &text[start + OPEN.len()..];
            let end = rest.rfind("\")").unwrap_or(rest.len());
            rest[..end].replace("\\\"", "\"")
        }
        None => text.to_string(),
    }
}

/// DataFusion reports a call with arguments no signature accepts as an internal
/// error; it is the caller's mistake.
fn is_signature_mismatch(message: &str) -> bool {
    message.contains("failed to match any signature") || message.contains("No function matches")
}

/// The message without DataFusion's own framing for internal errors (a prefix and a
/// request to report a bug, which is not for kpidb's users to do).
fn plain(message: &str) -> String {
    const BUG: &str = "This issue was likely caused by a bug in DataFusion's code. \
        Please help us to resolve this by filing a bug report in our issue tracker: \
        https://github.com/apache/datafusion/issues";
    let mut text = message.replace(BUG, "").replace("Internal error: ", "");
    while text.contains(".\n.") {
        text = text.replace(".\n.", ".");
    }
    text.replace(".\n", ". ").trim().to_string()
}

/// What a caught panic said, for the log and the client.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_framing_is_taken_off_and_filter_errors_are_data_errors() {
        let reader = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::General(
                "Compute error: Error evaluating filter predicate: \
                 Execution(\"perf_grade: score 1e308 is outside 0..100\")"
                    .into(),
            ),
        ));
        let client = ClientError::from_datafusion(&reader);
        assert_eq!(client.sqlstate, "22000");
        assert_eq!(client.message, "perf_grade: score 1e308 is outside 0..100");
        let internal =
            DataFusionError::Internal("Function 'avg' failed to match any signature".into());
        let client = ClientError::from_datafusion(&internal);
        assert_eq!(client.sqlstate, "42883");
        assert!(!client.message.contains("bug"), "{}", client.message);
    }
}

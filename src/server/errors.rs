//! One mapping from what went wrong to what each protocol says: an HTTP status and a
//! stable code for the JSON API, a SQLSTATE for PostgreSQL clients, and the message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use datafusion::error::DataFusionError;
use serde_json::json;

use super::limits::Stopped;
use super::policy::ReadOnly;
use crate::shape::TooComplex;

/// Every kind of error a client is told. Its stable name (HTTP API), SQLSTATE
/// (PostgreSQL clients) and HTTP status are mapped here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    ReadOnly,
    SyntaxError,
    UndefinedTable,
    UndefinedColumn,
    UndefinedFunction,
    PlanningError,
    BadRequest,
    NotSupported,
    DataError,
    Timeout,
    Cancelled,
    OutOfMemory,
    Unauthorized,
    NotFound,
    NotAcceptable,
    TooManyConnections,
    TooComplex,
    InvalidRegex,
    TlsRequired,
    ReportRunning,
    Internal,
}

impl Code {
    /// (name, SQLSTATE, HTTP status).
    const fn mapping(self) -> (&'static str, &'static str, u16) {
        match self {
            Code::ReadOnly => ("read_only", "42501", 403),
            Code::SyntaxError => ("syntax_error", "42601", 400),
            Code::UndefinedTable => ("undefined_table", "42P01", 400),
            Code::UndefinedColumn => ("undefined_column", "42703", 400),
            Code::UndefinedFunction => ("undefined_function", "42883", 400),
            Code::PlanningError => ("planning_error", "42000", 400),
            Code::BadRequest => ("bad_request", "22023", 400),
            Code::NotSupported => ("not_supported", "0A000", 400),
            Code::DataError => ("data_error", "22000", 422),
            Code::Timeout => ("timeout", "57014", 504),
            Code::Cancelled => ("cancelled", "57014", 499),
            Code::OutOfMemory => ("out_of_memory", "53200", 503),
            Code::Unauthorized => ("unauthorized", "28P01", 401),
            Code::NotFound => ("not_found", "42P01", 404),
            Code::NotAcceptable => ("not_acceptable", "0A000", 406),
            Code::TooManyConnections => ("too_many_connections", "53300", 503),
            Code::TooComplex => ("too_complex", "54001", 400),
            Code::InvalidRegex => ("invalid_regex", "2201B", 400),
            Code::TlsRequired => ("tls_required", "28000", 403),
            Code::ReportRunning => ("report_running", "55006", 409),
            Code::Internal => ("internal", "XX000", 500),
        }
    }

    /// The stable name the HTTP API and the metrics use (`read_only`, `syntax_error`, …).
    pub const fn name(self) -> &'static str {
        self.mapping().0
    }

    pub const fn sqlstate(self) -> &'static str {
        self.mapping().1
    }

    pub const fn status(self) -> u16 {
        self.mapping().2
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: Code,
    pub message: String,
}

impl ClientError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ClientError {
            code,
            message: message.into(),
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        self.code.sqlstate()
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn from_datafusion(error: &DataFusionError) -> Self {
        let mut client = Self::classify(error);
        client.message = plain(&client.message);
        if client.code == Code::Internal && is_signature_mismatch(&client.message) {
            client = ClientError::new(Code::UndefinedFunction, client.message);
        }
        client
    }

    fn classify(error: &DataFusionError) -> Self {
        use DataFusionError as E;
        let root = error.find_root();
        if let E::External(inner) = root {
            if let Some(read_only) = inner.downcast_ref::<ReadOnly>() {
                return ClientError::new(Code::ReadOnly, read_only.to_string());
            }
            if inner.to_string().starts_with("regex parse error") {
                return ClientError::new(
                    Code::InvalidRegex,
                    format!("invalid regular expression: {inner}"),
                );
            }
            if let Some(complex) = inner.downcast_ref::<TooComplex>() {
                return ClientError::new(Code::TooComplex, complex.to_string());
            }
            if let Some(stopped) = inner.downcast_ref::<Stopped>() {
                let code = match stopped {
                    Stopped::Timeout(_) => Code::Timeout,
                    Stopped::Cancelled => Code::Cancelled,
                };
                return ClientError::new(code, stopped.to_string());
            }
        }
        match root {
            E::SQL(e, _) => ClientError::new(Code::SyntaxError, format!("SQL error: {e}")),
            E::Plan(m) if m.contains("table") && m.contains("not found") => {
                ClientError::new(Code::UndefinedTable, m.clone())
            }
            E::Plan(m) if m.contains("Invalid function") || m.contains("function") && m.contains("not found") => {
                ClientError::new(Code::UndefinedFunction, m.clone())
            }
            E::Plan(m) => ClientError::new(Code::PlanningError, m.clone()),
            E::SchemaError(e, _) => ClientError::new(Code::UndefinedColumn, e.to_string()),
            E::NotImplemented(m) => ClientError::new(Code::NotSupported, format!("not supported: {m}")),
            E::ResourcesExhausted(m) => ClientError::new(
                Code::OutOfMemory,
                format!(
                    "query stopped: it needs more memory than the server's memory_limit allows ({m})"
                ),
            ),
            E::Execution(m) => ClientError::new(Code::DataError, m.clone()),
            E::ArrowError(e, _) => ClientError::new(Code::DataError, e.to_string()),
            // An error in a filter evaluated while reading Parquet (a function refusing
            // a value) reaches here as text inside the reader's error.
            E::ParquetError(e) => ClientError::new(Code::DataError, inner_execution(&e.to_string())),
            E::Configuration(m) => ClientError::new(Code::BadRequest, m.clone()),
            other => ClientError::new(Code::Internal, other.to_string()),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The HTTP answer for `error`: its status and `{"code", "message"}` as JSON.
pub fn http_response(error: ClientError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        Json(json!({"code": error.code.name(), "message": error.message})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kpidb\", Basic realm=\"kpidb\""),
        );
    }
    response
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
        assert_eq!(client.sqlstate(), "22000");
        assert_eq!(client.message, "perf_grade: score 1e308 is outside 0..100");
        let internal =
            DataFusionError::Internal("Function 'avg' failed to match any signature".into());
        let client = ClientError::from_datafusion(&internal);
        assert_eq!(client.sqlstate(), "42883");
        assert!(!client.message.contains("bug"), "{}", client.message);
    }
}

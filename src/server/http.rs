//! The HTTP API (axum): `POST /api/sql` streaming JSON, CSV, Arrow IPC or Parquet;
//! `GET /api/tables[/{name}]`; `GET /api/reports` ([`super::reports`]); `GET /healthz`; `GET /metrics`. Errors are JSON
//! `{code, message}` with the matching status.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::errors::{http_response, panic_message, ClientError, Code};
use super::limits::{plan_query, Limits};
use super::policy::{self, Verdict};
use super::Shared;
use crate::model::TABLES;

const PROTOCOL: &str = "http";

pub fn router(shared: Arc<Shared>) -> Router {
    let slots = Arc::new(Semaphore::new(shared.settings.max_connections));
    let api = Router::new()
        .route("/api/sql", post(sql))
        .route("/api/tables", get(tables))
        .route("/api/tables/{name}", get(table))
        .route("/api/reports", get(super::reports::list))
        .route("/api/reports/{name}/latest", get(super::reports::latest))
        .route("/api/reports/{name}/run", post(super::reports::run))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/health", get(healthz))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn(
            |request: Request, next: Next| async move {
                let path = request.uri().path().to_string();
                AssertUnwindSafe(next.run(request))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| http_response(panicked(&path, panic)))
            },
        ))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let slots = slots.clone();
            async move {
                let Ok(_slot) = slots.try_acquire_owned() else {
                    return http_response(ClientError::new(
                        Code::TooManyConnections,
                        "the server is at max_connections; retry shortly",
                    ));
                };
                next.run(request).await
            }
        }))
        .with_state(shared)
}

async fn not_found() -> Response {
    http_response(ClientError::new(
        Code::NotFound,
        "no such endpoint; see POST /api/sql, GET /api/tables, GET /api/reports, \
         POST /api/reports/{name}/run, GET /healthz, GET /metrics",
    ))
}

async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match shared.accounts.http(header) {
        Ok(_who) => {
            let _open = shared.metrics.connection(PROTOCOL);
            next.run(request).await
        }
        Err(message) => {
            shared.metrics.auth_failed(PROTOCOL);
            http_response(ClientError::new(Code::Unauthorized, message))
        }
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let readable = shared.engine.versions().values().all(Option::is_some);
    Json(json!({"status": if readable { "ok" } else { "degraded" }})).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(
            shared.plans.physical_hits(),
            shared
                .base
                .copied_config()
                .get_extension::<crate::storage::Resident>()
                .map_or(0, |resident| resident.held_bytes()),
        ),
    )
        .into_response()
}

async fn tables(State(shared): State<Arc<Shared>>) -> Response {
    let mut out = Vec::new();
    for def in TABLES {
        match describe(&shared, def.name).await {
            Ok(table) => out.push(table),
            Err(e) => return http_response(e),
        }
    }
    Json(out).into_response()
}

async fn table(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    if !TABLES.iter().any(|def| def.name == name) {
        return http_response(ClientError::new(
            Code::NotFound,
            format!(
                "no table '{name}'; the tables are {}",
                TABLES.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    match describe(&shared, &name).await {
        Ok(table) => Json(table).into_response(),
        Err(e) => http_response(e),
    }
}

async fn describe(shared: &Shared, name: &str) -> Result<serde_json::Value, ClientError> {
    let def = crate::model::table_or_err(name)
        .map_err(|e| ClientError::new(Code::NotFound, e.to_string()))?;
    let context = shared.engine.context();
    let provider = context
        .table_provider(name)
        .await
        .map_err(|e| ClientError::from_datafusion(&e))?;
    let columns: Vec<_> = provider
        .schema()
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
        .collect();
    let version = shared.engine.versions().get(name).copied().flatten();
    let rows = match version {
        Some(_) => {
            let batches = context
                .sql(&format!("SELECT count(*) FROM {name}"))
                .await
                .map_err(|e| ClientError::from_datafusion(&e))?
                .collect()
                .await
                .map_err(|e| ClientError::from_datafusion(&e))?;
            batches
                .first()
                .and_then(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::Int64Array>()
                })
                .map(|a| a.value(0))
        }
        None => None,
    };
    Ok(json!({
        "name": name,
        "description": def.description,
        "version": version,
        "rows": rows,
        "key": def.key,
        "columns": columns,
    }))
}

#[derive(Debug, Deserialize)]
struct SqlParams {
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SqlBody {
    sql: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    fn pick(param: Option<&str>, accept: Option<&str>) -> Result<Format, ClientError> {
        if let Some(name) = param {
            return match name.to_ascii_lowercase().as_str() {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                "arrow" => Ok(Format::Arrow),
                "parquet" => Ok(Format::Parquet),
                other => Err(ClientError::new(
                    Code::BadRequest,
                    format!("format={other} is not one of json, csv, arrow, parquet"),
                )),
            };
        }
        let Some(accept) = accept else {
            return Ok(Format::Json);
        };
        for item in accept.split(',') {
            let media = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let format = match media.as_str() {
                "application/json" | "*/*" | "application/*" | "" => Some(Format::Json),
                "text/csv" | "text/*" => Some(Format::Csv),
                "application/vnd.apache.arrow.stream" | "application/vnd.apache.arrow.file" => {
                    Some(Format::Arrow)
                }
                "application/vnd.apache.parquet" | "application/x-parquet" => Some(Format::Parquet),
                _ => None,
            };
            if let Some(format) = format {
                return Ok(format);
            }
        }
        Err(ClientError::new(
            Code::NotAcceptable,
            format!(
                "cannot answer Accept: {accept}; use application/json, text/csv, \
                 application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
            ),
        ))
    }
}

async fn sql(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<SqlParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let sql = body.clone();
    let answer = AssertUnwindSafe(run_sql(&shared, params, &headers, body))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked(&String::from_utf8_lossy(&sql), panic)));
    match answer {
        Ok(response) => response,
        Err(e) => {
            shared.metrics.error(PROTOCOL, e.code.name());
            log::debug!(
                "http: {} after {:?}: {}",
                e.code.name(),
                started.elapsed(),
                e.message
            );
            http_response(e)
        }
    }
}

async fn run_sql(
    shared: &Arc<Shared>,
    params: SqlParams,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ClientError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::pick(params.format.as_deref(), accept)?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ClientError::new(Code::BadRequest, "the request body is not UTF-8"))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let sql = if is_json {
        serde_json::from_str::<SqlBody>(&text)
            .map_err(|e| {
                ClientError::new(
                    Code::BadRequest,
                    format!("the JSON body must be {{\"sql\": \"…\"}}: {e}"),
                )
            })?
            .sql
    } else {
        text
    };
    if sql.trim().is_empty() {
        return Err(ClientError::new(
            Code::BadRequest,
            "no SQL: send it as the request body (text/plain) or as {\"sql\": \"…\"}",
        ));
    }

    let _planning = super::budget::claim_planning(&shared.budget, &sql)
        .map_err(|e| ClientError::from_datafusion(&e))?;
    let mut statements = crate::shape::parse(&sql, &GenericDialect {})
        .map_err(|e| ClientError::from_datafusion(&e))?;
    if statements.len() != 1 {
        return Err(ClientError::new(
            Code::BadRequest,
            format!(
                "send exactly one SQL statement per request (found {})",
                statements.len()
            ),
        ));
    }
    let statement = statements.pop().expect("one statement");
    check(&statement)?;

    let limits = Limits {
        timeout: shared.settings.query_timeout,
        cancel: Arc::new(Notify::new()),
        metrics: shared.metrics.clone(),
        protocol: PROTOCOL,
    };
    let session = shared.session(limits.clone());
    let frame = plan_query(shared, &session, statement, limits.timeout)
        .await
        .map_err(|e| ClientError::from_datafusion(&e))?
        .frame(&session)
        .await
        .map_err(|e| ClientError::from_datafusion(&e))?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|e| ClientError::from_datafusion(&e))?;
    // Hold back the first rows, up to BUFFERED bytes or the whole answer, so that an
    // error in them (most answers are smaller) is a proper error response rather
    // than a cut-off body.
    let mut first = Vec::new();
    let mut held = 0;
    while held < BUFFERED {
        match stream.next().await {
            Some(Ok(batch)) => {
                held += batch.get_array_memory_size();
                first.push(batch);
            }
            Some(Err(e)) => return Err(ClientError::from_datafusion(&e)),
            None => break,
        }
    }
    let body = encode(format, stream.schema(), first, stream);
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Only queries over HTTP: each request is one statement with no session.
fn check(statement: &DFStatement) -> Result<(), ClientError> {
    match policy::classify_df(statement) {
        Verdict::Query => Ok(()),
        Verdict::Refuse(message) => Err(ClientError::new(Code::ReadOnly, message)),
        Verdict::Session | Verdict::Ignore(_) => Err(ClientError::new(
            Code::BadRequest,
            format!(
                "{} has no effect over HTTP, where each request is one query; use the \
                 PostgreSQL protocol for session settings",
                policy::kind_df(statement)
            ),
        )),
    }
}

/// A `Write` whose bytes are taken after each batch and sent on as a body chunk.
#[derive(Clone, Default)]
struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Chunks {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

/// One of the four writers, fed batch by batch.
enum Writer {
    Json(datafusion::arrow::json::ArrayWriter<Chunks>),
    Csv(datafusion::arrow::csv::Writer<Chunks>),
    Arrow(datafusion::arrow::ipc::writer::StreamWriter<Chunks>),
    Parquet(datafusion::parquet::arrow::ArrowWriter<Chunks>),
}

impl Writer {
    fn new(format: Format, schema: &SchemaRef, sink: Chunks) -> Result<Writer, String> {
        Ok(match format {
            Format::Json => Writer::Json(datafusion::arrow::json::ArrayWriter::new(sink)),
            Format::Csv => Writer::Csv(
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(sink),
            ),
            Format::Arrow => Writer::Arrow(
                datafusion::arrow::ipc::writer::StreamWriter::try_new(sink, schema)
                    .map_err(|e| e.to_string())?,
            ),
            Format::Parquet => Writer::Parquet(
                datafusion::parquet::arrow::ArrowWriter::try_new(sink, schema.clone(), None)
                    .map_err(|e| e.to_string())?,
            ),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            Writer::Json(w) => w.write(batch).map_err(|e| e.to_string()),
            Writer::Csv(w) => crate::output::csv_ready(batch)
                .and_then(|batch| w.write(&batch))
                .map_err(|e| e.to_string()),
            Writer::Arrow(w) => w.write(batch).map_err(|e| e.to_string()),
            Writer::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Writer::Json(mut w) => w.finish().map_err(|e| e.to_string()),
            Writer::Csv(_) => Ok(()),
            Writer::Arrow(mut w) => w.finish().map_err(|e| e.to_string()),
            Writer::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// The error a panic becomes: logged with the statement, answered as a 500.
fn panicked(sql: &str, panic: Box<dyn std::any::Any + Send>) -> ClientError {
    let what = panic_message(panic.as_ref());
    let shown: String = sql.chars().take(2000).collect();
    log::error!("http: internal error ({what}) answering: {shown}");
    ClientError::new(
        Code::Internal,
        format!("internal error in kpidb while answering this request ({what})"),
    )
}

/// How much of an answer is held back before the response starts (see [`run_sql`]).
const BUFFERED: usize = 1 << 20;

/// Streams the rows in `format` as they come; a failure after the first rows ends
/// the body early (the client sees an incomplete response, never a silently short
/// one).
fn encode(
    format: Format,
    schema: SchemaRef,
    first: Vec<RecordBatch>,
    rest: SendableRecordBatchStream,
) -> Body {
    let mut rest = AssertUnwindSafe(rest).catch_unwind();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let sink = Chunks::default();
        let fail = |message: String| Err(std::io::Error::other(message));
        let mut writer = match Writer::new(format, &schema, sink.clone()) {
            Ok(writer) => writer,
            Err(e) => {
                let _ = tx.send(fail(e)).await;
                return;
            }
        };
        // An empty result still carries its header (CSV) or schema (Arrow, Parquet).
        let mut pending: std::collections::VecDeque<RecordBatch> = first.into();
        if pending.is_empty() {
            pending.push_back(RecordBatch::new_empty(schema.clone()));
        }
        loop {
            while let Some(batch) = pending.pop_front() {
                if let Err(e) = writer.write(&batch) {
                    let _ = tx.send(fail(e)).await;
                    return;
                }
                let chunk = sink.take();
                if !chunk.is_empty() && tx.send(Ok(chunk)).await.is_err() {
                    return; // the client went away: dropping the stream stops the query
                }
            }
            match rest.next().await {
                Some(Ok(Ok(batch))) => pending.push_back(batch),
                Some(Err(panic)) => {
                    let message = panicked("(while streaming rows)", panic).message;
                    let _ = tx.send(fail(message)).await;
                    return;
                }
                Some(Ok(Err(e))) => {
                    let message = ClientError::from_datafusion(&e).message;
                    log::warn!("http: query failed while streaming: {message}");
                    let _ = tx.send(fail(message)).await;
                    return;
                }
                None => break,
            }
        }
        if let Err(e) = writer.finish() {
            let _ = tx.send(fail(e)).await;
            return;
        }
        let chunk = sink.take();
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
    });
    Body::from_stream(tokio_stream(rx))
}

fn tokio_stream(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

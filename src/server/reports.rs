//! The report endpoints: `GET /api/reports` lists the reports with their schedule,
//! last run and newest files; `GET /api/reports/{name}/latest?format=…` serves the
//! newest run's file (the manifest as JSON when no format is asked);
//! `POST /api/reports/{name}/run` runs one now (one run at a time per report).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::errors::{http_response, ClientError, Code};
use super::Shared;
use crate::report::{archive, Format, Manifest};

pub async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let Some(scheduler) = &shared.reports else {
        return Json(json!([])).into_response();
    };
    let mut out = Vec::new();
    for report in scheduler.reports.reports.values() {
        let latest = match archive::latest(report) {
            Ok(latest) => latest.map(|m| summary(&report.name, &m)),
            Err(e) => Some(json!({"error": e.to_string()})),
        };
        out.push(json!({
            "name": report.name,
            "title": report.title,
            "description": report.description,
            "formats": report.formats.iter().map(|f| f.extension()).collect::<Vec<_>>(),
            "schedule": report.schedule.as_ref().map(|s| s.expression.clone()),
            "timezone": report.timezone.name(),
            "status": scheduler.status(&report.name),
            "running": scheduler.is_running(&report.name),
            "latest": latest,
        }));
    }
    Json(out).into_response()
}

fn summary(name: &str, manifest: &Manifest) -> serde_json::Value {
    let files: Vec<_> = manifest
        .files
        .iter()
        .map(|f| {
            let mut url = format!("/api/reports/{name}/latest?format={}", f.format);
            if let Some(section) = f.section {
                url.push_str(&format!("&section={section}"));
            }
            json!({"format": f.format, "file": f.file, "section": f.section, "url": url})
        })
        .collect();
    json!({
        "generated_at": manifest.generated_at,
        "params": manifest.params,
        "as_of_version": manifest.as_of_version,
        "versions": manifest.versions,
        "sections": manifest.sections.iter().map(|s| json!({"title": s.title, "rows": s.rows, "tables": s.tables})).collect::<Vec<_>>(),
        "files": files,
        "notes": manifest.notes,
    })
}

/// `POST /api/reports/{name}/run`: `{"params": {"year": 2023}, "formats": ["xlsx"],
/// "allow_empty": false}`, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    #[serde(default)]
    params: std::collections::BTreeMap<String, serde_json::Value>,
    formats: Option<Vec<String>>,
    #[serde(default)]
    allow_empty: bool,
}

pub async fn run(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let bad = |message: String| http_response(ClientError::new(Code::BadRequest, message));
    let Some(scheduler) = shared.reports.clone() else {
        return http_response(ClientError::new(
            Code::NotFound,
            "the server has no reports",
        ));
    };
    let Some(report) = scheduler.reports.reports.get(&name).cloned() else {
        return http_response(ClientError::new(
            Code::NotFound,
            format!("no report '{name}'; GET /api/reports lists them"),
        ));
    };
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return bad(format!(
                    "the body must be JSON like {{\"params\": {{\"year\": 2023}}, \"formats\": [\"xlsx\"], \"allow_empty\": false}}: {e}"
                ))
            }
        }
    };
    let pairs: Vec<(String, String)> = body
        .params
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect();
    let params = match report.overrides(&pairs) {
        Ok(params) => params,
        Err(e) => return bad(e.to_string()),
    };
    let formats = match &body.formats {
        None => None,
        Some(names) => {
            let mut formats = Vec::new();
            for f in names {
                match Format::parse(f) {
                    Some(format) => formats.push(format),
                    None => return bad(format!("format '{f}': use xlsx, html, md or csv")),
                }
            }
            Some(formats)
        }
    };
    let Some(_claim) = scheduler.try_claim(&name) else {
        return http_response(ClientError::new(
            Code::ReportRunning,
            format!("report '{name}' is running; ask again when it has finished"),
        ));
    };
    let request = crate::report::RunRequest {
        params,
        formats,
        hook: shared.cluster.clone(),
        allow_empty: body.allow_empty,
        ..Default::default()
    };
    let warehouse = shared.engine.warehouse().clone();
    let ran = crate::report::run_report(&warehouse, shared.options, &report, request).await;
    let recorded = ran
        .as_ref()
        .map(|m| format!("wrote {}", m.dir.display()))
        .map_err(|e| e.to_string());
    scheduler.record(&name, &recorded);
    match ran {
        Ok(manifest) => {
            log::info!(
                "report {name}: run over HTTP: wrote {}",
                manifest.dir.display()
            );
            (
                axum::http::StatusCode::CREATED,
                Json(summary(&name, &manifest)),
            )
                .into_response()
        }
        Err(crate::Error::Usage(message)) => {
            http_response(ClientError::new(Code::DataError, message))
        }
        Err(e) => http_response(ClientError::new(Code::Internal, e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
pub struct LatestQuery {
    format: Option<String>,
    section: Option<usize>,
}

pub async fn latest(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<LatestQuery>,
) -> Response {
    let not_found = |message: String| http_response(ClientError::new(Code::NotFound, message));
    let Some(report) = shared
        .reports
        .as_ref()
        .and_then(|s| s.reports.reports.get(&name))
    else {
        return not_found(format!("no report '{name}'; GET /api/reports lists them"));
    };
    let manifest = match archive::latest(report) {
        Ok(Some(manifest)) => manifest,
        Ok(None) => {
            return not_found(format!(
                "report '{name}' has not run yet; its runs are kept in {}",
                archive::report_dir(report).display()
            ))
        }
        Err(e) => return http_response(ClientError::new(Code::Internal, e.to_string())),
    };
    let format = match query.format.as_deref() {
        None | Some("json") => return Json(summary(&name, &manifest)).into_response(),
        Some(text) => match Format::parse(text) {
            Some(format) => format,
            None => {
                return http_response(ClientError::new(
                    Code::BadRequest,
                    format!("format '{text}': use xlsx, html, md, csv or json"),
                ))
            }
        },
    };
    let Some(file) = manifest.file(format, query.section) else {
        return not_found(match (format, query.section) {
            (Format::Csv, Some(section)) => format!(
                "report '{name}' has {} sections; no CSV for section {section}",
                manifest.sections.len()
            ),
            _ => format!(
                "the newest run of '{name}' has no {} output",
                format.extension()
            ),
        });
    };
    let path = manifest.dir.join(&file.file);
    if !crate::report::within(&path, &manifest.dir) {
        return not_found(format!("'{}' is not a file of this run", file.file));
    }
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return http_response(ClientError::new(
                Code::Internal,
                format!("{}: {e}", path.display()),
            ))
        }
    };
    let (content_type, disposition) = match format {
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "attachment",
        ),
        Format::Html => ("text/html; charset=utf-8", "inline"),
        Format::Md => ("text/markdown; charset=utf-8", "inline"),
        Format::Csv => ("text/csv; charset=utf-8", "attachment"),
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename=\"{}\"", file.file))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&manifest.as_of_version) {
        headers.insert("x-kpidb-data-versions", value);
    }
    if let Ok(value) = HeaderValue::from_str(&manifest.generated_at) {
        headers.insert("x-kpidb-generated-at", value);
    }
    response
}

//! The report endpoints: `GET /api/reports` lists the reports with their schedule,
//! last run and newest files; `GET /api/reports/{name}/latest?format=…` serves the
//! newest run's file (the manifest as JSON when no format is asked).

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
    })
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

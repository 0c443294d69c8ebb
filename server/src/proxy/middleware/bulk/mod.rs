//! bulk: Swift's bulk operations on an account: archive upload (`extract.rs`) and delete.
//!
//! Bulk delete (`POST` or `DELETE` with `?bulk-delete`): the body lists objects and
//! containers of the account, one quoted `container[/object]` per line; each is deleted
//! by a subrequest through the rest of the stack, so with the caller's rights, and one
//! 200 answer reports how many went, how many were not there, and which failed and why,
//! as text, JSON or XML per `Accept`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::ConfError;

use crate::proxy::backend::set;
use crate::proxy::env::{has_param, query_param, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, quote, text};
use ringsmith::swift::escape::xml_text;

use super::listing_formats::{choose, Format};

mod extract;
mod tar;

pub struct Bulk {
    next: App,
    max_deletes_per_request: usize,
    max_failed_deletes: usize,
    max_containers_per_extraction: usize,
    max_failed_extractions: usize,
    yield_frequency: std::time::Duration,
    max_file_size: u64,
    max_object_name_length: usize,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let max_deletes_per_request = ctx
        .section
        .parse_or("max_deletes_per_request", 10000usize)?;
    let max_failed_deletes = ctx.section.parse_or("max_failed_deletes", 1000usize)?;
    ctx.info.register(
        "bulk_delete",
        serde_json::json!({
            "max_deletes_per_request": max_deletes_per_request,
            "max_failed_deletes": max_failed_deletes,
        }),
    );
    let max_containers_per_extraction = ctx
        .section
        .parse_or("max_containers_per_extraction", 10000usize)?;
    let max_failed_extractions = ctx.section.parse_or("max_failed_extractions", 1000usize)?;
    ctx.info.register(
        "bulk_upload",
        serde_json::json!({
            "max_containers_per_extraction": max_containers_per_extraction,
            "max_failed_extractions": max_failed_extractions,
        }),
    );
    Ok(Arc::new(Bulk {
        next,
        max_deletes_per_request,
        max_failed_deletes,
        max_containers_per_extraction,
        max_failed_extractions,
        yield_frequency: extract::heartbeat(ctx.section.parse_or("yield_frequency", 10u64)?),
        max_file_size: ctx.swift.constraints.max_file_size,
        max_object_name_length: ctx.swift.constraints.max_object_name_length,
    }))
}

impl Handler for Bulk {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let is_bulk_delete = matches!(*req.method(), Method::POST | Method::DELETE)
                && has_param(req.uri().query(), "bulk-delete");
            if req.method() == Method::PUT {
                if let Some(kind) = query_param(req.uri().query(), "extract-archive") {
                    let Some(path) = ApiPath::parse(req.uri().path()) else {
                        return self.next.call(req).await;
                    };
                    return match extract::archive_kind(&kind) {
                        Some(k) => self.extract(req, path, k).await,
                        None => text(StatusCode::BAD_REQUEST, "Unsupported archive format"),
                    };
                }
            }
            match ApiPath::parse(req.uri().path()) {
                // Any path under the account will do, as in Swift.
                Some(path) if is_bulk_delete => self.bulk_delete(req, path).await,
                _ => self.next.call(req).await,
            }
        })
    }
}

impl Bulk {
    async fn bulk_delete(&self, req: Request, path: ApiPath) -> Response {
        let (parts, body) = req.into_parts();
        let caller = Caller::of(&parts);
        // Swift's limit per line is 1024 + container; a bound on the whole body.
        let max_body = self.max_deletes_per_request.saturating_mul(2048).max(2048);
        let Ok(raw) = http_body_util::Limited::new(body, max_body).collect().await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
        };
        let raw = raw.to_bytes();
        let listing = String::from_utf8_lossy(&raw).into_owned();
        let lines: Vec<&str> = listing
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() > self.max_deletes_per_request {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Maximum Bulk Deletes: {} per request",
                    self.max_deletes_per_request
                ),
            );
        }
        let (mut deleted, mut not_found) = (0usize, 0usize);
        let mut errors: Vec<(String, String)> = Vec::new();
        for line in lines {
            if errors.len() >= self.max_failed_deletes {
                break;
            }
            let name = percent_decode_str(line).decode_utf8_lossy().into_owned();
            let trimmed = name.trim_start_matches('/');
            let (container, object) = match trimmed.split_once('/') {
                Some((c, o)) if !o.is_empty() => (c.to_string(), Some(o.to_string())),
                Some((c, _)) => (c.to_string(), None),
                None => (trimmed.to_string(), None),
            };
            if container.is_empty() {
                errors.push((line.to_string(), "400 Bad Request".into()));
                continue;
            }
            let target = ApiPath {
                version: path.version.clone(),
                account: path.account.clone(),
                container: Some(container),
                object,
            };
            let mut h = HeaderMap::new();
            set(&mut h, "content-length", "0");
            let resp = self
                .next
                .call(caller.subrequest(Method::DELETE, &target.to_path(), h, Body::empty(), "BD"))
                .await;
            match resp.status() {
                s if s.is_success() => deleted += 1,
                StatusCode::NOT_FOUND => not_found += 1,
                s => errors.push((
                    format!("/{}", quote(trimmed)),
                    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or("")),
                )),
            }
        }
        let status = if errors.is_empty() {
            "200 OK"
        } else if errors.iter().any(|(_, s)| s.starts_with('5')) {
            "502 Bad Gateway"
        } else {
            "400 Bad Request"
        };
        render(
            header(&parts.headers, "accept").unwrap_or(""),
            deleted,
            not_found,
            status,
            &errors,
        )
    }
}

/// Swift's report of a bulk operation (`get_heartbeat_response_body`): `fields` sorted by
/// name, then the failures, as text, JSON or XML (root element `root_tag`).
pub(crate) fn report(
    format: Option<Format>,
    root_tag: &str,
    fields: &[(&str, serde_json::Value)],
    errors: &[(String, String)],
) -> String {
    let mut sorted: Vec<&(&str, serde_json::Value)> = fields.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match format {
        Some(Format::Json) => {
            let mut doc = serde_json::Map::new();
            for (k, v) in &sorted {
                doc.insert(k.to_string(), v.clone());
            }
            doc.insert(
                "Errors".into(),
                errors
                    .iter()
                    .map(|(n, s)| serde_json::json!([n, s]))
                    .collect::<Vec<_>>()
                    .into(),
            );
            serde_json::Value::Object(doc).to_string()
        }
        Some(Format::Xml) => {
            let mut out = format!("<{root_tag}>\n");
            for (k, v) in &sorted {
                let tag = k.replace(' ', "_").to_lowercase();
                out.push_str(&format!("<{tag}>{}</{tag}>\n", xml_text(&text_of(v))));
            }
            out.push_str("<errors>\n");
            for (n, s) in errors {
                out.push_str(&format!(
                    "<object><name>{}</name><status>{}</status></object>\n",
                    xml_text(n),
                    xml_text(s)
                ));
            }
            out.push_str(&format!("</errors>\n</{root_tag}>\n"));
            out
        }
        _ => {
            let mut out = String::new();
            for (k, v) in &sorted {
                out.push_str(&format!("{k}: {}\n", text_of(v)));
            }
            out.push_str("Errors:\n");
            for (n, s) in errors {
                out.push_str(&format!("{n}, {s}\n"));
            }
            out
        }
    }
}

/// The content type of a report in `format`.
pub(crate) fn report_type(format: Option<Format>) -> &'static str {
    match format {
        Some(Format::Json) => "application/json",
        Some(Format::Xml) => "application/xml",
        _ => "text/plain",
    }
}

fn render(
    accept: &str,
    deleted: usize,
    not_found: usize,
    status: &str,
    errors: &[(String, String)],
) -> Response {
    let format = choose(None, Some(accept).filter(|a| !a.is_empty()));
    let mut body = report(
        format,
        "delete",
        &[
            ("Number Deleted", deleted.into()),
            ("Number Not Found", not_found.into()),
            ("Response Body", "".into()),
            ("Response Status", status.into()),
        ],
        errors,
    );
    if format == Some(Format::Xml) {
        body.insert_str(0, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    let mut r = Response::new(Body::from(body));
    set(r.headers_mut(), "content-type", report_type(format));
    r
}

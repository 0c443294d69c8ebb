//! `DELETE ?multipart-manifest=delete`: every segment (sub-manifests' segments first, then
//! the sub-manifests), then the manifest, each by a DELETE subrequest with the caller's
//! rights. The answer is a bulk-delete report (text, JSON or XML per `Accept`).
//!
//! `&async=yes` is checked as Swift checks it (one segment container, no nested SLOs);
//! Ringsmith then deletes the segments before the manifest rather than queueing them
//! for the object expirer (docs/differences.md).

use std::collections::VecDeque;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;

use super::{best_format, csv_append, report_body, status_line, Slo};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::{header, quote, text};

/// One thing to delete, as Swift's `get_segments_to_delete_iter` walks them.
struct Entry {
    /// `/container/object`, unquoted.
    name: String,
    sub_slo: bool,
    /// Why it cannot be deleted (reading it as a manifest failed): (status, message).
    error: Option<(StatusCode, String)>,
}

/// A failure reading a manifest, as the status and body Swift's exception carries.
type ReadError = (StatusCode, String);

fn entries_of(manifest: &[Value]) -> Vec<Entry> {
    manifest
        .iter()
        .filter(|v| v.get("data").is_none())
        .filter_map(|v| {
            Some(Entry {
                name: v.get("name")?.as_str()?.to_string(),
                sub_slo: match v.get("sub_slo") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => ringsmith::swift::conf::is_true(s),
                    _ => false,
                },
                error: None,
            })
        })
        .collect()
}

struct Deleter<'a> {
    slo: &'a Slo,
    caller: Caller,
    base: String,
}

impl Deleter<'_> {
    /// Swift's `get_slo_segments`: the stored manifest of `/container/object`.
    async fn manifest(&self, name: &str) -> Result<Vec<Value>, ReadError> {
        let uri = format!(
            "{}/{}?multipart-manifest=get",
            self.base,
            quote(name.trim_start_matches('/'))
        );
        let mut h = HeaderMap::new();
        // Only the last byte of an object that turns out not to be a manifest.
        set(&mut h, "range", "bytes=-1");
        csv_append(
            &mut h,
            "x-backend-ignore-range-if-metadata-present",
            "X-Static-Large-Object",
        );
        let resp = self
            .slo
            .0
            .next
            .call(
                self.caller
                    .subrequest(Method::GET, &uri, h, Body::empty(), "SLO"),
            )
            .await;
        let status = resp.status();
        let is_slo = header(resp.headers(), "x-static-large-object")
            .is_some_and(ringsmith::swift::conf::is_true);
        if status.is_success() {
            if !is_slo {
                return Err((StatusCode::BAD_REQUEST, "Not an SLO manifest".into()));
            }
            let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|_| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Unable to load SLO manifest".to_string(),
                    )
                })?;
            return match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(v)) => Ok(v),
                _ => Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unable to load SLO manifest".into(),
                )),
            };
        }
        Err(match status {
            StatusCode::NOT_FOUND => (status, "SLO manifest not found".into()),
            StatusCode::UNAUTHORIZED => (status, "401 Unauthorized".into()),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest or segment.".into(),
            ),
        })
    }

    async fn delete(&self, name: &str) -> StatusCode {
        let uri = format!("{}/{}", self.base, quote(name.trim_start_matches('/')));
        let mut h = HeaderMap::new();
        set(&mut h, "content-length", "0");
        self.slo
            .0
            .next
            .call(
                self.caller
                    .subrequest(Method::DELETE, &uri, h, Body::empty(), "SLO"),
            )
            .await
            .status()
    }
}

pub async fn handle(slo: &Slo, req: Request, path: ApiPath) -> Response {
    let (parts, _) = req.into_parts();
    let deleter = Deleter {
        slo,
        caller: Caller::of(&parts),
        base: format!("/{}/{}", path.version, quote(&path.account)),
    };
    let top = format!(
        "/{}/{}",
        path.container.as_deref().unwrap_or(""),
        path.object.as_deref().unwrap_or("")
    );
    let is_async = query_param(parts.uri.query(), "async")
        .is_some_and(|v| ringsmith::swift::conf::is_true(&v));
    if is_async && slo.0.conf.allow_async_delete {
        return async_delete(slo, &deleter, parts, &top).await;
    }
    let format = best_format(&parts.headers);
    let mut deleted = 0u64;
    let mut not_found = 0u64;
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut bad_gateway = false;
    let mut abort: Option<(StatusCode, String)> = None;
    if format.is_none() {
        abort = Some((StatusCode::NOT_ACCEPTABLE, String::new()));
    }
    let mut queue: VecDeque<Entry> = VecDeque::new();
    queue.push_back(Entry {
        name: top,
        sub_slo: true,
        error: None,
    });
    let limit = slo.0.conf.max_manifest_segments.saturating_mul(10);
    while abort.is_none() {
        if queue.len() > limit {
            abort = Some((
                StatusCode::BAD_REQUEST,
                "Too many buffered slo segments to delete.".into(),
            ));
            break;
        }
        let Some(mut entry) = queue.pop_front() else {
            break;
        };
        if entry.sub_slo {
            match deleter.manifest(&entry.name).await {
                Ok(m) => queue.extend(entries_of(&m)),
                Err(e) => entry.error = Some(e),
            }
            // The manifest itself goes after its segments.
            entry.sub_slo = false;
            queue.push_back(entry);
            continue;
        }
        if let Some((code, message)) = &entry.error {
            if *code == StatusCode::NOT_FOUND {
                not_found += 1;
            } else {
                failed.push((quote(&entry.name), message.clone()));
            }
            continue;
        }
        match deleter.delete(&entry.name).await {
            s if s.is_success() => deleted += 1,
            StatusCode::NOT_FOUND => not_found += 1,
            StatusCode::UNAUTHORIZED => {
                failed.push((quote(&entry.name), status_line(StatusCode::UNAUTHORIZED)))
            }
            s => {
                bad_gateway |= s.is_server_error();
                failed.push((quote(&entry.name), status_line(s)));
            }
        }
    }
    let (status, body) = match abort {
        Some((s, b)) => (status_line(s), b),
        None if !failed.is_empty() => (
            status_line(if bad_gateway {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            }),
            String::new(),
        ),
        None if deleted == 0 && not_found == 0 => (
            status_line(StatusCode::BAD_REQUEST),
            "Invalid bulk delete.".into(),
        ),
        None => (status_line(StatusCode::OK), String::new()),
    };
    let fields = [
        ("Response Status", Value::String(status)),
        ("Response Body", Value::String(body)),
        ("Number Deleted", Value::from(deleted)),
        ("Number Not Found", Value::from(not_found)),
    ];
    let out = report_body(format.unwrap_or("text/plain"), &fields, &failed, "delete");
    let mut r = Response::new(Body::from(out));
    if let Some(f) = format {
        set(r.headers_mut(), "content-type", f);
    }
    r
}

/// `?multipart-manifest=delete&async=yes`: Swift's checks, then the segments and the
/// manifest are deleted (the manifest's DELETE answers).
async fn async_delete(slo: &Slo, deleter: &Deleter<'_>, parts: Parts, top: &str) -> Response {
    let manifest = match deleter.manifest(top).await {
        Ok(m) => m,
        Err((s, m)) => return text(s, m),
    };
    let segments = entries_of(&manifest);
    let mut containers: Vec<String> = Vec::new();
    for s in &segments {
        let c = s
            .name
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        if !containers.contains(&c) {
            containers.push(c);
        }
    }
    if containers.len() > 1 {
        let listed: Vec<String> = containers
            .iter()
            .map(|c| format!("\"{}\"", quote(c)))
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "All segments must be in one container. Found segments in {}",
                listed.join(", ")
            ),
        );
    }
    if segments.iter().any(|s| s.sub_slo) {
        return text(StatusCode::BAD_REQUEST, "No segments may be large objects.");
    }
    for s in &segments {
        let st = deleter.delete(&s.name).await;
        if !(st.is_success() || st == StatusCode::NOT_FOUND) {
            return text(
                st,
                format!("deleting segment {}: {}", quote(&s.name), status_line(st)),
            );
        }
    }
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::DELETE;
    *req.uri_mut() = parts.uri;
    *req.headers_mut() = parts.headers;
    *req.extensions_mut() = parts.extensions;
    slo.0.next.call(req).await
}

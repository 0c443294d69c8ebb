//! `PUT ?multipart-manifest=put`: check the client's manifest, HEAD each segment, store
//! the manifest in Swift's format.
//!
//! With `heartbeat=on` the answer is a `202 Accepted` sent at once, whitespace every
//! `yield_frequency` seconds while segments are checked, then the real outcome as a
//! report in the body (text, JSON or XML per `Accept`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use serde_json::Value;

use super::manifest::{self, InputSegment};
use super::{
    best_format, report_body, status_line, Slo, OVERRIDE_ETAG, SYSMETA_SLO_ETAG, SYSMETA_SLO_SIZE,
};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller, ContentTypeOverridden};
use crate::proxy::pipeline::Handler;
use crate::proxy::{header, quote, status_text, text};

pub async fn handle(slo: &Slo, req: Request, path: ApiPath) -> Response {
    let conf = &slo.0.conf;
    if header(req.headers(), "x-copy-from").is_some_and(|v| !v.is_empty()) {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Multipart Manifest PUTs cannot be COPY requests",
        );
    }
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Manifest File > {} bytes", conf.max_manifest_size),
        )
    };
    match header(req.headers(), "content-length").map(|v| v.trim().parse::<u64>()) {
        None => {
            let chunked = header(req.headers(), "transfer-encoding")
                .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
            if !chunked {
                return status_text(StatusCode::LENGTH_REQUIRED);
            }
        }
        Some(Ok(n)) if n > conf.max_manifest_size as u64 => return too_large(),
        Some(Ok(_)) => {}
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
    }
    let (parts, body) = req.into_parts();
    let Ok(collected) = http_body_util::Limited::new(body, conf.max_manifest_size)
        .collect()
        .await
    else {
        return too_large();
    };
    let body = collected.to_bytes();
    let raw_path = parts.uri.path().to_string();
    let account_path: String = raw_path
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    let segments = match manifest::parse_input(&body, &account_path, &raw_path) {
        Ok(s) => s,
        Err(msg) => {
            let mut r = text(StatusCode::BAD_REQUEST, msg);
            set(r.headers_mut(), "content-type", "text/plain");
            return r;
        }
    };
    let object_count = segments
        .iter()
        .filter(|s| matches!(s, InputSegment::Object { .. }))
        .count();
    if object_count > conf.max_manifest_segments {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Number of object-backed segments must be <= {}",
                conf.max_manifest_segments
            ),
        );
    }
    let format = best_format(&parts.headers).unwrap_or("text/plain");
    let heartbeat = query_param(parts.uri.query(), "heartbeat")
        .is_some_and(|v| ringsmith::swift::conf::is_true(&v));
    let job = PutJob {
        slo: slo.clone(),
        parts,
        path,
        segments,
        format,
        heartbeat,
    };
    if !heartbeat {
        return match job.run().await {
            Outcome::Response(r) => r,
            Outcome::Report(status, body) => {
                let mut r = Response::new(Body::from(body));
                *r.status_mut() = status;
                set(r.headers_mut(), "content-type", format);
                r
            }
        };
    }
    // Heartbeat: answer now, keep the connection busy while the segments are checked.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let every = Duration::from_secs(slo.0.conf.yield_frequency.max(1));
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
            return;
        }
        let work = job.run();
        tokio::pin!(work);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let outcome = loop {
            tokio::select! {
                o = &mut work => break o,
                _ = tick.tick() => {
                    if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
                        return;
                    }
                }
            }
        };
        let body = match outcome {
            Outcome::Report(_, b) => b,
            // Not produced with heartbeat on; reported rather than dropped all the same.
            Outcome::Response(r) => report_body(
                format,
                &[("Response Status", Value::String(status_line(r.status())))],
                &[],
                "upload",
            ),
        };
        let mut out = b"\r\n\r\n".to_vec();
        out.extend_from_slice(&body);
        let _ = tx.send(Ok(Bytes::from(out))).await;
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::ACCEPTED;
    set(r.headers_mut(), "content-type", format);
    r
}

struct PutJob {
    slo: Slo,
    parts: Parts,
    path: ApiPath,
    segments: Vec<InputSegment>,
    format: &'static str,
    heartbeat: bool,
}

/// How a manifest PUT ends: the stored object's own answer (no heartbeat), or a report
/// (errors; and every outcome with heartbeat) with the status it stands for.
enum Outcome {
    Response(Response),
    Report(StatusCode, Vec<u8>),
}

/// What a segment's HEAD told.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
}

impl PutJob {
    fn report(
        &self,
        status: StatusCode,
        mut fields: Vec<(&'static str, Value)>,
        errors: &[(String, String)],
    ) -> Outcome {
        if self.heartbeat {
            fields.push(("Response Status", Value::String(status_line(status))));
        }
        Outcome::Report(status, report_body(self.format, &fields, errors, "upload"))
    }

    async fn head_segment(&self, caller: &Caller, name: &str) -> Head {
        let uri = format!(
            "/{}/{}/{}",
            self.path.version,
            quote(&self.path.account),
            quote(name.trim_start_matches('/'))
        );
        // Through this middleware: a segment that is an SLO shows its SLO size and ETag.
        let resp = self
            .slo
            .call(caller.subrequest(Method::HEAD, &uri, HeaderMap::new(), Body::empty(), "SLO"))
            .await;
        Head {
            status: resp.status(),
            headers: resp.headers().clone(),
        }
    }

    async fn run(self) -> Outcome {
        let caller = Caller::of(&self.parts);
        let mut unique: Vec<String> = Vec::new();
        for s in &self.segments {
            if let InputSegment::Object { path, .. } = s {
                if !unique.contains(path) {
                    unique.push(path.clone());
                }
            }
        }
        let concurrency = self.slo.0.conf.concurrency.max(1);
        let heads: HashMap<String, Head> = futures_util::stream::iter(unique)
            .map(|p| {
                let caller = caller.clone();
                let this = &self;
                async move {
                    let h = this.head_segment(&caller, &p).await;
                    (p, h)
                }
            })
            .buffered(concurrency)
            .collect()
            .await;

        let mut problems: Vec<(String, String)> = Vec::new();
        let mut stored: Vec<Value> = Vec::with_capacity(self.segments.len());
        let mut etag_parts: Vec<(String, Option<String>)> = Vec::new();
        let mut total: u64 = 0;
        let last = self.segments.len().saturating_sub(1);
        for (i, seg) in self.segments.iter().enumerate() {
            let (path, etag, size_bytes, range) = match seg {
                InputSegment::Data(d) => {
                    total += d.len() as u64;
                    etag_parts.push((hex::encode(Md5::digest(d)), None));
                    let b64 = base64::engine::general_purpose::STANDARD.encode(d);
                    stored.push(serde_json::json!({ "data": b64 }));
                    continue;
                }
                InputSegment::Object {
                    path,
                    etag,
                    size_bytes,
                    range,
                } => (path, etag, size_bytes, range),
            };
            let quoted = quote(path);
            let head = &heads[path];
            if !head.status.is_success() {
                problems.push((quoted, status_line(head.status)));
                continue;
            }
            let length: u64 = header(&head.headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut seg_len = length;
            let mut range_text = None;
            if let Some(r) = range {
                match r.resolve(length) {
                    None => problems.push((quoted.clone(), "Unsatisfiable Range".into())),
                    Some((0, e)) if e + 1 == length => {}
                    Some((a, b)) => {
                        range_text = Some(format!("{a}-{b}"));
                        seg_len = b - a + 1;
                    }
                }
            }
            if seg_len < 1 && i != last {
                problems.push((
                    quoted.clone(),
                    "Too small; each segment must be at least 1 byte.".into(),
                ));
            }
            if size_bytes.is_some_and(|s| s != length) {
                problems.push((quoted.clone(), "Size Mismatch".into()));
            }
            let got_etag = header(&head.headers, "etag")
                .unwrap_or("")
                .trim_matches('"')
                .to_string();
            if etag.as_ref().is_some_and(|e| *e != got_etag) {
                problems.push((quoted.clone(), "Etag Mismatch".into()));
            }
            let last_modified = header(&head.headers, "last-modified")
                .and_then(ringsmith::swift::timestamp::parse_http_date)
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                });
            let (y, mo, d, h, mi, s) = ringsmith::swift::timestamp::civil_from_unix(last_modified);
            let lm = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000000");
            let sub_slo = header(&head.headers, "x-static-large-object")
                .is_some_and(ringsmith::swift::conf::is_true);
            stored.push(manifest::stored_entry(
                path,
                length,
                &got_etag,
                header(&head.headers, "content-type").unwrap_or(""),
                &lm,
                range_text.as_deref(),
                sub_slo,
            ));
            etag_parts.push((got_etag, range_text));
            total += seg_len;
        }
        if !problems.is_empty() {
            let mut fields = Vec::new();
            if self.heartbeat {
                fields.push((
                    "Response Body",
                    Value::String(
                        "Bad Request\nThe server could not comply with the request since it \
                         is either malformed or otherwise incorrect."
                            .into(),
                    ),
                ));
            }
            return self.report(StatusCode::BAD_REQUEST, fields, &problems);
        }
        let slo_etag = manifest::slo_etag(&etag_parts);
        let client_etag =
            header(&self.parts.headers, "etag").map(|e| e.trim().trim_matches('"').to_string());
        if client_etag
            .as_ref()
            .is_some_and(|e| !e.is_empty() && *e != slo_etag)
        {
            if self.heartbeat {
                let fields = vec![(
                    "Response Body",
                    Value::String(
                        "Unprocessable Entity\nUnable to process the contained instructions".into(),
                    ),
                )];
                return self.report(StatusCode::UNPROCESSABLE_ENTITY, fields, &[]);
            }
            return Outcome::Response(text(
                StatusCode::UNPROCESSABLE_ENTITY,
                "<html><h1>Unprocessable Entity</h1><p>Unable to process the contained \
                 instructions</p></html>",
            ));
        }
        self.store(stored, slo_etag, total).await
    }

    async fn store(self, stored: Vec<Value>, slo_etag: String, total: u64) -> Outcome {
        let json = manifest::py_dumps(&Value::Array(stored), false);
        let manifest_etag = hex::encode(Md5::digest(json.as_bytes()));
        let mut h = self.parts.headers.clone();
        set(&mut h, SYSMETA_SLO_ETAG, &slo_etag);
        set(&mut h, SYSMETA_SLO_SIZE, &total.to_string());
        set(&mut h, "x-static-large-object", "True");
        set(&mut h, "etag", &manifest_etag);
        set(&mut h, "content-length", &json.len().to_string());
        h.remove("transfer-encoding");
        // Listings show both ETags; a middleware to the left may have set the base value.
        let existing = header(&h, OVERRIDE_ETAG).unwrap_or("").to_string();
        let (val, params) = match existing.split_once(';') {
            Some((v, p)) => (v.to_string(), format!(";{p}")),
            None => (existing.clone(), String::new()),
        };
        let base = if val.is_empty() {
            manifest_etag.clone()
        } else {
            val
        };
        set(
            &mut h,
            OVERRIDE_ETAG,
            &format!("{base}{params}; slo_etag={slo_etag}"),
        );
        let ctype = header(&h, "content-type")
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| {
                crate::proxy::mime_types::guess(self.path.object.as_deref().unwrap_or(""))
                    .unwrap_or("application/octet-stream")
                    .to_string()
            });
        set(
            &mut h,
            "content-type",
            &format!("{ctype};swift_bytes={total}"),
        );
        let mut req = Request::new(Body::from(json));
        *req.method_mut() = Method::PUT;
        *req.uri_mut() = self.parts.uri.clone();
        *req.headers_mut() = h;
        *req.extensions_mut() = self.parts.extensions.clone();
        req.extensions_mut().insert(ContentTypeOverridden);
        let resp = self.slo.0.next.call(req).await;
        let status = resp.status();
        if !self.heartbeat {
            let mut resp = resp;
            if status.is_success() {
                set(resp.headers_mut(), "etag", &format!("\"{slo_etag}\""));
            }
            return Outcome::Response(resp);
        }
        let mut fields: Vec<(&'static str, Value)> = Vec::new();
        if status.is_success() {
            fields.push(("Etag", Value::String(format!("\"{slo_etag}\""))));
            fields.push((
                "Last Modified",
                Value::String(
                    header(resp.headers(), "last-modified")
                        .unwrap_or("")
                        .to_string(),
                ),
            ));
        }
        let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        fields.push(("Response Body", Value::String(body)));
        self.report(status, fields, &[])
    }
}

//! GET and HEAD of an SLO.
//!
//! The manifest is asked for with `X-Backend-Etag-Is-At: X-Object-Sysmeta-Slo-Etag` (so
//! the object server answers `If-Match`/`If-None-Match` against the SLO's ETag) and
//! `X-Backend-Ignore-Range-If-Metadata-Present: X-Static-Large-Object` (so a ranged GET
//! still returns the whole manifest). The answer keeps the manifest's metadata with the
//! SLO's ETag and length; the body is produced by a task that walks the segments (and
//! sub-manifests, fetched when reached) and streams each one's bytes into a small
//! channel, so memory stays a few chunks whatever the object's size. The first segment
//! is checked before the headers go out (409 if it is missing or changed); a later one
//! that is missing or changed ends the stream short, and is logged.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

use super::body::{part_header, Job, Writer, MAX_STORED_MANIFEST};
use super::manifest::{self, Stored};
use super::{csv_append, Slo, SYSMETA_SLO_ETAG, SYSMETA_SLO_SIZE};
use crate::object::range::{parse_range, RangeOutcome};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::{empty, header, quote, text};

/// What the manifest's response says about the SLO (Swift's `RespAttrs`).
struct Attrs {
    is_slo: bool,
    manifest_etag: String,
    slo_etag: Option<String>,
    slo_size: Option<u64>,
}

impl Attrs {
    fn of(h: &HeaderMap) -> Attrs {
        let is_slo =
            header(h, "x-static-large-object").is_some_and(ringsmith::swift::conf::is_true);
        Attrs {
            is_slo,
            manifest_etag: header(h, "etag")
                .unwrap_or("")
                .trim_matches('"')
                .to_string(),
            slo_etag: header(h, SYSMETA_SLO_ETAG)
                .filter(|e| !e.is_empty())
                .map(str::to_string),
            slo_size: header(h, SYSMETA_SLO_SIZE).and_then(|s| s.trim().parse().ok()),
        }
    }

    /// A manifest stored without the SLO sysmeta (an old Swift's): its ETag and size
    /// come from the segments.
    fn is_legacy(&self) -> bool {
        self.slo_etag.is_none() || self.slo_size.is_none()
    }
}

fn request_from(parts: &Parts, method: Method, headers: HeaderMap) -> Request {
    let mut r = Request::new(Body::empty());
    *r.method_mut() = method;
    *r.uri_mut() = parts.uri.clone();
    *r.headers_mut() = headers;
    *r.extensions_mut() = parts.extensions.clone();
    r
}

/// Swift's `get_valid_part_num`.
fn part_number(parts: &Parts) -> Result<Option<usize>, Response> {
    let Some(raw) = query_param(parts.uri.query(), "part-number") else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n > 0 => {
            if parts.headers.contains_key("range") {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    "Range requests are not supported with part number queries",
                ));
            }
            Ok(Some(n as usize))
        }
        _ => Err(text(
            StatusCode::BAD_REQUEST,
            "Part number must be an integer greater than 0",
        )),
    }
}

pub async fn handle(slo: &Slo, req: Request, path: ApiPath) -> Response {
    let (parts, _) = req.into_parts();
    let query = parts.uri.query();
    let manifest_get = query_param(query, "multipart-manifest").as_deref() == Some("get");
    let raw_format = manifest_get && query_param(query, "format").as_deref() == Some("raw");
    let mut down = parts.headers.clone();
    if !manifest_get {
        csv_append(
            &mut down,
            "x-backend-etag-is-at",
            "X-Object-Sysmeta-Slo-Etag",
        );
        csv_append(
            &mut down,
            "x-backend-ignore-range-if-metadata-present",
            "X-Static-Large-Object",
        );
    }
    let mut resp = slo
        .0
        .next
        .call(request_from(&parts, parts.method.clone(), down))
        .await;
    let mut attrs = Attrs::of(resp.headers());
    if !attrs.is_slo {
        return resp;
    }
    if manifest_get {
        return manifest_response(resp, raw_format, parts.method == Method::HEAD).await;
    }
    let part_num = match part_number(&parts) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let is_head = parts.method == Method::HEAD;
    let status = resp.status();
    let conditional_failure = matches!(
        status,
        StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED
    );
    let listing_needed = if is_head {
        attrs.is_legacy() || part_num.is_some()
    } else if conditional_failure {
        attrs.is_legacy()
    } else {
        true
    };
    // A HEAD has no body to read the manifest from, and a range or condition may have
    // been applied to the manifest's own bytes by an old object server: ask again.
    let refetch = listing_needed
        && (is_head
            || conditional_failure
            || status == StatusCode::RANGE_NOT_SATISFIABLE
            || (status == StatusCode::PARTIAL_CONTENT && !complete_body(resp.headers())));
    if refetch {
        let caller = Caller::of(&parts);
        let uri = match parts.uri.query() {
            Some(q) => format!("{}?{q}", parts.uri.path()),
            None => parts.uri.path().to_string(),
        };
        resp = slo
            .0
            .next
            .call(caller.subrequest(Method::GET, &uri, HeaderMap::new(), Body::empty(), "SLO"))
            .await;
        attrs = Attrs::of(resp.headers());
        if !attrs.is_slo {
            return resp;
        }
    }
    let (mut head, body) = resp.into_parts();
    let mut status = head.status;
    let segments = if listing_needed {
        let Ok(bytes) = http_body_util::Limited::new(body, MAX_STORED_MANIFEST)
            .collect()
            .await
            .map(|b| b.to_bytes())
        else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest",
            );
        };
        match manifest::parse_stored(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(path = %parts.uri.path(), error = %e, "Unable to load SLO manifest");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unable to load SLO manifest",
                );
            }
        }
    } else {
        None
    };
    if let Some(segs) = &segments {
        if attrs.is_legacy() {
            let parts_: Vec<_> = segs.iter().map(manifest::etag_part).collect();
            attrs.slo_etag = Some(manifest::slo_etag(&parts_));
            attrs.slo_size = Some(segs.iter().map(Stored::length).sum());
        }
    }
    let slo_etag = attrs.slo_etag.clone().unwrap_or_default();
    let slo_size = attrs.slo_size.unwrap_or(0);
    let h = &mut head.headers;
    set(h, "etag", &format!("\"{slo_etag}\""));
    set(h, "x-manifest-etag", &attrs.manifest_etag);
    set(h, "content-length", &slo_size.to_string());
    h.remove("content-range");
    if conditional_failure && !refetch {
        set(h, "content-length", "0");
        return Response::from_parts(head, Body::empty());
    }
    let last_modified = header(&head.headers, "last-modified").map(str::to_string);
    if let Some(s) =
        super::super::conditional_status(&parts.headers, &slo_etag, last_modified.as_deref())
    {
        let mut r = empty(s);
        *r.headers_mut() = head.headers;
        set(r.headers_mut(), "content-length", "0");
        return r;
    }
    let Some(segments) = segments else {
        // HEAD of a manifest with its sysmeta: the headers say everything.
        return Response::from_parts(head, Body::empty());
    };
    let mut byteranges: Vec<(u64, u64)> = Vec::new();
    let mut multipart = false;
    if let Some(n) = part_num {
        set(
            &mut head.headers,
            "x-parts-count",
            &segments.len().to_string(),
        );
        if n > segments.len() {
            let body = "The requested part number is not satisfiable";
            let mut r = if is_head {
                empty(StatusCode::RANGE_NOT_SATISFIABLE)
            } else {
                text(StatusCode::RANGE_NOT_SATISFIABLE, body)
            };
            let ct = r.headers().get("content-type").cloned();
            *r.headers_mut() = head.headers;
            if let Some(ct) = ct {
                r.headers_mut().insert("content-type", ct);
            }
            let len = if is_head { 0 } else { body.len() };
            set(r.headers_mut(), "content-length", &len.to_string());
            set(
                r.headers_mut(),
                "content-range",
                &format!("bytes */{slo_size}"),
            );
            return r;
        }
        let start: u64 = segments[..n - 1].iter().map(Stored::length).sum();
        let end = start + segments[n - 1].length() - 1;
        byteranges.push((start, end));
        status = StatusCode::PARTIAL_CONTENT;
    } else {
        match header(&parts.headers, "range").map(|r| parse_range(r, slo_size)) {
            None | Some(RangeOutcome::Full) => {
                if slo_size > 0 {
                    byteranges.push((0, slo_size - 1));
                }
            }
            Some(RangeOutcome::Unsatisfiable) => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "Requested Range Not Satisfiable",
                );
                set(
                    r.headers_mut(),
                    "content-range",
                    &format!("bytes */{slo_size}"),
                );
                set(r.headers_mut(), "etag", &format!("\"{slo_etag}\""));
                return r;
            }
            Some(RangeOutcome::Ranges(rs)) => {
                status = StatusCode::PARTIAL_CONTENT;
                multipart = rs.len() > 1;
                byteranges = rs.iter().map(|r| (r.start, r.end)).collect();
            }
        }
    }
    let ctype = header(&head.headers, "content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let boundary = multipart.then(|| format!("{:032x}", rand::random::<u128>()));
    let length = match &boundary {
        Some(b) => multipart_length(&byteranges, b, &ctype, slo_size),
        None => byteranges.iter().map(|(a, b)| b - a + 1).sum(),
    };
    if status == StatusCode::PARTIAL_CONTENT {
        if let Some(b) = &boundary {
            set(
                &mut head.headers,
                "content-type",
                &format!("multipart/byteranges;boundary={b}"),
            );
        } else {
            let (a, b) = byteranges[0];
            set(
                &mut head.headers,
                "content-range",
                &format!("bytes {a}-{b}/{slo_size}"),
            );
        }
    }
    set(&mut head.headers, "content-length", &length.to_string());
    head.status = status;
    if is_head {
        return Response::from_parts(head, Body::empty());
    }
    let writer = Writer {
        slo: slo.clone(),
        caller: Caller::of(&parts),
        base: format!("/{}/{}", path.version, quote(&path.account)),
        manifest_path: parts.uri.path().to_string(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(slo.0.conf.max_get_time),
        first: None,
        segments_served: 0,
        next_slot: tokio::time::Instant::now(),
        cache: HashMap::new(),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (first_tx, first_rx) = oneshot::channel();
    let job = Job {
        byteranges,
        boundary,
        ctype,
        total: slo_size,
    };
    tokio::spawn(writer.run(job, segments, tx, first_tx));
    if let Ok(Err(msg)) = first_rx.await {
        tracing::error!(path = %parts.uri.path(), "{msg}");
        return text(StatusCode::CONFLICT, "<html><h1>Conflict</h1><p>There was a conflict when trying to complete your request.</p></html>");
    }
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Response::from_parts(head, Body::from_stream(stream))
}

/// Whether a 206's Content-Range covers the whole manifest.
fn complete_body(h: &HeaderMap) -> bool {
    let Some(cr) = header(h, "content-range").and_then(|v| v.strip_prefix("bytes ")) else {
        return false;
    };
    let Some((span, total)) = cr.split_once('/') else {
        return false;
    };
    let Some((a, b)) = span.split_once('-') else {
        return false;
    };
    matches!((a.parse::<u64>(), b.parse::<u64>(), total.parse::<u64>()), (Ok(0), Ok(b), Ok(t)) if b + 1 == t)
}

fn multipart_length(ranges: &[(u64, u64)], boundary: &str, ctype: &str, total: u64) -> u64 {
    let mut n = 0;
    for &(a, b) in ranges {
        n += part_header(boundary, ctype, a, b, total).len() as u64 + (b - a + 1) + 2;
    }
    n + boundary.len() as u64 + 4
}

/// `?multipart-manifest=get`: the stored manifest as JSON, or (`format=raw`) in the
/// client's PUT format with its own length and ETag.
async fn manifest_response(resp: Response, raw: bool, is_head: bool) -> Response {
    let (mut head, body) = resp.into_parts();
    if !head.status.is_success() {
        return Response::from_parts(head, body);
    }
    if !raw {
        set(
            &mut head.headers,
            "content-type",
            "application/json; charset=utf-8",
        );
        return Response::from_parts(head, body);
    }
    // A HEAD has no body to convert: read the manifest as a GET would.
    let bytes = match http_body_util::Limited::new(body, MAX_STORED_MANIFEST)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest",
            )
        }
    };
    let Ok(converted) = manifest::to_raw_format(&bytes) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unable to load SLO manifest",
        );
    };
    set(
        &mut head.headers,
        "content-length",
        &converted.len().to_string(),
    );
    set(
        &mut head.headers,
        "etag",
        &hex::encode(Md5::digest(&converted)),
    );
    if is_head {
        return Response::from_parts(head, Body::empty());
    }
    Response::from_parts(head, Body::from(converted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_length_is_the_length_of_the_body_sent() {
        let ranges = [(0u64, 1u64), (10, 19)];
        let mut body = String::new();
        for &(a, b) in &ranges {
            body.push_str(&part_header("bd", "text/plain", a, b, 100));
            body.push_str(&"x".repeat((b - a + 1) as usize));
            body.push_str("\r\n");
        }
        body.push_str("--bd--");
        assert_eq!(
            multipart_length(&ranges, "bd", "text/plain", 100),
            body.len() as u64
        );
    }

    #[test]
    fn a_206_is_complete_only_when_it_covers_everything() {
        let mut h = HeaderMap::new();
        set(&mut h, "content-range", "bytes 0-99/100");
        assert!(complete_body(&h));
        set(&mut h, "content-range", "bytes 0-98/100");
        assert!(!complete_body(&h));
        set(&mut h, "content-range", "bytes 1-99/100");
        assert!(!complete_body(&h));
        assert!(!complete_body(&HeaderMap::new()));
    }
}

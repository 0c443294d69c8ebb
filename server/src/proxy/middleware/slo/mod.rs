//! slo: Static Large Objects. A manifest object lists its segments (other objects, byte
//! ranges of them, inline data, other manifests); a GET of it streams their bytes in
//! order, one segment after another, as one object.
//!
//! - `PUT ?multipart-manifest=put` checks the client's JSON manifest, HEADs every segment
//!   (through this middleware, so a segment that is itself an SLO is seen with its SLO
//!   size and ETag), and stores the manifest in Swift's format with Swift's sysmeta
//!   (`put`).
//! - `GET`/`HEAD` of a manifest answer with the large object (`get`); `?multipart-manifest=get`
//!   returns the manifest itself.
//! - `DELETE ?multipart-manifest=delete` deletes the segments, then the manifest (`delete`).
//! - Container listings get each manifest's `slo_etag`, which the PUT leaves in the
//!   container row's ETag through `X-Object-Sysmeta-Container-Update-Override-Etag`.
//!
//! Every subrequest goes to the rest of the stack with the caller's rights.

mod body;
mod delete;
mod get;
pub mod manifest;
mod put;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use ringsmith::swift::conf::ConfError;
use serde_json::Value;

use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, text};

pub const SYSMETA_SLO_ETAG: &str = "x-object-sysmeta-slo-etag";
pub const SYSMETA_SLO_SIZE: &str = "x-object-sysmeta-slo-size";
/// Where the container row's ETag override travels with the manifest.
pub const OVERRIDE_ETAG: &str = "x-object-sysmeta-container-update-override-etag";

/// The filter's options, with Swift's names and defaults.
#[derive(Clone, Debug)]
pub struct SloConfig {
    pub max_manifest_segments: usize,
    pub max_manifest_size: usize,
    pub yield_frequency: u64,
    pub allow_async_delete: bool,
    pub max_get_time: u64,
    pub rate_limit_under_size: u64,
    pub rate_limit_after_segment: usize,
    pub rate_limit_segments_per_sec: u64,
    pub concurrency: usize,
    pub delete_concurrency: usize,
}

pub struct Inner {
    pub next: App,
    pub conf: SloConfig,
}

/// The middleware; cheap to clone, so a PUT's or GET's background work can hold it.
#[derive(Clone)]
pub struct Slo(pub Arc<Inner>);

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let s = &ctx.section;
    let concurrency: i64 = s.parse_or("concurrency", 2i64)?;
    let concurrency = concurrency.clamp(0, 1000) as usize;
    let conf = SloConfig {
        max_manifest_segments: s.parse_or("max_manifest_segments", 1000usize)?,
        max_manifest_size: s.parse_or("max_manifest_size", 8 * 1024 * 1024usize)?,
        yield_frequency: s.parse_or("yield_frequency", 10u64)?,
        allow_async_delete: s.bool_or("allow_async_delete", true)?,
        max_get_time: s.parse_or("max_get_time", 86400u64)?,
        rate_limit_under_size: s.parse_or("rate_limit_under_size", 1024 * 1024u64)?,
        rate_limit_after_segment: s.parse_or("rate_limit_after_segment", 10usize)?,
        rate_limit_segments_per_sec: s.parse_or("rate_limit_segments_per_sec", 1u64)?,
        concurrency,
        delete_concurrency: s.parse_or("delete_concurrency", concurrency)?,
    };
    ctx.info.register(
        "slo",
        serde_json::json!({
            "max_manifest_segments": conf.max_manifest_segments,
            "max_manifest_size": conf.max_manifest_size,
            "yield_frequency": conf.yield_frequency,
            // Swift reports the old minimum as 1 for clients that still read it.
            "min_segment_size": 1,
            "allow_async_delete": conf.allow_async_delete,
        }),
    );
    Ok(Arc::new(Slo(Arc::new(Inner { next, conf }))))
}

impl Handler for Slo {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()) else {
                return self.0.next.call(req).await;
            };
            if path.container.is_none() {
                return self.0.next.call(req).await;
            }
            if path.object.is_none() {
                if req.method() == Method::GET {
                    return self.container_listing(req).await;
                }
                return self.0.next.call(req).await;
            }
            let mm = query_param(req.uri().query(), "multipart-manifest");
            let method = req.method().clone();
            if method == Method::PUT && mm.as_deref() == Some("put") {
                return put::handle(self, req, path).await;
            }
            if method == Method::DELETE && mm.as_deref() == Some("delete") {
                return delete::handle(self, req, path).await;
            }
            if method == Method::GET || method == Method::HEAD {
                return get::handle(self, req, path).await;
            }
            if req.headers().contains_key("x-static-large-object") {
                return text(
                    StatusCode::BAD_REQUEST,
                    "X-Static-Large-Object is a reserved header. To create a static large \
                     object add query param multipart-manifest=put.",
                );
            }
            self.0.next.call(req).await
        })
    }
}

/// Listings larger than this are passed on untouched, as Swift's are.
const MAX_LISTING_TO_ANNOTATE: usize = 1024 * 1024 * 4;

impl Slo {
    /// Each row whose ETag carries `; slo_etag=X` gets `slo_etag: "\"X\""` and its plain
    /// ETag back.
    async fn container_listing(&self, req: Request) -> Response {
        let resp = self.0.next.call(req).await;
        let is_json = header(resp.headers(), "content-type")
            .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == "application/json");
        let small = header(resp.headers(), "content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .is_some_and(|l| l <= MAX_LISTING_TO_ANNOTATE);
        if !resp.status().is_success() || !is_json || !small {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "listing read failed");
        };
        if !bytes.is_empty() && !super::listing_mentions(&bytes, "slo_etag") {
            // No manifest in this page: nothing to annotate, and nothing worth parsing.
            return Response::from_parts(parts, Body::from(bytes));
        }
        let Ok(Value::Array(mut rows)) = serde_json::from_slice::<Value>(&bytes) else {
            let mut r = Response::from_parts(parts, Body::from(bytes));
            *r.status_mut() = StatusCode::OK;
            return r;
        };
        let mut changed = false;
        for row in rows.iter_mut() {
            let Some(hash) = row.get("hash").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let mut pieces = hash.split(';');
            let etag = pieces.next().unwrap_or("").trim().to_string();
            let mut slo_etag = None;
            let mut rest = String::new();
            for p in pieces {
                let p = p.trim();
                match p.strip_prefix("slo_etag=") {
                    Some(v) => slo_etag = Some(v.to_string()),
                    None => rest.push_str(&format!("; {p}")),
                }
            }
            if let (Some(se), Value::Object(m)) = (slo_etag, row) {
                m.insert("hash".into(), Value::String(format!("{etag}{rest}")));
                m.insert("slo_etag".into(), Value::String(format!("\"{se}\"")));
                changed = true;
            }
        }
        let body = if changed {
            manifest::py_dumps(&Value::Array(rows), false).into_bytes()
        } else {
            bytes.to_vec()
        };
        set(
            &mut parts.headers,
            "content-length",
            &body.len().to_string(),
        );
        Response::from_parts(parts, Body::from(body))
    }
}

/// The formats bulk-style answers come in.
const ACCEPTABLE_FORMATS: [&str; 4] = [
    "text/plain",
    "application/json",
    "application/xml",
    "text/xml",
];

/// swob's `req.accept.best_match(ACCEPTABLE_FORMATS)`; `None` when nothing acceptable is
/// offered or the header cannot be parsed (Swift's callers treat both alike).
pub fn best_format(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = header(headers, "accept").filter(|a| !a.trim().is_empty()) else {
        return Some(ACCEPTABLE_FORMATS[0]);
    };
    let mut entries: Vec<(String, f32)> = Vec::new();
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if !media.contains('/') {
            return None;
        }
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().ok()?;
            }
        }
        entries.push((media, q));
    }
    entries.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    for (media, q) in &entries {
        if *q <= 0.0 {
            continue;
        }
        let (t, s) = media.split_once('/').unwrap_or(("", ""));
        for offer in ACCEPTABLE_FORMATS {
            let (ot, os) = offer.split_once('/').unwrap_or(("", ""));
            if (t == "*" || t == ot) && (s == "*" || s == os) {
                return Some(offer);
            }
        }
    }
    None
}

/// Swift's `get_heartbeat_response_body`: the final report of a manifest upload or delete
/// as JSON, XML or text. `fields` are the report's entries (sorted by name for text and
/// XML); `errors` are `(quoted name, status)` pairs.
pub fn report_body(
    format: &str,
    fields: &[(&str, Value)],
    errors: &[(String, String)],
    root: &str,
) -> Vec<u8> {
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut sorted: Vec<&(&str, Value)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    if format == "application/json" {
        let mut m = serde_json::Map::new();
        for (k, v) in fields {
            m.insert(k.to_string(), v.clone());
        }
        let errs: Vec<Value> = errors
            .iter()
            .map(|(n, s)| Value::Array(vec![Value::String(n.clone()), Value::String(s.clone())]))
            .collect();
        m.insert("Errors".into(), Value::Array(errs));
        return manifest::py_dumps(&Value::Object(m), false).into_bytes();
    }
    let mut out = String::new();
    if format.ends_with("/xml") {
        use ringsmith::swift::escape::xml_text;
        out.push_str(&format!("<{root}>\n"));
        for (k, v) in sorted {
            let tag = k.replace(' ', "_").to_ascii_lowercase();
            out.push_str(&format!("<{tag}>{}</{tag}>\n", xml_text(&shown(v))));
        }
        out.push_str("<errors>\n");
        for (n, s) in errors {
            out.push_str(&format!(
                "<object><name>{}</name><status>{}</status></object>\n",
                xml_text(n),
                xml_text(s)
            ));
        }
        out.push_str(&format!("</errors>\n</{root}>\n"));
        return out.into_bytes();
    }
    for (k, v) in sorted {
        out.push_str(&format!("{k}: {}\n", shown(v)));
    }
    out.push_str("Errors:\n");
    for (n, s) in errors {
        out.push_str(&format!("{n}, {s}\n"));
    }
    out.into_bytes()
}

/// `"404 Not Found"`, as Swift names a status in reports.
pub fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// Appends `value` to a comma-separated header (Swift's `csv_append`).
pub fn csv_append(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let joined = match header(headers, name).filter(|v| !v.trim().is_empty()) {
        Some(old) => format!("{old},{value}"),
        None => value.to_string(),
    };
    set(headers, name, &joined);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Option<&'static str> {
        let mut h = HeaderMap::new();
        set(&mut h, "accept", v);
        best_format(&h)
    }

    #[test]
    fn accept_picks_like_swob() {
        assert_eq!(best_format(&HeaderMap::new()), Some("text/plain"));
        assert_eq!(accept("application/json"), Some("application/json"));
        assert_eq!(
            accept("text/xml;q=0.5, application/json;q=0.9"),
            Some("application/json")
        );
        assert_eq!(accept("*/*"), Some("text/plain"));
        assert_eq!(accept("image/png"), None);
        assert_eq!(accept("garbage"), None);
    }

    #[test]
    fn reports_in_three_formats() {
        let fields = [
            ("Response Status", Value::from("400 Bad Request")),
            ("Number Deleted", Value::from(2)),
        ];
        let errs = [("/c/o".to_string(), "404 Not Found".to_string())];
        assert_eq!(
            String::from_utf8(report_body("text/plain", &fields, &errs, "delete")).unwrap(),
            "Number Deleted: 2\nResponse Status: 400 Bad Request\nErrors:\n/c/o, 404 Not Found\n"
        );
        let j: Value =
            serde_json::from_slice(&report_body("application/json", &fields, &errs, "delete"))
                .unwrap();
        assert_eq!(j["Number Deleted"], 2);
        assert_eq!(j["Errors"][0][1], "404 Not Found");
        let x =
            String::from_utf8(report_body("application/xml", &fields, &errs, "upload")).unwrap();
        assert!(
            x.starts_with("<upload>\n<number_deleted>2</number_deleted>\n"),
            "{x}"
        );
        assert!(x.contains("<object><name>/c/o</name><status>404 Not Found</status></object>"));
    }
}

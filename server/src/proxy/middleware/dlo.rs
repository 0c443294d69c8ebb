//! dlo: Dynamic Large Objects. An object whose metadata holds
//! `X-Object-Manifest: <container>/<prefix>` reads as the concatenation, in name order,
//! of every object in that container whose name starts with the prefix, as listed at
//! the moment of the GET. The manifest's own bytes are ignored; `?multipart-manifest=get`
//! returns the manifest object itself.
//!
//! The segments are listed and read with subrequests through the rest of the stack, so
//! the caller needs read access to the segment container as well. The body streams one
//! segment after another; memory stays a few chunks whatever the object's size. A single
//! byte range is served from the segments that hold it; several ranges get the whole
//! object, as Swift's DLO answers them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::ConfError;

use crate::object::range::{parse_range, RangeOutcome};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{empty, header, quote, text};

pub struct Dlo {
    next: App,
    max_get_time: u64,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let max_get_time = ctx.section.parse_or("max_get_time", 86400u64)?;
    ctx.info
        .register("dlo", serde_json::json!({"max_get_time": max_get_time}));
    Ok(Arc::new(Dlo { next, max_get_time }))
}

/// One segment as the listing gave it.
struct Segment {
    name: String,
    bytes: u64,
    etag: String,
}

impl Dlo {
    /// Every object under the prefix, following listing pages.
    async fn list_segments(
        &self,
        caller: &Caller,
        version: &str,
        account: &str,
        container: &str,
        prefix: &str,
    ) -> Result<Vec<Segment>, Response> {
        let mut segments = Vec::new();
        let mut marker = String::new();
        loop {
            let mut uri = format!(
                "/{version}/{}/{}?format=json&prefix={}",
                quote(account),
                quote(container),
                quote(prefix).replace('/', "%2F")
            );
            if !marker.is_empty() {
                uri.push_str(&format!("&marker={}", quote(&marker).replace('/', "%2F")));
            }
            let resp = self
                .next
                .call(caller.subrequest(Method::GET, &uri, HeaderMap::new(), Body::empty(), "DLO"))
                .await;
            if !resp.status().is_success() {
                return Err(resp);
            }
            let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
            if page.is_empty() {
                return Ok(segments);
            }
            for rec in &page {
                if let (Some(n), Some(b)) = (rec["name"].as_str(), rec["bytes"].as_u64()) {
                    segments.push(Segment {
                        name: n.to_string(),
                        bytes: b,
                        etag: rec["hash"].as_str().unwrap_or("").to_string(),
                    });
                    marker = n.to_string();
                }
            }
        }
    }

    async fn manifest_response(
        &self,
        req_parts: axum::http::request::Parts,
        path: ApiPath,
        manifest_resp: Response,
        manifest: &str,
    ) -> Response {
        let manifest = percent_decode_str(manifest)
            .decode_utf8_lossy()
            .into_owned();
        let Some((container, prefix)) = manifest.split_once('/') else {
            return text(StatusCode::BAD_REQUEST, "Invalid X-Object-Manifest");
        };
        let caller = Caller::of(&req_parts);
        let segments = match self
            .list_segments(&caller, &path.version, &path.account, container, prefix)
            .await
        {
            Ok(s) => s,
            Err(listing_error) => {
                if req_parts.method == Method::HEAD {
                    return empty(listing_error.status());
                }
                return listing_error;
            }
        };
        let total: u64 = segments.iter().map(|s| s.bytes).sum();
        let mut etag = md5::Md5::default();
        for s in &segments {
            md5::Digest::update(&mut etag, s.etag.as_bytes());
        }
        let etag = hex::encode(md5::Digest::finalize(etag));
        let (manifest_parts, _) = manifest_resp.into_parts();
        let mut headers = manifest_parts.headers;
        set(&mut headers, "etag", &format!("\"{etag}\""));
        headers.remove("content-range");
        // Conditions are the large object's, whatever the manifest object answered.
        let last_modified = header(&headers, "last-modified").map(str::to_string);
        if let Some(s) =
            super::conditional_status(&req_parts.headers, &etag, last_modified.as_deref())
        {
            let mut r = empty(s);
            set(&mut headers, "content-length", "0");
            *r.headers_mut() = headers;
            return r;
        }
        let window = match header(&req_parts.headers, "range").map(|v| parse_range(v, total)) {
            Some(RangeOutcome::Unsatisfiable) => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "Requested Range Not Satisfiable",
                );
                set(
                    r.headers_mut(),
                    "content-range",
                    &format!("bytes */{total}"),
                );
                return r;
            }
            Some(RangeOutcome::Ranges(rs)) if rs.len() == 1 => Some((rs[0].start, rs[0].end)),
            _ => None,
        };
        let status = match window {
            Some((start, end)) => {
                set(
                    &mut headers,
                    "content-length",
                    &(end - start + 1).to_string(),
                );
                set(
                    &mut headers,
                    "content-range",
                    &format!("bytes {start}-{end}/{total}"),
                );
                StatusCode::PARTIAL_CONTENT
            }
            None => {
                set(&mut headers, "content-length", &total.to_string());
                StatusCode::OK
            }
        };
        // Each segment that overlaps the window, with the part of it to read.
        let mut pieces: Vec<(String, Option<(u64, u64)>)> = Vec::new();
        let mut offset = 0u64;
        for s in &segments {
            let (seg_start, seg_end) = (offset, offset + s.bytes);
            offset = seg_end;
            match window {
                None => pieces.push((s.name.clone(), None)),
                Some((start, end)) => {
                    if s.bytes == 0 || seg_end <= start || seg_start > end {
                        continue;
                    }
                    let a = start.max(seg_start) - seg_start;
                    let b = end.min(seg_end - 1) - seg_start;
                    pieces.push((
                        s.name.clone(),
                        (a != 0 || b != s.bytes - 1).then_some((a, b)),
                    ));
                }
            }
        }
        if req_parts.method == Method::HEAD {
            let mut r = empty(status);
            *r.headers_mut() = headers;
            return r;
        }
        let next = self.next.clone();
        let ext = caller;
        let base = format!(
            "/{}/{}/{}",
            path.version,
            quote(&path.account),
            quote(container)
        );
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_secs(self.max_get_time);
        let stream = futures_util::stream::iter(pieces)
            .then(move |(name, part)| {
                let (next, ext) = (next.clone(), ext.clone());
                let uri = format!("{base}/{}", quote(&name));
                async move {
                    if tokio::time::Instant::now() > deadline {
                        return Err(std::io::Error::other("DLO: max_get_time exceeded"));
                    }
                    let mut h = HeaderMap::new();
                    if let Some((a, b)) = part {
                        set(&mut h, "range", &format!("bytes={a}-{b}"));
                    }
                    let r = next
                        .call(ext.subrequest(Method::GET, &uri, h, Body::empty(), "DLO"))
                        .await;
                    if !r.status().is_success() {
                        tracing::error!(segment = %name, status = r.status().as_u16(), "DLO segment read failed");
                        return Err(std::io::Error::other(format!("segment {name}: {}", r.status())));
                    }
                    Ok::<_, std::io::Error>(
                        r.into_body()
                            .into_data_stream()
                            .map(|c| c.map_err(std::io::Error::other)),
                    )
                }
            })
            .map(|r| match r {
                Ok(s) => s.boxed(),
                Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten();
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = status;
        *r.headers_mut() = headers;
        r
    }
}

/// Swift's check of an `X-Object-Manifest` on PUT: `container/prefix`, no query.
fn valid_manifest_header(value: &str) -> bool {
    match value.split_once('/') {
        Some((c, p)) => {
            !c.is_empty() && !p.is_empty() && !value.contains(['?', '&']) && !p.starts_with('/')
        }
        None => false,
    }
}

impl Handler for Dlo {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()).filter(|p| p.object.is_some()) else {
                return self.next.call(req).await;
            };
            let method = req.method().clone();
            if method == Method::PUT {
                if let Some(v) = header(req.headers(), "x-object-manifest") {
                    if !valid_manifest_header(v) {
                        return text(
                            StatusCode::BAD_REQUEST,
                            "X-Object-Manifest must be in the format container/prefix",
                        );
                    }
                }
                return self.next.call(req).await;
            }
            let wants_manifest =
                query_param(req.uri().query(), "multipart-manifest").as_deref() == Some("get");
            if !matches!(method, Method::GET | Method::HEAD) || wants_manifest {
                return self.next.call(req).await;
            }
            let (parts, body) = req.into_parts();
            let forward = |parts: &axum::http::request::Parts, drop_range: bool| {
                let mut r = Request::new(Body::empty());
                *r.method_mut() = parts.method.clone();
                *r.uri_mut() = parts.uri.clone();
                *r.headers_mut() = parts.headers.clone();
                if drop_range {
                    r.headers_mut().remove("range");
                }
                *r.extensions_mut() = parts.extensions.clone();
                r
            };
            drop(body);
            let mut parts = parts;
            // A manifest's own bytes are never what a range or condition is about.
            super::slo::csv_append(
                &mut parts.headers,
                "x-backend-ignore-range-if-metadata-present",
                "X-Object-Manifest",
            );
            let mut resp = self.next.call(forward(&parts, false)).await;
            let ranged = parts.headers.contains_key("range");
            if resp.headers().contains_key("x-object-manifest")
                && ranged
                && matches!(
                    resp.status(),
                    StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE
                )
            {
                // The range was applied to the manifest's own bytes: ask for it whole.
                resp = self.next.call(forward(&parts, true)).await;
            }
            let status = resp.status();
            let conditional_answer = matches!(
                status,
                StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED
            );
            if !status.is_success() && !conditional_answer {
                return resp;
            }
            let Some(manifest) = header(resp.headers(), "x-object-manifest").map(str::to_string)
            else {
                return resp;
            };
            if conditional_answer {
                // The object server judged the manifest's own ETag: ask again without the
                // conditions and judge the large object's.
                let mut again = forward(&parts, false);
                for h in [
                    "if-match",
                    "if-none-match",
                    "if-modified-since",
                    "if-unmodified-since",
                ] {
                    again.headers_mut().remove(h);
                }
                resp = self.next.call(again).await;
                if !resp.status().is_success() {
                    return resp;
                }
            }
            self.manifest_response(parts, path, resp, &manifest).await
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifest_headers_are_checked_as_swift_does() {
        use super::valid_manifest_header as ok;
        assert!(ok("segs/prefix") && ok("segs/a/b"));
        assert!(!ok("segs") && !ok("/prefix") && !ok("segs/") && !ok("segs//x"));
        assert!(!ok("segs/p?x=1") && !ok("segs/p&x"));
    }
}

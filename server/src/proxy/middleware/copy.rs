//! copy: server-side copies. `COPY /v1/a/c/o` with `Destination: c2/o2` (and optionally
//! `Destination-Account`) is turned into `PUT /v1/a/c2/o2` with `X-Copy-From: c/o`; a PUT
//! with `X-Copy-From` (and optionally `X-Copy-From-Account`) reads the source through the
//! rest of the stack, with the caller's rights and the caller's conditional and `Range`
//! headers, and streams it into a PUT of the destination. Because the source is read
//! through the stack, copying a large-object manifest copies its content; with
//! `?multipart-manifest=get` the manifest itself is copied.
//!
//! Metadata: the source's user metadata and content headers are carried over and the
//! request's headers override them; with `X-Fresh-Metadata: true` only the request's are
//! kept. A plain object's copy is checked against the source's ETag on the way in.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::{is_true, ConfError};

use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, quote, text};

pub struct Copy {
    next: App,
    max_file_size: u64,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    ctx.info.register("copy", serde_json::json!({}));
    Ok(Arc::new(Copy {
        next,
        max_file_size: ctx.swift.constraints.max_file_size,
    }))
}

/// `container/object` from a `Destination` or `X-Copy-From` value (quoted, with an
/// optional leading slash), or Swift's 412 naming the header.
fn container_and_object(value: &str, header_name: &str) -> Result<(String, String), Response> {
    let decoded = percent_decode_str(value.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    match decoded.split_once('/') {
        Some((c, o)) if !c.is_empty() && !o.is_empty() => Ok((c.to_string(), o.to_string())),
        _ => Err(text(
            StatusCode::PRECONDITION_FAILED,
            format!("{header_name} header must be of the form <container name>/<object name>"),
        )),
    }
}

/// An account named in `Destination-Account`/`X-Copy-From-Account`: unquoted, no slash.
fn account_header(value: &str, header_name: &str) -> Result<String, Response> {
    let account = percent_decode_str(value).decode_utf8_lossy().into_owned();
    if account.is_empty() || account.contains('/') {
        return Err(text(
            StatusCode::PRECONDITION_FAILED,
            format!("{header_name} must be a valid account name"),
        ));
    }
    Ok(account)
}

/// Source headers never carried onto the copy: the source's own identity, transport
/// and cluster-internal state.
fn carried_from_source(name: &str, fresh: bool) -> bool {
    let excluded = matches!(
        name,
        "x-static-large-object"
            | "x-object-manifest"
            | "etag"
            | "content-type"
            | "x-timestamp"
            | "content-length"
            | "content-range"
            | "last-modified"
            | "accept-ranges"
            | "date"
            | "connection"
            | "transfer-encoding"
            | "x-trans-id"
            | "x-openstack-request-id"
    ) || name.starts_with("x-backend-");
    let sysmeta = name.starts_with("x-object-sysmeta-");
    if fresh {
        sysmeta
    } else {
        !excluded
    }
}

impl Copy {
    async fn handle_copy(&self, mut req: Request, path: ApiPath) -> Response {
        let Some(dest) = header(req.headers(), "destination").map(str::to_string) else {
            return text(
                StatusCode::PRECONDITION_FAILED,
                "Destination header required",
            );
        };
        let mut dest_path = path.clone();
        let h = req.headers_mut();
        if let Some(acct) = header(h, "destination-account").map(str::to_string) {
            dest_path.account = match account_header(&acct, "Destination-Account") {
                Ok(a) => a,
                Err(r) => return r,
            };
            set(h, "x-copy-from-account", &quote(&path.account));
            h.remove("destination-account");
        }
        let (dc, dobj) = match container_and_object(&dest, "Destination") {
            Ok(d) => d,
            Err(r) => return r,
        };
        dest_path.container = Some(dc);
        dest_path.object = Some(dobj);
        let source = format!(
            "/{}/{}",
            path.container.as_deref().unwrap_or(""),
            path.object.as_deref().unwrap_or("")
        );
        set(h, "x-copy-from", &quote(&source));
        set(h, "content-length", "0");
        h.remove("destination");
        *req.method_mut() = Method::PUT;
        let uri = match req.uri().query() {
            Some(q) => format!("{}?{q}", dest_path.to_path()),
            None => dest_path.to_path(),
        };
        if let Ok(u) = uri.parse() {
            *req.uri_mut() = u;
        }
        self.handle_put(req, dest_path).await
    }

    async fn handle_put(&self, req: Request, path: ApiPath) -> Response {
        if header(req.headers(), "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
        {
            let mut r = text(
                StatusCode::BAD_REQUEST,
                "Copy requests require a zero byte body",
            );
            set(r.headers_mut(), "content-type", "text/plain");
            return r;
        }
        let (parts, _) = req.into_parts();
        let caller = Caller::from(&parts.extensions, &HeaderMap::new());
        let src_account = match header(&parts.headers, "x-copy-from-account") {
            Some(a) => match account_header(a, "X-Copy-From-Account") {
                Ok(a) => a,
                Err(r) => return r,
            },
            None => path.account.clone(),
        };
        let copy_from = header(&parts.headers, "x-copy-from")
            .unwrap_or("")
            .to_string();
        let (sc, so) = match container_and_object(&copy_from, "X-Copy-From") {
            Ok(s) => s,
            Err(r) => return r,
        };
        let source_path = ApiPath {
            version: path.version.clone(),
            account: src_account.clone(),
            container: Some(sc.clone()),
            object: Some(so.clone()),
        };
        let query = parts.uri.query().map(str::to_string);
        let manifest_get =
            query_param(query.as_deref(), "multipart-manifest").as_deref() == Some("get");

        // The source, read as the caller would read it: same headers, GET, the newest copy.
        let mut source_headers = parts.headers.clone();
        for k in [
            "x-copy-from",
            "x-copy-from-account",
            "content-length",
            "transfer-encoding",
            "etag",
            "content-type",
        ] {
            source_headers.remove(k);
        }
        set(&mut source_headers, "x-newest", "true");
        // The source GET carries the request's query (`part-number` picks one SLO part);
        // a manifest is read in the format a manifest PUT takes.
        let mut source_query: Vec<String> = query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !(manifest_get && p.split('=').next() == Some("format")))
            .map(str::to_string)
            .collect();
        if manifest_get {
            source_query.push("format=raw".into());
        }
        let source_uri = if source_query.is_empty() {
            source_path.to_path()
        } else {
            format!("{}?{}", source_path.to_path(), source_query.join("&"))
        };
        let source = self
            .next
            .call(caller.subrequest(
                Method::GET,
                &source_uri,
                source_headers,
                Body::empty(),
                "SSC",
            ))
            .await;
        if source.status().as_u16() >= 300 {
            return source;
        }
        let Some(length) = header(source.headers(), "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&l| l <= self.max_file_size)
        else {
            return crate::proxy::status_text(StatusCode::PAYLOAD_TOO_LARGE);
        };
        let (source_parts, source_body) = source.into_parts();
        let sh = &source_parts.headers;
        let is_slo = sh.contains_key("x-static-large-object");
        let is_dlo = sh.contains_key("x-object-manifest");

        let fresh = header(&parts.headers, "x-fresh-metadata").is_some_and(is_true);
        let mut sink = HeaderMap::new();
        for (k, v) in sh {
            if carried_from_source(k.as_str(), fresh) {
                sink.append(k.clone(), v.clone());
            }
        }
        for (k, v) in &parts.headers {
            if fresh && k.as_str().starts_with("x-object-sysmeta-") {
                continue;
            }
            sink.insert(k.clone(), v.clone());
        }
        for k in ["x-copy-from", "x-copy-from-account", "transfer-encoding"] {
            sink.remove(k);
        }
        let mut params: Vec<String> = query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                !matches!(
                    p.split('=').next(),
                    Some("multipart-manifest" | "version-id")
                )
            })
            .map(str::to_string)
            .collect();
        if manifest_get {
            if is_slo {
                params.push("multipart-manifest=put".into());
            }
            if let Some(m) = sh.get("x-object-manifest") {
                sink.insert(HeaderName::from_static("x-object-manifest"), m.clone());
            }
        }
        let source_etag = header(sh, "etag").map(|e| e.trim_matches('"').to_string());
        if source_parts.status == StatusCode::OK && !is_slo && (!is_dlo || manifest_get) {
            if let Some(e) = &source_etag {
                set(&mut sink, "etag", e);
            }
        } else {
            sink.remove("etag");
            let overrides: Vec<_> = sink
                .keys()
                .filter(|k| {
                    k.as_str()
                        .starts_with("x-object-sysmeta-container-update-override-")
                })
                .cloned()
                .collect();
            for k in overrides {
                sink.remove(k);
            }
        }
        if header(&parts.headers, "content-type").is_none() {
            if let Some(ct) = sh.get("content-type") {
                sink.insert(HeaderName::from_static("content-type"), ct.clone());
            }
        }
        set(&mut sink, "content-length", &length.to_string());
        let sink_uri = if params.is_empty() {
            path.to_path()
        } else {
            format!("{}?{}", path.to_path(), params.join("&"))
        };
        let mut response_meta = HeaderMap::new();
        for (k, v) in &sink {
            let n = k.as_str();
            if n.starts_with("x-object-meta-")
                || n.starts_with("x-object-sysmeta-")
                || n.starts_with("x-object-transient-sysmeta-")
                || n == "x-delete-at"
            {
                response_meta.insert(k.clone(), v.clone());
            }
        }
        let mut put = caller.subrequest(Method::PUT, &sink_uri, sink, source_body, "SSC");
        // The copy is the caller's write: it keeps the caller's source tag for logs.
        put.extensions_mut()
            .remove::<crate::proxy::env::SwiftSource>();
        let mut resp = self.next.call(put).await;
        if resp.status().is_success() {
            let h = resp.headers_mut();
            for (k, v) in response_meta {
                if let Some(k) = k {
                    h.insert(k, v);
                }
            }
            set(h, "x-copied-from-account", &quote(&src_account));
            set(h, "x-copied-from", &quote(&format!("{sc}/{so}")));
            if let Some(lm) = header(sh, "last-modified") {
                set(h, "x-copied-from-last-modified", lm);
            }
            if let Some(v) = header(sh, "x-object-version-id") {
                set(h, "x-copied-from-version-id", v);
            }
        }
        resp
    }
}

impl Handler for Copy {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let path = ApiPath::parse(req.uri().path());
            let Some(path) = path.filter(|p| p.object.is_some()) else {
                return self.next.call(req).await;
            };
            if req.method() == Method::PUT
                && header(req.headers(), "x-copy-from").is_some_and(|v| !v.is_empty())
            {
                return self.handle_put(req, path).await;
            }
            if req.method().as_str() == "COPY" {
                return self.handle_copy(req, path).await;
            }
            self.next.call(req).await
        })
    }
}

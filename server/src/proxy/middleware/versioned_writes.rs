//! versioned_writes: Swift's original object versioning, per container.
//!
//! With `allow_versioned_writes = true`, a container's owner sets
//! `X-Versions-Location: <archive container>` (*stack* mode) or
//! `X-History-Location: <archive container>` (*history* mode); the middleware keeps the
//! choice in container sysmeta. Then:
//! - an object PUT first copies the object it replaces into the archive container, as
//!   `<3 hex digits of the name's length><name>/<its timestamp>`, so listing the archive
//!   with that prefix lists the versions, oldest first;
//! - in stack mode, a DELETE removes the current object and restores the newest archived
//!   version in its place (skipping over delete markers that history mode left);
//! - in history mode, a DELETE archives the current object, writes a delete marker
//!   (`application/x-deleted;swift_versions_deleted=1`), then deletes.
//!
//! Archive reads and writes are made on the middleware's own authority, after the
//! caller's right to write the versioned container has been checked. Without the option
//! set (Swift's default) the middleware passes everything through. Swift's newer
//! `allow_object_versioning` (`?versions` listings and version ids) lives in
//! [`super::object_versioning`]; this filter loads it, beneath itself, when asked.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::ConfError;
use ringsmith::swift::Timestamp;

use crate::proxy::auth::Decision;
use crate::proxy::backend::set;
use crate::proxy::env::{authorize_now, denied_response, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, status_text, text, Proxy};

const CLIENT_VERSIONS: &str = "x-versions-location";
const CLIENT_HISTORY: &str = "x-history-location";
const SYSMETA_LOCATION: &str = "x-container-sysmeta-versions-location";
const SYSMETA_MODE: &str = "x-container-sysmeta-versions-mode";
pub const DELETE_MARKER: &str = "application/x-deleted;swift_versions_deleted=1";

pub struct VersionedWrites {
    next: App,
    proxy: Arc<Proxy>,
    enabled: bool,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let enabled = ctx.section.bool_or("allow_versioned_writes", false)?;
    if enabled {
        ctx.info.register(
            "versioned_writes",
            serde_json::json!({"allowed_flags": [CLIENT_VERSIONS, CLIENT_HISTORY]}),
        );
    }
    // As in Swift, both styles may be on at once: the legacy one wraps the newer one, and
    // a container uses one or the other.
    let next = if ctx.section.bool_or("allow_object_versioning", false)? {
        if !ctx.info.snapshot().contains_key("symlink") {
            return Err(ctx.bad_option(
                "allow_object_versioning",
                "object versioning requires symlinks: put the symlink filter to the right \
                 of versioned_writes in the pipeline",
            ));
        }
        ctx.info
            .register("object_versioning", serde_json::json!({}));
        super::object_versioning::new(next, ctx.proxy.clone())
    } else {
        next
    };
    Ok(Arc::new(VersionedWrites {
        next,
        proxy: ctx.proxy.clone(),
        enabled,
    }))
}

/// `<3 hex digits of the name's length in bytes><name>/`.
pub fn versions_prefix(object: &str) -> String {
    format!("{:03x}{object}/", object.len())
}

fn plain(status: StatusCode, body: &str) -> Response {
    let mut r = text(status, body.to_string());
    set(r.headers_mut(), "content-type", "text/plain");
    r
}

/// Source headers carried onto an archived (or restored) copy.
pub(crate) fn carried(name: &str) -> bool {
    !(name.starts_with("x-backend-")
        || matches!(
            name,
            "x-timestamp"
                | "last-modified"
                | "date"
                | "connection"
                | "transfer-encoding"
                | "accept-ranges"
                | "content-range"
                | "x-trans-id"
                | "x-openstack-request-id"
        ))
}

/// Why an archive step failed, as Swift answers it.
fn step_error(status: StatusCode) -> Response {
    if status.is_client_error() {
        status_text(StatusCode::PRECONDITION_FAILED)
    } else {
        status_text(StatusCode::SERVICE_UNAVAILABLE)
    }
}

impl VersionedWrites {
    fn container_path(&self, path: &ApiPath, container: &str) -> ApiPath {
        ApiPath {
            container: Some(container.to_string()),
            object: None,
            ..path.clone()
        }
    }

    /// Copies the object at `from` to `to`; `Ok(false)` when there was nothing to copy.
    async fn copy_object(&self, caller: &Caller, from: &str, to: &str) -> Result<bool, Response> {
        let mut h = HeaderMap::new();
        set(&mut h, "x-newest", "true");
        let source = self
            .next
            .call(caller.pre_authed(
                Method::GET,
                &format!("{from}?symlink=get"),
                h,
                Body::empty(),
                "VW",
            ))
            .await;
        if source.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !source.status().is_success() {
            return Err(step_error(source.status()));
        }
        if header(source.headers(), "content-length").is_none() {
            return Err(status_text(StatusCode::PAYLOAD_TOO_LARGE));
        }
        let (parts, body) = source.into_parts();
        let mut h = HeaderMap::new();
        for (k, v) in &parts.headers {
            if carried(k.as_str()) {
                h.append(k.clone(), v.clone());
            }
        }
        if let Some(size) = header(&parts.headers, "x-object-sysmeta-slo-size").map(str::to_string)
        {
            if let Some(ct) = header(&h, "content-type").map(str::to_string) {
                set(&mut h, "content-type", &format!("{ct};swift_bytes={size}"));
            }
        }
        let mut put = caller.pre_authed(Method::PUT, to, h, body, "VW");
        // An archived manifest keeps its `swift_bytes` (and a marker its own parameter).
        put.extensions_mut()
            .insert(crate::proxy::env::ContentTypeOverridden);
        let put = self.next.call(put).await;
        if !put.status().is_success() {
            return Err(step_error(put.status()));
        }
        Ok(true)
    }

    /// Archives the current object, if any, under its timestamp.
    async fn archive_current(
        &self,
        caller: &Caller,
        path: &ApiPath,
        versions: &str,
    ) -> Result<(), Response> {
        let mut h = HeaderMap::new();
        set(&mut h, "x-newest", "true");
        let head = self
            .next
            .call(caller.pre_authed(
                Method::HEAD,
                &format!("{}?symlink=get", path.to_path()),
                h,
                Body::empty(),
                "VW",
            ))
            .await;
        if head.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if !head.status().is_success() {
            return Err(step_error(head.status()));
        }
        let ts = header(head.headers(), "x-timestamp")
            .and_then(|t| Timestamp::parse(t).ok())
            .or_else(|| {
                header(head.headers(), "last-modified")
                    .and_then(ringsmith::swift::timestamp::parse_http_date)
                    .map(|secs| {
                        Timestamp::from_ticks(secs * ringsmith::swift::timestamp::TICKS_PER_SEC, 0)
                    })
            })
            .unwrap_or_else(Timestamp::now);
        let object = path.object.as_deref().unwrap_or_default();
        let archived = ApiPath {
            container: Some(versions.to_string()),
            object: Some(format!("{}{}", versions_prefix(object), ts.internal())),
            ..path.clone()
        };
        self.copy_object(caller, &path.to_path(), &archived.to_path())
            .await
            .map(|_| ())
    }

    /// The archive's versions of the object, newest first.
    async fn versions_newest_first(
        &self,
        caller: &Caller,
        path: &ApiPath,
        versions: &str,
    ) -> Result<Vec<serde_json::Value>, Response> {
        let prefix = versions_prefix(path.object.as_deref().unwrap_or_default());
        let base = self.container_path(path, versions).to_path();
        let mut all = Vec::new();
        let mut marker = String::new();
        loop {
            let uri = format!(
                "{base}?format=json&prefix={}&marker={}",
                crate::proxy::quote(&prefix).replace('/', "%2F"),
                crate::proxy::quote(&marker).replace('/', "%2F")
            );
            let resp = self
                .next
                .call(caller.pre_authed(Method::GET, &uri, HeaderMap::new(), Body::empty(), "VW"))
                .await;
            if resp.status() == StatusCode::NOT_FOUND {
                break;
            }
            if !resp.status().is_success() {
                return Err(step_error(resp.status()));
            }
            let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
            let Some(last) = page.last().and_then(|e| e["name"].as_str()) else {
                break;
            };
            marker = last.to_string();
            all.extend(page);
        }
        all.reverse();
        Ok(all)
    }

    /// Stack mode DELETE: restore the newest archived version in place of the current
    /// object; the answer is that of removing the restored version from the archive. With
    /// nothing to restore, the DELETE goes ahead as asked.
    async fn delete_pop(&self, parts: Parts, path: ApiPath, versions: &str) -> Response {
        let caller = Caller::of(&parts);
        let listing = match self.versions_newest_first(&caller, &path, versions).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        let archive_of = |name: &str| ApiPath {
            container: Some(versions.to_string()),
            object: Some(name.to_string()),
            ..path.clone()
        };
        let mut items = listing.iter();
        while let Some(prev) = items.next() {
            let Some(name) = prev["name"].as_str() else {
                continue;
            };
            if prev["content_type"].as_str() == Some(DELETE_MARKER) {
                // The object was deleted in history mode: if it is still gone, drop the
                // marker; if something is there again, delete only that.
                let mut h = HeaderMap::new();
                set(&mut h, "x-newest", "true");
                let head = self
                    .next
                    .call(caller.pre_authed(Method::HEAD, &path.to_path(), h, Body::empty(), "VW"))
                    .await;
                if head.status() != StatusCode::NOT_FOUND {
                    if !head.status().is_success() {
                        return step_error(head.status());
                    }
                    break;
                }
                for restore in items.by_ref() {
                    if restore["content_type"].as_str() == Some(DELETE_MARKER) {
                        break;
                    }
                    let Some(rname) = restore["name"].as_str() else {
                        continue;
                    };
                    let from = archive_of(rname).to_path();
                    match self.copy_object(&caller, &from, &path.to_path()).await {
                        Ok(false) => continue,
                        Err(r) => return r,
                        Ok(true) => {
                            let del = self
                                .next
                                .call(caller.pre_authed(
                                    Method::DELETE,
                                    &from,
                                    HeaderMap::new(),
                                    Body::empty(),
                                    "VW",
                                ))
                                .await;
                            if del.status() != StatusCode::NOT_FOUND && !del.status().is_success() {
                                return step_error(del.status());
                            }
                            break;
                        }
                    }
                }
                return self
                    .next
                    .call(caller.pre_authed(
                        Method::DELETE,
                        &archive_of(name).to_path(),
                        HeaderMap::new(),
                        Body::empty(),
                        "VW",
                    ))
                    .await;
            }
            let from = archive_of(name).to_path();
            match self.copy_object(&caller, &from, &path.to_path()).await {
                Ok(false) => continue,
                Err(r) => return r,
                Ok(true) => {
                    return self
                        .next
                        .call(caller.pre_authed(
                            Method::DELETE,
                            &from,
                            HeaderMap::new(),
                            Body::empty(),
                            "VW",
                        ))
                        .await;
                }
            }
        }
        self.next
            .call(Request::from_parts(parts, Body::empty()))
            .await
    }

    async fn object(&self, req: Request, path: ApiPath) -> Response {
        let container = path.container.clone().unwrap_or_default();
        let info = self.proxy.container_info(&path.account, &container).await;
        let location = info.sysmeta.get("versions-location").cloned();
        let Some(location) = location.filter(|l| !l.is_empty() && self.enabled) else {
            return self.next.call(req).await;
        };
        let versions = percent_decode_str(&location)
            .decode_utf8_lossy()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let history = info.sysmeta.get("versions-mode").map(String::as_str) == Some("history");
        let (parts, body) = req.into_parts();
        if authorize_now(&parts, &path, info.write_acl.as_deref()) == Decision::Denied {
            return denied_response(&parts);
        }
        let caller = Caller::of(&parts);
        if parts.method == Method::PUT || history {
            if let Err(r) = self.archive_current(&caller, &path, &versions).await {
                return r;
            }
        }
        if parts.method == Method::DELETE && history {
            let object = path.object.as_deref().unwrap_or_default();
            let marker = ApiPath {
                container: Some(versions.clone()),
                object: Some(format!(
                    "{}{}",
                    versions_prefix(object),
                    Timestamp::now().internal()
                )),
                ..path.clone()
            };
            let mut h = HeaderMap::new();
            set(&mut h, "content-type", DELETE_MARKER);
            set(&mut h, "content-length", "0");
            let mut marker_put =
                caller.pre_authed(Method::PUT, &marker.to_path(), h, Body::empty(), "VW");
            // The marker's type carries a swift_* parameter, which only middlewares may set.
            marker_put
                .extensions_mut()
                .insert(crate::proxy::env::ContentTypeOverridden);
            let r = self.next.call(marker_put).await;
            if !r.status().is_success() {
                return step_error(r.status());
            }
        }
        if parts.method == Method::DELETE && !history {
            return self.delete_pop(parts, path, &versions).await;
        }
        self.next.call(Request::from_parts(parts, body)).await
    }

    fn container(&self, mut req: Request) -> Result<Request, Response> {
        let h = req.headers_mut();
        if h.contains_key(CLIENT_VERSIONS) && h.contains_key(CLIENT_HISTORY) {
            if header(h, CLIENT_HISTORY).is_some_and(str::is_empty) {
                h.remove(CLIENT_HISTORY);
            } else if header(h, CLIENT_VERSIONS).is_some_and(|v| !v.is_empty()) {
                return Err(plain(
                    StatusCode::BAD_REQUEST,
                    "Only one of X-Versions-Location or X-History-Location may be specified",
                ));
            } else {
                h.remove(CLIENT_VERSIONS);
            }
        }
        let chosen = [(CLIENT_VERSIONS, "stack"), (CLIENT_HISTORY, "history")]
            .into_iter()
            .find_map(|(name, mode)| header(h, name).map(|v| (v.to_string(), mode)));
        if let Some((value, mode)) = chosen {
            if value.is_empty() {
                set(h, "x-remove-versions-location", "x");
            } else {
                if value.contains('/') {
                    return Err(plain(
                        StatusCode::PRECONDITION_FAILED,
                        "Container name cannot contain slashes",
                    ));
                }
                set(h, SYSMETA_LOCATION, &value);
                set(h, SYSMETA_MODE, mode);
                h.remove(CLIENT_HISTORY);
                h.insert(
                    HeaderName::from_static(CLIENT_VERSIONS),
                    HeaderValue::from_static(""),
                );
                h.remove("x-remove-versions-location");
                h.remove("x-remove-history-location");
            }
        }
        let removing = ["x-remove-versions-location", "x-remove-history-location"]
            .iter()
            .any(|k| header(h, k).is_some_and(|v| !v.is_empty()));
        if removing {
            for k in [CLIENT_VERSIONS, SYSMETA_LOCATION, SYSMETA_MODE] {
                h.insert(HeaderName::from_static(k), HeaderValue::from_static(""));
            }
            h.remove("x-remove-versions-location");
            h.remove("x-remove-history-location");
        }
        Ok(req)
    }
}

impl Handler for VersionedWrites {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()).filter(|p| p.container.is_some())
            else {
                return self.next.call(req).await;
            };
            if !self.enabled {
                return self.next.call(req).await;
            }
            if path.object.is_none() {
                let req = if matches!(*req.method(), Method::PUT | Method::POST) {
                    match self.container(req) {
                        Ok(r) => r,
                        Err(resp) => return resp,
                    }
                } else {
                    req
                };
                let mut resp = self.next.call(req).await;
                let h = resp.headers_mut();
                if let Some(location) = header(h, SYSMETA_LOCATION)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                {
                    let client = if header(h, SYSMETA_MODE) == Some("history") {
                        CLIENT_HISTORY
                    } else {
                        CLIENT_VERSIONS
                    };
                    set(h, client, &location);
                }
                return resp;
            }
            if matches!(*req.method(), Method::PUT | Method::DELETE) {
                return self.object(req, path).await;
            }
            self.next.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_names_sort_by_object_then_time() {
        assert_eq!(super::versions_prefix("obj"), "003obj/");
        assert_eq!(super::versions_prefix("ü"), "002ü/");
    }
}

//! Object requests in a container with object versioning: versioned PUT/DELETE/POST,
//! the version id on reads, and `?version-id=` operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use ringsmith::swift::escape::{quote, unquote};
use ringsmith::swift::timestamp::{parse_http_date, TICKS_PER_SEC};
use ringsmith::swift::Timestamp;

use super::*;
use crate::proxy::auth::Decision;
use crate::proxy::env::{authorize_now, denied_response, query_param, ContentTypeOverridden};

const SYMLINK_TARGET: &str = "x-symlink-target";
const SYS_SYMLINK_TARGET_ETAG: &str = "x-object-sysmeta-symlink-target-etag";
const SYS_SYMLINK_TARGET_BYTES: &str = "x-object-sysmeta-symlink-target-bytes";
const SYS_SYMLOOP_EXTEND: &str = "x-object-sysmeta-symloop-extend";
const SYS_ALLOW_RESERVED: &str = "x-object-sysmeta-allow-reserved-names";

/// What an object request needs to know about its container's versioning.
pub(super) struct Versioned {
    path: ApiPath,
    /// The versions container (empty when the container was never versioned).
    versions: String,
    enabled: bool,
    write_acl: Option<String>,
}

impl Versioned {
    fn object(&self) -> &str {
        self.path.object.as_deref().unwrap_or_default()
    }

    fn versions_path(&self, object: &str) -> String {
        ApiPath {
            container: Some(self.versions.clone()),
            object: Some(object.to_string()),
            ..self.path.clone()
        }
        .to_path()
    }
}

fn set_version_id(resp: &mut Response, id: &str) {
    set(resp.headers_mut(), "x-object-version-id", id);
}

/// A request like `parts` (same caller, same rights) for another path.
fn reroute(mut parts: Parts, path: &str, body: Body) -> Request {
    if let Ok(u) = path.parse() {
        parts.uri = u;
    }
    Request::from_parts(parts, body)
}

/// A body that counts the bytes it passes on (the size of a chunked upload).
fn counted(body: Body, count: Arc<AtomicU64>) -> Body {
    Body::from_stream(body.into_data_stream().map(move |chunk| {
        if let Ok(c) = &chunk {
            count.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
        chunk
    }))
}

impl ObjectVersioning {
    pub(super) async fn object_request(&self, req: Request, path: ApiPath) -> Response {
        let container = path.container.clone().unwrap_or_default();
        let info = self.proxy.container_info(&path.account, &container).await;
        let versions = info
            .sysmeta
            .get("versions-container")
            .map(|v| unquote(v).split('/').next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let v = Versioned {
            path,
            versions,
            enabled: is_true(info.sysmeta.get("versions-enabled").map(String::as_str)),
            write_acl: info.write_acl.clone(),
        };
        let version_id = query_param(req.uri().query(), "version-id").filter(|id| !id.is_empty());
        if let Some(id) = version_id {
            return self.with_version_id(req, v, id).await;
        }
        if v.versions.is_empty() {
            return self.next.call(req).await;
        }
        match *req.method() {
            Method::PUT => self.put(req, v).await,
            Method::POST => self.post(req, v).await,
            Method::DELETE => self.delete(req, v).await,
            _ => self.get_head(req, v).await,
        }
    }

    async fn with_version_id(&self, req: Request, v: Versioned, id: String) -> Response {
        let method = req.method().clone();
        if method == Method::POST {
            return text(
                StatusCode::BAD_REQUEST,
                "POST to a specific version is not allowed",
            );
        }
        if v.versions.is_empty() && id != "null" {
            return text(
                StatusCode::BAD_REQUEST,
                "version-aware operations require that the container is versioned",
            );
        }
        if id != "null" && Timestamp::parse(&id).is_err() {
            return text(StatusCode::BAD_REQUEST, "Invalid version parameter");
        }
        match method {
            // The proxy answers OPTIONS from the container in the request path.
            Method::OPTIONS => self.next.call(req).await,
            Method::DELETE => self.delete_version(req, v, id).await,
            Method::PUT => self.restore_version(req, v, id).await,
            _ if id == "null" => self.get_head_null_version(req).await,
            _ => self.get_head_version(req, v, id).await,
        }
    }

    /// Checks the caller may write the container, then copies an object written before
    /// versioning was enabled (anything but a versions symlink) into the versions
    /// container, named by its own timestamp.
    async fn copy_current(&self, parts: &Parts, v: &Versioned) -> Result<(), Response> {
        if authorize_now(parts, &v.path, v.write_acl.as_deref()) == Decision::Denied {
            return Err(denied_response(parts));
        }
        let caller = Caller::of(parts);
        let mut h = HeaderMap::new();
        set(&mut h, "x-newest", "true");
        let source = self
            .next
            .call(caller.pre_authed(
                Method::GET,
                &format!("{}?symlink=get", v.path.to_path()),
                h,
                Body::empty(),
                "OV",
            ))
            .await;
        if source.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let too_big = header(source.headers(), "content-length")
            .and_then(|l| l.parse::<u64>().ok())
            .is_none_or(|l| l > self.proxy.constraints.max_file_size);
        if source.status().is_success() && too_big {
            return Err(status_text(StatusCode::PAYLOAD_TOO_LARGE));
        }
        if !source.status().is_success() {
            return Err(step_error(source).await);
        }
        if is_true(header(source.headers(), SYSMETA_VERSIONS_SYMLINK)) {
            return Ok(());
        }
        let sh = source.headers();
        let ts = ["x-backend-timestamp", "x-timestamp"]
            .iter()
            .find_map(|k| header(sh, k).and_then(|t| Timestamp::parse(t).ok()))
            .or_else(|| {
                header(sh, "last-modified")
                    .and_then(parse_http_date)
                    .map(|s| Timestamp::from_ticks(s * TICKS_PER_SEC, 0))
            })
            .unwrap_or_else(Timestamp::now);
        let Some(name) = version_object_name(v.object(), &version_of(&ts)) else {
            return Err(status_text(StatusCode::INTERNAL_SERVER_ERROR));
        };
        let (sparts, body) = source.into_parts();
        let mut h = HeaderMap::new();
        for (k, val) in &sparts.headers {
            if crate::proxy::middleware::versioned_writes::carried(k.as_str()) {
                h.append(k.clone(), val.clone());
            }
        }
        let mut overridden = false;
        if let Some(size) = header_str(&sparts.headers, "x-object-sysmeta-slo-size") {
            if let Some(ct) = header_str(&h, "content-type") {
                set(&mut h, "content-type", &format!("{ct}; swift_bytes={size}"));
                overridden = true;
            }
        }
        let mut put = self.internal(&caller, Method::PUT, &v.versions_path(&name), h, body);
        if overridden {
            put.extensions_mut().insert(ContentTypeOverridden);
        }
        let resp = self.next.call(put).await;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                NO_VERSIONS_CONTAINER,
            ));
        }
        if !resp.status().is_success() {
            return Err(step_error(resp).await);
        }
        Ok(())
    }

    /// PUT while versioning is enabled: the data goes to the versions container, and the
    /// object becomes a static symlink to it.
    async fn put(&self, req: Request, v: Versioned) -> Response {
        if !v.enabled {
            return self.next.call(req).await;
        }
        let (mut parts, body) = req.into_parts();
        if let Err(r) = self.copy_current(&parts, &v).await {
            return r;
        }
        let ts = Timestamp::now();
        set(&mut parts.headers, "x-timestamp", &ts.internal());
        let Some(name) = version_object_name(v.object(), &version_of(&ts)) else {
            return status_text(StatusCode::INTERNAL_SERVER_ERROR);
        };
        // The client's request, metadata and all, moves to the versions container.
        let mut h = HeaderMap::new();
        for (k, val) in &parts.headers {
            if !matches!(k.as_str(), "x-delete-at" | "x-delete-after") {
                h.append(k.clone(), val.clone());
            }
        }
        let count = Arc::new(AtomicU64::new(0));
        let caller = Caller::of(&parts);
        let mut put = self.internal(
            &caller,
            Method::PUT,
            &v.versions_path(&name),
            h,
            counted(body, count.clone()),
        );
        if parts.extensions.get::<ContentTypeOverridden>().is_some() {
            put.extensions_mut().insert(ContentTypeOverridden);
        }
        let put_resp = self.next.call(put).await;
        if put_resp.status() == StatusCode::NOT_FOUND {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, NO_VERSIONS_CONTAINER);
        }
        if !put_resp.status().is_success() {
            return step_error(put_resp).await;
        }
        let etag = header_str(put_resp.headers(), "etag").unwrap_or_default();
        let bytes = header_str(&parts.headers, "x-object-sysmeta-slo-size")
            .unwrap_or_else(|| count.load(Ordering::Relaxed).to_string());
        // The type the version was stored with: the proxy guesses one when none was given.
        let detect = is_true(header(&parts.headers, "x-detect-content-type"));
        let content_type = match header(&parts.headers, "content-type") {
            Some(ct) if !detect => ct.split(';').next().unwrap_or_default().trim().to_string(),
            _ => crate::proxy::mime_types::guess(v.object())
                .unwrap_or("application/octet-stream")
                .to_string(),
        };
        parts.headers.remove("x-detect-content-type");
        self.put_symlink_to_version(parts, &v, &name, &etag, &bytes, &content_type)
            .await
    }

    /// Makes the object a static symlink to version object `name` (Swift's
    /// `_put_symlink_to_version`), a moment after the version itself was written.
    async fn put_symlink_to_version(
        &self,
        mut parts: Parts,
        v: &Versioned,
        name: &str,
        etag: &str,
        bytes: &str,
        content_type: &str,
    ) -> Response {
        parts.method = Method::PUT;
        let ts = header(&parts.headers, "x-timestamp")
            .and_then(|t| Timestamp::parse(t).ok())
            .unwrap_or_else(Timestamp::now);
        let h = &mut parts.headers;
        set(h, "x-timestamp", &ts.with_offset(1).internal());
        set(h, SYS_SYMLINK_TARGET_ETAG, etag);
        set(h, SYS_SYMLINK_TARGET_BYTES, bytes);
        set(h, "content-type", content_type);
        set(h, SYMLINK_TARGET, &quote(&format!("{}/{name}", v.versions)));
        set(h, SYSMETA_VERSIONS_SYMLINK, "true");
        set(h, SYS_SYMLOOP_EXTEND, "true");
        set(h, SYS_ALLOW_RESERVED, "true");
        set(h, ALLOW_RESERVED, "true");
        set(h, "content-length", "0");
        for k in [
            "etag",
            "x-if-delete-at",
            "x-symlink-target-account",
            "x-object-manifest",
            "x-static-large-object",
            "x-object-sysmeta-slo-etag",
            "x-object-sysmeta-slo-size",
            "transfer-encoding",
        ] {
            h.remove(k);
        }
        let uri = v.path.to_path();
        let mut resp = self.next.call(reroute(parts, &uri, Body::empty())).await;
        set(resp.headers_mut(), "etag", etag);
        if let Some(id) = parse_version_object_name(name).1 {
            set_version_id(&mut resp, &id);
        }
        resp
    }

    /// DELETE while versioning is enabled: a delete marker goes into the versions
    /// container, then the object is deleted.
    async fn delete(&self, req: Request, v: Versioned) -> Response {
        if !v.enabled {
            return self.next.call(req).await;
        }
        let (mut parts, body) = req.into_parts();
        if let Err(r) = self.copy_current(&parts, &v).await {
            return r;
        }
        let ts = Timestamp::now();
        let id = version_of(&ts);
        let Some(marker) = version_object_name(v.object(), &id) else {
            return status_text(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut h = HeaderMap::new();
        set(&mut h, "content-type", DELETE_MARKER);
        set(&mut h, "content-length", "0");
        set(&mut h, "x-timestamp", &ts.internal());
        let caller = Caller::of(&parts);
        let mut put = self.internal(
            &caller,
            Method::PUT,
            &v.versions_path(&marker),
            h,
            Body::empty(),
        );
        // The marker's type carries a swift_* parameter, which only middlewares may set.
        put.extensions_mut().insert(ContentTypeOverridden);
        let r = self.next.call(put).await;
        if !r.status().is_success() {
            return step_error(r).await;
        }
        set(&mut parts.headers, "x-timestamp", &ts.internal());
        let mut resp = self.next.call(Request::from_parts(parts, body)).await;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            set_version_id(&mut resp, &id);
        }
        resp
    }

    /// POST: a POST to a versions symlink goes on to the version it points at.
    async fn post(&self, req: Request, v: Versioned) -> Response {
        let (parts, body) = req.into_parts();
        let mut follow_headers = HeaderMap::new();
        for (k, val) in &parts.headers {
            if !matches!(k.as_str(), "x-delete-at" | "x-delete-after") {
                follow_headers.append(k.clone(), val.clone());
            }
        }
        let caller = Caller::of(&parts);
        let resp = self.next.call(Request::from_parts(parts, body)).await;
        if resp.status() != StatusCode::TEMPORARY_REDIRECT
            || !is_true(header(resp.headers(), SYSMETA_VERSIONS_SYMLINK))
        {
            return resp;
        }
        let Some(location) = header_str(resp.headers(), "location") else {
            return resp;
        };
        match split_object_path(&location) {
            Some((account, container, _))
                if account == v.path.account && container == v.versions =>
            {
                self.next
                    .call(self.internal(
                        &caller,
                        Method::POST,
                        &location,
                        follow_headers,
                        Body::empty(),
                    ))
                    .await
            }
            _ => resp,
        }
    }

    /// GET/HEAD/OPTIONS of the current version: which version it is.
    async fn get_head(&self, req: Request, v: Versioned) -> Response {
        let mut resp = self.next.call(req).await;
        set_version_id(&mut resp, "null");
        let object_path = ApiPath {
            container: v.path.container.clone(),
            ..v.path.clone()
        };
        if let Some(loc) = header_str(resp.headers(), "content-location") {
            if let Some((account, container, obj)) = split_object_path(&loc) {
                if account == v.path.account && container == v.versions {
                    if let Some(id) = parse_version_object_name(&obj).1 {
                        set_version_id(&mut resp, &id);
                        let l = format!("{}?version-id={id}", object_path.to_path());
                        set(resp.headers_mut(), "content-location", &l);
                    }
                }
            }
        }
        if let Some(target) = header_str(resp.headers(), SYMLINK_TARGET) {
            let target = unquote(&target);
            if let Some((container, obj)) = target.split_once('/') {
                if container == v.versions {
                    if let Some(id) = parse_version_object_name(obj).1 {
                        set_version_id(&mut resp, &id);
                        let t = quote(&format!(
                            "{}/{}",
                            v.path.container.as_deref().unwrap_or_default(),
                            v.object()
                        ));
                        set(
                            resp.headers_mut(),
                            SYMLINK_TARGET,
                            &format!("{t}?version-id={id}"),
                        );
                    }
                }
            }
        }
        resp
    }

    /// GET/HEAD of one version, read from the versions container.
    async fn get_head_version(&self, req: Request, v: Versioned, id: String) -> Response {
        let Some(name) = version_object_name(v.object(), &id) else {
            return text(StatusCode::BAD_REQUEST, "Invalid version parameter");
        };
        let (mut parts, body) = req.into_parts();
        set(&mut parts.headers, ALLOW_RESERVED, "true");
        let uri = match parts.uri.query() {
            Some(q) => format!("{}?{q}", v.versions_path(&name)),
            None => v.versions_path(&name),
        };
        let mut resp = self.next.call(reroute(parts, &uri, body)).await;
        if resp.status().is_success() {
            set_version_id(&mut resp, &id);
        }
        let rh = resp.headers();
        let content_type =
            header(rh, "x-backend-content-type").or_else(|| header(rh, "content-type"));
        if content_type == Some(DELETE_MARKER) {
            let mut r = status_text(StatusCode::NOT_FOUND);
            set_version_id(&mut r, &id);
            set(r.headers_mut(), "content-type", DELETE_MARKER);
            return r;
        }
        resp
    }

    /// GET/HEAD `?version-id=null`: the object only if it is no versions symlink.
    async fn get_head_null_version(&self, req: Request) -> Response {
        let mut resp = self.next.call(req).await;
        if resp.status().is_success() {
            let loc = header(resp.headers(), "content-location").map(unquote);
            if loc.is_some_and(|l| l.contains("\0versions\0")) {
                return status_text(StatusCode::NOT_FOUND);
            }
            set_version_id(&mut resp, "null");
        }
        resp
    }

    /// The current object, as `(no object there, its versions symlink target)`.
    async fn current(
        &self,
        caller: &Caller,
        v: &Versioned,
    ) -> Result<(bool, Option<String>), Response> {
        let mut h = HeaderMap::new();
        set(&mut h, "x-newest", "true");
        let head = self
            .next
            .call(caller.pre_authed(
                Method::HEAD,
                &format!("{}?symlink=get", v.path.to_path()),
                h,
                Body::empty(),
                "OV",
            ))
            .await;
        if head.status() == StatusCode::NOT_FOUND {
            return Ok((true, None));
        }
        if !head.status().is_success() {
            return Err(step_error(head).await);
        }
        let target = is_true(header(head.headers(), SYSMETA_VERSIONS_SYMLINK))
            .then(|| header_str(head.headers(), SYMLINK_TARGET))
            .flatten();
        Ok((false, target))
    }

    /// DELETE `?version-id=`: removes that version; when it is the current one, the
    /// object (its symlink) goes too.
    async fn delete_version(&self, req: Request, v: Versioned, id: String) -> Response {
        if id == "null" {
            return self.next.call(req).await;
        }
        let Some(name) = version_object_name(v.object(), &id) else {
            return text(StatusCode::BAD_REQUEST, "Invalid version parameter");
        };
        let (mut parts, _) = req.into_parts();
        let caller = Caller::of(&parts);
        let (gone, target) = match self.current(&caller, &v).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        let this_version = format!("{}/{name}", v.versions);
        let current_id = match target.as_deref().map(unquote) {
            Some(t) if t == this_version => {
                // The current version: delete the link first, then its data.
                let link = self
                    .next
                    .call(reroute(
                        parts.clone_without_body(),
                        &v.path.to_path(),
                        Body::empty(),
                    ))
                    .await;
                if !link.status().is_success() {
                    return step_error(link).await;
                }
                "null".to_string()
            }
            Some(t) if !gone => t
                .split_once('/')
                .and_then(|(_, o)| parse_version_object_name(o).1)
                .unwrap_or_else(|| "null".into()),
            _ => "null".to_string(),
        };
        set(&mut parts.headers, ALLOW_RESERVED, "true");
        let mut resp = self
            .next
            .call(reroute(parts, &v.versions_path(&name), Body::empty()))
            .await;
        set_version_id(&mut resp, &id);
        set(
            resp.headers_mut(),
            "x-object-current-version-id",
            &current_id,
        );
        resp
    }

    /// PUT `?version-id=` with no body: that version becomes the current one again.
    async fn restore_version(&self, req: Request, v: Versioned, id: String) -> Response {
        if id == "null" {
            return text(StatusCode::BAD_REQUEST, "Invalid version parameter");
        }
        let (parts, body) = req.into_parts();
        let has_body = match header(&parts.headers, "content-length") {
            Some(l) => l.trim() != "0",
            None if header(&parts.headers, "transfer-encoding")
                .is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) =>
            {
                let mut stream = body.into_data_stream();
                let mut any = false;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(c) if c.is_empty() => continue,
                        _ => {
                            any = true;
                            break;
                        }
                    }
                }
                any
            }
            None => return status_text(StatusCode::LENGTH_REQUIRED),
        };
        if has_body {
            return plain(
                StatusCode::BAD_REQUEST,
                "PUT version-id requests require a zero byte body",
            );
        }
        let Some(name) = version_object_name(v.object(), &id) else {
            return text(StatusCode::BAD_REQUEST, "Invalid version parameter");
        };
        let caller = Caller::of(&parts);
        let head = self
            .call_internal(
                &caller,
                Method::HEAD,
                &format!("{}?symlink=get", v.versions_path(&name)),
                HeaderMap::new(),
            )
            .await;
        if head.status() == StatusCode::NOT_FOUND {
            let versions = self
                .proxy
                .container_info(&v.path.account, &v.versions)
                .await;
            return if versions.status / 100 == 2 {
                plain(
                    StatusCode::NOT_FOUND,
                    "The specified version does not exist",
                )
            } else {
                plain(StatusCode::INTERNAL_SERVER_ERROR, NO_VERSIONS_CONTAINER)
            };
        }
        if !head.status().is_success() {
            return step_error(head).await;
        }
        let hh = head.headers();
        let etag = header_str(hh, "etag").unwrap_or_default();
        let etag = etag.trim_matches('"').to_string();
        let bytes = header_str(hh, "content-length").unwrap_or_else(|| "0".into());
        let content_type = header_str(hh, "content-type").unwrap_or_default();
        let mut parts = parts;
        parts.uri = v.path.to_path().parse().unwrap_or(parts.uri);
        self.put_symlink_to_version(parts, &v, &name, &etag, &bytes, &content_type)
            .await
    }
}

/// `Parts` has no `Clone`; a copy of what a second request on the caller's behalf needs.
trait CloneParts {
    fn clone_without_body(&self) -> Parts;
}

impl CloneParts for Parts {
    fn clone_without_body(&self) -> Parts {
        let mut req = Request::new(());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        *req.extensions_mut() = self.extensions.clone();
        req.into_parts().0
    }
}

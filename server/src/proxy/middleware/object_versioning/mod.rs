//! object_versioning: Swift's newer object versioning (`allow_object_versioning = true` in
//! the `versioned_writes` filter), per container.
//!
//! `X-Versions-Enabled: true` on a container PUT/POST creates a hidden container in the
//! reserved namespace, `\0versions\0<container>`, in the same policy, and keeps both its
//! name and the flag in container sysmeta. While versioning is enabled:
//! - an object PUT writes the data into the versions container as
//!   `\0<object>\0<inverted timestamp>` (so listing the versions container lists the
//!   versions of an object newest first), then puts a static symlink to that version in
//!   the user container; an object written before versioning was enabled is copied there
//!   first, so no data is lost;
//! - a DELETE writes a delete marker (`application/x-deleted;swift_versions_deleted=1`)
//!   into the versions container, then deletes the link;
//! - answers carry `X-Object-Version-Id` (`null` for data written while unversioned).
//!
//! `?version-id=<id>` acts on one version: GET/HEAD read it, DELETE removes it (and the link
//! when it is the current one), and a zero-byte PUT makes it the current version again.
//! `?versions` on a container GET lists every version, with `version_id` and `is_latest`.
//! Account listings add the versions containers' bytes to their user containers, and
//! container HEAD/GET add them to `X-Container-Bytes-Used`. A container with versions left
//! cannot be deleted (409); deleting it removes its empty versions container too.
//!
//! The subrequests that touch the versions container are made on the middleware's own
//! authority (pre-authed, with `X-Backend-Allow-Reserved-Names`), after the caller's right
//! to write the user container has been checked, as Swift's middleware does. Clients can
//! never name the reserved namespace themselves (the proxy refuses NUL in their paths).

mod container;
mod object;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use ringsmith::swift::escape::unquote;
use ringsmith::swift::Timestamp;

use crate::proxy::backend::set;
use crate::proxy::env::{ApiPath, Caller};
use crate::proxy::pipeline::{App, Handler, ResponseFuture};
use crate::proxy::{header, status_text, text, Proxy};

pub const DELETE_MARKER: &str = "application/x-deleted;swift_versions_deleted=1";
const CLIENT_VERSIONS_ENABLED: &str = "x-versions-enabled";
const SYSMETA_VERSIONS_ENABLED: &str = "x-container-sysmeta-versions-enabled";
const SYSMETA_VERSIONS_CONT: &str = "x-container-sysmeta-versions-container";
const SYSMETA_VERSIONS_SYMLINK: &str = "x-object-sysmeta-versions-symlink";
const ALLOW_RESERVED: &str = "x-backend-allow-reserved-names";
const NO_VERSIONS_CONTAINER: &str =
    "The versions container does not exist. You may want to re-enable object versioning.";

/// The reserved-namespace marker (also the proxy's and storage servers').
const RESERVED: char = '\0';

pub struct ObjectVersioning {
    next: App,
    proxy: Arc<Proxy>,
}

pub fn new(next: App, proxy: Arc<Proxy>) -> App {
    Arc::new(ObjectVersioning { next, proxy })
}

/// Swift's `get_reserved_name`: NUL before each part. `None` when a part holds a NUL.
pub fn reserved_name(parts: &[&str]) -> Option<String> {
    if parts.iter().any(|p| p.contains(RESERVED)) {
        return None;
    }
    let mut out = String::new();
    for p in parts {
        out.push(RESERVED);
        out.push_str(p);
    }
    Some(out)
}

/// Swift's `split_reserved_name`: the parts of a reserved name, `None` for a user name.
pub fn split_reserved_name(name: &str) -> Option<Vec<&str>> {
    name.strip_prefix(RESERVED)
        .map(|rest| rest.split(RESERVED).collect())
}

/// Where a container's versions are kept, once versioning has been enabled on it.
pub fn versions_location(info: &crate::proxy::controllers::ContainerInfo) -> Option<String> {
    info.sysmeta
        .get("versions-container")
        .map(|v| unquote(v))
        .filter(|v| !v.is_empty())
}

/// `\0versions\0<container>`.
pub fn versions_container_name(container: &str) -> Option<String> {
    reserved_name(&["versions", container])
}

/// Swift's `~Timestamp`: versions sort newest first under one object name.
fn invert(ts: &Timestamp) -> Option<Timestamp> {
    const MAX_TICKS: u64 = 999_999_999_999_999;
    if ts.offset() != 0 || ts.ticks() > MAX_TICKS {
        return None;
    }
    Some(Timestamp::from_ticks(MAX_TICKS - ts.ticks(), 0))
}

/// `\0<object>\0<inverted version>`; `None` for a version id that is no timestamp.
pub fn version_object_name(object: &str, version_id: &str) -> Option<String> {
    let ts = Timestamp::parse(version_id).ok()?;
    reserved_name(&[object, &invert(&ts)?.internal()])
}

/// The user object name and version id of a version object's name (`None` for the id
/// when the name is not one).
pub fn parse_version_object_name(name: &str) -> (String, Option<String>) {
    if let Some(parts) = split_reserved_name(name) {
        if let [object, inverted] = parts.as_slice() {
            if let Some(ts) = Timestamp::parse(inverted).ok().as_ref().and_then(invert) {
                return (object.to_string(), Some(ts.internal()));
            }
        }
    }
    (name.to_string(), None)
}

/// Swift's `timestamp_to_version`: the timestamp without its offset.
fn version_of(ts: &Timestamp) -> String {
    Timestamp::from_ticks(ts.ticks(), 0).internal()
}

/// `/v1/<account>/<container>[/<object>]`, `/`-separated and percent-unquoted, split as
/// Swift's `split_path(path, 4, 4, True)` (`None` when it is not an object path).
fn split_object_path(path: &str) -> Option<(String, String, String)> {
    let unq = unquote(path);
    let mut it = unq.splitn(5, '/');
    let (empty, _version, account, container, object) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if !empty.is_empty() || account.is_empty() || container.is_empty() || object.is_empty() {
        return None;
    }
    Some((account.into(), container.into(), object.into()))
}

fn plain(status: StatusCode, body: &str) -> Response {
    let mut r = text(status, body.to_string());
    set(r.headers_mut(), "content-type", "text/plain");
    r
}

/// The whole body of a (small) subrequest answer.
async fn body_bytes(resp: Response) -> Bytes {
    http_body_util::Limited::new(resp.into_body(), 64 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// Swift's `_check_response_error`: a failed step of a versioned write becomes 412 (the
/// versions container is gone), the step's own client error, or 503.
async fn step_error(resp: Response) -> Response {
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return status_text(StatusCode::PRECONDITION_FAILED);
    }
    if status.is_client_error() {
        let (parts, body) = resp.into_parts();
        let body = http_body_util::Limited::new(body, 1 << 20)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Response::from_parts(parts, Body::from(body));
    }
    status_text(StatusCode::SERVICE_UNAVAILABLE)
}

impl ObjectVersioning {
    /// A pre-authed subrequest that may name the reserved namespace.
    fn internal(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> Request {
        set(&mut headers, ALLOW_RESERVED, "true");
        caller.pre_authed(method, path, headers, body, "OV")
    }

    async fn call_internal(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        headers: HeaderMap,
    ) -> Response {
        self.next
            .call(self.internal(caller, method, path, headers, Body::empty()))
            .await
    }
}

impl Handler for ObjectVersioning {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()) else {
                return self.next.call(req).await;
            };
            match (&path.container, &path.object) {
                (None, _) if req.method() == Method::GET => self.account_listing(req, path).await,
                (None, _) => self.next.call(req).await,
                (Some(_), None) => self.container_request(req, path).await,
                (Some(_), Some(_)) => self.object_request(req, path).await,
            }
        })
    }
}

/// Whether a header's value is one of Swift's true words.
fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(ringsmith::swift::conf::is_true)
}

/// The caller's headers of a response, for the few places a step's answer is returned.
fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    header(h, name).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_like_swift() {
        assert_eq!(
            versions_container_name("c").as_deref(),
            Some("\0versions\0c")
        );
        assert_eq!(versions_container_name("a\0b"), None);
        // ~Timestamp('1600000000.00000') == 999999999999999 - 160000000000000 ticks
        let name = version_object_name("o/x", "1600000000.00000").unwrap();
        assert_eq!(name, "\0o/x\08399999999.99999");
        assert_eq!(
            parse_version_object_name(&name),
            ("o/x".to_string(), Some("1600000000.00000".to_string()))
        );
        assert_eq!(parse_version_object_name("plain"), ("plain".into(), None));
        assert_eq!(version_object_name("o", "null"), None);
        // Newer versions sort first.
        let older = version_object_name("o", "1600000000.00000").unwrap();
        let newer = version_object_name("o", "1600000001.00000").unwrap();
        assert!(newer < older);
        assert_eq!(
            split_object_path("/v1/AUTH_a/%00versions%00c/%00o%00123").unwrap(),
            ("AUTH_a".into(), "\0versions\0c".into(), "\0o\x00123".into())
        );
    }
}

//! The request handlers: auth endpoints, `/info`, and the account, container and object
//! controllers of API v1.
//!
//! Each controller follows the same shape as Swift's: validate the path and headers
//! against the constraints, look up what it needs (the container's policy and ACLs for
//! objects, the account's existence for container creation), authorize, then either read
//! (walk the nodes until one answers, or ask every primary with `X-Newest`) or write (all
//! primaries in parallel, handoffs for failures, quorum decides). Backend-only headers
//! (`X-Backend-*`, sysmeta) never cross the proxy in either direction, and owner-only
//! headers (ACLs, sync keys) are shown and accepted only for the account's owner.
//!
//! Handlers return `Result<_, Response>` internally: the error *is* the client's answer
//! (a 4xx or 503), produced once per request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;

use super::account_acl;
use super::auth::{AuthzRequest, Decision, Identity};
use super::backend::{
    best_status, header_value, quorum_size, set, BackendError, BackendResponse, NodeIter, OutBody,
};
use super::env::{Authorize, Authorizer, RemoteUser, TransId};
use super::ring::{Node, Ring};
use super::{empty, header, status_text, text, Proxy};
use ringsmith::swift::MetaTarget;

/// Swift's `quote(name, safe='/')`: everything but unreserved characters and `/`.
pub use ringsmith::swift::escape::quote;

/// Headers that never travel from the client to a backend.
fn strip_inbound(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "expect"
            | "x-auth-token"
            | "x-storage-token"
            | "x-timestamp"
            | "x-trans-id"
    )
}

const OWNER_HEADERS: &[&str] = &[
    "x-container-read",
    "x-container-write",
    "x-container-sync-key",
    "x-container-sync-to",
    "x-account-meta-temp-url-key",
    "x-account-meta-temp-url-key-2",
    "x-container-meta-temp-url-key",
    "x-container-meta-temp-url-key-2",
    "x-account-access-control",
];

pub fn timestamp_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    format!("{now:016.5}")
}

fn last_modified(ts: &str) -> Option<String> {
    let secs: f64 = ts.split('_').next()?.parse().ok()?;
    Some(httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_secs(secs.ceil() as u64),
    ))
}

/// One client request, parsed.
pub struct Ctx {
    pub proxy: Arc<Proxy>,
    pub method: Method,
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub identity: Option<Identity>,
    pub authorizer: Option<Arc<dyn Authorizer>>,
    pub trans_id: String,
    pub owner: bool,
    /// A middleware set this PUT's Content-Type, `swift_bytes` and all (SLO).
    pub content_type_overridden: bool,
}

impl Ctx {
    fn h(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn query_param(&self, key: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == key {
                return Some(
                    percent_decode_str(&v.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        }
        None
    }

    /// The timestamp of an object write: `X-Timestamp` when a middleware set one (the
    /// gatekeeper keeps clients from doing so; object versioning names versions by it),
    /// or now, as Swift's object controller decides.
    fn write_timestamp(&self) -> String {
        self.h("x-timestamp")
            .and_then(|t| ringsmith::swift::Timestamp::parse(t).ok())
            .map(|t| t.internal())
            .unwrap_or_else(timestamp_now)
    }

    /// Client headers fit for a backend, plus the proxy's own.
    fn backend_headers(&self, timestamp: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in &self.headers {
            let n = name.as_str();
            if strip_inbound(n) || (!self.owner && OWNER_HEADERS.contains(&n)) {
                continue;
            }
            h.append(name.clone(), value.clone());
        }
        apply_x_remove(&self.headers, &mut h);
        set(&mut h, "x-trans-id", &self.trans_id);
        set(
            &mut h,
            "user-agent",
            &format!("proxy-server {}", std::process::id()),
        );
        if let Some(ts) = timestamp {
            set(&mut h, "x-timestamp", ts);
        }
        h
    }

    fn denied(&self) -> Response {
        if self.identity.is_some() {
            status_text(StatusCode::FORBIDDEN)
        } else {
            let mut r = status_text(StatusCode::UNAUTHORIZED);
            set(
                r.headers_mut(),
                "www-authenticate",
                &format!("Swift realm=\"{}\"", quote(&self.account)),
            );
            r
        }
    }

    /// The auth middleware's `authorize` (everything is allowed without one), then, for a
    /// logged-in user it denies, the account's ACLs if it honours them.
    async fn authz(&mut self, acl: Option<&str>) -> Result<(), Response> {
        let Some(authorizer) = self.authorizer.clone() else {
            return Ok(());
        };
        let mut d = authorizer.authorize(
            self.identity.as_ref(),
            &AuthzRequest {
                method: self.method.as_str(),
                account: &self.account,
                container: self.container.as_deref(),
                object: self.object.as_deref(),
                referer: header(&self.headers, "referer"),
                acl,
            },
        );
        if d == Decision::Denied && authorizer.honours_account_acls() {
            if let Some(id) = self.identity.as_ref() {
                if let Some(acls) = self.proxy.account_acls(&self.account).await {
                    d = acls.decide(&id.groups, self.method.as_str(), self.container.is_some());
                }
            }
        }
        match d {
            Decision::Owner => {
                self.owner = true;
                Ok(())
            }
            Decision::Allowed => Ok(()),
            Decision::Denied => Err(self.denied()),
        }
    }
}

/// Swift's `X-Remove-*` headers: `X-Remove-Container-Meta-Foo` (and the ACL, versioning
/// and account/container metadata forms) become the header itself with an empty value,
/// which deletes it, unless the request also sets that header.
fn apply_x_remove(client: &HeaderMap, backend: &mut HeaderMap) {
    const WHOLE: [&str; 4] = [
        "x-remove-container-read",
        "x-remove-container-write",
        "x-remove-versions-location",
        "x-remove-history-location",
    ];
    for name in client.keys() {
        let n = name.as_str();
        let is_meta = ["x-remove-account-meta-", "x-remove-container-meta-"]
            .iter()
            .any(|p| n.starts_with(p) && n.len() > p.len());
        if !(is_meta || WHOLE.contains(&n)) {
            continue;
        }
        let target = n.replacen("-remove", "", 1);
        backend.remove(n);
        if !client.contains_key(target.as_str()) {
            if let Ok(t) = HeaderName::from_bytes(target.as_bytes()) {
                backend.insert(t, axum::http::HeaderValue::from_static(""));
            }
        }
    }
}

/// A backend answer turned into the client's: internal headers dropped, the etag
/// unquoted, owner-only headers shown only to owners.
fn to_client(resp: BackendResponse, owner: bool) -> Response {
    let mut out = Response::new(resp.body);
    *out.status_mut() = resp.status;
    copy_client_headers(&resp.headers, out.headers_mut(), owner);
    out
}

fn copy_client_headers(from: &HeaderMap, to: &mut HeaderMap, owner: bool) {
    for (name, value) in from {
        let n = name.as_str();
        if matches!(
            n,
            "connection" | "keep-alive" | "transfer-encoding" | "server" | "date"
        ) || (!owner && OWNER_HEADERS.contains(&n))
        {
            continue;
        }
        if n == "etag" {
            let v = value.to_str().unwrap_or("").trim_matches('"');
            to.insert(name.clone(), header_value(v));
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// Swift's routing of a path that is not `/info` or auth: `split_path(path, 1, 4, True)`
/// (an empty segment before the last is 404), then a version check once there is an
/// account (400), and no controller for a path without an account (412 "Bad URL").
/// Gives what follows `/v1/`.
fn swift_path_route(path: &str) -> Result<String, Response> {
    let not_found = || text(StatusCode::NOT_FOUND, "Not Found\n");
    let Some(after_slash) = path.strip_prefix('/') else {
        return Err(not_found());
    };
    let segs: Vec<&str> = after_slash.splitn(4, '/').collect();
    if segs[0].is_empty() || segs[..segs.len() - 1].iter().any(|s| s.is_empty()) {
        return Err(not_found());
    }
    let has_account = segs.get(1).is_some_and(|a| !a.is_empty());
    if !has_account {
        return Err(text(StatusCode::PRECONDITION_FAILED, "Bad URL"));
    }
    if segs[0] != "v1" && segs[0] != "v1.0" {
        return Err(status_text(StatusCode::BAD_REQUEST));
    }
    Ok(after_slash[segs[0].len() + 1..].to_string())
}

/// The proxy app: the bottom of the stack. Every request that reaches it has passed the
/// middlewares; what they left in its extensions says who is asking and how to
/// authorize them.
pub async fn handle(proxy: &Arc<Proxy>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/info" {
        return info(proxy, req.method());
    }
    let rest = match swift_path_route(&path) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut segs = rest.splitn(3, '/');
    let mut decoded = Vec::new();
    // Names in the reserved namespace (starting with NUL) are for middlewares' own
    // subrequests only: the gatekeeper strips `X-Backend-*` from clients, so only a
    // subrequest can carry this header (Swift's `check_utf8(internal=...)`).
    let allow_reserved = header(req.headers(), "x-backend-allow-reserved-names")
        .is_some_and(ringsmith::swift::conf::is_true);
    for seg in [segs.next(), segs.next(), segs.next()] {
        match seg {
            None => decoded.push(None),
            Some(s) => match percent_decode_str(s).decode_utf8() {
                Ok(d) if allow_reserved || !d.contains('\0') => decoded.push(Some(d.into_owned())),
                _ => {
                    return text(
                        StatusCode::PRECONDITION_FAILED,
                        "Invalid UTF8 or contains NULL",
                    )
                }
            },
        }
    }
    let account = decoded[0].clone().unwrap_or_default();
    let container = decoded[1].clone().filter(|c| !c.is_empty());
    let object = decoded[2].clone().filter(|o| !o.is_empty());
    if account.is_empty() {
        return text(StatusCode::PRECONDITION_FAILED, "Bad URL");
    }
    if container.is_none() && decoded[2].is_some() {
        return text(StatusCode::PRECONDITION_FAILED, "Bad URL");
    }
    let c = &proxy.constraints;
    if account.len() > c.max_account_name_length {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Account name length of {} longer than {}",
                account.len(),
                c.max_account_name_length
            ),
        );
    }
    // Header-count limit: Swift's MAX_HEADER_COUNT, on what the client sent.
    let sent = req.headers().len()
        - crate::proxy::middleware::authtoken::identity_header_count(req.headers());
    if sent > c.max_meta_count + 36 + c.extra_header_count {
        return text(StatusCode::BAD_REQUEST, "Too many headers");
    }
    let (parts, body) = req.into_parts();
    let trans_id = parts
        .extensions
        .get::<TransId>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| crate::proxy::middleware::catch_errors::new_trans_id(""));
    let mut ctx = Ctx {
        proxy: proxy.clone(),
        method: parts.method,
        account,
        container,
        object,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        identity: parts.extensions.get::<RemoteUser>().map(|u| u.0.clone()),
        authorizer: parts.extensions.get::<Authorize>().map(|a| a.0.clone()),
        trans_id,
        owner: false,
        content_type_overridden: parts
            .extensions
            .get::<super::env::ContentTypeOverridden>()
            .is_some(),
    };
    let origin = ctx
        .h("origin")
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    // CORS needs the container's settings: only when a container is named.
    let cors = match (&origin, &ctx.container) {
        (Some(_), Some(c)) => Some(proxy.container_info(&ctx.account, c).await.cors),
        _ => None,
    };
    if ctx.method == Method::OPTIONS {
        return super::cors::preflight(
            &ctx.headers,
            ctx.object.is_some(),
            cors.as_ref(),
            &proxy.cors,
        );
    }
    let decorate = super::cors::applies_to(&ctx.method);
    let mut resp = match (&ctx.container, &ctx.object) {
        (None, _) => account_request(&mut ctx, body).await,
        (Some(_), None) => container_request(&mut ctx, body).await,
        (Some(_), Some(_)) => object_request(&mut ctx, body).await,
    };
    if let (true, Some(origin), Some(cors)) = (decorate, origin, cors) {
        super::cors::decorate(&mut resp, &origin, &cors, &proxy.cors);
    }
    resp
}

fn info(proxy: &Proxy, method: &Method) -> Response {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return status_text(StatusCode::METHOD_NOT_ALLOWED);
    }
    let c = &proxy.constraints;
    let policies: Vec<serde_json::Value> = proxy
        .policies
        .iter()
        .filter(|p| !p.deprecated)
        .map(|p| {
            let mut v = serde_json::json!({"name": p.name(), "aliases": p.aliases.join(", ")});
            if p.is_default {
                v["default"] = true.into();
            }
            v
        })
        .collect();
    let swift = serde_json::json!({
        "version": concat!("ringsmith-", env!("CARGO_PKG_VERSION")),
            "max_file_size": c.max_file_size,
            "max_meta_name_length": c.max_meta_name_length,
            "max_meta_value_length": c.max_meta_value_length,
            "max_meta_count": c.max_meta_count,
            "max_meta_overall_size": c.max_meta_overall_size,
            "max_header_size": c.max_header_size,
            "max_object_name_length": c.max_object_name_length,
            "container_listing_limit": c.container_listing_limit,
            "account_listing_limit": c.account_listing_limit,
            "max_account_name_length": c.max_account_name_length,
            "max_container_name_length": c.max_container_name_length,
            "extra_header_count": c.extra_header_count,
            "valid_api_versions": ["v1", "v1.0"],
            "policies": policies,
            "allow_account_management": proxy.allow_account_management,
            "account_autocreate": proxy.account_autocreate,
            "strict_cors_mode": proxy.cors.strict,
    });
    // What the loaded middlewares registered, then the proxy's own section over it.
    let mut doc = proxy.info.snapshot();
    match doc.get_mut("swift") {
        Some(serde_json::Value::Object(registered)) => {
            if let serde_json::Value::Object(own) = swift {
                registered.extend(own);
            }
        }
        _ => {
            doc.insert("swift".into(), swift);
        }
    }
    let mut r = Response::new(Body::from(serde_json::Value::Object(doc).to_string()));
    set(
        r.headers_mut(),
        "content-type",
        "application/json; charset=UTF-8",
    );
    r
}

async fn read_small(body: Body, limit: usize) -> Option<Bytes> {
    let b = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .ok()?;
    Some(b.to_bytes())
}

fn answer_response(a: &Answer, status: u16, owner: bool) -> Response {
    let mut r = Response::new(Body::from(a.body.clone()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    copy_client_headers(&a.headers, r.headers_mut(), owner);
    r
}

/// The client's answer to a quorum write.
fn quorum_response(answers: &[Answer], replicas: usize, owner: bool) -> Response {
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    match best_status(&statuses, quorum_size(replicas)) {
        Some((s, idx)) => answer_response(&answers[idx], s, owner),
        None => status_text(StatusCode::SERVICE_UNAVAILABLE),
    }
}

fn check_meta(ctx: &Ctx, target: MetaTarget) -> Result<(), Response> {
    ctx.proxy
        .constraints
        .check_metadata(
            target,
            ctx.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
        )
        .map_err(|m| text(StatusCode::BAD_REQUEST, m))
}

/// A listing as the backend gave it (JSON; `listing_formats` above renders what the
/// client asked for), with the client's view of the headers.
fn listing_response(ctx: &Ctx, r: BackendResponse) -> Response {
    let mut out = to_client(r, ctx.owner);
    if out.status() == StatusCode::OK || out.status() == StatusCode::NO_CONTENT {
        set(
            out.headers_mut(),
            "content-type",
            "application/json; charset=utf-8",
        );
    }
    out
}

/// The backend query string for a listing: the client's parameters, `format=json`.
fn listing_query(ctx: &Ctx, limit_max: usize) -> Result<String, Response> {
    let mut q = vec!["format=json".to_string()];
    for key in [
        "marker",
        "end_marker",
        "prefix",
        "delimiter",
        "path",
        "reverse",
        "limit",
    ] {
        if let Some(v) = ctx.query_param(key) {
            if key == "limit" {
                // Like Swift: a limit that is not all digits is ignored.
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                if v.parse::<usize>().map_or(true, |n| n > limit_max) {
                    return Err(text(
                        StatusCode::PRECONDITION_FAILED,
                        format!("Maximum limit is {limit_max}"),
                    ));
                }
            }
            q.push(format!("{key}={}", quote(&v).replace('/', "%2F")));
        }
    }
    Ok(q.join("&"))
}

/// `?` for handlers: an `Err(response)` is the answer.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

mod account;
mod container;
mod ec_get;
mod ec_put;
mod info;
mod nodes;
mod object;
mod object_put;
mod write_slots;

use account::account_request;
use container::container_request;
pub use info::{AccountInfo, ContainerInfo};
use nodes::Answer;
use object::object_request;

#[cfg(test)]
mod fake_backend_tests;
#[cfg(test)]
mod tests;

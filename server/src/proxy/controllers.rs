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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// What the proxy knows about a container (Swift's `get_container_info`).
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub status: u16,
    pub policy_index: u32,
    pub read_acl: Option<String>,
    pub write_acl: Option<String>,
    pub object_count: u64,
    pub bytes_used: u64,
    pub cors: super::cors::Cors,
    /// `X-Container-Meta-*`, keyed by the rest of the name, lowercase (Swift's `meta`).
    pub meta: std::collections::BTreeMap<String, String>,
    /// `X-Container-Sysmeta-*`, likewise (Swift's `sysmeta`).
    pub sysmeta: std::collections::BTreeMap<String, String>,
}

/// What the proxy knows about an account (Swift's `get_account_info`).
#[derive(Clone, Debug, Default)]
pub struct AccountInfo {
    pub status: u16,
    pub bytes_used: u64,
    pub object_count: u64,
    pub container_count: u64,
    pub meta: std::collections::BTreeMap<String, String>,
    pub sysmeta: std::collections::BTreeMap<String, String>,
    /// Per policy index: (bytes used, object count).
    pub policy_stats: std::collections::BTreeMap<u32, (u64, u64)>,
}

/// The headers under `prefix`, keyed by the rest of the name.
fn headers_under(h: &HeaderMap, prefix: &str) -> std::collections::BTreeMap<String, String> {
    h.iter()
        .filter_map(|(k, v)| {
            let rest = k.as_str().strip_prefix(prefix)?;
            Some((
                rest.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

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
    for seg in [segs.next(), segs.next(), segs.next()] {
        match seg {
            None => decoded.push(None),
            Some(s) => match percent_decode_str(s).decode_utf8() {
                Ok(d) if !d.contains('\0') => decoded.push(Some(d.into_owned())),
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
    // Header-count limit: Swift's MAX_HEADER_COUNT.
    if req.headers().len() > c.max_meta_count + 36 + c.extra_header_count {
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
        return super::cors::preflight(&ctx.headers, ctx.object.is_some(), cors.as_ref());
    }
    let decorate = super::cors::applies_to(&ctx.method);
    let mut resp = match (&ctx.container, &ctx.object) {
        (None, _) => account_request(&mut ctx, body).await,
        (Some(_), None) => container_request(&mut ctx, body).await,
        (Some(_), Some(_)) => object_request(&mut ctx, body).await,
    };
    if let (true, Some(origin), Some(cors)) = (decorate, origin, cors) {
        super::cors::decorate(&mut resp, &origin, &cors);
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
            "strict_cors_mode": true,
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

// ---------------------------------------------------------------------------------
// Talking to the backends.

/// The result of a write to one node: status, headers, (small) body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Proxy {
    fn request_node_limit(&self, ring: &Ring) -> usize {
        ring.replica_count() * self.node_count_factor
    }

    /// Sends the same small request to `replicas` nodes in parallel, each replacing a
    /// failed node with the next usable one (handoffs included). `per_node` adds the
    /// headers that differ by replica index (account/container update targets).
    #[allow(clippy::too_many_arguments)]
    async fn make_requests(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
        per_node: impl Fn(usize, &mut HeaderMap),
    ) -> Vec<Answer> {
        let limit = self.request_node_limit(&ring);
        let iter = Arc::new(Mutex::new(NodeIter::new(ring.clone(), part, limit, false)));
        let replicas = ring.part_nodes(part).len();
        let mut tasks = FuturesUnordered::new();
        for i in 0..replicas {
            let mut h = headers.clone();
            per_node(i, &mut h);
            let iter = iter.clone();
            let me = self.clone();
            let method = method.clone();
            let path = path.clone();
            let body = body.clone();
            tasks.push(async move {
                loop {
                    let node = iter.lock().expect("node iter").next_usable(&me.limiter);
                    let Some(node) = node else {
                        return Answer {
                            status: 503,
                            headers: HeaderMap::new(),
                            body: Bytes::new(),
                        };
                    };
                    let out = if body.is_empty() {
                        OutBody::Empty
                    } else {
                        OutBody::Bytes(body.clone())
                    };
                    match me.transport.request(&node, &method, &path, &h, out).await {
                        Err(e) => me.limiter.error(&node, &e.to_string()),
                        Ok(r) if r.status == StatusCode::INSUFFICIENT_STORAGE => {
                            me.limiter.limit(&node, "Insufficient Storage")
                        }
                        Ok(r) if r.status.is_server_error() => {
                            me.limiter.error(&node, &format!("status {}", r.status))
                        }
                        Ok(r) => {
                            me.limiter.success(&node);
                            let status = r.status.as_u16();
                            let headers = r.headers;
                            let body = read_small(r.body, 1 << 20).await.unwrap_or_default();
                            return Answer {
                                status,
                                headers,
                                body,
                            };
                        }
                    }
                }
            });
        }
        let mut out = Vec::new();
        while let Some(a) = tasks.next().await {
            out.push(a);
        }
        out
    }

    /// Reads from the nodes of a partition in turn until one gives a usable answer.
    /// 404s go on to the next node (a replica may be missing), as do errors.
    async fn read_one(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> BackendResponse {
        let limit = self.request_node_limit(&ring);
        let mut iter = NodeIter::new(ring, part, limit, true);
        let mut not_found: Option<BackendResponse> = None;
        while let Some(node) = iter.next_usable(&self.limiter) {
            match self
                .transport
                .request(&node, method, path, headers, OutBody::Empty)
                .await
            {
                Err(e) => self.limiter.error(&node, &e.to_string()),
                Ok(r) if r.status == StatusCode::INSUFFICIENT_STORAGE => {
                    self.limiter.limit(&node, "Insufficient Storage")
                }
                Ok(r) if r.status.is_server_error() => {
                    self.limiter.error(&node, &format!("status {}", r.status))
                }
                Ok(r) if r.status == StatusCode::NOT_FOUND => {
                    // A replica may be missing here and present elsewhere: keep looking.
                    self.limiter.success(&node);
                    not_found = Some(r);
                }
                Ok(r) => {
                    self.limiter.success(&node);
                    return r;
                }
            }
        }
        not_found.unwrap_or(BackendResponse {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Body::from("Service Unavailable\n"),
        })
    }

    /// `X-Newest`: ask every primary, keep the newest successful answer.
    async fn read_newest(
        self: &Arc<Self>,
        ring: Arc<Ring>,
        part: usize,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> BackendResponse {
        let nodes = ring.part_nodes(part);
        let mut tasks = FuturesUnordered::new();
        for node in nodes {
            let me = self.clone();
            let (method, path, headers) = (method.clone(), path.to_string(), headers.clone());
            tasks.push(async move {
                if me.limiter.is_limited(&node) {
                    return None;
                }
                match me
                    .transport
                    .request(&node, &method, &path, &headers, OutBody::Empty)
                    .await
                {
                    Ok(r) if r.status.is_server_error() => {
                        me.limiter.error(&node, &format!("status {}", r.status));
                        None
                    }
                    Ok(r) => Some(r),
                    Err(e) => {
                        me.limiter.error(&node, &e.to_string());
                        None
                    }
                }
            });
        }
        let mut best: Option<(f64, BackendResponse)> = None;
        let mut fallback: Option<BackendResponse> = None;
        while let Some(r) = tasks.next().await {
            let Some(r) = r else { continue };
            if r.status.is_success() {
                let ts = ["x-backend-timestamp", "x-timestamp", "x-put-timestamp"]
                    .iter()
                    .find_map(|k| r.header(k).and_then(|v| v.split('_').next()?.parse().ok()))
                    .unwrap_or(0.0f64);
                if best.as_ref().is_none_or(|(b, _)| ts > *b) {
                    best = Some((ts, r));
                }
            } else {
                fallback = Some(r);
            }
        }
        if let Some((_, r)) = best {
            return r;
        }
        fallback.unwrap_or(BackendResponse {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: HeaderMap::new(),
            body: Body::from("Service Unavailable\n"),
        })
    }

    /// The account's ACLs (a HEAD of the account; asked only when tempauth alone says no,
    /// so a change is seen at once).
    pub async fn account_acls(self: &Arc<Self>, account: &str) -> Option<account_acl::AccountAcls> {
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server account acls");
        let path = format!("/{part}/{}", quote(account));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        if !r.status.is_success() {
            return None;
        }
        r.header(account_acl::SYSMETA)
            .and_then(account_acl::AccountAcls::parse)
    }

    pub async fn container_info(self: &Arc<Self>, account: &str, container: &str) -> ContainerInfo {
        let key = format!("{account}/{container}");
        if let Some((at, info)) = self.info_cache.lock().expect("info cache").get(&key) {
            if at.elapsed() < self.info_ttl {
                return info.clone();
            }
        }
        let ring = self.container_ring.get();
        let part = ring.get_part(account, Some(container), None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}/{}", quote(account), quote(container));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        let num = |k: &str| r.header(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        let info = ContainerInfo {
            status: r.status.as_u16(),
            policy_index: num("x-backend-storage-policy-index") as u32,
            read_acl: r.header("x-container-read").map(str::to_string),
            write_acl: r.header("x-container-write").map(str::to_string),
            object_count: num("x-container-object-count"),
            bytes_used: num("x-container-bytes-used"),
            cors: super::cors::Cors::from_container_headers(&r.headers),
            meta: headers_under(&r.headers, "x-container-meta-"),
            sysmeta: headers_under(&r.headers, "x-container-sysmeta-"),
        };
        if info.status / 100 == 2 {
            self.info_cache
                .lock()
                .expect("info cache")
                .insert(key, (Instant::now(), info.clone()));
        }
        info
    }

    /// The account's stats and metadata, cached like container info.
    pub async fn account_info(self: &Arc<Self>, account: &str) -> AccountInfo {
        if let Some((at, info)) = self
            .account_info_cache
            .lock()
            .expect("info cache")
            .get(account)
        {
            if at.elapsed() < self.info_ttl {
                return info.clone();
            }
        }
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}", quote(account));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        let num = |k: &str| r.header(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        let mut policy_stats = std::collections::BTreeMap::new();
        for (k, v) in &r.headers {
            let Some(rest) = k.as_str().strip_prefix("x-account-storage-policy-") else {
                continue;
            };
            let value: u64 = v.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            let (name, is_bytes) = if let Some(n) = rest.strip_suffix("-bytes-used") {
                (n, true)
            } else if let Some(n) = rest.strip_suffix("-object-count") {
                (n, false)
            } else {
                continue;
            };
            if let Some(p) = self.policies.by_name(name) {
                let e: &mut (u64, u64) = policy_stats.entry(p.index).or_default();
                if is_bytes {
                    e.0 = value;
                } else {
                    e.1 = value;
                }
            }
        }
        let info = AccountInfo {
            status: r.status.as_u16(),
            bytes_used: num("x-account-bytes-used"),
            object_count: num("x-account-object-count"),
            container_count: num("x-account-container-count"),
            meta: headers_under(&r.headers, "x-account-meta-"),
            sysmeta: headers_under(&r.headers, "x-account-sysmeta-"),
            policy_stats,
        };
        if info.status / 100 == 2 {
            self.account_info_cache
                .lock()
                .expect("info cache")
                .insert(account.to_string(), (Instant::now(), info.clone()));
        }
        info
    }

    fn forget_account(&self, account: &str) {
        self.account_info_cache
            .lock()
            .expect("info cache")
            .remove(account);
    }

    fn forget_container(&self, account: &str, container: &str) {
        self.info_cache
            .lock()
            .expect("info cache")
            .remove(&format!("{account}/{container}"));
    }

    /// Whether the account exists, creating it when `account_autocreate` is on.
    async fn ensure_account(
        self: &Arc<Self>,
        account: &str,
        trans_id: &str,
    ) -> Result<(), Response> {
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let path = format!("/{part}/{}", quote(account));
        let mut h = HeaderMap::new();
        set(&mut h, "x-trans-id", trans_id);
        let r = self
            .read_one(ring.clone(), part, &Method::HEAD, &path, &h)
            .await;
        if r.status.is_success() {
            return Ok(());
        }
        if r.status != StatusCode::NOT_FOUND {
            return Err(status_text(StatusCode::SERVICE_UNAVAILABLE));
        }
        if !self.account_autocreate {
            return Err(status_text(StatusCode::NOT_FOUND));
        }
        set(&mut h, "x-timestamp", &timestamp_now());
        let answers = self
            .make_requests(
                ring.clone(),
                part,
                Method::PUT,
                path,
                h,
                Bytes::new(),
                |_, _| {},
            )
            .await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        match best_status(&statuses, quorum_size(ring.part_nodes(part).len())) {
            Some((s, _)) if s / 100 == 2 || s == 409 => Ok(()),
            _ => Err(status_text(StatusCode::SERVICE_UNAVAILABLE)),
        }
    }
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

// ---------------------------------------------------------------------------------
// Accounts.

async fn account_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    // tempauth checks an account ACL header before anything else.
    let acl_header = ctx.h(account_acl::HEADER).map(str::to_string);
    if let Some(v) = &acl_header {
        if let Err(problem) = account_acl::validate(v) {
            let mut r = text(
                StatusCode::BAD_REQUEST,
                account_acl::error_body(&problem, v),
            );
            set(r.headers_mut(), "content-type", "text/plain; charset=UTF-8");
            return r;
        }
    }
    tri!(ctx.authz(None).await);
    let ring = proxy.account_ring.get();
    let part = ring.get_part(&ctx.account, None, None);
    let base = format!("/{part}/{}", quote(&ctx.account));
    match ctx.method.clone() {
        m @ (Method::GET | Method::HEAD) => {
            let q = tri!(listing_query(ctx, proxy.constraints.account_listing_limit));
            let path = format!("{base}?{q}");
            let h = ctx.backend_headers(None);
            let r = if ctx
                .h("x-newest")
                .is_some_and(ringsmith::swift::conf::is_true)
            {
                proxy.read_newest(ring, part, &m, &path, &h).await
            } else {
                proxy.read_one(ring, part, &m, &path, &h).await
            };
            if r.status == StatusCode::NOT_FOUND && proxy.account_autocreate {
                // Swift's white lie: an account nobody wrote to yet is an empty one.
                return fake_empty_account(ctx);
            }
            let stored_acl = r.header(account_acl::SYSMETA).map(str::to_string);
            let mut resp = listing_response(ctx, r);
            if ctx.owner {
                if let Some(shown) = stored_acl.as_deref().and_then(account_acl::display) {
                    set(resp.headers_mut(), account_acl::HEADER, &shown);
                }
            }
            resp
        }
        Method::POST | Method::PUT | Method::DELETE => {
            if ctx.method != Method::POST
                && !(proxy.allow_account_management
                    && ctx.identity.as_ref().is_some_and(|i| i.is_reseller_admin()))
            {
                return status_text(StatusCode::METHOD_NOT_ALLOWED);
            }
            tri!(check_meta(ctx, MetaTarget::Account));
            drop(body);
            if ctx.method == Method::POST {
                tri!(proxy.ensure_account(&ctx.account, &ctx.trans_id).await);
            }
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            if let (Some(v), true) = (&acl_header, ctx.owner) {
                set(&mut h, account_acl::SYSMETA, v);
            }
            let replicas = ring.part_nodes(part).len();
            proxy.forget_account(&ctx.account);
            let answers = proxy
                .make_requests(
                    ring,
                    part,
                    ctx.method.clone(),
                    base,
                    h,
                    Bytes::new(),
                    |_, _| {},
                )
                .await;
            proxy.forget_account(&ctx.account);
            quorum_response(&answers, replicas, ctx.owner)
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn fake_empty_account(ctx: &Ctx) -> Response {
    // A HEAD of an account is a 204, as from the account server.
    let (status, body) = if ctx.method == Method::HEAD {
        (StatusCode::NO_CONTENT, "")
    } else {
        (StatusCode::OK, "[]")
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    set(h, "content-type", "application/json; charset=utf-8");
    set(h, "content-length", &body.len().to_string());
    set(h, "x-account-container-count", "0");
    set(h, "x-account-object-count", "0");
    set(h, "x-account-bytes-used", "0");
    let ts = timestamp_now();
    set(h, "x-timestamp", &ts);
    set(h, "x-put-timestamp", &ts);
    r
}

// ---------------------------------------------------------------------------------
// Containers.

async fn container_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("container request");
    if container.len() > proxy.constraints.max_container_name_length {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Container name length of {} longer than {}",
                container.len(),
                proxy.constraints.max_container_name_length
            ),
        );
    }
    let ring = proxy.container_ring.get();
    let part = ring.get_part(&ctx.account, Some(&container), None);
    let base = format!("/{part}/{}/{}", quote(&ctx.account), quote(&container));
    drop(body);
    match ctx.method.clone() {
        m @ (Method::GET | Method::HEAD) => {
            let acl = if ctx.identity.as_ref().is_some_and(|i| {
                i.groups.iter().any(|g| g == &ctx.account) || i.is_reseller_admin()
            }) {
                None
            } else {
                proxy
                    .container_info(&ctx.account, &container)
                    .await
                    .read_acl
            };
            tri!(ctx.authz(acl.as_deref()).await);
            let q = tri!(listing_query(
                ctx,
                proxy.constraints.container_listing_limit
            ));
            let path = format!("{base}?{q}");
            let h = ctx.backend_headers(None);
            let r = if ctx
                .h("x-newest")
                .is_some_and(ringsmith::swift::conf::is_true)
            {
                proxy.read_newest(ring, part, &m, &path, &h).await
            } else {
                proxy.read_one(ring, part, &m, &path, &h).await
            };
            let policy = r
                .header("x-backend-storage-policy-index")
                .and_then(|v| v.parse().ok())
                .and_then(|i| proxy.policies.get(i))
                .map(|p| p.name().to_string());
            let mut resp = listing_response(ctx, r);
            if let Some(name) = policy {
                set(resp.headers_mut(), "x-storage-policy", &name);
            }
            resp
        }
        Method::PUT | Method::POST | Method::DELETE => {
            tri!(ctx.authz(None).await);
            if ctx.method == Method::PUT && container.contains('/') {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Container name cannot contain slashes",
                );
            }
            if ctx.method != Method::DELETE && ctx.authorizer.is_some() {
                // tempauth's `clean_acl`, before the metadata checks, as in Swift.
                for acl_header in ["x-container-read", "x-container-write"] {
                    if let Some(v) = ctx.h(acl_header).map(str::to_string) {
                        match super::auth::clean_acl(acl_header, &v) {
                            Ok(clean) => set(&mut ctx.headers, acl_header, &clean),
                            Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
                        }
                    }
                }
            }
            tri!(check_meta(ctx, MetaTarget::Container));
            for acl_header in ["x-container-read", "x-container-write"] {
                if let Some(v) = ctx.h(acl_header) {
                    if v.len() > proxy.constraints.max_header_size {
                        return text(StatusCode::BAD_REQUEST, format!("{acl_header} too long"));
                    }
                }
            }
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            if ctx.method == Method::PUT {
                // An empty X-Storage-Policy means the default, as no header does.
                match ctx.h("x-storage-policy").filter(|n| !n.trim().is_empty()) {
                    Some(name) => match proxy.policies.by_name(name) {
                        Some(p) if !p.deprecated => set(
                            &mut h,
                            "x-backend-storage-policy-index",
                            &p.index.to_string(),
                        ),
                        Some(p) => {
                            return text(
                                StatusCode::BAD_REQUEST,
                                format!("Storage Policy {:?} is deprecated", p.name()),
                            )
                        }
                        None => {
                            return text(
                                StatusCode::BAD_REQUEST,
                                format!("Invalid X-Storage-Policy {name:?}"),
                            )
                        }
                    },
                    None => set(
                        &mut h,
                        "x-backend-storage-policy-default",
                        &proxy.policies.default_policy().index.to_string(),
                    ),
                }
                tri!(proxy.ensure_account(&ctx.account, &ctx.trans_id).await);
            }
            if ctx.method == Method::POST && ctx.h("x-storage-policy").is_some() {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Storage Policy cannot be changed on an existing container",
                );
            }
            // Each container replica reports to one account replica.
            let aring = proxy.account_ring.get();
            let apart = aring.get_part(&ctx.account, None, None);
            let anodes = aring.part_nodes(apart);
            let with_account = ctx.method != Method::POST;
            proxy.forget_container(&ctx.account, &container);
            let replicas = ring.part_nodes(part).len();
            let answers = proxy
                .make_requests(
                    ring,
                    part,
                    ctx.method.clone(),
                    base,
                    h,
                    Bytes::new(),
                    |i, h| {
                        if with_account && !anodes.is_empty() {
                            let n = &anodes[i % anodes.len()];
                            set(h, "x-account-host", &n.host());
                            set(h, "x-account-partition", &apart.to_string());
                            set(h, "x-account-device", &n.device);
                        }
                    },
                )
                .await;
            proxy.forget_container(&ctx.account, &container);
            quorum_response(&answers, replicas, ctx.owner)
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

// ---------------------------------------------------------------------------------
// Objects.

/// The client's `X-Delete-At`/`X-Delete-After`, validated and turned into `X-Delete-At`.
fn expiry_headers(ctx: &Ctx, h: &mut HeaderMap) -> Result<(), Response> {
    let now = super::auth::now_secs();
    if let Some(after) = ctx.h("x-delete-after") {
        let after: i64 = after
            .trim()
            .parse()
            .map_err(|_| text(StatusCode::BAD_REQUEST, "Non-integer X-Delete-After"))?;
        if after < 0 {
            return Err(text(StatusCode::BAD_REQUEST, "X-Delete-After in past"));
        }
        h.remove("x-delete-after");
        set(h, "x-delete-at", &(now as i64 + after).to_string());
    } else if let Some(at) = ctx.h("x-delete-at") {
        let at = parse_delete_at(at)
            .ok_or_else(|| text(StatusCode::BAD_REQUEST, "Non-integer X-Delete-At"))?;
        if at < now as i128 {
            return Err(text(StatusCode::BAD_REQUEST, "X-Delete-At in past"));
        }
        set(h, "x-delete-at", &at.to_string());
    }
    Ok(())
}

/// Swift's reading of a request's Transfer-Encoding: `chunked` alone is chunked; a list of
/// codings is 501 (none but chunked is supported), any other single coding 400.
fn transfer_coding(value: &str) -> Result<bool, Response> {
    if value.contains(',') {
        return Err(text(
            StatusCode::NOT_IMPLEMENTED,
            "Unsupported Transfer-Coding header value specified in Transfer-Encoding header",
        ));
    }
    if value.trim().eq_ignore_ascii_case("chunked") {
        Ok(true)
    } else {
        Err(text(
            StatusCode::BAD_REQUEST,
            "Invalid Transfer-Encoding header value",
        ))
    }
}

/// The largest expiry Swift stores: its expirer sorts 10-digit strings, so later times
/// are capped to this (November 2286).
const MAX_DELETE_AT: i128 = 9_999_999_999;

/// An `X-Delete-At` as Swift's `int()` reads it (an optional sign, digits, surrounding
/// blanks), capped to [`MAX_DELETE_AT`]; `None` when it is not an integer.
fn parse_delete_at(raw: &str) -> Option<i128> {
    let t = raw.trim();
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    let magnitude: i128 = if significant.len() > 11 {
        MAX_DELETE_AT + 1
    } else {
        significant.parse().unwrap_or(0)
    };
    Some(if neg {
        -magnitude
    } else {
        magnitude.min(MAX_DELETE_AT)
    })
}

/// Swift's guess for an object PUT without a Content-Type: Python's `mimetypes`.
fn guess_content_type(name: &str) -> &'static str {
    super::mime_types::guess(name).unwrap_or("application/octet-stream")
}

struct ObjTarget {
    ring: Arc<Ring>,
    part: usize,
    path: String,
    policy_index: u32,
}

fn object_target(
    proxy: &Proxy,
    account: &str,
    container: &str,
    object: &str,
    policy_index: u32,
) -> Result<ObjTarget, Response> {
    let Some(slot) = proxy.object_rings.get(&policy_index) else {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("No policy with index {policy_index}"),
        ));
    };
    let ring = slot.get();
    let part = ring.get_part(account, Some(container), Some(object));
    Ok(ObjTarget {
        path: format!(
            "/{part}/{}/{}/{}",
            quote(account),
            quote(container),
            quote(object)
        ),
        ring,
        part,
        policy_index,
    })
}

async fn object_request(ctx: &mut Ctx, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("object request");
    let object = ctx.object.clone().expect("object request");
    if object.len() > proxy.constraints.max_object_name_length {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Object name length of {} longer than {}",
                object.len(),
                proxy.constraints.max_object_name_length
            ),
        );
    }
    let info = proxy.container_info(&ctx.account, &container).await;
    let acl = match ctx.method {
        Method::GET | Method::HEAD => info.read_acl.clone(),
        _ => info.write_acl.clone(),
    };
    tri!(ctx.authz(acl.as_deref()).await);
    if info.status == 404 {
        return status_text(StatusCode::NOT_FOUND);
    }
    if info.status / 100 != 2 {
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    let target = tri!(object_target(
        &proxy,
        &ctx.account,
        &container,
        &object,
        info.policy_index
    ));
    match ctx.method.clone() {
        Method::GET | Method::HEAD => get_object(ctx, &target).await,
        Method::PUT => put_object(ctx, &target, body).await,
        Method::POST => {
            tri!(check_meta(ctx, MetaTarget::Object));
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            tri!(expiry_headers(ctx, &mut h));
            set(
                &mut h,
                "x-backend-storage-policy-index",
                &target.policy_index.to_string(),
            );
            let cheaders = container_update_targets(&proxy, &ctx.account, &container);
            let replicas = target.ring.part_nodes(target.part).len();
            let answers = proxy
                .make_requests(
                    target.ring.clone(),
                    target.part,
                    Method::POST,
                    target.path.clone(),
                    h,
                    Bytes::new(),
                    |i, h| cheaders(i, h),
                )
                .await;
            quorum_response(&answers, replicas, ctx.owner)
        }
        Method::DELETE => {
            let mut h = ctx.backend_headers(Some(&timestamp_now()));
            set(
                &mut h,
                "x-backend-storage-policy-index",
                &target.policy_index.to_string(),
            );
            let cheaders = container_update_targets(&proxy, &ctx.account, &container);
            let replicas = target.ring.part_nodes(target.part).len();
            let answers = proxy
                .make_requests(
                    target.ring.clone(),
                    target.part,
                    Method::DELETE,
                    target.path.clone(),
                    h,
                    Bytes::new(),
                    |i, h| cheaders(i, h),
                )
                .await;
            // Swift counts a replica's 404 as a 204 as long as someone deleted something:
            // the object is gone either way.
            let any_deleted = answers.iter().any(|a| a.status / 100 == 2);
            let statuses: Vec<u16> = answers
                .iter()
                .map(|a| {
                    if a.status == 404 && any_deleted {
                        204
                    } else {
                        a.status
                    }
                })
                .collect();
            match best_status(&statuses, quorum_size(replicas)) {
                Some((s, idx)) => answer_response(&answers[idx], s, ctx.owner),
                None => status_text(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// The `X-Container-Host/Partition/Device` headers for replica `i` of an object write.
fn container_update_targets(
    proxy: &Proxy,
    account: &str,
    container: &str,
) -> impl Fn(usize, &mut HeaderMap) {
    let cring = proxy.container_ring.get();
    let cpart = cring.get_part(account, Some(container), None);
    let cnodes = cring.part_nodes(cpart);
    move |i, h| {
        if cnodes.is_empty() {
            return;
        }
        let n = &cnodes[i % cnodes.len()];
        set(h, "x-container-host", &n.host());
        set(h, "x-container-partition", &cpart.to_string());
        set(h, "x-container-device", &n.device);
    }
}

async fn get_object(ctx: &mut Ctx, target: &ObjTarget) -> Response {
    let proxy = ctx.proxy.clone();
    let mut h = ctx.backend_headers(None);
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    let r = if ctx
        .h("x-newest")
        .is_some_and(ringsmith::swift::conf::is_true)
    {
        proxy
            .read_newest(
                target.ring.clone(),
                target.part,
                &ctx.method,
                &target.path,
                &h,
            )
            .await
    } else {
        proxy
            .read_one(
                target.ring.clone(),
                target.part,
                &ctx.method,
                &target.path,
                &h,
            )
            .await
    };
    to_client(r, ctx.owner)
}

/// A backend request body fed chunk by chunk from the client-reading loop.
struct ChanBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_util::Stream for ChanBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// PUT: choose one node per replica (handoffs for nodes known to be down), stream the
/// body to all of them at once, answer by quorum.
async fn put_object(ctx: &mut Ctx, target: &ObjTarget, body: Body) -> Response {
    let proxy = ctx.proxy.clone();
    let container = ctx.container.clone().expect("object request");
    let object = ctx.object.clone().expect("object request");
    tri!(check_meta(ctx, MetaTarget::Object));
    if let Some(inm) = ctx.h("if-none-match") {
        // A conditional PUT can only mean "create if absent".
        if !inm.split(',').any(|t| t.trim() == "*") {
            return text(StatusCode::BAD_REQUEST, "If-None-Match only supports *");
        }
    }
    let te_chunked = match ctx.h("transfer-encoding").map(transfer_coding) {
        None => None,
        Some(Ok(chunked)) => Some(chunked),
        Some(Err(resp)) => return resp,
    };
    let length = match ctx.h("content-length") {
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return text(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
        },
        None if te_chunked == Some(true) => None,
        None => return status_text(StatusCode::LENGTH_REQUIRED),
    };
    let max = proxy.constraints.max_file_size;
    if length.is_some_and(|l| l > max) {
        return status_text(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let timestamp = timestamp_now();
    let mut h = ctx.backend_headers(Some(&timestamp));
    tri!(expiry_headers(ctx, &mut h));
    set(
        &mut h,
        "x-backend-storage-policy-index",
        &target.policy_index.to_string(),
    );
    let detect = ctx
        .h("x-detect-content-type")
        .is_some_and(ringsmith::swift::conf::is_true);
    if detect || !h.contains_key("content-type") {
        set(&mut h, "content-type", guess_content_type(&object));
    }
    h.remove("x-detect-content-type");
    match length {
        Some(l) => set(&mut h, "content-length", &l.to_string()),
        None => set(&mut h, "transfer-encoding", "chunked"),
    }
    h.remove("x-copy-from");

    // Node selection: a node with recent errors must prove it is reachable before it
    // is given a replica (Swift learns the same from `Expect: 100-continue`); otherwise
    // the next handoff takes its place.
    let replicas = target.ring.part_nodes(target.part).len();
    let quorum = quorum_size(replicas);
    let mut iter = NodeIter::new(
        target.ring.clone(),
        target.part,
        proxy.request_node_limit(&target.ring),
        false,
    );
    let mut chosen: Vec<Node> = Vec::new();
    while chosen.len() < replicas {
        let Some(node) = iter.next_usable(&proxy.limiter) else {
            break;
        };
        if proxy.limiter.has_errors(&node)
            && proxy
                .transport
                .in_process
                .as_ref()
                .is_none_or(|ip| !ip.serves(&node))
        {
            let addr = node.host();
            let ok = matches!(
                tokio::time::timeout(
                    Duration::from_millis(500),
                    tokio::net::TcpStream::connect(&addr)
                )
                .await,
                Ok(Ok(_))
            );
            if !ok {
                proxy.limiter.error(&node, "connect failed");
                continue;
            }
        }
        chosen.push(node);
    }
    if chosen.len() < quorum {
        tracing::error!(trans_id = %ctx.trans_id, "object PUT: only {} of {} nodes usable", chosen.len(), replicas);
        return status_text(StatusCode::SERVICE_UNAVAILABLE);
    }
    let cheaders = container_update_targets(&proxy, &ctx.account, &container);
    let mut senders = Vec::new();
    let mut putters = FuturesUnordered::new();
    for (i, node) in chosen.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let mut nh = h.clone();
        cheaders(i, &mut nh);
        let p = proxy.clone();
        let path = target.path.clone();
        senders.push(Some(tx));
        putters.push(async move {
            let r = p
                .transport
                .request(
                    &node,
                    &Method::PUT,
                    &path,
                    &nh,
                    OutBody::Stream(Body::from_stream(ChanBody(rx))),
                )
                .await;
            (node, r)
        });
    }

    // Pump client bytes to every live putter while also watching for early answers.
    let mut body = body;
    let mut sent: u64 = 0;
    let mut early: Vec<(Node, Result<BackendResponse, BackendError>)> = Vec::new();
    let client_timeout = proxy.client_timeout;
    let mut client_error: Option<StatusCode> = None;
    loop {
        let frame = tokio::select! {
            biased;
            Some(done) = putters.next(), if !putters.is_empty() => {
                early.push(done);
                continue;
            }
            f = tokio::time::timeout(client_timeout, body.frame()) => f,
        };
        let chunk = match frame {
            Err(_) => {
                client_error = Some(StatusCode::REQUEST_TIMEOUT);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                client_error = Some(StatusCode::from_u16(499).expect("499"));
                break;
            }
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        sent += chunk.len() as u64;
        if sent > max || length.is_some_and(|l| sent > l) {
            client_error = Some(StatusCode::PAYLOAD_TOO_LARGE);
            break;
        }
        let mut live = 0;
        for s in senders.iter_mut() {
            if let Some(tx) = s {
                let ok = matches!(
                    tokio::time::timeout(proxy.transport.node_timeout, tx.send(Ok(chunk.clone())))
                        .await,
                    Ok(Ok(()))
                );
                if ok {
                    live += 1;
                } else {
                    *s = None;
                }
            }
        }
        if live < quorum {
            tracing::error!(trans_id = %ctx.trans_id, "object PUT: lost quorum while streaming ({live} left)");
            client_error = Some(StatusCode::SERVICE_UNAVAILABLE);
            break;
        }
    }
    if client_error.is_none() && length.is_some_and(|l| sent < l) {
        client_error = Some(StatusCode::from_u16(499).expect("499"));
    }
    if let Some(status) = client_error {
        // Poison every body so no backend commits a partial object.
        for tx in senders.iter().flatten() {
            let _ = tx.try_send(Err(std::io::Error::other("client request aborted")));
        }
        drop(senders);
        while putters.next().await.is_some() {}
        return status_text(status);
    }
    drop(senders);

    // Collect answers; once a quorum agrees, wait only post_quorum_timeout for the rest.
    let mut answers: Vec<(u16, HeaderMap)> = Vec::new();
    let handle = |proxy: &Proxy,
                  (node, r): (Node, Result<BackendResponse, BackendError>),
                  answers: &mut Vec<(u16, HeaderMap)>| {
        match r {
            Err(e) => {
                proxy.limiter.error(&node, &e.to_string());
                answers.push((503, HeaderMap::new()));
            }
            Ok(r) => {
                if r.status == StatusCode::INSUFFICIENT_STORAGE {
                    proxy.limiter.limit(&node, "Insufficient Storage");
                } else if r.status.is_server_error() {
                    proxy.limiter.error(&node, &format!("status {}", r.status));
                } else {
                    proxy.limiter.success(&node);
                }
                answers.push((r.status.as_u16(), r.headers));
            }
        }
    };
    for e in early {
        handle(&proxy, e, &mut answers);
    }
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let good = answers.iter().filter(|(s, _)| s / 100 == 2).count();
        if good >= quorum && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + proxy.post_quorum_timeout);
        }
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, putters.next()).await {
                Ok(n) => n,
                Err(_) => break,
            },
            None => putters.next().await,
        };
        match next {
            Some(done) => handle(&proxy, done, &mut answers),
            None => break,
        }
    }
    while answers.len() < replicas {
        answers.push((503, HeaderMap::new()));
    }
    let etags: std::collections::HashSet<String> = answers
        .iter()
        .filter(|(s, _)| s / 100 == 2)
        .filter_map(|(_, h)| header(h, "etag").map(|e| e.trim_matches('"').to_string()))
        .collect();
    if etags.len() > 1 {
        tracing::error!(trans_id = %ctx.trans_id, ?etags, "object PUT: replicas disagree on the etag");
        return status_text(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    match best_status(&statuses, quorum) {
        Some((s, idx)) if s / 100 == 2 => {
            let mut r = empty(StatusCode::CREATED);
            let hm = r.headers_mut();
            if let Some(e) = header(&answers[idx].1, "etag") {
                set(hm, "etag", e.trim_matches('"'));
            }
            if let Some(lm) = last_modified(&timestamp) {
                set(hm, "last-modified", &lm);
            }
            set(hm, "content-type", "text/html; charset=UTF-8");
            set(hm, "content-length", "0");
            r
        }
        Some((s, _)) => {
            status_text(StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
        }
        None => status_text(StatusCode::SERVICE_UNAVAILABLE),
    }
}

#[cfg(test)]
#[path = "controllers_tests.rs"]
mod tests;

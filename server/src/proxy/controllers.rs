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
use super::auth::{authorize, AuthzRequest, Decision, Identity};
use super::backend::{
    best_status, header_value, quorum_size, set, BackendError, BackendResponse, NodeIter, OutBody,
};
use super::listing;
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
    ) || is_internal(name)
}

/// `X-Backend-*` and system metadata: the gatekeeper's set.
fn is_internal(name: &str) -> bool {
    name.starts_with("x-backend-")
        || name.starts_with("x-object-sysmeta-")
        || name.starts_with("x-container-sysmeta-")
        || name.starts_with("x-account-sysmeta-")
        || name.starts_with("x-object-transient-sysmeta-")
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

    /// tempauth's `authorize`, then (for a logged-in user it denies) the account's ACLs.
    async fn authz(&mut self, acl: Option<&str>) -> Result<(), Response> {
        let mut d = authorize(
            &self.proxy.auth,
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
        if d == Decision::Denied {
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
        if is_internal(n)
            || matches!(
                n,
                "connection" | "keep-alive" | "transfer-encoding" | "server" | "date"
            )
            || (!owner && OWNER_HEADERS.contains(&n))
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

pub async fn handle(proxy: &Arc<Proxy>, req: Request, trans_id: &str) -> Response {
    let path = req.uri().path().to_string();
    if path == "/info" {
        return info(proxy, req.method());
    }
    if path == "/healthcheck" {
        return text(StatusCode::OK, "OK");
    }
    if path == "/auth/v1.0"
        || path == "/auth/v1.0/"
        || path == "/auth/auth"
        || (path.starts_with("/auth/v1/") && path.ends_with("/auth"))
    {
        return get_token(proxy, &req);
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
    let token = header(req.headers(), "x-auth-token")
        .or_else(|| header(req.headers(), "x-storage-token"))
        .map(str::to_string);
    let identity = match token {
        Some(t) => match proxy.auth.validate(&t) {
            Some(id) => Some(id),
            None => {
                let mut r = status_text(StatusCode::UNAUTHORIZED);
                set(
                    r.headers_mut(),
                    "www-authenticate",
                    &format!("Swift realm=\"{}\"", quote(&account)),
                );
                return r;
            }
        },
        None => None,
    };
    let (parts, body) = req.into_parts();
    let mut ctx = Ctx {
        proxy: proxy.clone(),
        method: parts.method,
        account,
        container,
        object,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        identity,
        trans_id: trans_id.to_string(),
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
    if matches!(ctx.method, Method::POST | Method::DELETE)
        && ctx.query.as_deref().is_some_and(|q| {
            q.split('&')
                .any(|p| p.split('=').next() == Some("bulk-delete"))
        })
    {
        return bulk::bulk_delete(&mut ctx, body).await;
    }
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
    let doc = serde_json::json!({
        "swift": {
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
        },
        "tempauth": {"account_acls": true},
        "dlo": {"max_get_time": 86400},
        "bulk_delete": {"max_deletes_per_request": 10000, "max_failed_deletes": 1000},
        "copy": {},
    });
    let mut r = Response::new(Body::from(doc.to_string()));
    set(
        r.headers_mut(),
        "content-type",
        "application/json; charset=UTF-8",
    );
    r
}

fn get_token(proxy: &Proxy, req: &Request) -> Response {
    let h = req.headers();
    let user = header(h, "x-auth-user").or_else(|| header(h, "x-storage-user"));
    let key = header(h, "x-auth-key").or_else(|| header(h, "x-storage-pass"));
    let (Some(user), Some(key)) = (user, key) else {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    };
    let realm = user.split(':').next().unwrap_or("unknown").to_string();
    let path = req.uri().path();
    // `/auth/v1/<act>/auth` must name the same account as the user.
    if let Some(act) = path
        .strip_prefix("/auth/v1/")
        .and_then(|r| r.strip_suffix("/auth"))
    {
        if act != realm {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        }
    }
    let Some((token, expires, u)) = proxy.auth.login(user, key) else {
        let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        set(
            r.headers_mut(),
            "www-authenticate",
            &format!("Swift realm=\"{realm}\""),
        );
        return r;
    };
    let url = u.storage_url.clone().unwrap_or_else(|| {
        let host = header(h, "host").unwrap_or("127.0.0.1");
        format!("http://{host}/v1/{}", proxy.auth.account_name(&u.account))
    });
    let mut r = empty(StatusCode::OK);
    let hm = r.headers_mut();
    set(hm, "x-auth-token", &token);
    set(hm, "x-storage-token", &token);
    set(
        hm,
        "x-auth-token-expires",
        &expires.saturating_sub(super::auth::now_secs()).to_string(),
    );
    set(hm, "x-storage-url", &url);
    set(hm, "content-length", "0");
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
        };
        if info.status / 100 == 2 {
            self.info_cache
                .lock()
                .expect("info cache")
                .insert(key, (Instant::now(), info.clone()));
        }
        info
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

async fn listing_response(ctx: &Ctx, r: BackendResponse, format: listing::Format) -> Response {
    let owner = ctx.owner;
    if !(r.status == StatusCode::OK || r.status == StatusCode::NO_CONTENT) {
        return to_client(r, owner);
    }
    let mut headers = HeaderMap::new();
    copy_client_headers(&r.headers, &mut headers, owner);
    headers.remove("content-length");
    set(&mut headers, "content-type", format.content_type());
    if ctx.query_param("format").is_none() {
        set(&mut headers, "vary", "Accept");
    }
    if ctx.method == Method::HEAD {
        let mut out = empty(r.status);
        *out.headers_mut() = headers;
        set(out.headers_mut(), "content-length", "0");
        return out;
    }
    let status = r.status;
    let body = read_small(r.body, 64 << 20).await.unwrap_or_default();
    let records: Vec<serde_json::Value> = if body.is_empty() {
        Vec::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                let mut out = Response::new(Body::from(body));
                *out.status_mut() = status;
                return out;
            }
        }
    };
    let rendered = listing::render(&records, format, &ctx.account, ctx.container.as_deref());
    let status = if rendered.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let length = rendered.len().to_string();
    let mut out = Response::new(if rendered.is_empty() {
        super::empty_body_with_length_header()
    } else {
        Body::from(rendered)
    });
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    // Explicit even on a 204 (hyper adds none there): Swift's clients read it.
    set(out.headers_mut(), "content-length", &length);
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
            let Some(format) =
                listing::choose(ctx.query_param("format").as_deref(), ctx.h("accept"))
            else {
                return status_text(StatusCode::NOT_ACCEPTABLE);
            };
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
                return fake_empty_account(ctx, format);
            }
            let stored_acl = r.header(account_acl::SYSMETA).map(str::to_string);
            let mut resp = listing_response(ctx, r, format).await;
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
            quorum_response(&answers, replicas, ctx.owner)
        }
        _ => status_text(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn fake_empty_account(ctx: &Ctx, format: listing::Format) -> Response {
    let body = match format {
        listing::Format::Json => "[]".to_string(),
        listing::Format::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"{}\">\n</account>",
            ctx.account
        ),
        listing::Format::Plain => String::new(),
    };
    // A HEAD of an account is a 204 whatever the format, as from the account server.
    let status = if body.is_empty() || ctx.method == Method::HEAD {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let len = body.len();
    let mut r = if ctx.method == Method::HEAD {
        empty(status)
    } else if body.is_empty() {
        Response::new(super::empty_body_with_length_header())
    } else {
        Response::new(Body::from(body))
    };
    *r.status_mut() = status;
    let h = r.headers_mut();
    set(h, "content-type", format.content_type());
    set(
        h,
        "content-length",
        &if ctx.method == Method::HEAD { 0 } else { len }.to_string(),
    );
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
            let Some(format) =
                listing::choose(ctx.query_param("format").as_deref(), ctx.h("accept"))
            else {
                return status_text(StatusCode::NOT_ACCEPTABLE);
            };
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
            let mut resp = listing_response(ctx, r, format).await;
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
    if ctx.method.as_str() == "COPY" {
        return copy_method(ctx).await;
    }
    if ctx.method == Method::PUT {
        if let Some(src) = ctx.h("x-copy-from").map(str::to_string) {
            // Swift reads the source first: its 404/403 come before the destination's.
            drop(body);
            return copy_into(ctx, &src).await;
        }
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
        Method::PUT => put_object(ctx, &target, body, None).await,
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
    let wants_manifest = ctx.query_param("multipart-manifest").as_deref() == Some("get");
    // A range of a DLO is a range of the segments' concatenation, not of the (empty)
    // manifest object: ask again for the whole manifest.
    let r = if r.status == StatusCode::RANGE_NOT_SATISFIABLE
        && r.header("x-object-manifest").is_some()
        && !wants_manifest
    {
        h.remove("range");
        proxy
            .read_one(
                target.ring.clone(),
                target.part,
                &ctx.method,
                &target.path,
                &h,
            )
            .await
    } else {
        r
    };
    if r.status.is_success() {
        if let Some(manifest) = r.header("x-object-manifest").map(str::to_string) {
            if !wants_manifest {
                return dlo_response(ctx, r, &manifest).await;
            }
        }
    }
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

/// Where a PUT's bytes come from: the client, or a copy source (with its length).
struct PutSource {
    body: Body,
    length: Option<u64>,
}

/// PUT: choose one node per replica (handoffs for nodes known to be down), stream the
/// body to all of them at once, answer by quorum.
async fn put_object(
    ctx: &mut Ctx,
    target: &ObjTarget,
    body: Body,
    source: Option<PutSource>,
) -> Response {
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
    let (body, length) = match source {
        Some(s) => (s.body, s.length),
        None => {
            let length = match ctx.h("content-length") {
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) => Some(n),
                    Err(_) => return text(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
                },
                None if te_chunked == Some(true) => None,
                None => return status_text(StatusCode::LENGTH_REQUIRED),
            };
            (body, length)
        }
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

/// `COPY /a/c/o` with `Destination: c2/o2` is a PUT of the destination from the source.
async fn copy_method(ctx: &mut Ctx) -> Response {
    let Some(dest) = ctx.h("destination").map(str::to_string) else {
        return text(
            StatusCode::PRECONDITION_FAILED,
            "You must provide a Destination header",
        );
    };
    let dest = percent_decode_str(dest.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let Some((dc, dobj)) = dest
        .split_once('/')
        .filter(|(c, o)| !c.is_empty() && !o.is_empty())
    else {
        return text(
            StatusCode::PRECONDITION_FAILED,
            "Destination header must be of the form <container name>/<object name>",
        );
    };
    let dest_account = ctx
        .h("destination-account")
        .map(str::to_string)
        .unwrap_or_else(|| ctx.account.clone());
    // Quoted: copy_into decodes its source as it does an X-Copy-From header, and the
    // names here are already decoded (a name may hold `%`).
    let src = format!(
        "/{}/{}",
        quote(ctx.container.as_deref().unwrap_or("")),
        quote(ctx.object.as_deref().unwrap_or(""))
    );
    let src_account = ctx.account.clone();
    ctx.account = dest_account;
    ctx.container = Some(dc.to_string());
    ctx.object = Some(dobj.to_string());
    ctx.method = Method::PUT;
    ctx.headers.remove("destination");
    set(&mut ctx.headers, "x-copy-from-account", &src_account);
    copy_into(ctx, &src).await
}

/// The destination of a copy (the request's own account/container/object), once the
/// source has been read: its write access, its container's existence.
async fn copy_destination(ctx: &mut Ctx) -> Result<ObjTarget, Response> {
    let container = ctx.container.clone().expect("object request");
    let object = ctx.object.clone().expect("object request");
    let info = ctx.proxy.container_info(&ctx.account, &container).await;
    ctx.authz(info.write_acl.as_deref()).await?;
    if info.status / 100 != 2 {
        return Err(status_text(if info.status == 404 {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }));
    }
    object_target(
        &ctx.proxy,
        &ctx.account,
        &container,
        &object,
        info.policy_index,
    )
}

/// PUT with `X-Copy-From: /c/o`: read the source (with the reader's rights on it) and
/// stream it into the destination, metadata carried over unless `X-Fresh-Metadata`.
async fn copy_into(ctx: &mut Ctx, src: &str) -> Response {
    let proxy = ctx.proxy.clone();
    let src = percent_decode_str(src.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    let Some((sc, so)) = src
        .split_once('/')
        .filter(|(c, o)| !c.is_empty() && !o.is_empty())
    else {
        return text(
            StatusCode::PRECONDITION_FAILED,
            "X-Copy-From header must be of the form <container name>/<object name>",
        );
    };
    let src_account = ctx
        .h("x-copy-from-account")
        .map(str::to_string)
        .unwrap_or_else(|| ctx.account.clone());
    // Authorize the read of the source as its own request.
    let sinfo = proxy.container_info(&src_account, sc).await;
    let mut reader = Ctx {
        proxy: proxy.clone(),
        method: Method::GET,
        account: src_account.clone(),
        container: Some(sc.to_string()),
        object: Some(so.to_string()),
        query: None,
        headers: HeaderMap::new(),
        identity: ctx.identity.clone(),
        trans_id: ctx.trans_id.clone(),
        owner: false,
    };
    if let Some(r) = ctx.h("referer") {
        set(&mut reader.headers, "referer", r);
    }
    tri!(reader.authz(sinfo.read_acl.as_deref()).await);
    if sinfo.status / 100 != 2 {
        return status_text(if sinfo.status == 404 {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        });
    }
    let starget = tri!(object_target(
        &proxy,
        &src_account,
        sc,
        so,
        sinfo.policy_index
    ));
    let mut sh = HeaderMap::new();
    set(&mut sh, "x-trans-id", &ctx.trans_id);
    set(
        &mut sh,
        "x-backend-storage-policy-index",
        &starget.policy_index.to_string(),
    );
    // A Range copies only those bytes of the source, as Swift's copy middleware does.
    for k in [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "range",
    ] {
        if let Some(v) = ctx.headers.get(k) {
            sh.insert(HeaderName::from_static(k), v.clone());
        }
    }
    let sresp = proxy
        .read_one(
            starget.ring.clone(),
            starget.part,
            &Method::GET,
            &starget.path,
            &sh,
        )
        .await;
    if !sresp.status.is_success() {
        return to_client(sresp, false);
    }
    if sresp.header("x-object-manifest").is_some() {
        return text(StatusCode::BAD_REQUEST, "Copying a DLO manifest is not supported; use ?multipart-manifest=get on the source to copy the manifest itself");
    }
    let target = tri!(copy_destination(ctx).await);
    let target = &target;
    let length = sresp.header("content-length").and_then(|v| v.parse().ok());
    let last_mod = sresp.header("last-modified").map(str::to_string);
    // Source metadata first, the request's headers over it.
    let fresh = ctx
        .h("x-fresh-metadata")
        .is_some_and(ringsmith::swift::conf::is_true);
    let mut merged = HeaderMap::new();
    for (k, v) in &sresp.headers {
        let n = k.as_str();
        let carry = n == "content-type"
            || n == "content-encoding"
            || n == "content-disposition"
            || n == "content-language"
            || n == "cache-control"
            || n == "expires"
            || n == "x-delete-at"
            || n == "x-object-manifest"
            || n == "x-static-large-object"
            || (!fresh && n.starts_with("x-object-meta-"));
        if carry {
            merged.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &ctx.headers {
        if k.as_str() == "content-length" || k.as_str() == "etag" {
            continue;
        }
        merged.insert(k.clone(), v.clone());
    }
    ctx.headers = merged;
    let mut resp = put_object(
        ctx,
        target,
        Body::empty(),
        Some(PutSource {
            body: sresp.body,
            length,
        }),
    )
    .await;
    if resp.status().is_success() {
        let hm = resp.headers_mut();
        set(hm, "x-copied-from", &format!("{}/{}", quote(sc), quote(so)));
        if src_account != ctx.account {
            set(hm, "x-copied-from-account", &src_account);
        }
        if let Some(lm) = last_mod {
            set(hm, "x-copied-from-last-modified", &lm);
        }
    }
    resp
}

/// A DLO manifest: the concatenation of every object in `<container>/<prefix>`, in name
/// order, streamed segment by segment.
async fn dlo_response(ctx: &mut Ctx, manifest_resp: BackendResponse, manifest: &str) -> Response {
    let proxy = ctx.proxy.clone();
    let manifest = percent_decode_str(manifest)
        .decode_utf8_lossy()
        .into_owned();
    let Some((sc, prefix)) = manifest.split_once('/') else {
        return text(StatusCode::BAD_REQUEST, "Invalid X-Object-Manifest");
    };
    let sinfo = proxy.container_info(&ctx.account, sc).await;
    let mut reader = Ctx {
        proxy: proxy.clone(),
        method: Method::GET,
        account: ctx.account.clone(),
        container: Some(sc.to_string()),
        object: Some(prefix.to_string()),
        query: None,
        headers: HeaderMap::new(),
        identity: ctx.identity.clone(),
        trans_id: ctx.trans_id.clone(),
        owner: false,
    };
    tri!(reader.authz(sinfo.read_acl.as_deref()).await);
    // List the segments (all pages).
    let cring = proxy.container_ring.get();
    let cpart = cring.get_part(&ctx.account, Some(sc), None);
    let mut segments: Vec<(String, u64, String)> = Vec::new();
    let mut marker = String::new();
    loop {
        let path = format!(
            "/{cpart}/{}/{}?format=json&prefix={}&marker={}",
            quote(&ctx.account),
            quote(sc),
            quote(prefix).replace('/', "%2F"),
            quote(&marker).replace('/', "%2F")
        );
        let mut h = HeaderMap::new();
        set(&mut h, "x-trans-id", &ctx.trans_id);
        let r = proxy
            .read_one(cring.clone(), cpart, &Method::GET, &path, &h)
            .await;
        if !r.status.is_success() {
            break;
        }
        let body = read_small(r.body, 64 << 20).await.unwrap_or_default();
        let page: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        if page.is_empty() {
            break;
        }
        for rec in &page {
            if let (Some(n), Some(b)) = (rec["name"].as_str(), rec["bytes"].as_u64()) {
                segments.push((
                    n.to_string(),
                    b,
                    rec["hash"].as_str().unwrap_or("").to_string(),
                ));
                marker = n.to_string();
            }
        }
    }
    let total: u64 = segments.iter().map(|s| s.1).sum();
    let mut etag = md5::Md5::default();
    for s in &segments {
        md5::Digest::update(&mut etag, s.2.as_bytes());
    }
    let etag = hex::encode(md5::Digest::finalize(etag));
    let mut headers = HeaderMap::new();
    copy_client_headers(&manifest_resp.headers, &mut headers, ctx.owner);
    set(&mut headers, "etag", &format!("\"{etag}\""));
    headers.remove("content-range");
    // One range is served from the segments that hold it; several are answered with the
    // whole object, as Swift's DLO does.
    let (status, window) = match ctx
        .h("range")
        .map(|v| crate::object::range::parse_range(v, total))
    {
        Some(crate::object::range::RangeOutcome::Unsatisfiable) => {
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
        Some(crate::object::range::RangeOutcome::Ranges(rs)) if rs.len() == 1 => {
            (StatusCode::PARTIAL_CONTENT, Some((rs[0].start, rs[0].end)))
        }
        _ => (StatusCode::OK, None),
    };
    match window {
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
        }
        None => set(&mut headers, "content-length", &total.to_string()),
    }
    // Each segment that overlaps the window, with the part of it to read.
    let mut pieces: Vec<(String, Option<(u64, u64)>)> = Vec::new();
    let mut offset = 0u64;
    for (name, size, _) in &segments {
        let (seg_start, seg_end) = (offset, offset + size);
        offset = seg_end;
        match window {
            None => pieces.push((name.clone(), None)),
            Some((start, end)) => {
                if *size == 0 || seg_end <= start || seg_start > end {
                    continue;
                }
                let a = start.max(seg_start) - seg_start;
                let b = end.min(seg_end - 1) - seg_start;
                let part = (a != 0 || b != size - 1).then_some((a, b));
                pieces.push((name.clone(), part));
            }
        }
    }
    if ctx.method == Method::HEAD {
        let mut r = empty(status);
        *r.headers_mut() = headers;
        return r;
    }
    let policy = sinfo.policy_index;
    let account = ctx.account.clone();
    let sc = sc.to_string();
    let trans_id = ctx.trans_id.clone();
    let stream = futures_util::stream::iter(pieces)
        .then(move |(name, part)| {
            let proxy = proxy.clone();
            let (account, sc, trans_id) = (account.clone(), sc.clone(), trans_id.clone());
            async move {
                let t = object_target(&proxy, &account, &sc, &name, policy)
                    .map_err(|_| std::io::Error::other("no ring for segment policy"))?;
                let mut h = HeaderMap::new();
                set(&mut h, "x-trans-id", &trans_id);
                set(
                    &mut h,
                    "x-backend-storage-policy-index",
                    &policy.to_string(),
                );
                if let Some((a, b)) = part {
                    set(&mut h, "range", &format!("bytes={a}-{b}"));
                }
                let r = proxy
                    .read_one(t.ring.clone(), t.part, &Method::GET, &t.path, &h)
                    .await;
                if !r.status.is_success() {
                    return Err(std::io::Error::other(format!(
                        "segment {name}: {}",
                        r.status
                    )));
                }
                Ok::<_, std::io::Error>(
                    r.body
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

#[path = "bulk.rs"]
mod bulk;

#[cfg(test)]
#[path = "controllers_tests.rs"]
mod tests;

//! The proxy server: Swift's API v1 in front of the account, container and object servers.
//!
//! A request travels down the stack `[pipeline:main]` names ([`pipeline`]): Swift's
//! middlewares, one module each in [`middleware`] (transaction ids and panics, the
//! gatekeeper, auth, copies, large objects, listing formats...), then the proxy app at the
//! bottom: the account, container or object controller ([`controllers`]), which
//! authorizes with what the auth middleware left on the request, against ownership and
//! the container's ACLs, enforces the constraints of `swift.conf`, and talks
//! to the storage nodes through [`backend`] (node iteration, handoffs, error limiting,
//! quorum). Object bodies stream: a PUT is read from the client chunk by chunk and each
//! chunk is handed to every replica's connection before the next is read, so memory per
//! request is a few chunks whatever the object size, and a slow replica slows the upload
//! instead of filling memory; a GET pipes one backend's body to the client.
//!
//! The rings live in `swift_dir` and are reloaded when their files change ([`ring`]).
//! Storage policies are the `[storage-policy:N]` sections of `swift.conf` ([`ringsmith::swift::policy`]).
//! With `object_in_process = true`, object requests for devices this process serves
//! itself skip HTTP ([`paco`]).

pub mod account_acl;
pub mod auth;
pub mod backend;
pub mod cache;
pub mod continue_put;
pub mod controllers;
pub mod cors;
pub mod ec;
pub mod env;
pub mod middleware;
pub mod mime_types;
pub mod paco;
pub mod pipeline;
pub mod ring;
pub mod signature;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ringsmith::hash::HashConfig;

use backend::{ErrorLimiter, Transport};
use pipeline::{App, Handler, InfoRegistry, ResponseFuture};
use ring::RingSlot;
use ringsmith::swift::conf::{Conf, ConfError};
use ringsmith::swift::{Constraints, Policies, SwiftConf};

pub use ringsmith::swift::escape::quote;

/// Everything a proxy needs, built once from its config.
pub struct Proxy {
    pub swift_dir: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub constraints: Constraints,
    pub account_ring: RingSlot,
    pub container_ring: RingSlot,
    pub object_rings: HashMap<u32, RingSlot>,
    /// The erasure-coded policies, by index, with their codecs.
    pub ec_policies: HashMap<u32, Arc<ec::EcPolicy>>,
    pub limiter: ErrorLimiter,
    pub transport: Transport,
    pub account_autocreate: bool,
    pub allow_account_management: bool,
    /// `request_node_count` as a multiple of the replica count (Swift's `2 * replicas`).
    pub node_count_factor: usize,
    pub post_quorum_timeout: Duration,
    /// Swift's `concurrent_gets`: reads ask the next node too when one is slow.
    pub concurrent_gets: bool,
    /// How long a read waits on one node before asking another (`concurrency_timeout`,
    /// by default `conn_timeout`).
    pub concurrency_timeout: Duration,
    pub client_timeout: Duration,
    /// Swift's `swift.cache`: in-process unless the `cache` filter names memcached.
    cache: std::sync::RwLock<cache::SharedCache>,
    /// How long container info stays cached (`recheck_container_existence`).
    pub info_ttl: Duration,
    /// How long account info stays cached (`recheck_account_existence`).
    pub account_info_ttl: Duration,
    /// What the loaded middlewares offer, for `/info`.
    pub info: InfoRegistry,
    /// `cors_allow_origin`, `cors_expose_headers`, `strict_cors_mode`.
    pub cors: cors::CorsOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Conf(#[from] ConfError),
    #[error(transparent)]
    Ring(#[from] ring::RingError),
    #[error(transparent)]
    Hash(#[from] ringsmith::hash::HashConfigError),
    #[error("{0}")]
    Other(String),
}

/// The proxy app as the bottom layer of the stack.
struct ProxyApp(Arc<Proxy>);

impl Handler for ProxyApp {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(controllers::handle(&self.0, req))
    }
}

/// The whole request stack a proxy config describes: its middlewares over the app.
pub fn build_stack(conf: &Conf) -> Result<(Arc<Proxy>, App), StartError> {
    let (pipe, app_name) = pipeline::resolve(conf)?;
    let app_section = conf.section(&format!("app:{app_name}"));
    match app_section.get("use").map(str::trim) {
        Some("egg:swift#proxy") => {}
        other => {
            return Err(StartError::Other(format!(
                "{}: the pipeline ends in {app_name:?}, whose [app:{app_name}] must say \
                 `use = egg:swift#proxy` (it says {other:?})",
                conf.path.display()
            )))
        }
    }
    let swift_dir = PathBuf::from(app_section.str_or("swift_dir", "/etc/swift"));
    let swift = SwiftConf::load(&swift_dir)?;
    let info = InfoRegistry::default();
    let proxy = Arc::new(Proxy::from_conf(conf, &app_section, &swift, info.clone())?);
    let stack = pipeline::build(
        conf,
        &pipe,
        &swift,
        &info,
        &middleware::registry(),
        &proxy,
        Arc::new(ProxyApp(proxy.clone())),
    )?;
    let names: Vec<&str> = pipe.iter().map(|(n, _)| n.as_str()).collect();
    tracing::info!(pipeline = %format!("{} {app_name}", names.join(" ")), "proxy pipeline");
    Ok((proxy, stack))
}

impl Proxy {
    pub fn from_conf(
        conf: &Conf,
        app: &ringsmith::swift::conf::Section,
        swift: &SwiftConf,
        info: InfoRegistry,
    ) -> Result<Proxy, StartError> {
        let swift_dir = PathBuf::from(app.str_or("swift_dir", "/etc/swift"));
        let SwiftConf {
            hash,
            policies,
            constraints,
            ..
        } = swift.clone();
        let mut ec_policies = HashMap::new();
        for p in policies.iter() {
            let conf_err = |e: String| {
                StartError::Other(format!("{}: {e}", swift_dir.join("swift.conf").display()))
            };
            if let Some(ec) = ec::EcPolicy::of(p).map_err(conf_err)? {
                ec_policies.insert(p.index, Arc::new(ec));
            }
        }
        let reload = Duration::from_secs_f64(app.parse_or("ring_check_interval", 1.0f64)?);
        let account_ring = RingSlot::open(swift_dir.join("account.ring.gz"), hash.clone(), reload)?;
        let container_ring =
            RingSlot::open(swift_dir.join("container.ring.gz"), hash.clone(), reload)?;
        let mut object_rings = HashMap::new();
        for p in policies.iter() {
            let path = swift_dir.join(format!("{}.ring.gz", p.ring_name()));
            let slot = RingSlot::open(path.clone(), hash.clone(), reload)?;
            // An EC ring must have exactly (k+m) x duplication replicas (Swift refuses
            // to load it otherwise): fragment index = primary index mod (k+m).
            p.validate_ring_replicas(slot.get().replica_count() as f64)
                .map_err(|e| StartError::Other(format!("{}: {e}", path.display())))?;
            object_rings.insert(p.index, slot);
        }
        let secs = |k: &str, d: f64| -> Result<Duration, ConfError> {
            Ok(Duration::from_secs_f64(app.parse_or(k, d)?.max(0.001)))
        };
        let mut transport = Transport::new(secs("conn_timeout", 0.5)?, secs("node_timeout", 10.0)?);
        if app.bool_or("object_in_process", false)? {
            let object_conf = app
                .get("object_server_conf")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    StartError::Other(format!(
                        "{}: object_in_process = true needs object_server_conf = <object-server.conf>",
                        conf.path.display()
                    ))
                })?;
            if !ec_policies.is_empty() {
                // An EC PUT is a multiphase conversation over its own connection.
                return Err(StartError::Other(format!(
                    "{}: object_in_process = true does not serve erasure-coded policies; \
                     run object servers for them",
                    conf.path.display()
                )));
            }
            transport.in_process = Some(Arc::new(paco::InProcess::load(&object_conf)?));
        }
        Ok(Proxy {
            hash,
            policies,
            constraints,
            account_ring,
            container_ring,
            object_rings,
            ec_policies,
            limiter: ErrorLimiter::new(
                app.parse_or("error_suppression_limit", 10u32)?,
                secs("error_suppression_interval", 60.0)?,
            ),
            transport,
            account_autocreate: app.bool_or("account_autocreate", false)?,
            allow_account_management: app.bool_or("allow_account_management", false)?,
            node_count_factor: 2,
            post_quorum_timeout: secs("post_quorum_timeout", 0.5)?,
            concurrent_gets: app.bool_or("concurrent_gets", false)?,
            concurrency_timeout: secs(
                "concurrency_timeout",
                app.parse_or("conn_timeout", 0.5f64)?,
            )?,
            client_timeout: secs("client_timeout", 60.0)?,
            cache: std::sync::RwLock::new(Arc::new(cache::Cache::local())),
            info_ttl: secs("recheck_container_existence", 10.0)?,
            account_info_ttl: secs("recheck_account_existence", 10.0)?,
            info,
            cors: cors::CorsOptions::from_section(app)?,
            swift_dir,
        })
    }
}

impl Proxy {
    /// The cache every request uses (tokens, info, ratelimit counters).
    pub fn cache(&self) -> cache::SharedCache {
        self.cache.read().expect("proxy cache").clone()
    }

    /// The `cache` filter's memcached replaces the in-process cache.
    pub fn set_cache(&self, cache: cache::Cache) {
        *self.cache.write().expect("proxy cache") = Arc::new(cache);
    }
}

/// An axum router that hands every request, whatever its path or method, to `stack`.
pub fn router(stack: App) -> axum::Router {
    axum::Router::new().fallback(move |req: Request| {
        let stack = stack.clone();
        async move { stack.call(req).await }
    })
}

/// A plain-text response, as swob's default bodies.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let body: String = body.into();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    backend::set(r.headers_mut(), "content-type", SWIFT_DEFAULT_CONTENT_TYPE);
    r
}

/// Swift's `WWW-Authenticate` for a 401: the account of `/<version>/<account>[/...]`,
/// quoted, as the realm, else `unknown`.
pub fn www_authenticate(raw_path: &str) -> String {
    let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    let segs: Vec<&str> = path.splitn(4, '/').collect();
    let realm = match segs.as_slice() {
        ["", vrs, realm, ..] if !vrs.is_empty() && !realm.is_empty() => *realm,
        _ => "unknown",
    };
    let realm = if realm == "v1.0" || realm == "auth" {
        "unknown"
    } else {
        realm
    };
    format!("Swift realm=\"{}\"", controllers::quote(realm))
}

/// What Swift labels every answer that names no type of its own (error bodies, and
/// PUT/POST/DELETE answers): its response objects start with this header.
pub const SWIFT_DEFAULT_CONTENT_TYPE: &str = "text/html; charset=UTF-8";

/// An empty body that still lets a `Content-Length: 0` header out on a 204 to a GET.
/// hyper drops that header when it knows up front that the body is empty; Swift sends it,
/// and clients (Swift's own tests among them) read it.
pub fn empty_body_with_length_header() -> Body {
    Body::from_stream(futures_util::stream::empty::<
        Result<bytes::Bytes, std::io::Error>,
    >())
}

pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Swift's standard body for a bare status (`<html><h1>Not Found</h1>...` is swob's; a
/// short text line is friendlier for operators and clients alike).
pub fn status_text(status: StatusCode) -> Response {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    text(
        status,
        format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
    )
}

/// A header's value as text: UTF-8, not only ASCII (Swift keeps any bytes a client sends,
/// and its tests send UTF-8 content types and metadata).
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// Runs the proxy until SIGTERM/SIGINT/SIGHUP or a seamless reload (SIGUSR1): stop
/// accepting, finish in-flight requests (bounded), exit.
pub fn run(conf_path: &Path) -> Result<(), StartError> {
    let conf = Conf::load(conf_path)?;
    let defaults = conf.section("app:proxy-server");
    let ip = defaults.str_or("bind_ip", "127.0.0.1");
    let port: u16 = defaults.parse_or("bind_port", 8080u16)?;
    let workers: usize = defaults.parse_or("worker_threads", 0usize)?;
    let drain_timeout = Duration::from_secs_f64(
        defaults
            .parse_or("graceful_shutdown_timeout", 30.0f64)?
            .max(0.0),
    );
    let max_connections = crate::common::runner::connection_cap(&defaults)
        .map_err(|e| StartError::Other(format!("{}: {e}", conf_path.display())))?;
    let (proxy, stack) = build_stack(&conf)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if workers > 0 {
        rt.worker_threads(workers);
    }
    let rt = rt
        .build()
        .map_err(|e| StartError::Other(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .map_err(|e| StartError::Other(format!("bind_ip/bind_port {ip}:{port}: {e}")))?;
        tracing::info!(%addr, swift_dir = %proxy.swift_dir.display(), "proxy server starting");
        let client_timeout = proxy.client_timeout;
        let app = router(stack);
        // The same connection loop as the storage servers: Swift's header limits (count,
        // line and total sizes), a header read timeout, bounded draining on shutdown,
        // and the socket handoff of a seamless reload (SIGUSR1).
        let limits = crate::common::runner::ServeLimits {
            header_read_timeout: client_timeout,
            drain: drain_timeout,
            max_connections,
        };
        crate::common::runner::serve("proxy", addr, app, limits)
            .await
            .map_err(|e| StartError::Other(format!("server: {e}")))?;
        tracing::info!("proxy server stopped");
        Ok(())
    })
}

//! The object server: Swift's backend protocol for objects.
//!
//! Requests arrive as `/<device>/<partition>/<account>/<container>/<object>` from a proxy
//! (Swift's or ours). Every handler follows the same shape: parse and validate the path,
//! the policy and the headers; check the device; look at what is on disk and answer the
//! cheap refusals (409, 412, 404, 507) — all *before* the request body is polled, because
//! hyper answers `Expect: 100-continue` on the first poll. Only then is the body
//! streamed to a temporary file, in bounded chunks, md5 computed on the way.
//!
//! Disk work runs on tokio's blocking pool: small objects make one trip (create, write,
//! set xattrs, fsync, rename, clean up), large ones one trip per buffered chunk, so
//! memory per request is bounded by the chunk buffer whatever the object size.
//!
//! The layout: `mod.rs` routes through the storage-server shell (`common::shell`);
//! `request.rs` validates the path, policy and device of an object request; one file per
//! verb (`get.rs` for GET and HEAD, `put.rs`, `post.rs`, `delete.rs`, `replicate.rs`,
//! `ssync/` for the SSYNC receiver, whose subrequests re-enter `handle`);
//! [`diskfile`] is the disk engine (layout, metadata, writes, quarantine, suffix hashes);
//! [`update`] sends container updates and queues `async_pending`.

mod delete;
pub mod diskfile;
mod get;
pub mod mime;
mod post;
mod put;
pub mod range;
mod replicate;
mod request;
pub mod ssync;
mod suffix_listing;
pub mod update;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::Router;

use crate::common::config::{secs, StorageConfig};
use crate::common::shell::{storage_path, Resp, Shell};
use crate::recon::ServerKind;
use request::ObjectRequest;
use ringsmith::swift::conf::{Conf, ConfError};

/// Everything the object server's handlers need, read once at startup.
#[derive(Clone, Debug)]
pub struct ObjectConfig {
    pub storage: StorageConfig,
    pub node_timeout: Duration,
    pub conn_timeout: Duration,
    pub client_timeout: Duration,
    pub container_update_timeout: Duration,
    pub network_chunk_size: usize,
    pub disk_chunk_size: usize,
    pub reclaim_age: u64,
    pub replication_server: bool,
    /// SSYNC requests served at once (`replication_concurrency`, 0: no limit).
    pub replication_concurrency: usize,
    /// SSYNC requests per device at once (`replication_concurrency_per_device`, 0: no limit).
    pub replication_concurrency_per_device: usize,
    pub replication_lock_timeout: Duration,
    pub replication_failure_threshold: u64,
    pub replication_failure_ratio: f64,
    /// Headers (lower-case) a PUT/POST may store beyond the `X-Object-Meta-*` family.
    pub allowed_headers: Vec<String>,
}

pub const DEFAULT_ALLOWED_HEADERS: &str = "content-disposition, content-encoding, x-delete-at, x-object-manifest, x-static-large-object, cache-control, content-language, expires, x-robots-tag";

impl ObjectConfig {
    pub fn from_conf(conf: &Conf) -> Result<ObjectConfig, String> {
        let app = conf.section("app:object-server");
        let storage = StorageConfig::from_section(&app)?;
        let e = |e: ConfError| e.to_string();
        let allowed = app.str_or("allowed_headers", DEFAULT_ALLOWED_HEADERS);
        Ok(ObjectConfig {
            storage,
            node_timeout: secs(&app, "node_timeout", 3.0).map_err(e)?,
            conn_timeout: secs(&app, "conn_timeout", 0.5).map_err(e)?,
            client_timeout: secs(&app, "client_timeout", 60.0).map_err(e)?,
            container_update_timeout: secs(&app, "container_update_timeout", 1.0).map_err(e)?,
            network_chunk_size: app.parse_or("network_chunk_size", 65536).map_err(e)?,
            disk_chunk_size: app.parse_or("disk_chunk_size", 65536).map_err(e)?,
            reclaim_age: app.parse_or("reclaim_age", 604_800).map_err(e)?,
            replication_server: app.bool_or("replication_server", true).map_err(e)?,
            replication_concurrency: app.parse_or("replication_concurrency", 4).map_err(e)?,
            replication_concurrency_per_device: app
                .parse_or("replication_concurrency_per_device", 1)
                .map_err(e)?,
            replication_lock_timeout: Duration::from_secs(
                app.parse_or("replication_lock_timeout", 15).map_err(e)?,
            ),
            replication_failure_threshold: app
                .parse_or("replication_failure_threshold", 100)
                .map_err(e)?,
            replication_failure_ratio: app.parse_or("replication_failure_ratio", 1.0).map_err(e)?,
            allowed_headers: allowed
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        })
    }
}

/// Shared state of a running object server.
pub struct ObjectState {
    pub cfg: ObjectConfig,
    pub http: reqwest::Client,
    /// Container servers not waited for after a failed or late update.
    pub slow_update_hosts: update::SlowHosts,
    /// Swift's `replication_semaphore`: SSYNC requests beyond it are refused.
    pub ssync_slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl ObjectState {
    pub fn new(cfg: ObjectConfig) -> Arc<ObjectState> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.conn_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client with static settings");
        let ssync_slots = (cfg.replication_concurrency > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(cfg.replication_concurrency)));
        Arc::new(ObjectState {
            ssync_slots,
            cfg,
            http,
            slow_update_hosts: update::SlowHosts::default(),
        })
    }
}

/// The object server's router (recon included).
pub fn object_router(state: Arc<ObjectState>) -> Router {
    let mut methods = vec!["DELETE", "GET", "HEAD", "POST", "PUT"];
    if state.cfg.replication_server {
        methods.push("REPLICATE");
        methods.push("SSYNC");
    }
    let shell = Shell::new(
        "object-server",
        ServerKind::Object,
        methods,
        &state.cfg.storage,
    );
    shell
        .router(move |req, path| {
            let state = state.clone();
            async move { handle(&state, req, &path).await }
        })
        .layer(axum::middleware::map_response(
            |mut resp: Resp| async move {
                resp.headers_mut()
                    .insert("x-backend-server", HeaderValue::from_static("ringsmith"));
                resp
            },
        ))
}

/// One verb of the object protocol, on a path the shell has decoded.
fn handle<'a>(
    state: &'a Arc<ObjectState>,
    req: Request,
    path: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send + 'a>> {
    Box::pin(handle_inner(state, req, path))
}

async fn handle_inner(state: &Arc<ObjectState>, req: Request, path: &str) -> Resp {
    if req.method() == "REPLICATE" {
        return replicate::replicate(state, path, req.headers()).await;
    }
    if req.method() == "SSYNC" {
        return ssync::ssync(state, path, req).await;
    }
    let or = match storage_path(path, 5, 5)
        .and_then(|sp| ObjectRequest::new(state, sp, req.headers()))
    {
        Ok(or) => or,
        Err(r) => return r,
    };
    match req.method().as_str() {
        "PUT" => put::put(state, or, req).await,
        "GET" => get::get(state, or, req.headers(), false).await,
        "HEAD" => get::get(state, or, req.headers(), true).await,
        "POST" => post::post(state, or, req.headers()).await,
        _ => delete::delete(state, or, req.headers()).await,
    }
}

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod ec_tests;
#[cfg(test)]
pub(crate) mod tests;

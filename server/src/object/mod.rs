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
//! See [`diskfile`] for the on-disk format, [`hashes`] for REPLICATE and [`update`]
//! for container updates and `async_pending`.

pub mod diskfile;
pub mod hashes;
pub mod range;
mod server;
pub mod update;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ringsmith::hash::HashConfig;

use crate::common::{Constraints, DeviceSettings};
use ringsmith::swift::conf::{Conf, ConfError};
use ringsmith::swift::policy::Policies;

/// Everything the object server's handlers need, read once at startup.
#[derive(Clone, Debug)]
pub struct ObjectConfig {
    pub devices: DeviceSettings,
    pub swift_dir: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub constraints: Constraints,
    pub node_timeout: Duration,
    pub conn_timeout: Duration,
    pub client_timeout: Duration,
    pub container_update_timeout: Duration,
    pub network_chunk_size: usize,
    pub disk_chunk_size: usize,
    pub reclaim_age: u64,
    pub replication_server: bool,
    /// Headers (lower-case) a PUT/POST may store beyond the `X-Object-Meta-*` family.
    pub allowed_headers: Vec<String>,
    pub recon_cache_path: PathBuf,
}

pub const DEFAULT_ALLOWED_HEADERS: &str = "content-disposition, content-encoding, x-delete-at, x-object-manifest, x-static-large-object, cache-control, content-language, expires, x-robots-tag";

/// Swift's setting names and defaults for the keys the storage servers read.
pub fn device_settings(app: &ringsmith::swift::conf::Section) -> Result<DeviceSettings, ConfError> {
    let reserve = app.str_or("fallocate_reserve", "1%");
    let (bytes, pct) = match reserve.trim().strip_suffix('%') {
        Some(p) => (
            0,
            Some(p.trim().parse::<f64>().map_err(|_| ConfError::Value {
                path: app.path.clone(),
                section: app.name.clone(),
                key: "fallocate_reserve".into(),
                message: format!("invalid value {reserve:?}"),
            })?),
        ),
        None => (app.parse_or::<u64>("fallocate_reserve", 0)?, None),
    };
    Ok(DeviceSettings {
        devices: PathBuf::from(app.str_or("devices", "/srv/node")),
        mount_check: app.bool_or("mount_check", true)?,
        fallocate_reserve: bytes,
        fallocate_reserve_percent: pct,
    })
}

/// Loads `swift.conf` from `swift_dir` for a storage server: hash secrets, policies and
/// constraints, refusing policy types this server cannot store yet.
pub fn load_swift_conf(swift_dir: &Path) -> Result<(HashConfig, Policies, Constraints), String> {
    let c = ringsmith::swift::SwiftConf::load(swift_dir).map_err(|e| e.to_string())?;
    if let Some(p) = c.policies.iter().find(|p| !p.is_replication()) {
        return Err(format!(
            "{}: storage policy {} is of type {}, which Ringsmith's storage servers do not \
             store yet",
            c.path.display(),
            p.index,
            p.policy_type.name()
        ));
    }
    Ok((c.hash, c.policies, c.constraints))
}

fn secs(
    app: &ringsmith::swift::conf::Section,
    key: &str,
    default: f64,
) -> Result<Duration, ConfError> {
    let v: f64 = app.parse_or(key, default)?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(ConfError::Value {
            path: app.path.clone(),
            section: app.name.clone(),
            key: key.into(),
            message: format!("{v} is not a non-negative number of seconds"),
        });
    }
    Ok(Duration::from_secs_f64(v))
}

impl ObjectConfig {
    pub fn from_conf(conf: &Conf) -> Result<ObjectConfig, String> {
        let app = conf.section("app:object-server");
        let swift_dir = PathBuf::from(app.str_or("swift_dir", "/etc/swift"));
        let (hash, policies, constraints) = load_swift_conf(&swift_dir)?;
        let e = |e: ConfError| e.to_string();
        let allowed = app.str_or("allowed_headers", DEFAULT_ALLOWED_HEADERS);
        Ok(ObjectConfig {
            devices: device_settings(&app).map_err(e)?,
            swift_dir,
            hash,
            policies,
            constraints,
            node_timeout: secs(&app, "node_timeout", 3.0).map_err(e)?,
            conn_timeout: secs(&app, "conn_timeout", 0.5).map_err(e)?,
            client_timeout: secs(&app, "client_timeout", 60.0).map_err(e)?,
            container_update_timeout: secs(&app, "container_update_timeout", 1.0).map_err(e)?,
            network_chunk_size: app.parse_or("network_chunk_size", 65536).map_err(e)?,
            disk_chunk_size: app.parse_or("disk_chunk_size", 65536).map_err(e)?,
            reclaim_age: app.parse_or("reclaim_age", 604_800).map_err(e)?,
            replication_server: app.bool_or("replication_server", true).map_err(e)?,
            allowed_headers: allowed
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            recon_cache_path: PathBuf::from(app.str_or("recon_cache_path", "/var/cache/swift")),
        })
    }
}

/// Shared state of a running object server.
pub struct ObjectState {
    pub cfg: ObjectConfig,
    pub http: reqwest::Client,
}

impl ObjectState {
    pub fn new(cfg: ObjectConfig) -> Arc<ObjectState> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.conn_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client with static settings");
        Arc::new(ObjectState { cfg, http })
    }
}

/// The object server's router (recon included).
pub fn object_router(state: Arc<ObjectState>) -> Router {
    let recon = crate::recon::ReconState::new(
        crate::recon::ServerKind::Object,
        state.cfg.devices.devices.clone(),
        state.cfg.swift_dir.clone(),
        state.cfg.recon_cache_path.clone(),
        state.cfg.policies.clone(),
    );
    Router::new().fallback(move |req| server::dispatch(state.clone(), recon.clone(), req))
}

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
pub(crate) mod tests;

//! Configuration every storage server reads the same way: `[DEFAULT]` and its
//! `[app:*-server]` section for the devices, `swift.conf` for hashes, policies and
//! constraints, and the recon cache. Each server adds its own keys on top.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringsmith::hash::HashConfig;
use ringsmith::swift::conf::{ConfError, Section};
use ringsmith::swift::policy::Policies;

use super::{Constraints, DeviceSettings};

/// The settings the shell of every storage server needs.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub devices: DeviceSettings,
    pub swift_dir: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub constraints: Constraints,
    pub recon_cache_path: PathBuf,
}

impl StorageConfig {
    /// Reads the shared keys of a server's `[app:*-server]` section and its `swift.conf`.
    pub fn from_section(app: &Section) -> Result<StorageConfig, String> {
        let swift_dir = PathBuf::from(app.str_or("swift_dir", "/etc/swift"));
        let (hash, policies, constraints) = load_swift_conf(&swift_dir)?;
        Ok(StorageConfig {
            devices: device_settings(app).map_err(|e| e.to_string())?,
            swift_dir,
            hash,
            policies,
            constraints,
            recon_cache_path: PathBuf::from(app.str_or("recon_cache_path", "/var/cache/swift")),
        })
    }
}

/// Swift's setting names and defaults for the device keys the storage servers read.
pub fn device_settings(app: &Section) -> Result<DeviceSettings, ConfError> {
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
/// constraints. Erasure-coded policies are accepted: the object server stores their
/// fragment archives, and `swift.conf` parsing already refused unknown `ec_type`s.
pub fn load_swift_conf(swift_dir: &Path) -> Result<(HashConfig, Policies, Constraints), String> {
    let c = ringsmith::swift::SwiftConf::load(swift_dir).map_err(|e| e.to_string())?;
    Ok((c.hash, c.policies, c.constraints))
}

/// A duration in (fractional) seconds; negative or non-finite values are refused.
pub fn secs(app: &Section, key: &str, default: f64) -> Result<Duration, ConfError> {
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

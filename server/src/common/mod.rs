//! What the object, container and account servers share: request path parsing and
//! validation, device checks (`mount_check`, full disks), response helpers, and the
//! runner that serves a router with timeouts, structured logs and graceful shutdown.
//!
//! The servers follow one pattern: a handler parses and validates everything it can from
//! the request line and headers *before* it touches the body. hyper only sends
//! `100 Continue` when the body is first polled, so an early 4xx/409/507 reaches a proxy
//! that used `Expect: 100-continue` before it has sent a single byte of the object.

pub mod config;
pub mod continue_io;
pub mod handoff;
pub mod headers;
pub mod path;
pub mod request_target_io;
pub mod runner;
pub mod shell;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};

pub use ringsmith::swift::{Constraints, Timestamp, SWIFT_VERSION};

/// Settings every storage server reads from `[DEFAULT]` and its `[app:*]` section.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    pub devices: PathBuf,
    pub mount_check: bool,
    /// Refuse writes when less than this many bytes (or percent, when `percent` is set)
    /// would stay free: Swift's `fallocate_reserve`.
    pub fallocate_reserve: u64,
    pub fallocate_reserve_percent: Option<f64>,
}

/// Why a device cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum DeviceState {
    Ok(PathBuf),
    Unavailable,
}

impl DeviceSettings {
    /// Swift's `check_drive`: the device directory must exist, and be a mount point when
    /// `mount_check` is on. Anything else is a 507 for the caller.
    pub fn device_path(&self, device: &str) -> DeviceState {
        let p = self.devices.join(device);
        if self.mount_check {
            if is_mount_point(&p) {
                DeviceState::Ok(p)
            } else {
                DeviceState::Unavailable
            }
        } else if p.is_dir() {
            DeviceState::Ok(p)
        } else {
            DeviceState::Unavailable
        }
    }

    /// [`device_path`](Self::device_path) for a handler: the device's directory, or the
    /// 507 to answer.
    pub fn require(&self, device: &str) -> Result<PathBuf, Response<Body>> {
        match self.device_path(device) {
            DeviceState::Ok(p) => Ok(p),
            DeviceState::Unavailable => Err(insufficient_storage(device)),
        }
    }

    /// True when writing `size` more bytes would eat into the reserve.
    pub fn is_full(&self, path: &Path, size: u64) -> bool {
        let Some(st) = statvfs(path) else {
            return false;
        };
        let free = st.avail;
        if let Some(pct) = self.fallocate_reserve_percent {
            let after = free.saturating_sub(size) as f64;
            return st.size > 0 && after * 100.0 / (st.size as f64) < pct;
        }
        free < size.saturating_add(self.fallocate_reserve)
    }
}

/// Filesystem sizes in bytes, as `/recon/diskusage` reports them.
pub struct FsStats {
    pub size: u64,
    pub used: u64,
    pub avail: u64,
}

pub fn statvfs(path: &Path) -> Option<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let bsize = st.f_frsize as u64;
    Some(FsStats {
        size: bsize * st.f_blocks as u64,
        used: bsize * (st.f_blocks as u64 - st.f_bavail as u64),
        avail: bsize * st.f_bavail as u64,
    })
}

/// A directory is a mount point when it lives on another device than its parent, or is
/// the same inode as its parent (the root).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Ok(parent)) = (
        std::fs::symlink_metadata(path),
        std::fs::symlink_metadata(path.join("..")),
    ) else {
        return false;
    };
    if !me.is_dir() {
        return false;
    }
    me.dev() != parent.dev() || me.ino() == parent.ino()
}

/// A response with a `text/plain` body, the shape of Swift's error answers.
pub fn plain(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let body = body.into();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

/// A response with an empty body and `Content-Length: 0`.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("0"),
    );
    r
}

/// Swift's 507 for an unusable device.
pub fn insufficient_storage(device: &str) -> Response<Body> {
    plain(
        StatusCode::INSUFFICIENT_STORAGE,
        format!("{device} is not mounted or has no space"),
    )
}

/// 128 random bits as 32 hex digits: temp-file names, database ids, MIME boundaries.
pub fn unique_hex() -> String {
    use rand::Rng;
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}

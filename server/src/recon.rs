//! `/recon/<check>`: Swift's recon middleware, answered by every storage server.
//!
//! The JSON shapes are Swift 2.38.3's so the real `swift-recon` works against us. Most
//! checks read the recon cache files (`object.recon`, `container.recon`,
//! `account.recon`, `drive.recon`, `relinker.recon` in `recon_cache_path`) that the
//! daemons write: a missing file or key is `null`, never an error. The rest read
//! `/proc` and the devices directory.
//!
//! Two deliberate differences from Swift (see `docs/differences.md`): devices that are
//! plain directories are reported as mounted with their filesystem's sizes (Swift
//! reports them unmounted, so `swift-recon -d` shows nothing on a directory-backed
//! node), and `swiftconfmd5` is keyed by `/etc/swift/swift.conf`, the key the CLI
//! looks up whatever `--swiftdir` says.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::common::{plain, statvfs, SWIFT_VERSION};
use ringsmith::recon::types::{self, MountState};
use ringsmith::swift::policy::Policies;

/// Which server answers: the same type the recon client names hosts by.
pub use ringsmith::recon::hosts::ServerType as ServerKind;

#[derive(Clone)]
pub struct ReconState(Arc<Inner>);

struct Inner {
    kind: ServerKind,
    devices: PathBuf,
    swift_dir: PathBuf,
    cache: PathBuf,
    policies: Policies,
}

impl ReconState {
    pub fn new(
        kind: ServerKind,
        devices: PathBuf,
        swift_dir: PathBuf,
        cache: PathBuf,
        policies: Policies,
    ) -> ReconState {
        ReconState(Arc::new(Inner {
            kind,
            devices,
            swift_dir,
            cache,
            policies,
        }))
    }

    /// Answers `/recon/...` (any method, as Swift's middleware does).
    pub async fn handle(&self, path: &str) -> Response<Body> {
        let me = self.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || me.answer(&path))
            .await
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error."))
    }

    fn answer(&self, path: &str) -> Response<Body> {
        let rest = path.trim_start_matches("/recon/");
        let mut it = rest.splitn(2, '/');
        let check = it.next().unwrap_or("");
        let rtype = it
            .next()
            .map(|s| s.trim_end_matches('/'))
            .filter(|s| !s.is_empty());
        let value = match (check, rtype) {
            ("mem", None) => Some(self.mem()),
            ("load", None) => self.load(),
            ("mounted", None) => Some(self.mounted()),
            ("unmounted", None) => Some(self.unmounted()),
            ("diskusage", None) => Some(self.diskusage()),
            ("ringmd5", None) => Some(self.ringmd5()),
            ("swiftconfmd5", None) => Some(self.swiftconfmd5()),
            ("quarantined", None) => Some(self.quarantined()),
            ("sockstat", None) => Some(self.sockstat()),
            ("devices", None) => Some(self.devices()),
            ("time", None) => Some(json!(now_f64())),
            ("version", None) => wire(&types::Version {
                version: Some(SWIFT_VERSION.into()),
            }),
            ("async", None) => {
                Some(self.cache_keys("object", &["async_pending", "async_pending_last"]))
            }
            ("driveaudit", None) => Some(self.cache_keys("drive", &["drive_audit_errors"])),
            ("relinker", None) => Some(self.cache_keys("relinker", &["devices", "workers"])),
            ("sharding", None) => Some(self.cache_keys(
                "container",
                &["sharding_stats", "sharding_time", "sharding_last"],
            )),
            ("replication", None) | ("replication", Some("object")) => Some(self.cache_keys(
                "object",
                &[
                    "replication_time",
                    "replication_stats",
                    "replication_last",
                    "object_replication_time",
                    "object_replication_last",
                ],
            )),
            ("replication", Some(t @ ("container" | "account"))) => Some(self.cache_keys(
                t,
                &["replication_time", "replication_stats", "replication_last"],
            )),
            ("updater", Some("object")) => Some(self.cache_keys(
                "object",
                &[
                    "object_updater_sweep",
                    "object_updater_stats",
                    "object_updater_last",
                ],
            )),
            ("updater", Some("container")) => {
                Some(self.cache_keys("container", &["container_updater_sweep"]))
            }
            ("auditor", Some("object")) => Some(self.cache_keys(
                "object",
                &["object_auditor_stats_ALL", "object_auditor_stats_ZBF"],
            )),
            ("auditor", Some(t @ ("container" | "account"))) => {
                let keys: Vec<String> = [
                    "audits_passed",
                    "auditor_pass_completed",
                    "audits_since",
                    "audits_failed",
                ]
                .iter()
                .map(|k| format!("{t}_{k}"))
                .collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                Some(self.cache_keys(t, &refs))
            }
            ("expirer", Some("object")) => {
                Some(self.cache_keys("object", &["object_expiration_pass", "expired_last_pass"]))
            }
            ("reconstruction", Some("object")) => Some(self.cache_keys(
                "object",
                &["object_reconstruction_last", "object_reconstruction_time"],
            )),
            _ => return plain(StatusCode::NOT_FOUND, format!("Invalid path: {path}")),
        };
        match value {
            Some(v) => {
                let mut r = Response::new(Body::from(v.to_string()));
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                r
            }
            None => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error."),
        }
    }

    fn cache_keys(&self, file: &str, keys: &[&str]) -> Value {
        let data: Map<String, Value> =
            std::fs::read_to_string(self.0.cache.join(format!("{file}.recon")))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
        let mut out = Map::new();
        for k in keys {
            out.insert(k.to_string(), data.get(*k).cloned().unwrap_or(Value::Null));
        }
        Value::Object(out)
    }

    fn mem(&self) -> Value {
        let mut out = Map::new();
        if let Ok(t) = std::fs::read_to_string("/proc/meminfo") {
            for line in t.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    out.insert(k.trim().to_string(), json!(v.trim()));
                }
            }
        }
        Value::Object(out)
    }

    fn load(&self) -> Option<Value> {
        let t = std::fs::read_to_string("/proc/loadavg").ok()?;
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 5 {
            return None;
        }
        let num = |s: &str| s.parse::<f64>().ok();
        wire(&types::Load {
            one: Some(num(f[0])?),
            five: Some(num(f[1])?),
            fifteen: Some(num(f[2])?),
            tasks: Some(f[3].to_string()),
            processes: Some(num(f[4])?),
        })
    }
    fn mounted(&self) -> Value {
        let mut out = Vec::new();
        if let Ok(t) = std::fs::read_to_string("/proc/mounts") {
            for line in t.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 2 {
                    out.push(types::MountEntry {
                        device: Some(f[0].to_string()),
                        path: Some(f[1].to_string()),
                    });
                }
            }
        }
        wire(&out).unwrap_or_default()
    }
    fn device_names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0.devices)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn devices(&self) -> Value {
        let key = self.0.devices.display().to_string();
        match std::fs::read_dir(&self.0.devices) {
            Ok(_) => json!({ key: self.device_names() }),
            Err(_) => json!({ key: null }),
        }
    }

    /// A device counts as usable when it is a directory we can stat (see module docs).
    fn usable(&self, name: &str) -> Result<(), String> {
        let p = self.0.devices.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(format!("[Errno 20] Not a directory: '{}'", p.display())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn unmounted(&self) -> Value {
        let mut out = Vec::new();
        for name in self.device_names() {
            if let Err(e) = self.usable(&name) {
                out.push(types::UnmountedEntry {
                    device: Some(name),
                    mounted: MountState::Error(e),
                });
            }
        }
        wire(&out).unwrap_or_default()
    }
    fn diskusage(&self) -> Value {
        let mut out = Vec::new();
        for name in self.device_names() {
            let st = self
                .usable(&name)
                .ok()
                .and_then(|_| statvfs(&self.0.devices.join(&name)));
            out.push(types::DiskUsageEntry {
                mounted: MountState::Mounted(st.is_some()),
                size: st.as_ref().map(|s| s.size as f64),
                used: st.as_ref().map(|s| s.used as f64),
                avail: st.as_ref().map(|s| s.avail as f64),
                device: Some(name),
            });
        }
        wire(&out).unwrap_or_default()
    }
    fn ringmd5(&self) -> Value {
        let mut names = vec!["account".to_string(), "container".to_string()];
        names.extend(self.0.policies.iter().map(|p| p.ring_name()));
        let mut out = Map::new();
        for n in names {
            let p = self.0.swift_dir.join(format!("{n}.ring.gz"));
            if let Ok(bytes) = std::fs::read(&p) {
                out.insert(
                    p.display().to_string(),
                    json!(hex::encode(Md5::digest(&bytes))),
                );
            }
        }
        Value::Object(out)
    }

    fn swiftconfmd5(&self) -> Value {
        match std::fs::read(self.0.swift_dir.join("swift.conf")) {
            Ok(b) => json!({ "/etc/swift/swift.conf": hex::encode(Md5::digest(&b)) }),
            Err(_) => json!({ "/etc/swift/swift.conf": null }),
        }
    }

    fn quarantined(&self) -> Value {
        let count = |p: PathBuf| -> f64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_dir())
                        .count() as f64
                })
                .unwrap_or(0.0)
        };
        let (mut objects, mut containers, mut accounts) = (0.0, 0.0, 0.0);
        let mut per_policy: std::collections::BTreeMap<String, f64> = Default::default();
        for dev in self.device_names() {
            let q = self.0.devices.join(&dev).join("quarantined");
            containers += count(q.join("containers"));
            accounts += count(q.join("accounts"));
            if let Ok(rd) = std::fs::read_dir(&q) {
                for e in rd.filter_map(|e| e.ok()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let idx = if name == "objects" {
                        Some("0".to_string())
                    } else {
                        name.strip_prefix("objects-").map(str::to_string)
                    };
                    if let Some(idx) = idx {
                        let n = count(e.path());
                        objects += n;
                        *per_policy.entry(idx).or_default() += n;
                    }
                }
            }
        }
        let policies = per_policy
            .into_iter()
            .filter_map(|(idx, n)| {
                let v = wire(&types::PolicyQuarantine { objects: Some(n) })?;
                Some((idx, v))
            })
            .collect();
        wire(&types::Quarantined {
            objects: Some(objects),
            containers: Some(containers),
            accounts: Some(accounts),
            policies,
        })
        .unwrap_or_default()
    }
    fn sockstat(&self) -> Value {
        let mut out = types::Sockstat::default();
        let page = 4096.0; // resource.getpagesize() on Linux x86-64/arm64
        if let Ok(t) = std::fs::read_to_string("/proc/net/sockstat") {
            for line in t.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.first() == Some(&"TCP:") {
                    let get = |k: &str| {
                        f.iter()
                            .position(|x| *x == k)
                            .and_then(|i| f.get(i + 1))
                            .and_then(|v| v.parse::<f64>().ok())
                    };
                    out.tcp_in_use = get("inuse");
                    out.orphan = get("orphan");
                    out.time_wait = get("tw");
                    out.tcp_mem_allocated_bytes = get("mem").map(|m| m * page);
                }
            }
        }
        if let Ok(t) = std::fs::read_to_string("/proc/net/sockstat6") {
            for line in t.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.first() == Some(&"TCP6:") {
                    if let Some(v) = f.get(2).and_then(|v| v.parse::<f64>().ok()) {
                        out.tcp6_in_use = Some(Some(v));
                    }
                }
            }
        }
        wire(&out).unwrap_or_default()
    }
    pub fn kind(&self) -> ServerKind {
        self.0.kind
    }
}

/// A recon answer in its wire form, from the type the client side parses it into.
fn wire<T: serde::Serialize>(answer: &T) -> Option<Value> {
    serde_json::to_value(answer).ok()
}

fn now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shapes_and_cache_files() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("node");
        std::fs::create_dir_all(devices.join("d1/quarantined/objects-1/abc")).unwrap();
        std::fs::create_dir_all(devices.join("d1/quarantined/objects/def")).unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join("object.recon"), "{\"async_pending\": 3}\n").unwrap();
        let r = ReconState::new(
            ServerKind::Object,
            devices,
            dir.path().to_path_buf(),
            cache,
            Policies::default(),
        );
        let body = |p: &str| {
            let resp = r.answer(p);
            assert_eq!(resp.status(), 200, "{p}");
            resp
        };
        let _ = body("/recon/load");
        let v = r.cache_keys("object", &["async_pending", "async_pending_last"]);
        assert_eq!(v, json!({"async_pending": 3, "async_pending_last": null}));
        let q = r.quarantined();
        assert_eq!(q["objects"], 2);
        assert_eq!(q["policies"]["1"]["objects"], 1);
        assert_eq!(q["policies"]["0"]["objects"], 1);
        let du = r.diskusage();
        assert_eq!(du[0]["device"], "d1");
        assert_eq!(du[0]["mounted"], true);
        // Python's ints stay ints on the wire.
        assert!(du[0]["size"].is_u64(), "{du}");
        let load = r.load().unwrap();
        assert!(load["processes"].is_i64() && load["1m"].is_f64(), "{load}");
        let sock = r.sockstat().to_string();
        assert!(!sock.contains(".0"), "{sock}");
        assert_eq!(r.answer("/recon/bogus").status(), 404);
        assert_eq!(r.answer("/recon/updater/account").status(), 404);
    }
}

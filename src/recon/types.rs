//! The typed answer of every recon endpoint.
//!
//! The middleware builds most answers from recon cache files that daemons fill in over
//! time, so any key may be `null` or absent, and counters are Python ints or floats. The
//! types below therefore hold numbers as `Option<f64>` and accept anything: a value of the
//! wrong kind reads as `None` (a "no result" for that host), never as a parse failure of
//! the whole answer. Where `swift-recon` distinguishes a key that is absent from one that is
//! `null` (it falls back to another key or to 0 only when absent), the field is an
//! `Option<Option<f64>>`: `None` absent, `Some(None)` null.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A number or nothing: ints, floats, and nothing for `null` or any other kind.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Value::deserialize(d)?.as_f64())
}

/// Like [`lenient_f64`] but remembers that the key was present (even if `null`).
fn present_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Ok(Some(Value::deserialize(d)?.as_f64()))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// Writes a count as Python does: an integer (`3`, not `3.0`) when it is whole.
fn count<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => s.serialize_i64(*x as i64),
        Some(x) => s.serialize_f64(*x),
        None => s.serialize_none(),
    }
}

/// A disk size: an integer, or `""` when the device could not be measured (Swift's
/// answer for an unmounted device).
fn size_or_empty<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => count(v, s),
        None => s.serialize_str(""),
    }
}

fn count_if_present<S: serde::Serializer>(
    v: &Option<Option<f64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    count(&v.flatten(), s)
}

/// A value read as a number the way the summaries need it.
pub fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// `/recon/version`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Version {
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
}

/// `/recon/load`: `/proc/loadavg` of the node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    #[serde(rename = "1m", default, deserialize_with = "lenient_f64")]
    pub one: Option<f64>,
    #[serde(rename = "5m", default, deserialize_with = "lenient_f64")]
    pub five: Option<f64>,
    #[serde(rename = "15m", default, deserialize_with = "lenient_f64")]
    pub fifteen: Option<f64>,
    /// `"running/total"` scheduling entities, a string in Swift's answer.
    #[serde(default, deserialize_with = "lenient_string")]
    pub tasks: Option<String>,
    /// The last pid handed out.
    #[serde(default, deserialize_with = "lenient_f64", serialize_with = "count")]
    pub processes: Option<f64>,
}

/// `/recon/mem`: every `/proc/meminfo` line, values as strings (`"24684092 kB"`).
pub type Mem = BTreeMap<String, Value>;

/// One `/recon/mounted` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MountEntry {
    #[serde(default, deserialize_with = "lenient_string")]
    pub device: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub path: Option<String>,
}

/// `/recon/devices`: devices directory -> its entries (`null` when unreadable).
pub type Devices = BTreeMap<String, Option<Vec<Value>>>;

/// `mounted` in `unmounted` and `diskusage` answers: a bool, or the `OSError` text when
/// checking the mount point failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MountState {
    Mounted(bool),
    Error(String),
}

impl Default for MountState {
    fn default() -> Self {
        MountState::Mounted(false)
    }
}

impl<'de> Deserialize<'de> for MountState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(b) => MountState::Mounted(b),
            Value::String(s) => MountState::Error(s),
            Value::Null => MountState::Error("null".into()),
            other => MountState::Error(other.to_string()),
        })
    }
}

/// One `/recon/unmounted` entry (mounted devices are not listed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnmountedEntry {
    #[serde(default, deserialize_with = "lenient_string")]
    pub device: Option<String>,
    #[serde(default)]
    pub mounted: MountState,
}

/// One `/recon/diskusage` entry. Sizes are `""` for unmounted devices, hence `Option`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsageEntry {
    #[serde(default, deserialize_with = "lenient_string")]
    pub device: Option<String>,
    #[serde(default)]
    pub mounted: MountState,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "size_or_empty"
    )]
    pub size: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "size_or_empty"
    )]
    pub used: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "size_or_empty"
    )]
    pub avail: Option<f64>,
}

/// `/recon/ringmd5` and `/recon/swiftconfmd5`: file path on the node -> md5 hex.
pub type Md5Map = BTreeMap<String, Value>;

/// `/recon/async`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Async {
    #[serde(default, deserialize_with = "lenient_f64")]
    pub async_pending: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub async_pending_last: Option<f64>,
}

/// Per-policy part of `/recon/quarantined`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyQuarantine {
    #[serde(default, deserialize_with = "lenient_f64", serialize_with = "count")]
    pub objects: Option<f64>,
}

/// `/recon/quarantined`. `policies` keeps the node's order (policy index as a string).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    #[serde(default, deserialize_with = "lenient_f64", serialize_with = "count")]
    pub objects: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64", serialize_with = "count")]
    pub containers: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64", serialize_with = "count")]
    pub accounts: Option<f64>,
    #[serde(default)]
    pub policies: serde_json::Map<String, Value>,
}

impl Quarantined {
    /// `(policy index, quarantined objects)` in the node's order.
    pub fn policy_objects(&self) -> Vec<(String, Option<f64>)> {
        self.policies
            .iter()
            .map(|(k, v)| (k.clone(), v.get("objects").and_then(number)))
            .collect()
    }
}

/// `/recon/sockstat`: `/proc/net/sockstat{,6}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sockstat {
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "count",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_in_use: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "count",
        skip_serializing_if = "Option::is_none"
    )]
    pub orphan: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "count",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_wait: Option<f64>,
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        serialize_with = "count",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_mem_allocated_bytes: Option<f64>,
    /// Absent on hosts without IPv6 (`swift-recon` counts it as 0 then).
    #[serde(
        default,
        deserialize_with = "present_f64",
        serialize_with = "count_if_present",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp6_in_use: Option<Option<f64>>,
}

/// `/recon/driveaudit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriveAudit {
    #[serde(default, deserialize_with = "lenient_f64")]
    pub drive_audit_errors: Option<f64>,
}

/// `/recon/relinker` (no `swift-recon` check; kept for the dashboard).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Relinker {
    #[serde(default)]
    pub devices: Value,
    #[serde(default)]
    pub workers: Value,
}

/// The `attempted`/`failure`/`success` counters shared by replication and sharding stats.
/// The replicators write many more (hashmatch, rsync, diff...); they stay in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassStats {
    #[serde(default, deserialize_with = "lenient_f64")]
    pub attempted: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub failure: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub success: Option<f64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn lenient_pass_stats<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PassStats>, D::Error> {
    Ok(match Value::deserialize(d)? {
        // An empty dict is "no stats" for swift-recon (it is falsy in Python).
        Value::Object(m) if !m.is_empty() => serde_json::from_value(Value::Object(m)).ok(),
        _ => None,
    })
}

/// `/recon/replication/<type>`. Object nodes also carry the legacy `object_replication_*`
/// keys, which `swift-recon` falls back to when the plain ones are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    #[serde(default, deserialize_with = "present_f64")]
    pub replication_time: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present_f64")]
    pub replication_last: Option<Option<f64>>,
    #[serde(default, deserialize_with = "lenient_pass_stats")]
    pub replication_stats: Option<PassStats>,
    #[serde(default, deserialize_with = "present_f64")]
    pub object_replication_time: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present_f64")]
    pub object_replication_last: Option<Option<f64>>,
}

impl Replication {
    /// `replication_time`, else `object_replication_time`, else 0 (as `swift-recon`).
    pub fn time(&self) -> Option<f64> {
        self.replication_time
            .or(self.object_replication_time)
            .unwrap_or(Some(0.0))
    }

    /// `replication_last`, else `object_replication_last`, else 0 (never).
    pub fn last(&self) -> Option<f64> {
        self.replication_last
            .or(self.object_replication_last)
            .unwrap_or(Some(0.0))
    }
}

/// `/recon/sharding` (container servers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sharding {
    #[serde(default, deserialize_with = "lenient_pass_stats")]
    pub sharding_stats: Option<PassStats>,
    #[serde(default, deserialize_with = "present_f64")]
    pub sharding_time: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present_f64")]
    pub sharding_last: Option<Option<f64>>,
}

/// `/recon/updater/<type>`: `<type>_updater_sweep` plus, for objects, the updater stats.
/// The key depends on the server type, so the answer is kept as a map.
pub type Updater = serde_json::Map<String, Value>;

/// `/recon/auditor/object`: the two auditor stat blocks, flat or nested per device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectAuditor {
    #[serde(rename = "object_auditor_stats_ALL", default)]
    pub all: Value,
    #[serde(rename = "object_auditor_stats_ZBF", default)]
    pub zbf: Value,
}

/// `/recon/auditor/{account,container}`: keys prefixed by the server type.
pub type DbAuditor = serde_json::Map<String, Value>;

/// `/recon/expirer/object`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Expirer {
    #[serde(default, deserialize_with = "lenient_f64")]
    pub object_expiration_pass: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub expired_last_pass: Option<f64>,
}

/// `/recon/reconstruction/object`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconstruction {
    #[serde(default, deserialize_with = "present_f64")]
    pub object_reconstruction_last: Option<Option<f64>>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub object_reconstruction_time: Option<f64>,
}

/// Sums every value stored under `key` at any depth: the object auditor nests its stats
/// per device when it audits devices in parallel.
pub fn nested_sum(key: &str, v: &Value) -> Option<f64> {
    fn walk(key: &str, v: &Value, acc: &mut f64, found: &mut bool, bad: &mut bool) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                if child.is_object() {
                    walk(key, child, acc, found, bad);
                }
                if k == key {
                    *found = true;
                    match child.as_f64() {
                        Some(n) => *acc += n,
                        None => *bad = true,
                    }
                }
            }
        }
    }
    let (mut acc, mut found, mut bad) = (0.0, false, false);
    walk(key, v, &mut acc, &mut found, &mut bad);
    // A key found nowhere sums to 0 in swift-recon; a non-number makes the host "no result".
    let _ = found;
    if bad {
        None
    } else {
        Some(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fresh_node_nulls_read_as_none() {
        let a: Async = serde_json::from_value(json!({"async_pending": null})).unwrap();
        assert_eq!(a.async_pending, None);
        let r: Replication = serde_json::from_value(json!({"replication_time": null})).unwrap();
        assert_eq!(r.replication_time, Some(None));
        assert_eq!(r.time(), None);
        assert_eq!(r.last(), Some(0.0));
    }

    #[test]
    fn replication_falls_back_to_legacy_object_keys() {
        let r: Replication = serde_json::from_value(json!({
            "object_replication_time": 2.5, "object_replication_last": 100.0,
            "replication_stats": {"attempted": 6, "failure": 0, "success": 12, "rsync": 3}
        }))
        .unwrap();
        assert_eq!(r.time(), Some(2.5));
        assert_eq!(r.last(), Some(100.0));
        let s = r.replication_stats.unwrap();
        assert_eq!(
            (s.attempted, s.failure, s.success),
            (Some(6.0), Some(0.0), Some(12.0))
        );
        assert_eq!(s.other["rsync"], json!(3));
    }

    #[test]
    fn mount_state_is_bool_or_error_text() {
        let v: Vec<DiskUsageEntry> = serde_json::from_value(json!([
            {"device": "d1", "mounted": true, "size": 100, "used": 37, "avail": 63},
            {"device": "d2", "mounted": false, "size": "", "used": "", "avail": ""},
            {"device": "d3", "mounted": "[Errno 5] Input/output error"}
        ]))
        .unwrap();
        assert_eq!(v[0].mounted, MountState::Mounted(true));
        assert_eq!(v[0].used, Some(37.0));
        assert_eq!(v[1].size, None);
        assert_eq!(
            v[2].mounted,
            MountState::Error("[Errno 5] Input/output error".into())
        );
    }

    #[test]
    fn wrong_kinds_are_lenient() {
        let l: Load =
            serde_json::from_value(json!({"1m": "high", "5m": 1, "15m": 0.5, "tasks": "1/2"}))
                .unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (None, Some(1.0), Some(0.5)));
        let q: Quarantined = serde_json::from_value(json!({
            "objects": 3, "containers": 0, "accounts": 0,
            "policies": {"1": {"objects": 2}, "0": {"objects": 1}}
        }))
        .unwrap();
        assert_eq!(
            q.policy_objects(),
            vec![("1".to_string(), Some(2.0)), ("0".to_string(), Some(1.0))]
        );
    }

    #[test]
    fn nested_sum_handles_flat_and_per_device_stats() {
        let flat = json!({"passes": 1, "errors": 0});
        assert_eq!(nested_sum("passes", &flat), Some(1.0));
        let nested = json!({"d1": {"passes": 2}, "d2": {"passes": 3, "errors": 1}});
        assert_eq!(nested_sum("passes", &nested), Some(5.0));
        assert_eq!(nested_sum("quarantined", &nested), Some(0.0));
        assert_eq!(nested_sum("passes", &json!({"passes": null})), None);
    }
}

//! From the answers of one check to its figures, the way `swift-recon` computes them.
//!
//! A check asks every host one endpoint. Each host yields a [`HostAnswer`]; [`summarize`]
//! folds them into a [`CheckReport`]: the `swift-recon` statistics lines (low, high,
//! average, total, percentage and count of hosts that answered without a value, count that
//! reported), the check-specific [`Detail`] (unmounted drives, disk usage graph, md5
//! agreement, clock skew...), and the [`Failure`]s that make the cluster unhealthy.
//! [`render`](super::render) prints a report line for line as `swift-recon` does, so people and scripts
//! that read its output read ours.
//!
//! The figures are `swift-recon`'s on purpose, including its odd corners (a host that did
//! not answer is not counted in "Failed", an updater sweep of 0 is ignored). Where
//! `swift-recon` would crash on an answer (a missing key, a string where a number belongs,
//! malformed JSON) we count that host as "no result" or as an error for that host only;
//! those differences are listed in `docs/differences.md`.

use std::collections::BTreeMap;
use std::path::Path;

use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::Value;

use super::hosts::{Host, ServerType};
use super::types::{self, MountState};

/// Why a host has no answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum HostError {
    /// Connecting or talking to it failed (refused, reset, no route...).
    Unreachable(String),
    /// No complete answer within the per-host timeout (seconds).
    Timeout(f64),
    /// It answered with an HTTP error status.
    Http { status: u16, reason: String },
    /// The body is not JSON.
    MalformedJson(String),
    /// JSON, but not the shape this endpoint answers.
    UnexpectedAnswer(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Unreachable(m) => write!(f, "unreachable: {m}"),
            HostError::Timeout(s) => write!(f, "timed out after {s}s"),
            HostError::Http { status, reason } => write!(f, "HTTP Error {status}: {reason}"),
            HostError::MalformedJson(m) => write!(f, "malformed JSON: {m}"),
            HostError::UnexpectedAnswer(m) => write!(f, "unexpected answer: {m}"),
        }
    }
}

/// What one host said to one request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostAnswer {
    pub host: Host,
    pub url: String,
    /// The parsed body, or why there is none.
    #[serde(serialize_with = "ser_result")]
    pub result: Result<Value, HostError>,
    /// The `Server` header (asked by `--validate-servers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Unix times the request was sent and its answer complete (clock-skew check).
    pub started: f64,
    pub finished: f64,
}

fn ser_result<S: serde::Serializer>(r: &Result<Value, HostError>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(1))?;
    match r {
        Ok(v) => m.serialize_entry("body", v)?,
        Err(e) => {
            // {"kind": "timeout", "message": 5.0, "text": "timed out after 5s"}
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Value::Object(obj) = &mut v {
                obj.insert("text".into(), e.to_string().into());
            }
            m.serialize_entry("error", &v)?
        }
    }
    m.end()
}

impl HostAnswer {
    pub fn ok(host: Host, url: String, body: Value) -> Self {
        HostAnswer {
            host,
            url,
            result: Ok(body),
            server: None,
            started: 0.0,
            finished: 0.0,
        }
    }

    pub fn err(host: Host, url: String, e: HostError) -> Self {
        HostAnswer {
            host,
            url,
            result: Err(e),
            server: None,
            started: 0.0,
            finished: 0.0,
        }
    }
}

/// Every `swift-recon` check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Async,
    Replication,
    Reconstruction,
    Auditor,
    Updater,
    Expirer,
    Sharding,
    Unmounted,
    DiskUsage,
    Load,
    Quarantined,
    ValidateServers,
    RingMd5,
    SwiftConfMd5,
    Sockstat,
    DriveAudit,
    Time,
    Versions,
}

impl CheckKind {
    /// The path after `/recon/` (`None` for the OPTIONS request of `--validate-servers`).
    pub fn endpoint(self, server_type: ServerType) -> Option<String> {
        let t = server_type.as_str();
        Some(match self {
            CheckKind::Async => "async".into(),
            CheckKind::Replication => format!("replication/{t}"),
            CheckKind::Reconstruction => format!("reconstruction/{t}"),
            CheckKind::Auditor => format!("auditor/{t}"),
            CheckKind::Updater => format!("updater/{t}"),
            CheckKind::Expirer => format!("expirer/{t}"),
            CheckKind::Sharding => "sharding".into(),
            CheckKind::Unmounted => "unmounted".into(),
            CheckKind::DiskUsage => "diskusage".into(),
            CheckKind::Load => "load".into(),
            CheckKind::Quarantined => "quarantined".into(),
            CheckKind::ValidateServers => return None,
            CheckKind::RingMd5 => "ringmd5".into(),
            CheckKind::SwiftConfMd5 => "swiftconfmd5".into(),
            CheckKind::Sockstat => "sockstat".into(),
            CheckKind::DriveAudit => "driveaudit".into(),
            CheckKind::Time => "time".into(),
            CheckKind::Versions => "version".into(),
        })
    }

    /// Whether `swift-recon` runs this check for the server type, or the error it prints.
    pub fn applies_to(self, t: ServerType) -> Result<(), &'static str> {
        use ServerType::*;
        match (self, t) {
            (CheckKind::Async, Account | Container) => {
                Err("Error: Can't check asyncs on non object servers.")
            }
            (CheckKind::Updater, Account) => Err("Error: Can't check updaters on account servers."),
            (CheckKind::Expirer, Account | Container) => {
                Err("Error: Can't check expirer on non object servers.")
            }
            (CheckKind::Sharding, Account | Object) => {
                Err("Error: Can't check sharding on non container servers.")
            }
            (CheckKind::Reconstruction, Account | Container) => {
                Err("Error: Can't check reconstruction stats on non object servers.")
            }
            _ => Ok(()),
        }
    }

    /// The checks of `--all` for a server type, in `swift-recon`'s order.
    pub fn all_for(t: ServerType) -> Vec<CheckKind> {
        use CheckKind::*;
        let mut v = match t {
            ServerType::Object => vec![Async, Auditor, Updater, Expirer, Reconstruction],
            ServerType::Container => vec![Auditor, Updater, Sharding],
            ServerType::Account => vec![Auditor],
        };
        v.extend([
            Replication,
            Unmounted,
            Load,
            DiskUsage,
            RingMd5,
            SwiftConfMd5,
            Quarantined,
            Sockstat,
            ValidateServers,
            DriveAudit,
            Time,
            Versions,
        ]);
        v
    }
}

/// One `swift-recon` statistics line (`_gen_stats`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub name: String,
    pub low: f64,
    pub high: f64,
    pub average: f64,
    pub total: f64,
    /// Percentage of answering hosts that had no value.
    pub perc_none: f64,
    pub number_none: usize,
    pub reported: usize,
}

/// Min/max/avg/total of the values of the hosts that answered; `None` when none had a value.
pub fn gen_stats(values: &[Option<f64>], name: &str) -> Option<Stats> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    let total: f64 = present.iter().sum();
    let number_none = values.len() - present.len();
    Some(Stats {
        name: name.to_string(),
        low: present.iter().copied().fold(f64::INFINITY, f64::min),
        high: present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        average: total / present.len() as f64,
        total,
        perc_none: number_none as f64 * 100.0 / values.len() as f64,
        number_none,
        reported: present.len(),
    })
}

/// A statistics line, or the "no hosts returned valid data" line that replaces it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatLine {
    Stats(Stats),
    /// `label` is what `swift-recon` prints in brackets (some checks print none).
    NoData {
        label: Option<String>,
    },
}

fn stat_line(values: &[Option<f64>], name: &str, no_data_label: Option<&str>) -> StatLine {
    match gen_stats(values, name) {
        Some(s) => StatLine::Stats(s),
        None => StatLine::NoData {
            label: no_data_label.map(str::to_string),
        },
    }
}

/// The oldest and newest pass completion among the hosts (replication, sharding...).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Completions {
    /// `(host, unix time)`; a time of 0 means the host never completed a pass.
    pub oldest: Option<(Host, f64)>,
    pub newest: Option<(Host, f64)>,
}

fn completions(lasts: &[(Host, Option<f64>)]) -> Completions {
    let mut c = Completions::default();
    // swift-recon starts from these sentinels and keeps the first host on ties.
    let (mut least, mut most) = (9_999_999_999.0_f64, 0.0_f64);
    for (host, last) in lasts {
        let Some(t) = *last else { continue };
        if t < least {
            least = t;
            c.oldest = Some((host.clone(), t));
        }
        if t > most {
            most = t;
            c.newest = Some((host.clone(), t));
        }
    }
    c
}

/// One device's usage in the disk-usage check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceUsage {
    pub host: Host,
    pub device: String,
    /// Percent used, unrounded.
    pub used_percent: f64,
}

/// Everything the disk-usage check prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DiskUsageSummary {
    /// Devices whose mount check failed: `(host, device, error text)`.
    pub device_errors: Vec<(Host, String, String)>,
    /// Hosts that answered but have no mounted device with sizes.
    pub no_drive_info: Vec<Host>,
    /// Rounded percent -> number of devices, for the distribution graph.
    pub distribution: BTreeMap<i64, usize>,
    pub used_bytes: f64,
    pub avail_bytes: f64,
    /// Lowest and highest device usage (rounded to 2 decimals) and the capacity-weighted average.
    pub lowest: Option<f64>,
    pub highest: Option<f64>,
    pub average: Option<f64>,
    pub top: Vec<DeviceUsage>,
    pub bottom: Vec<DeviceUsage>,
    pub top_requested: usize,
    pub lowest_requested: usize,
}

/// A host whose answer disagrees with what it should be.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mismatch {
    pub host: Host,
    pub url: String,
    /// The file (md5 checks) or other subject of the disagreement.
    pub subject: String,
    pub remote: String,
    pub local: String,
}

/// Time-sync details of a host whose clock is off.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skew {
    pub host: Host,
    pub url: String,
    pub local: f64,
    pub remote: f64,
    pub diff: f64,
}

/// What a check found beyond its statistics lines.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    None,
    Completions(Completions),
    /// `[last_pass]` of the account/container auditor: oldest, newest, average.
    LastPass {
        oldest: f64,
        newest: f64,
        average: f64,
    },
    /// `(host, device)` not mounted, and those whose mount check errored (with the error).
    Unmounted {
        unmounted: Vec<(Host, String)>,
        errors: Vec<(Host, String, String)>,
    },
    DiskUsage(DiskUsageSummary),
    /// Ring or swift.conf md5 agreement.
    Md5 {
        local: BTreeMap<String, Option<String>>,
        matched: usize,
        errors: usize,
        mismatches: Vec<Mismatch>,
    },
    /// `--validate-servers`: hosts whose `Server` header names another server type.
    ServerType {
        ok: usize,
        errors: usize,
        invalid: Vec<(String, String)>,
    },
    Time {
        matched: usize,
        errors: usize,
        skewed: Vec<Skew>,
    },
    Versions {
        versions: Vec<String>,
        errors: usize,
    },
    /// `auditor` on account/container when no host answered (swift-recon prints
    /// "Error: No hosts available").
    NoHostsAvailable,
}

/// Why the cluster is not healthy, naming the host.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    pub host: Option<Host>,
    pub check: CheckKind,
    pub server_type: ServerType,
    pub problem: String,
}

/// The result of one check on one server type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    pub check: CheckKind,
    pub server_type: ServerType,
    /// Unix time the check started (its header line).
    pub started: f64,
    /// The hosts asked (disk usage asks one port per IP).
    pub hosts_asked: usize,
    /// The hosts of the server type (what "N/M hosts matched" counts).
    pub hosts_total: usize,
    pub answers: Vec<HostAnswer>,
    pub stats: Vec<StatLine>,
    pub detail: Detail,
    pub failures: Vec<Failure>,
}

/// What some checks compare the answers with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckContext {
    /// Ring file name -> md5 of the local copy (`None`: unreadable).
    pub ring_md5s: BTreeMap<String, Option<String>>,
    /// md5 of the local `swift.conf`.
    pub swift_conf_md5: Option<String>,
    /// `--jitter`: allowed clock difference, seconds.
    pub jitter: f64,
    /// `--top` and `--lowest` of the disk-usage check.
    pub top: usize,
    pub lowest: usize,
}

/// md5 hex of a file, `None` if unreadable.
pub fn md5_file(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(hex::encode(Md5::digest(&bytes)))
}

impl CheckContext {
    /// Reads the local rings and swift.conf of `swift_dir` for the md5 checks: every
    /// `object*.ring.gz` for objects, `<type>.ring.gz` otherwise.
    pub fn load_md5s(&mut self, swift_dir: &Path, server_type: ServerType) {
        self.ring_md5s.clear();
        if server_type == ServerType::Object {
            if let Ok(rd) = std::fs::read_dir(swift_dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with("object") && name.ends_with(".ring.gz") {
                        self.ring_md5s.insert(name, md5_file(&e.path()));
                    }
                }
            }
        } else {
            let name = format!("{server_type}.ring.gz");
            let sum = md5_file(&swift_dir.join(&name));
            self.ring_md5s.insert(name, sum);
        }
        self.swift_conf_md5 = md5_file(&swift_dir.join("swift.conf"));
    }
}

/// For disk usage: one port per IP (the lowest), as every port of a host sees the same disks.
pub fn one_port_per_ip(hosts: &[Host]) -> Vec<Host> {
    let mut by_ip: BTreeMap<&str, &Host> = BTreeMap::new();
    for h in hosts {
        by_ip
            .entry(h.ip.as_str())
            .and_modify(|e| {
                if h.port < e.port {
                    *e = h
                }
            })
            .or_insert(h);
    }
    let mut v: Vec<Host> = by_ip.into_values().cloned().collect();
    v.sort();
    v
}

/// Folds the answers of one check into its report.
pub fn summarize(
    check: CheckKind,
    server_type: ServerType,
    hosts_total: usize,
    started: f64,
    mut answers: Vec<HostAnswer>,
    ctx: &CheckContext,
) -> CheckReport {
    let mut failures = Vec::new();
    // A body this check cannot read at all is an error for that host only.
    for a in &mut answers {
        if let Ok(body) = &a.result {
            if let Some(problem) = shape_problem(check, body) {
                a.result = Err(HostError::UnexpectedAnswer(problem));
            }
        }
    }
    for a in &answers {
        if let Err(e) = &a.result {
            failures.push(Failure {
                host: Some(a.host.clone()),
                check,
                server_type,
                problem: format!("no answer from {}: {e}", a.url),
            });
        }
    }
    let ok: Vec<(&HostAnswer, &Value)> = answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok().map(|v| (a, v)))
        .collect();
    let mut stats = Vec::new();
    let mut detail = Detail::None;
    let t = server_type.as_str();
    let parse = |v: &Value| -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    };
    match check {
        CheckKind::Async => {
            let vals: Vec<Option<f64>> = ok
                .iter()
                .map(|(_, v)| from::<types::Async>(v).async_pending)
                .collect();
            stats.push(stat_line(&vals, "async_pending", Some("async_pending")));
        }
        CheckKind::DriveAudit => {
            let vals: Vec<Option<f64>> = ok
                .iter()
                .map(|(_, v)| from::<types::DriveAudit>(v).drive_audit_errors)
                .collect();
            stats.push(stat_line(
                &vals,
                "drive_audit_errors",
                Some("drive_audit_errors"),
            ));
        }
        CheckKind::Expirer => {
            let e: Vec<types::Expirer> = ok.iter().map(|(_, v)| from(v)).collect();
            let pass: Vec<_> = e.iter().map(|x| x.object_expiration_pass).collect();
            let last: Vec<_> = e.iter().map(|x| x.expired_last_pass).collect();
            stats.push(stat_line(
                &pass,
                "object_expiration_pass",
                Some("object_expiration_pass"),
            ));
            stats.push(stat_line(
                &last,
                "expired_last_pass",
                Some("expired_last_pass"),
            ));
        }
        CheckKind::Reconstruction => {
            let r: Vec<(Host, types::Reconstruction)> =
                ok.iter().map(|(a, v)| (a.host.clone(), from(v))).collect();
            let times: Vec<_> = r
                .iter()
                .map(|(_, x)| x.object_reconstruction_time)
                .collect();
            stats.push(stat_line(
                &times,
                "object_reconstruction_time",
                Some("object_reconstruction_time"),
            ));
            let lasts: Vec<_> = r
                .iter()
                .map(|(h, x)| (h.clone(), x.object_reconstruction_last.unwrap_or(Some(0.0))))
                .collect();
            detail = Detail::Completions(completions(&lasts));
        }
        CheckKind::Replication => {
            let r: Vec<(Host, types::Replication)> =
                ok.iter().map(|(a, v)| (a.host.clone(), from(v))).collect();
            let times: Vec<_> = r.iter().map(|(_, x)| x.time()).collect();
            let mut per: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
            for (_, x) in &r {
                if let Some(s) = &x.replication_stats {
                    per.entry("attempted").or_default().push(s.attempted);
                    per.entry("failure").or_default().push(s.failure);
                    per.entry("success").or_default().push(s.success);
                }
            }
            stats.push(stat_line(
                &times,
                "replication_time",
                Some("replication_time"),
            ));
            for k in ["failure", "success", "attempted"] {
                let vals = per.remove(k).unwrap_or_default();
                stats.push(stat_line(&vals, &format!("replication_{k}"), Some(k)));
            }
            let lasts: Vec<_> = r.iter().map(|(h, x)| (h.clone(), x.last())).collect();
            detail = Detail::Completions(completions(&lasts));
        }
        CheckKind::Sharding => {
            let r: Vec<(Host, types::Sharding)> =
                ok.iter().map(|(a, v)| (a.host.clone(), from(v))).collect();
            let times: Vec<_> = r
                .iter()
                .map(|(_, x)| x.sharding_time.unwrap_or(Some(0.0)))
                .collect();
            stats.push(stat_line(&times, "sharding_time", Some("sharding_time")));
            for k in ["attempted", "failure", "success"] {
                let vals: Vec<Option<f64>> = r
                    .iter()
                    .filter_map(|(_, x)| x.sharding_stats.as_ref())
                    .map(|s| match k {
                        "attempted" => s.attempted,
                        "failure" => s.failure,
                        _ => s.success,
                    })
                    .collect();
                stats.push(stat_line(&vals, k, Some(k)));
            }
            let lasts: Vec<_> = r
                .iter()
                .map(|(h, x)| (h.clone(), x.sharding_last.unwrap_or(Some(0.0))))
                .collect();
            detail = Detail::Completions(completions(&lasts));
        }
        CheckKind::Updater => {
            let key = format!("{t}_updater_sweep");
            // swift-recon skips a sweep of 0 (falsy), as well as a missing one.
            let vals: Vec<Option<f64>> = ok
                .iter()
                .filter_map(|(_, v)| v.get(&key).and_then(types::number))
                .filter(|x| *x != 0.0)
                .map(Some)
                .collect();
            stats.push(stat_line(
                &vals,
                "updater_last_sweep",
                Some("updater_last_sweep"),
            ));
        }
        CheckKind::Auditor if server_type == ServerType::Object => {
            let non_empty = |v: &Value| v.as_object().is_some_and(|m| !m.is_empty());
            let all: Vec<Value> = ok
                .iter()
                .map(|(_, v)| from::<types::ObjectAuditor>(v).all)
                .filter(non_empty)
                .collect();
            let zbf: Vec<Value> = ok
                .iter()
                .map(|(_, v)| from::<types::ObjectAuditor>(v).zbf)
                .filter(non_empty)
                .collect();
            for (prefix, scan, keys) in [
                (
                    "ALL",
                    &all,
                    &[
                        "audit_time",
                        "bytes_processed",
                        "passes",
                        "errors",
                        "quarantined",
                    ][..],
                ),
                (
                    "ZBF",
                    &zbf,
                    &["audit_time", "bytes_processed", "errors", "quarantined"][..],
                ),
            ] {
                if scan.is_empty() {
                    stats.push(StatLine::NoData {
                        label: Some(format!("{prefix}_auditor")),
                    });
                    continue;
                }
                for k in keys {
                    let vals: Vec<Option<f64>> = scan
                        .iter()
                        .filter_map(|s| types::nested_sum(k, s))
                        .map(Some)
                        .collect();
                    let label = format!("Auditor {k}");
                    stats.push(stat_line(
                        &vals,
                        &format!("{prefix}_{k}_last_path"),
                        Some(&label),
                    ));
                }
            }
        }
        CheckKind::Auditor => {
            if ok.is_empty() {
                detail = Detail::NoHostsAvailable;
            } else {
                let keys = [
                    format!("{t}_auditor_pass_completed"),
                    format!("{t}_audits_failed"),
                    format!("{t}_audits_passed"),
                    format!("{t}_audits_since"),
                ];
                for (i, k) in keys.iter().enumerate() {
                    let vals: Vec<Option<f64>> = ok
                        .iter()
                        .filter_map(|(_, v)| v.get(k).and_then(types::number))
                        .map(Some)
                        .collect();
                    if i < 3 {
                        stats.push(stat_line(&vals, k, Some(k)));
                    } else if vals.is_empty() {
                        stats.push(StatLine::NoData {
                            label: Some(k.clone()),
                        });
                    } else {
                        let v: Vec<f64> = vals.into_iter().flatten().collect();
                        detail = Detail::LastPass {
                            oldest: v.iter().copied().fold(f64::INFINITY, f64::min),
                            newest: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            average: v.iter().sum::<f64>() / v.len() as f64,
                        };
                    }
                }
            }
        }
        CheckKind::Load => {
            let l: Vec<types::Load> = ok.iter().map(|(_, v)| from(v)).collect();
            for (name, vals) in [
                ("1m", l.iter().map(|x| x.one).collect::<Vec<_>>()),
                ("5m", l.iter().map(|x| x.five).collect()),
                ("15m", l.iter().map(|x| x.fifteen).collect()),
            ] {
                let n = format!("{name}_load_avg");
                stats.push(stat_line(&vals, &n, Some(&n)));
            }
        }
        CheckKind::Quarantined => {
            let q: Vec<types::Quarantined> = ok.iter().map(|(_, v)| from(v)).collect();
            // Per-policy lines first, in the order the hosts list them.
            let mut policy_vals: Vec<(String, Vec<Option<f64>>)> = Vec::new();
            for x in &q {
                for (p, n) in x.policy_objects() {
                    match policy_vals.iter_mut().find(|(k, _)| *k == p) {
                        Some((_, v)) => v.push(n),
                        None => policy_vals.push((p, vec![n])),
                    }
                }
            }
            for (p, vals) in policy_vals {
                stats.push(stat_line(&vals, &format!("quarantined_objects_{p}"), None));
            }
            for (name, vals) in [
                ("objects", q.iter().map(|x| x.objects).collect::<Vec<_>>()),
                ("containers", q.iter().map(|x| x.containers).collect()),
                ("accounts", q.iter().map(|x| x.accounts).collect()),
            ] {
                stats.push(stat_line(&vals, &format!("quarantined_{name}"), None));
            }
        }
        CheckKind::Sockstat => {
            let s: Vec<types::Sockstat> = ok.iter().map(|(_, v)| from(v)).collect();
            for (name, vals) in [
                (
                    "tcp_in_use",
                    s.iter().map(|x| x.tcp_in_use).collect::<Vec<_>>(),
                ),
                (
                    "tcp_mem_allocated_bytes",
                    s.iter().map(|x| x.tcp_mem_allocated_bytes).collect(),
                ),
                (
                    "tcp6_in_use",
                    s.iter()
                        .map(|x| x.tcp6_in_use.unwrap_or(Some(0.0)))
                        .collect(),
                ),
                ("time_wait", s.iter().map(|x| x.time_wait).collect()),
                ("orphan", s.iter().map(|x| x.orphan).collect()),
            ] {
                stats.push(stat_line(&vals, name, None));
            }
        }
        CheckKind::Unmounted => {
            let mut unmounted = Vec::new();
            let mut errors = Vec::new();
            for (a, v) in &ok {
                let entries: Vec<types::UnmountedEntry> = from(v);
                for e in entries {
                    let dev = e.device.unwrap_or_default();
                    match e.mounted {
                        MountState::Mounted(true) => {}
                        MountState::Mounted(false) => unmounted.push((a.host.clone(), dev)),
                        MountState::Error(m) => errors.push((a.host.clone(), dev, m)),
                    }
                }
            }
            for (h, d) in &unmounted {
                failures.push(Failure {
                    host: Some(h.clone()),
                    check,
                    server_type,
                    problem: format!("{d} not mounted on {h}"),
                });
            }
            for (h, d, m) in &errors {
                failures.push(Failure {
                    host: Some(h.clone()),
                    check,
                    server_type,
                    problem: format!("device error: {d} on {h}: {m}"),
                });
            }
            detail = Detail::Unmounted { unmounted, errors };
        }
        CheckKind::DiskUsage => {
            let s = disk_usage(&ok, ctx.top, ctx.lowest);
            for (h, d, m) in &s.device_errors {
                failures.push(Failure {
                    host: Some(h.clone()),
                    check,
                    server_type,
                    problem: format!("device error: {d} on {h}: {m}"),
                });
            }
            detail = Detail::DiskUsage(s);
        }
        CheckKind::RingMd5 => {
            let (mut matched, mut errors, mut mismatches) = (0, 0, Vec::new());
            for a in &answers {
                let Ok(v) = &a.result else {
                    errors += 1;
                    continue;
                };
                let mut success = true;
                for (remote_path, remote_sum) in parse(v) {
                    let name = basename(&remote_path);
                    if !name.starts_with(t) {
                        continue;
                    }
                    let local = ctx.ring_md5s.get(name).cloned().flatten();
                    let remote = remote_sum
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| remote_sum.to_string());
                    if Some(&remote) != local.as_ref() {
                        success = false;
                        mismatches.push(Mismatch {
                            host: a.host.clone(),
                            url: a.url.clone(),
                            subject: name.to_string(),
                            remote,
                            local: local.unwrap_or_else(|| "(no local copy)".into()),
                        });
                    }
                }
                if success {
                    matched += 1;
                } else {
                    errors += 1;
                }
            }
            for m in &mismatches {
                failures.push(Failure {
                    host: Some(m.host.clone()),
                    check,
                    server_type,
                    problem: format!(
                        "{} md5 {} differs from the local {}",
                        m.subject, m.remote, m.local
                    ),
                });
            }
            detail = Detail::Md5 {
                local: ctx.ring_md5s.clone(),
                matched,
                errors,
                mismatches,
            };
        }
        CheckKind::SwiftConfMd5 => {
            let (mut matched, mut errors, mut mismatches) = (0, 0, Vec::new());
            let local = ctx.swift_conf_md5.clone();
            for a in &answers {
                let Ok(v) = &a.result else {
                    errors += 1;
                    continue;
                };
                // The node keys its answer by the path it read; match on the file name.
                let remote = parse(v)
                    .iter()
                    .find(|(k, _)| basename(k) == "swift.conf")
                    .map(|(_, s)| {
                        s.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| s.to_string())
                    })
                    .unwrap_or_default();
                if Some(&remote) == local.as_ref() {
                    matched += 1;
                } else {
                    mismatches.push(Mismatch {
                        host: a.host.clone(),
                        url: a.url.clone(),
                        subject: "swift.conf".into(),
                        remote,
                        local: local.clone().unwrap_or_else(|| "(no local copy)".into()),
                    });
                }
            }
            for m in &mismatches {
                failures.push(Failure {
                    host: Some(m.host.clone()),
                    check,
                    server_type,
                    problem: format!(
                        "swift.conf md5 {} differs from the local {}",
                        m.remote, m.local
                    ),
                });
            }
            detail = Detail::Md5 {
                local: BTreeMap::from([("swift.conf".to_string(), local)]),
                matched,
                errors,
                mismatches,
            };
        }
        CheckKind::ValidateServers => {
            let want = format!("{t}-server");
            let mut invalid = Vec::new();
            let mut errors = 0;
            for a in &answers {
                if a.result.is_err() {
                    errors += 1;
                    continue;
                }
                let got = a
                    .server
                    .as_deref()
                    .map(|s| s.split('/').next().unwrap_or_default().to_string())
                    .unwrap_or_else(|| "(no Server header)".into());
                if got != want {
                    failures.push(Failure {
                        host: Some(a.host.clone()),
                        check,
                        server_type,
                        problem: format!("{} is {got}, not {want}", a.url),
                    });
                    invalid.push((a.url.clone(), got));
                }
            }
            detail = Detail::ServerType {
                ok: answers.len() - invalid.len() - errors,
                errors: invalid.len() + errors,
                invalid,
            };
        }
        CheckKind::Time => {
            let jitter = ctx.jitter.abs();
            let (mut matched, mut errors, mut skewed) = (0, 0, Vec::new());
            for a in &answers {
                let Some(remote) = a.result.as_ref().ok().and_then(types::number) else {
                    errors += 1;
                    continue;
                };
                if remote + jitter < a.started || remote - jitter > a.finished {
                    skewed.push(Skew {
                        host: a.host.clone(),
                        url: a.url.clone(),
                        local: a.finished,
                        remote,
                        diff: (a.finished - remote).abs(),
                    });
                } else {
                    matched += 1;
                }
            }
            for s in &skewed {
                failures.push(Failure {
                    host: Some(s.host.clone()),
                    check,
                    server_type,
                    problem: format!("clock of {} differs by {:.4} sec", s.host, s.diff),
                });
            }
            detail = Detail::Time {
                matched,
                errors,
                skewed,
            };
        }
        CheckKind::Versions => {
            let mut versions: Vec<String> = Vec::new();
            let mut errors = 0;
            for a in &answers {
                match a
                    .result
                    .as_ref()
                    .ok()
                    .and_then(|v| from::<types::Version>(v).version)
                {
                    Some(v) => {
                        if !versions.contains(&v) {
                            versions.push(v)
                        }
                    }
                    None => errors += 1,
                }
            }
            versions.sort();
            if versions.len() > 1 {
                failures.push(Failure {
                    host: None,
                    check,
                    server_type,
                    problem: format!("versions not matched: {}", versions.join(", ")),
                });
            }
            detail = Detail::Versions { versions, errors };
        }
    }
    CheckReport {
        check,
        server_type,
        started,
        hosts_asked: answers.len(),
        hosts_total,
        answers,
        stats,
        detail,
        failures,
    }
}

/// Reads an answer as `T`, leniently: an answer of another shape reads as all-`None`.
fn from<T: serde::de::DeserializeOwned + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The JSON kind each endpoint answers; anything else is an unexpected answer.
fn shape_problem(check: CheckKind, body: &Value) -> Option<String> {
    let want = match check {
        CheckKind::ValidateServers => return None,
        CheckKind::Time => {
            return (!body.is_number()).then(|| format!("expected a number, got {}", short(body)))
        }
        CheckKind::Unmounted | CheckKind::DiskUsage => {
            if body
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_object))
            {
                return None;
            }
            "a list of objects"
        }
        _ => {
            if body.is_object() {
                return None;
            }
            "an object"
        }
    };
    Some(format!("expected {want}, got {}", short(body)))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

fn disk_usage(ok: &[(&HostAnswer, &Value)], top: usize, lowest: usize) -> DiskUsageSummary {
    let mut s = DiskUsageSummary {
        top_requested: top,
        lowest_requested: lowest,
        ..Default::default()
    };
    // swift-recon keeps the N best in fixed-size lists seeded with sentinels; the same
    // insertion rule keeps its tie order.
    let mut tops: Vec<(Option<DeviceUsage>, f64)> = vec![(None, 0.0); top];
    let mut lows: Vec<(Option<DeviceUsage>, f64)> = vec![(None, 100.0); lowest];
    let (mut lows_per_host, mut highs_per_host) = (Vec::new(), Vec::new());
    for (a, v) in ok {
        let entries: Vec<types::DiskUsageEntry> = from(v);
        let mut host_usage = Vec::new();
        for e in entries {
            let dev = e.device.clone().unwrap_or_default();
            match e.mounted {
                MountState::Error(m) => s.device_errors.push((a.host.clone(), dev, m)),
                MountState::Mounted(false) => {}
                MountState::Mounted(true) => {
                    let (Some(size), Some(used), Some(avail)) = (e.size, e.used, e.avail) else {
                        continue;
                    };
                    if size <= 0.0 {
                        continue;
                    }
                    let pct = used / size * 100.0;
                    s.used_bytes += used;
                    s.avail_bytes += avail;
                    host_usage.push(round2(pct));
                    let du = || DeviceUsage {
                        host: a.host.clone(),
                        device: dev.clone(),
                        used_percent: pct,
                    };
                    if tops.iter().any(|(_, o)| *o < pct) {
                        tops.push((Some(du()), pct));
                        tops.sort_by(|x, y| y.1.total_cmp(&x.1));
                        tops.pop();
                    }
                    if lows.iter().any(|(_, o)| *o > pct) {
                        lows.push((Some(du()), pct));
                        lows.sort_by(|x, y| x.1.total_cmp(&y.1));
                        lows.pop();
                    }
                }
            }
        }
        if host_usage.is_empty() {
            s.no_drive_info.push(a.host.clone());
        } else {
            lows_per_host.push(host_usage.iter().copied().fold(f64::INFINITY, f64::min));
            highs_per_host.push(host_usage.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            for p in host_usage {
                *s.distribution.entry(p as i64).or_default() += 1;
            }
        }
    }
    if !lows_per_host.is_empty() {
        s.lowest = Some(lows_per_host.iter().copied().fold(f64::INFINITY, f64::min));
        s.highest = Some(
            highs_per_host
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
        );
        let total = s.used_bytes + s.avail_bytes;
        s.average = Some(if total > 0.0 {
            100.0 * s.used_bytes / total
        } else {
            0.0
        });
    }
    s.top = tops.into_iter().filter_map(|(d, _)| d).collect();
    s.bottom = lows.into_iter().filter_map(|(d, _)| d).collect();
    s
}

/// Python's `round(x, 2)` (round half to even on the decimal representation is close
/// enough here: the values are percentages shown with two decimals).
fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(n: u8) -> Host {
        Host::new(format!("127.0.0.{n}"), 6200)
    }

    fn ok(n: u8, body: Value) -> HostAnswer {
        HostAnswer::ok(h(n), h(n).recon_url("x"), body)
    }

    fn run(check: CheckKind, answers: Vec<HostAnswer>) -> CheckReport {
        let n = answers.len();
        summarize(
            check,
            ServerType::Object,
            n,
            0.0,
            answers,
            &CheckContext::default(),
        )
    }

    #[test]
    fn gen_stats_matches_swift_recon() {
        let s = gen_stats(&[Some(1.0), None, Some(4.0), Some(7.0)], "x").unwrap();
        assert_eq!((s.low, s.high, s.total, s.average), (1.0, 7.0, 12.0, 4.0));
        assert_eq!((s.reported, s.number_none, s.perc_none), (3, 1, 25.0));
        assert!(gen_stats(&[None, None], "x").is_none());
        assert!(gen_stats(&[], "x").is_none());
    }

    #[test]
    fn unreachable_hosts_fail_but_do_not_count_as_no_result() {
        let r = run(
            CheckKind::Async,
            vec![
                ok(1, json!({"async_pending": 3})),
                ok(2, json!({"async_pending": null})),
                HostAnswer::err(h(3), "u".into(), HostError::Timeout(5.0)),
                ok(4, json!("not an object")),
            ],
        );
        let StatLine::Stats(s) = &r.stats[0] else {
            panic!()
        };
        assert_eq!((s.total, s.reported, s.number_none), (3.0, 1, 1));
        assert_eq!(r.failures.len(), 2);
        assert!(
            r.failures[1].problem.contains("expected an object"),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn replication_completions_and_missing_stats() {
        let r = run(
            CheckKind::Replication,
            vec![
                ok(
                    1,
                    json!({"replication_time": 2.0, "replication_last": 100.0,
                    "replication_stats": {"attempted": 3, "failure": 1, "success": 2}}),
                ),
                ok(
                    2,
                    json!({"replication_time": 4.0, "replication_last": 50.0, "replication_stats": {}}),
                ),
                ok(3, json!({})),
            ],
        );
        let StatLine::Stats(t) = &r.stats[0] else {
            panic!()
        };
        // host 3 has neither key: swift-recon counts a time of 0.
        assert_eq!((t.low, t.high, t.reported), (0.0, 4.0, 3));
        let StatLine::Stats(f) = &r.stats[1] else {
            panic!()
        };
        assert_eq!(
            (f.name.as_str(), f.total, f.reported),
            ("replication_failure", 1.0, 1)
        );
        let Detail::Completions(c) = &r.detail else {
            panic!()
        };
        assert_eq!(c.oldest, Some((h(3), 0.0)));
        assert_eq!(c.newest, Some((h(1), 100.0)));
    }

    #[test]
    fn md5_mismatch_names_the_host() {
        let mut ctx = CheckContext::default();
        ctx.ring_md5s
            .insert("object.ring.gz".into(), Some("aa".into()));
        let answers = vec![
            ok(
                1,
                json!({"/etc/swift/object.ring.gz": "aa", "/etc/swift/account.ring.gz": "zz"}),
            ),
            ok(2, json!({"/etc/swift/object.ring.gz": "bb"})),
            HostAnswer::err(h(3), "u".into(), HostError::Unreachable("refused".into())),
        ];
        let r = summarize(
            CheckKind::RingMd5,
            ServerType::Object,
            3,
            0.0,
            answers,
            &ctx,
        );
        let Detail::Md5 {
            matched,
            errors,
            mismatches,
            ..
        } = &r.detail
        else {
            panic!()
        };
        assert_eq!((*matched, *errors, mismatches.len()), (1, 2, 1));
        assert_eq!(mismatches[0].host, h(2));
        assert_eq!(r.failures.len(), 2);
    }

    #[test]
    fn time_skew_respects_jitter() {
        let mut a = ok(1, json!(1000.0));
        (a.started, a.finished) = (1010.0, 1011.0);
        let ctx = CheckContext {
            jitter: 20.0,
            ..Default::default()
        };
        let r = summarize(
            CheckKind::Time,
            ServerType::Object,
            1,
            0.0,
            vec![a.clone()],
            &ctx,
        );
        assert!(r.failures.is_empty());
        let r = run(CheckKind::Time, vec![a]);
        let Detail::Time {
            skewed, matched, ..
        } = &r.detail
        else {
            panic!()
        };
        assert_eq!((*matched, skewed.len(), skewed[0].diff), (0, 1, 11.0));
        assert_eq!(r.failures.len(), 1);
    }

    #[test]
    fn disk_usage_top_lowest_and_errors() {
        let r = run(
            CheckKind::DiskUsage,
            vec![
                ok(
                    1,
                    json!([
                        {"device": "d1", "mounted": true, "size": 100, "used": 37, "avail": 63},
                        {"device": "d2", "mounted": true, "size": 100, "used": 81, "avail": 19},
                        {"device": "d3", "mounted": "[Errno 5] Input/output error", "size": "", "used": "", "avail": ""},
                        {"device": "d4", "mounted": false, "size": "", "used": "", "avail": ""}
                    ]),
                ),
                ok(
                    2,
                    json!([{"device": "d1", "mounted": false, "size": "", "used": "", "avail": ""}]),
                ),
            ],
        );
        let ctx_top = {
            let Detail::DiskUsage(s) = &r.detail else {
                panic!()
            };
            s.clone()
        };
        assert_eq!(ctx_top.used_bytes, 118.0);
        assert_eq!(
            (ctx_top.lowest, ctx_top.highest, ctx_top.average),
            (Some(37.0), Some(81.0), Some(59.0))
        );
        assert_eq!(ctx_top.no_drive_info, vec![h(2)]);
        assert_eq!(ctx_top.device_errors.len(), 1);
        let mut answers = r.answers.clone();
        answers.truncate(1);
        let ctx = CheckContext {
            top: 1,
            lowest: 3,
            ..Default::default()
        };
        let r = summarize(
            CheckKind::DiskUsage,
            ServerType::Object,
            1,
            0.0,
            answers,
            &ctx,
        );
        let Detail::DiskUsage(s) = &r.detail else {
            panic!()
        };
        assert_eq!(
            s.top.iter().map(|d| d.device.as_str()).collect::<Vec<_>>(),
            ["d2"]
        );
        assert_eq!(
            s.bottom
                .iter()
                .map(|d| d.device.as_str())
                .collect::<Vec<_>>(),
            ["d1", "d2"]
        );
    }

    #[test]
    fn object_auditor_sums_per_device_stats() {
        let r = run(
            CheckKind::Auditor,
            vec![ok(
                1,
                json!({"object_auditor_stats_ALL": {"d1": {"passes": 2, "errors": 0, "audit_time": 1, "bytes_processed": 5, "quarantined": 0},
                                                           "d2": {"passes": 3, "errors": 1, "audit_time": 1, "bytes_processed": 5, "quarantined": 0}},
                             "object_auditor_stats_ZBF": null}),
            )],
        );
        let names: Vec<String> = r
            .stats
            .iter()
            .map(|s| match s {
                StatLine::Stats(s) => format!("{}={}", s.name, s.total),
                StatLine::NoData { label } => {
                    format!("nodata:{}", label.clone().unwrap_or_default())
                }
            })
            .collect();
        assert_eq!(
            names,
            [
                "ALL_audit_time_last_path=2",
                "ALL_bytes_processed_last_path=10",
                "ALL_passes_last_path=5",
                "ALL_errors_last_path=1",
                "ALL_quarantined_last_path=0",
                "nodata:ZBF_auditor"
            ]
        );
    }
}

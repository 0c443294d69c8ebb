//! The dashboard's data: a [`ClusterSnapshot`] is everything one screen shows, computed off
//! the UI thread.
//!
//! Rings come from the builder directory (`*.builder`, which carries overload and pending
//! removals) and fall back to `*.ring.gz` in the swift dir when there is no builder; each is
//! reduced to [`RingStats`] (balance, dispersion, required overload, partitions per tier, per
//! device weight share against partition share). Hosts come from the rings' devices, and when
//! any answers recon the snapshot is *live*: each host's load, async pendings, quarantined
//! objects, replication pass, unmounted drives, disk use and ring md5s. A host that does not
//! answer stays in the list with the reason, so an unreachable cluster still shows its rings.
//!
//! [`Poller`] recomputes a snapshot every interval on its own thread (with a one-thread tokio
//! runtime for the recon fetches) and sends it over a channel; the UI only ever `try_recv`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[doc(hidden)]
#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;

use ringsmith::builder::tier_name;
use ringsmith::builder::RingBuilder;
use ringsmith::device::Tier;
use ringsmith::recon::client::Fetcher;
use ringsmith::recon::hosts::{hosts_of, Host, HostFilter};
use serde_json::Value;

/// One device of one ring, with what the UI needs to show it.
#[derive(Clone, Debug, PartialEq)]
pub struct DevStat {
    pub id: u32,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u32,
    pub device: String,
    pub weight: f64,
    pub parts: u64,
    /// Swift's balance: % above (+) or below (-) the partitions its weight asks for.
    pub balance: f64,
    /// Fraction of the ring's weight (0..1).
    pub weight_share: f64,
    /// Fraction of the ring's partition-replicas (0..1).
    pub part_share: f64,
    /// Marked for removal at the next rebalance.
    pub deleted: bool,
}

/// The figures of one ring (account, container, object, object-N).
#[derive(Clone, Debug)]
pub struct RingStats {
    pub name: String,
    /// `None` when the ring was read from `ring.gz` alone (the planner needs a builder).
    pub builder_path: Option<PathBuf>,
    pub ring_path: PathBuf,
    pub part_power: u32,
    pub replicas: f64,
    pub min_part_hours: u32,
    pub balance: f64,
    pub dispersion: f64,
    pub overload: f64,
    /// `None` when it cannot be computed (no weight).
    pub required_overload: Option<f64>,
    /// `(tier name, partition-replicas)`, regions then zones then servers.
    pub parts_per_tier: Vec<(String, u64)>,
    pub devices: Vec<DevStat>,
    /// The builder itself, for the planner's dry runs.
    pub builder: Arc<RingBuilder>,
}

/// Per-host disk use from `/recon/diskusage`.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskUse {
    pub device: String,
    pub mounted: bool,
    pub used: u64,
    pub size: u64,
}

/// What one storage server said (or why it said nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostStatus {
    /// `ip:port`.
    pub host: String,
    pub ip: String,
    pub port: u16,
    /// `Some(reason)` when the host did not answer recon.
    pub error: Option<String>,
    pub load5: Option<f64>,
    pub async_pending: Option<u64>,
    pub quarantined: Option<u64>,
    /// Unix time of the last object replication pass.
    pub replication_last: Option<f64>,
    /// Seconds the last pass took.
    pub replication_duration: Option<f64>,
    pub replication_failures: Option<u64>,
    pub unmounted: Vec<String>,
    pub disks: Vec<DiskUse>,
    /// `Some(false)` when one of its ring md5s differs from ours.
    pub ring_md5_ok: Option<bool>,
}

impl HostStatus {
    pub fn up(&self) -> bool {
        self.error.is_none()
    }
}

/// One replication pass seen by the poller, kept so the Replication view shows history.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationSample {
    pub host: String,
    pub last: f64,
    pub duration: f64,
    pub failures: u64,
}

/// Everything the dashboard shows at one moment.
#[derive(Clone, Debug, Default)]
pub struct ClusterSnapshot {
    /// Unix time it was taken.
    pub taken_at: f64,
    pub rings: Vec<RingStats>,
    pub hosts: Vec<HostStatus>,
    /// True when at least one host answered recon.
    pub live: bool,
    /// Problems reading files (a bad builder, an unreadable dir), with the path.
    pub errors: Vec<String>,
    /// Distinct replication passes seen so far, oldest first (bounded).
    pub replication_history: Vec<ReplicationSample>,
}

/// Where the poller looks and how often.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    pub swift_dir: PathBuf,
    pub builder_dir: PathBuf,
    pub interval: Duration,
    pub timeout: Duration,
    /// Read rings and builders only: no recon request, no connection of any kind (for
    /// planning away from the cluster).
    pub offline: bool,
}

/// Figures of one builder.
pub fn ring_stats(
    name: &str,
    builder: RingBuilder,
    builder_path: Option<PathBuf>,
    ring_path: PathBuf,
) -> RingStats {
    let balances: BTreeMap<u32, f64> = builder.balance_per_dev().into_iter().collect();
    let total_weight: f64 = builder.iter_devs().map(|d| d.dev.weight).sum();
    let total_parts: u64 = builder.iter_devs().map(|d| d.parts).sum();
    let devices = builder
        .iter_devs()
        .map(|d| DevStat {
            id: d.dev.id,
            region: d.dev.region,
            zone: d.dev.zone,
            ip: d.dev.ip.clone(),
            port: d.dev.port,
            device: d.dev.device.clone(),
            weight: d.dev.weight,
            parts: d.parts,
            balance: balances.get(&d.dev.id).copied().unwrap_or(0.0),
            weight_share: ratio(d.dev.weight, total_weight),
            part_share: ratio(d.parts as f64, total_parts as f64),
            deleted: builder.is_marked_for_removal(d.dev.id),
        })
        .collect();
    let mut parts_per_tier = Vec::new();
    if builder.replica2part2dev.is_some() {
        if let Ok(by_tier) = builder.parts_by_tier() {
            let mut tiers: Vec<(&Tier, &u64)> =
                by_tier.iter().filter(|(t, _)| t.depth() < 4).collect();
            tiers.sort_by_key(|(t, _)| (t.depth(), (*t).clone()));
            parts_per_tier = tiers
                .into_iter()
                .map(|(t, n)| (tier_name(t, &builder), *n))
                .collect();
        }
    }
    let (dispersion, balance) = if builder.replica2part2dev.is_some() {
        let report = builder.dispersion_report(None, false);
        (report.dispersion, report.balance)
    } else {
        (0.0, 0.0)
    };
    RingStats {
        name: name.to_string(),
        builder_path,
        ring_path,
        part_power: builder.part_power,
        replicas: builder.replicas,
        min_part_hours: builder.min_part_hours,
        balance,
        dispersion,
        overload: builder.overload,
        required_overload: builder.get_required_overload().ok(),
        parts_per_tier,
        devices,
        builder: Arc::new(builder),
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Ring names found in the builder dir (`x.builder`) and the swift dir (`x.ring.gz`).
fn ring_names(swift_dir: &Path, builder_dir: &Path) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    for (dir, suffix) in [(builder_dir, ".builder"), (swift_dir, ".ring.gz")] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if let Some(name) = e.file_name().to_str().and_then(|n| n.strip_suffix(suffix)) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    // account, container, object, object-1... (the order operators read them in).
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort_by_key(|n| {
        let rank = match n.as_str() {
            "account" => 0,
            "container" => 1,
            "object" => 2,
            _ => 3,
        };
        (rank, n.clone())
    });
    names
}

/// Ring statistics by file, reused while the file's size and mtime are unchanged: a
/// 2^20-partition ring's dispersion is not recomputed every poll.
#[derive(Default)]
pub struct RingCache(BTreeMap<PathBuf, (Option<std::time::SystemTime>, u64, RingStats)>);

impl RingCache {
    fn stamp(path: &Path) -> Option<(Option<std::time::SystemTime>, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok(), meta.len()))
    }
    fn get(&self, path: &Path) -> Option<RingStats> {
        let (mtime, len) = Self::stamp(path)?;
        let (m, l, stats) = self.0.get(path)?;
        (*m == mtime && *l == len && mtime.is_some()).then(|| stats.clone())
    }
    fn put(&mut self, path: &Path, stats: &RingStats) {
        if let Some((mtime, len)) = Self::stamp(path) {
            self.0
                .insert(path.to_path_buf(), (mtime, len, stats.clone()));
        }
    }
}

/// Reads every ring, builder first. Errors name the file and never stop the others.
pub fn load_rings(swift_dir: &Path, builder_dir: &Path) -> (Vec<RingStats>, Vec<String>) {
    load_rings_cached(swift_dir, builder_dir, &mut RingCache::default())
}

/// [`load_rings`], reusing the statistics of files that did not change.
pub fn load_rings_cached(
    swift_dir: &Path,
    builder_dir: &Path,
    cache: &mut RingCache,
) -> (Vec<RingStats>, Vec<String>) {
    let mut rings = Vec::new();
    let mut errors = Vec::new();
    for name in ring_names(swift_dir, builder_dir) {
        let builder_path = builder_dir.join(format!("{name}.builder"));
        let ring_path = swift_dir.join(format!("{name}.ring.gz"));
        if builder_path.exists() {
            if let Some(stats) = cache.get(&builder_path) {
                rings.push(stats);
                continue;
            }
            match RingBuilder::load(&builder_path) {
                Ok(b) => {
                    let stats = ring_stats(&name, b, Some(builder_path.clone()), ring_path);
                    cache.put(&builder_path, &stats);
                    rings.push(stats);
                    continue;
                }
                Err(e) => errors.push(format!("{}: {e}", builder_path.display())),
            }
        }
        if ring_path.exists() {
            if let Some(stats) = cache.get(&ring_path) {
                rings.push(stats);
                continue;
            }
            match ringsmith::ring::RingData::load(&ring_path) {
                Ok(data) => {
                    let b = RingBuilder::from_ring(&data, 1);
                    let stats = ring_stats(&name, b, None, ring_path.clone());
                    cache.put(&ring_path, &stats);
                    rings.push(stats);
                }
                Err(e) => errors.push(format!("{}: {e}", ring_path.display())),
            }
        }
    }
    (rings, errors)
}

/// Every distinct storage server of the rings.
pub fn hosts_of_rings(rings: &[RingStats]) -> Vec<Host> {
    let devs: Vec<ringsmith::device::Device> = rings
        .iter()
        .flat_map(|r| r.builder.iter_devs().map(|d| d.dev.clone()))
        .collect();
    hosts_of(&devs, &HostFilter::default())
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64))
}

/// Sums every number in a value (quarantined counts are nested per policy).
fn sum_numbers(v: &Value) -> u64 {
    match v {
        Value::Number(_) => as_u64(v).unwrap_or(0),
        Value::Object(m) => m.values().map(sum_numbers).sum(),
        Value::Array(a) => a.iter().map(sum_numbers).sum(),
        _ => 0,
    }
}

/// Folds one endpoint's JSON into a host's status. Shapes are Swift's; anything unexpected
/// leaves the field unknown rather than failing.
pub fn apply_answer(
    status: &mut HostStatus,
    endpoint: &str,
    body: &Value,
    local_md5s: &BTreeMap<String, String>,
) {
    match endpoint {
        "load" => status.load5 = body.get("5m").and_then(Value::as_f64),
        "async" => status.async_pending = body.get("async_pending").and_then(as_u64),
        "quarantined" => status.quarantined = Some(sum_numbers(body)),
        "unmounted" => {
            status.unmounted = body
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.get("device").and_then(Value::as_str).map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        }
        "replication/object" => {
            status.replication_last = body.get("object_replication_last").and_then(Value::as_f64);
            // Swift reports the duration in minutes.
            status.replication_duration = body
                .get("object_replication_time")
                .and_then(Value::as_f64)
                .map(|m| m * 60.0);
            status.replication_failures = body
                .get("replication_stats")
                .and_then(|s| s.get("failure"))
                .and_then(as_u64);
        }
        "diskusage" => {
            status.disks = body
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| {
                            Some(DiskUse {
                                device: d.get("device")?.as_str()?.to_string(),
                                mounted: d.get("mounted").and_then(Value::as_bool).unwrap_or(false),
                                used: d.get("used").and_then(as_u64).unwrap_or(0),
                                size: d.get("size").and_then(as_u64).unwrap_or(0),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        }
        "ringmd5" => {
            if let Some(m) = body.as_object() {
                let mut ok = true;
                for (path, md5) in m {
                    let base = Path::new(path)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or(path);
                    if let (Some(ours), Some(theirs)) = (local_md5s.get(base), md5.as_str()) {
                        ok &= ours == theirs;
                    }
                }
                status.ring_md5_ok = Some(ok);
            }
        }
        _ => {}
    }
}

/// The endpoints one poll asks every host.
pub const ENDPOINTS: [&str; 7] = [
    "load",
    "async",
    "quarantined",
    "unmounted",
    "replication/object",
    "diskusage",
    "ringmd5",
];

/// Asks every host every endpoint (concurrently, each bounded by the timeout).
pub fn poll_hosts(
    hosts: &[Host],
    timeout: Duration,
    local_md5s: &BTreeMap<String, String>,
) -> Vec<HostStatus> {
    let mut statuses: Vec<HostStatus> = hosts
        .iter()
        .map(|h| HostStatus {
            host: h.netloc(),
            ip: h.ip.clone(),
            port: h.port,
            ..HostStatus::default()
        })
        .collect();
    if hosts.is_empty() {
        return statuses;
    }
    let fetcher = match Fetcher::new(timeout, 256) {
        Ok(f) => f,
        Err(e) => {
            for s in &mut statuses {
                s.error = Some(e.clone());
            }
            return statuses;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            for s in &mut statuses {
                s.error = Some(e.to_string());
            }
            return statuses;
        }
    };
    let answers = runtime.block_on(async {
        let mut all = Vec::new();
        for endpoint in ENDPOINTS {
            all.push((endpoint, fetcher.fetch(hosts, endpoint).await));
        }
        all
    });
    for (endpoint, answers) in answers {
        for (status, answer) in statuses.iter_mut().zip(answers) {
            match answer.result {
                Ok(body) => apply_answer(status, endpoint, &body, local_md5s),
                // The first failing endpoint says why; a host that answers nothing is down.
                Err(e) if endpoint == "load" => status.error = Some(e.to_string()),
                Err(_) => {}
            }
        }
    }
    statuses
}

/// md5 of each `*.ring.gz` in the swift dir, by file name.
pub fn local_ring_md5s(swift_dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(swift_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".ring.gz") {
                if let Some(md5) = ringsmith::recon::checks::md5_file(&e.path()) {
                    out.insert(name, md5);
                }
            }
        }
    }
    out
}

/// One full snapshot: rings, then hosts. Blocking; call it off the UI thread.
pub fn take_snapshot(
    config: &PollerConfig,
    history: &mut Vec<ReplicationSample>,
    cache: &mut RingCache,
) -> ClusterSnapshot {
    let (rings, errors) = load_rings_cached(&config.swift_dir, &config.builder_dir, cache);
    let hosts = hosts_of_rings(&rings);
    let statuses = if config.offline {
        hosts
            .iter()
            .map(|h| HostStatus {
                host: h.netloc(),
                ip: h.ip.clone(),
                port: h.port,
                error: Some(OFFLINE.into()),
                ..HostStatus::default()
            })
            .collect()
    } else {
        let md5s = local_ring_md5s(&config.swift_dir);
        poll_hosts(&hosts, config.timeout, &md5s)
    };
    for s in &statuses {
        if let (Some(last), Some(duration)) = (s.replication_last, s.replication_duration) {
            let seen = history.iter().any(|h| h.host == s.host && h.last == last);
            if !seen {
                history.push(ReplicationSample {
                    host: s.host.clone(),
                    last,
                    duration,
                    failures: s.replication_failures.unwrap_or(0),
                });
            }
        }
    }
    // Bounded: an operator looks at recent passes, not the whole week.
    const MAX_HISTORY: usize = 2000;
    if history.len() > MAX_HISTORY {
        history.drain(..history.len() - MAX_HISTORY);
    }
    ClusterSnapshot {
        taken_at: ringsmith::recon::client::unix_now(),
        live: statuses.iter().any(HostStatus::up),
        rings,
        hosts: statuses,
        errors,
        replication_history: history.clone(),
    }
}

/// What a host shows in offline mode instead of a recon error.
pub const OFFLINE: &str = "offline mode: not polled";

/// The background poller: its snapshots arrive on `snapshots`.
pub struct Poller {
    pub snapshots: Receiver<ClusterSnapshot>,
    wake: Sender<()>,
}

impl Poller {
    pub fn spawn(config: PollerConfig) -> Poller {
        let (tx, rx) = mpsc::channel();
        let (wake_tx, wake_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("dash-poller".into())
            .spawn(move || {
                let mut history = Vec::new();
                let mut cache = RingCache::default();
                loop {
                    let started = Instant::now();
                    let snapshot = take_snapshot(&config, &mut history, &mut cache);
                    if tx.send(snapshot).is_err() {
                        return; // the UI is gone
                    }
                    let wait = config.interval.saturating_sub(started.elapsed());
                    match wake_rx.recv_timeout(wait) {
                        Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .expect("spawning the poller thread");
        Poller {
            snapshots: rx,
            wake: wake_tx,
        }
    }

    /// Poll now rather than at the next interval (after the planner wrote a ring).
    pub fn refresh(&self) {
        let _ = self.wake.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recon_answers_fill_a_host_status() {
        let mut md5s = BTreeMap::new();
        md5s.insert("object.ring.gz".to_string(), "aa".to_string());
        md5s.insert("account.ring.gz".to_string(), "bb".to_string());
        let mut s = HostStatus::default();
        apply_answer(
            &mut s,
            "load",
            &json!({"1m": 0.1, "5m": 0.5, "15m": 1.0}),
            &md5s,
        );
        apply_answer(&mut s, "async", &json!({"async_pending": 3}), &md5s);
        apply_answer(
            &mut s,
            "quarantined",
            &json!({"objects": 1, "accounts": 0, "containers": 2, "policies": {"0": {"objects": 1}}}),
            &md5s,
        );
        apply_answer(
            &mut s,
            "unmounted",
            &json!([{"device": "sdc", "mounted": false}]),
            &md5s,
        );
        apply_answer(
            &mut s,
            "replication/object",
            &json!({"object_replication_last": 100.0, "object_replication_time": 2.0, "replication_stats": {"failure": 5}}),
            &md5s,
        );
        apply_answer(
            &mut s,
            "diskusage",
            &json!([{"device": "sdb", "mounted": true, "used": 1, "size": 4}, {"device": "sdc", "mounted": "Input/output error"}]),
            &md5s,
        );
        apply_answer(
            &mut s,
            "ringmd5",
            &json!({"/etc/swift/object.ring.gz": "aa", "/etc/swift/account.ring.gz": "cc"}),
            &md5s,
        );
        assert_eq!(s.load5, Some(0.5));
        assert_eq!(s.async_pending, Some(3));
        assert_eq!(s.quarantined, Some(4));
        assert_eq!(s.unmounted, ["sdc"]);
        assert_eq!(s.replication_last, Some(100.0));
        assert_eq!(s.replication_duration, Some(120.0));
        assert_eq!(s.replication_failures, Some(5));
        assert_eq!(s.disks.len(), 2);
        assert!(!s.disks[1].mounted);
        assert_eq!(s.ring_md5_ok, Some(false));
        // A fresh node answers nulls: fields stay unknown, nothing panics.
        let mut fresh = HostStatus::default();
        for e in ENDPOINTS {
            apply_answer(&mut fresh, e, &Value::Null, &md5s);
        }
        assert_eq!(fresh.load5, None);
        assert_eq!(fresh.async_pending, None);
    }

    #[test]
    fn rings_load_from_builders_and_ring_files_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let b = fixture::small_builder();
        b.save(dir.path().join("object.builder")).unwrap();
        // A ring without a builder: read from ring.gz.
        b.get_ring()
            .save(
                &dir.path().join("container.ring.gz"),
                ringsmith::ring::FormatVersion::V1,
            )
            .unwrap();
        std::fs::write(dir.path().join("account.builder"), b"not a pickle").unwrap();
        let (rings, errors) = load_rings(dir.path(), dir.path());
        let names: Vec<_> = rings.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["container", "object"]);
        assert!(rings[0].builder_path.is_none());
        assert!(rings[1].builder_path.is_some());
        assert_eq!(rings[1].devices.len(), 6);
        let share: f64 = rings[1].devices.iter().map(|d| d.weight_share).sum();
        assert!((share - 1.0).abs() < 1e-9);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("account.builder"), "{errors:?}");
    }

    #[test]
    fn unchanged_ring_files_reuse_their_statistics_and_changed_ones_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object.builder");
        let mut b = fixture::small_builder();
        b.save(&path).unwrap();
        let mut cache = RingCache::default();
        let (first, _) = load_rings_cached(dir.path(), dir.path(), &mut cache);
        let (second, _) = load_rings_cached(dir.path(), dir.path(), &mut cache);
        assert!(Arc::ptr_eq(&first[0].builder, &second[0].builder), "reused");
        b.set_overload(0.25).unwrap();
        b.save(&path).unwrap();
        // Same size possible; bump the mtime explicitly so the test does not race the clock.
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let (third, _) = load_rings_cached(dir.path(), dir.path(), &mut cache);
        assert_eq!(third[0].overload, 0.25);
    }

    #[test]
    fn an_unreachable_cluster_still_gives_an_offline_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        // A port nothing listens on (bound, then released), so no other test's server answers.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut b = fixture::small_builder();
        for d in b.devs.iter_mut().flatten() {
            d.dev.ip = "127.0.0.1".into();
            d.dev.port = u32::from(port);
        }
        b.save(dir.path().join("object.builder")).unwrap();
        let config = PollerConfig {
            swift_dir: dir.path().to_path_buf(),
            builder_dir: dir.path().to_path_buf(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
            offline: false,
        };
        let poller = Poller::spawn(config);
        let snap = poller
            .snapshots
            .recv_timeout(Duration::from_secs(30))
            .unwrap();
        assert!(!snap.live);
        assert_eq!(snap.rings.len(), 1);
        assert_eq!(snap.hosts.len(), 1);
        assert!(
            snap.hosts.iter().all(|h| h.error.is_some()),
            "{:?}",
            snap.hosts
        );
    }

    /// `--offline`: rings and builders are read, and not a single connection is made,
    /// even to a host that would answer.
    #[test]
    fn offline_mode_reads_files_and_never_connects() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut b = fixture::small_builder();
        for d in b.devs.iter_mut().flatten() {
            d.dev.ip = "127.0.0.1".into();
            d.dev.port = u32::from(port);
        }
        b.save(dir.path().join("object.builder")).unwrap();
        let config = PollerConfig {
            swift_dir: dir.path().to_path_buf(),
            builder_dir: dir.path().to_path_buf(),
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(300),
            offline: true,
        };
        let poller = Poller::spawn(config);
        for _ in 0..3 {
            let snap = poller
                .snapshots
                .recv_timeout(Duration::from_secs(30))
                .unwrap();
            assert_eq!(snap.rings.len(), 1);
            assert!(!snap.live);
            assert!(snap
                .hosts
                .iter()
                .all(|h| h.error.as_deref() == Some(OFFLINE)));
        }
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "offline mode connected to a host"
        );
    }
}

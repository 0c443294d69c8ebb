//! The object replicator.
//!
//! For every partition directory on a local device it decides, from the object ring,
//! whether this device is one of the partition's primaries:
//!
//! * **Primary** (`update`): ask every other primary for its suffix hashes with
//!   `REPLICATE /<dev>/<part>`, and for each suffix whose hash differs push the objects
//!   of that suffix, then tell the remote to rehash those suffixes
//!   (`REPLICATE /<dev>/<part>/<sfx>-<sfx>`). A primary that cannot be reached is
//!   replaced by the partition's next handoff, so a copy still gets made elsewhere.
//! * **Handoff** (`revert`): push the whole partition to every primary; only when every
//!   primary confirmed every object, and the partition did not change meanwhile, is
//!   the local copy removed.
//!
//! Pushing is done with the backend requests the object server already understands,
//! instead of Swift's rsync or SSYNC: per object, a `HEAD` (with
//! `X-Backend-Replication`) learns the remote state, then a `PUT` of the `.data` with
//! its original `X-Timestamp` and metadata, a `POST` for a newer `.meta`, or a `DELETE`
//! with the tombstone's timestamp. The receiver refuses anything not newer than what
//! it has (409), so a push can never overwrite newer data. With `sync_method = ssync`
//! the differing suffixes go over Swift's SSYNC instead (`ssync_sender`), which Swift's
//! object servers answer too.
//!
//! Computing our hashes (`get_hashes`) also runs `cleanup` with the reclaim age, which
//! is where tombstones older than `reclaim_age` are removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ringsmith::device::Device;
use ringsmith::ring::Ring;
use serde_json::{json, Map};
use tokio::sync::{Mutex, Semaphore};

use super::{node_base, quote, DaemonConf, RateLimiter};
use crate::common::Timestamp;
use crate::object::diskfile::hashes;
use crate::object::diskfile::stale_temp::{remove_stale_temp_files, STALE_TEMP_AGE};
use crate::object::diskfile::{self, OnDiskState};
use ringsmith::swift::policy::Policy;

/// Counters of one pass, with the names Swift's `replication_stats` uses.
#[derive(Default)]
pub struct Stats {
    pub attempted: AtomicU64,
    pub success: AtomicU64,
    pub failure: AtomicU64,
    pub hashmatch: AtomicU64,
    pub remove: AtomicU64,
    pub rsync: AtomicU64,
    pub suffix_count: AtomicU64,
    pub suffix_hash: AtomicU64,
    pub suffix_sync: AtomicU64,
    pub objects_pushed: AtomicU64,
}

fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub struct ObjectReplicator {
    conf: DaemonConf,
    http: reqwest::Client,
    stats: Stats,
    /// Pushes per second over the whole pass (`max_objects_per_second`, 0 = unlimited).
    limiter: Mutex<RateLimiter>,
    /// `sync_method = ssync`: differing suffixes go over SSYNC instead of per-object
    /// backend requests (any other value, Swift's default `rsync` included, means those).
    use_ssync: bool,
}

/// The suffixes whose hash differs: present locally and missing or different remotely.
pub fn suffixes_to_sync(
    local: &BTreeMap<String, String>,
    remote: &BTreeMap<String, String>,
) -> Vec<String> {
    local
        .iter()
        .filter(|(s, h)| remote.get(*s) != Some(*h))
        .map(|(s, _)| s.clone())
        .collect()
}

/// Decodes a `REPLICATE` answer: a pickled `{suffix: md5hex}` (`None` values are
/// suffixes the remote has not hashed, treated as different).
pub fn parse_remote_hashes(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let v = ringsmith::pickle::loads(body).map_err(|e| format!("bad REPLICATE pickle: {e}"))?;
    let mut out = BTreeMap::new();
    match v.deref_shared() {
        ringsmith::pickle::Value::Dict(items) => {
            for (k, v) in items {
                if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                    out.insert(k.to_string(), v.to_string());
                }
            }
            Ok(out)
        }
        ringsmith::pickle::Value::None => Ok(out),
        other => Err(format!("REPLICATE answered a {}", other.type_name())),
    }
}

/// What a remote holds for one object, from a replication `HEAD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteState {
    Missing,
    Deleted(Timestamp),
    /// Data timestamp and newest (data or meta) timestamp.
    Present {
        data: Timestamp,
        newest: Timestamp,
    },
}

/// The requests that bring the remote up to our state (none when it is as new).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    Put,
    Post,
    Delete,
}

pub fn plan(local: &OnDiskState, remote: RemoteState) -> Vec<Push> {
    let mut out = Vec::new();
    if let Some(t) = &local.tombstone {
        let remote_newest = match remote {
            RemoteState::Missing => None,
            RemoteState::Deleted(r) => Some(r),
            RemoteState::Present { newest, .. } => Some(newest),
        };
        if remote_newest.is_none_or(|r| r < t.timestamp) {
            out.push(Push::Delete);
        }
        return out;
    }
    let Some(d) = &local.data else {
        return out;
    };
    let (remote_data, remote_newest) = match remote {
        RemoteState::Missing => (None, None),
        RemoteState::Deleted(r) => {
            if r >= d.timestamp {
                return out; // deleted after our write: their tombstone wins
            }
            (None, Some(r))
        }
        RemoteState::Present { data, newest } => (Some(data), Some(newest)),
    };
    if remote_data.is_none_or(|r| r < d.timestamp) {
        out.push(Push::Put);
    }
    if let Some(m) = &local.meta {
        let after_put = if out.contains(&Push::Put) {
            Some(d.timestamp)
        } else {
            remote_newest
        };
        if after_put.is_none_or(|r| r < m.timestamp) {
            out.push(Push::Post);
        }
    }
    out
}

impl ObjectReplicator {
    pub fn new(conf: DaemonConf) -> Result<ObjectReplicator, String> {
        let rate: f64 = conf
            .section
            .parse_or("max_objects_per_second", 0.0)
            .map_err(|e| e.to_string())?;
        let use_ssync = conf.section.str_or("sync_method", "rsync").trim() == "ssync";
        Ok(ObjectReplicator {
            use_ssync,
            http: conf.http(),
            conf,
            stats: Stats::default(),
            limiter: Mutex::new(RateLimiter::new(rate)),
        })
    }

    /// One replication pass over every policy and local device.
    pub async fn run_pass(self: &Arc<Self>) {
        let start = Instant::now();
        let started_at = super::now_f64();
        let s = &self.stats;
        for c in [
            &s.attempted,
            &s.success,
            &s.failure,
            &s.hashmatch,
            &s.remove,
            &s.rsync,
            &s.suffix_count,
            &s.suffix_hash,
            &s.suffix_sync,
            &s.objects_pushed,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let sem = Arc::new(Semaphore::new(self.conf.concurrency));
        let mut jobs = tokio::task::JoinSet::new();
        let policies: Vec<Policy> = self
            .conf
            .policies
            .iter()
            .filter(|p| p.is_replication())
            .cloned()
            .collect();
        for policy in policies {
            let ring = match self.conf.load_ring(&policy.ring_name()) {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    tracing::error!(policy = policy.index, error = %e, "cannot load object ring; skipping policy");
                    continue;
                }
            };
            let policy = Arc::new(policy);
            for dev in super::local_devices(&ring, &self.conf.bind_ip, self.conf.bind_port) {
                let crate::common::DeviceState::Ok(dev_path) =
                    self.conf.devices.device_path(&dev.device)
                else {
                    tracing::warn!(device = %dev.device, "skipping unmounted device");
                    continue;
                };
                remove_stale_temp_files(&dev_path.join(policy.dir("tmp")), STALE_TEMP_AGE);
                let objects = dev_path.join(policy.dir("objects"));
                let Ok(rd) = std::fs::read_dir(&objects) else {
                    continue;
                };
                let mut parts: Vec<(u32, PathBuf)> = rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                        Some((n, e.path()))
                    })
                    .collect();
                parts.sort();
                for (part, part_dir) in parts {
                    // Take the permit before spawning and reap finished jobs as we go, so
                    // a device with 2^18 partitions never has more than `concurrency`
                    // tasks in memory.
                    let permit = sem
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("semaphore never closed");
                    while jobs.try_join_next().is_some() {}
                    let me = self.clone();
                    let (ring, policy, dev) = (ring.clone(), policy.clone(), dev.clone());
                    jobs.spawn(async move {
                        let _permit = permit;
                        me.replicate_partition(&ring, &policy, &dev, part, &part_dir)
                            .await;
                    });
                }
            }
        }
        while jobs.join_next().await.is_some() {}
        let elapsed_min = start.elapsed().as_secs_f64() / 60.0;
        let now = super::now_f64();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let stats = json!({
            "attempted": g(&s.attempted), "success": g(&s.success), "failure": g(&s.failure),
            "hashmatch": g(&s.hashmatch), "remove": g(&s.remove), "rsync": g(&s.rsync),
            "suffix_count": g(&s.suffix_count), "suffix_hash": g(&s.suffix_hash),
            "suffix_sync": g(&s.suffix_sync), "objects_pushed": g(&s.objects_pushed),
            "start": started_at,
        });
        tracing::info!(target: "object-replicator", elapsed_min, stats = %stats, "replication pass completed");
        let mut m = Map::new();
        m.insert("replication_stats".into(), stats);
        m.insert("replication_time".into(), json!(elapsed_min));
        m.insert("replication_last".into(), json!(now));
        m.insert("object_replication_time".into(), json!(elapsed_min));
        m.insert("object_replication_last".into(), json!(now));
        super::dump_recon_cache(&self.conf.recon_cache_path, "object", m);
    }

    async fn replicate_partition(
        &self,
        ring: &Ring,
        policy: &Policy,
        dev: &Device,
        part: u32,
        part_dir: &Path,
    ) {
        inc(&self.stats.attempted, 1);
        let primaries: Vec<Device> = ring.get_part_nodes(part).iter().cloned().collect();
        let is_primary = primaries.iter().any(|p| p.id == dev.id);
        let pd = part_dir.to_path_buf();
        let local = match tokio::task::spawn_blocking({
            let me_reclaim = self.conf.reclaim_before();
            move || hashes::get_hashes(&pd, &[], Some(me_reclaim))
        })
        .await
        {
            Ok(Ok(h)) => h,
            other => {
                tracing::error!(part, device = %dev.device, result = ?other.err(), "cannot hash partition");
                inc(&self.stats.failure, 1);
                return;
            }
        };
        inc(&self.stats.suffix_count, local.len() as u64);
        if is_primary {
            // Other primaries; a handoff stands in for each unreachable one.
            let mut handoffs = ring
                .get_more_nodes(part)
                .filter(|d| d.id != dev.id)
                .cloned()
                .collect::<Vec<_>>()
                .into_iter();
            let mut queue: Vec<Device> = primaries
                .iter()
                .filter(|p| p.id != dev.id)
                .cloned()
                .collect();
            let mut i = 0;
            let mut all_ok = true;
            while i < queue.len() {
                let node = queue[i].clone();
                i += 1;
                match self
                    .sync_partition(policy, &node, part, part_dir, &local)
                    .await
                {
                    Ok(()) => {}
                    Err(SyncError::Unreachable(e)) => {
                        tracing::warn!(part, node = %node.describe(), error = %e, "primary unreachable; using a handoff");
                        all_ok = false;
                        if let Some(h) = handoffs.next() {
                            queue.push(h);
                        }
                    }
                    Err(SyncError::Failed(e)) => {
                        tracing::warn!(part, node = %node.describe(), error = %e, "partition sync failed");
                        all_ok = false;
                    }
                }
            }
            inc(
                if all_ok {
                    &self.stats.success
                } else {
                    &self.stats.failure
                },
                1,
            );
        } else {
            let mut all_ok = !primaries.is_empty();
            for node in &primaries {
                if let Err(e) = self
                    .sync_partition(policy, node, part, part_dir, &local)
                    .await
                {
                    tracing::warn!(part, node = %node.describe(), error = ?e, "handoff revert failed; keeping the local copy");
                    all_ok = false;
                }
            }
            if !all_ok {
                inc(&self.stats.failure, 1);
                return;
            }
            // Remove only what every primary confirmed: if the partition changed while we
            // pushed (a new write landed here), keep it for the next pass.
            let pd = part_dir.to_path_buf();
            let reclaim = self.conf.reclaim_before();
            let removed = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
                let now = hashes::get_hashes(&pd, &[], Some(reclaim))?;
                if now != local {
                    return Ok(false);
                }
                std::fs::remove_dir_all(&pd)?;
                Ok(true)
            })
            .await;
            match removed {
                Ok(Ok(true)) => {
                    inc(&self.stats.remove, 1);
                    inc(&self.stats.success, 1);
                    tracing::info!(part, device = %dev.device, "handoff partition reverted and removed");
                }
                Ok(Ok(false)) => inc(&self.stats.success, 1),
                other => {
                    tracing::warn!(part, result = ?other, "cannot remove reverted partition");
                    inc(&self.stats.failure, 1);
                }
            }
        }
    }

    async fn sync_partition(
        &self,
        policy: &Policy,
        node: &Device,
        part: u32,
        part_dir: &Path,
        local: &BTreeMap<String, String>,
    ) -> Result<(), SyncError> {
        let base = format!("{}/{}/{part}", node_base(node), quote(&node.device));
        let resp = self
            .http
            .request(
                reqwest::Method::from_bytes(b"REPLICATE").expect("static method"),
                &base,
            )
            .header("X-Backend-Storage-Policy-Index", policy.index.to_string())
            .send()
            .await
            .map_err(|e| SyncError::Unreachable(e.to_string()))?;
        if resp.status().as_u16() == 507 {
            return Err(SyncError::Unreachable(format!(
                "{} is unmounted (507)",
                node.device
            )));
        }
        if !resp.status().is_success() {
            return Err(SyncError::Failed(format!(
                "REPLICATE answered {}",
                resp.status()
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| SyncError::Unreachable(e.to_string()))?;
        let remote = parse_remote_hashes(&body).map_err(SyncError::Failed)?;
        inc(&self.stats.suffix_hash, 1);
        let differing = suffixes_to_sync(local, &remote);
        if differing.is_empty() {
            inc(&self.stats.hashmatch, 1);
            return Ok(());
        }
        inc(&self.stats.rsync, 1);
        inc(&self.stats.suffix_sync, differing.len() as u64);
        let mut failed = None;
        if self.use_ssync {
            let source = super::ssync_sender::SyncSource {
                part_dir: part_dir.to_path_buf(),
                partition: part,
                policy_index: policy.index,
                frag_index: None,
                suffixes: differing.clone(),
                send_data: true,
                include_non_durable: false,
            };
            let timeouts = super::ssync_sender::Timeouts {
                connect: self.conf.conn_timeout,
                io: self
                    .conf
                    .node_timeout
                    .max(std::time::Duration::from_secs(60)),
            };
            match super::ssync_sender::ssync(&source, node, None, &timeouts).await {
                Ok(outcome) => inc(&self.stats.objects_pushed, outcome.sent as u64),
                Err(e) => {
                    tracing::warn!(part, node = %node.describe(), error = %e, "ssync failed");
                    failed = Some(e);
                }
            }
        }
        for sfx in differing.iter().filter(|_| !self.use_ssync) {
            let sdir = part_dir.join(sfx);
            let Ok(rd) = std::fs::read_dir(&sdir) else {
                continue;
            };
            let mut dirs: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for hash_dir in dirs {
                if let Err(e) = self.sync_object(policy, node, part, &hash_dir).await {
                    tracing::warn!(object = %hash_dir.display(), node = %node.describe(), error = %e, "object push failed");
                    failed = Some(e);
                }
            }
        }
        // Ask the remote to rehash what we touched, so its next REPLICATE answer is fresh.
        let url = format!("{base}/{}", differing.join("-"));
        let _ = self
            .http
            .request(
                reqwest::Method::from_bytes(b"REPLICATE").expect("static method"),
                &url,
            )
            .header("X-Backend-Storage-Policy-Index", policy.index.to_string())
            .send()
            .await;
        match failed {
            None => Ok(()),
            Some(e) => Err(SyncError::Failed(e)),
        }
    }

    async fn sync_object(
        &self,
        policy: &Policy,
        node: &Device,
        part: u32,
        hash_dir: &Path,
    ) -> Result<(), String> {
        let st = OnDiskState::read_dir(hash_dir).map_err(|e| e.to_string())?;
        let Some(newest) = st.data.as_ref().or(st.tombstone.as_ref()) else {
            return Ok(());
        };
        let file_path = hash_dir.join(&newest.name);
        let meta = {
            let f = std::fs::File::open(&file_path)
                .map_err(|e| format!("{}: {e}", file_path.display()))?;
            diskfile::read_metadata(&f, &file_path).map_err(|e| e.to_string())?
        };
        let Some(name) = meta.get("name").cloned() else {
            return Err(format!("{}: no name in metadata", file_path.display()));
        };
        let url = format!(
            "{}/{}/{part}{}",
            node_base(node),
            quote(&node.device),
            quote(&name)
        );
        let pidx = policy.index.to_string();
        let head = self
            .http
            .head(&url)
            .header("X-Backend-Storage-Policy-Index", &pidx)
            .header("X-Backend-Replication", "True")
            .header("X-Backend-Open-Expired", "true")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ts = |k: &str| {
            head.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Timestamp::parse(v).ok())
        };
        let remote = match head.status().as_u16() {
            200 => RemoteState::Present {
                data: ts("x-backend-data-timestamp")
                    .or(ts("x-timestamp"))
                    .unwrap_or(Timestamp::ZERO),
                newest: ts("x-backend-timestamp")
                    .or(ts("x-timestamp"))
                    .unwrap_or(Timestamp::ZERO),
            },
            404 => ts("x-backend-timestamp")
                .map(RemoteState::Deleted)
                .unwrap_or(RemoteState::Missing),
            s => return Err(format!("HEAD answered {s}")),
        };
        for step in plan(&st, remote) {
            self.limiter.lock().await.wait(1).await;
            let resp = match step {
                Push::Delete => {
                    let t = st
                        .tombstone
                        .as_ref()
                        .expect("plan deletes only with a tombstone");
                    self.http
                        .delete(&url)
                        .header("X-Timestamp", t.timestamp.internal())
                        .header("X-Backend-Storage-Policy-Index", &pidx)
                        .header("X-Backend-Replication", "True")
                        .send()
                        .await
                }
                Push::Put => {
                    let d = st.data.as_ref().expect("plan puts only with data");
                    let f = tokio::fs::File::open(hash_dir.join(&d.name))
                        .await
                        .map_err(|e| e.to_string())?;
                    let len = f.metadata().await.map_err(|e| e.to_string())?.len();
                    let mut req = self
                        .http
                        .put(&url)
                        .timeout(
                            self.conf
                                .node_timeout
                                .max(std::time::Duration::from_secs(1))
                                * 6,
                        )
                        .header("X-Timestamp", d.timestamp.internal())
                        .header("Content-Length", len.to_string())
                        .header("X-Backend-Storage-Policy-Index", &pidx)
                        .header("X-Backend-Replication", "True");
                    for (k, v) in &meta {
                        let l = k.to_ascii_lowercase();
                        if matches!(l.as_str(), "name" | "content-length" | "x-timestamp") {
                            continue;
                        }
                        req = req.header(k.as_str(), v.as_str());
                    }
                    req.body(reqwest::Body::from(f)).send().await
                }
                Push::Post => {
                    let m = st.meta.as_ref().expect("plan posts only with a .meta");
                    let mp = hash_dir.join(&m.name);
                    let mmeta = {
                        let f = std::fs::File::open(&mp).map_err(|e| e.to_string())?;
                        diskfile::read_metadata(&f, &mp).map_err(|e| e.to_string())?
                    };
                    let mut req = self
                        .http
                        .post(&url)
                        .header("X-Timestamp", m.timestamp.internal())
                        .header("X-Backend-Storage-Policy-Index", &pidx)
                        .header("X-Backend-Replication", "True");
                    for (k, v) in &mmeta {
                        let l = k.to_ascii_lowercase();
                        if matches!(
                            l.as_str(),
                            "name" | "x-timestamp" | "content-type-timestamp"
                        ) {
                            continue;
                        }
                        req = req.header(k.as_str(), v.as_str());
                    }
                    req.send().await
                }
            };
            let resp = resp.map_err(|e| e.to_string())?;
            // 409: the remote already has this or something newer; 404 on DELETE: the
            // tombstone was written where nothing was.
            let code = resp.status().as_u16();
            let ok =
                resp.status().is_success() || code == 409 || (step == Push::Delete && code == 404);
            if !ok {
                return Err(format!("{step:?} answered {code}"));
            }
            inc(&self.stats.objects_pushed, 1);
        }
        Ok(())
    }
}

#[derive(Debug)]
enum SyncError {
    /// The node did not answer (or its device is unmounted): try a handoff.
    Unreachable(String),
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn only_local_suffixes_that_differ_are_synced() {
        let local = map(&[("abc", "1"), ("def", "2"), ("fff", "3")]);
        let remote = map(&[("abc", "1"), ("def", "x"), ("000", "9")]);
        assert_eq!(suffixes_to_sync(&local, &remote), vec!["def", "fff"]);
        assert!(suffixes_to_sync(&local, &local).is_empty());
    }

    #[test]
    fn remote_hashes_parse_from_pickles() {
        let mut h = BTreeMap::new();
        h.insert(
            "ff8".to_string(),
            "8959681ba92ba4904e94eed1d27ee58d".to_string(),
        );
        let parsed = parse_remote_hashes(&hashes::pickle_hashes(&h)).unwrap();
        assert_eq!(parsed, h);
        assert!(
            parse_remote_hashes(&ringsmith::pickle::dumps(&ringsmith::pickle::Value::None))
                .unwrap()
                .is_empty()
        );
        assert!(parse_remote_hashes(b"garbage").is_err());
    }

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn plan_never_pushes_older_state() {
        let data = OnDiskState::from_names(["0000000002.00000.data"]);
        assert_eq!(plan(&data, RemoteState::Missing), vec![Push::Put]);
        assert_eq!(plan(&data, RemoteState::Deleted(t("1"))), vec![Push::Put]);
        assert!(plan(&data, RemoteState::Deleted(t("3"))).is_empty());
        assert!(plan(
            &data,
            RemoteState::Present {
                data: t("2"),
                newest: t("2")
            }
        )
        .is_empty());
        assert_eq!(
            plan(
                &data,
                RemoteState::Present {
                    data: t("1"),
                    newest: t("1")
                }
            ),
            vec![Push::Put]
        );

        let with_meta = OnDiskState::from_names(["0000000002.00000.data", "0000000004.00000.meta"]);
        assert_eq!(
            plan(&with_meta, RemoteState::Missing),
            vec![Push::Put, Push::Post]
        );
        assert_eq!(
            plan(
                &with_meta,
                RemoteState::Present {
                    data: t("2"),
                    newest: t("2")
                }
            ),
            vec![Push::Post]
        );
        assert!(plan(
            &with_meta,
            RemoteState::Present {
                data: t("2"),
                newest: t("4")
            }
        )
        .is_empty());

        let ts = OnDiskState::from_names(["0000000005.00000.ts"]);
        assert_eq!(plan(&ts, RemoteState::Missing), vec![Push::Delete]);
        assert_eq!(
            plan(
                &ts,
                RemoteState::Present {
                    data: t("2"),
                    newest: t("4")
                }
            ),
            vec![Push::Delete]
        );
        assert!(plan(
            &ts,
            RemoteState::Present {
                data: t("6"),
                newest: t("6")
            }
        )
        .is_empty());
        assert!(plan(&ts, RemoteState::Deleted(t("5"))).is_empty());
    }
}

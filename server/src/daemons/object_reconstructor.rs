//! The object reconstructor: rebuilds missing fragment archives of erasure-coded
//! policies, by PULLING (a deliberate difference, docs/differences.md: Swift's
//! reconstructor pushes to its partners with SSYNC; a replaced, empty disk has nothing
//! to push, so here each node rebuilds its own fragments).
//!
//! For every partition of an EC ring where a local device is a primary (whether or not
//! the partition directory exists: a wiped disk has none), its fragment index is its
//! position among the primaries mod k+m. The other primaries' `REPLICATE` suffix
//! hashes are compared with ours on the durable entry (`None`); for each differing
//! suffix a partner lists its hash directories (`X-Ringsmith-List-Suffix`). An object
//! a partner holds durably at a timestamp newer than our durable data is rebuilt: k
//! other archives of that timestamp are fetched (fragment preferences), each segment's
//! fragment is reconstructed with `ringsmith-ec` (header included), and the archive is
//! stored through our own object server as a footer PUT, durable, with the source's
//! metadata and our fragment index. A partner's tombstone newer than our data is
//! replayed as a backend DELETE.
//!
//! Pushes use SSYNC (`reconstructor_revert`): handoff partitions revert to their
//! primaries, and tombstones and `.meta` files go to partners whose suffixes differ.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};
use ringsmith::device::Device;
use ringsmith_ec::{Codec, FragmentHeader, HEADER_LEN};
use serde_json::{json, Map, Value};

use super::reconstructor_revert::revert_partition;
use super::ssync_sender::{ssync, SyncSource, Timeouts};
use super::{node_base, quote, DaemonConf};
use crate::common::Timestamp;
use crate::object::diskfile::stale_temp::{remove_stale_temp_files, STALE_TEMP_AGE};
use crate::object::diskfile::{ec, ec_hashes};
use ringsmith::swift::policy::{Policy, PolicyType};

#[derive(Default)]
struct Stats {
    partitions: AtomicU64,
    rebuilt: AtomicU64,
    deleted: AtomicU64,
    reverted: AtomicU64,
    pushed: AtomicU64,
    failures: AtomicU64,
}

pub struct ObjectReconstructor {
    conf: DaemonConf,
    http: reqwest::Client,
    stats: Stats,
}

/// Per suffix, the durable entry (`None` key) of an EC `REPLICATE` answer.
fn durable_entries(body: &[u8]) -> Result<BTreeMap<String, Option<String>>, String> {
    use ringsmith::pickle::Value as P;
    let v = ringsmith::pickle::loads(body).map_err(|e| format!("bad REPLICATE pickle: {e}"))?;
    let mut out = BTreeMap::new();
    if let P::Dict(items) = v.deref_shared() {
        for (k, per_frag) in items {
            let Some(suffix) = k.as_str() else { continue };
            let durable = match per_frag {
                P::Dict(e) => e
                    .iter()
                    .find(|(k, _)| matches!(k, P::None))
                    .and_then(|(_, v)| v.as_str().map(str::to_string)),
                _ => None,
            };
            out.insert(suffix.to_string(), durable);
        }
    }
    Ok(out)
}

/// Newest durable fragment timestamp and newest tombstone among a hash dir's files.
fn summarize(files: &[String]) -> (Option<Timestamp>, Option<Timestamp>) {
    let mut durable = None;
    let mut tomb = None;
    for f in files {
        if let Some((ts, _, true)) = ec::parse_fragment_name(f) {
            durable = durable.max(Some(ts));
        } else if let Some(t) = f.strip_suffix(".ts") {
            if let Ok(ts) = Timestamp::parse(t) {
                tomb = tomb.max(Some(ts));
            }
        }
    }
    (durable, tomb)
}

/// Splits a fragment archive into its per-segment fragments (each header says its size).
fn split_archive(mut archive: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !archive.is_empty() {
        let h = FragmentHeader::parse(archive).map_err(|e| format!("bad fragment: {e:?}"))?;
        let len = HEADER_LEN + h.size as usize;
        if len > archive.len() {
            return Err("truncated fragment archive".into());
        }
        out.push(&archive[..len]);
        archive = &archive[len..];
    }
    Ok(out)
}

struct Source {
    archive: Vec<u8>,
    headers: reqwest::header::HeaderMap,
}

impl ObjectReconstructor {
    pub fn new(conf: DaemonConf) -> Result<ObjectReconstructor, String> {
        Ok(ObjectReconstructor {
            http: conf.http(),
            conf,
            stats: Stats::default(),
        })
    }

    pub async fn run_pass(&self) {
        let start = std::time::Instant::now();
        for c in [
            &self.stats.partitions,
            &self.stats.rebuilt,
            &self.stats.deleted,
            &self.stats.reverted,
            &self.stats.pushed,
            &self.stats.failures,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        let policies: Vec<Policy> = self
            .conf
            .policies
            .iter()
            .filter(|p| !p.is_replication())
            .cloned()
            .collect();
        for policy in policies {
            let PolicyType::ErasureCoding(params) = &policy.policy_type else {
                continue;
            };
            let codec = match Codec::new(
                &params.ec_type,
                params.ndata as usize,
                params.nparity as usize,
            ) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(policy = policy.index, error = %e, "unusable EC policy; skipping");
                    continue;
                }
            };
            let ring = match self.conf.load_ring(&policy.ring_name()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(policy = policy.index, error = %e, "cannot load object ring; skipping policy");
                    continue;
                }
            };
            let width = (params.ndata + params.nparity) as usize;
            for dev in super::local_devices(&ring, &self.conf.bind_ip, self.conf.bind_port) {
                let crate::common::DeviceState::Ok(dev_path) =
                    self.conf.devices.device_path(&dev.device)
                else {
                    tracing::warn!(device = %dev.device, "skipping unmounted device");
                    continue;
                };
                remove_stale_temp_files(&dev_path.join(policy.dir("tmp")), STALE_TEMP_AGE);
                self.revert_handoffs(&policy, width, &dev, &ring).await;
                for part in 0..ring.partition_count() as u32 {
                    let primaries: Vec<Device> =
                        ring.get_part_nodes(part).iter().cloned().collect();
                    let Some(pos) = primaries.iter().position(|p| p.id == dev.id) else {
                        continue;
                    };
                    self.stats.partitions.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self
                        .reconstruct_partition(
                            &policy,
                            &codec,
                            &dev,
                            part,
                            (pos % width, width),
                            &primaries,
                        )
                        .await
                    {
                        tracing::warn!(part, device = %dev.device, error = %e, "partition not reconstructed");
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let stats = json!({
            "partitions": g(&self.stats.partitions), "rebuilt": g(&self.stats.rebuilt),
            "deleted": g(&self.stats.deleted), "reverted": g(&self.stats.reverted),
            "pushed": g(&self.stats.pushed), "failures": g(&self.stats.failures),
        });
        let elapsed_min = start.elapsed().as_secs_f64() / 60.0;
        tracing::info!(target: "object-reconstructor", elapsed_min, stats = %stats, "reconstruction pass completed");
        let mut m = Map::new();
        m.insert("object_reconstruction_time".into(), json!(elapsed_min));
        m.insert("object_reconstruction_last".into(), json!(super::now_f64()));
        m.insert("object_reconstruction_stats".into(), stats);
        super::dump_recon_cache(&self.conf.recon_cache_path, "object", m);
    }

    fn ssync_timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.conf.conn_timeout,
            io: self
                .conf
                .node_timeout
                .max(std::time::Duration::from_secs(60)),
        }
    }

    /// Swift's revert jobs: every local partition of `dev` where it is not a primary.
    async fn revert_handoffs(
        &self,
        policy: &Policy,
        width: usize,
        dev: &Device,
        ring: &ringsmith::ring::Ring,
    ) {
        let crate::common::DeviceState::Ok(dev_path) = self.conf.devices.device_path(&dev.device)
        else {
            return;
        };
        let objects = dev_path.join(policy.dir("objects"));
        let parts: Vec<u32> = std::fs::read_dir(&objects)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
            .filter(|p| (*p as usize) < ring.partition_count())
            .collect();
        for part in parts {
            let primaries: Vec<Device> = ring.get_part_nodes(part).iter().cloned().collect();
            if primaries.iter().any(|p| p.id == dev.id) {
                continue;
            }
            let counts = revert_partition(
                &objects.join(part.to_string()),
                part,
                policy.index,
                width,
                &primaries,
                &self.ssync_timeouts(),
            )
            .await;
            self.stats
                .reverted
                .fetch_add(counts.reverted, Ordering::Relaxed);
            self.stats
                .failures
                .fetch_add(counts.failures, Ordering::Relaxed);
        }
    }

    async fn reconstruct_partition(
        &self,
        policy: &Policy,
        codec: &Codec,
        dev: &Device,
        part: u32,
        (my_index, width): (usize, usize),
        primaries: &[Device],
    ) -> Result<(), String> {
        let dev_path = match self.conf.devices.device_path(&dev.device) {
            crate::common::DeviceState::Ok(p) => p,
            _ => return Err("device unmounted".into()),
        };
        let part_dir = dev_path.join(policy.dir("objects")).join(part.to_string());
        let reclaim = self.conf.reclaim_before();
        let pd = part_dir.clone();
        let local =
            tokio::task::spawn_blocking(move || ec_hashes::ec_partition_hashes(&pd, Some(reclaim)))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let partners: Vec<&Device> = primaries.iter().filter(|p| p.id != dev.id).collect();
        let pidx = policy.index.to_string();
        // Suffixes whose durable entry differs from some partner's.
        let mut suffixes = BTreeSet::new();
        let mut differing: Vec<(&Device, Vec<String>)> = Vec::new();
        for node in &partners {
            let url = format!("{}/{}/{part}", node_base(node), quote(&node.device));
            let resp = self
                .http
                .request(
                    reqwest::Method::from_bytes(b"REPLICATE").expect("valid method"),
                    &url,
                )
                .header("x-backend-storage-policy-index", &pidx)
                .send()
                .await;
            let Ok(resp) = resp.and_then(|r| r.error_for_status()) else {
                continue; // unreachable partner: the others still count
            };
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            let theirs = durable_entries(&body)?;
            let mut node_differs = Vec::new();
            for (suffix, durable) in &theirs {
                let ours = local.get(suffix).and_then(|e| e.get(&None));
                if ours != durable.as_ref() {
                    suffixes.insert(suffix.clone());
                    node_differs.push(suffix.clone());
                }
            }
            // Suffixes only we hold: the partner may lack a tombstone or `.meta` of ours.
            for suffix in local.keys() {
                if !theirs.contains_key(suffix) {
                    node_differs.push(suffix.clone());
                }
            }
            differing.push((node, node_differs));
        }
        for suffix in suffixes {
            // Union of the partners' listings: hash -> (name, newest durable, newest tombstone).
            let mut remote: BTreeMap<String, (String, Option<Timestamp>, Option<Timestamp>)> =
                BTreeMap::new();
            for node in &partners {
                let url = format!(
                    "{}/{}/{part}/{suffix}",
                    node_base(node),
                    quote(&node.device)
                );
                let resp = self
                    .http
                    .request(
                        reqwest::Method::from_bytes(b"REPLICATE").expect("valid method"),
                        &url,
                    )
                    .header("x-backend-storage-policy-index", &pidx)
                    .header("x-ringsmith-list-suffix", "yes")
                    .send()
                    .await;
                let Ok(resp) = resp.and_then(|r| r.error_for_status()) else {
                    continue;
                };
                // Swift's object servers do not answer the listing form: skipped (the
                // push to them still runs).
                let Ok(listing) = resp.json::<Value>().await else {
                    continue;
                };
                for (hash, entry) in listing.as_object().into_iter().flatten() {
                    let name = entry["name"].as_str().unwrap_or_default().to_string();
                    let files: Vec<String> = entry["files"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect();
                    let (d, t) = summarize(&files);
                    let e = remote.entry(hash.clone()).or_insert((name, None, None));
                    e.1 = e.1.max(d);
                    e.2 = e.2.max(t);
                }
            }
            for (hash, (name, durable, tomb)) in remote {
                let local_files: Vec<String> =
                    std::fs::read_dir(part_dir.join(&suffix).join(&hash))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                let (our_durable, our_tomb) = summarize(&local_files);
                let ours = our_durable.max(our_tomb);
                let result = match (durable, tomb) {
                    (_, Some(t)) if durable.is_none_or(|d| t > d) && ours.is_none_or(|o| o < t) => {
                        self.delete_local(dev, part, &pidx, &name, t)
                            .await
                            .map(|()| &self.stats.deleted)
                    }
                    (Some(d), _) if tomb.is_none_or(|t| d > t) && ours.is_none_or(|o| o < d) => {
                        self.rebuild(codec, dev, part, &pidx, &name, d, my_index, &partners)
                            .await
                            .map(|()| &self.stats.rebuilt)
                    }
                    _ => continue,
                };
                match result {
                    Ok(counter) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(part, object = %name, error = %e, "object not reconstructed");
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.push_to_partners(
            &part_dir,
            (part, policy.index),
            (my_index, width),
            primaries,
            differing,
        )
        .await;
        Ok(())
    }

    /// Pushes our tombstones and `.meta` updates in the differing suffixes to each
    /// partner, so a DELETE or POST a partner missed converges (see
    /// `reconstructor_revert` for the revert of handoffs).
    async fn push_to_partners(
        &self,
        part_dir: &std::path::Path,
        (part, policy_index): (u32, u32),
        (my_index, width): (usize, usize),
        primaries: &[Device],
        differing: Vec<(&Device, Vec<String>)>,
    ) {
        if !part_dir.is_dir() {
            return;
        }
        for (node, suffixes) in differing {
            let Some(pos) = primaries.iter().position(|p| p.id == node.id) else {
                continue;
            };
            if suffixes.is_empty() {
                continue;
            }
            let source = SyncSource {
                part_dir: part_dir.to_path_buf(),
                partition: part,
                policy_index,
                frag_index: Some(my_index as u32),
                suffixes,
                send_data: false,
                include_non_durable: false,
            };
            let partner_index = (pos % width) as u32;
            match ssync(&source, node, Some(partner_index), &self.ssync_timeouts()).await {
                Ok(outcome) => {
                    self.stats
                        .pushed
                        .fetch_add(outcome.sent as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(part, node = %node.device, error = %e, "ssync to partner failed");
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn object_url(node: &Device, part: u32, name: &str) -> String {
        let path: String = name.split('/').map(quote).collect::<Vec<_>>().join("/");
        format!("{}/{}/{part}{path}", node_base(node), quote(&node.device))
    }

    async fn delete_local(
        &self,
        dev: &Device,
        part: u32,
        pidx: &str,
        name: &str,
        ts: Timestamp,
    ) -> Result<(), String> {
        let resp = self
            .http
            .delete(Self::object_url(dev, part, name))
            .header("x-timestamp", ts.to_string())
            .header("x-backend-storage-policy-index", pidx)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            204 | 404 | 409 => Ok(()),
            s => Err(format!("local DELETE answered {s}")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn rebuild(
        &self,
        codec: &Codec,
        dev: &Device,
        part: u32,
        pidx: &str,
        name: &str,
        ts: Timestamp,
        my_index: usize,
        partners: &[&Device],
    ) -> Result<(), String> {
        let prefs = json!([{"timestamp": ts.to_string(), "exclude": [my_index]}]).to_string();
        let mut sources: Vec<Source> = Vec::new();
        let mut seen = BTreeSet::new();
        for node in partners {
            if sources.len() == codec.k() {
                break;
            }
            let resp = self
                .http
                .get(Self::object_url(node, part, name))
                .header("x-backend-storage-policy-index", pidx)
                .header("x-backend-fragment-preferences", &prefs)
                .send()
                .await;
            let Ok(resp) = resp else { continue };
            if !resp.status().is_success() {
                continue;
            }
            let headers = resp.headers().clone();
            let same_ts = headers
                .get("x-backend-data-timestamp")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Timestamp::parse(v).ok())
                == Some(ts);
            let index = headers
                .get("x-object-sysmeta-ec-frag-index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if index
                .filter(|i| same_ts && *i != my_index && seen.insert(*i))
                .is_none()
            {
                continue;
            };
            let archive = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
            sources.push(Source { archive, headers });
        }
        if sources.len() < codec.k() {
            return Err(format!(
                "only {} of {} fragments found",
                sources.len(),
                codec.k()
            ));
        }
        let split: Vec<Vec<&[u8]>> = sources
            .iter()
            .map(|s| split_archive(&s.archive))
            .collect::<Result<_, _>>()?;
        let segments = split[0].len();
        if split.iter().any(|s| s.len() != segments) {
            return Err("source archives disagree on the segment count".into());
        }
        let mut archive = Vec::new();
        for seg in 0..segments {
            let frags: Vec<&[u8]> = split.iter().map(|s| s[seg]).collect();
            let f = codec
                .reconstruct(&frags, my_index)
                .map_err(|e| format!("reconstruct: {e:?}"))?;
            archive.extend_from_slice(&f);
        }
        self.store(
            dev,
            part,
            pidx,
            name,
            ts,
            my_index,
            &sources[0].headers,
            archive,
        )
        .await
    }

    /// Writes the rebuilt archive through our own object server: a footer-only MIME PUT
    /// (committed at once) with the source's metadata and our fragment index.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        dev: &Device,
        part: u32,
        pidx: &str,
        name: &str,
        ts: Timestamp,
        my_index: usize,
        src: &reqwest::header::HeaderMap,
        archive: Vec<u8>,
    ) -> Result<(), String> {
        let mut footer = Map::new();
        let mut req = self
            .http
            .put(Self::object_url(dev, part, name))
            .header("x-timestamp", ts.to_string())
            .header("x-backend-storage-policy-index", pidx)
            .header("x-backend-obj-metadata-footer", "yes")
            .header("x-backend-obj-multipart-mime-boundary", "ringsmith-rebuild");
        for (k, v) in src {
            let k = k.as_str();
            let Ok(v) = v.to_str() else { continue };
            if k.starts_with("x-object-sysmeta-ec-") {
                footer.insert(k.to_string(), json!(v));
            } else if k.starts_with("x-object-sysmeta-")
                || k.starts_with("x-object-meta-")
                || k == "content-type"
                || k == "content-encoding"
                || k == "content-disposition"
            {
                req = req.header(k, v);
            }
        }
        footer.insert(
            "X-Object-Sysmeta-Ec-Frag-Index".into(),
            json!(my_index.to_string()),
        );
        footer.retain(|k, _| k != "x-object-sysmeta-ec-frag-index");
        footer.insert("Etag".into(), json!(hex::encode(Md5::digest(&archive))));
        let archive_len = archive.len();
        let footer = Value::Object(footer).to_string();
        let mut body = b"--ringsmith-rebuild\r\nX-Document: object body\r\n\r\n".to_vec();
        body.extend_from_slice(&archive);
        body.extend_from_slice(
            format!(
                "\r\n--ringsmith-rebuild\r\nX-Document: object metadata\r\nContent-MD5: {}\r\n\r\n{footer}\r\n--ringsmith-rebuild--",
                hex::encode(Md5::digest(footer.as_bytes()))
            )
            .as_bytes(),
        );
        // Chunked, as Swift's proxy sends it: the archive's own length goes in
        // X-Backend-Obj-Content-Length (a Content-Length would count the MIME document).
        let chunk: Result<Vec<u8>, std::io::Error> = Ok(body);
        let resp = req
            .header("x-backend-obj-content-length", archive_len.to_string())
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter([
                chunk,
            ])))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            201 => Ok(()),
            s => Err(format!("local PUT answered {s}")),
        }
    }
}

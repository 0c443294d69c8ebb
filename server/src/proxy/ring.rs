//! The rings as the proxy sees them: placement lookups plus reload-on-change.
//!
//! A proxy must answer "which devices hold this name" on every request, and an operator
//! must be able to push a rebalanced `ring.gz` without restarting it. So each ring sits
//! behind an [`RingSlot`]: lookups take a cheap `Arc` snapshot, and at most once per
//! `reload_interval` the slot `stat`s its file and, if the mtime or size changed, parses
//! the new file and swaps the snapshot. A file that fails to parse (a half-copied ring, say)
//! keeps the old snapshot in service and is logged, so a bad push never takes the proxy down.
//!
//! Placement follows Swift's `Ring` exactly (primaries from the replica table, deduplicated;
//! handoffs from `get_more_nodes`' region → zone → ip → device sweeps), because the proxy
//! and Swift's own daemons must agree on where every replica and handoff lives.
//!
//! The file parser here reads Swift's v1 format (what `swift-ring-builder` 2.38 writes by
//! default) and v2; it is a private reader the proxy keeps so that it does not depend on
//! the layout of the core crate's ring module.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use ringsmith::hash::HashConfig;

/// One device of a ring, as much of it as routing needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: u32,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u16,
    pub device: String,
    /// Position among the primaries, or `None` for a handoff.
    pub index: Option<usize>,
}

impl Node {
    /// `ip:port/device`, the key error limiting and logs use.
    pub fn key(&self) -> String {
        format!("{}:{}/{}", self.ip, self.port, self.device)
    }
    pub fn host(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

/// A parsed ring file.
#[derive(Debug)]
pub struct Ring {
    devs: Vec<Option<Node>>,
    replica2part2dev: Vec<Vec<u32>>,
    part_shift: u32,
    num_regions: usize,
    num_zones: usize,
    num_ips: usize,
    num_assigned_devs: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("cannot read ring {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ring {path} is not a valid ring file: {message}")]
    Format { path: PathBuf, message: String },
}

impl Ring {
    pub fn load(path: &Path) -> Result<Ring, RingError> {
        let file = std::fs::File::open(path).map_err(|source| RingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut raw)
            .map_err(|source| RingError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ring::parse(&raw).map_err(|message| RingError::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the decompressed bytes of a `ring.gz`.
    pub fn parse(raw: &[u8]) -> Result<Ring, String> {
        if raw.len() < 6 || &raw[..4] != b"R1NG" {
            return Err("bad magic (expected R1NG)".into());
        }
        match u16::from_be_bytes([raw[4], raw[5]]) {
            1 => Self::parse_v1(&raw[6..]),
            2 => Self::parse_v2(&raw[6..]),
            v => Err(format!("unsupported ring format version {v}")),
        }
    }

    fn parse_v1(rest: &[u8]) -> Result<Ring, String> {
        let (meta, mut rest) = read_blob(rest)?;
        let meta: serde_json::Value =
            serde_json::from_slice(meta).map_err(|e| format!("bad ring metadata: {e}"))?;
        let part_shift = meta["part_shift"].as_u64().ok_or("no part_shift")? as u32;
        let replicas = meta["replica_count"].as_u64().ok_or("no replica_count")? as usize;
        let little = meta["byteorder"].as_str().unwrap_or("little") == "little";
        let parts = 1usize << (32 - part_shift.min(32));
        let mut table = Vec::with_capacity(replicas);
        for _ in 0..replicas {
            let take = rest.len().min(2 * parts);
            table.push(decode_ids(&rest[..take], 2, little));
            rest = &rest[take..];
        }
        Self::build(&meta["devs"], table, part_shift)
    }

    fn parse_v2(rest: &[u8]) -> Result<Ring, String> {
        // v2: a sequence of named sections (`!Q`-length-prefixed name and body); the ones
        // we need are "swift/ring/metadata" (JSON), "swift/ring/devices" (JSON) and
        // "swift/ring/assignments" (id arrays of `dev_id_bytes`, replica after replica).
        let mut sections = std::collections::HashMap::new();
        let mut rest = rest;
        while rest.len() >= 8 {
            let (name, r) = read_blob_q(rest)?;
            if name.is_empty() {
                break;
            }
            let (body, r) = read_blob_q(r)?;
            sections.insert(String::from_utf8_lossy(name).into_owned(), body);
            rest = r;
        }
        let meta: serde_json::Value = serde_json::from_slice(
            sections
                .get("swift/ring/metadata")
                .ok_or("no swift/ring/metadata section")?,
        )
        .map_err(|e| format!("bad ring metadata: {e}"))?;
        let devs: serde_json::Value = serde_json::from_slice(
            sections
                .get("swift/ring/devices")
                .ok_or("no swift/ring/devices section")?,
        )
        .map_err(|e| format!("bad ring devices: {e}"))?;
        let part_shift = meta["part_shift"].as_u64().ok_or("no part_shift")? as u32;
        let width = meta["dev_id_bytes"].as_u64().unwrap_or(2) as usize;
        let little = meta["byteorder"].as_str().unwrap_or("little") == "little";
        let replicas = meta["replica_count"].as_f64().ok_or("no replica_count")?;
        let parts = 1usize << (32 - part_shift.min(32));
        let mut data: &[u8] = sections
            .get("swift/ring/assignments")
            .ok_or("no swift/ring/assignments section")?;
        let mut table = Vec::new();
        for _ in 0..(replicas.ceil() as usize) {
            let take = data.len().min(width * parts);
            table.push(decode_ids(&data[..take], width, little));
            data = &data[take..];
        }
        Self::build(&devs, table, part_shift)
    }

    fn build(
        devs_json: &serde_json::Value,
        table: Vec<Vec<u32>>,
        part_shift: u32,
    ) -> Result<Ring, String> {
        let mut devs = Vec::new();
        for d in devs_json.as_array().ok_or("devs is not a list")? {
            if d.is_null() {
                devs.push(None);
                continue;
            }
            let num = |k: &str| d[k].as_u64().ok_or_else(|| format!("device without {k}"));
            devs.push(Some(Node {
                id: num("id")? as u32,
                region: num("region").unwrap_or(1) as u32,
                zone: num("zone")? as u32,
                ip: d["ip"].as_str().ok_or("device without ip")?.to_string(),
                port: num("port")? as u16,
                device: d["device"]
                    .as_str()
                    .ok_or("device without name")?
                    .to_string(),
                index: None,
            }));
        }
        if table.is_empty() || table[0].is_empty() {
            return Err("empty replica table (was the ring rebalanced?)".into());
        }
        let mut assigned = HashSet::new();
        for row in &table {
            for &id in row {
                match devs.get(id as usize) {
                    Some(Some(_)) => {
                        assigned.insert(id);
                    }
                    _ => return Err(format!("replica table names missing device {id}")),
                }
            }
        }
        let (mut regions, mut zones, mut ips) = (HashSet::new(), HashSet::new(), HashSet::new());
        for id in &assigned {
            let d = devs[*id as usize].as_ref().expect("checked above");
            regions.insert(d.region);
            zones.insert((d.region, d.zone));
            ips.insert((d.region, d.zone, d.ip.clone()));
        }
        Ok(Ring {
            num_regions: regions.len(),
            num_zones: zones.len(),
            num_ips: ips.len(),
            num_assigned_devs: assigned.len(),
            devs,
            replica2part2dev: table,
            part_shift,
        })
    }

    pub fn partition_count(&self) -> usize {
        self.replica2part2dev[0].len()
    }

    pub fn replica_count(&self) -> usize {
        self.replica2part2dev.len()
    }

    pub fn devices(&self) -> impl Iterator<Item = &Node> {
        self.devs.iter().flatten()
    }

    pub fn get_part(&self, hash: &HashConfig, a: &str, c: Option<&str>, o: Option<&str>) -> usize {
        let raw = hash.hash_path_raw(a, c, o).unwrap_or([0; 16]);
        let top = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        (top.checked_shr(self.part_shift).unwrap_or(0)) as usize
    }

    fn dev(&self, id: u32) -> &Node {
        self.devs[id as usize].as_ref().expect("validated at load")
    }

    /// The primaries of a partition, deduplicated, with `index` set.
    pub fn part_nodes(&self, part: usize) -> Vec<Node> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for row in &self.replica2part2dev {
            if let Some(&id) = row.get(part) {
                if seen.insert(id) {
                    let mut n = self.dev(id).clone();
                    n.index = Some(out.len());
                    out.push(n);
                }
            }
        }
        out
    }

    /// Handoffs in Swift's `get_more_nodes` order: first devices in unused regions, then
    /// unused zones, then unused servers, then any unused device.
    pub fn more_nodes(&self, part: usize) -> Vec<Node> {
        let primaries = self.part_nodes(part);
        let mut used: HashSet<u32> = primaries.iter().map(|d| d.id).collect();
        let mut regions: HashSet<u32> = primaries.iter().map(|d| d.region).collect();
        let mut zones: HashSet<(u32, u32)> = primaries.iter().map(|d| (d.region, d.zone)).collect();
        let mut ips: HashSet<(u32, u32, String)> = primaries
            .iter()
            .map(|d| (d.region, d.zone, d.ip.clone()))
            .collect();
        let parts = self.partition_count();
        let digest = Md5::digest(part.to_string().as_bytes());
        let start = (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
            .checked_shr(self.part_shift)
            .unwrap_or(0)) as usize;
        let inc = (parts / 65536).max(1);
        // Python's `chain(range(start, parts, inc), range(inc - ((parts - start) % inc),
        // start, inc))`, whose second start is `inc` (not 0) when the remainder is 0.
        let order: Vec<usize> = (start..parts)
            .step_by(inc)
            .chain(((inc - (parts - start) % inc)..start).step_by(inc))
            .collect();
        let mut out = Vec::new();
        // The four sweeps differ only in which failure domain must be new.
        for level in 0..4 {
            let done = |used: &HashSet<u32>,
                        regions: &HashSet<u32>,
                        zones: &HashSet<(u32, u32)>,
                        ips: &HashSet<(u32, u32, String)>| match level {
                0 => regions.len() == self.num_regions,
                1 => zones.len() == self.num_zones,
                2 => ips.len() == self.num_ips,
                _ => used.len() == self.num_assigned_devs,
            };
            let mut finished = done(&used, &regions, &zones, &ips);
            for &hp in &order {
                if finished {
                    break;
                }
                for row in &self.replica2part2dev {
                    let Some(&id) = row.get(hp) else { continue };
                    let d = self.dev(id);
                    let fresh = !used.contains(&id)
                        && match level {
                            0 => !regions.contains(&d.region),
                            1 => !zones.contains(&(d.region, d.zone)),
                            2 => !ips.contains(&(d.region, d.zone, d.ip.clone())),
                            _ => true,
                        };
                    if fresh {
                        used.insert(id);
                        regions.insert(d.region);
                        zones.insert((d.region, d.zone));
                        ips.insert((d.region, d.zone, d.ip.clone()));
                        out.push(d.clone());
                        if done(&used, &regions, &zones, &ips) {
                            finished = true;
                            break;
                        }
                    }
                }
            }
        }
        out
    }
}

fn read_blob(data: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if data.len() < 4 {
        return Err("truncated length".into());
    }
    let n = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let body = data.get(4..4 + n).ok_or("truncated metadata")?;
    Ok((body, &data[4 + n..]))
}

fn read_blob_q(data: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if data.len() < 8 {
        return Err("truncated section length".into());
    }
    let n = u64::from_be_bytes(data[..8].try_into().expect("8 bytes")) as usize;
    let body = data
        .get(8..8usize.saturating_add(n))
        .ok_or("truncated section")?;
    Ok((body, &data[8 + n..]))
}

fn decode_ids(bytes: &[u8], width: usize, little: bool) -> Vec<u32> {
    bytes
        .chunks_exact(width)
        .map(|c| {
            let mut v: u32 = 0;
            if little {
                for (i, b) in c.iter().enumerate() {
                    v |= (*b as u32) << (8 * i);
                }
            } else {
                for b in c {
                    v = (v << 8) | *b as u32;
                }
            }
            v
        })
        .collect()
}

/// A ring file kept fresh: see the module docs.
pub struct RingSlot {
    path: PathBuf,
    reload_interval: Duration,
    state: Mutex<SlotState>,
}

struct SlotState {
    ring: Arc<Ring>,
    stamp: (Option<SystemTime>, u64),
    checked: Instant,
}

fn file_stamp(path: &Path) -> (Option<SystemTime>, u64) {
    match std::fs::metadata(path) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    }
}

impl RingSlot {
    pub fn open(path: PathBuf, reload_interval: Duration) -> Result<RingSlot, RingError> {
        let stamp = file_stamp(&path);
        let ring = Arc::new(Ring::load(&path)?);
        Ok(RingSlot {
            path,
            reload_interval,
            state: Mutex::new(SlotState {
                ring,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The current ring, reloading it first if the file changed.
    pub fn get(&self) -> Arc<Ring> {
        let mut st = self.state.lock().expect("ring slot lock");
        if st.checked.elapsed() >= self.reload_interval {
            st.checked = Instant::now();
            let stamp = file_stamp(&self.path);
            if stamp != st.stamp && stamp.0.is_some() {
                match Ring::load(&self.path) {
                    Ok(ring) => {
                        tracing::info!(ring = %self.path.display(), "reloaded changed ring");
                        st.ring = Arc::new(ring);
                        st.stamp = stamp;
                    }
                    Err(e) => tracing::error!(error = %e, "keeping the previous ring"),
                }
            }
        }
        st.ring.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_bytes(devs: &serde_json::Value, table: &[Vec<u16>], part_shift: u32) -> Vec<u8> {
        let meta = serde_json::json!({
            "byteorder": "little", "devs": devs, "part_shift": part_shift,
            "replica_count": table.len(), "version": 1
        })
        .to_string();
        let mut out = b"R1NG\x00\x01".to_vec();
        out.extend((meta.len() as u32).to_be_bytes());
        out.extend(meta.as_bytes());
        for row in table {
            for id in row {
                out.extend(id.to_le_bytes());
            }
        }
        out
    }

    fn dev(id: u32, zone: u32, ip: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "region": 1, "zone": zone, "ip": ip, "port": 6200,
            "device": format!("d{id}"), "weight": 1.0, "meta": "",
            "replication_ip": ip, "replication_port": 6200})
    }

    #[test]
    fn primaries_and_handoffs_cover_every_device_once() {
        let devs = serde_json::json!([
            dev(0, 1, "127.0.0.1"),
            dev(1, 2, "127.0.0.2"),
            dev(2, 3, "127.0.0.3"),
            dev(3, 4, "127.0.0.4")
        ]);
        let table = vec![vec![0, 1, 2, 3], vec![1, 2, 3, 0], vec![2, 3, 0, 1]];
        let ring = Ring::parse(&ring_bytes(&devs, &table, 30)).unwrap();
        assert_eq!(ring.partition_count(), 4);
        let p = ring.part_nodes(1);
        assert_eq!(
            p.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "replica order"
        );
        assert_eq!(p[2].index, Some(2));
        let h = ring.more_nodes(1);
        assert_eq!(h.iter().map(|n| n.id).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn rejects_garbage_and_dangling_ids() {
        assert!(Ring::parse(b"nope").is_err());
        let devs = serde_json::json!([dev(0, 1, "127.0.0.1")]);
        let bad = ring_bytes(&devs, &[vec![0, 5]], 31);
        assert!(Ring::parse(&bad).unwrap_err().contains("missing device 5"));
    }
}

//! The runtime ring: Swift's `Ring` lookups, answered the same way, much faster.
//!
//! A [`Ring`] is built once from a [`RingData`] (usually read from a `ring.gz`) and then
//! only read, so it can be shared between threads. Loading does three things Swift does
//! lazily or not at all:
//!
//! * **Validation.** Every table entry must name a device that exists (no holes, no
//!   unassigned slots, no ids past the end of the device list), every device must sit at
//!   the index of its id, and the rows must have the lengths the partition power implies.
//!   Swift would instead raise in the middle of a request; here a bad ring is refused at
//!   load with an error that names the file.
//! * **A partition-major table.** Swift keeps one array per replica, so finding the
//!   primaries of a partition touches one cache line per replica. Ringsmith stores the
//!   table as `table[part * replicas + replica]` (a missing entry of a short, fractional
//!   last row is [`NONE_DEV`]), so a lookup reads one cache line and allocates nothing:
//!   [`PartNodes`] keeps up to 8 ids inline.
//! * **Dense tier ids.** What `get_more_nodes` needs (Swift's `_update_bookkeeping`) is
//!   computed once: the number of regions, zones, IPs and devices that hold assignments,
//!   and for every device small integers for its region, zone and IP, so the handoff
//!   search tracks "tiers already used" in bit sets instead of hash sets of tuples.
//!
//! [`Handoffs`] reproduces Swift's generator step for step — four passes over the same
//! partition sequence (from `md5(str(part))`, stride `max(parts / 65536, 1)`, including
//! Swift's wrap-around quirk), preferring devices in unused regions, then unused zones,
//! then unused IPs, then any unused device — and is lazy, so taking the first few
//! handoffs costs only what they need.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::{Digest, Md5};

use super::format::{load_ring_file, FormatVersion, RingError, RingProblem};
use super::{RingData, NONE_DEV};
use crate::device::Device;
use crate::hash::{HashConfig, PathError};

/// A loaded ring, ready for lookups.
#[derive(Clone, Debug)]
pub struct Ring {
    path: Option<PathBuf>,
    mtime: Option<SystemTime>,
    hash: HashConfig,
    devs: Vec<Option<Device>>,
    /// Partition-major: `table[part * replicas + r]`; `NONE_DEV` where a short last row
    /// has no entry.
    table: Vec<u32>,
    /// Number of rows (replicas, rounded up).
    replicas: usize,
    row_lens: Vec<usize>,
    parts: usize,
    part_shift: u32,
    next_part_power: Option<u32>,
    version: Option<u64>,
    dev_id_bytes: u8,
    format: Option<FormatVersion>,
    size: Option<u64>,
    raw_size: Option<u64>,
    /// Dense region / zone / IP ids per device id (`u32::MAX` for holes).
    dev_region: Vec<u32>,
    dev_zone: Vec<u32>,
    dev_ip: Vec<u32>,
    region_ids: usize,
    zone_ids: usize,
    ip_ids: usize,
    num_regions: usize,
    num_zones: usize,
    num_ips: usize,
    num_devs: usize,
    num_weighted_devs: usize,
    num_assigned_devs: usize,
}

impl Ring {
    /// Loads and validates `path` (a `ring.gz` of either format).
    pub fn load(path: &Path, hash: HashConfig) -> Result<Ring, RingError> {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let loaded = load_ring_file(path)?;
        let mut ring = Ring::from_data(loaded.data, hash).map_err(|p| p.at(path))?;
        ring.path = Some(path.to_path_buf());
        ring.mtime = mtime;
        ring.format = Some(loaded.format);
        ring.size = Some(loaded.size);
        ring.raw_size = Some(loaded.raw_size);
        Ok(ring)
    }

    /// Reloads the ring if its file's mtime changed (what Swift's `Ring` checks every
    /// `reload_time` seconds). Returns whether it reloaded. A ring that was not loaded
    /// from a file never changes. On error the current ring stays as it was.
    pub fn reload_if_changed(&mut self) -> Result<bool, RingError> {
        let Some(path) = self.path.clone() else {
            return Ok(false);
        };
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| RingProblem::Read(e).at(&path))?;
        if Some(mtime) == self.mtime {
            return Ok(false);
        }
        *self = Ring::load(&path, self.hash.clone())?;
        Ok(true)
    }

    /// Builds the lookup structures from ring data, refusing data Swift could not serve.
    pub fn from_data(data: RingData, hash: HashConfig) -> Result<Ring, RingProblem> {
        let RingData {
            devs,
            replica2part2dev: rows,
            part_shift,
            next_part_power,
            version,
            dev_id_bytes,
        } = data;
        if part_shift > 32 {
            return Err(RingProblem::BadHeader(format!(
                "part_shift {part_shift} is above 32"
            )));
        }
        let parts_u64 = 1u64 << (32 - part_shift);
        let Some(first) = rows.first().filter(|r| !r.is_empty()) else {
            return Err(RingProblem::BadTable(
                "the ring has no partition assignments (was the builder rebalanced?)".into(),
            ));
        };
        if first.len() as u64 != parts_u64 {
            return Err(RingProblem::BadTable(format!(
                "replica 0 has {} partitions; part_shift {part_shift} means {parts_u64}",
                first.len()
            )));
        }
        let parts = first.len();
        for (r, row) in rows.iter().enumerate() {
            let last = r + 1 == rows.len();
            if row.len() > parts || (!last && row.len() != parts) || row.is_empty() {
                return Err(RingProblem::BadTable(format!(
                    "replica {r} has {} partitions; expected {parts}{}",
                    row.len(),
                    if last { " or fewer (but some)" } else { "" }
                )));
            }
        }
        for (slot, dev) in devs.iter().enumerate() {
            if let Some(d) = dev {
                if d.id as usize != slot {
                    return Err(RingProblem::BadDevices(format!(
                        "the device at position {slot} has id {}",
                        d.id
                    )));
                }
            }
        }
        let replicas = rows.len();
        let row_lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        let mut table = vec![NONE_DEV; parts * replicas];
        let mut assigned = vec![false; devs.len()];
        for (r, row) in rows.iter().enumerate() {
            for (p, &id) in row.iter().enumerate() {
                if id == NONE_DEV {
                    return Err(RingProblem::BadTable(format!(
                        "partition {p} replica {r} is not assigned to any device"
                    )));
                }
                if !matches!(devs.get(id as usize), Some(Some(_))) {
                    return Err(RingProblem::BadTable(format!(
                        "partition {p} replica {r} is assigned to device id {id}, which is not in the ring"
                    )));
                }
                assigned[id as usize] = true;
                table[p * replicas + r] = id;
            }
        }
        drop(rows);

        let mut region_of: HashMap<u32, u32> = HashMap::new();
        let mut zone_of: HashMap<(u32, u32), u32> = HashMap::new();
        let mut ip_of: HashMap<(u32, u32, &str), u32> = HashMap::new();
        let mut dev_region = vec![u32::MAX; devs.len()];
        let mut dev_zone = vec![u32::MAX; devs.len()];
        let mut dev_ip = vec![u32::MAX; devs.len()];
        let (mut assigned_regions, mut assigned_zones, mut assigned_ips) =
            (Vec::<bool>::new(), Vec::<bool>::new(), Vec::<bool>::new());
        let (mut num_devs, mut num_weighted_devs, mut num_assigned_devs) = (0, 0, 0);
        for (id, dev) in devs.iter().enumerate() {
            let Some(d) = dev else { continue };
            let n = region_of.len() as u32;
            let region = *region_of.entry(d.region).or_insert(n);
            let n = zone_of.len() as u32;
            let zone = *zone_of.entry((d.region, d.zone)).or_insert(n);
            let n = ip_of.len() as u32;
            let ip = *ip_of.entry((d.region, d.zone, d.ip.as_str())).or_insert(n);
            dev_region[id] = region;
            dev_zone[id] = zone;
            dev_ip[id] = ip;
            num_devs += 1;
            if d.weight > 0.0 {
                num_weighted_devs += 1;
            }
            if assigned[id] {
                num_assigned_devs += 1;
                mark(&mut assigned_regions, region);
                mark(&mut assigned_zones, zone);
                mark(&mut assigned_ips, ip);
            }
        }
        let count = |v: &[bool]| v.iter().filter(|b| **b).count();
        Ok(Ring {
            path: None,
            mtime: None,
            hash,
            region_ids: region_of.len(),
            zone_ids: zone_of.len(),
            ip_ids: ip_of.len(),
            num_regions: count(&assigned_regions),
            num_zones: count(&assigned_zones),
            num_ips: count(&assigned_ips),
            devs,
            table,
            replicas,
            row_lens,
            parts,
            part_shift,
            next_part_power,
            version,
            dev_id_bytes,
            format: None,
            size: None,
            raw_size: None,
            dev_region,
            dev_zone,
            dev_ip,
            num_devs,
            num_weighted_devs,
            num_assigned_devs,
        })
    }

    /// The ring data back in Swift's row layout (e.g. to save it in another format).
    pub fn to_ring_data(&self) -> RingData {
        let rows = self
            .row_lens
            .iter()
            .enumerate()
            .map(|(r, &len)| {
                (0..len)
                    .map(|p| self.table[p * self.replicas + r])
                    .collect()
            })
            .collect();
        RingData {
            devs: self.devs.clone(),
            replica2part2dev: rows,
            part_shift: self.part_shift,
            next_part_power: self.next_part_power,
            version: self.version,
            dev_id_bytes: self.dev_id_bytes,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    pub fn hash_config(&self) -> &HashConfig {
        &self.hash
    }
    /// Devices by id, `None` for holes.
    pub fn devs(&self) -> &[Option<Device>] {
        &self.devs
    }
    pub fn dev(&self, id: u32) -> Option<&Device> {
        self.devs.get(id as usize).and_then(Option::as_ref)
    }
    pub fn partition_count(&self) -> usize {
        self.parts
    }
    pub fn part_power(&self) -> u32 {
        32 - self.part_shift
    }
    pub fn part_shift(&self) -> u32 {
        self.part_shift
    }
    /// Whole and fractional replicas, like Swift's `replica_count` (e.g. 3.5).
    pub fn replica_count(&self) -> f64 {
        (self.replicas - 1) as f64 + self.row_lens[self.replicas - 1] as f64 / self.parts as f64
    }
    pub fn next_part_power(&self) -> Option<u32> {
        self.next_part_power
    }
    pub fn version(&self) -> Option<u64> {
        self.version
    }
    pub fn dev_id_bytes(&self) -> u8 {
        self.dev_id_bytes
    }
    /// The on-disk format, if loaded from a file.
    pub fn format(&self) -> Option<FormatVersion> {
        self.format
    }
    /// Compressed size on disk, if loaded from a file.
    pub fn size(&self) -> Option<u64> {
        self.size
    }
    /// Decompressed payload size, if loaded from a file.
    pub fn raw_size(&self) -> Option<u64> {
        self.raw_size
    }
    pub fn device_count(&self) -> usize {
        self.num_devs
    }
    pub fn weighted_device_count(&self) -> usize {
        self.num_weighted_devs
    }
    pub fn assigned_device_count(&self) -> usize {
        self.num_assigned_devs
    }

    /// The partition of an account, container or object (Swift's `get_part`).
    pub fn get_part(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<u32, PathError> {
        let digest = self.hash.hash_path_raw(account, container, object)?;
        Ok(self.part_for_digest(&digest))
    }

    /// The partition for a raw `hash_path` digest.
    pub fn part_for_digest(&self, digest: &[u8; 16]) -> u32 {
        let top = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        (u64::from(top) >> self.part_shift) as u32
    }

    /// The primary devices of a partition in replica order, each device once (Swift's
    /// `get_part_nodes`; a device's position is its `index`). Out-of-range partitions
    /// have no nodes, as in Swift.
    pub fn get_part_nodes(&self, part: u32) -> PartNodes<'_> {
        let mut ids = IdBuf::default();
        let part = part as usize;
        if part < self.parts {
            let start = part * self.replicas;
            for &id in &self.table[start..start + self.replicas] {
                if id != NONE_DEV && !ids.as_slice().contains(&id) {
                    ids.push(id);
                }
            }
        }
        PartNodes { ring: self, ids }
    }

    /// Partition and primaries of an account, container or object (Swift's `get_nodes`).
    pub fn get_nodes(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<(u32, PartNodes<'_>), PathError> {
        let part = self.get_part(account, container, object)?;
        Ok((part, self.get_part_nodes(part)))
    }

    /// Handoff devices for a partition, in Swift's order (Swift's `get_more_nodes`).
    /// Lazy: take only as many as needed. The n-th item has `handoff_index` n.
    pub fn get_more_nodes(&self, part: u32) -> Handoffs<'_> {
        let primaries = self.get_part_nodes(part);
        let mut h = Handoffs {
            ring: self,
            used: BitSet::new(self.devs.len()),
            regions: BitSet::new(self.region_ids),
            zones: BitSet::new(self.zone_ids),
            ips: BitSet::new(self.ip_ids),
            stage: Stage::Regions,
            started: false,
            start: 0,
            inc: (self.parts / 65536).max(1),
            wrapped: false,
            cur: 0,
            row: 0,
        };
        for &id in primaries.ids() {
            h.used.insert(id);
            h.regions.insert(self.dev_region[id as usize]);
            h.zones.insert(self.dev_zone[id as usize]);
            h.ips.insert(self.dev_ip[id as usize]);
        }
        let digest = Md5::digest(part.to_string().as_bytes());
        let top = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        h.start = (u64::from(top) >> self.part_shift) as usize;
        h
    }

    fn device(&self, id: u32) -> &Device {
        self.devs[id as usize]
            .as_ref()
            .expect("table entries were validated against the device list at load")
    }
}

fn mark(v: &mut Vec<bool>, i: u32) {
    let i = i as usize;
    if v.len() <= i {
        v.resize(i + 1, false);
    }
    v[i] = true;
}

/// Up to 8 device ids inline (no allocation for any common replica count).
#[derive(Clone, Debug, Default)]
struct IdBuf {
    len: usize,
    inline: [u32; 8],
    heap: Vec<u32>,
}

impl IdBuf {
    fn push(&mut self, id: u32) {
        if self.len < self.inline.len() {
            self.inline[self.len] = id;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(id);
        }
        self.len += 1;
    }

    fn as_slice(&self) -> &[u32] {
        if self.len <= self.inline.len() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// The primary devices of one partition.
#[derive(Clone, Debug)]
pub struct PartNodes<'r> {
    ring: &'r Ring,
    ids: IdBuf,
}

impl<'r> PartNodes<'r> {
    /// Device ids, in `index` order.
    pub fn ids(&self) -> &[u32] {
        self.ids.as_slice()
    }
    pub fn len(&self) -> usize {
        self.ids.len
    }
    pub fn is_empty(&self) -> bool {
        self.ids.len == 0
    }
    /// The device with `index` i.
    pub fn get(&self, i: usize) -> Option<&'r Device> {
        self.ids().get(i).map(|&id| self.ring.device(id))
    }
    /// The devices in `index` order.
    pub fn iter(&self) -> impl Iterator<Item = &'r Device> + '_ {
        let ring = self.ring;
        self.ids().iter().map(move |&id| ring.device(id))
    }
}

#[derive(Clone, Debug)]
struct BitSet {
    words: Vec<u64>,
    count: usize,
}

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet {
            words: vec![0; n.div_ceil(64)],
            count: 0,
        }
    }
    fn contains(&self, i: u32) -> bool {
        self.words[i as usize / 64] & (1 << (i % 64)) != 0
    }
    /// Inserts; returns whether it was new.
    fn insert(&mut self, i: u32) -> bool {
        let w = &mut self.words[i as usize / 64];
        let bit = 1 << (i % 64);
        let new = *w & bit == 0;
        *w |= bit;
        self.count += new as usize;
        new
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Regions,
    Zones,
    Ips,
    Devices,
    Done,
}

impl Stage {
    fn next(self) -> Stage {
        match self {
            Stage::Regions => Stage::Zones,
            Stage::Zones => Stage::Ips,
            Stage::Ips => Stage::Devices,
            Stage::Devices | Stage::Done => Stage::Done,
        }
    }
}

/// Swift's `get_more_nodes` generator as an iterator.
#[derive(Clone, Debug)]
pub struct Handoffs<'r> {
    ring: &'r Ring,
    used: BitSet,
    regions: BitSet,
    zones: BitSet,
    ips: BitSet,
    stage: Stage,
    /// Whether the current stage's walk over the partition sequence has begun.
    started: bool,
    start: usize,
    inc: usize,
    /// In the second range of Swift's `chain(range(start, parts, inc), range(...))`.
    wrapped: bool,
    cur: usize,
    row: usize,
}

impl Handoffs<'_> {
    fn stage_complete(&self) -> bool {
        let r = self.ring;
        match self.stage {
            Stage::Regions => self.regions.count == r.num_regions,
            Stage::Zones => self.zones.count == r.num_zones,
            Stage::Ips => self.ips.count == r.num_ips,
            Stage::Devices => self.used.count == r.num_assigned_devs,
            Stage::Done => true,
        }
    }
}

impl<'r> Iterator for Handoffs<'r> {
    type Item = &'r Device;

    fn next(&mut self) -> Option<&'r Device> {
        let ring = self.ring;
        let parts = ring.parts;
        loop {
            if self.stage == Stage::Done {
                return None;
            }
            if !self.started {
                if self.stage_complete() {
                    self.stage = self.stage.next();
                    continue;
                }
                self.started = true;
                self.wrapped = false;
                self.cur = self.start;
                self.row = 0;
            }
            if !self.wrapped && self.cur >= parts {
                // Swift's second range starts at `inc - ((parts - start) % inc)` — which
                // is `inc`, not 0, when the remainder is 0. Kept for identical order.
                self.wrapped = true;
                self.cur = self.inc - ((parts - self.start) % self.inc);
                self.row = 0;
                continue;
            }
            if self.wrapped && self.cur >= self.start {
                self.stage = self.stage.next();
                self.started = false;
                continue;
            }
            if self.row >= ring.replicas {
                self.cur += self.inc;
                self.row = 0;
                continue;
            }
            let id = ring.table[self.cur * ring.replicas + self.row];
            self.row += 1;
            if id == NONE_DEV || self.used.contains(id) {
                continue;
            }
            let i = id as usize;
            let (region, zone, ip) = (ring.dev_region[i], ring.dev_zone[i], ring.dev_ip[i]);
            let take = match self.stage {
                Stage::Regions => !self.regions.contains(region),
                Stage::Zones => !self.zones.contains(zone),
                Stage::Ips => !self.ips.contains(ip),
                Stage::Devices => true,
                Stage::Done => unreachable!(),
            };
            if !take {
                continue;
            }
            self.used.insert(id);
            match self.stage {
                Stage::Regions => {
                    self.regions.insert(region);
                    self.zones.insert(zone);
                    self.ips.insert(ip);
                }
                Stage::Zones => {
                    self.zones.insert(zone);
                    self.ips.insert(ip);
                }
                Stage::Ips => {
                    self.ips.insert(ip);
                }
                Stage::Devices | Stage::Done => {}
            }
            if self.stage_complete() {
                self.stage = self.stage.next();
                self.started = false;
            }
            return Some(ring.device(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::synthetic::{self, Shape};

    fn ring(shape: &Shape) -> Ring {
        Ring::from_data(synthetic::ring(shape), HashConfig::new("", "endcap")).unwrap()
    }

    #[test]
    fn primaries_follow_the_rows_and_skip_short_rows() {
        let data = synthetic::ring(&Shape {
            part_power: 4,
            replicas: 2.5,
            ..Default::default()
        });
        let r = Ring::from_data(data.clone(), HashConfig::default()).unwrap();
        assert_eq!(r.replica_count(), 2.5);
        for p in 0..16u32 {
            let want: Vec<u32> = data
                .replica2part2dev
                .iter()
                .filter_map(|row| row.get(p as usize).copied())
                .collect();
            assert_eq!(r.get_part_nodes(p).ids(), want, "partition {p}");
            assert_eq!(r.get_part_nodes(p).len(), if p < 8 { 3 } else { 2 });
        }
        assert!(
            r.get_part_nodes(16).is_empty(),
            "out of range: no nodes, like Swift"
        );
        assert_eq!(r.to_ring_data(), data);
    }

    #[test]
    fn a_device_holding_two_replicas_appears_once() {
        let mut data = synthetic::ring(&Shape::default());
        data.replica2part2dev[2][5] = data.replica2part2dev[0][5];
        let r = Ring::from_data(data.clone(), HashConfig::default()).unwrap();
        let want = [data.replica2part2dev[0][5], data.replica2part2dev[1][5]];
        assert_eq!(r.get_part_nodes(5).ids(), want);
    }

    #[test]
    fn many_replicas_spill_to_the_heap() {
        let r = ring(&Shape {
            replicas: 11.0,
            zones_per_region: 4,
            ..Default::default()
        });
        let nodes = r.get_part_nodes(3);
        assert_eq!(nodes.len(), 11);
        assert_eq!(nodes.iter().count(), 11);
    }

    #[test]
    fn handoffs_cover_every_other_assigned_device_once() {
        let r = ring(&Shape {
            part_power: 8,
            hole_every: 5,
            ..Default::default()
        });
        for p in [0, 17, 255] {
            let prim = r.get_part_nodes(p);
            let hand: Vec<u32> = r.get_more_nodes(p).map(|d| d.id).collect();
            let mut all: Vec<u32> = prim.ids().iter().copied().chain(hand).collect();
            all.sort_unstable();
            let before = all.len();
            all.dedup();
            assert_eq!(before, all.len(), "no device twice");
            assert_eq!(all.len(), r.assigned_device_count());
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut data = synthetic::ring(&Shape::default());
        data.replica2part2dev[1][9] = 999;
        let e = Ring::from_data(data, HashConfig::default()).unwrap_err();
        assert!(e.to_string().contains("partition 9 replica 1"), "{e}");
        let mut data = synthetic::ring(&Shape {
            hole_every: 4,
            ..Default::default()
        });
        data.replica2part2dev[0][0] = 3; // a hole
        assert!(Ring::from_data(data, HashConfig::default()).is_err());
        let mut data = synthetic::ring(&Shape::default());
        data.replica2part2dev[0].pop();
        let e = Ring::from_data(data, HashConfig::default()).unwrap_err();
        assert!(e.to_string().contains("replica 0"), "{e}");
        let mut data = synthetic::ring(&Shape::default());
        data.replica2part2dev.clear();
        assert!(Ring::from_data(data, HashConfig::default()).is_err());
        let mut data = synthetic::ring(&Shape::default());
        data.devs.swap(0, 1);
        let e = Ring::from_data(data, HashConfig::default()).unwrap_err();
        assert!(e.to_string().contains("position 0 has id 1"), "{e}");
    }

    #[test]
    fn get_part_uses_the_hash_config() {
        let r = ring(&Shape::default());
        let digest = HashConfig::new("", "endcap")
            .hash_path_raw("a", Some("c"), Some("o"))
            .unwrap();
        let top = u32::from_be_bytes(digest[..4].try_into().unwrap());
        assert_eq!(r.get_part("a", Some("c"), Some("o")).unwrap(), top >> 22);
        assert!(r.get_part("a", None, Some("o")).is_err());
    }

    #[test]
    fn reloads_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("object.ring.gz");
        let mut data = synthetic::ring(&Shape::default());
        data.save(&p, crate::ring::FormatVersion::V2).unwrap();
        let mut r = Ring::load(&p, HashConfig::default()).unwrap();
        assert!(!r.reload_if_changed().unwrap());
        data.version = Some(99);
        data.save(&p, crate::ring::FormatVersion::V1).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(r.reload_if_changed().unwrap());
        assert_eq!(r.version(), Some(99));
        assert_eq!(r.format(), Some(crate::ring::FormatVersion::V1));
    }
}

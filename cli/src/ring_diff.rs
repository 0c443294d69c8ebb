//! `ringsmith ring-diff OLD NEW`: what moved between two rings (or builders), per device and
//! per failure-domain tier — the question an operator asks before pushing a new ring ("how
//! much data will replication shuffle, and from where to where?").
//!
//! Both inputs become `RingData` (a builder through `get_ring`, as `write_ring` would write
//! it). Movement is counted per partition as a multiset difference: if partition 7 had
//! replicas on devices {1, 4, 9} and now has {1, 4, 12}, one partition-replica left device 9
//! and one arrived on device 12, whatever replica rows they sit in (the rebalancer may
//! reorder rows without moving data). The same difference is taken at the region, zone and
//! server tiers, using each ring's own view of where a device lives, so moving a device to
//! another zone shows as data leaving one zone and arriving in another even though no
//! partition changed device. After a partition power increase (NEW has twice the partitions
//! of OLD) partition `p` of NEW is compared with partition `p >> 1` of OLD, which is where
//! its data lived.
//!
//! Exit status follows diff(1): 0 identical, 1 different, 2 error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use ringsmith::builder::RingBuilder;
use ringsmith::device::Device;
use ringsmith::ring::{RingData, NONE_DEV};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ring before: a `.ring.gz` file or a `.builder` file.
    pub old: PathBuf,
    /// The ring after: a `.ring.gz` file or a `.builder` file.
    pub new: PathBuf,
    /// Print a JSON document (schema in docs/json.md) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// List every device and tier, not only those whose data moved or whose entry changed.
    #[arg(long)]
    pub all: bool,
}

/// Movement at one device.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeviceMove {
    pub id: u32,
    /// `r1z1-10.0.0.1/sda`, from NEW when the device is in NEW.
    pub name: String,
    /// `added`, `removed` or `kept`.
    pub status: &'static str,
    pub weight_before: Option<f64>,
    pub weight_after: Option<f64>,
    pub parts_before: u64,
    pub parts_after: u64,
    pub leaving: u64,
    pub arriving: u64,
    /// Field changes of a kept device, e.g. `zone 3 -> 5`.
    pub changes: Vec<String>,
}

/// Movement at one region, zone or server.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TierMove {
    /// `region`, `zone` or `server`.
    pub level: &'static str,
    pub tier: String,
    pub parts_before: u64,
    pub parts_after: u64,
    pub leaving: u64,
    pub arriving: u64,
}

/// What changed between two rings.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RingDiff {
    pub partitions_before: u64,
    pub partitions_after: u64,
    pub replicas_before: f64,
    pub replicas_after: f64,
    /// Partition-replicas now on a device that did not hold them.
    pub moved_replicas: u64,
    /// Partition-replica slots of NEW.
    pub total_replicas: u64,
    /// Partitions with at least one replica moved.
    pub partitions_changed: u64,
    pub devices: Vec<DeviceMove>,
    pub tiers: Vec<TierMove>,
}

impl RingDiff {
    /// True when nothing moved and no device changed.
    pub fn is_empty(&self) -> bool {
        self.moved_replicas == 0
            && self.partitions_before == self.partitions_after
            && self
                .devices
                .iter()
                .all(|d| d.status == "kept" && d.changes.is_empty() && d.leaving == 0)
            && self.tiers.iter().all(|t| t.leaving == 0 && t.arriving == 0)
    }
}

fn partitions_of(ring: &RingData) -> u64 {
    1u64 << (32 - ring.part_shift)
}

fn replicas_of(ring: &RingData) -> f64 {
    let slots: u64 = ring.replica2part2dev.iter().map(|r| r.len() as u64).sum();
    slots as f64 / partitions_of(ring) as f64
}

pub fn device_name(d: &Device) -> String {
    format!("r{}z{}-{}/{}", d.region, d.zone, d.ip, d.device)
}

fn tier_names(d: &Device) -> [String; 3] {
    [
        format!("r{}", d.region),
        format!("r{}z{}", d.region, d.zone),
        format!("r{}z{}-{}", d.region, d.zone, d.ip),
    ]
}

const LEVELS: [&str; 3] = ["region", "zone", "server"];

fn field_changes(a: &Device, b: &Device) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{name} {x} -> {y}"));
        }
    };
    cmp("region", a.region.to_string(), b.region.to_string());
    cmp("zone", a.zone.to_string(), b.zone.to_string());
    cmp("ip", a.ip.clone(), b.ip.clone());
    cmp("port", a.port.to_string(), b.port.to_string());
    cmp(
        "replication_ip",
        a.replication_ip.clone(),
        b.replication_ip.clone(),
    );
    cmp(
        "replication_port",
        a.replication_port.to_string(),
        b.replication_port.to_string(),
    );
    cmp("device", a.device.clone(), b.device.clone());
    cmp(
        "weight",
        format!("{:.2}", a.weight),
        format!("{:.2}", b.weight),
    );
    cmp("meta", format!("{:?}", a.meta), format!("{:?}", b.meta));
    out
}

/// Multiset difference of two short lists of keys: adds to `leaving[k]` what `old` holds more
/// of than `new`, to `arriving[k]` the converse.
fn multiset_delta(old: &[u32], new: &[u32], leaving: &mut [u64], arriving: &mut [u64]) -> u64 {
    let mut moved = 0;
    for (i, &k) in old.iter().enumerate() {
        if old[..i].contains(&k) {
            continue;
        }
        let co = old.iter().filter(|&&x| x == k).count();
        let cn = new.iter().filter(|&&x| x == k).count();
        if co > cn {
            leaving[k as usize] += (co - cn) as u64;
        }
    }
    for (i, &k) in new.iter().enumerate() {
        if new[..i].contains(&k) {
            continue;
        }
        let co = old.iter().filter(|&&x| x == k).count();
        let cn = new.iter().filter(|&&x| x == k).count();
        if cn > co {
            arriving[k as usize] += (cn - co) as u64;
            moved += (cn - co) as u64;
        }
    }
    moved
}

/// Compares two rings; errors when their partition counts are unrelated.
pub fn diff_rings(old: &RingData, new: &RingData) -> Result<RingDiff, String> {
    let (old_parts, new_parts) = (partitions_of(old), partitions_of(new));
    let shift = if old_parts == new_parts {
        0
    } else if new_parts == old_parts * 2 {
        1
    } else {
        return Err(format!(
            "cannot compare a ring of {old_parts} partitions with one of {new_parts}: \
             only equal partition counts or one partition power increase are comparable"
        ));
    };

    // Tier names to dense indices, and each device's tier indices on each side.
    let mut tier_index: BTreeMap<(usize, String), u32> = BTreeMap::new();
    let mut tiers_of = |ring: &RingData| -> Vec<Option<[u32; 3]>> {
        ring.devs
            .iter()
            .map(|d| {
                d.as_ref().map(|d| {
                    let names = tier_names(d);
                    std::array::from_fn(|lvl| {
                        let next = tier_index.len() as u32;
                        *tier_index.entry((lvl, names[lvl].clone())).or_insert(next)
                    })
                })
            })
            .collect()
    };
    let old_tiers = tiers_of(old);
    let new_tiers = tiers_of(new);
    let tier_count = tier_index.len();
    let dev_slots = old.devs.len().max(new.devs.len());

    let mut dev_leaving = vec![0u64; dev_slots];
    let mut dev_arriving = vec![0u64; dev_slots];
    let mut dev_before = vec![0u64; dev_slots];
    let mut dev_after = vec![0u64; dev_slots];
    let mut tier_leaving = vec![0u64; tier_count];
    let mut tier_arriving = vec![0u64; tier_count];
    let mut tier_before = vec![0u64; tier_count];
    let mut tier_after = vec![0u64; tier_count];
    let mut moved = 0u64;
    let mut changed = 0u64;
    let mut total = 0u64;

    let mut old_ids = Vec::with_capacity(8);
    let mut new_ids = Vec::with_capacity(8);
    let mut old_t = Vec::with_capacity(8);
    let mut new_t = Vec::with_capacity(8);
    let valid = |ring: &RingData, id: u32| {
        id != NONE_DEV && ring.devs.get(id as usize).is_some_and(|d| d.is_some())
    };
    for p in 0..new_parts as usize {
        let op = p >> shift;
        old_ids.clear();
        new_ids.clear();
        for row in &old.replica2part2dev {
            if let Some(&id) = row.get(op) {
                if valid(old, id) {
                    old_ids.push(id);
                }
            }
        }
        for row in &new.replica2part2dev {
            if let Some(&id) = row.get(p) {
                if valid(new, id) {
                    new_ids.push(id);
                }
            }
        }
        total += new_ids.len() as u64;
        // After a power increase each old partition feeds two new ones; count its replicas
        // once so that "before" totals stay those of OLD.
        if p & ((1 << shift) - 1) == 0 {
            for &id in &old_ids {
                dev_before[id as usize] += 1;
                for &t in old_tiers[id as usize].as_ref().expect("valid id") {
                    tier_before[t as usize] += 1;
                }
            }
        }
        for &id in &new_ids {
            dev_after[id as usize] += 1;
            for &t in new_tiers[id as usize].as_ref().expect("valid id") {
                tier_after[t as usize] += 1;
            }
        }
        let m = multiset_delta(&old_ids, &new_ids, &mut dev_leaving, &mut dev_arriving);
        moved += m;
        if m > 0 {
            changed += 1;
        }
        for lvl in 0..3 {
            old_t.clear();
            new_t.clear();
            old_t.extend(
                old_ids
                    .iter()
                    .map(|&id| old_tiers[id as usize].expect("valid")[lvl]),
            );
            new_t.extend(
                new_ids
                    .iter()
                    .map(|&id| new_tiers[id as usize].expect("valid")[lvl]),
            );
            multiset_delta(&old_t, &new_t, &mut tier_leaving, &mut tier_arriving);
        }
    }

    let mut devices = Vec::new();
    for id in 0..dev_slots {
        let a = old.devs.get(id).and_then(|d| d.as_ref());
        let b = new.devs.get(id).and_then(|d| d.as_ref());
        let (status, name, changes) = match (a, b) {
            (None, None) => continue,
            (Some(a), None) => ("removed", device_name(a), Vec::new()),
            (None, Some(b)) => ("added", device_name(b), Vec::new()),
            (Some(a), Some(b)) => ("kept", device_name(b), field_changes(a, b)),
        };
        devices.push(DeviceMove {
            id: id as u32,
            name,
            status,
            weight_before: a.map(|d| d.weight),
            weight_after: b.map(|d| d.weight),
            parts_before: dev_before[id],
            parts_after: dev_after[id],
            leaving: dev_leaving[id],
            arriving: dev_arriving[id],
            changes,
        });
    }
    let mut tiers: Vec<TierMove> = tier_index
        .iter()
        .map(|((lvl, name), &i)| TierMove {
            level: LEVELS[*lvl],
            tier: name.clone(),
            parts_before: tier_before[i as usize],
            parts_after: tier_after[i as usize],
            leaving: tier_leaving[i as usize],
            arriving: tier_arriving[i as usize],
        })
        .collect();
    // Widest tiers first, then by name, as the dispersion report lists them.
    tiers.sort_by(|a, b| {
        let rank = |l: &str| LEVELS.iter().position(|x| *x == l).unwrap_or(0);
        (rank(a.level), &a.tier).cmp(&(rank(b.level), &b.tier))
    });
    Ok(RingDiff {
        partitions_before: old_parts,
        partitions_after: new_parts,
        replicas_before: replicas_of(old),
        replicas_after: replicas_of(new),
        moved_replicas: moved,
        total_replicas: total,
        partitions_changed: changed,
        devices,
        tiers,
    })
}

/// Renders the diff as tables; `all` lists unchanged devices and tiers too.
pub fn render_text(diff: &RingDiff, all: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let pct = if diff.total_replicas > 0 {
        100.0 * diff.moved_replicas as f64 / diff.total_replicas as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "Moved {} of {} partition-replicas ({pct:.2}%); {} of {} partitions changed.",
        diff.moved_replicas, diff.total_replicas, diff.partitions_changed, diff.partitions_after
    );
    if diff.partitions_before != diff.partitions_after {
        let _ = writeln!(
            out,
            "Partitions: {} -> {} (partition power increase)",
            diff.partitions_before, diff.partitions_after
        );
    }
    if diff.replicas_before != diff.replicas_after {
        let _ = writeln!(
            out,
            "Replicas: {:.6} -> {:.6}",
            diff.replicas_before, diff.replicas_after
        );
    }
    let devices: Vec<&DeviceMove> = diff
        .devices
        .iter()
        .filter(|d| {
            all || d.leaving > 0 || d.arriving > 0 || d.status != "kept" || !d.changes.is_empty()
        })
        .collect();
    if !devices.is_empty() {
        let nw = devices
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "Devices: {:>5} {:<nw$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  status",
            "id", "name", "w.before", "w.after", "before", "after", "leaving", "arriving"
        );
        let w = |v: Option<f64>| v.map(|w| format!("{w:.2}")).unwrap_or_else(|| "-".into());
        for d in devices {
            let mut status = d.status.to_string();
            if !d.changes.is_empty() {
                status = format!("{status}; {}", d.changes.join(", "));
            }
            let _ = writeln!(
                out,
                "         {:>5} {:<nw$} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
                d.id,
                d.name,
                w(d.weight_before),
                w(d.weight_after),
                d.parts_before,
                d.parts_after,
                d.leaving,
                d.arriving,
                status
            );
        }
    }
    let tiers: Vec<&TierMove> = diff
        .tiers
        .iter()
        .filter(|t| all || t.leaving > 0 || t.arriving > 0 || t.parts_before != t.parts_after)
        .collect();
    if !tiers.is_empty() {
        let tw = tiers
            .iter()
            .map(|t| t.tier.len())
            .max()
            .unwrap_or(4)
            .max(30);
        let _ = writeln!(
            out,
            "{:<tw$} {:>8} {:>8} {:>8} {:>8}",
            "Tier", "before", "after", "leaving", "arriving"
        );
        for t in tiers {
            let _ = writeln!(
                out,
                "{:<tw$} {:>8} {:>8} {:>8} {:>8}",
                t.tier, t.parts_before, t.parts_after, t.leaving, t.arriving
            );
        }
    }
    out
}

/// Loads a ring file, or a builder file as the ring it would write.
pub fn load_ring_or_builder(path: &Path) -> Result<RingData, String> {
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    let name = path.to_string_lossy();
    let as_ring = || crate::ring::ring_io::load_ring(path).map(|l| l.data);
    let as_builder = || {
        RingBuilder::load(path)
            .map(|b| b.get_ring())
            .map_err(|e| e.to_string())
    };
    if name.ends_with(".builder") {
        as_builder().map_err(|e| format!("{}: not a valid builder file: {e}", path.display()))
    } else {
        as_ring().or_else(|ring_err| {
            as_builder().map_err(|_| {
                format!(
                    "{}: neither a ring nor a builder file ({ring_err})",
                    path.display()
                )
            })
        })
    }
}

pub fn run(args: Args) -> ExitCode {
    let load = |p: &Path| load_ring_or_builder(p);
    let result = load(&args.old)
        .and_then(|old| load(&args.new).map(|new| (old, new)))
        .and_then(|(old, new)| diff_rings(&old, &new).map(|d| (old, new, d)));
    let (old, new, diff) = match result {
        Ok(v) => v,
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "error": e, "exit_code": 2 }));
            } else {
                eprintln!("ring-diff: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let code = if diff.is_empty() { 0 } else { 1 };
    if args.json {
        let doc = serde_json::json!({
            "old": { "path": args.old.display().to_string(), "version": old.version },
            "new": { "path": args.new.display().to_string(), "version": new.version },
            "identical": code == 0,
            "diff": diff,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        let v = |r: &RingData| {
            r.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into())
        };
        println!("Old: {} (build version {})", args.old.display(), v(&old));
        println!("New: {} (build version {})", args.new.display(), v(&new));
        print!("{}", render_text(&diff, args.all));
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Map;

    fn dev(id: u32, zone: u32, ip: &str) -> Option<Device> {
        Some(Device {
            id,
            region: 1,
            zone,
            ip: ip.into(),
            port: 6200,
            replication_ip: ip.into(),
            replication_port: 6200,
            device: "sda".into(),
            weight: 100.0,
            meta: String::new(),
            extra: Map::new(),
        })
    }

    fn ring(devs: Vec<Option<Device>>, table: Vec<Vec<u32>>, part_power: u32) -> RingData {
        RingData {
            devs,
            replica2part2dev: table,
            part_shift: 32 - part_power,
            next_part_power: None,
            version: Some(1),
            dev_id_bytes: 2,
        }
    }

    #[test]
    fn counts_moves_per_device_and_tier_ignoring_row_order() {
        let devs = vec![
            dev(0, 1, "10.0.0.1"),
            dev(1, 2, "10.0.0.2"),
            dev(2, 3, "10.0.0.3"),
        ];
        let old = ring(devs.clone(), vec![vec![0, 1], vec![1, 2]], 1);
        // Partition 0 swaps rows (no move); partition 1 moves a replica from 2 to 0.
        let new = ring(devs, vec![vec![1, 1], vec![0, 0]], 1);
        let d = diff_rings(&old, &new).unwrap();
        assert_eq!(d.moved_replicas, 1);
        assert_eq!(d.partitions_changed, 1);
        assert_eq!((d.devices[2].leaving, d.devices[0].arriving), (1, 1));
        let z3 = d.tiers.iter().find(|t| t.tier == "r1z3").unwrap();
        assert_eq!((z3.parts_before, z3.parts_after, z3.leaving), (1, 0, 1));
        let r1 = d.tiers.iter().find(|t| t.tier == "r1").unwrap();
        assert_eq!((r1.leaving, r1.arriving), (0, 0));
        assert!(!d.is_empty());
        assert!(diff_rings(&old, &old).unwrap().is_empty());
    }

    #[test]
    fn zone_change_moves_data_between_zones_only() {
        let old = ring(
            vec![dev(0, 1, "10.0.0.1"), dev(1, 2, "10.0.0.2")],
            vec![vec![0, 1]],
            1,
        );
        let mut new = old.clone();
        new.devs[1].as_mut().unwrap().zone = 5;
        let d = diff_rings(&old, &new).unwrap();
        assert_eq!(d.moved_replicas, 0);
        assert_eq!(d.devices[1].changes, vec!["zone 2 -> 5".to_string()]);
        let z5 = d.tiers.iter().find(|t| t.tier == "r1z5").unwrap();
        assert_eq!(z5.arriving, 1);
        assert!(!d.is_empty());
    }

    #[test]
    fn partition_power_increase_maps_halves() {
        let devs = vec![dev(0, 1, "10.0.0.1"), dev(1, 2, "10.0.0.2")];
        let old = ring(devs.clone(), vec![vec![0, 1]], 1);
        let new = ring(devs, vec![vec![0, 0, 1, 1]], 2);
        let d = diff_rings(&old, &new).unwrap();
        assert_eq!(d.moved_replicas, 0);
        assert_eq!(d.devices[0].parts_before, 1);
        assert_eq!(d.devices[0].parts_after, 2);
        let bad = ring(vec![dev(0, 1, "10.0.0.1")], vec![vec![0; 8]], 3);
        assert!(diff_rings(&old, &bad).is_err());
    }
}

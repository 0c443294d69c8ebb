//! Seeded, synthetic rings for tests and benchmarks: large tables without running a
//! rebalance. The table is random (each partition gets distinct devices), not balanced —
//! lookups do not care.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::RingData;
use crate::device::Device;

/// Shape of a synthetic ring.
#[derive(Clone, Debug)]
pub struct Shape {
    pub part_power: u32,
    /// Whole and fractional replicas (e.g. 3.25).
    pub replicas: f64,
    pub regions: u32,
    pub zones_per_region: u32,
    pub servers_per_zone: u32,
    pub disks_per_server: u32,
    /// Leave every n-th device id unused (a hole); 0 for none.
    pub hole_every: u32,
    pub seed: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            part_power: 10,
            replicas: 3.0,
            regions: 2,
            zones_per_region: 3,
            servers_per_zone: 2,
            disks_per_server: 3,
            hole_every: 0,
            seed: 1,
        }
    }
}

/// A ring of `shape`, identical for identical shapes.
pub fn ring(shape: &Shape) -> RingData {
    let mut rng = ChaCha8Rng::seed_from_u64(shape.seed);
    let mut devs = Vec::new();
    let mut next_id = 0u32;
    for region in 1..=shape.regions {
        for zone in 1..=shape.zones_per_region {
            for server in 1..=shape.servers_per_zone {
                let ip = format!("127.{region}.{zone}.{server}");
                for disk in 0..shape.disks_per_server {
                    if shape.hole_every > 0 && next_id % shape.hole_every == shape.hole_every - 1 {
                        devs.push(None);
                        next_id += 1;
                    }
                    devs.push(Some(Device {
                        id: next_id,
                        region,
                        zone,
                        ip: ip.clone(),
                        port: 6200 + disk,
                        replication_ip: ip.clone(),
                        replication_port: 6300 + disk,
                        device: format!("sd{}", (b'a' + (disk % 26) as u8) as char),
                        weight: 100.0 + f64::from(disk),
                        meta: String::new(),
                        extra: Default::default(),
                    }));
                    next_id += 1;
                }
            }
        }
    }
    let ids: Vec<u32> = devs.iter().flatten().map(|d| d.id).collect();
    let parts = 1usize << shape.part_power;
    let whole = shape.replicas.floor() as usize;
    let last_len = ((shape.replicas - whole as f64) * parts as f64) as usize;
    let rows = whole + usize::from(last_len > 0);
    assert!(rows <= ids.len(), "more replicas than devices");
    let mut table: Vec<Vec<u32>> = (0..rows)
        .map(|r| vec![0; if r < whole { parts } else { last_len }])
        .collect();
    for p in 0..parts {
        for (r, i) in sample(&mut rng, ids.len(), rows).into_iter().enumerate() {
            if p < table[r].len() {
                table[r][p] = ids[i];
            }
        }
    }
    RingData {
        devs,
        replica2part2dev: table,
        part_shift: 32 - shape.part_power,
        next_part_power: None,
        version: Some(7),
        dev_id_bytes: 2,
    }
}

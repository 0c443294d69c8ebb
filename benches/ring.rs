//! Ring load and lookup speed: `cargo bench -p ringsmith --bench ring`.
//!
//! Rings are synthetic (seeded, 3 replicas, 2 regions x 4 zones x 4 servers x 4 disks =
//! 128 devices) and written to `target/ring-bench/` so that
//! `benches/swift_ring_bench.py` can time Swift on the very same files.

use std::path::PathBuf;
use std::sync::OnceLock;

use divan::counter::ItemsCount;
use divan::Bencher;
use ringsmith::hash::HashConfig;
use ringsmith::ring::synthetic::{self, Shape};
use ringsmith::ring::{FormatVersion, Ring, RingData};

fn main() {
    divan::main();
}

fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ring-bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shape(part_power: u32) -> Shape {
    Shape {
        part_power,
        replicas: 3.0,
        regions: 2,
        zones_per_region: 4,
        servers_per_zone: 4,
        disks_per_server: 4,
        hole_every: 0,
        seed: 18,
    }
}

/// The ring file for a partition power and format, written once per run.
fn ring_file(part_power: u32, format: FormatVersion) -> PathBuf {
    static DATA: OnceLock<Vec<(u32, RingData)>> = OnceLock::new();
    let data = DATA.get_or_init(|| {
        [18, 20]
            .iter()
            .map(|&p| (p, synthetic::ring(&shape(p))))
            .collect()
    });
    let path = bench_dir().join(format!("ring{part_power}.v{}.ring.gz", format.number()));
    if !path.exists() {
        let d = &data.iter().find(|(p, _)| *p == part_power).unwrap().1;
        d.save(&path, format).unwrap();
    }
    path
}

fn hash() -> HashConfig {
    HashConfig::new("", "endcap")
}

#[divan::bench(args = [18, 20], sample_count = 30)]
fn load_v1(bencher: Bencher, part_power: u32) {
    let path = ring_file(part_power, FormatVersion::V1);
    bencher.bench(|| Ring::load(&path, hash()).unwrap());
}

#[divan::bench(args = [18, 20], sample_count = 30)]
fn load_v2(bencher: Bencher, part_power: u32) {
    let path = ring_file(part_power, FormatVersion::V2);
    bencher.bench(|| Ring::load(&path, hash()).unwrap());
}

#[divan::bench(args = [18, 20], sample_count = 10)]
fn save_v2(bencher: Bencher, part_power: u32) {
    let data = RingData::load(&ring_file(part_power, FormatVersion::V2)).unwrap();
    let out = bench_dir().join(format!("save{part_power}.ring.gz"));
    bencher.bench(|| data.save(&out, FormatVersion::V2).unwrap());
}

/// Short object paths (`/AUTH_test/c12/o1234` + suffix fits one MD5 block).
fn short_paths() -> Vec<(String, String, String)> {
    (0..4096)
        .map(|i| {
            (
                "AUTH_test".to_string(),
                format!("c{}", i % 97),
                format!("o{i}"),
            )
        })
        .collect()
}

/// Longer object paths like a proxy sees them (two MD5 blocks); 4096 distinct.
fn object_paths() -> Vec<(String, String, String)> {
    (0..4096)
        .map(|i| {
            (
                format!("AUTH_{:08x}", i * 7919),
                format!("photos-{}", i % 97),
                format!("2024/05/{i:06}/IMG_{i}.jpg"),
            )
        })
        .collect()
}

const BATCH: usize = 4096;

/// `get_nodes(a, c, o)`: hash, partition, primaries. Throughput = calls/s.
#[divan::bench(args = [18, 20])]
fn get_nodes(bencher: Bencher, part_power: u32) {
    let ring = Ring::load(&ring_file(part_power, FormatVersion::V2), hash()).unwrap();
    let paths = object_paths();
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        let mut sum = 0u64;
        for (a, c, o) in &paths {
            let (part, nodes) = ring.get_nodes(a, Some(c), Some(o)).unwrap();
            sum += u64::from(part) + u64::from(nodes.ids()[0]) + nodes.len() as u64;
        }
        divan::black_box(sum)
    });
}

/// `get_nodes` on short paths (one MD5 block each).
#[divan::bench(args = [18, 20])]
fn get_nodes_short(bencher: Bencher, part_power: u32) {
    let ring = Ring::load(&ring_file(part_power, FormatVersion::V2), hash()).unwrap();
    let paths = short_paths();
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        let mut sum = 0u64;
        for (a, c, o) in &paths {
            let (part, nodes) = ring.get_nodes(a, Some(c), Some(o)).unwrap();
            sum += u64::from(part) + u64::from(nodes.ids()[0]) + nodes.len() as u64;
        }
        divan::black_box(sum)
    });
}

/// Only `hash_path` (the MD5), the floor under `get_nodes`.
#[divan::bench(args = ["short", "long"])]
fn hash_path_only(bencher: Bencher, kind: &str) {
    let cfg = hash();
    let paths = if kind == "short" {
        short_paths()
    } else {
        object_paths()
    };
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        let mut sum = 0u64;
        for (a, c, o) in &paths {
            sum += u64::from(cfg.hash_path_raw(a, Some(c), Some(o)).unwrap()[0]);
        }
        divan::black_box(sum)
    });
}

/// `get_part_nodes(part)` alone (no hashing).
#[divan::bench(args = [18, 20])]
fn get_part_nodes(bencher: Bencher, part_power: u32) {
    let ring = Ring::load(&ring_file(part_power, FormatVersion::V2), hash()).unwrap();
    let parts = ring.partition_count() as u32;
    bencher.counter(ItemsCount::new(BATCH)).bench(|| {
        let mut sum = 0u64;
        for i in 0..BATCH as u32 {
            let nodes = ring.get_part_nodes(i.wrapping_mul(2_654_435_761) % parts);
            sum += u64::from(nodes.ids()[0]);
        }
        divan::black_box(sum)
    });
}

/// The first 3 handoffs of a partition (what a proxy asks for when a primary fails).
#[divan::bench(args = [18, 20])]
fn get_more_nodes_first3(bencher: Bencher, part_power: u32) {
    let ring = Ring::load(&ring_file(part_power, FormatVersion::V2), hash()).unwrap();
    let parts = ring.partition_count() as u32;
    bencher.counter(ItemsCount::new(256usize)).bench(|| {
        let mut sum = 0u64;
        for i in 0..256u32 {
            for d in ring
                .get_more_nodes(i.wrapping_mul(2_654_435_761) % parts)
                .take(3)
            {
                sum += u64::from(d.id);
            }
        }
        divan::black_box(sum)
    });
}

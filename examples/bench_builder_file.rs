//! Times Ringsmith's `.builder` load and save (run by `scripts/bench-builder-file.sh`,
//! which times Swift on the same file and prints the ratio).
//!
//! `bench_builder_file gen PATH PART_POWER REPLICAS DEVICES` writes a synthetic rebalanced
//! builder (seeded ChaCha table, every device 1 region x 4 zones); `bench_builder_file time
//! PATH ROUNDS` loads and saves it ROUNDS times and prints the best times and peak RSS as
//! JSON.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use ringsmith::builder::{BuilderDevice, RingBuilder};
use ringsmith::device::Device;

fn synthetic(part_power: u32, replicas: usize, devices: u32) -> RingBuilder {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let parts = 1usize << part_power;
    // Replicas of a partition on consecutive ids: distinct devices in distinct zones.
    let starts: Vec<u32> = (0..parts).map(|_| rng.gen_range(0..devices)).collect();
    let table: Vec<Vec<u32>> = (0..replicas as u32)
        .map(|r| starts.iter().map(|&s| (s + r) % devices).collect())
        .collect();
    let mut counts = vec![0u64; devices as usize];
    for row in &table {
        for &d in row {
            counts[d as usize] += 1;
        }
    }
    let devs = (0..devices)
        .map(|id| {
            let ip = format!("10.{}.{}.{}", id % 4, (id / 12) % 256, (id / 12) / 256 + 1);
            Some(BuilderDevice {
                dev: Device {
                    id,
                    region: 1,
                    zone: id % 4 + 1,
                    ip: ip.clone(),
                    port: 6200,
                    replication_ip: ip,
                    replication_port: 6200,
                    device: format!("sd{}", (b'a' + (id % 12) as u8) as char),
                    weight: 100.0,
                    meta: String::new(),
                    extra: BTreeMap::new(),
                },
                parts: counts[id as usize],
                parts_wanted: Some(0.0),
            })
        })
        .collect();
    RingBuilder {
        part_power,
        next_part_power: None,
        replicas: replicas as f64,
        min_part_hours: 1,
        devs,
        devs_changed: false,
        version: devices as u64 + 1,
        overload: 0.0,
        replica2part2dev: Some(table),
        dev_id_bytes: 2,
        last_part_moves_epoch: 1_700_000_000,
        last_part_moves: (0..parts).map(|_| rng.gen_range(0..=255)).collect(),
        last_part_moves_is_list: false,
        last_part_gather_start: 0,
        dispersion_graph: BTreeMap::new(),
        dispersion: Some(0.0),
        remove_devs: vec![],
        id: Some("0123456789abcdef0123456789abcdef".into()),
    }
}

/// CPU time of this (single-threaded) process in seconds: on a shared machine wall time
/// mostly measures the neighbours.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or(0.0)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let b = synthetic(
                args[3].parse().unwrap(),
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
            );
            b.save(&args[2]).unwrap();
        }
        Some("time") => {
            let path = &args[2];
            let rounds: usize = args[3].parse().unwrap();
            let (mut load, mut save) = ([f64::MAX; 2], [f64::MAX; 2]);
            let out = format!("{path}.ringsmith-out");
            for _ in 0..rounds {
                let (t, c) = (Instant::now(), cpu_s());
                let b = RingBuilder::load(path).unwrap();
                load[0] = load[0].min(t.elapsed().as_secs_f64());
                load[1] = load[1].min(cpu_s() - c);
                let (t, c) = (Instant::now(), cpu_s());
                b.save(&out).unwrap();
                save[0] = save[0].min(t.elapsed().as_secs_f64());
                save[1] = save[1].min(cpu_s() - c);
            }
            std::fs::remove_file(&out).ok();
            println!(
                "{{\"load_s\": {:.4}, \"load_cpu_s\": {:.4}, \"save_s\": {:.4}, \"save_cpu_s\": {:.4}, \"peak_rss_mib\": {:.1}}}",
                load[0],
                load[1],
                save[0],
                save[1],
                peak_rss_kib() as f64 / 1024.0
            );
        }
        _ => {
            eprintln!(
                "usage: bench_builder_file gen PATH PART_POWER REPLICAS DEVICES | time PATH ROUNDS"
            );
            std::process::exit(2);
        }
    }
}

//! Deterministic snapshots for the snapshot tests and the render benchmark: a small live
//! cluster with one sick host, the same cluster unreachable, an empty one, and a huge ring.

use std::path::PathBuf;

use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};
use ringsmith::ring::synthetic::{self, Shape};

use super::{ring_stats, ClusterSnapshot, DiskUse, HostStatus, ReplicationSample, RingStats};

/// 2020-01-01T00:00:00Z: every "ago" in a fixture is relative to it.
pub const NOW: f64 = 1_577_836_800.0;

/// A rebalanced 3-replica ring: 3 zones, one server each, two disks per server.
pub fn small_builder() -> RingBuilder {
    let mut b = RingBuilder::new(8, 3.0, 1).expect("valid builder parameters");
    for zone in 1..=3u32 {
        for (i, dev) in ["sdb", "sdc"].iter().enumerate() {
            // Uneven on purpose so balance and the chart have something to show.
            let weight = if i == 0 {
                100.0
            } else {
                100.0 + 50.0 * zone as f64
            };
            b.add_dev(NewDevice::new(
                1,
                zone,
                format!("127.0.0.{zone}"),
                6200,
                *dev,
                weight,
            ))
            .expect("add device");
        }
    }
    b.rebalance(&RebalanceOptions {
        seed: Some(7),
        now_secs: Some(NOW as u64),
    })
    .expect("rebalance");
    b
}

pub fn small_ring() -> RingStats {
    ring_stats(
        "object",
        small_builder(),
        Some(PathBuf::from("/etc/swift/object.builder")),
        PathBuf::from("/etc/swift/object.ring.gz"),
    )
}

fn host(n: u32) -> HostStatus {
    HostStatus {
        host: format!("127.0.0.{n}:6200"),
        ip: format!("127.0.0.{n}"),
        port: 6200,
        ..HostStatus::default()
    }
}

/// Live: host 1 healthy, host 2 with an unmounted disk and asyncs, host 3 down.
pub fn live_snapshot() -> ClusterSnapshot {
    let mut h1 = host(1);
    h1.load5 = Some(0.42);
    h1.async_pending = Some(0);
    h1.quarantined = Some(0);
    h1.replication_last = Some(NOW - 90.0);
    h1.replication_duration = Some(12.5);
    h1.replication_failures = Some(0);
    h1.ring_md5_ok = Some(true);
    h1.disks = vec![
        DiskUse {
            device: "sdb".into(),
            mounted: true,
            used: 40,
            size: 100,
        },
        DiskUse {
            device: "sdc".into(),
            mounted: true,
            used: 75,
            size: 100,
        },
    ];
    let mut h2 = host(2);
    h2.load5 = Some(3.10);
    h2.async_pending = Some(17);
    h2.quarantined = Some(2);
    h2.replication_last = Some(NOW - 7_300.0);
    h2.replication_duration = Some(340.0);
    h2.replication_failures = Some(4);
    h2.ring_md5_ok = Some(false);
    h2.unmounted = vec!["sdc".into()];
    h2.disks = vec![DiskUse {
        device: "sdb".into(),
        mounted: true,
        used: 90,
        size: 100,
    }];
    let mut h3 = host(3);
    h3.error = Some("unreachable: cannot connect: Connection refused".into());
    ClusterSnapshot {
        taken_at: NOW,
        rings: vec![small_ring()],
        hosts: vec![h1, h2, h3],
        live: true,
        errors: vec![],
        replication_history: vec![
            ReplicationSample {
                host: "127.0.0.2:6200".into(),
                last: NOW - 7_300.0,
                duration: 340.0,
                failures: 4,
            },
            ReplicationSample {
                host: "127.0.0.1:6200".into(),
                last: NOW - 90.0,
                duration: 12.5,
                failures: 0,
            },
        ],
    }
}

/// Offline: the rings are there, no host answers.
pub fn unreachable_snapshot() -> ClusterSnapshot {
    let hosts = (1..=3)
        .map(|n| HostStatus {
            error: Some("timed out after 2s".into()),
            ..host(n)
        })
        .collect();
    ClusterSnapshot {
        taken_at: NOW,
        rings: vec![small_ring()],
        hosts,
        live: false,
        errors: vec!["/etc/swift/container.builder: not a builder file".into()],
        replication_history: vec![],
    }
}

pub fn empty_snapshot() -> ClusterSnapshot {
    ClusterSnapshot {
        taken_at: NOW,
        ..ClusterSnapshot::default()
    }
}

/// 2^part_power partitions, 3 replicas, 1,000 devices (5 zones x 20 servers x 10 disks).
pub fn huge_snapshot(part_power: u32) -> ClusterSnapshot {
    let data = synthetic::ring(&Shape {
        part_power,
        replicas: 3.0,
        regions: 1,
        zones_per_region: 5,
        servers_per_zone: 20,
        disks_per_server: 10,
        hole_every: 0,
        seed: 1,
    });
    let builder = RingBuilder::from_ring(&data, 1);
    let ring = ring_stats(
        "object",
        builder,
        None,
        PathBuf::from("/etc/swift/object.ring.gz"),
    );
    let hosts = super::hosts_of_rings(std::slice::from_ref(&ring))
        .into_iter()
        .map(|h| HostStatus {
            host: h.netloc(),
            ip: h.ip,
            port: h.port,
            load5: Some(1.0),
            async_pending: Some(0),
            quarantined: Some(0),
            ring_md5_ok: Some(true),
            ..HostStatus::default()
        })
        .collect();
    ClusterSnapshot {
        taken_at: NOW,
        rings: vec![ring],
        hosts,
        live: true,
        errors: vec![],
        replication_history: vec![],
    }
}

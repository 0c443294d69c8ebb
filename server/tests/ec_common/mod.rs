//! The 4+2 EC cluster of the EC interop tests: six nodes on 127.1.x.y, a
//! `liberasurecode_rs_vand` default policy with small segments, rings built by Swift's
//! `swift-ring-builder`, and Swift's proxy in front (reading this cluster's policies).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proxy_common::*;

/// The Ringsmith binary under test, for its daemons.
pub const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");

/// How long one client request may take in these tests.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Small segments, so that "several segments" stays a small object.
pub const SEGMENT: usize = 4096;

pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Six nodes; the object ring has six replicas (k+m), one device per node.
pub fn ec_cluster(storage: Storage) -> Cluster {
    ec_cluster_of(storage, 6)
}

/// [`ec_cluster`] with `node_count` (>= 6) nodes: beyond six, partitions have handoffs.
pub fn ec_cluster_of(storage: Storage, node_count: usize) -> Cluster {
    ec_cluster_shaped(
        storage,
        node_count,
        EcShape {
            k: 4,
            m: 2,
            duplication: 1,
        },
    )
}

/// An EC policy's fragment counts: `k` data, `m` parity, each fragment stored
/// `duplication` times (Swift's `ec_duplication_factor`).
#[derive(Clone, Copy)]
pub struct EcShape {
    pub k: usize,
    pub m: usize,
    pub duplication: usize,
}

impl EcShape {
    /// Primaries per partition: the object ring's replica count.
    pub fn primaries(&self) -> usize {
        (self.k + self.m) * self.duplication
    }
}

/// [`ec_cluster_of`] with a policy of the given shape (`node_count` at least its
/// primaries).
pub fn ec_cluster_shaped(storage: Storage, node_count: usize, shape: EcShape) -> Cluster {
    let venv = ringsmith_testkit::swift_venv();
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(dir.path().join("log")).unwrap();
    std::fs::write(
        etc.join("swift.conf"),
        format!(
            "[swift-hash]\nswift_hash_path_prefix = rsprefix\nswift_hash_path_suffix = rssuffix\n\n\
             [storage-policy:0]\nname = ec42\ndefault = yes\npolicy_type = erasure_coding\n\
             ec_type = liberasurecode_rs_vand\nec_num_data_fragments = {}\n\
             ec_num_parity_fragments = {}\nec_duplication_factor = {}\n\
             ec_object_segment_size = {SEGMENT}\n",
            shape.k, shape.m, shape.duplication
        ),
    )
    .unwrap();
    // Distinct addresses per cluster (two may run at once in this binary).
    let base =
        20 + (std::process::id() % 100) as usize + if storage == Storage::Swift { 100 } else { 0 };
    let mut nodes = Vec::new();
    for i in 0..node_count {
        let ip = format!("127.1.{}.{}", 1 + i, base);
        let ports = [free_port(&ip), free_port(&ip), free_port(&ip)];
        std::fs::create_dir_all(dir.path().join(format!("srv/node{i}/d{i}"))).unwrap();
        nodes.push(StorageNode {
            ip,
            ports,
            children: Vec::new(),
        });
    }
    let builder = venv.join("bin/swift-ring-builder");
    for (k, kind) in ["object", "container", "account"].iter().enumerate() {
        let b = etc.join(format!("{kind}.builder"));
        let replicas = if *kind == "object" {
            shape.primaries().to_string()
        } else {
            "3".to_string()
        };
        run_ok(
            Command::new(&builder)
                .arg(&b)
                .args(["create", "6", &replicas, "1"]),
        );
        for (i, node) in nodes.iter().enumerate() {
            run_ok(Command::new(&builder).arg(&b).args([
                "add",
                &format!("r1z{}-{}:{}/d{i}", i + 1, node.ip, node.ports[k]),
                "100",
            ]));
        }
        run_ok(Command::new(&builder).arg(&b).arg("rebalance"));
    }
    let mut c = Cluster {
        storage,
        dir,
        nodes,
        proxy: None,
        proxy_port: 0,
        cluster_policies: true,
    };
    for i in 0..node_count {
        c.start_node(i);
    }
    for i in 0..node_count {
        c.wait_node(i);
    }
    c.proxy_port = c.start_swift_proxy_with_cluster_policies();
    c
}

/// Every file under the nodes' `objects` directories, by object hash directory name.
pub fn data_files(root: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.components().any(|c| c.as_os_str() == "objects") {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("srv"), &mut out);
    out
}

pub fn body_of(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
        })
        .collect()
}

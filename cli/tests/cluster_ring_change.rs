//! A ring change pushed under load: a 4-node `cluster up --netns` (3 replicas) keeps taking
//! PUT, overwrite, GET and DELETE traffic while the operator drains node 3 the way it is
//! done in production: `ringsmith ring` on a copy of the builder (weight 0, rebalance), then
//! `ringsmith ring push` of the new object ring to every node, which checks through
//! `/recon/ringmd5` that each object server has it. The proxy picks the new ring up on its
//! own; node 3's replicas become handoffs and its replicator moves them to the new
//! primaries. Swift's promises are then checked against the new ring (see
//! `cluster_support/load.rs`): nothing acknowledged is lost, no delete comes back, and every
//! live object sits on exactly its new primaries, none left on node 3.

mod cluster_support;

use std::process::Output;
use std::time::Duration;

use cluster_support::load::{check_promises, Layout, Load};
use cluster_support::{data_files, ringsmith, text, Down, NetnsCluster};

fn ring(args: &[&str]) -> Output {
    ringsmith().arg("ring").args(args).output().unwrap()
}

#[test]
fn a_ring_pushed_under_load_loses_nothing_and_moves_data_to_the_new_primaries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let _guard = Down(dir.clone());
    let cluster = NetnsCluster::start(
        &dir,
        &[
            "--nodes",
            "4",
            "--replicas",
            "3",
            "--part-power",
            "6",
            "--daemon-interval",
            "1",
        ],
    );
    let (proxy, token) = (cluster.proxy.clone(), cluster.token.clone());
    let (load, clients) = Load::start(&proxy, &token, 4);
    load.phase("before the ring change", 6);

    // The operator works on a copy of the builder, away from the running cluster's files.
    let etc = dir.join("etc");
    let admin = tmp.path().join("admin");
    std::fs::create_dir_all(&admin).unwrap();
    let builder = admin.join("object.builder");
    std::fs::copy(etc.join("object.builder"), &builder).unwrap();
    let b = builder.to_str().unwrap();
    for step in [
        vec![b, "set_weight", "z4", "0"],
        vec![b, "pretend_min_part_hours_passed"],
        vec![b, "rebalance"],
    ] {
        let out = ring(&step);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "ring {step:?}: {}",
            text(&out)
        );
    }
    let new_ring = admin.join("object.ring.gz");
    let drained = ringsmith::ring::RingData::load(&new_ring).unwrap();
    let node3 = drained
        .devs
        .iter()
        .flatten()
        .find(|d| d.zone == 4)
        .map(|d| d.id)
        .unwrap();
    assert!(
        drained
            .replica2part2dev
            .iter()
            .all(|row| row.iter().all(|&id| id != node3)),
        "one rebalance should drain node 3 completely (at most one replica per partition there)"
    );

    // Pushed as rsync would: a temporary name, then a rename, so no server ever reads a
    // half-copied ring.
    let copy = format!(
        "cp {{files}} {etc}/.object.ring.gz.{{ip}} && mv {etc}/.object.ring.gz.{{ip}} {etc}/object.ring.gz",
        etc = etc.display()
    );
    let push = ringsmith()
        .args(["ring", "push"])
        .arg(&new_ring)
        .args(["--command", &copy, "--verify-timeout", "30"])
        .output()
        .unwrap();
    assert_eq!(push.status.code(), Some(0), "{}", text(&push));
    assert!(
        String::from_utf8_lossy(&push.stdout)
            .contains("4 of 4 hosts copied; 4 of 4 servers serve the pushed rings."),
        "{}",
        text(&push)
    );

    let node3_dir = dir.join("srv/node3");
    let on_node3_before = data_files(&node3_dir);
    assert!(
        on_node3_before > 0,
        "node 3 held no object when the ring was pushed"
    );

    load.phase("node 3 drained by the pushed ring", 20);
    let known = clients.stop(&load);
    let node_of_ip = |ip: &str| cluster.node_of_ip(ip);
    let layout = Layout {
        dir: &dir,
        nodes: 4,
        node_of_ip: &node_of_ip,
    };
    // `check_promises` reads the ring from DIR/etc: the pushed one.
    check_promises(&layout, &known, &proxy, &token, Duration::from_secs(150));
    println!(
        "node 3: {on_node3_before} .data files when the ring was pushed, {} after",
        data_files(&node3_dir)
    );
}

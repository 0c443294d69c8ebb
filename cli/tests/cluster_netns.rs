//! `ringsmith cluster up --netns`: every storage node and the proxy in a network namespace
//! of its own, then faults injected with `ringsmith cluster fault` while the cluster keeps
//! serving, and `cluster down` leaving no namespace, link or process behind.
//!
//! Needs root or CAP_NET_ADMIN (CI runs as root). It never skips: without them `up` fails
//! and so does this test, with the reason.

mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::{data_files, http, ringsmith, text, Down, NetnsCluster};

#[test]
fn nodes_in_their_own_namespaces_survive_a_partition_and_a_hang_then_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let _guard = Down(dir.clone());
    let cluster = NetnsCluster::start(
        &dir,
        &[
            "--nodes",
            "3",
            "--part-power",
            "6",
            "--daemon-interval",
            "1",
        ],
    );
    let (proxy, token) = (cluster.proxy.clone(), cluster.token.clone());

    // Each server lives in a namespace of its own, and no namespace has a route out.
    let record = &cluster.record;
    let ns = &record["netns"];
    let namespaces: Vec<String> = ns["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(namespaces.len(), 4, "{record}");
    let own_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    for p in record["procs"].as_array().unwrap() {
        let pid = p["pid"].as_u64().unwrap();
        let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(net, own_net, "{p} runs in the host's namespace");
    }
    for n in &namespaces {
        let routes = Command::new("ip")
            .args(["-n", n, "route", "show"])
            .output()
            .unwrap();
        let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
        assert!(!routes.contains("default"), "{n} has a route out: {routes}");
    }

    let auth = [("X-Auth-Token", token.as_str())];
    let (st, head, _) = http(&proxy, "PUT", "/v1/AUTH_test/c", &auth, b"");
    assert!(st == 201 || st == 202, "{head}");

    let body = |i: usize| format!("object {i} ").repeat(100 + i).into_bytes();
    let put = |i: usize| {
        let (st, head, _) = http(
            &proxy,
            "PUT",
            &format!("/v1/AUTH_test/c/o{i}"),
            &auth,
            &body(i),
        );
        assert_eq!(st, 201, "PUT o{i}: {head}");
    };
    let get_all = |n: usize| {
        for i in 0..n {
            let (st, head, got) = http(&proxy, "GET", &format!("/v1/AUTH_test/c/o{i}"), &auth, b"");
            assert_eq!(st, 200, "GET o{i}: {head}");
            assert!(got == body(i), "o{i} came back different");
        }
    };
    for i in 0..5 {
        put(i);
    }

    // Node 2 cut off the network: writes reach a quorum on the other two, reads work.
    let fault = |node: u32, action: &str| cluster.fault(&dir, Some(node), action);
    fault(2, "partition");
    for i in 5..10 {
        put(i);
    }
    get_all(10);
    assert_eq!(
        data_files(&dir.join("srv/node2")),
        5,
        "node 2 got writes while cut off"
    );

    // Node 1 hung (SIGSTOP) once node 2 is back: reads time out on it and go elsewhere.
    fault(2, "heal");
    fault(1, "hang");
    let start = Instant::now();
    get_all(10);
    let hung_reads = start.elapsed();
    fault(1, "resume");
    assert!(
        hung_reads < Duration::from_secs(120),
        "reads with a hung node took {hung_reads:?}"
    );

    // Healed: the replicators bring every object to all three nodes.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let counts: Vec<usize> = (0..3)
            .map(|n| data_files(&dir.join(format!("srv/node{n}"))))
            .collect();
        if counts == [10, 10, 10] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge after healing: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let down = ringsmith()
        .args(["cluster", "down", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout).into_owned();
    for n in &namespaces {
        assert!(
            !left.contains(n.as_str()),
            "{n} survived cluster down: {left}"
        );
    }
    let bridge = ns["bridge"].as_str().unwrap();
    assert!(!Path::new("/sys/class/net").join(bridge).exists());
}

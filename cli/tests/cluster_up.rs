//! `ringsmith cluster up/status/down` through the real binaries: a 3-node cluster of
//! `ringsmith-server` processes on 127.0.0.x, driven by python-swiftclient, then stopped.

mod cluster_support;

use std::process::{Command, Stdio};

use cluster_support::{check_listeners, free_base, free_port, ringsmith, server_bin, text, Down};

#[test]
fn cluster_up_serves_swift_clients_and_down_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let proxy_port = free_port("127.0.0.1");
    let base = free_base();
    let _guard = Down(dir.clone());
    let up = ringsmith()
        .args([
            "cluster",
            "up",
            "--nodes",
            "3",
            "--part-power",
            "8",
            "--policies",
            "gold,silver",
        ])
        .arg("--dir")
        .arg(&dir)
        .args([
            "--proxy-port",
            &proxy_port.to_string(),
            "--base-port",
            &base.to_string(),
        ])
        .arg("--server-bin")
        .arg(server_bin())
        .output()
        .unwrap();
    assert!(up.status.success(), "cluster up failed:\n{}", text(&up));
    check_listeners(&dir);
    let out = text(&up);
    let auth = format!("http://127.0.0.1:{proxy_port}/auth/v1.0");
    assert!(out.contains(&auth), "{out}");
    assert!(out.contains("test:tester / testing"), "{out}");
    for f in [
        "swift.conf",
        "account.ring.gz",
        "container.ring.gz",
        "object.ring.gz",
        "object-1.ring.gz",
        "proxy-server.conf",
    ] {
        assert!(dir.join("etc").join(f).exists(), "{f} missing");
    }

    let st = ringsmith()
        .args(["cluster", "status", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", text(&st));
    // 3 nodes x 3 servers + the proxy, and 3 x 8 daemons + the expirer.
    assert_eq!(text(&st).matches(" up\n").count(), 35, "{}", text(&st));
    assert!(text(&st).contains("object-replicator"), "{}", text(&st));

    // A second `up` on a running cluster is refused.
    let again = ringsmith()
        .args(["cluster", "up", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("already running"), "{}", text(&again));

    // python-swiftclient against the whole Ringsmith cluster, both policies.
    let swift = |args: &[&str]| {
        Command::new(ringsmith_testkit::swift_bin("swift"))
            .args(["-A", &auth, "-U", "test:tester", "-K", "testing"])
            .args(args)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    std::fs::write(tmp.path().join("hello.txt"), b"hello, ring\n").unwrap();
    let o = swift(&["upload", "box", "hello.txt"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = swift(&[
        "upload",
        "--header",
        "X-Storage-Policy: silver",
        "box2",
        "hello.txt",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = swift(&["stat", "box2"]);
    assert!(text(&o).contains("silver"), "{}", text(&o));
    let o = swift(&["download", "box2", "hello.txt", "-o", "back.txt"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(tmp.path().join("back.txt")).unwrap(),
        b"hello, ring\n"
    );
    let o = swift(&["list"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "box\nbox2\n");

    // The load generator against the same cluster: every phase, no error, and it cleans
    // up after itself (the container is left empty).
    let bench = ringsmith()
        .args([
            "bench",
            "-A",
            &auth,
            "--objects",
            "40",
            "--size",
            "1000",
            "-c",
            "4",
        ])
        .args(["--listings", "3", "--container", "loadtest", "--json"])
        .output()
        .unwrap();
    assert!(bench.status.success(), "{}", text(&bench));
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).unwrap();
    let phases = report["phases"].as_array().unwrap();
    let ops: Vec<&str> = phases.iter().map(|p| p["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["put", "get", "head", "list", "delete"]);
    for p in phases {
        assert_eq!(p["errors"], 0, "{p}");
        assert!(p["p99_ms"].as_f64().unwrap() >= p["p50_ms"].as_f64().unwrap());
    }
    assert_eq!(phases[0]["requests"], 40);
    assert_eq!(phases[3]["requests"], 3);
    let o = swift(&["list", "loadtest"]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", text(&o));

    // down stops exactly the recorded pids.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/cluster.json")).unwrap()).unwrap();
    let pids: Vec<u64> = record["procs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 35, "servers, proxy and daemons");
    let down = ringsmith()
        .args(["cluster", "down", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        text(&down).contains("Stopped 35 processes"),
        "{}",
        text(&down)
    );
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit_once(") ").unwrap().1.starts_with('Z'))
            .unwrap_or(false);
        assert!(!alive, "pid {pid} still running after cluster down");
    }
    let st = ringsmith()
        .args(["cluster", "status", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!st.status.success());
}

#[test]
fn cluster_up_rejects_bad_arguments_without_starting_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ringsmith()
        .args(["cluster", "up", "--nodes", "2", "--replicas", "3", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--replicas 3"), "{}", text(&o));
    assert!(!tmp.path().join("run/cluster.json").exists());
}

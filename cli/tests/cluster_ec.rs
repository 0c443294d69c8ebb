//! `ringsmith cluster up --ec-policy`: a six-node Ringsmith cluster whose default policy
//! is erasure-coded (4+2), used through python-swiftclient, through the real binaries.

mod cluster_support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use cluster_support::{check_listeners, free_port, ringsmith, server_bin, text, Down};

/// A base port with base, +1, +2 free on the addresses of `nodes` nodes.
fn free_base_for(nodes: u32) -> u16 {
    for _ in 0..200 {
        let base = free_port("127.0.0.2");
        if base > 65000 {
            continue;
        }
        let ok = (2..2 + nodes).all(|n| {
            (0..3).all(|k| TcpListener::bind((format!("127.0.0.{n}").as_str(), base + k)).is_ok())
        });
        if ok {
            return base;
        }
    }
    panic!("no free port range on the node addresses");
}

/// Durable fragment archive names (`<ts>#<index>#d.data`) under `dir`, as indexes.
fn durable_fragment_indexes(dir: &Path) -> Vec<u32> {
    fn walk(p: &Path, out: &mut Vec<u32>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix("#d.data"))
                {
                    out.push(stem.rsplit('#').next().unwrap().parse().unwrap());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

#[test]
fn cluster_up_with_an_ec_default_policy_stores_fragment_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let proxy_port = free_port("127.0.0.1");
    let base = free_base_for(6);
    let _guard = Down(dir.clone());
    let up = ringsmith()
        .args(["cluster", "up", "--nodes", "6", "--part-power", "6"])
        .args([
            "--ec-policy",
            "4+2",
            "--ec-segment-size",
            "4096",
            "--ec-default",
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
    // With an EC policy every node runs a reconstructor.
    let record = std::fs::read_to_string(dir.join("run/cluster.json")).unwrap();
    assert_eq!(
        record.matches("\"object-reconstructor\"").count(),
        6,
        "{record}"
    );
    assert!(
        text(&up).contains("ec4-2 (erasure-coded, default)"),
        "{}",
        text(&up)
    );
    let conf = std::fs::read_to_string(dir.join("etc/swift.conf")).unwrap();
    assert!(
        conf.contains(
            "[storage-policy:1]\nname = ec4-2\npolicy_type = erasure_coding\n\
             ec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\n\
             ec_num_parity_fragments = 2\nec_object_segment_size = 4096\ndefault = yes\n"
        ),
        "{conf}"
    );
    assert!(
        !conf.contains("name = gold\npolicy_type = replication\ndefault"),
        "{conf}"
    );
    // Swift's own ring code reads the EC ring: six replicas.
    let info = Command::new(ringsmith_testkit::swift_venv().join("bin/python3"))
        .args([
            "-c",
            "import sys\nfrom swift.common.ring import RingData\n\
             print(RingData.load(sys.argv[1]).replica_count)",
        ])
        .arg(dir.join("etc/object-1.ring.gz"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&info.stdout).trim(),
        "6.0",
        "{}",
        text(&info)
    );

    let auth = format!("http://127.0.0.1:{proxy_port}/auth/v1.0");
    let swift = |args: &[&str]| {
        Command::new(ringsmith_testkit::swift_bin("swift"))
            .args(["-A", &auth, "-U", "test:tester", "-K", "testing"])
            .args(args)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let body: Vec<u8> = (0..3 * 4096 + 5u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(tmp.path().join("cold.bin"), &body).unwrap();
    let o = swift(&["upload", "cold", "cold.bin"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = swift(&["stat", "cold"]);
    assert!(text(&o).contains("ec4-2"), "{}", text(&o));
    let o = swift(&["download", "cold", "cold.bin", "-o", "back.bin"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(tmp.path().join("back.bin")).unwrap(), body);
    assert_eq!(
        durable_fragment_indexes(&dir.join("srv")),
        vec![0, 1, 2, 3, 4, 5],
        "one durable fragment archive per index"
    );
    // The replicated policy still works beside it.
    let o = swift(&[
        "upload",
        "--header",
        "X-Storage-Policy: gold",
        "warm",
        "cold.bin",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = swift(&["download", "warm", "cold.bin", "-o", "warm.bin"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(tmp.path().join("warm.bin")).unwrap(), body);
}

#[test]
fn cluster_up_refuses_an_ec_policy_the_cluster_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let o = ringsmith()
        .args([
            "cluster",
            "up",
            "--nodes",
            "3",
            "--ec-policy",
            "4+2",
            "--dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--ec-policy 4+2 stores 6 fragments"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("only 3"), "{}", text(&o));
    assert!(!tmp.path().join("run/cluster.json").exists());
    for bad in ["4x2", "0+2", "4+0", "a+b"] {
        let o = ringsmith()
            .args(["cluster", "up", "--ec-policy", bad, "--dir"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{bad}");
        assert!(text(&o).contains("K+M"), "{bad}: {}", text(&o));
    }
}

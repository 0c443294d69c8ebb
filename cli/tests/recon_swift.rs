//! Interop: a cluster on loopback — the real Swift 2.38.3 account, container and object
//! servers (from the test virtualenv, with the recon middleware), or Ringsmith's
//! `ringsmith-server` started from the same configs — with recon cache files written by the
//! test. The real `swift-recon` and `ringsmith recon` run the same checks on the same
//! cluster; their figures must be the same.

mod recon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recon_support::*;
use ringsmith_testkit::{swift_bin, swift_venv};

fn free_port() -> u16 {
    closed_port()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_ring(etc: &Path, name: &str, devs: &[(u32, &str, u16, &str)]) {
    let builder = etc.join(format!("{name}.builder"));
    let srb = swift_bin("swift-ring-builder");
    run_ok(
        Command::new(&srb)
            .arg(&builder)
            .args(["create", "4", "1", "1"]),
    );
    for (zone, ip, port, dev) in devs {
        run_ok(Command::new(&srb).arg(&builder).args([
            "add",
            &format!("r1z{zone}-{ip}:{port}/{dev}"),
            "100",
        ]));
    }
    run_ok(Command::new(&srb).arg(&builder).arg("rebalance"));
    assert!(etc.join(format!("{name}.ring.gz")).exists());
}

struct Cluster {
    _dir: tempfile::TempDir,
    etc: PathBuf,
    _servers: Servers,
}

/// Two object servers (different cache files, so the figures have a spread), one
/// container and one account server.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Swift,
    Ringsmith,
}

fn start_cluster(flavor: Flavor) -> Cluster {
    swift_venv();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("swift.conf"),
        "[swift-hash]\nswift_hash_path_prefix = reconprefix\nswift_hash_path_suffix = reconsuffix\n\n\
         [storage-policy:0]\nname = gold\ndefault = yes\n",
    )
    .unwrap();
    let (po_a, po_b, pc, pa) = (free_port(), free_port(), free_port(), free_port());
    // The second object server on its own IP, so each server is a separate disk-usage host.
    build_ring(
        &etc,
        "object",
        &[
            (1, "127.0.0.1", po_a, "d1"),
            (1, "127.0.0.1", po_a, "d2"),
            (2, "127.0.0.2", po_b, "d3"),
        ],
    );
    build_ring(&etc, "container", &[(1, "127.0.0.1", pc, "d1")]);
    build_ring(&etc, "account", &[(1, "127.0.0.1", pa, "d1")]);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let node = |name: &str, devs: &[&str]| -> (PathBuf, PathBuf) {
        let devices = root.join(name).join("srv");
        let cache = root.join(name).join("cache");
        for d in devs {
            std::fs::create_dir_all(devices.join(d)).unwrap();
        }
        std::fs::create_dir_all(&cache).unwrap();
        (devices, cache)
    };
    let (dev_a, cache_a) = node("obj-a", &["d1", "d2"]);
    let (dev_b, cache_b) = node("obj-b", &["d3"]);
    let (dev_c, cache_c) = node("cont", &["d1"]);
    let (dev_acc, cache_acc) = node("acct", &["d1"]);
    // Quarantined objects: one subdirectory per quarantined hash.
    for h in ["aaa", "bbb"] {
        std::fs::create_dir_all(dev_a.join("d1/quarantined/objects").join(h)).unwrap();
    }
    std::fs::create_dir_all(dev_b.join("d3/quarantined/objects-1/ccc")).unwrap();

    let write = |p: PathBuf, v: serde_json::Value| std::fs::write(p, format!("{v}\n")).unwrap();
    write(
        cache_a.join("object.recon"),
        serde_json::json!({
            "async_pending": 3, "async_pending_last": now - 30.0,
            "object_auditor_stats_ALL": {"d1": {"audit_time": 2.5, "bytes_processed": 1000, "errors": 1, "passes": 4, "quarantined": 0, "start_time": now},
                                          "d2": {"audit_time": 1.5, "bytes_processed": 500, "errors": 0, "passes": 2, "quarantined": 1, "start_time": now}},
            "object_auditor_stats_ZBF": {"audit_time": 0.5, "bytes_processed": 10, "errors": 0, "passes": 1, "quarantined": 0, "start_time": now},
            "object_updater_sweep": 0.45, "object_updater_last": now - 40.0,
            "replication_time": 0.12, "replication_last": now - 3700.0,
            "replication_stats": {"attempted": 6, "failure": 1, "success": 12, "hashmatch": 9},
            "object_replication_time": 0.12, "object_replication_last": now - 3700.0,
            "object_expiration_pass": 1.75, "expired_last_pass": 4,
            "object_reconstruction_time": 3.0, "object_reconstruction_last": now - 90000.0
        }),
    );
    write(
        cache_b.join("object.recon"),
        serde_json::json!({
            "async_pending": 10,
            "object_auditor_stats_ALL": {"audit_time": 7, "bytes_processed": 3000, "errors": 0, "passes": 9, "quarantined": 2, "start_time": now},
            "object_updater_sweep": 1.25,
            "replication_time": 0.5, "replication_last": now - 20.0,
            "replication_stats": {"attempted": 3, "failure": 0, "success": 6},
            "object_expiration_pass": 0.25, "expired_last_pass": 0,
            "object_reconstruction_time": 1.0, "object_reconstruction_last": now - 600.0
        }),
    );
    write(
        cache_b.join("drive.recon"),
        serde_json::json!({"drive_audit_errors": 2}),
    );
    write(
        cache_c.join("container.recon"),
        serde_json::json!({
            "container_auditor_pass_completed": 0.0124, "container_audits_failed": 1,
            "container_audits_passed": 41, "container_audits_since": now - 500.0,
            "container_updater_sweep": 0.0657,
            "replication_time": 0.0587, "replication_last": now - 100.0,
            "replication_stats": {"attempted": 3, "failure": 0, "success": 6, "no_change": 6},
            "sharding_stats": {"attempted": 5, "failure": 1, "success": 4},
            "sharding_time": 12.5, "sharding_last": now - 7200.0
        }),
    );
    write(
        cache_acc.join("account.recon"),
        serde_json::json!({
            "account_auditor_pass_completed": 2.5, "account_audits_failed": 0,
            "account_audits_passed": 7, "account_audits_since": now - 50.0,
            "replication_time": 1.5, "replication_last": now - 5.0,
            "replication_stats": {"attempted": 1, "failure": 0, "success": 2}
        }),
    );

    let mut servers = Servers(Vec::new());
    let logs = root.join("log");
    std::fs::create_dir_all(&logs).unwrap();
    for (name, kind, ip, port, devices, cache) in [
        ("obj-a", "object", "127.0.0.1", po_a, &dev_a, &cache_a),
        ("obj-b", "object", "127.0.0.2", po_b, &dev_b, &cache_b),
        ("cont", "container", "127.0.0.1", pc, &dev_c, &cache_c),
        ("acct", "account", "127.0.0.1", pa, &dev_acc, &cache_acc),
    ] {
        let conf = etc.join(format!("{name}.conf"));
        std::fs::write(&conf, server_conf(kind, ip, port, devices, &etc, cache)).unwrap();
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let mut cmd = match flavor {
            Flavor::Swift => Command::new(swift_bin(&format!("swift-{kind}-server"))),
            Flavor::Ringsmith => {
                let mut c = Command::new(ringsmith_server());
                c.args([kind, "-c"]);
                c
            }
        };
        let child = cmd
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        servers.0.push(child);
    }
    // Bounded wait for every server's recon endpoint; the addresses in the order the
    // servers were started.
    let deadline = Instant::now() + Duration::from_secs(90);
    let addrs = [
        ("127.0.0.1", po_a),
        ("127.0.0.2", po_b),
        ("127.0.0.1", pc),
        ("127.0.0.1", pa),
    ];
    for (ip, port) in addrs {
        loop {
            if recon_version_ok(ip, port) {
                break;
            }
            for c in &mut servers.0 {
                if let Some(status) = c.try_wait().unwrap() {
                    let logs: Vec<String> = ["obj-a", "obj-b", "cont", "acct"]
                        .iter()
                        .map(|n| {
                            std::fs::read_to_string(root.join("log").join(format!("{n}.log")))
                                .unwrap_or_default()
                        })
                        .collect();
                    panic!("a Swift server exited ({status}): {}", logs.join("\n---\n"));
                }
            }
            assert!(
                Instant::now() < deadline,
                "Swift server on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for (child, (ip, port)) in servers.0.iter().zip(addrs) {
        let addr = format!("{ip}:{port}").parse().unwrap();
        if let Err(e) = ringsmith_testkit::check_listener(addr, child.id()) {
            panic!("server on {ip}:{port}: {e}");
        }
    }
    Cluster {
        _dir: dir,
        etc,
        _servers: servers,
    }
}

fn swift_recon(args: &[&str]) -> String {
    let mut child = Command::new(swift_bin("swift-recon"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(&mut child, Duration::from_secs(120));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Figure lines grouped by check (split on the rule lines), each group sorted: hosts are
/// a set in swift-recon, so its order within a check is arbitrary.
fn blocks(stdout: &str, volatile: &[&str]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for l in figure_lines(stdout) {
        if l.starts_with("====") {
            out.push(Vec::new());
            continue;
        }
        // Live figures (load, sockets) move between the two runs: keep the name only.
        let l = match volatile.iter().find(|v| l.starts_with(*v)) {
            Some(v) => v.to_string(),
            // Disk sizes move while the tools run (other processes write to this disk).
            None if l.starts_with("Disk usage:") => {
                l[..l.find(|c: char| c.is_ascii_digit()).unwrap_or(l.len())].to_string()
            }
            None if is_graph_line(&l) => "graph".to_string(),
            None => l,
        };
        out.last_mut().unwrap().push(l);
    }
    for b in &mut out {
        b.sort();
    }
    out.retain(|b| !b.is_empty());
    out
}

const VOLATILE: &[&str] = &[
    "[1m_load_avg]",
    "[5m_load_avg]",
    "[15m_load_avg]",
    "[tcp_in_use]",
    "[tcp_mem_allocated_bytes]",
    "[tcp6_in_use]",
    "[time_wait]",
    "[orphan]",
];

fn is_graph_line(l: &str) -> bool {
    let t = l.trim_start();
    t.split_once('%').is_some_and(|(n, rest)| {
        n.bytes().all(|b| b.is_ascii_digit())
            && rest
                .trim_start()
                .split(' ')
                .next()
                .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[test]
fn same_figures_as_swift_recon_on_real_swift_servers() {
    same_figures_as_swift_recon(Flavor::Swift);
}

#[test]
fn same_figures_as_swift_recon_on_ringsmith_servers() {
    same_figures_as_swift_recon(Flavor::Ringsmith);
}

fn same_figures_as_swift_recon(flavor: Flavor) {
    let c = start_cluster(flavor);
    let etc = c.etc.to_str().unwrap();
    let runs: &[&[&str]] = &[
        &[
            "object",
            "-a",
            "-r",
            "-R",
            "--auditor",
            "--updater",
            "--expirer",
            "-u",
            "-l",
            "-q",
            "--sockstat",
            "--driveaudit",
            "-T",
            "--swift-versions",
            "--validate-servers",
            "-d",
        ],
        &[
            "container",
            "-r",
            "--auditor",
            "--updater",
            "--sharding",
            "-u",
            "-q",
            "--validate-servers",
            "-T",
        ],
        &[
            "account",
            "-r",
            "--auditor",
            "-u",
            "--validate-servers",
            "--swift-versions",
        ],
        &["object", "container", "account", "--driveaudit", "-q"],
    ];
    for args in runs {
        let mut full = vec!["--swiftdir", etc];
        full.extend_from_slice(args);
        let theirs = swift_recon(&full);
        let ours_out = ringsmith_recon(&full);
        let ours = String::from_utf8_lossy(&ours_out.stdout).into_owned();
        assert!(
            theirs.contains("Starting reconnaissance"),
            "swift-recon failed: {theirs}"
        );
        // Multiple server types come out of a Python set in swift-recon; compare per type.
        let mut theirs_by_type: Vec<Vec<Vec<String>>> = split_types(&theirs)
            .iter()
            .map(|t| blocks(t, VOLATILE))
            .collect();
        let mut ours_by_type: Vec<Vec<Vec<String>>> = split_types(&ours)
            .iter()
            .map(|t| blocks(t, VOLATILE))
            .collect();
        theirs_by_type.sort();
        ours_by_type.sort();
        assert_eq!(
            ours_by_type, theirs_by_type,
            "args {args:?}\n--- ours:\n{ours}\n--- swift-recon:\n{theirs}"
        );
        // Figures that must be there, so the comparison cannot pass on two empty reports.
        if args[0] == "object" && args.len() > 6 {
            for want in [
                "[async_pending] low: 3, high: 10, avg: 6.5, total: 13, Failed: 0.0%, no_result: 0, reported: 2",
                "[replication_success] low: 6, high: 12, avg: 9.0, total: 18, Failed: 0.0%, no_result: 0, reported: 2",
                "[ALL_passes_last_path] low: 6, high: 9, avg: 7.5, total: 15, Failed: 0.0%, no_result: 0, reported: 2",
                "[quarantined_objects_1] low: 1, high: 1, avg: 1.0, total: 1, Failed: 0.0%, no_result: 0, reported: 1",
                "[drive_audit_errors] low: 2, high: 2, avg: 2.0, total: 2, Failed: 50.0%, no_result: 1, reported: 1",
                "Versions matched (2.38.3), 0 error[s] while checking hosts.",
                "2/2 hosts ok, 0 error[s] while checking hosts.",
            ] {
                assert!(ours.contains(want), "missing {want:?} in\n{ours}");
            }
        }
        // Directory-backed devices are "not mounted" for real Swift (an unhealthy exit);
        // Ringsmith servers report them mounted with their filesystem's sizes.
        if args.contains(&"-u") {
            let want = if flavor == Flavor::Swift { 1 } else { 0 };
            assert_eq!(ours_out.status.code(), Some(want), "{ours}");
        }
    }

    // Ring md5s agree (swift-recon then crashes on swift.conf with a non-default swift dir,
    // its quirk Q2; ours reads the node's swift.conf md5 whatever path keys it).
    let theirs = swift_recon(&["--swiftdir", etc, "object", "--md5"]);
    let out = ringsmith_recon(&["--swiftdir", etc, "object", "--md5"]);
    let ours = String::from_utf8_lossy(&out.stdout);
    assert!(
        theirs.contains("2/2 hosts matched, 0 error[s] while checking hosts."),
        "{theirs}"
    );
    let ring_part = |s: &str| -> Vec<String> {
        let head: Vec<&str> = s
            .lines()
            .take_while(|l| !l.contains("swift.conf"))
            .collect();
        figure_lines(&head.join("\n"))
    };
    assert_eq!(ring_part(&ours), ring_part(&theirs));
    // (swift-recon's swift.conf half needs /etc/swift/swift.conf on the client machine,
    // whatever --swiftdir says; this machine has none, so only the ring half is compared.)
    assert_eq!(
        ours.matches("2/2 hosts matched, 0 error[s] while checking hosts.")
            .count(),
        2,
        "{ours}"
    );
    assert_eq!(out.status.code(), Some(0), "{ours}");

    // A local ring that differs from the nodes' is a mismatch on every host, and a failing
    // exit (a copy of the swift dir whose object ring has one more byte after the gzip data).
    let other = tempfile::tempdir().unwrap();
    for f in ["swift.conf", "object.ring.gz"] {
        std::fs::copy(c.etc.join(f), other.path().join(f)).unwrap();
    }
    let mut bytes = std::fs::read(c.etc.join("object.ring.gz")).unwrap();
    bytes.push(0);
    std::fs::write(other.path().join("object.ring.gz"), &bytes).unwrap();
    let out = ringsmith_recon(&[
        "--swiftdir",
        other.path().to_str().unwrap(),
        "object",
        "--md5",
    ]);
    let ours = String::from_utf8_lossy(&out.stdout);
    assert!(
        ours.contains("0/2 hosts matched, 2 error[s] while checking hosts."),
        "{ours}"
    );
    assert!(ours.contains("(object.ring.gz => "), "{ours}");
    assert_eq!(out.status.code(), Some(1));
}

/// The report of each server type (from one "Starting reconnaissance" line to the next).
fn split_types(stdout: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("--> Starting reconnaissance") {
            parts.push(String::new());
        }
        if let Some(p) = parts.last_mut() {
            p.push_str(l);
            p.push('\n');
        }
    }
    parts
}

//! `ringsmith ring push` through the real binary, on three hosts of loopback addresses, each
//! with its own swift_dir as separate machines have: two run `ringsmith-server`, the third
//! Swift 2.38.3's object server, so the check through `/recon/ringmd5` is proven against the
//! real recon middleware as well as ours. The copy command is `cp` into each host's
//! directory, standing in for rsync or scp.

mod recon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use recon_support::{recon_version_ok, ringsmith_server, server_conf, wait_bounded, Servers};
use ringsmith_testkit::{swift_bin, swift_venv};

const IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

fn ringsmith(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringsmith"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(120))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ring_cmd(builder: &Path, args: &[&str]) {
    let mut all = vec!["ring", builder.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = ringsmith(&all);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "ring {args:?}: {}",
        text(&out)
    );
}

use ringsmith_testkit::free_port;

/// The host directories `<root>/<ip>/{etc,srv/d1,cache}` and the running servers.
struct Hosts {
    root: PathBuf,
    ports: Vec<u16>,
    servers: Servers,
}

impl Hosts {
    fn etc(&self, ip: &str) -> PathBuf {
        self.root.join(ip).join("etc")
    }
}

fn start_hosts(root: &Path) -> Hosts {
    swift_venv();
    let mut ports = Vec::new();
    let mut servers = Servers(Vec::new());
    for (i, ip) in IPS.iter().enumerate() {
        let host = root.join(ip);
        let (etc, srv, cache) = (host.join("etc"), host.join("srv"), host.join("cache"));
        for d in [&etc, &srv.join("d1"), &cache] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            etc.join("swift.conf"),
            "[swift-hash]\nswift_hash_path_prefix = pushprefix\nswift_hash_path_suffix = pushsuffix\n\n\
             [storage-policy:0]\nname = gold\ndefault = yes\n",
        )
        .unwrap();
        let port = free_port(ip);
        let conf = host.join("object-server.conf");
        std::fs::write(&conf, server_conf("object", ip, port, &srv, &etc, &cache)).unwrap();
        let log = std::fs::File::create(host.join("server.log")).unwrap();
        // The last host is a real Swift node.
        let mut cmd = if i == 2 {
            Command::new(swift_bin("swift-object-server"))
        } else {
            let mut c = Command::new(ringsmith_server());
            c.args(["object", "-c"]);
            c
        };
        let child = cmd
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        servers.0.push(child);
        ports.push(port);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for (ip, port) in IPS.iter().zip(&ports) {
        while !recon_version_ok(ip, *port) {
            let log = std::fs::read_to_string(root.join(ip).join("server.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "server on {ip}:{port} did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for ((ip, port), child) in IPS.iter().zip(&ports).zip(&servers.0) {
        let addr = format!("{ip}:{port}").parse().unwrap();
        if let Err(e) = ringsmith_testkit::check_listener(addr, child.id()) {
            panic!("server on {ip}:{port}: {e}");
        }
    }
    Hosts {
        root: root.to_path_buf(),
        ports,
        servers,
    }
}

fn md5_of(path: &Path) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(std::fs::read(path).unwrap()))
}

#[test]
fn push_copies_to_every_host_and_names_the_servers_that_missed_it() {
    let tmp = tempfile::tempdir().unwrap();
    let hosts = start_hosts(&tmp.path().join("hosts"));
    let admin = tmp.path().join("admin");
    std::fs::create_dir_all(&admin).unwrap();
    let builder = admin.join("object.builder");
    let ring = admin.join("object.ring.gz");
    ring_cmd(&builder, &["create", "6", "3", "0"]);
    for (ip, port) in IPS.iter().zip(&hosts.ports) {
        ring_cmd(&builder, &["add", &format!("r1z1-{ip}:{port}/d1"), "100"]);
    }
    ring_cmd(&builder, &["rebalance"]);
    let copy = format!("cp {{files}} {}/{{ip}}/etc/", hosts.root.display());

    // Dry run: commands printed, nothing copied, nothing asked.
    let out = ringsmith(&[
        "ring",
        "push",
        ring.to_str().unwrap(),
        "--command",
        &copy,
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for ip in IPS {
        assert!(
            stdout.contains(&format!("would run on {ip}: cp {}", ring.display())),
            "{stdout}"
        );
        assert!(!hosts.etc(ip).join("object.ring.gz").exists());
    }

    // Every host copied; every server, Swift's included, reports the ring.
    let out = ringsmith(&["ring", "push", ring.to_str().unwrap(), "--command", &copy]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 of 3 hosts copied; 3 of 3 servers serve the pushed rings."),
        "{stdout}"
    );
    for ip in IPS {
        assert_eq!(md5_of(&hosts.etc(ip).join("object.ring.gz")), md5_of(&ring));
    }

    // A new ring; the copy to one host fails. That host's server still reports the old
    // ring, and both are named; the exit status is 1.
    let old_md5 = md5_of(&ring);
    ring_cmd(&builder, &["set_weight", "d0", "50"]);
    ring_cmd(&builder, &["write_ring"]);
    let new_md5 = md5_of(&ring);
    assert_ne!(old_md5, new_md5);
    let flaky = format!(
        "test {{ip}} != 127.0.0.3 || {{ echo no route to 127.0.0.3 >&2; exit 7; }}; {copy}"
    );
    let out = ringsmith(&[
        "ring",
        "push",
        ring.to_str().unwrap(),
        "--command",
        &flaky,
        "--verify-timeout",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["rings"][0]["md5"], new_md5.as_str());
    let copies = report["copies"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = copies.iter().filter(|c| c["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["ip"], "127.0.0.3");
    assert_eq!(failed[0]["exit_code"], 7);
    assert!(failed[0]["problem"]
        .as_str()
        .unwrap()
        .contains("no route to 127.0.0.3"));
    for s in report["servers"].as_array().unwrap() {
        if s["ip"] == "127.0.0.3" {
            assert_eq!(s["ok"], false);
            let problem = s["problem"].as_str().unwrap();
            assert!(
                problem.contains("object.ring.gz has md5") && problem.contains(&new_md5),
                "{problem}"
            );
        } else {
            assert_eq!(s["ok"], true, "{s}");
        }
    }

    // A stopped server is named as not updated by a verify-only run.
    let mut servers = hosts.servers;
    servers.0[0].kill().unwrap();
    servers.0[0].wait().unwrap();
    let out = ringsmith(&[
        "ring",
        "push",
        ring.to_str().unwrap(),
        "--verify-only",
        "--verify-timeout",
        "1",
        "--timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let p0 = hosts.ports[0];
    assert!(
        stdout.contains(&format!("127.0.0.2:{p0}: NOT UPDATED:")),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 of 3 servers report the local rings."),
        "{stdout}"
    );
    assert!(stdout.contains("Not updated: 127.0.0.2:"), "{stdout}");
}

#[test]
fn push_refuses_bad_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.ring.gz");
    let out = ringsmith(&["ring", "push", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no ring file"), "{}", text(&out));

    let out = ringsmith(&["ring", "push", "--swift-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no *.ring.gz in"), "{}", text(&out));

    let junk = tmp.path().join("object.ring.gz");
    std::fs::write(&junk, b"not a ring").unwrap();
    let out = ringsmith(&["ring", "push", junk.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("object.ring.gz"),
        "{v}"
    );

    let out = ringsmith(&["ring", "push", junk.to_str().unwrap(), "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--timeout must be a positive number"),
        "{}",
        text(&out)
    );
}

//! `ringsmith cluster up --memcached`: a memcached started (and recorded by pid) with the
//! cluster, the proxy's `cache` filter pointed at it, tokens kept there in Swift's form
//! (Swift's own memcache client reads them back), and `cluster down` stopping it.

mod cluster_support;

use std::process::Command;

use cluster_support::{
    check_listeners, cluster_json, free_base, free_port, header, http, ringsmith, server_bin, text,
    Down,
};

#[test]
fn cluster_up_memcached_shares_tokens_and_down_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let proxy_port = free_port("127.0.0.1");
    let base = free_base();
    let _guard = Down(dir.clone());
    let up = ringsmith()
        .args([
            "cluster",
            "up",
            "--memcached",
            "--nodes",
            "1",
            "--no-daemons",
        ])
        .args(["--part-power", "6", "--dir"])
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

    let record = cluster_json(&dir);
    let mc = record["procs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "memcached")
        .expect("memcached recorded")
        .clone();
    let mc_addr = mc["addr"].as_str().unwrap().to_string();
    let mc_pid = mc["pid"].as_u64().unwrap();
    let conf = std::fs::read_to_string(dir.join("etc/proxy-server.conf")).unwrap();
    assert!(
        conf.contains(&format!("memcache_servers = {mc_addr}")),
        "{conf}"
    );
    let pipeline = conf.lines().find(|l| l.starts_with("pipeline =")).unwrap();
    assert!(
        pipeline.contains("proxy-logging cache listing_formats")
            && pipeline.contains("tempurl ratelimit tempauth"),
        "Swift's sample places: {pipeline}"
    );
    let st = ringsmith()
        .args(["cluster", "status", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(text(&st).contains("memcached"), "{}", text(&st));

    // A token from the proxy is in memcached, as Swift's tempauth keeps it.
    let proxy = format!("127.0.0.1:{proxy_port}");
    let (status, head, _) = http(
        &proxy,
        "GET",
        "/auth/v1.0",
        &[("x-auth-user", "test:tester"), ("x-auth-key", "testing")],
        b"",
    );
    assert_eq!(status, 200, "{head}");
    let token = header(&head, "x-auth-token").unwrap().to_string();
    let script = "import sys\n\
        from swift.common.memcached import MemcacheRing\n\
        from swift.common.utils import get_logger\n\
        ring = MemcacheRing([sys.argv[1]], logger=get_logger({}, log_route='t'))\n\
        token = ring.get('AUTH_/user/test:tester')\n\
        expires, groups = ring.get('AUTH_/token/' + token)\n\
        print(token, groups)\n";
    let out = Command::new(ringsmith_testkit::swift_venv().join("bin/python3"))
        .args(["-c", script, &mc_addr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        format!("{token} test,test:tester,AUTH_test")
    );
    let (status, _, _) = http(
        &proxy,
        "PUT",
        "/v1/AUTH_test/box",
        &[("x-auth-token", &token)],
        b"",
    );
    assert_eq!(status, 201);

    let down = ringsmith()
        .args(["cluster", "down", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    let alive = std::fs::read_to_string(format!("/proc/{mc_pid}/stat"))
        .map(|s| !s.rsplit_once(") ").unwrap().1.starts_with('Z'))
        .unwrap_or(false);
    assert!(
        !alive,
        "memcached (pid {mc_pid}) still running after cluster down"
    );
}

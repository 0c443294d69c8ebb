//! `ringsmith recon` against a fake cluster whose hosts misbehave: each failure gives a
//! clear line for that host, the report goes on, and the exit status names the failures.

mod recon_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use recon_support::*;

fn good_bodies() -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert(
        "async".into(),
        r#"{"async_pending": 7, "async_pending_last": 1.0}"#.into(),
    );
    m.insert(
        "load".into(),
        r#"{"1m": 1.5, "5m": 0.75, "15m": 0.25, "tasks": "1/131", "processes": 10467}"#.into(),
    );
    m.insert("time".into(), "@now".into());
    m.insert("version".into(), r#"{"version": "2.38.3"}"#.into());
    m.insert(
        "unmounted".into(),
        r#"[{"device": "d9", "mounted": false}, {"device": "d8", "mounted": "[Errno 5] Input/output error"}]"#
            .into(),
    );
    m.insert(
        "diskusage".into(),
        r#"[{"device": "d1", "mounted": true, "size": 200000000000, "used": 74000000000, "avail": 126000000000},
            {"device": "d2", "mounted": true, "size": 200000000000, "used": 162000000000, "avail": 38000000000}]"#
            .into(),
    );
    m
}

#[test]
fn every_kind_of_broken_host_gets_its_own_line_and_the_report_goes_on() {
    let fake = FakeCluster::start(vec![
        Behaviour::Json(good_bodies()),
        Behaviour::Status(500),
        Behaviour::Garbage,
        Behaviour::Hang,
    ]);
    let p = fake.ports();
    let refused = closed_port();
    let dir = tempfile::tempdir().unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[
            ("127.0.0.1", p[0], "d1", 1, 1),
            ("127.0.0.1", p[0], "d2", 1, 1),
            ("127.0.0.1", p[1], "d1", 1, 2),
            ("127.0.0.1", p[2], "d1", 1, 2),
            ("127.0.0.1", p[3], "d1", 1, 3),
            ("127.0.0.1", refused, "d1", 1, 3),
        ],
    );
    let swiftdir = dir.path().to_str().unwrap();
    let t0 = Instant::now();
    let out = ringsmith_recon(&["--swiftdir", swiftdir, "-a", "-l", "--timeout", "1"]);
    let elapsed = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("--> Starting reconnaissance on 5 hosts (object)"),
        "{stdout}"
    );
    let url = |port: u16, check: &str| format!("http://127.0.0.1:{port}/recon/{check}");
    for (port, what) in [
        (p[1], "HTTP Error 500: Internal Server Error".to_string()),
        (p[2], "malformed JSON".to_string()),
        (p[3], "timed out after 1s".to_string()),
        (refused, "unreachable: cannot connect".to_string()),
    ] {
        let line = format!("-> {}: {what}", url(port, "async"));
        assert!(stdout.contains(&line), "missing {line:?} in\n{stdout}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    }
    // The good host's figures are still there, for both checks.
    assert!(
        stdout.contains("[async_pending] low: 7, high: 7, avg: 7.0, total: 7, Failed: 0.0%, no_result: 0, reported: 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[1m_load_avg] low: 1, high: 1, avg: 1.5, total: 1, Failed: 0.0%, no_result: 0, reported: 1"),
        "{stdout}"
    );
    assert!(
        stderr.contains("UNHEALTHY") && stderr.contains("4 host(s)"),
        "{stderr}"
    );
    // Hung hosts are waited for concurrently: two checks, about one timeout each.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn healthy_cluster_exits_zero_and_unhealthy_checks_exit_one() {
    let fake = FakeCluster::start(vec![
        Behaviour::Json(good_bodies()),
        Behaviour::Json(good_bodies()),
    ]);
    let p = fake.ports();
    let dir = tempfile::tempdir().unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[
            ("127.0.0.1", p[0], "d1", 1, 1),
            ("127.0.0.2", p[1], "d1", 1, 2),
        ],
    );
    let swiftdir = dir.path().to_str().unwrap();
    // 127.0.0.2 has no listener on that port: filter it out by zone first.
    let out = ringsmith_recon(&[
        "--swiftdir",
        swiftdir,
        "-z",
        "1",
        "-a",
        "-l",
        "-T",
        "--swift-versions",
        "--validate-servers",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1/1 hosts matched, 0 error[s] while checking hosts."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Versions matched (2.38.3), 0 error[s] while checking hosts."),
        "{stdout}"
    );
    assert!(
        stdout.contains("1/1 hosts ok, 0 error[s] while checking hosts."),
        "{stdout}"
    );

    // Unmounted and failing drives are a failed check naming the host.
    let out = ringsmith_recon(&["--swiftdir", swiftdir, "-z", "1", "-u"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(&format!("Not mounted: d9 on 127.0.0.1:{}", p[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Device errors: d8 on 127.0.0.1:{}", p[0])),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("d9 not mounted on 127.0.0.1:{}", p[0])),
        "{stderr}"
    );

    // A wrong server type fails --validate-servers.
    let out = ringsmith_recon(&[
        "--swiftdir",
        swiftdir,
        "-z",
        "1",
        "container",
        "--validate-servers",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no container ring: a usage error"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("container.ring.gz"), "{stderr}");
}

#[test]
fn disk_usage_prints_swift_recons_graph_and_rankings() {
    let fake = FakeCluster::start(vec![Behaviour::Json(good_bodies())]);
    let p = fake.ports();
    let dir = tempfile::tempdir().unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[("127.0.0.1", p[0], "d1", 1, 1)],
    );
    let out = ringsmith_recon(&[
        "--swiftdir",
        dir.path().to_str().unwrap(),
        "-d",
        "--top",
        "2",
        "--lowest",
        "1",
        "--human-readable",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = "Distribution Graph:
 37%    1 *********************************************************************
 81%    1 *********************************************************************
Disk usage: space used: 236 GB of 400 GB
Disk usage: space free: 164 GB of 400 GB
Disk usage: lowest: 37.0%, highest: 81.0%, avg: 59.0%
===============================================================================
TOP 2
81.00%  127.0.0.1       d2
37.00%  127.0.0.1       d1
LOWEST 1
37.00%  127.0.0.1       d1
";
    assert!(stdout.ends_with(want), "{stdout}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn json_report_has_raw_answers_summaries_and_failures() {
    let fake = FakeCluster::start(vec![Behaviour::Json(good_bodies()), Behaviour::Garbage]);
    let p = fake.ports();
    let dir = tempfile::tempdir().unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[
            ("127.0.0.1", p[0], "d1", 1, 1),
            ("127.0.0.1", p[1], "d1", 1, 1),
        ],
    );
    let out = ringsmith_recon(&["--swiftdir", dir.path().to_str().unwrap(), "-a", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["healthy"], false);
    let check = &doc["server_types"][0]["checks"][0];
    assert_eq!(check["check"], "async");
    let answer = |port: u16| {
        check["answers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["host"]["port"] == port)
            .unwrap_or_else(|| panic!("no answer of port {port} in {doc:#}"))
            .clone()
    };
    assert_eq!(
        answer(p[0])["result"]["body"]["async_pending"],
        7,
        "{doc:#}"
    );
    assert_eq!(
        answer(p[1])["result"]["error"]["kind"],
        "malformed_json",
        "{doc:#}"
    );
    assert!(answer(p[1])["result"]["error"]["text"]
        .as_str()
        .unwrap()
        .starts_with("malformed JSON"));
    assert_eq!(check["stats"][0]["total"], 7.0);
    assert_eq!(check["stats"][0]["reported"], 1);
    assert_eq!(doc["failures"][0]["host"]["port"], p[1]);
}

#[test]
fn usage_errors() {
    // No arguments: help, exit 0, like swift-recon.
    let out = ringsmith_recon(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--swiftdir"));
    let out = ringsmith_recon(&["blob", "-a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid Server Type"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("swift.conf"),
        "[storage-policy:0]\nname = gold\n",
    )
    .unwrap();
    let out = ringsmith_recon(&[
        "--swiftdir",
        dir.path().to_str().unwrap(),
        "-p",
        "silver",
        "-a",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid Storage Policy: silver"));
    // Non-object checks on object-only servers print swift-recon's error and go on.
    write_ring(
        &dir.path().join("account.ring.gz"),
        &[("127.0.0.1", closed_port(), "d1", 1, 1)],
    );
    let out = ringsmith_recon(&[
        "--swiftdir",
        dir.path().to_str().unwrap(),
        "account",
        "-a",
        "--suppress",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Error: Can't check asyncs on non object servers."),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn all_checks_with_a_hung_host_take_about_one_timeout_not_one_per_check() {
    let fake = FakeCluster::start(vec![Behaviour::Json(good_bodies()), Behaviour::Hang]);
    let p = fake.ports();
    let dir = tempfile::tempdir().unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[
            ("127.0.0.1", p[0], "d1", 1, 1),
            ("127.0.0.1", p[1], "d1", 1, 2),
        ],
    );
    let t0 = Instant::now();
    let out = ringsmith_recon(&[
        "--swiftdir",
        dir.path().to_str().unwrap(),
        "--all",
        "-t",
        "2",
    ]);
    let elapsed = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    // 17 checks ask the hung host; one after another they would take 34 s.
    let timeouts = stdout.matches("timed out after 2s").count();
    assert!(timeouts >= 16, "{timeouts} timeouts in\n{stdout}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
}

#[test]
fn policies_regions_and_zones_choose_the_hosts() {
    let fake = FakeCluster::start(vec![
        Behaviour::Json(good_bodies()),
        Behaviour::Json(good_bodies()),
        Behaviour::Json(good_bodies()),
    ]);
    let p = fake.ports();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("swift.conf"),
        "[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:1]\nname = silver\naliases = cheap\n",
    )
    .unwrap();
    write_ring(
        &dir.path().join("object.ring.gz"),
        &[
            ("127.0.0.1", p[0], "d1", 1, 1),
            ("127.0.0.1", p[1], "d1", 2, 1),
        ],
    );
    write_ring(
        &dir.path().join("object-1.ring.gz"),
        &[("127.0.0.1", p[2], "d1", 1, 2)],
    );
    let swiftdir = dir.path().to_str().unwrap();
    let hosts_of = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["--swiftdir", swiftdir, "-a", "--json"];
        args.extend_from_slice(extra);
        let out = ringsmith_recon(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ports: Vec<u64> = doc["server_types"][0]["checks"][0]["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["host"]["port"].as_u64().unwrap())
            .collect();
        ports.sort();
        ports
    };
    let sorted = |mut v: Vec<u16>| {
        v.sort();
        v.into_iter().map(u64::from).collect::<Vec<_>>()
    };
    assert_eq!(hosts_of(&[]), sorted(p.clone()));
    for sel in ["1", "silver", "cheap"] {
        assert_eq!(hosts_of(&["-p", sel]), sorted(vec![p[2]]), "-p {sel}");
    }
    assert_eq!(hosts_of(&["-p", "gold"]), sorted(vec![p[0], p[1]]));
    assert_eq!(hosts_of(&["--region", "2"]), sorted(vec![p[1]]));
    assert_eq!(hosts_of(&["--region", "1", "-z", "1"]), sorted(vec![p[0]]));
}

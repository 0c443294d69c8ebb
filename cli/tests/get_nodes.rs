//! `ringsmith get-nodes` through the real binary, against the real `swift-get-nodes`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/rings")
        .join(name)
}

/// A swift dir with swift.conf and the fixture rings under the names operators use.
fn swift_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("swift.conf"), dir.path().join("swift.conf")).unwrap();
    for (from, to) in [
        ("frac.v2.ring.gz", "object.ring.gz"),
        ("frac.v1.ring.gz", "object-1.ring.gz"),
        ("basic.v1.ring.gz", "account.ring.gz"),
        ("npp.v2.ring.gz", "container.ring.gz"),
        ("uni.v2.ring.gz", "object-2.ring.gz"),
        ("wide.v2.ring.gz", "object-3.ring.gz"),
    ] {
        std::fs::copy(fixture(from), dir.path().join(to)).unwrap();
    }
    dir
}

fn ours(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringsmith"))
        .arg("get-nodes")
        .args(["--swift-dir", dir.to_str().unwrap()])
        .args(args)
        .env_remove("SWIFT_DIR")
        .output()
        .unwrap()
}

fn swifts(dir: &Path, args: &[&str]) -> Output {
    Command::new(ringsmith_testkit::swift_bin("swift-get-nodes"))
        .args(["-d", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

/// Runs ours and Swift's with the same `args`, asserts both succeed, returns both stdouts.
fn both_succeed(dir: &Path, args: &[&str]) -> (String, String) {
    let (a, b) = (ours(dir, args), swifts(dir, args));
    assert!(
        a.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(
        b.status.success(),
        "swift {args:?}: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    (
        String::from_utf8_lossy(&a.stdout).into_owned(),
        String::from_utf8_lossy(&b.stdout).into_owned(),
    )
}

#[test]
fn text_report_matches_swift_get_nodes() {
    let dir = swift_dir();
    let ring = |n: &str| dir.path().join(n).display().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec![ring("account.ring.gz"), "AUTH_test".into()],
        vec![
            ring("container.ring.gz"),
            "AUTH_test".into(),
            "photos 2024".into(),
        ],
        vec![
            ring("object.ring.gz"),
            "AUTH_test".into(),
            "c".into(),
            "obj/é x?y#z".into(),
        ],
        vec![ring("object-1.ring.gz"), "AUTH_test/c/a/deep/object".into()],
        vec![
            "-a".into(),
            ring("object.ring.gz"),
            "a".into(),
            "c".into(),
            "o".into(),
        ],
        vec![
            "-Q".into(),
            ring("object-1.ring.gz"),
            "a".into(),
            "c%20d".into(),
            "%C3%A9".into(),
        ],
        vec![ring("object-2.ring.gz"), "a".into(), "c".into(), "o".into()],
        vec![
            ring("object-3.ring.gz"),
            "--all".into(),
            "a".into(),
            "c".into(),
            "o".into(),
        ],
        // ring named unlike the path kind: Swift warns
        vec![ring("object.ring.gz"), "AUTH_x".into()],
        vec![ring("object.ring.gz"), "AUTH_x".into(), "c".into()],
    ];
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let (ours, swift) = both_succeed(dir.path(), &args);
        assert_eq!(ours, swift, "{args:?}");
    }
}

#[test]
fn partition_report_matches_swift_except_the_none_path() {
    let dir = swift_dir();
    for (ring, part) in [
        ("object.ring.gz", "5"),
        ("object-1.ring.gz", "0"),
        ("account.ring.gz", "255"),
    ] {
        let ring = dir.path().join(ring).display().to_string();
        for all in [false, true] {
            let mut args = vec![ring.as_str(), "-p", part];
            if all {
                args.insert(0, "-a");
            }
            let (a, b) = (ours(dir.path(), &args), swifts(dir.path(), &args));
            assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
            // Swift puts a meaningless "/None" path into partition-only curl commands.
            let want = String::from_utf8_lossy(&b.stdout).replace("/None\"", "\"");
            assert_eq!(String::from_utf8_lossy(&a.stdout), want, "{args:?}");
        }
    }
}

#[test]
fn json_report() {
    let dir = swift_dir();
    let ring = dir.path().join("object.ring.gz");
    let out = ours(
        dir.path(),
        &[ring.to_str().unwrap(), "--json", "--all", "a", "c", "o"],
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = ours(dir.path(), &[ring.to_str().unwrap(), "a", "c", "o"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains(&format!("Partition\t{}\n", v["partition"])));
    assert!(text.contains(&format!("Hash     \t{}\n", v["hash"].as_str().unwrap())));
    assert_eq!(v["datadir"], "objects");
    let prim = v["primaries"].as_array().unwrap();
    assert_eq!(
        prim.len(),
        4,
        "3.5 replicas: some partitions have 4 primaries"
    ); // partition of a/c/o has 4
    for (i, p) in prim.iter().enumerate() {
        assert_eq!(p["index"], i);
        assert!(text.contains(&format!(
            "Server:Port Device\t{}:{} {}\n",
            p["ip"].as_str().unwrap(),
            p["port"],
            p["device"].as_str().unwrap()
        )));
    }
    // --all lists every other device that holds partitions: 15 devices in the ring
    let hand = v["handoffs"].as_array().unwrap();
    assert_eq!(prim.len() + hand.len(), 15);
    assert_eq!(hand[0]["handoff_index"], 0);
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = swift_dir();
    let ring = dir.path().join("object.ring.gz");
    let ring = ring.to_str().unwrap();
    let check = |args: &[&str], want: &str| {
        let out = ours(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    check(&[ring, "a", "", "o"], "no container specified");
    check(&[ring], "no target specified");
    check(&[ring, "-p", "99999"], "partition 99999 is out of range");
    let missing = dir.path().join("nope.ring.gz");
    check(
        &[missing.to_str().unwrap(), "a"],
        "nope.ring.gz: cannot read the file",
    );
    let garbage = dir.path().join("garbage.ring.gz");
    std::fs::write(&garbage, b"\x1f\x8b\x08\x00garbage").unwrap();
    check(&[garbage.to_str().unwrap(), "a"], "garbage.ring.gz");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringsmith"))
        .args([
            "get-nodes",
            "--swift-dir",
            empty.path().to_str().unwrap(),
            ring,
            "a",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("swift.conf"));
    // SWIFT_DIR is honoured when --swift-dir is absent
    let out = Command::new(env!("CARGO_BIN_EXE_ringsmith"))
        .args(["get-nodes", ring, "a"])
        .env("SWIFT_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn policy_names_pick_rings_like_swift() {
    let dir = swift_dir();
    let conf = dir.path().join("swift.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(
        "\n[storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:1]\nname = silver\naliases = ag, argent\n",
    );
    std::fs::write(&conf, text).unwrap();
    let cases: &[&[&str]] = &[
        &["-P", "silver", "a", "c", "o"],
        &["-P", "gold", "a", "c", "o"],
        &["-a", "-P", "ARGENT", "-p", "5"],
        &["-P", "gold", "-p", "7"],
        &["-P", "gold", "AUTH_test", "c"],
        &["-P", "silver", "AUTH_test"],
    ];
    for args in cases {
        let (ours, swift) = both_succeed(dir.path(), args);
        assert_eq!(ours, swift.replace("/None\"", "\""), "{args:?}");
    }
    let out = ours(dir.path(), &["-P", "bronze", "a", "c", "o"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no policy named \"bronze\""));
}

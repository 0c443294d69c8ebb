//! python-swiftclient against Ringsmith's proxy in front of Swift 2.38.3's storage servers.

mod proxy_common;

use proxy_common::Cluster;

fn ok(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn swiftclient_round_trip_against_swift_storage_nodes() {
    let c = Cluster::start(3, "");
    let t = |args: &[&str]| c.swift("test:tester", "testing", args);
    let stat = ok(t(&["stat"]), "swift stat");
    assert!(stat.contains("Account: AUTH_test"), "{stat}");
    assert!(stat.contains("Containers: 0"), "{stat}");

    // upload (a random 100 kB file), list, stat, download, compare
    let data: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(c.dir.path().join("obj.bin"), &data).unwrap();
    let up = ok(t(&["upload", "cont1", "obj.bin"]), "swift upload");
    assert!(up.contains("obj.bin"), "{up}");
    let list = ok(t(&["list"]), "swift list");
    assert_eq!(list.trim(), "cont1");
    let list = ok(t(&["list", "cont1"]), "swift list cont1");
    assert_eq!(list.trim(), "obj.bin");
    let st = ok(t(&["stat", "cont1", "obj.bin"]), "swift stat object");
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&data))
    };
    assert!(st.contains(&md5), "{st}");
    assert!(st.contains("Content Length: 100000"), "{st}");
    ok(
        t(&["download", "cont1", "obj.bin", "-o", "down.bin"]),
        "swift download",
    );
    assert_eq!(std::fs::read(c.dir.path().join("down.bin")).unwrap(), data);

    // post metadata on container and object, and read it back
    ok(
        t(&["post", "cont1", "-m", "color:blue"]),
        "swift post container",
    );
    let st = ok(t(&["stat", "cont1"]), "swift stat container");
    assert!(st.contains("Meta Color: blue"), "{st}");
    assert!(st.contains("Objects: 1"), "{st}");
    ok(
        t(&["post", "cont1", "obj.bin", "-m", "shape:round"]),
        "swift post object",
    );
    let st = ok(t(&["stat", "cont1", "obj.bin"]), "swift stat object");
    assert!(st.contains("Meta Shape: round"), "{st}");

    // segmented upload (DLO, since /info offers no SLO), then download the whole
    let seg = ok(
        t(&["upload", "-S", "30000", "cont2", "obj.bin"]),
        "segmented upload",
    );
    assert!(seg.contains("obj.bin"), "{seg}");
    let segs = ok(t(&["list", "cont2_segments"]), "list segments");
    assert_eq!(segs.lines().count(), 4, "{segs}");
    ok(
        t(&["download", "cont2", "obj.bin", "-o", "down2.bin"]),
        "download segmented",
    );
    assert_eq!(std::fs::read(c.dir.path().join("down2.bin")).unwrap(), data);

    // delete everything
    ok(t(&["delete", "cont2"]), "delete cont2");
    ok(t(&["delete", "cont1", "obj.bin"]), "delete object");
    let list = ok(t(&["list", "cont1"]), "list after delete");
    assert_eq!(list.trim(), "");
    ok(t(&["delete", "--all"]), "delete --all");
    let list = ok(t(&["list"]), "list after delete --all");
    assert_eq!(list.trim(), "", "{}", c.proxy_log());
}

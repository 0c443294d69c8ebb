//! What the SSYNC tests share: a snapshot of a node's object files (bytes and xattr
//! metadata, by path) and Swift's replication daemons run against a test cluster's node.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::ec_common::data_files;
use crate::proxy_common::{swift_with_cluster_policies, Cluster};

/// (bytes, xattr metadata) of one file.
pub type FileState = (Vec<u8>, BTreeMap<String, String>);

/// Every file under node `i`'s `objects*` directories (not the hashes caches or locks),
/// by path relative to the node.
pub fn node_files(cluster: &Cluster, i: usize) -> BTreeMap<PathBuf, FileState> {
    let root = cluster.dir.path();
    let node = root.join(format!("srv/node{i}"));
    data_files(root)
        .into_iter()
        .filter(|p| p.starts_with(&node))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".data") || name.ends_with(".ts") || name.ends_with(".meta")
        })
        .map(|p| {
            let f = std::fs::File::open(&p).unwrap();
            let meta = ringsmith_server::object::diskfile::read_metadata(&f, &p)
                .unwrap()
                .into_iter()
                .collect();
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(&node).unwrap().to_path_buf(), (bytes, meta))
        })
        .collect()
}

/// Asserts that node files are the same set with equal bytes and metadata.
pub fn assert_same_files(
    what: &str,
    got: &BTreeMap<PathBuf, FileState>,
    want: &BTreeMap<PathBuf, FileState>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: the same files (names carry timestamps, fragment indexes, durability)"
    );
    for (path, (bytes, meta)) in want {
        let (got_bytes, got_meta) = &got[path];
        assert!(
            got_bytes == bytes,
            "{what}: {} bytes differ",
            path.display()
        );
        assert_eq!(got_meta, meta, "{what}: {} metadata", path.display());
    }
}

/// Runs Swift's daemon `script` (e.g. `swift-object-replicator`) once for node `i`, with
/// `section_options` in its `[section]`. The config is the daemon's own, written here:
/// Swift's daemons read the hash prefix and policies from `/etc/swift` unless pointed at
/// the cluster's `swift.conf` ([`swift_with_cluster_policies`]), and their recon cache
/// must stay inside the test directory.
pub fn run_swift_daemon_once(
    cluster: &Cluster,
    i: usize,
    script: &str,
    section: &str,
    section_options: &str,
) -> Output {
    let root = cluster.dir.path();
    let node = &cluster.nodes[i];
    let cache = root.join(format!("cache{i}"));
    std::fs::create_dir_all(&cache).unwrap();
    let conf = root.join(format!("etc/{section}-{i}.conf"));
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nuser = {user}\ndevices = {root}/srv/node{i}\nmount_check = false\nbind_ip = {ip}\n\
             bind_port = {port}\nswift_dir = {root}/etc\nlog_level = DEBUG\n\n\
             [{section}]\nrecon_cache_path = {cache}\n{section_options}\n",
            root = root.display(),
            ip = node.ip,
            port = node.ports[0],
            cache = cache.display(),
            user = ringsmith_testkit::current_user(),
        ),
    )
    .unwrap();
    // Swift's own reconstructor has been seen to hang in a one-pass run (a CI run found
    // it asleep for minutes with a connection its peer had closed, against Swift's own
    // object servers): one kill and one more pass, said loudly; a second hang fails.
    let limit = std::time::Duration::from_secs(180);
    let run = || {
        let mut cmd = swift_with_cluster_policies(script, &cluster.etc());
        cmd.arg(&conf).args(["-o", "-v"]);
        ringsmith_testkit::output_within(&mut cmd, limit)
    };
    let out = run().or_else(|hung| {
        eprintln!(
            "WARNING: {script} on node {i} still running after {limit:?}; killed, running \
             it once more. Its output:\n{}",
            output_text(&hung)
        );
        run()
    });
    let out = out.unwrap_or_else(|hung| {
        panic!(
            "{script} on node {i} hung twice ({limit:?} each):\n{}",
            output_text(&hung)
        )
    });
    assert!(
        out.status.success(),
        "{script} on node {i} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The text of a daemon run, for failure messages and logs.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Removes node `i`'s objects directories (a replaced, empty disk).
pub fn wipe_objects(cluster: &Cluster, i: usize) {
    let dev = cluster.dir.path().join(format!("srv/node{i}/d{i}"));
    for e in std::fs::read_dir(&dev).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("objects") {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
}

pub fn node_dir(cluster: &Cluster, i: usize) -> PathBuf {
    cluster.dir.path().join(format!("srv/node{i}"))
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

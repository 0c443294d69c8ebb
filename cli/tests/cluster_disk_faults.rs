//! Disk faults under load: a 4-node `cluster up --netns --mount-check` whose devices are
//! real mount points keeps taking PUT, overwrite, GET and DELETE traffic while, one at a
//! time:
//! - node 1's device fills up (a ballast file takes all its space, below Swift's 1%
//!   `fallocate_reserve`): it must answer 507, the proxy must put those replicas on
//!   handoffs, and once space is freed the handoffs must go back;
//! - node 2's device goes away (unmounted under the running server): `mount_check` makes
//!   it answer 507 rather than write into the root filesystem, and when the same device is
//!   mounted again its data is still there and is brought up to date;
//! - bit rot on node 0: some `.data` files get a flipped byte, others are truncated. A
//!   reader must never be given the bad bytes, and every damaged replica must be
//!   quarantined (by a reader or the auditor) and restored from a good copy.
//!
//! Afterwards Swift's promises are checked as in `cluster_faults.rs`
//! (`cluster_support/load.rs`). Needs root (namespaces, mounts), as the other fault tests.

mod cluster_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::load::{check_promises, Layout, Load};
use cluster_support::{data_file_paths, http, Down, NetnsCluster};

/// Mount points made by this test, unmounted in reverse order (lazily, so a busy one
/// cannot stay behind) when it ends, after the cluster is down.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes zeros into `path` until the filesystem refuses more (ENOSPC).
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut small = vec![0u8; 4096];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // The last megabyte may have left a few pages: take them too.
    while f.write(&small).is_ok_and(|n| n > 0) {
        small.truncate(4096);
    }
}

/// The object server address (`ip:port`) of node `n`.
fn object_server(cluster: &NetnsCluster, n: u32) -> String {
    let procs = cluster.record["procs"].as_array().unwrap();
    procs
        .iter()
        .find(|p| p["kind"] == "object" && p["node"] == n)
        .and_then(|p| p["addr"].as_str())
        .unwrap_or_else(|| panic!("no object server for node {n} in {procs:?}"))
        .to_string()
}

/// A backend PUT of a one-byte object straight to node `n`'s object server.
fn direct_put_status(cluster: &NetnsCluster, n: u32) -> u16 {
    let ts = format!(
        "{:.5}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    );
    let (st, _, _) = http(
        &object_server(cluster, n),
        "PUT",
        "/d0/0/AUTH_test/probe/o",
        &[("X-Timestamp", &ts), ("Content-Type", "text/plain")],
        b"x",
    );
    st
}

/// Damages every `step`-th `.data` file of node `n` smaller than 64 KiB: odd ones get a
/// byte flipped, even ones lose their second half. Returns the damaged files with their
/// damaged contents.
fn rot(dir: &Path, n: u32, step: usize) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut damaged = BTreeMap::new();
    for (i, path) in data_file_paths(&dir.join(format!("srv/node{n}/d0/objects")))
        .into_iter()
        .step_by(step)
        .enumerate()
    {
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue; // replaced or deleted meanwhile
        };
        if bytes.len() < 2 || bytes.len() >= 64 * 1024 {
            continue;
        }
        if i % 2 == 1 {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x5a;
            // Rewritten in place: the xattrs (the metadata and its ETag) stay.
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(&bytes).unwrap();
        } else {
            bytes.truncate(bytes.len() / 2);
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(bytes.len() as u64).unwrap();
        }
        damaged.insert(path, bytes);
    }
    damaged
}

#[test]
fn acknowledged_writes_survive_full_vanished_and_rotten_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let backing = tmp.path().join("backing");
    let mut mounts = Mounts(Vec::new());
    // Each device is a filesystem of its own (a tmpfs; node 1's is small, to be filled),
    // mounted at `backing/nodeN` and bind-mounted into place, so that unmounting the
    // device keeps its data for when it comes back.
    for n in 0..4u32 {
        let dev = dir.join(format!("srv/node{n}/d0"));
        let b = backing.join(format!("node{n}"));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // Node 1's is small enough to fill quickly, yet large enough for its share of the
        // load's objects once the ballast is gone: at 64 MiB the faster write path filled it
        // with real data, and its replicas then (rightly) stayed on handoffs.
        let size = if n == 1 { "size=256m" } else { "size=1g" };
        run(
            "mount",
            &["-t", "tmpfs", "-o", size, "tmpfs", b.to_str().unwrap()],
        );
        mounts.0.push(b.clone());
        run(
            "mount",
            &["--bind", b.to_str().unwrap(), dev.to_str().unwrap()],
        );
        mounts.0.push(dev);
    }
    // Declared after the mounts, so the cluster is down before they are unmounted.
    let _guard = Down(dir.clone());
    let cluster = NetnsCluster::start(
        &dir,
        &[
            "--nodes",
            "4",
            "--replicas",
            "3",
            "--part-power",
            "6",
            "--daemon-interval",
            "1",
            "--mount-check",
            // Swift's 20 files/s needs minutes per pass over the test's objects.
            "--audit-files-per-second",
            "200",
        ],
    );
    let (proxy, token) = (cluster.proxy.clone(), cluster.token.clone());
    let (load, clients) = Load::start(&proxy, &token, 4);
    load.phase("no fault", 5);

    let ballast = backing.join("node1/ballast");
    fill(&ballast);
    assert_eq!(
        direct_put_status(&cluster, 1),
        507,
        "a full device must refuse"
    );
    load.phase("node 1 device full", 10);
    std::fs::remove_file(&ballast).unwrap();
    assert_eq!(direct_put_status(&cluster, 1), 201);
    load.phase("node 1 device freed", 4);

    let dev2 = dir.join("srv/node2/d0");
    run("umount", &["-l", dev2.to_str().unwrap()]);
    assert_eq!(
        direct_put_status(&cluster, 2),
        507,
        "mount_check must refuse"
    );
    let written: Vec<PathBuf> = std::fs::read_dir(&dev2)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    if !written.is_empty() {
        let logs = dir.join("log");
        for e in std::fs::read_dir(&logs).unwrap().flatten() {
            let t = std::fs::read_to_string(e.path()).unwrap_or_default();
            for l in t.lines().filter(|l| l.contains("quarantin")) {
                println!("{}: {l}", e.path().display());
            }
        }
    }
    assert!(
        written.is_empty(),
        "nothing may be written where the device was: {written:?}"
    );
    load.phase("node 2 device unmounted", 10);
    let written: Vec<PathBuf> = std::fs::read_dir(&dev2)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        written.is_empty(),
        "nothing may be written where the device was: {written:?}"
    );
    run(
        "mount",
        &[
            "--bind",
            backing.join("node2").to_str().unwrap(),
            dev2.to_str().unwrap(),
        ],
    );
    load.phase("node 2 device back", 4);

    let damaged = rot(&dir, 0, 7);
    println!("damaged {} .data files on node 0", damaged.len());
    assert!(
        damaged.len() >= 10,
        "too little to damage: {}",
        damaged.len()
    );
    load.phase("node 0 bit rot", 10);
    let known = clients.stop(&load);

    let node_of_ip = |ip: &str| cluster.node_of_ip(ip);
    let layout = Layout {
        dir: &dir,
        nodes: 4,
        node_of_ip: &node_of_ip,
    };
    check_promises(&layout, &known, &proxy, &token, Duration::from_secs(150));

    // Every damaged replica is found (by a reader or the auditor), quarantined, and
    // replaced: no file keeps the damaged bytes.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(180);
    loop {
        let left: Vec<&PathBuf> = damaged
            .iter()
            .filter(|(p, bad)| std::fs::read(p).is_ok_and(|now| now == **bad))
            .map(|(p, _)| p)
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} damaged replicas still in place after {:?}, e.g. {}",
            left.len(),
            deadline - started,
            left[0].display()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let quarantined = std::fs::read_dir(dir.join("srv/node0/d0/quarantined/objects"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    println!(
        "every damaged replica replaced {:.1} s after the load stopped; {quarantined} quarantined",
        started.elapsed().as_secs_f64()
    );
    assert!(quarantined > 0);
    // And the quarantined replicas were rebuilt from good copies on the other nodes.
    check_promises(&layout, &known, &proxy, &token, Duration::from_secs(120));
}

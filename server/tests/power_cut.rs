//! Durability of one storage node through power cuts: its object and container servers
//! (the real binary, fsync on every object write, as always) take concurrent object PUTs
//! with container updates, while a reader keeps folding the container's `.pending`
//! records into SQLite; then both processes get SIGKILL at a random moment, are started
//! again, and the load resumes. After several cuts and one pass of the updater and the
//! replicator:
//! - every object that was acknowledged (201) reads back with its bytes and metadata;
//! - no `.data` file on the device is half-written (its size and MD5 match its
//!   metadata), whether or not its PUT was acknowledged;
//! - the container database passes SQLite's integrity check, lists every acknowledged
//!   object with its size and ETag, and lists nothing that cannot be read;
//! - no temp file is left once the replicator has run (a named one left by a dead
//!   writer is planted, since this filesystem's writes use unnamed `O_TMPFILE` files
//!   that a crash cannot leave).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};
use ringsmith::hash::HashConfig;
use ringsmith::ring::{FormatVersion, Ring};
use ringsmith_server::object::diskfile::read_metadata;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");
const IP: &str = "127.0.0.31";
const DEV: &str = "d0";
const ACCOUNT: &str = "AUTH_cut";
const CONTAINER: &str = "c";

struct Node {
    dir: tempfile::TempDir,
    etc: PathBuf,
    devices: PathBuf,
    object: (PathBuf, SocketAddr),
    container: (PathBuf, SocketAddr),
    procs: Vec<Proc>,
    starts: usize,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        let devices = dir.path().join("srv");
        let cache = dir.path().join("cache");
        for d in [&etc, &devices.join(DEV), &cache] {
            std::fs::create_dir_all(d).unwrap();
        }
        write_swift_conf(&etc);
        let conf = |kind: &str| {
            let port = free_port(IP);
            let path = etc.join(format!("{kind}-server.conf"));
            std::fs::write(
                &path,
                format!(
                    "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = {IP}\nbind_port = {port}\n\
                     swift_dir = {}\nrecon_cache_path = {}\nlog_level = INFO\nfallocate_reserve = 0\n\n\
                     [app:{kind}-server]\nuse = egg:swift#{kind}\n\n[{kind}-replicator]\n\n[{kind}-updater]\n",
                    devices.display(),
                    etc.display(),
                    cache.display()
                ),
            )
            .unwrap();
            let mut b = RingBuilder::new(4, 1.0, 0).unwrap();
            b.add_dev(NewDevice::new(1, 1, IP, u32::from(port), DEV, 100.0))
                .unwrap();
            b.rebalance(&RebalanceOptions {
                seed: Some(1),
                now_secs: None,
            })
            .unwrap();
            b.get_ring()
                .save(&etc.join(format!("{kind}.ring.gz")), FormatVersion::V1)
                .unwrap();
            (path, format!("{IP}:{port}").parse().unwrap())
        };
        let object = conf("object");
        let container = conf("container");
        Node {
            dir,
            etc,
            devices,
            object,
            container,
            procs: vec![],
            starts: 0,
        }
    }

    fn part(&self, kind: &str, a: &str, c: Option<&str>, o: Option<&str>) -> u32 {
        let ring = Ring::load(
            &self.etc.join(format!("{kind}.ring.gz")),
            HashConfig::load(&self.etc).unwrap(),
        )
        .unwrap();
        ring.get_nodes(a, c, o).unwrap().0
    }

    fn start(&mut self) {
        self.starts += 1;
        for (kind, (conf, addr)) in [("object", &self.object), ("container", &self.container)] {
            let mut cmd = Command::new(BIN);
            cmd.arg(kind).arg("-c").arg(conf);
            let log = self.dir.path().join(format!("{kind}-{}.log", self.starts));
            let mut p = Proc::spawn(kind, cmd, log);
            p.wait_listening(*addr, Duration::from_secs(30));
            self.procs.push(p);
        }
    }

    /// SIGKILL to every server of the node at once, as a power cut stops them.
    fn power_cut(&mut self) {
        for p in &mut self.procs {
            if let Some(mut c) = p.child.take() {
                c.kill().unwrap();
                c.wait().unwrap();
            }
        }
        self.procs.clear();
    }

    fn run_once(&self, daemon: &str, conf: &Path) -> String {
        ringsmith_testkit::run_daemon_once(BIN, daemon, conf)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.devices.join(DEV).join("tmp")
    }
}

/// Unique, increasing timestamps for every write of the test.
fn next_timestamp() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{:016.5}", now.floor() + (n % 90_000) as f64 * 1e-5)
}

#[derive(Clone, Debug)]
struct Acked {
    md5: String,
    size: usize,
    timestamp: String,
    writer: String,
}

fn body_of(name: &str, size: usize) -> Vec<u8> {
    let seed = Md5::digest(name.as_bytes());
    (0..size).map(|i| seed[i % 16] ^ (i / 16) as u8).collect()
}

/// One writer: object PUTs (with container updates) until `stop`; every 201 is recorded.
async fn writer(
    w: usize,
    node: Arc<NodeInfo>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<String, Acked>>>,
    round: usize,
) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64((round * 100 + w) as u64);
    let mut attempts = 0;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("r{round}-w{w}-{i}");
        i += 1;
        let size = [0, 1, 900, 65_537, 300_000][rng.gen_range(0..5)];
        let body = body_of(&name, size);
        let ts = next_timestamp();
        let part = node.object_part(&name);
        attempts += 1;
        let r = http
            .put(format!(
                "http://{}/{DEV}/{part}/{ACCOUNT}/{CONTAINER}/{name}",
                node.object
            ))
            .header("X-Timestamp", &ts)
            .header("Content-Type", "application/x-cut")
            .header("X-Object-Meta-Writer", format!("w{w}"))
            .header("X-Container-Host", node.container.to_string())
            .header("X-Container-Partition", node.container_part.to_string())
            .header("X-Container-Device", DEV)
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 201 => {
                acked.lock().unwrap().insert(
                    name,
                    Acked {
                        md5: hex::encode(Md5::digest(&body)),
                        size,
                        timestamp: ts,
                        writer: format!("w{w}"),
                    },
                );
            }
            // The cut: refused or reset until the test restarts the node.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    attempts
}

/// The addresses and partitions the load needs, shared by its tasks.
struct NodeInfo {
    object: SocketAddr,
    container: SocketAddr,
    container_part: u32,
    object_ring: Ring,
}

impl NodeInfo {
    fn object_part(&self, name: &str) -> u32 {
        self.object_ring
            .get_nodes(ACCOUNT, Some(CONTAINER), Some(name))
            .unwrap()
            .0
    }
}

/// Lists the container until `stop`: every listing folds the `.pending` records into
/// SQLite first, so the cuts land in the middle of database writes too.
async fn lister(node: Arc<NodeInfo>, stop: Arc<AtomicBool>) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut listings = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = http
            .get(format!(
                "http://{}/{DEV}/{}/{ACCOUNT}/{CONTAINER}?format=json&limit=1",
                node.container, node.container_part
            ))
            .send()
            .await;
        if matches!(r, Ok(ref r) if r.status().is_success()) {
            listings += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    listings
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_cuts() {
    let mut node = Node::new();
    node.start();
    let info = Arc::new(NodeInfo {
        object: node.object.1,
        container: node.container.1,
        container_part: node.part("container", ACCOUNT, Some(CONTAINER), None),
        object_ring: Ring::load(
            &node.etc.join("object.ring.gz"),
            HashConfig::load(&node.etc).unwrap(),
        )
        .unwrap(),
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = http
        .put(format!(
            "http://{}/{DEV}/{}/{ACCOUNT}/{CONTAINER}",
            info.container, info.container_part
        ))
        .header("X-Timestamp", next_timestamp())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let acked: Arc<Mutex<BTreeMap<String, Acked>>> = Arc::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    let rounds = 4;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = tokio::task::JoinSet::new();
        for w in 0..6 {
            load.spawn(writer(w, info.clone(), stop.clone(), acked.clone(), round));
        }
        let listings = tokio::spawn(lister(info.clone(), stop.clone()));
        let before = acked.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(700..1_600))).await;
        node.power_cut();
        let cut_at = Instant::now();
        // Requests in flight at the cut fail; give them a moment, then stop the load.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        let mut attempts = 0;
        while let Some(n) = load.join_next().await {
            attempts += n.unwrap();
        }
        let listings = listings.await.unwrap();
        let now = acked.lock().unwrap().len();
        println!(
            "CUT round {round}: {attempts} PUTs attempted, {} acknowledged, {listings} listings; load stopped {:?} after the cut",
            now - before,
            cut_at.elapsed()
        );
        assert!(now > before, "round {round} acknowledged nothing");
        node.start();
    }

    // A dead writer's named temp file, as a filesystem without O_TMPFILE (or a rewrite at
    // the same timestamp) leaves it: unlocked, and older than a live upload can be.
    let leftover = node.tmp_dir().join("tmpleftover");
    std::fs::create_dir_all(node.tmp_dir()).unwrap();
    std::fs::write(&leftover, b"half an object").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();

    let updater = node.run_once("object-updater", &node.object.0);
    node.run_once("object-replicator", &node.object.0);
    let left: Vec<PathBuf> = files_under(&node.tmp_dir());
    assert!(
        left.is_empty(),
        "temp files outlived the replicator: {left:?}"
    );

    // Every acknowledged object reads back whole, with its metadata.
    let acked = acked.lock().unwrap().clone();
    for (name, a) in &acked {
        let part = info.object_part(name);
        let r = http
            .get(format!(
                "http://{}/{DEV}/{part}/{ACCOUNT}/{CONTAINER}/{name}",
                info.object
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {name} is lost");
        let h = r.headers().clone();
        assert_eq!(h["x-timestamp"].to_str().unwrap(), a.timestamp, "{name}");
        assert_eq!(h["x-object-meta-writer"].to_str().unwrap(), a.writer);
        let body = r.bytes().await.unwrap();
        assert_eq!(body.len(), a.size, "{name}");
        assert_eq!(hex::encode(Md5::digest(&body)), a.md5, "{name}");
    }

    // No .data on the device is half-written, acknowledged or not.
    let datas: Vec<PathBuf> = walkdir(&node.devices.join(DEV).join("objects"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    assert!(datas.len() >= acked.len());
    for p in &datas {
        let bytes = std::fs::read(p).unwrap();
        let meta = read_metadata(&std::fs::File::open(p).unwrap(), p).unwrap();
        assert_eq!(
            meta["Content-Length"],
            bytes.len().to_string(),
            "{}",
            p.display()
        );
        assert_eq!(
            meta["ETag"],
            hex::encode(Md5::digest(&bytes)),
            "{}",
            p.display()
        );
    }

    // The container database is sound, and its listing is the truth.
    let dbs: Vec<PathBuf> = walkdir(&node.devices.join(DEV).join("containers"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .collect();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    let conn = rusqlite::Connection::open(&dbs[0]).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let mut listed: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut marker = String::new();
    loop {
        let r = http
            .get(format!(
                "http://{}/{DEV}/{}/{ACCOUNT}/{CONTAINER}?format=json&marker={marker}",
                info.container, info.container_part
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page: Vec<serde_json::Value> = r.json().await.unwrap();
        let Some(last) = page.last() else { break };
        marker = last["name"].as_str().unwrap().to_string();
        for row in page {
            listed.insert(row["name"].as_str().unwrap().to_string(), row);
        }
    }
    for (name, a) in &acked {
        let row = listed
            .get(name)
            .unwrap_or_else(|| panic!("acknowledged {name} is not listed\nupdater: {updater}"));
        assert_eq!(row["hash"], a.md5.as_str(), "{name}");
        assert_eq!(row["bytes"], a.size, "{name}");
    }
    for name in listed.keys() {
        if acked.contains_key(name) {
            continue;
        }
        // Written but not acknowledged (the cut took the answer): it must be there.
        let part = info.object_part(name);
        let r = http
            .head(format!(
                "http://{}/{DEV}/{part}/{ACCOUNT}/{CONTAINER}/{name}",
                info.object
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} is listed but cannot be read");
    }
    println!(
        "CUT total: {} acknowledged objects, {} .data files, {} listed, {} cuts",
        acked.len(),
        datas.len(),
        listed.len(),
        rounds
    );
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

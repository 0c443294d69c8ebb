//! The consistency daemons on a real local cluster: three (or four) storage nodes on
//! 127.0.0.1-4, each running the `ringsmith-server` object, container and account
//! servers over its own device, rings built with the library builder, and the daemons
//! run as `ringsmith-server <daemon> -c <conf> --once` — the way operators run them.
//! The test plays the proxy (it writes to the primaries with the same backend headers).
//! Every process is killed on drop; every wait is bounded. Heal times are printed
//! (`HEAL <scenario> <seconds>`) and recorded in BENCHMARKS.md.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};
use ringsmith::hash::HashConfig;
use ringsmith::ring::{FormatVersion, Ring};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");
const KINDS: [&str; 3] = ["object", "container", "account"];

/// Clusters are heavy (nine processes): one scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Node {
    ip: String,
    dev: String,
    devices: PathBuf,
    ports: [u16; 3],
    confs: [PathBuf; 3],
    procs: [Option<Proc>; 3],
}

struct Cluster {
    dir: tempfile::TempDir,
    etc: PathBuf,
    nodes: Vec<Node>,
    builders: Vec<RingBuilder>,
    http: reqwest::Client,
}

fn ts_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{:016.5}", d.as_secs_f64())
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        write_swift_conf(&etc);
        let mut c = Cluster {
            dir,
            etc,
            nodes: vec![],
            builders: KINDS
                .iter()
                .map(|_| RingBuilder::new(6, 3.0, 0).unwrap())
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        for _ in 0..n {
            c.add_node();
        }
        c.write_rings();
        for i in 0..n {
            c.start(i);
        }
        c
    }

    /// A node directory, configs and ring devices (not yet started, rings not written).
    fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let ip = format!("127.0.0.{}", i + 1);
        let dev = format!("d{i}");
        let root = self.dir.path().join(format!("node{i}"));
        let devices = root.join("srv");
        let cache = root.join("cache");
        std::fs::create_dir_all(devices.join(&dev)).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
        let ports = [free_port(&ip), free_port(&ip), free_port(&ip)];
        let confs = std::array::from_fn(|k| {
            let kind = KINDS[k];
            let path = root.join(format!("{kind}-server.conf"));
            std::fs::write(
                &path,
                format!(
                    "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = {ip}\nbind_port = {}\n\
                     swift_dir = {}\nrecon_cache_path = {}\nlog_level = INFO\nfallocate_reserve = 0\n\n\
                     [app:{kind}-server]\nuse = egg:swift#{kind}\n\n\
                     [{kind}-replicator]\nconcurrency = 4\n\n[{kind}-auditor]\nfiles_per_second = 0\nbytes_per_second = 0\n\n\
                     [{kind}-updater]\nobjects_per_second = 0\n\n[object-expirer]\n",
                    devices.display(),
                    ports[k],
                    self.etc.display(),
                    cache.display()
                ),
            )
            .unwrap();
            path
        });
        for (k, b) in self.builders.iter_mut().enumerate() {
            let zone = i as u32 + 1;
            b.add_dev(NewDevice::new(
                1,
                zone,
                ip.clone(),
                u32::from(ports[k]),
                dev.clone(),
                100.0,
            ))
            .unwrap();
        }
        self.nodes.push(Node {
            ip,
            dev,
            devices,
            ports,
            confs,
            procs: [None, None, None],
        });
        i
    }

    /// Rebalances and writes the three rings into the shared swift_dir ("pushing" them).
    fn write_rings(&mut self) {
        for (k, b) in self.builders.iter_mut().enumerate() {
            b.pretend_min_part_hours_passed();
            b.rebalance(&RebalanceOptions {
                seed: Some(7),
                now_secs: None,
            })
            .unwrap();
            b.get_ring()
                .save(
                    &self.etc.join(format!("{}.ring.gz", KINDS[k])),
                    FormatVersion::V1,
                )
                .unwrap();
        }
    }

    fn ring(&self, kind: &str) -> Ring {
        Ring::load(
            &self.etc.join(format!("{kind}.ring.gz")),
            HashConfig::load(&self.etc).unwrap(),
        )
        .unwrap()
    }

    fn start_kind(&mut self, i: usize, k: usize) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new(BIN);
        cmd.arg(KINDS[k]).arg("-c").arg(&n.confs[k]);
        let log = self.dir.path().join(format!(
            "node{i}-{}-{}.log",
            KINDS[k],
            Instant::now().elapsed().as_nanos()
        ));
        let mut p = Proc::spawn(&format!("{}@{}", KINDS[k], n.ip), cmd, log);
        p.wait_listening(
            format!("{}:{}", n.ip, n.ports[k]).parse().unwrap(),
            Duration::from_secs(30),
        );
        n.procs[k] = Some(p);
    }

    fn start(&mut self, i: usize) {
        for k in 0..3 {
            self.start_kind(i, k);
        }
    }

    fn stop_kind(&mut self, i: usize, k: usize) {
        if let Some(mut p) = self.nodes[i].procs[k].take() {
            p.terminate(Duration::from_secs(20));
        }
    }

    fn stop(&mut self, i: usize) {
        for k in 0..3 {
            self.stop_kind(i, k);
        }
    }

    /// Runs `ringsmith-server <daemon> -c <conf> --once` on node `i` (bounded); returns
    /// how long it took.
    fn run_daemon(&self, i: usize, daemon: &str) -> Duration {
        let k = KINDS.iter().position(|k| daemon.starts_with(k)).unwrap();
        let log = self.dir.path().join(format!("node{i}-{daemon}.log"));
        let start = Instant::now();
        let mut cmd = Command::new(BIN);
        cmd.arg(daemon)
            .arg("-c")
            .arg(&self.nodes[i].confs[k])
            .arg("--once");
        let mut p = Proc::spawn(daemon, cmd, log);
        let child = p.child.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(
                    st.success(),
                    "{daemon} on node {i} failed ({st}):\n{}",
                    p.log_text()
                );
                p.child = None;
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{daemon} on node {i} did not finish:\n{}",
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run_everywhere(&self, daemon: &str) -> Duration {
        let start = Instant::now();
        for i in 0..self.nodes.len() {
            if self.nodes[i].procs.iter().any(|p| p.is_some()) {
                self.run_daemon(i, daemon);
            }
        }
        start.elapsed()
    }

    fn url(&self, kind: usize, dev: &ringsmith::device::Device, part: u32, path: &str) -> String {
        let _ = kind;
        format!("http://{}:{}/{}/{part}{path}", dev.ip, dev.port, dev.device)
    }

    async fn create_account_and_container(&self, a: &str, c: &str) {
        let (ap, anodes) = self
            .ring("account")
            .get_nodes(a, None, None)
            .map(|(p, n)| (p, n.iter().cloned().collect::<Vec<_>>()))
            .unwrap();
        for d in &anodes {
            let r = self
                .http
                .put(self.url(2, d, ap, &format!("/{a}")))
                .header("X-Timestamp", ts_now())
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "account PUT to {}: {status} {body}",
                d.device
            );
        }
        let (cp, cnodes) = self
            .ring("container")
            .get_nodes(a, Some(c), None)
            .map(|(p, n)| (p, n.iter().cloned().collect::<Vec<_>>()))
            .unwrap();
        for (i, d) in cnodes.iter().enumerate() {
            let ad = &anodes[i % anodes.len()];
            let r = self
                .http
                .put(self.url(1, d, cp, &format!("/{a}/{c}")))
                .header("X-Timestamp", ts_now())
                .header("X-Account-Host", format!("{}:{}", ad.ip, ad.port))
                .header("X-Account-Partition", ap.to_string())
                .header("X-Account-Device", &ad.device)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "container PUT to {}: {status} {body}",
                d.device
            );
        }
    }

    /// What the proxy does for an object PUT/DELETE: every primary, each naming one
    /// container replica. Returns how many primaries accepted.
    async fn object_request(
        &self,
        method: &str,
        a: &str,
        c: &str,
        o: &str,
        body: &[u8],
        extra: &[(&str, String)],
    ) -> usize {
        let oring = self.ring("object");
        let (part, nodes) = oring.get_nodes(a, Some(c), Some(o)).unwrap();
        let (cp, cnodes) = self
            .ring("container")
            .get_nodes(a, Some(c), None)
            .map(|(p, n)| (p, n.iter().cloned().collect::<Vec<_>>()))
            .unwrap();
        let ts = ts_now();
        let mut ok = 0;
        for (i, d) in nodes.iter().enumerate() {
            let cd = &cnodes[i % cnodes.len()];
            let mut req = self
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    self.url(0, d, part, &format!("/{a}/{c}/{o}")),
                )
                .header("X-Timestamp", &ts)
                .header("X-Container-Host", format!("{}:{}", cd.ip, cd.port))
                .header("X-Container-Partition", cp.to_string())
                .header("X-Container-Device", &cd.device);
            if method == "PUT" {
                req = req
                    .header("Content-Type", "application/octet-stream")
                    .body(body.to_vec());
            }
            for (k, v) in extra {
                req = req.header(*k, v.as_str());
            }
            if let Ok(r) = req.send().await {
                if r.status().is_success() || (method == "DELETE" && r.status() == 404) {
                    ok += 1;
                }
            }
        }
        ok
    }

    /// The object's body from one device's object server, or the status.
    async fn get_from(
        &self,
        dev: &ringsmith::device::Device,
        a: &str,
        c: &str,
        o: &str,
    ) -> Result<Vec<u8>, u16> {
        let part = self.ring("object").get_part(a, Some(c), Some(o)).unwrap();
        let r = self
            .http
            .get(self.url(0, dev, part, &format!("/{a}/{c}/{o}")))
            .send()
            .await
            .map_err(|_| 0u16)?;
        if r.status() != 200 {
            return Err(r.status().as_u16());
        }
        Ok(r.bytes().await.unwrap().to_vec())
    }

    fn primaries(&self, a: &str, c: &str, o: &str) -> Vec<ringsmith::device::Device> {
        let ring = self.ring("object");
        let (_, n) = ring.get_nodes(a, Some(c), Some(o)).unwrap();
        n.iter().cloned().collect()
    }

    /// Hash directories of objects on node `i` (partition → count), from disk.
    fn partitions_on(&self, i: usize) -> Vec<u32> {
        let objects = self.nodes[i]
            .devices
            .join(&self.nodes[i].dev)
            .join("objects");
        let mut v: Vec<u32> = std::fs::read_dir(objects)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprint!("{}", ringsmith_testkit::log_tails(self.dir.path(), 40));
        }
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}

fn body_of(i: usize) -> Vec<u8> {
    (0..(1000 + i * 37))
        .map(|b| ((b * 7 + i) % 251) as u8)
        .collect()
}

fn heal(scenario: &str, d: Duration) {
    println!("HEAL {scenario} {:.3}s", d.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_outage_heals_in_one_replication_pass() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    c.stop(2);
    for i in 0..30 {
        let ok = c
            .object_request("PUT", "AUTH_t", "c", &format!("o{i}"), &body_of(i), &[])
            .await;
        assert_eq!(ok, 2, "with one node down, two replicas are written");
    }
    c.start(2);
    let down = c.nodes[2].dev.clone();
    let took = c.run_everywhere("object-replicator");
    heal("node-outage-30-objects", took);
    for i in 0..30 {
        let name = format!("o{i}");
        for d in c.primaries("AUTH_t", "c", &name) {
            let got = c.get_from(&d, "AUTH_t", "c", &name).await;
            assert_eq!(
                got.as_deref().ok(),
                Some(body_of(i).as_slice()),
                "{name} on {} (the node that was down is {down})",
                d.device
            );
        }
    }
    // The pass wrote Swift's recon keys, served by /recon/replication.
    let n = &c.nodes[0];
    let r: serde_json::Value = c
        .http
        .get(format!(
            "http://{}:{}/recon/replication/object",
            n.ip, n.ports[0]
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["replication_last"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["object_replication_time"].is_number(), "{r}");
    assert!(
        r["replication_stats"]["attempted"].as_u64().unwrap() > 0,
        "{r}"
    );
    // A second pass finds nothing to do.
    c.run_everywhere("object-replicator");
    let again: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.dir.path().join("node0/cache/object.recon")).unwrap(),
    )
    .unwrap();
    assert_eq!(again["replication_stats"]["objects_pushed"], 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_rot_is_quarantined_and_restored() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    let good = body_of(5);
    assert_eq!(
        c.object_request("PUT", "AUTH_t", "c", "rotten", &good, &[])
            .await,
        3
    );
    // Flip bytes in node 0's copy (same length: only the MD5 can tell).
    let data = walk_files(&c.nodes[0].devices.join("d0/objects"), ".data");
    assert_eq!(data.len(), 1);
    let mut bytes = std::fs::read(&data[0]).unwrap();
    for b in bytes.iter_mut().take(4) {
        *b ^= 0xff;
    }
    std::fs::write(&data[0], &bytes).unwrap();
    let start = Instant::now();
    c.run_daemon(0, "object-auditor");
    assert!(
        !data[0].exists(),
        "the corrupt .data is gone from the object tree"
    );
    let q = walk_files(&c.nodes[0].devices.join("d0/quarantined/objects"), ".data");
    assert_eq!(q.len(), 1, "moved to quarantined/objects/<hash>");
    assert_eq!(std::fs::read(&q[0]).unwrap(), bytes);
    let dev0 = c
        .primaries("AUTH_t", "c", "rotten")
        .into_iter()
        .find(|d| d.device == "d0")
        .unwrap();
    // Between audit and repair the node answers 404, never the rotten bytes.
    assert_eq!(c.get_from(&dev0, "AUTH_t", "c", "rotten").await, Err(404));
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.dir.path().join("node0/cache/object.recon")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stats["object_auditor_stats_ALL"]["quarantined"], 1,
        "{stats}"
    );
    // Any replicator holding a good copy restores it.
    c.run_daemon(1, "object-replicator");
    heal("bit-rot-audit+replicate", start.elapsed());
    assert_eq!(
        c.get_from(&dev0, "AUTH_t", "c", "rotten").await.unwrap(),
        good
    );
    // And the auditor passes it now.
    c.run_daemon(0, "object-auditor");
    assert_eq!(
        walk_files(&c.nodes[0].devices.join("d0/quarantined/objects"), ".data").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_stay_deleted_when_a_node_returns() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    for i in 0..10 {
        assert_eq!(
            c.object_request("PUT", "AUTH_t", "c", &format!("gone{i}"), &body_of(i), &[])
                .await,
            3
        );
    }
    std::thread::sleep(Duration::from_millis(20));
    c.stop(2);
    for i in 0..10 {
        assert_eq!(
            c.object_request("DELETE", "AUTH_t", "c", &format!("gone{i}"), b"", &[])
                .await,
            2
        );
    }
    c.start(2);
    // The returning node replicates first: its stale .data must not resurrect anything.
    let took = c.run_daemon(2, "object-replicator")
        + c.run_daemon(0, "object-replicator")
        + c.run_daemon(1, "object-replicator");
    heal("missed-delete-10-objects", took);
    for i in 0..10 {
        let name = format!("gone{i}");
        for d in c.primaries("AUTH_t", "c", &name) {
            assert_eq!(
                c.get_from(&d, "AUTH_t", "c", &name).await,
                Err(404),
                "{name} on {}",
                d.device
            );
        }
    }
    assert!(walk_files(&c.nodes[2].devices.join("d2/objects"), ".data").is_empty());
    assert_eq!(
        walk_files(&c.nodes[2].devices.join("d2/objects"), ".ts").len(),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_moves_partitions_to_the_new_node_and_removes_handoffs() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    for i in 0..40 {
        assert_eq!(
            c.object_request("PUT", "AUTH_t", "c", &format!("r{i}"), &body_of(i), &[])
                .await,
            3
        );
    }
    let new = c.add_node();
    c.write_rings();
    c.start(new);
    let took = c.run_everywhere("object-replicator");
    heal("rebalance-add-node-40-objects", took);
    let ring = c.ring("object");
    for i in 0..40 {
        let name = format!("r{i}");
        for d in c.primaries("AUTH_t", "c", &name) {
            assert_eq!(
                c.get_from(&d, "AUTH_t", "c", &name).await.ok(),
                Some(body_of(i)),
                "{name} on {}",
                d.device
            );
        }
    }
    // Every partition directory left on a node is one the node is primary for.
    let mut moved_to_new = 0;
    for (i, n) in c.nodes.iter().enumerate() {
        for part in c.partitions_on(i) {
            let primaries: Vec<String> = ring
                .get_part_nodes(part)
                .iter()
                .map(|d| d.device.clone())
                .collect();
            assert!(
                primaries.contains(&n.dev),
                "node {i} still holds handoff partition {part} (primaries {primaries:?})"
            );
            if i == new {
                moved_to_new += 1;
            }
        }
    }
    assert!(moved_to_new > 0, "the new node received partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updaters_fix_listings_and_account_stats_after_container_outage() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    for i in 0..3 {
        c.stop_kind(i, 1);
    }
    let mut bytes = 0;
    for i in 0..12 {
        let b = body_of(i);
        bytes += b.len();
        assert_eq!(
            c.object_request("PUT", "AUTH_t", "c", &format!("u{i}"), &b, &[])
                .await,
            3,
            "object PUTs succeed without containers"
        );
    }
    let pending: usize = (0..3)
        .map(|i| walk_files(&c.nodes[i].devices.join(format!("d{i}/async_pending")), "").len())
        .sum();
    assert_eq!(pending, 36, "every container update was queued");
    for i in 0..3 {
        c.start_kind(i, 1);
    }
    let start = Instant::now();
    c.run_everywhere("object-updater");
    c.run_everywhere("container-updater");
    heal("container-outage-12-objects", start.elapsed());
    let pending: usize = (0..3)
        .map(|i| walk_files(&c.nodes[i].devices.join(format!("d{i}/async_pending")), "").len())
        .sum();
    assert_eq!(pending, 0);
    let cring = c.ring("container");
    let (cp, cnodes) = cring.get_nodes("AUTH_t", Some("c"), None).unwrap();
    for d in cnodes.iter() {
        let r = c
            .http
            .get(c.url(1, d, cp, "/AUTH_t/c?format=json"))
            .send()
            .await
            .unwrap();
        let list: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            list.as_array().unwrap().len(),
            12,
            "listing on {}",
            d.device
        );
    }
    let aring = c.ring("account");
    let (ap, anodes) = aring.get_nodes("AUTH_t", None, None).unwrap();
    for d in anodes.iter() {
        let r = c
            .http
            .head(c.url(2, d, ap, "/AUTH_t"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["x-account-object-count"],
            "12",
            "account on {}",
            d.device
        );
        assert_eq!(
            r.headers()["x-account-bytes-used"],
            bytes.to_string().as_str()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_replicator_rebuilds_a_lost_database() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    for i in 0..8 {
        assert_eq!(
            c.object_request("PUT", "AUTH_t", "c", &format!("db{i}"), &body_of(i), &[])
                .await,
            3
        );
    }
    // Node 2 loses its container database (a replaced disk).
    let dbs = walk_files(&c.nodes[2].devices.join("d2/containers"), ".db");
    assert_eq!(dbs.len(), 1);
    std::fs::remove_dir_all(dbs[0].parent().unwrap()).unwrap();
    let start = Instant::now();
    c.run_daemon(0, "container-replicator");
    heal("lost-container-db-8-rows", start.elapsed());
    let cring = c.ring("container");
    let (cp, cnodes) = cring.get_nodes("AUTH_t", Some("c"), None).unwrap();
    let d2 = cnodes.iter().find(|d| d.device == "d2").unwrap();
    let r = c
        .http
        .get(c.url(1, d2, cp, "/AUTH_t/c?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 8);
    // The auditor passes healthy databases and quarantines a rotten one.
    std::fs::write(&dbs[0], b"not sqlite any more").unwrap();
    c.run_daemon(2, "container-auditor");
    assert!(!dbs[0].exists());
    assert_eq!(
        walk_files(&c.nodes[2].devices.join("d2/quarantined/containers"), ".db").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expirer_deletes_objects_past_x_delete_at() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::new(3);
    c.create_account_and_container("AUTH_t", "c").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = now + 2;
    let qcont = (at / 86400 * 86400).to_string();
    let cring = c.ring("container");
    let (qp, qnodes) = cring
        .get_nodes(".expiring_objects", Some(&qcont), None)
        .unwrap();
    let q = &qnodes.get(0).unwrap();
    let extra = [
        ("X-Delete-At", at.to_string()),
        ("X-Delete-At-Container", qcont.clone()),
        ("X-Delete-At-Host", format!("{}:{}", q.ip, q.port)),
        ("X-Delete-At-Partition", qp.to_string()),
        ("X-Delete-At-Device", q.device.clone()),
    ];
    assert_eq!(
        c.object_request("PUT", "AUTH_t", "c", "brief", b"short-lived", &extra)
            .await,
        3
    );
    assert_eq!(
        c.object_request("PUT", "AUTH_t", "c", "stays", b"forever", &[])
            .await,
        3
    );
    std::thread::sleep(Duration::from_secs(3));
    // The queue container reaches the `.expiring_objects` account listing through the
    // container updater, as in Swift.
    c.run_everywhere("container-updater");
    c.run_daemon(0, "object-expirer");
    for d in c.primaries("AUTH_t", "c", "brief") {
        assert_eq!(c.get_from(&d, "AUTH_t", "c", "brief").await, Err(404));
        let files = walk_files(
            &c.nodes
                .iter()
                .find(|n| n.dev == d.device)
                .unwrap()
                .devices
                .join(&d.device)
                .join("objects"),
            ".ts",
        );
        assert!(!files.is_empty(), "a tombstone on {}", d.device);
    }
    assert!(c
        .get_from(
            &c.primaries("AUTH_t", "c", "stays")[0],
            "AUTH_t",
            "c",
            "stays"
        )
        .await
        .is_ok());
    let (cp, cn) = cring.get_nodes("AUTH_t", Some("c"), None).unwrap();
    let list: serde_json::Value = c
        .http
        .get(c.url(1, cn.get(0).unwrap(), cp, "/AUTH_t/c?format=json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["stays"]);
}

#[test]
fn daemons_reject_bad_configs_clearly() {
    let dir = tempfile::tempdir().unwrap();
    write_swift_conf(dir.path());
    let conf = dir.path().join("object-server.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nswift_dir = {}\n[object-replicator]\ninterval = soon\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["object-replicator", "-c"])
        .arg(&conf)
        .arg("--once")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interval") && err.contains("soon"), "{err}");
    // A missing ring is reported, not a panic, and the process exits.
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nswift_dir = {}\ndevices = {}\n",
            dir.path().display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["object-updater", "-c"])
        .arg(&conf)
        .arg("--once")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container.ring.gz"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files under `root` whose name ends with `suffix`, sorted.
fn walk_files(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix)
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

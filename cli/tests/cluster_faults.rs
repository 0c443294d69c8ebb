//! Faults under load: a 4-node `cluster up --netns` (3 replicas, so partitions have
//! handoffs) keeps taking PUT, overwrite, GET and DELETE traffic from several clients while
//! faults are injected one at a time and then combined. After healing, Swift's promises are
//! checked against what the clients were told:
//! - every object whose last write got a 2xx reads back with that write's bytes;
//! - every object whose DELETE got a 2xx is gone (404), and no `.data` of it is left;
//! - every live object has its replicas on its three primaries and nowhere else (the
//!   handoffs were reverted);
//! - the container listing holds exactly the live objects.
//!
//! A request whose outcome the client could not know (a transport error, a 5xx) makes its
//! object "unknown": the client never touches it again and no promise is checked for it.
//! Faults: a partition (link down), a hung node (SIGSTOP), both at once on two nodes, a
//! storage node and then the proxy killed with SIGKILL and restarted.
//! Per phase the test prints requests, errors and p99 latency (see BENCHMARKS.md).

mod cluster_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use ringsmith::hash::HashConfig;
use ringsmith::ring::Ring;

use cluster_support::{http, try_http, Down, NetnsCluster};

/// `fault` on the proxy rather than a node.
const PROXY: u32 = u32::MAX;

/// What a client knows about one of its objects.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    Present(Vec<u8>),
    Deleted,
    Unknown,
}

#[derive(Default)]
struct PhaseStats {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
}

struct Load {
    proxy: String,
    token: String,
    stop: AtomicBool,
    stats: Mutex<PhaseStats>,
}

impl Load {
    fn request(&self, method: &str, name: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let start = Instant::now();
        let r = try_http(
            &self.proxy,
            method,
            &format!("/v1/AUTH_test/load/{name}"),
            &[("X-Auth-Token", &self.token)],
            body,
            Duration::from_secs(30),
        );
        let mut st = self.stats.lock().unwrap();
        st.requests += 1;
        st.latencies.push(start.elapsed());
        match r {
            Ok((status, _, got)) if status < 500 => Some((status, got)),
            _ => {
                st.errors += 1;
                drop(st);
                // A refused connection fails at once: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        }
    }
}

/// One client: its own names, a random mix of operations until told to stop.
fn client(load: Arc<Load>, id: usize, seed: u64) -> BTreeMap<String, Known> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    let mut next = 0usize;
    while !load.stop.load(Ordering::Relaxed) {
        let usable: Vec<String> = known
            .iter()
            .filter(|(_, k)| **k != Known::Unknown)
            .map(|(n, _)| n.clone())
            .collect();
        let roll = rng.gen_range(0..100);
        if usable.is_empty() || roll < 35 {
            let name = format!("c{id}-{next:05}");
            next += 1;
            let size = if rng.gen_ratio(1, 50) {
                300_000
            } else {
                rng.gen_range(1..8192)
            };
            let body: Vec<u8> = (0..size).map(|_| rng.gen()).collect();
            let k = match load.request("PUT", &name, &body) {
                Some((201, _)) => Known::Present(body),
                _ => Known::Unknown,
            };
            known.insert(name, k);
            continue;
        }
        let name = usable[rng.gen_range(0..usable.len())].clone();
        let state = known[&name].clone();
        if roll < 55 {
            let body: Vec<u8> = (0..rng.gen_range(1..4096)).map(|_| rng.gen()).collect();
            let k = match load.request("PUT", &name, &body) {
                Some((201, _)) => Known::Present(body),
                _ => Known::Unknown,
            };
            known.insert(name, k);
        } else if roll < 90 {
            // Reads during faults may be stale; only their availability is measured.
            let _ = load.request("GET", &name, b"");
        } else if let Known::Present(_) = state {
            let k = match load.request("DELETE", &name, b"") {
                Some((204, _)) => Known::Deleted,
                _ => Known::Unknown,
            };
            known.insert(name, k);
        }
    }
    known
}

fn md5_hex(b: &[u8]) -> String {
    hex_string(&Md5::digest(b))
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `.data` files of `hash` on each node, by node index.
fn data_on_nodes(dir: &Path, nodes: u32, part: u32, hash: &str) -> Vec<u32> {
    let mut on = Vec::new();
    for n in 0..nodes {
        let obj_dir = dir.join(format!(
            "srv/node{n}/d0/objects/{part}/{}/{hash}",
            &hash[hash.len() - 3..]
        ));
        let has = std::fs::read_dir(&obj_dir)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "data"))
            })
            .unwrap_or(false);
        if has {
            on.push(n);
        }
    }
    on
}

#[test]
fn acknowledged_writes_survive_faults_under_load_and_replicas_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let _guard = Down(dir.clone());
    let nodes = 4u32;
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
        ],
    );
    let (proxy, token) = (cluster.proxy.clone(), cluster.token.clone());
    let prefix = cluster.record["netns"]["prefix"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, head, _) = http(
        &proxy,
        "PUT",
        "/v1/AUTH_test/load",
        &[("X-Auth-Token", &token)],
        b"",
    );
    assert!(st == 201 || st == 202, "{head}");

    let load = Arc::new(Load {
        proxy: proxy.clone(),
        token: token.clone(),
        stop: AtomicBool::new(false),
        stats: Mutex::new(PhaseStats::default()),
    });
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let load = load.clone();
            std::thread::spawn(move || client(load, id, 42 + id as u64))
        })
        .collect();

    let fault =
        |node: u32, action: &str| cluster.fault(&dir, (node != PROXY).then_some(node), action);
    let phase = |name: &str, secs: u64| {
        std::thread::sleep(Duration::from_secs(secs));
        let mut st = load.stats.lock().unwrap();
        let mut lat = std::mem::take(&mut st.latencies);
        lat.sort();
        let p99 = lat
            .get((lat.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        println!(
            "phase {name:<28} requests {:>5}  errors {:>4}  p99 {:>7.1} ms",
            st.requests,
            st.errors,
            p99.as_secs_f64() * 1000.0
        );
        *st = PhaseStats::default();
    };
    // Kills first: a restarted proxy starts with a clean error limiter, so the
    // network faults after it are measured on their own, not behind a node that the
    // limiter still skips for its 60 s (Swift's error_suppression_interval).
    phase("no fault", 6);
    fault(0, "kill");
    phase("node 0 killed (kill -9)", 8);
    fault(0, "restart");
    fault(PROXY, "kill");
    phase("proxy killed (kill -9)", 3);
    fault(PROXY, "restart");
    phase("node 0 and proxy restarted", 4);
    fault(3, "partition");
    phase("node 3 partitioned", 10);
    fault(3, "heal");
    fault(2, "hang");
    phase("node 2 hung (SIGSTOP)", 10);
    fault(2, "resume");
    fault(1, "partition");
    fault(3, "hang");
    phase("node 1 cut + node 3 hung", 10);
    fault(3, "resume");
    fault(1, "heal");
    phase("healed", 4);
    load.stop.store(true, Ordering::Relaxed);
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    for c in clients {
        known.extend(c.join().unwrap());
    }
    let present = known
        .values()
        .filter(|k| matches!(k, Known::Present(_)))
        .count();
    let deleted = known.values().filter(|k| **k == Known::Deleted).count();
    let unknown = known.values().filter(|k| **k == Known::Unknown).count();
    println!("objects: {present} present, {deleted} deleted, {unknown} unknown");
    assert!(
        present > 50,
        "too little acknowledged traffic to judge: {present}"
    );

    // Converge: every promise holds, within a bound.
    let etc = dir.join("etc");
    let hash = HashConfig::load(&etc).unwrap();
    let ring = Ring::load(&etc.join("object.ring.gz"), hash.clone()).unwrap();
    let node_of_ip = |ip: &str| {
        ip.strip_prefix(&format!("{prefix}."))
            .and_then(|x| x.parse::<u32>().ok())
            .map(|x| x - 10)
            .unwrap()
    };
    let healed_at = Instant::now();
    let deadline = healed_at + Duration::from_secs(150);
    let mut last_problem;
    loop {
        last_problem = None;
        for (name, k) in &known {
            let (part, primaries) = ring
                .get_nodes("AUTH_test", Some("load"), Some(name))
                .unwrap();
            let mut want: Vec<u32> = primaries.iter().map(|d| node_of_ip(&d.ip)).collect();
            want.sort();
            let h = hash
                .hash_path("AUTH_test", Some("load"), Some(name))
                .unwrap();
            let on = data_on_nodes(&dir, nodes, part, &h);
            let problem = match k {
                Known::Present(_) if on != want => {
                    Some(format!("{name}: .data on nodes {on:?}, primaries {want:?}"))
                }
                Known::Deleted if !on.is_empty() => {
                    Some(format!("{name}: deleted but .data on nodes {on:?}"))
                }
                _ => None,
            };
            if problem.is_some() {
                last_problem = problem;
                break;
            }
        }
        if last_problem.is_none() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        last_problem.is_none(),
        "replicas did not converge in {:?}: {}",
        deadline - healed_at,
        last_problem.unwrap()
    );
    println!(
        "replicas converged {:.1} s after healing",
        healed_at.elapsed().as_secs_f64()
    );

    let auth = [("X-Auth-Token", token.as_str())];
    for (name, k) in &known {
        let path = format!("/v1/AUTH_test/load/{name}");
        match k {
            Known::Present(body) => {
                let (st, head, got) = http(&proxy, "GET", &path, &auth, b"");
                assert_eq!(st, 200, "{name}: {head}");
                assert_eq!(
                    md5_hex(&got),
                    md5_hex(body),
                    "{name}: not the last acknowledged write"
                );
            }
            Known::Deleted => {
                let (st, head, _) = http(&proxy, "GET", &path, &auth, b"");
                assert_eq!(st, 404, "{name} came back: {head}");
            }
            Known::Unknown => {}
        }
    }

    // The listing converges to the truth (the container updaters and replicators).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, head, body) = http(&proxy, "GET", "/v1/AUTH_test/load?format=plain", &auth, b"");
        assert!(st == 200 || st == 204, "{head}");
        let listed: std::collections::BTreeSet<String> = String::from_utf8_lossy(&body)
            .lines()
            .map(str::to_string)
            .collect();
        let missing: Vec<&String> = known
            .iter()
            .filter(|(n, k)| matches!(k, Known::Present(_)) && !listed.contains(*n))
            .map(|(n, _)| n)
            .collect();
        let ghosts: Vec<&String> = known
            .iter()
            .filter(|(n, k)| **k == Known::Deleted && listed.contains(*n))
            .map(|(n, _)| n)
            .collect();
        if missing.is_empty() && ghosts.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listing did not converge: missing {missing:?}, deleted but listed {ghosts:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

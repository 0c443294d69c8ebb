//! The load and the promise checks shared by the fault tests: several clients send a
//! random mix of PUT, overwrite, GET and DELETE to one container while faults are
//! injected; afterwards Swift's promises are checked against what the clients were told:
//! - every object whose last write got a 2xx reads back with that write's bytes;
//! - every object whose DELETE got a 2xx is gone (404), and no `.data` of it is left;
//! - every live object has its replicas on its primaries and nowhere else (handoffs
//!   were reverted);
//! - the container listing holds exactly the live objects.
//!
//! A request whose outcome the client could not know (a transport error, a 5xx) makes its
//! object "unknown": the client never touches it again and no promise is checked for it.
//! A write that lost to a newer timestamp already stored (202 for a PUT, 409 for a
//! DELETE: a proxy whose clock is behind) changed nothing, and the client knows it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use ringsmith::hash::HashConfig;
use ringsmith::ring::Ring;

use super::{http, try_http};

/// The container every client writes to.
pub const CONTAINER: &str = "load";

/// What a client knows about one of its objects.
#[derive(Clone, Debug, PartialEq)]
pub enum Known {
    Present(Vec<u8>),
    Deleted,
    Unknown,
}

#[derive(Default)]
struct PhaseStats {
    requests: usize,
    errors: usize,
    /// Writes that lost to a newer stored timestamp (202 PUT, 409 DELETE).
    older: usize,
    latencies: Vec<Duration>,
}

/// The running clients and what they have been told so far.
pub struct Load {
    proxy: String,
    token: String,
    stop: AtomicBool,
    stats: Mutex<PhaseStats>,
}

impl Load {
    /// Creates the container and starts `clients` clients (seeded, so each run sends the
    /// same mix).
    pub fn start(proxy: &str, token: &str, clients: usize) -> (Arc<Load>, Clients) {
        let (st, head, _) = http(
            proxy,
            "PUT",
            &format!("/v1/AUTH_test/{CONTAINER}"),
            &[("X-Auth-Token", token)],
            b"",
        );
        assert!(st == 201 || st == 202, "{head}");
        let load = Arc::new(Load {
            proxy: proxy.to_string(),
            token: token.to_string(),
            stop: AtomicBool::new(false),
            stats: Mutex::new(PhaseStats::default()),
        });
        let handles = (0..clients)
            .map(|id| {
                let load = load.clone();
                std::thread::spawn(move || client(load, id, 42 + id as u64))
            })
            .collect();
        (load, Clients(handles))
    }

    /// Lets the load run for `secs`, then prints the phase's requests, errors and p99.
    pub fn phase(&self, name: &str, secs: u64) {
        std::thread::sleep(Duration::from_secs(secs));
        let mut st = self.stats.lock().unwrap();
        let mut lat = std::mem::take(&mut st.latencies);
        lat.sort();
        let p99 = lat
            .get((lat.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        let older = if st.older > 0 {
            format!("  lost to newer {:>4}", st.older)
        } else {
            String::new()
        };
        println!(
            "phase {name:<28} requests {:>5}  errors {:>4}  p99 {:>7.1} ms{older}",
            st.requests,
            st.errors,
            p99.as_secs_f64() * 1000.0
        );
        *st = PhaseStats::default();
    }

    fn request(&self, method: &str, name: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let start = Instant::now();
        let r = try_http(
            &self.proxy,
            method,
            &format!("/v1/AUTH_test/{CONTAINER}/{name}"),
            &[("X-Auth-Token", &self.token)],
            body,
            Duration::from_secs(30),
        );
        let mut st = self.stats.lock().unwrap();
        st.requests += 1;
        st.latencies.push(start.elapsed());
        match r {
            Ok((status, _, got)) if status < 500 => {
                if (method, status) == ("PUT", 202) || (method, status) == ("DELETE", 409) {
                    st.older += 1;
                }
                Some((status, got))
            }
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

/// The client threads; [`Clients::stop`] ends them and merges what they know.
pub struct Clients(Vec<JoinHandle<BTreeMap<String, Known>>>);

impl Clients {
    pub fn stop(self, load: &Load) -> BTreeMap<String, Known> {
        load.stop.store(true, Ordering::Relaxed);
        let mut known = BTreeMap::new();
        for c in self.0 {
            known.extend(c.join().unwrap());
        }
        let count = |f: fn(&Known) -> bool| known.values().filter(|k| f(k)).count();
        let present = count(|k| matches!(k, Known::Present(_)));
        println!(
            "objects: {present} present, {} deleted, {} unknown",
            count(|k| *k == Known::Deleted),
            count(|k| *k == Known::Unknown)
        );
        assert!(
            present > 50,
            "too little acknowledged traffic to judge: {present}"
        );
        known
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
                // A newer write is stored: this one changed nothing.
                Some((202, _)) => state,
                _ => Known::Unknown,
            };
            known.insert(name, k);
        } else if roll < 90 {
            // Reads during faults may be stale; only their availability is measured.
            let _ = load.request("GET", &name, b"");
        } else if let Known::Present(_) = state {
            let k = match load.request("DELETE", &name, b"") {
                Some((204, _)) => Known::Deleted,
                Some((409, _)) => state,
                _ => Known::Unknown,
            };
            known.insert(name, k);
        }
    }
    known
}

pub fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// The hash directory of object `hash` in partition `part` on node `n`'s device `d0`.
pub fn object_dir(dir: &Path, n: u32, part: u32, hash: &str) -> PathBuf {
    dir.join(format!(
        "srv/node{n}/d0/objects/{part}/{}/{hash}",
        &hash[hash.len() - 3..]
    ))
}

/// The `.data` file of a hash directory, if there is one.
pub fn data_file(obj_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(obj_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "data"))
}

/// The cluster as the promise checks see it.
pub struct Layout<'a> {
    pub dir: &'a Path,
    pub nodes: u32,
    /// Node index of a ring device's IP.
    pub node_of_ip: &'a dyn Fn(&str) -> u32,
}

/// Waits (up to `bound`) until every live object's `.data` is on exactly its primaries
/// and every deleted object's is gone; then reads every object back through the proxy
/// and waits for the listing to hold exactly the live objects.
pub fn check_promises(
    layout: &Layout,
    known: &BTreeMap<String, Known>,
    proxy: &str,
    token: &str,
    bound: Duration,
) {
    let etc = layout.dir.join("etc");
    let hash = HashConfig::load(&etc).unwrap();
    let ring = Ring::load(&etc.join("object.ring.gz"), hash.clone()).unwrap();
    let healed_at = Instant::now();
    let deadline = healed_at + bound;
    let mut last_problem;
    loop {
        last_problem = None;
        for (name, k) in known {
            let (part, primaries) = ring
                .get_nodes("AUTH_test", Some(CONTAINER), Some(name))
                .unwrap();
            let mut want: Vec<u32> = primaries
                .iter()
                .map(|d| (layout.node_of_ip)(&d.ip))
                .collect();
            want.sort();
            let h = hash
                .hash_path("AUTH_test", Some(CONTAINER), Some(name))
                .unwrap();
            let on: Vec<u32> = (0..layout.nodes)
                .filter(|&n| data_file(&object_dir(layout.dir, n, part, &h)).is_some())
                .collect();
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
        "replicas did not converge in {bound:?}: {}",
        last_problem.unwrap()
    );
    println!(
        "replicas converged {:.1} s after healing",
        healed_at.elapsed().as_secs_f64()
    );

    let auth = [("X-Auth-Token", token)];
    for (name, k) in known {
        let path = format!("/v1/AUTH_test/{CONTAINER}/{name}");
        match k {
            Known::Present(body) => {
                let (st, head, got) = http(proxy, "GET", &path, &auth, b"");
                assert_eq!(st, 200, "{name}: {head}");
                assert_eq!(
                    md5_hex(&got),
                    md5_hex(body),
                    "{name}: not the last acknowledged write"
                );
            }
            Known::Deleted => {
                let (st, head, _) = http(proxy, "GET", &path, &auth, b"");
                assert_eq!(st, 404, "{name} came back: {head}");
            }
            Known::Unknown => {}
        }
    }

    // The listing converges to the truth (the container updaters and replicators).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = list_all(proxy, &auth);
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

/// Every name in the test container, page by page: a listing stops at Swift's
/// `container_listing_limit` (10,000 names), and the load writes more than that.
fn list_all(proxy: &str, auth: &[(&str, &str)]) -> BTreeSet<String> {
    let mut listed = BTreeSet::new();
    loop {
        let marker = listed.last().cloned().unwrap_or_default();
        let (st, head, body) = http(
            proxy,
            "GET",
            &format!("/v1/AUTH_test/{CONTAINER}?format=plain&marker={marker}"),
            auth,
            b"",
        );
        assert!(st == 200 || st == 204, "{head}");
        let before = listed.len();
        listed.extend(String::from_utf8_lossy(&body).lines().map(str::to_string));
        if listed.len() == before {
            return listed;
        }
    }
}

//! Handoff revert with Ringsmith's SSYNC sender, through the real binaries. Seven nodes
//! under a 4+2 policy (so every partition has a handoff), Swift's proxy in front:
//! with one node down, objects are written (its fragments land on handoffs), one older
//! object is deleted and one POSTed (tombstone and `.meta` on a handoff). The node comes
//! back, Ringsmith's `object-reconstructor --once` runs on every node, and then:
//! the returned node holds every fragment it owns, byte-identical (bytes, metadata,
//! durable name) to the handoff copy; no handoff archive is left anywhere; the missed
//! DELETE and POST have converged; every object reads back with two other nodes down.
//!
//! Run against Ringsmith's object servers (our sender to our receiver) and against
//! Swift 2.38.3's object servers (our sender to Swift's receiver).

mod ec_common;
mod proxy_common;
mod ssync_common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use ec_common::*;
use proxy_common::*;
use ringsmith::hash::HashConfig;
use ringsmith::ring::Ring;
use ssync_common::*;

const DOWN: usize = 1;

fn object_ring(cluster: &Cluster) -> Ring {
    let etc = cluster.etc();
    Ring::load(&etc.join("object.ring.gz"), HashConfig::load(&etc).unwrap()).unwrap()
}

/// `objects/<part>/<suffix>/<hash>/<file>` of a node file path (`d<i>/objects/...`).
fn within_device(p: &std::path::Path) -> PathBuf {
    p.iter().skip(1).collect()
}

/// The node index (position in the ring's device list = node number here) of device `d<i>`.
fn node_of(device: &str) -> usize {
    device.trim_start_matches('d').parse().unwrap()
}

/// Whose reconstructor runs the revert.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reverter {
    Ringsmith,
    Swift,
}

/// One scenario at a time: two Swift-storage clusters of this binary would share their
/// loopback addresses (`ec_cluster_of` derives them from the pid and the storage kind),
/// and three seven-node clusters at once overload a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn revert_scenario(storage: Storage, reverter: Reverter) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut cluster = ec_cluster_of(storage, 7);
    let (http, token, url) = tester_with_container(&cluster.url(), "rv", TIMEOUT).await;
    let put = |name: String, body: Vec<u8>| {
        let http = http.clone();
        let token = token.clone();
        let url = url.clone();
        async move {
            let r = http
                .put(format!("{url}/rv/{name}"))
                .header("x-auth-token", &token)
                .header("x-object-meta-color", "blue")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "PUT {name}");
        }
    };
    // Written with every node up: later deleted and POSTed while one node is down.
    put("doomed".into(), body_of(3000, 7)).await;
    put("recolored".into(), body_of(5000, 8)).await;

    cluster.kill_node(DOWN);
    let count: usize = std::env::var("REVERT_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut objects = Vec::new();
    for n in 0..count {
        let body = body_of(1 + (n * 7 * SEGMENT / 5) % (5 * SEGMENT), n as u8 + 1);
        put(format!("obj-{n}"), body.clone()).await;
        objects.push((format!("obj-{n}"), body));
    }
    let r = http
        .delete(format!("{url}/rv/doomed"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("{url}/rv/recolored"))
        .header("x-auth-token", &token)
        .header("x-object-meta-color", "red")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    objects.push(("recolored".into(), body_of(5000, 8)));

    // Where the handoff archives are, by path within the device.
    let ring = object_ring(&cluster);
    let mut handoff_copies: BTreeMap<PathBuf, FileState> = BTreeMap::new();
    let mut handoff_count = 0;
    for i in 0..cluster.nodes.len() {
        for (path, state) in node_files(&cluster, i) {
            let rel = within_device(&path);
            let part: u32 = rel
                .iter()
                .nth(1)
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let primaries: Vec<usize> = ring
                .get_part_nodes(part)
                .iter()
                .map(|d| node_of(&d.device))
                .collect();
            if !primaries.contains(&i) && !rel.to_string_lossy().ends_with(".meta") {
                handoff_count += 1;
                if rel.to_string_lossy().ends_with(".data") {
                    handoff_copies.insert(rel, state);
                }
            }
        }
    }
    assert!(
        !handoff_copies.is_empty(),
        "node {DOWN} was down, so some fragments went to handoffs"
    );

    cluster.start_node(DOWN);
    cluster.wait_node(DOWN);
    let started = Instant::now();
    for i in 0..cluster.nodes.len() {
        let text = match reverter {
            Reverter::Ringsmith => {
                let conf = cluster.etc().join(format!("object-server-{i}.conf"));
                ringsmith_testkit::run_daemon_once(BIN, "object-reconstructor", &conf)
            }
            Reverter::Swift => output_text(&run_swift_daemon_once(
                &cluster,
                i,
                "swift-object-reconstructor",
                "object-reconstructor",
                "",
            )),
        };
        // Shown when the test fails.
        eprintln!("reconstructor on node {i}:\n{text}");
    }
    eprintln!(
        "{reverter:?} reverted {} handoff files ({} fragment archives) with reconstructor passes on {} nodes in {:.3}s",
        handoff_count,
        handoff_copies.len(),
        cluster.nodes.len(),
        started.elapsed().as_secs_f64()
    );

    // Every file is on a primary now; the returned node's archives equal the handoff copies.
    let returned = node_files(&cluster, DOWN);
    for i in 0..cluster.nodes.len() {
        for path in node_files(&cluster, i).keys() {
            let rel = within_device(path);
            let part: u32 = rel
                .iter()
                .nth(1)
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let nodes: Vec<usize> = ring
                .get_part_nodes(part)
                .iter()
                .map(|d| node_of(&d.device))
                .collect();
            // A handoff's lone `.meta` (a POST while the primary was down, for an
            // object the handoff never held) has nothing to revert with: the POST
            // reaches the primary from its partners instead (checked below).
            let is_meta = rel.to_string_lossy().ends_with(".meta");
            assert!(
                nodes.contains(&i) || is_meta,
                "node {i} still holds handoff file {}",
                rel.display()
            );
            if let Some(pos) = nodes.iter().position(|n| *n == i) {
                let name = rel.file_name().unwrap().to_string_lossy().into_owned();
                if let Some((_, frag)) = name.split_once('#') {
                    let fi: usize = frag.split(['#', '.']).next().unwrap().parse().unwrap();
                    assert_eq!(fi, pos % 6, "node {i} holds the fragment of its index");
                }
            }
        }
    }
    let returned_by_rel: BTreeMap<PathBuf, &FileState> = returned
        .iter()
        .map(|(p, s)| (within_device(p), s))
        .collect();
    for (rel, (bytes, meta)) in &handoff_copies {
        let Some((got, got_meta)) = returned_by_rel.get(rel) else {
            panic!("{} did not arrive on node {DOWN}", rel.display());
        };
        assert!(got == bytes, "{} bytes", rel.display());
        assert_eq!(got_meta, meta, "{} metadata", rel.display());
        assert!(rel.to_string_lossy().ends_with("#d.data"), "durable");
    }
    // The missed DELETE and POST converged on the returned node.
    let returned_names: Vec<String> = returned_by_rel
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let (_, doomed_nodes) = ring
        .get_nodes("AUTH_test", Some("rv"), Some("doomed"))
        .unwrap();
    if doomed_nodes.iter().any(|d| node_of(&d.device) == DOWN) {
        let hash = ringsmith::hash::HashConfig::load(&cluster.etc())
            .unwrap()
            .hash_path("AUTH_test", Some("rv"), Some("doomed"))
            .unwrap();
        assert!(
            returned_names
                .iter()
                .any(|n| n.contains(&hash) && n.ends_with(".ts")),
            "the missed DELETE reached node {DOWN}: {returned_names:?}"
        );
        assert!(
            !returned_names
                .iter()
                .any(|n| n.contains(&hash) && n.ends_with(".data")),
            "no data left for the deleted object on node {DOWN}"
        );
    }
    let (_, recolored_nodes) = ring
        .get_nodes("AUTH_test", Some("rv"), Some("recolored"))
        .unwrap();
    if recolored_nodes.iter().any(|d| node_of(&d.device) == DOWN) {
        let hash = HashConfig::load(&cluster.etc())
            .unwrap()
            .hash_path("AUTH_test", Some("rv"), Some("recolored"))
            .unwrap();
        let meta = returned_by_rel
            .iter()
            .find(|(p, _)| {
                let s = p.to_string_lossy();
                s.contains(&hash) && s.ends_with(".meta")
            })
            .unwrap_or_else(|| panic!("the missed POST reached node {DOWN}"));
        assert_eq!(
            meta.1 .1.get("X-Object-Meta-Color").map(String::as_str),
            Some("red")
        );
    }

    // The reverted fragments carry the data: two other nodes down, everything reads.
    // (Node 0 also runs Swift's proxy.) A fresh proxy: the first one still
    // error-limits the node that was down.
    let others = [2, 3];
    let fresh = cluster.start_swift_proxy_with_cluster_policies();
    let url = url.replace(&format!(":{}/", cluster.proxy_port), &format!(":{fresh}/"));
    for i in &others {
        cluster.kill_node(*i);
    }
    for (name, body) in &objects {
        let r = http
            .get(format!("{url}/rv/{name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {name} with nodes {others:?} down");
        assert!(r.bytes().await.unwrap() == body[..], "{name} body");
    }
    let r = http
        .get(format!("{url}/rv/doomed"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_fragments_revert_to_a_returned_ringsmith_node() {
    revert_scenario(Storage::Ringsmith, Reverter::Ringsmith).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_fragments_revert_to_a_returned_swift_node() {
    revert_scenario(Storage::Swift, Reverter::Ringsmith).await;
}

/// The oracle: Swift's own reconstructor on Swift's object servers meets the same
/// expectations (and gives the side-by-side time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_reconstructor_reverts_the_same_way() {
    revert_scenario(Storage::Swift, Reverter::Swift).await;
}

//! The object reconstructor on a real 4+2 cluster (Swift's proxy in front of six
//! Ringsmith object servers): a replaced, empty disk gets back byte-identical fragment
//! archives with equal metadata, and the cluster then survives two more lost nodes; and
//! the same rebuild under a policy whose fragments are duplicated (2+1, twice each).

mod ec_common;
mod proxy_common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ec_common::*;
use proxy_common::*;

type Archive = (Vec<u8>, BTreeMap<String, String>);

/// Every `.data` file of node `i`: path -> (bytes, xattr metadata).
fn node_archives(cluster: &Cluster, i: usize) -> BTreeMap<PathBuf, Archive> {
    let root = cluster.dir.path();
    data_files(root)
        .into_iter()
        .filter(|p| p.starts_with(root.join(format!("srv/node{i}"))))
        .filter(|p| p.to_string_lossy().ends_with(".data"))
        .map(|p| {
            let f = std::fs::File::open(&p).unwrap();
            let meta = ringsmith_server::object::diskfile::read_metadata(&f, &p)
                .unwrap()
                .into_iter()
                .collect();
            let bytes = std::fs::read(&p).unwrap();
            (p, (bytes, meta))
        })
        .collect()
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the wipe-and-rebuild leaves for the checks after it.
struct Rebuilt {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    cluster: Cluster,
    http: reqwest::Client,
    token: String,
    url: String,
    objects: Vec<(String, Vec<u8>)>,
    deleted: String,
}

/// Writes objects (one then deleted), wipes node 0's disk, runs node 0's reconstructor
/// once, and checks that every archive and the tombstone are back, byte for byte, at the
/// same paths, with the same metadata.
async fn wipe_and_rebuild_node_0(shape: EcShape) -> Rebuilt {
    // One cluster at a time: two (twelve object servers and two Swift proxies) on two
    // cores slow Swift's proxy past its node timeouts.
    let serial = SERIAL.lock().await;
    let cluster = ec_cluster_shaped(Storage::Ringsmith, shape.primaries(), shape);
    let (http, token, url) = tester_with_container(&cluster.url(), "ec", TIMEOUT).await;
    let count: usize = std::env::var("RECON_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut objects = Vec::new();
    for n in 0..count {
        // 1 byte up to several segments, with a partial last one.
        let size = 1 + (n * 5 * SEGMENT / 3) % (6 * SEGMENT);
        let body = body_of(size, n as u8 + 1);
        let name = format!("obj-{n}");
        let r = http
            .put(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .header("x-object-meta-color", "blue")
            .header("content-type", "text/x-rebuild")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "PUT {name}");
        objects.push((name, body));
    }
    // Delete one object: its tombstone must be recreated too.
    let r = http
        .delete(format!("{url}/ec/{}", objects[0].0))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let deleted = objects.remove(0);

    // Swift's proxy answers once a quorum has committed; the other commits may land just
    // after. The snapshot is of the committed (durable) archives.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while node_archives(&cluster, 0)
        .keys()
        .any(|p| !p.to_string_lossy().ends_with("#d.data"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "node 0's archives never all became durable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before = node_archives(&cluster, 0);
    assert_eq!(
        before.len(),
        objects.len(),
        "node 0 holds one archive per object"
    );
    // The replaced disk: empty.
    let objects_dir = cluster.dir.path().join("srv/node0/d0/objects");
    std::fs::remove_dir_all(&objects_dir).unwrap();
    assert!(node_archives(&cluster, 0).is_empty());

    let conf = cluster.dir.path().join("etc/object-server-0.conf");
    let started = std::time::Instant::now();
    let out = ringsmith_testkit::run_daemon_once(BIN, "object-reconstructor", &conf);
    let elapsed = started.elapsed();
    eprintln!("{out}");
    eprintln!(
        "rebuilt {} fragment archives in {:.3}s",
        objects.len(),
        elapsed.as_secs_f64()
    );

    let after = node_archives(&cluster, 0);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "the same archives, at the same paths (timestamp and index unchanged)"
    );
    for (path, (bytes, meta)) in &before {
        let (rebuilt, rebuilt_meta) = &after[path];
        assert!(
            rebuilt == bytes,
            "{} differs from the original",
            path.display()
        );
        assert_eq!(rebuilt_meta, meta, "{} metadata", path.display());
    }
    let tombstones = data_files(cluster.dir.path())
        .into_iter()
        .filter(|p| p.starts_with(&objects_dir) && p.to_string_lossy().ends_with(".ts"))
        .count();
    assert_eq!(tombstones, 1, "the deleted object's tombstone is back");
    Rebuilt {
        _serial: serial,
        cluster,
        http,
        token,
        url,
        objects,
        deleted: deleted.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconstructor_rebuilds_a_wiped_disk_byte_for_byte() {
    let Rebuilt {
        _serial,
        mut cluster,
        http,
        token,
        url,
        objects,
        deleted,
    } = wipe_and_rebuild_node_0(EcShape {
        k: 4,
        m: 2,
        duplication: 1,
    })
    .await;
    // Node 0's fragments now carry the data: two other nodes down, all still readable.
    cluster.kill_node(1);
    cluster.kill_node(2);
    for (name, body) in &objects {
        let r = http
            .get(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {name} with nodes 1 and 2 down");
        assert!(r.bytes().await.unwrap() == body[..], "{name} body");
    }
    let r = http
        .get(format!("{url}/ec/{deleted}"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// `ec_duplication_factor = 2`: each of the 2+1 fragments is stored twice (six primaries),
/// node 0's index is its position among a partition's primaries modulo 3, and the rebuilt
/// archives are the originals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconstructor_rebuilds_duplicated_fragments() {
    let rebuilt = wipe_and_rebuild_node_0(EcShape {
        k: 2,
        m: 1,
        duplication: 2,
    })
    .await;
    // Every object still reads whole through Swift's proxy.
    for (name, body) in &rebuilt.objects {
        let r = rebuilt
            .http
            .get(format!("{}/ec/{name}", rebuilt.url))
            .header("x-auth-token", &rebuilt.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {name}");
        assert!(r.bytes().await.unwrap() == body[..], "{name} body");
    }
}

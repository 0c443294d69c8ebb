//! SSYNC between Ringsmith and real Swift 2.38.3, through the real binaries:
//! Swift's object replicator (`sync_method = ssync`) and Swift's object reconstructor
//! push to Ringsmith's object servers, and Ringsmith's replicator (`sync_method = ssync`)
//! pushes to Swift's; what arrives is byte-identical to what the wiped node held, with
//! its metadata and durable state.

mod ec_common;
mod proxy_common;
mod ssync_common;

use ec_common::*;
use proxy_common::*;
use ssync_common::*;

async fn put_ok(http: &reqwest::Client, url: &str, token: &str, body: Vec<u8>, meta: &str) {
    let r = http
        .put(url)
        .header("x-auth-token", token)
        .header("x-object-meta-color", meta)
        .header("content-type", "text/x-ssync")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "PUT {url}");
}

/// Objects of several sizes, one POSTed (a `.meta`) with a new content type, one deleted
/// (a tombstone), one overwritten: every kind of file SSYNC carries.
async fn write_objects(base: &str, token: &str, container: &str, count: usize) {
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{base}/{container}"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "container PUT: {}", r.status());
    for n in 0..count {
        let size = 1 + (n * 5 * SEGMENT / 3) % (6 * SEGMENT);
        let url = format!("{base}/{container}/obj-{n}");
        put_ok(&http, &url, token, body_of(size, n as u8 + 1), "blue").await;
    }
    let url = format!("{base}/{container}/obj-1");
    put_ok(&http, &url, token, body_of(77, 9), "green").await;
    let r = http
        .post(format!("{base}/{container}/obj-2"))
        .header("x-auth-token", token)
        .header("x-object-meta-color", "red")
        .header("content-type", "text/x-posted")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "POST obj-2");
    let r = http
        .delete(format!("{base}/{container}/obj-0"))
        .header("x-auth-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "DELETE obj-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_replicator_ssync_restores_a_wiped_ringsmith_node() {
    let cluster = Cluster::start_with(Storage::Ringsmith, 3, "");
    let (token, url) = login(&cluster.url(), "test:tester", "testing").await;
    write_objects(&url, &token, "rep", 10).await;
    let before = node_files(&cluster, 0);
    let kinds = |ext: &str| {
        before
            .keys()
            .filter(|p| p.to_string_lossy().ends_with(ext))
            .count()
    };
    assert_eq!(kinds(".data"), 9, "node 0 holds every live object");
    assert_eq!(kinds(".ts"), 1);
    assert_eq!(kinds(".meta"), 1);

    wipe_objects(&cluster, 0);
    assert!(node_files(&cluster, 0).is_empty());
    let mut log = String::new();
    for i in [1, 2] {
        let out = run_swift_daemon_once(
            &cluster,
            i,
            "swift-object-replicator",
            "object-replicator",
            "sync_method = ssync",
        );
        log.push_str(&output_text(&out));
    }
    let after = node_files(&cluster, 0);
    if after.len() != before.len() {
        eprintln!("{log}");
    }
    assert_same_files("node 0 after Swift's ssync replication", &after, &before);
    assert!(log.contains("ssync"), "the replicator used ssync:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_reconstructor_ssync_rebuilds_a_wiped_ringsmith_ec_node() {
    let cluster = ec_cluster(Storage::Ringsmith);
    let (token, url) = login(&cluster.url(), "test:tester", "testing").await;
    write_objects(&url, &token, "ec", 8).await;
    let before = node_files(&cluster, 0);
    assert!(
        before
            .keys()
            .any(|p| p.to_string_lossy().ends_with("#d.data")),
        "durable fragment archives on node 0: {:?}",
        before.keys().collect::<Vec<_>>()
    );
    wipe_objects(&cluster, 0);
    let mut log = String::new();
    for i in 1..6 {
        let out = run_swift_daemon_once(
            &cluster,
            i,
            "swift-object-reconstructor",
            "object-reconstructor",
            "",
        );
        log.push_str(&output_text(&out));
    }
    let after = node_files(&cluster, 0);
    if after.len() != before.len() {
        eprintln!("{log}");
    }
    assert_same_files("node 0 after Swift's reconstructor", &after, &before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringsmith_replicator_ssync_restores_a_wiped_swift_node() {
    let cluster = Cluster::start_with(Storage::Swift, 3, "");
    let (token, url) = login(&cluster.url(), "test:tester", "testing").await;
    write_objects(&url, &token, "rep", 10).await;
    let before = node_files(&cluster, 0);
    assert_eq!(before.len(), 11, "9 .data, 1 .meta, 1 .ts on node 0");
    wipe_objects(&cluster, 0);
    let mut log = String::new();
    for i in [1, 2] {
        let conf = cluster.etc().join(format!("object-server-{i}.conf"));
        let text = std::fs::read_to_string(&conf).unwrap().replace(
            "[object-replicator]\n",
            &format!(
                "[object-replicator]\nsync_method = ssync\nrecon_cache_path = {}\n",
                cluster.dir.path().display()
            ),
        );
        let ssync_conf = cluster
            .etc()
            .join(format!("object-replicator-ssync-{i}.conf"));
        std::fs::write(&ssync_conf, text).unwrap();
        log.push_str(&ringsmith_testkit::run_daemon_once(
            env!("CARGO_BIN_EXE_ringsmith-server"),
            "object-replicator",
            &ssync_conf,
        ));
    }
    let after = node_files(&cluster, 0);
    if after.len() != before.len() {
        eprintln!("{log}");
    }
    assert_same_files(
        "Swift's node 0 after our ssync replication",
        &after,
        &before,
    );
}

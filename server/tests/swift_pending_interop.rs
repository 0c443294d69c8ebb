//! `.pending` files both ways: Swift 2.38.3's container and account servers and
//! Ringsmith's serve the *same* device directory. Row updates one server appends to a
//! database's `.pending` file are merged and listed by the other, and Swift's
//! `swift-container-info` counts the rows Ringsmith left pending. A torn record (a crash
//! mid-append) is skipped without losing the rest.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ringsmith_testkit::swift_bin;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");

struct Pair {
    rs: String,
    sw: String,
    _procs: Vec<Proc>,
}

/// Ringsmith's and Swift's `kind` servers on one device directory.
fn start_pair(dir: &Path, kind: &str, rs_ip: &str, sw_ip: &str) -> Pair {
    let etc = dir.join("etc");
    let devices = dir.join("node");
    let cache = dir.join("cache");
    let rs_port = free_port(rs_ip);
    let rs_conf = write_server_conf(&etc, kind, rs_ip, rs_port, &devices, &cache);
    let mut cmd = Command::new(BIN);
    cmd.arg(kind).arg("-c").arg(&rs_conf);
    let mut rs = Proc::spawn(
        &format!("ringsmith {kind}"),
        cmd,
        dir.join(format!("rs-{kind}.log")),
    );
    let rs_addr: SocketAddr = format!("{rs_ip}:{rs_port}").parse().unwrap();
    rs.wait_listening(rs_addr, Duration::from_secs(20));

    let sw_port = free_port(sw_ip);
    let sw_conf = etc.join(format!("swift-{kind}-server.conf"));
    std::fs::write(
        &sw_conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = {sw_ip}\nbind_port = {sw_port}\nworkers = 0\nuser = root\n\
             swift_dir = {}\nlog_level = WARNING\n\n[pipeline:main]\npipeline = {kind}-server\n\n\
             [app:{kind}-server]\nuse = egg:swift#{kind}\n",
            devices.display(),
            etc.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(swift_bin(&format!("swift-{kind}-server")));
    cmd.arg(&sw_conf);
    let mut sw = Proc::spawn(
        &format!("swift-{kind}-server"),
        cmd,
        dir.join(format!("sw-{kind}.log")),
    );
    let sw_addr: SocketAddr = format!("{sw_ip}:{sw_port}").parse().unwrap();
    sw.wait_listening(sw_addr, Duration::from_secs(60));
    Pair {
        rs: format!("http://{rs_addr}"),
        sw: format!("http://{sw_addr}"),
        _procs: vec![rs, sw],
    }
}

fn setup(dir: &Path) {
    for d in ["etc", "node/sda1", "cache"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    write_swift_conf(&dir.join("etc"));
}

/// The one database of `kind` (`containers` / `accounts`) under the device.
fn only_db(dir: &Path, kind: &str) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("node/sda1").join(kind)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "db") {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

fn pending_len(db: &Path) -> u64 {
    let mut p = db.as_os_str().to_owned();
    p.push(".pending");
    std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
}

fn append_pending(db: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut p = db.as_os_str().to_owned();
    p.push(".pending");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(PathBuf::from(p))
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn ts(n: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("{}.{:05}", now - 1000 + n, 0)
}

async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.text().await.unwrap())
}

async fn names(http: &reqwest::Client, url: &str) -> Vec<String> {
    let (s, _, body) = send(http, "GET", &format!("{url}?format=json"), &[]).await;
    assert_eq!(s, 200, "GET {url}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

async fn put_object_row(http: &reqwest::Client, base: &str, name: &str, t: &str) -> u16 {
    let url = format!("{base}/sda1/0/a/c/{name}");
    let hs = [
        ("x-timestamp", t),
        ("x-size", "7"),
        ("x-content-type", "text/plain"),
        ("x-etag", "0123456789abcdef0123456789abcdef"),
        ("x-backend-storage-policy-index", "0"),
    ];
    send(http, "PUT", &url, &hs).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_rows_pending_in_one_server_are_listed_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let pair = start_pair(dir.path(), "container", "127.0.0.6", "127.0.0.7");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // Swift creates the container and records three objects: they stay in its .pending.
    let c = |base: &str| format!("{base}/sda1/0/a/c");
    let (s, _, b) = send(
        &http,
        "PUT",
        &c(&pair.sw),
        &[
            ("x-timestamp", &ts(1)),
            ("x-backend-storage-policy-index", "0"),
        ],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    for (i, name) in ["sw-1", "sw-2", "sw-3"].iter().enumerate() {
        assert_eq!(
            put_object_row(&http, &pair.sw, name, &ts(10 + i as u64)).await,
            201
        );
    }
    let db = only_db(dir.path(), "containers");
    assert!(pending_len(&db) > 0, "Swift left its rows pending");

    // Ringsmith folds them in for its listing and empties the file.
    assert_eq!(names(&http, &c(&pair.rs)).await, ["sw-1", "sw-2", "sw-3"]);
    assert_eq!(pending_len(&db), 0);

    // Ringsmith records two objects and deletes one of Swift's: all pending.
    for (i, name) in ["rs-1", "rs-2"].iter().enumerate() {
        assert_eq!(
            put_object_row(&http, &pair.rs, name, &ts(20 + i as u64)).await,
            201
        );
    }
    let (s, _, _) = send(
        &http,
        "DELETE",
        &format!("{}/sw-2", c(&pair.rs)),
        &[
            ("x-timestamp", &ts(30)),
            ("x-backend-storage-policy-index", "0"),
        ],
    )
    .await;
    assert_eq!(s, 204);
    assert!(pending_len(&db) > 0, "Ringsmith left its rows pending");

    // Swift's own tool merges Ringsmith's records and counts them.
    let out = Command::new(swift_bin("swift-container-info"))
        .arg("-d")
        .arg(dir.path().join("etc"))
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Object Count: 4"), "{text}");
    assert!(text.contains("Bytes Used: 28"), "{text}");

    // More rows from Ringsmith, then a record torn by a crash mid-append, then one more
    // whole record (Swift's append after a torn one starts with its own ':').
    assert_eq!(put_object_row(&http, &pair.rs, "rs-3", &ts(40)).await, 201);
    append_pending(&db, b":gAIoWAQAAABvL8O8cQBYEAAAADAwMDAw");
    assert_eq!(put_object_row(&http, &pair.rs, "rs-4", &ts(41)).await, 201);

    // Swift's server lists everything Ringsmith recorded, skipping the torn record.
    assert_eq!(
        names(&http, &c(&pair.sw)).await,
        ["rs-1", "rs-2", "rs-3", "rs-4", "sw-1", "sw-3"]
    );
    let (s, h, _) = send(&http, "HEAD", &c(&pair.sw), &[]).await;
    assert_eq!(s, 204);
    assert_eq!(h["x-container-object-count"], "6");

    // And a torn record Swift finds is skipped by Ringsmith too.
    assert_eq!(put_object_row(&http, &pair.sw, "sw-4", &ts(50)).await, 201);
    append_pending(&db, b":gAIo");
    let (s, h, _) = send(&http, "HEAD", &c(&pair.rs), &[]).await;
    assert_eq!(s, 204);
    assert_eq!(h["x-container-object-count"], "7");
    assert_eq!(pending_len(&db), 0);

    // Both servers at once: appends and merges (listings) from two processes and many
    // tasks interleave on the one file under the shared lock; no row is lost.
    let mut tasks = Vec::new();
    for i in 0..120u64 {
        let (http, base) = (
            http.clone(),
            if i % 2 == 0 { &pair.rs } else { &pair.sw }.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if i % 10 == 9 {
                names(&http, &format!("{base}/sda1/0/a/c")).await;
                return;
            }
            let status = put_object_row(&http, &base, &format!("x-{i:03}"), &ts(100 + i)).await;
            assert_eq!(status, 201);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let want = 7 + 108;
    for base in [&pair.sw, &pair.rs] {
        let (s, h, _) = send(&http, "HEAD", &c(base), &[]).await;
        assert_eq!(s, 204);
        assert_eq!(h["x-container-object-count"], want.to_string().as_str());
        assert_eq!(names(&http, &c(base)).await.len(), want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_rows_pending_in_one_server_are_listed_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let pair = start_pair(dir.path(), "account", "127.0.0.8", "127.0.0.9");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let a = |base: &str| format!("{base}/sda1/0/a");
    let (s, _, b) = send(&http, "PUT", &a(&pair.rs), &[("x-timestamp", &ts(1))]).await;
    assert_eq!(s, 201, "{b}");
    let report = |name: &'static str, t: String, count: &'static str| {
        let http = http.clone();
        move |base: String| async move {
            let url = format!("{base}/sda1/0/a/{name}");
            let hs = [
                ("x-put-timestamp", t.as_str()),
                ("x-delete-timestamp", "0"),
                ("x-object-count", count),
                ("x-bytes-used", "100"),
                ("x-backend-storage-policy-index", "0"),
                // As the container updater sends it: no deleted check, so the
                // report is appended without merging what is pending.
                ("x-account-override-deleted", "yes"),
            ];
            send(&http, "PUT", &url, &hs).await.0
        }
    };
    assert_eq!(report("c-sw", ts(10), "2")(pair.sw.clone()).await, 201);
    let db = only_db(dir.path(), "accounts");
    assert!(pending_len(&db) > 0, "Swift left its row pending");
    assert_eq!(names(&http, &a(&pair.rs)).await, ["c-sw"]);
    assert_eq!(pending_len(&db), 0);

    assert_eq!(report("c-rs", ts(20), "3")(pair.rs.clone()).await, 201);
    assert!(pending_len(&db) > 0, "Ringsmith left its row pending");
    assert_eq!(names(&http, &a(&pair.sw)).await, ["c-rs", "c-sw"]);
    let (s, h, _) = send(&http, "HEAD", &a(&pair.sw), &[]).await;
    assert_eq!(s, 204);
    assert_eq!(h["x-account-object-count"], "5");
    assert_eq!(h["x-account-container-count"], "2");
}

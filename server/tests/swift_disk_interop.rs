//! Disk and REPLICATE compatibility both ways: Swift 2.38.3's own object server and
//! Ringsmith's serve the *same* device directory. What one writes the other reads, and
//! both answer REPLICATE with the same suffix hashes (so their replicators agree).

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ringsmith_testkit::swift_bin;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");

fn unpickle_hashes(body: &[u8]) -> Vec<(String, String)> {
    let v = ringsmith::pickle::loads(body).expect("REPLICATE answer is a pickle");
    let ringsmith::pickle::Value::Dict(items) = v.deref_shared().clone() else {
        panic!("REPLICATE answer is not a dict: {v:?}");
    };
    let mut out: Vec<(String, String)> = items
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap_or("None").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_and_ringsmith_object_servers_share_a_disk() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let devices = dir.path().join("node");
    let cache = dir.path().join("cache");
    for d in [&etc, &devices.join("sda1"), &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_swift_conf(&etc);
    let rs_port = free_port("127.0.0.6");
    let rs_conf = write_server_conf(&etc, "object", "127.0.0.6", rs_port, &devices, &cache);
    let mut cmd = Command::new(BIN);
    cmd.arg("object").arg("-c").arg(&rs_conf);
    let mut rs = Proc::spawn("ringsmith object", cmd, dir.path().join("rs.log"));
    let rs_addr: SocketAddr = format!("127.0.0.6:{rs_port}").parse().unwrap();
    rs.wait_listening(rs_addr, Duration::from_secs(20));

    let sw_port = free_port("127.0.0.7");
    let sw_conf = etc.join("swift-object-server.conf");
    std::fs::write(
        &sw_conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.7\nbind_port = {sw_port}\nworkers = 0\nuser = root\n\
             swift_dir = {}\ndisable_fallocate = true\nlog_level = WARNING\n\n[pipeline:main]\npipeline = object-server\n\n\
             [app:object-server]\nuse = egg:swift#object\n",
            devices.display(),
            etc.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(swift_bin("swift-object-server"));
    cmd.arg(&sw_conf);
    let mut sw = Proc::spawn("swift-object-server", cmd, dir.path().join("sw.log"));
    let sw_addr: SocketAddr = format!("127.0.0.7:{sw_port}").parse().unwrap();
    sw.wait_listening(sw_addr, Duration::from_secs(60));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = |n: u64| format!("{}.{:05}", now - 100 + n, 12345);
    // Swift writes one object (with metadata), Ringsmith writes another, same partition.
    let put = |addr: SocketAddr, name: &str, t: String, body: &'static [u8]| {
        http.put(format!("http://{addr}/sda1/9/AUTH_x/c/{name}"))
            .header("X-Timestamp", t)
            .header("Content-Type", "text/x-test")
            .header("X-Object-Meta-Origin", name.to_string())
            .body(body)
            .send()
    };
    assert_eq!(
        put(sw_addr, "by-swift", ts(1), b"written by swift")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        put(rs_addr, "by-ringsmith", ts(2), b"written by ringsmith")
            .await
            .unwrap()
            .status(),
        201
    );

    for addr in [sw_addr, rs_addr] {
        for (name, body) in [
            ("by-swift", "written by swift"),
            ("by-ringsmith", "written by ringsmith"),
        ] {
            let r = http
                .get(format!("http://{addr}/sda1/9/AUTH_x/c/{name}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                200,
                "{addr} GET {name}: {}\n{}",
                rs.log_text(),
                sw.log_text()
            );
            assert_eq!(r.headers()["x-object-meta-origin"], name);
            assert_eq!(r.headers()["content-type"], "text/x-test");
            assert_eq!(r.text().await.unwrap(), body);
        }
    }
    // A POST by one and a DELETE by the other are seen by both.
    let r = http
        .post(format!("http://{sw_addr}/sda1/9/AUTH_x/c/by-ringsmith"))
        .header("X-Timestamp", ts(3))
        .header("X-Object-Meta-Posted", "by swift")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http
        .head(format!("http://{rs_addr}/sda1/9/AUTH_x/c/by-ringsmith"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-object-meta-posted"], "by swift");
    let r = http
        .delete(format!("http://{rs_addr}/sda1/9/AUTH_x/c/by-swift"))
        .header("X-Timestamp", ts(4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("http://{sw_addr}/sda1/9/AUTH_x/c/by-swift"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Same suffix hashes from both REPLICATE implementations (Swift's answer first, so
    // it rebuilds the cache from its own recipe; then ours from scratch after
    // invalidating every suffix).
    let rep = |addr: SocketAddr| {
        let http = http.clone();
        async move {
            let r = http
                .request(
                    reqwest::Method::from_bytes(b"REPLICATE").unwrap(),
                    format!("http://{addr}/sda1/9"),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            unpickle_hashes(&r.bytes().await.unwrap())
        }
    };
    let from_swift = rep(sw_addr).await;
    assert_eq!(from_swift.len(), 2, "{from_swift:?}");
    std::fs::remove_file(devices.join("sda1/objects/9/hashes.pkl")).unwrap();
    let from_ringsmith = rep(rs_addr).await;
    assert_eq!(from_swift, from_ringsmith);
    // And Swift reads the hashes.pkl we wrote.
    assert_eq!(rep(sw_addr).await, from_swift);
}

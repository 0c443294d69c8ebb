//! The real `ringsmith-server` binary: object, container and account servers on
//! 127.0.0.x loopback ports, driven over HTTP the way a proxy drives them.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");

struct Cluster {
    _dir: tempfile::TempDir,
    etc: std::path::PathBuf,
    procs: Vec<Proc>,
    object: SocketAddr,
    container: SocketAddr,
    account: SocketAddr,
}

fn start_cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let devices = dir.path().join("node");
    let cache = dir.path().join("cache");
    for d in [&etc, &devices.join("sda1"), &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_swift_conf(&etc);
    let mut procs = Vec::new();
    let mut addrs = Vec::new();
    for (kind, ip) in [
        ("object", "127.0.0.2"),
        ("container", "127.0.0.3"),
        ("account", "127.0.0.4"),
    ] {
        let port = free_port(ip);
        let conf = write_server_conf(&etc, kind, ip, port, &devices, &cache);
        let mut cmd = Command::new(BIN);
        cmd.arg(kind).arg("-c").arg(&conf);
        let mut p = Proc::spawn(kind, cmd, dir.path().join(format!("{kind}.log")));
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        p.wait_listening(addr, Duration::from_secs(20));
        procs.push(p);
        addrs.push(addr);
    }
    Cluster {
        _dir: dir,
        etc,
        procs,
        object: addrs[0],
        container: addrs[1],
        account: addrs[2],
    }
}

fn ts(n: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("{:010}.{:05}", now - 100 + n, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_speak_the_backend_protocol_over_loopback() {
    let mut c = start_cluster();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (o, ct, a) = (c.object, c.container, c.account);

    // Account and container creation, container → account report.
    let r = http
        .put(format!("http://{a}/sda1/0/AUTH_t"))
        .header("X-Timestamp", ts(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!("http://{ct}/sda1/0/AUTH_t/photos"))
        .header("X-Timestamp", ts(2))
        .header("X-Account-Host", a.to_string())
        .header("X-Account-Partition", "0")
        .header("X-Account-Device", "sda1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(format!("http://{a}/sda1/0/AUTH_t?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-account-container-count"], "1");
    let listing: serde_json::Value = r.json().await.unwrap();
    assert_eq!(listing[0]["name"], "photos");

    // Object PUT (1 MiB, streamed) with the container update.
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let r = http
        .put(format!("http://{o}/sda1/0/AUTH_t/photos/cat%2Fpic.jpg"))
        .header("X-Timestamp", ts(3))
        .header("Content-Type", "image/jpeg")
        .header("X-Container-Host", ct.to_string())
        .header("X-Container-Partition", "0")
        .header("X-Container-Device", "sda1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(format!("http://{ct}/sda1/0/AUTH_t/photos?format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-container-object-count"], "1");
    let listing: serde_json::Value = r.json().await.unwrap();
    assert_eq!(listing[0]["name"], "cat/pic.jpg");
    assert_eq!(listing[0]["bytes"], 1_048_576);

    let r = http
        .get(format!("http://{o}/sda1/0/AUTH_t/photos/cat/pic.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let r = http
        .get(format!("http://{o}/sda1/0/AUTH_t/photos/cat/pic.jpg"))
        .header("Range", "bytes=1000-1009")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[1000..1010]);
    let r = http
        .head(format!("http://{o}/sda1/0/AUTH_t/photos/cat/pic.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1048576");

    // Expect: 100-continue — refusals come before the body is sent...
    let mut s = raw_connect(o);
    write_all(
        &mut s,
        format!(
            "PUT /sda1/0/AUTH_t/photos/cat/pic.jpg HTTP/1.1\r\nHost: x\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
            ts(2)
        )
        .as_bytes(),
    );
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 409"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-backend-timestamp:"),
        "{head}"
    );
    // ...and a write that passes the checks gets 100 Continue, then its answer.
    let mut s = raw_connect(o);
    write_all(
        &mut s,
        format!(
            "PUT /sda1/0/AUTH_t/photos/new HTTP/1.1\r\nHost: x\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
            ts(4)
        )
        .as_bytes(),
    );
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    write_all(&mut s, b"hello");
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");

    // A client that never finishes its request head is cut off (client_timeout = 3).
    let mut s = raw_connect(o);
    write_all(
        &mut s,
        b"PUT /sda1/0/AUTH_t/photos/slow HTTP/1.1\r\nHost: x\r\nX-Timest",
    );
    let started = std::time::Instant::now();
    let mut buf = [0u8; 512];
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "slow client held the connection"
    );

    // Recon over HTTP.
    let r = http
        .get(format!("http://{o}/recon/diskusage"))
        .send()
        .await
        .unwrap();
    let du: serde_json::Value = r.json().await.unwrap();
    assert_eq!(du[0]["device"], "sda1");
    assert_eq!(du[0]["mounted"], true);
    assert!(du[0]["size"].as_u64().unwrap() > 0);
    let r = http
        .get(format!("http://{ct}/recon/swiftconfmd5"))
        .send()
        .await
        .unwrap();
    let md5: serde_json::Value = r.json().await.unwrap();
    assert_eq!(md5["/etc/swift/swift.conf"].as_str().unwrap().len(), 32);

    // Graceful shutdown on SIGTERM.
    for p in c.procs.iter_mut() {
        let st = p
            .terminate(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{} ignored SIGTERM", p.name));
        assert!(
            st.success(),
            "{} exited with {st}: {}",
            p.name,
            p.log_text()
        );
    }
    let _ = &c.etc;
}

#[test]
fn bad_configs_are_clear_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("n")).unwrap();
    // No swift.conf.
    let conf = write_server_conf(&etc, "object", "127.0.0.1", 1, &etc.join("n"), &etc);
    let out = Command::new(BIN)
        .arg("object")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("swift.conf"), "{err}");
    // An invalid value names the file and the key.
    write_swift_conf(&etc);
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("bind_port = 1", "bind_port = sixty");
    std::fs::write(&conf, text).unwrap();
    let out = Command::new(BIN)
        .arg("object")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bind_port")
            && err.contains("sixty")
            && err.contains(&conf.display().to_string()),
        "{err}"
    );
    // A missing config file.
    let out = Command::new(BIN)
        .arg("account")
        .arg("-c")
        .arg(etc.join("nope.conf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.conf"));
    // An unknown server kind.
    let out = Command::new(BIN)
        .arg("frobnicator")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicator"));
}

/// `Proc::wait_listening` goes through the shared check (its own tests are in
/// `ringsmith-testkit`) and names the server in what it reports.
#[test]
fn a_port_answered_by_another_process_is_named_at_start() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A server that never binds, while this test process holds its port: the wait must
    // not mistake this process for it.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sleep");
    cmd.arg("30");
    let mut sleeper = Proc::spawn("sleeper", cmd, dir.path().join("sleep.log"));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sleeper.wait_listening(addr, Duration::from_secs(5))
    }))
    .expect_err("a port held by another process is not the server listening");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.starts_with("sleeper: ")
            && msg.contains(&format!("is answered by pid {} (", std::process::id())),
        "{msg}"
    );
}

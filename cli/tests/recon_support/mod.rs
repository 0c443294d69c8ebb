//! Shared by the recon tests: ring files pointing at local hosts, a fake recon server
//! whose hosts misbehave on demand, and a runner for the real binary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes a v1 `ring.gz` whose devices are `(ip, port, device, region, zone)`. Only the
/// device list matters to recon; the one-partition table is filled with device 0.
pub fn write_ring(path: &Path, devs: &[(&str, u16, &str, u32, u32)]) {
    let devs_json: Vec<serde_json::Value> = devs
        .iter()
        .enumerate()
        .map(|(id, (ip, port, dev, region, zone))| {
            serde_json::json!({"id": id, "region": region, "zone": zone, "ip": ip, "port": port,
                "replication_ip": ip, "replication_port": port, "device": dev,
                "weight": 100.0, "meta": ""})
        })
        .collect();
    let meta = serde_json::json!({"byteorder": "little", "devs": devs_json,
        "part_shift": 32, "replica_count": 1});
    let json = serde_json::to_vec(&meta).unwrap();
    let mut raw = b"R1NG\x00\x01".to_vec();
    raw.extend((json.len() as u32).to_be_bytes());
    raw.extend(json);
    raw.extend(0u16.to_le_bytes());
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    std::fs::write(path, z.finish().unwrap()).unwrap();
}

/// How one fake host answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with this body for the given paths (path after `/recon/`), 404 for others.
    Json(HashMap<String, String>),
    /// This status for everything.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Accepts and never answers.
    Hang,
    /// Answers the given bodies after a delay.
    Delay(Duration, HashMap<String, String>),
}

/// A fake recon cluster: one listener per host on loopback, each with its behaviour.
/// Dropping it stops every listener and open connection.
pub struct FakeCluster {
    runtime: Option<tokio::runtime::Runtime>,
    pub addrs: Vec<SocketAddr>,
}

impl FakeCluster {
    pub fn start(behaviours: Vec<Behaviour>) -> FakeCluster {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addrs = runtime.block_on(async {
            let mut addrs = Vec::new();
            for b in behaviours {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addrs.push(l.local_addr().unwrap());
                let b = Arc::new(b);
                tokio::spawn(async move {
                    while let Ok((mut sock, _)) = l.accept().await {
                        let b = b.clone();
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 8192];
                            let mut got = 0;
                            while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                                match sock.read(&mut buf[got..]).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => got += n,
                                }
                                if got == buf.len() {
                                    return;
                                }
                            }
                            let head = String::from_utf8_lossy(&buf[..got]).into_owned();
                            let mut first = head.split_whitespace();
                            let method = first.next().unwrap_or("").to_string();
                            let path = first.next().unwrap_or("").to_string();
                            let resp = respond(&b, &method, &path).await;
                            if let Some(r) = resp {
                                let _ = sock.write_all(r.as_bytes()).await;
                                let _ = sock.shutdown().await;
                            }
                        });
                    }
                });
            }
            addrs
        });
        FakeCluster {
            runtime: Some(runtime),
            addrs,
        }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.addrs.iter().map(|a| a.port()).collect()
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn http(status: u16, reason: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn respond(b: &Behaviour, method: &str, path: &str) -> Option<String> {
    let check = path.strip_prefix("/recon/").unwrap_or(path);
    let lookup = |bodies: &HashMap<String, String>| {
        if method == "OPTIONS" {
            let server = bodies
                .get("@server")
                .cloned()
                .unwrap_or("object-server/2.38.3".into());
            return http(200, "OK", "", &format!("Server: {server}\r\n"));
        }
        match bodies.get(check) {
            // The clock of a healthy host is read when asked.
            Some(body) if body == "@now" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                http(200, "OK", &now.to_string(), "")
            }
            Some(body) => http(200, "OK", body, ""),
            None => http(404, "Not Found", &format!("Invalid path: {path}"), ""),
        }
    };
    match b {
        Behaviour::Json(bodies) => Some(lookup(bodies)),
        Behaviour::Status(s) => Some(http(
            *s,
            "Internal Server Error",
            "Internal server error.",
            "",
        )),
        Behaviour::Garbage => Some(http(200, "OK", "<html>oops</html>", "")),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        Behaviour::Delay(d, bodies) => {
            tokio::time::sleep(*d).await;
            Some(lookup(bodies))
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    ringsmith_testkit::free_port("127.0.0.1")
}

/// Runs `ringsmith recon <args>` with a bounded wait.
pub fn ringsmith_recon(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringsmith"))
        .arg("recon")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(120))
}

/// Waits for a child at most `limit`, killing it past that (so a hung run fails the test).
pub fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> Output {
    let out = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let (o1, o2) = (out.clone(), out.clone());
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        o1.lock().unwrap().0 = v;
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        o2.lock().unwrap().1 = v;
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    t1.join().unwrap();
    t2.join().unwrap();
    let (stdout, stderr) = std::mem::take(&mut *out.lock().unwrap());
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The stdout lines that carry figures: everything but the timestamped headers and the
/// "N seconds ago" parts, which depend on when each tool ran.
pub fn figure_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with('[') || !l[1..].starts_with("20"))
        .map(|l| match l.find(" (") {
            Some(i) if l.contains(" ago) by ") => {
                let tail = &l[l.find(" ago) by ").unwrap() + 4..];
                format!("{}{}", &l[..i], tail)
            }
            _ => l.to_string(),
        })
        .collect()
}

// Live servers (Swift's or ours) for the tests that run real ones.

/// Kills the Swift servers it started when the test ends, however it ends.
pub struct Servers(pub Vec<std::process::Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The config of one storage server with the recon middleware, as both Swift's servers
/// and `ringsmith-server` read it.
pub fn server_conf(
    kind: &str,
    ip: &str,
    port: u16,
    devices: &Path,
    etc: &Path,
    cache: &Path,
) -> String {
    format!(
        "[DEFAULT]\ndevices = {devices}\nmount_check = false\ndisable_fallocate = true\n\
         bind_ip = {ip}\nbind_port = {port}\nworkers = 0\nuser = root\nswift_dir = {etc}\n\
         recon_cache_path = {cache}\nlog_level = WARNING\n\n\
         [pipeline:main]\npipeline = recon {kind}-server\n\n\
         [app:{kind}-server]\nuse = egg:swift#{kind}\n\n\
         [filter:recon]\nuse = egg:swift#recon\nrecon_lock_path = {cache}\n",
        devices = devices.display(),
        etc = etc.display(),
        cache = cache.display(),
    )
}

/// `ringsmith-server`, built by `cargo test --workspace` (scripts/test.sh) next to our binary.
pub fn ringsmith_server() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ringsmith"))
        .with_file_name(format!("ringsmith-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p ringsmith-server` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Whether `GET /recon/version` answers 200 (the server is up with recon loaded).
pub fn recon_version_ok(ip: &str, port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect((ip, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /recon/version HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.contains(" 200 ")
}

//! Shared by the tests that run whole clusters through `ringsmith cluster`: the binaries,
//! a guard that always stops the cluster, a minimal HTTP/1.1 client (one request per
//! connection, so a fault never hides behind a pooled connection), and readers of the
//! cluster's record and disks.

#![allow(dead_code)]

pub mod load;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub fn ringsmith() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ringsmith"));
    c.stdin(Stdio::null());
    c
}

pub fn server_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ringsmith")).with_file_name("ringsmith-server")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub struct Down(pub PathBuf);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = ringsmith()
            .args(["cluster", "down", "--dir"])
            .arg(&self.0)
            .output();
    }
}

/// One HTTP/1.1 request on a fresh connection: (status, headers text, body). Panics on a
/// transport error.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    try_http(addr, method, path, headers, body, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`http`], with transport errors (refused, reset, timed out) returned.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String, Vec<u8>), String> {
    let sock = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("reading: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP head")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let mut body = raw[split + 4..].to_vec();
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}

pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn cluster_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run/cluster.json")).unwrap()).unwrap()
}

/// Checks that every server `cluster up` recorded in `dir` is the process listening on
/// its address: a port found free but taken by another process before the cluster bound
/// it fails here, naming that process, not later with a puzzling answer.
///
/// A `--netns` cluster is not checked: its listeners are in namespaces of their own.
pub fn check_listeners(dir: &Path) {
    let record = cluster_json(dir);
    if !record["netns"].is_null() {
        return;
    }
    for p in record["procs"].as_array().expect("procs in cluster.json") {
        // The consistency daemons have no address.
        let Ok(addr) = p["addr"].as_str().unwrap_or("").parse::<SocketAddr>() else {
            continue;
        };
        let pid = p["pid"].as_u64().expect("a pid in cluster.json") as u32;
        if let Err(e) = ringsmith_testkit::check_listener(addr, pid) {
            panic!("{}: {e}", p["kind"]);
        }
    }
}

/// Every `.data` file under `dir`, sorted.
pub fn data_file_paths(dir: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|x| x == "data") {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

pub fn data_files(dir: &Path) -> usize {
    data_file_paths(dir).len()
}

/// A cluster started with `cluster up --netns` and a tempauth token for `test:tester`.
pub struct NetnsCluster {
    pub record: serde_json::Value,
    /// The proxy's `ip:port`.
    pub proxy: String,
    pub token: String,
}

impl NetnsCluster {
    /// `ringsmith cluster up --netns --dir DIR` plus `extra` arguments; then authenticates.
    pub fn start(dir: &Path, extra: &[&str]) -> NetnsCluster {
        let up = ringsmith()
            .args(["cluster", "up", "--netns"])
            .args(extra)
            .arg("--dir")
            .arg(dir)
            .arg("--server-bin")
            .arg(server_bin())
            .output()
            .unwrap();
        assert!(
            up.status.success(),
            "cluster up --netns failed:\n{}",
            text(&up)
        );
        let record = cluster_json(dir);
        let proxy = record["auth_url"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .trim_end_matches("/auth/v1.0")
            .to_string();
        let (st, head, _) = http(
            &proxy,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
            b"",
        );
        assert_eq!(st, 200, "{head}");
        let token = header(&head, "x-auth-token").unwrap().to_string();
        NetnsCluster {
            record,
            proxy,
            token,
        }
    }

    /// The node index of a storage node's address (`<prefix>.<10 + n>`).
    pub fn node_of_ip(&self, ip: &str) -> u32 {
        let prefix = self.record["netns"]["prefix"].as_str().unwrap();
        ip.strip_prefix(&format!("{prefix}."))
            .and_then(|x| x.parse::<u32>().ok())
            .map(|x| x - 10)
            .unwrap_or_else(|| panic!("{ip} is not a node of this cluster"))
    }

    /// `ringsmith cluster fault` on node `node`, or on the proxy when `node` is `None`;
    /// `action` may carry options (`skew --by 600`).
    pub fn fault(&self, dir: &Path, node: Option<u32>, action: &str) {
        let target = match node {
            Some(n) => vec!["--node".to_string(), n.to_string()],
            None => vec!["--proxy".to_string()],
        };
        let o = ringsmith()
            .args(["cluster", "fault"])
            .args(&target)
            .args(action.split_whitespace())
            .arg("--dir")
            .arg(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "fault {action}: {}", text(&o));
    }
}

pub use ringsmith_testkit::free_port;

/// A base port with base, +1, +2 free on the three node addresses.
pub fn free_base() -> u16 {
    for _ in 0..200 {
        let base = free_port("127.0.0.2");
        if base > 65000 {
            continue;
        }
        let ok = (2..=4).all(|n| {
            (0..3).all(|k| TcpListener::bind((format!("127.0.0.{n}").as_str(), base + k)).is_ok())
        });
        if ok {
            return base;
        }
    }
    panic!("no free port range on 127.0.0.2-4");
}

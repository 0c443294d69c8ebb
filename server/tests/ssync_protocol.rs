//! SSYNC refusals and protocol errors of Ringsmith's object server, spoken raw over a
//! socket to the real binary: an unknown device (507), a bad fragment index (400), the
//! replication lock held elsewhere (Swift's `:ERROR: 0 '<timeout>: <lock path>'` line),
//! a sender that breaks the protocol, a failed subrequest, and `replication_server =
//! false` (405).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

struct Server {
    _dir: tempfile::TempDir,
    devices: std::path::PathBuf,
    addr: SocketAddr,
    _proc: Proc,
}

fn start(app_options: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let devices = dir.path().join("srv");
    let cache = dir.path().join("cache");
    for d in [&etc, &devices.join("sda"), &cache] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_swift_conf(&etc);
    let ip = "127.0.0.1";
    let port = free_port(ip);
    let conf = write_server_conf(&etc, "object", ip, port, &devices, &cache);
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "use = egg:swift#object\n",
        &format!("use = egg:swift#object\n{app_options}\n"),
    );
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"));
    cmd.arg("object").arg("-c").arg(&conf);
    let mut p = Proc::spawn("object", cmd, dir.path().join("object.log"));
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    p.wait_listening(addr, Duration::from_secs(20));
    Server {
        _dir: dir,
        devices,
        addr,
        _proc: p,
    }
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Opens an SSYNC request; returns the stream and the response head.
fn open(addr: SocketAddr, path: &str, extra_headers: &str) -> (TcpStream, String) {
    let mut s = raw_connect(addr);
    write!(
        s,
        "SSYNC {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         X-Backend-Storage-Policy-Index: 0\r\n{extra_headers}\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// Sends `body` as chunks, ends the request, and reads the (de-chunked) answer body.
fn exchange(mut s: TcpStream, body: &[&[u8]]) -> String {
    for piece in body {
        s.write_all(&chunk(piece)).unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    // De-chunk.
    let mut out = Vec::new();
    let mut rest = &raw[..];
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[i + 2..i + 2 + size]);
        rest = &rest[i + 4 + size..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(head: &str) -> u16 {
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn refusals_before_the_protocol_starts() {
    let server = start("");
    let (_, head) = open(server.addr, "/nosuchdev/7", "");
    assert_eq!(status(&head), 507, "{head}");
    let (_, head) = open(server.addr, "/sda/7", "X-Backend-Ssync-Frag-Index: x\r\n");
    assert_eq!(status(&head), 400, "{head}");
    let (_, head) = open(server.addr, "/sda/7/extra", "");
    assert_eq!(status(&head), 400, "{head}");
    let (s, head) = open(server.addr, "/sda/7", "");
    assert_eq!(status(&head), 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-backend-accept-no-commit: true"),
        "{head}"
    );
    // An empty sync: both phases answered, nothing wanted.
    let answer = exchange(
        s,
        &[
            b":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n",
            b":UPDATES: START\r\n:UPDATES: END\r\n",
        ],
    );
    assert_eq!(
        answer,
        "\r\n:MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END\r\n"
    );

    let off = start("replication_server = false");
    let (_, head) = open(off.addr, "/sda/7", "");
    assert_eq!(status(&head), 405, "{head}");
}

#[test]
fn a_held_replication_lock_is_refused_with_swifts_error_line() {
    let server = start("replication_lock_timeout = 1");
    let part_dir = server.devices.join("sda/objects/7");
    std::fs::create_dir_all(&part_dir).unwrap();
    let lock_path = part_dir.join(".lock-replication");
    let _held = ringsmith::flock::lock(&lock_path).unwrap();
    let (s, head) = open(server.addr, "/sda/7", "");
    assert_eq!(status(&head), 200);
    let answer = exchange(s, &[b":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n"]);
    assert_eq!(
        answer,
        format!("\r\n:ERROR: 0 '1 seconds: {}'\n", lock_path.display()),
    );
}

#[test]
fn broken_senders_and_failed_subrequests_get_error_lines() {
    let server = start("");
    let (s, _) = open(server.addr, "/sda/7", "");
    let answer = exchange(s, &[b"hello\r\n"]);
    assert!(
        answer.contains(":ERROR: 0 'Looking for :MISSING_CHECK: START got"),
        "{answer}"
    );
    // A PUT subrequest the object server refuses (no X-Timestamp: 400) is read past and
    // counted; the sync then ends with a 500 error line.
    let (s, _) = open(server.addr, "/sda/7", "");
    let answer = exchange(
        s,
        &[
            b":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n",
            b":UPDATES: START\r\n",
            b"PUT /a/c/o\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n",
            b"abc",
            b"DELETE /a/c/gone\r\nX-Timestamp: 1700000000.00000\r\n\r\n",
            b":UPDATES: END\r\n",
        ],
    );
    assert!(
        answer.ends_with(":ERROR: 500 b'ERROR: With :UPDATES: 1 failures to 1 successes'\n"),
        "{answer}"
    );
    // The DELETE of an object never stored still wrote its tombstone.
    let tombstones = walk(&server.devices.join("sda/objects/7"));
    assert_eq!(tombstones.len(), 1, "{tombstones:?}");
    assert!(tombstones[0].ends_with("1700000000.00000.ts"));
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".ts") || n.ends_with(".data") {
                    out.push(n);
                }
            }
        }
    }
    out
}

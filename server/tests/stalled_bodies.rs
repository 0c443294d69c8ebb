//! Clients that stop sending a request body part way (the real proxy binary in front of a
//! Ringsmith storage node, `client_timeout = 2`): Swift's proxy answers 408 once a read
//! of the body waits longer than `client_timeout`, stores nothing, and leaves the object
//! that was there readable; the object server removes its temp file. A body that trickles
//! (each piece within the timeout) is not cut: the timeout is per read, as Swift's is.

mod proxy_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proxy_common::{Cluster, Storage};

const CLIENT_TIMEOUT_SECS: u64 = 2;

/// Reads one response (status and body) from a connection the server will close or
/// answer with a length.
fn status_of(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no response: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

fn request(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    status_of(&mut s)
}

fn token(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /auth/v1.0 HTTP/1.1\r\nHost: x\r\nX-Auth-User: test:tester\r\n\
          X-Auth-Key: testing\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("X-Auth-Token: "))
        .expect("a token")
        .trim()
        .to_string()
}

/// Files the object server `pid` holds open in its devices' `tmp` directories: uploads
/// in progress (named, or unnamed `O_TMPFILE` files, which `/proc` shows as deleted).
fn upload_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|t| t.contains("/srv/node0/") && t.contains("/tmp/"))
        .collect()
}

/// Sends `head` and `first` bytes of the body, then nothing: the answer and how long it
/// took to come.
fn stall(addr: &str, head: &str, first: &[u8]) -> (u16, String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first).unwrap();
    let started = Instant::now();
    let (status, body) = status_of(&mut s);
    (status, body, started.elapsed())
}

#[test]
fn stalled_bodies_get_408_and_lose_nothing() {
    let mut c = Cluster::start_with(Storage::Ringsmith, 1, "");
    let port = c.start_another_proxy(
        "stall-proxy",
        &format!("[app:proxy-server]\nclient_timeout = {CLIENT_TIMEOUT_SECS}\n"),
    );
    let addr = format!("127.0.0.1:{port}");
    let tok = token(&addr);
    let put = |path: &str, extra: &str| {
        format!(
            "PUT /v1/AUTH_test/{path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {tok}\r\n{extra}\r\n"
        )
    };
    assert_eq!(
        request(&addr, &put("c", "Content-Length: 0\r\n"), b"").0,
        201
    );
    let v1 = vec![b'1'; 5000];
    assert_eq!(
        request(&addr, &put("c/o", "Content-Length: 5000\r\n"), &v1).0,
        201
    );

    // A declared length, 300 KB of it sent (past the object server's 256 KiB write
    // buffer), then silence; over an existing object. The object server has the upload's
    // temp file open meanwhile.
    let object_server = c.nodes[0].children[0].id();
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(CLIENT_TIMEOUT_SECS);
        while Instant::now() < deadline {
            if !upload_files(object_server).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let (status, body, took) = stall(
        &addr,
        &put("c/o", "Content-Length: 1000000\r\n"),
        &[b'2'; 300_000],
    );
    assert!(
        watcher.join().unwrap(),
        "the object server never opened a temp file for the stalled upload"
    );
    assert_eq!(status, 408, "{body}");
    assert!(
        took >= Duration::from_secs(CLIENT_TIMEOUT_SECS) && took < Duration::from_secs(20),
        "answered after {took:?}"
    );
    // A chunked body: one chunk, then silence; to a new name.
    let (status, body, _) = stall(
        &addr,
        &put("c/new", "Transfer-Encoding: chunked\r\n"),
        b"400\r\n",
    );
    assert_eq!(status, 408, "{body}");

    // Nothing was stored; the old object reads as it was.
    let get = |path: &str| {
        format!("GET /v1/AUTH_test/{path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {tok}\r\nConnection: close\r\n\r\n")
    };
    let (status, body) = request(&addr, &get("c/o"), b"");
    assert_eq!(status, 200);
    assert_eq!(
        body.as_bytes(),
        &v1[..],
        "the object before the stalled PUT"
    );
    assert_eq!(request(&addr, &get("c/new"), b"").0, 404);
    let (status, listing) = request(&addr, &get("c"), b"");
    assert_eq!((status, listing.as_str()), (200, "o\n"));

    // The object server drops the abandoned uploads' temp files.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = upload_files(object_server);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "temp files left: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A body that trickles, each piece within the timeout, is stored whole.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(put("c/slow", "Content-Length: 4\r\n").as_bytes())
        .unwrap();
    for piece in [b"a", b"b", b"c", b"d"] {
        std::thread::sleep(Duration::from_millis(CLIENT_TIMEOUT_SECS * 1000 / 2));
        s.write_all(piece).unwrap();
    }
    assert_eq!(status_of(&mut s).0, 201, "a trickling body");
    let (status, body) = request(&addr, &get("c/slow"), b"");
    assert_eq!((status, body.as_str()), (200, "abcd"));
}

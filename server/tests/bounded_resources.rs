//! Hostile clients against the proxy (the real binary, in front of a Ringsmith storage
//! node), with its memory and open files read from `/proc` throughout:
//! - 1,000 slowloris connections, each trickling a request head a byte a second: the
//!   proxy keeps answering real clients, and cuts every slow one at `client_timeout`;
//!   its descriptors come back down once they are gone;
//! - request bodies past the object size limit (`max_file_size`, 8 MiB here): a declared
//!   one is refused before a byte is read, chunked ones streaming 64 MiB each (eight at
//!   once) are refused once past the limit, nothing is stored, and memory stays flat.
//!
//! Figures are printed (`BOUNDED ...`) and recorded in BENCHMARKS.md; the bounds asserted
//! are far above them and far below what buffering a body or a connection would cost.

mod proxy_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_common::{login, Cluster, Storage};

const SLOW_CLIENTS: usize = 1_000;
const CLIENT_TIMEOUT_SECS: u64 = 4;
const MAX_FILE_SIZE: usize = 8 << 20;

/// Resident memory (KiB) and open descriptors of `pid`.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// The test process opens a thousand sockets; so does the proxy, which inherits this.
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur as usize > 3 * SLOW_CLIENTS,
        "this test needs more than {} open files; the hard limit is {}",
        3 * SLOW_CLIENTS,
        lim.rlim_cur
    );
}

/// A slowloris client: a request head that never ends, a byte a second. Gives how long
/// the server let it live, or `None` when the server never cut it.
async fn slowloris(addr: String, connected: Arc<AtomicUsize>) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /v1/AUTH_test/c/o HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    connected.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(CLIENT_TIMEOUT_SECS * 5) {
        tokio::select! {
            // A 408, or just the close.
            _ = s.read(&mut buf) => return Some(start.elapsed()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if s.write_all(b"a").await.is_err() {
                    return Some(start.elapsed());
                }
            }
        }
    }
    None
}

/// A chunked PUT that would stream `total` bytes; stops sending once the server answers.
/// Gives the response's status line.
fn oversized_chunked_put(addr: &str, path: &str, token: &str, total: usize) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let mut reader = s.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match reader.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    });
    let chunk = vec![b'x'; 64 << 10];
    let mut sent = 0;
    while sent < total && !answer.is_finished() {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if s.write_all(&framed).is_err() {
            break;
        }
        sent += chunk.len();
    }
    if sent >= total {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    answer.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_and_oversized_bodies_leave_the_proxy_responsive_and_bounded() {
    raise_open_file_limit();
    let (c, port) = tokio::task::spawn_blocking(|| {
        let mut c = Cluster::start_with(Storage::Ringsmith, 1, "");
        let conf = c.etc().join("swift.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\n[swift-constraints]\nmax_file_size = {MAX_FILE_SIZE}\n"
        ));
        std::fs::write(&conf, text).unwrap();
        let port = c.start_another_proxy(
            "bounded-proxy",
            &format!("[app:proxy-server]\nclient_timeout = {CLIENT_TIMEOUT_SECS}\n"),
        );
        (c, port)
    })
    .await
    .unwrap();
    let pid = c.nodes[0].children.last().unwrap().id();
    let addr = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}");
    let (token, url) = login(&base, "test:tester", "testing").await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = http
        .put(format!("{url}/c"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!("{url}/c/o"))
        .header("x-auth-token", &token)
        .body(vec![7u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let get = |http: reqwest::Client| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let start = Instant::now();
            let r = http
                .get(format!("{url}/c/o"))
                .header("x-auth-token", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.bytes().await.unwrap().len(), 4096);
            start.elapsed()
        }
    };
    for _ in 0..20 {
        get(http.clone()).await;
    }
    let (rss0, fds0) = usage(pid);

    // The siege.
    let connected = Arc::new(AtomicUsize::new(0));
    let mut siege = tokio::task::JoinSet::new();
    for _ in 0..SLOW_CLIENTS {
        siege.spawn(slowloris(addr.clone(), connected.clone()));
    }
    let started = Instant::now();
    while connected.load(Ordering::Relaxed) < SLOW_CLIENTS {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "slow clients could not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut rss_peak, mut fds_peak) = (rss0, fds0);
    let mut latencies = vec![];
    while started.elapsed() < Duration::from_secs(CLIENT_TIMEOUT_SECS - 1) {
        // A fresh connection each time: a real client arriving during the siege.
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        latencies.push(get(fresh).await);
        let (rss, fds) = usage(pid);
        rss_peak = rss_peak.max(rss);
        fds_peak = fds_peak.max(fds);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lived = vec![];
    while let Some(r) = siege.join_next().await {
        lived.push(r.unwrap().expect("a slow client was never cut off"));
    }
    lived.sort();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let settle = Instant::now();
    let (rss1, mut fds1) = usage(pid);
    while fds1 > fds0 + 10 && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds1 = usage(pid).1;
    }
    println!(
        "BOUNDED slowloris: {SLOW_CLIENTS} slow clients, client_timeout {CLIENT_TIMEOUT_SECS} s; \
         {} real GETs meanwhile, all 200, p50 {:?} p99 {:?} max {:?}; slow clients cut after {:?}..{:?}; \
         proxy RSS {} -> peak {} -> {} KiB, fds {} -> peak {} -> {}",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99,
        latencies.last().unwrap(),
        lived[0],
        lived.last().unwrap(),
        rss0,
        rss_peak,
        rss1,
        fds0,
        fds_peak,
        fds1
    );
    assert!(latencies.len() >= 10, "too few real requests got through");
    assert!(
        fds_peak >= fds0 + SLOW_CLIENTS / 2,
        "the siege never reached the proxy (fds {fds0} -> {fds_peak})"
    );
    assert!(
        fds1 <= fds0 + 10,
        "slow clients' sockets stayed open: {fds0} -> {fds1}"
    );
    assert!(
        *lived.last().unwrap() < Duration::from_secs(CLIENT_TIMEOUT_SECS * 3),
        "a slow client lived {:?}",
        lived.last().unwrap()
    );
    // A thousand connections cost the proxy a few MiB, not a buffer each.
    assert!(
        rss_peak < rss0 + 128 * 1024,
        "proxy memory grew {rss0} -> {rss_peak} KiB"
    );

    // A declared body past the limit is refused before it is read.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT /v1/{}/c/declared HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nContent-Length: {}\r\n\r\n",
        url.rsplit('/').next().unwrap(),
        MAX_FILE_SIZE + 1
    )
    .unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap();
    let status = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");

    // Eight chunked uploads of 64 MiB each at once.
    let path = format!("/v1/{}/c/big", url.rsplit('/').next().unwrap());
    let sampler_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = sampler_stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(usage(pid).0);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, path, token) = (addr.clone(), path.clone(), token.clone());
            std::thread::spawn(move || oversized_chunked_put(&addr, &path, &token, 64 << 20))
        })
        .collect();
    for u in uploads {
        let status = u.join().unwrap();
        assert!(status.starts_with("HTTP/1.1 413"), "{status:?}");
    }
    sampler_stop.store(true, Ordering::Relaxed);
    let upload_peak = sampler.join().unwrap();
    let r = http
        .head(format!("{url}/c/big"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "an oversized upload was stored");
    get(http.clone()).await;
    println!(
        "BOUNDED oversized: 8 chunked PUTs of 64 MiB at once against max_file_size {} MiB: all 413, \
         nothing stored; proxy RSS {} -> peak {} KiB",
        MAX_FILE_SIZE >> 20,
        rss1,
        upload_peak
    );
    assert!(
        upload_peak < rss1 + 128 * 1024,
        "proxy memory grew {rss1} -> {upload_peak} KiB under oversized uploads"
    );
    drop(c);
}

//! 4 KiB PUT and GET throughput and latency, in one run: a Swift 2.38.3 all-in-one (its
//! proxy and storage servers) against a Ringsmith cluster (ours), both 3 nodes with 3
//! replicas; Ringsmith's proxy on Swift's storage nodes; and the PACO in-process object
//! path against the same one-replica cluster over loopback HTTP.
//!
//! `cargo bench -p ringsmith-server --bench proxy_vs_swift` (env: BENCH_SECS, BENCH_CONC).
//! Prints requests/s, latency percentiles and the ratio. Not a test: nothing is asserted.

#[path = "../tests/proxy_common/mod.rs"]
mod proxy_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_common::{login, Cluster, Storage};

struct Run {
    rps: f64,
    lat: Vec<Duration>,
    errors: usize,
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

async fn drive(url: &str, token: &str, method: &str, secs: f64, conc: usize, names: usize) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 4096]);
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, body, counter) = (client.clone(), body.clone(), counter.clone());
        let (url, token, method) = (url.to_string(), token.to_string(), method.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed) % names;
                let t = Instant::now();
                let r = if method == "PUT" {
                    client
                        .put(format!("{url}/bench/o{n}"))
                        .header("x-auth-token", &token)
                        .body(body.clone())
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{url}/bench/o{n}"))
                        .header("x-auth-token", &token)
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort();
    Run {
        rps: lat.len() as f64 / elapsed,
        lat,
        errors,
    }
}

fn report(name: &str, op: &str, r: &Run) {
    println!(
        "{name:<10} {op:<4} {:>9.1} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ok {:>6}  errors {}",
        r.rps, pct(&r.lat, 0.5), pct(&r.lat, 0.9), pct(&r.lat, 0.99), pct(&r.lat, 1.0), r.lat.len(), r.errors
    );
}

async fn measure(label: &str, base: &str, secs: f64, conc: usize) -> (f64, f64) {
    let (tok, url) = login(base, "test:tester", "testing").await;
    let c = reqwest::Client::new();
    let r = c
        .put(format!("{url}/bench"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{label}: container PUT {}",
        r.status()
    );
    let put = drive(&url, &tok, "PUT", secs, conc, 1000).await;
    report(label, "PUT", &put);
    let get = drive(
        &url,
        &tok,
        "GET",
        secs,
        conc,
        1000.min(put.lat.len().max(1)),
    )
    .await;
    report(label, "GET", &get);
    (put.rps, get.rps)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a minutes-long load run has no place in the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxy_vs_swift: a load benchmark; run it with `cargo bench -p ringsmith-server --bench proxy_vs_swift`");
        return;
    }
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let conc: usize = std::env::var("BENCH_CONC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("4 KiB objects, {conc} concurrent clients, {secs} s per phase");
    println!("-- 3 nodes, 3 replicas: Swift all-in-one vs Ringsmith cluster (and Ringsmith's proxy on Swift's storage)");
    let (swift, mixed) = {
        let mut c = Cluster::start_with(Storage::Swift, 3, "");
        let port = c.start_swift_proxy();
        let swift = rt.block_on(measure(
            "swift",
            &format!("http://127.0.0.1:{port}"),
            secs,
            conc,
        ));
        let mixed = rt.block_on(measure("rs-proxy", &c.url(), secs, conc));
        (swift, mixed)
    };
    let ours = {
        let c = Cluster::start_with(Storage::Ringsmith, 3, "");
        rt.block_on(measure("ringsmith", &c.url(), secs, conc))
    };
    println!(
        "ratio ringsmith/swift: PUT {:.2}x  GET {:.2}x   (ringsmith proxy on Swift storage: PUT {:.2}x  GET {:.2}x)",
        ours.0 / swift.0, ours.1 / swift.1, mixed.0 / swift.0, mixed.1 / swift.1
    );
    println!(
        "-- PACO: 1 node, 1 replica, same storage; object path over loopback HTTP vs in-process"
    );
    let mut c = Cluster::start_with(Storage::Ringsmith, 1, "");
    let paco_port = c.start_another_proxy(
        "paco-proxy",
        &format!(
            "[app:proxy-server]\nobject_in_process = true\nobject_server_conf = {}\n",
            c.etc().join("object-server-0.conf").display()
        ),
    );
    let http = rt.block_on(measure("http", &c.url(), secs, conc));
    let paco = rt.block_on(measure(
        "paco",
        &format!("http://127.0.0.1:{paco_port}"),
        secs,
        conc,
    ));
    println!(
        "ratio paco/http: PUT {:.2}x  GET {:.2}x",
        paco.0 / http.0,
        paco.1 / http.1
    );
    println!("-- PACO, one client at a time (latency)");
    let http1 = rt.block_on(measure("http-c1", &c.url(), secs / 2.0, 1));
    let paco1 = rt.block_on(measure(
        "paco-c1",
        &format!("http://127.0.0.1:{paco_port}"),
        secs / 2.0,
        1,
    ));
    println!(
        "ratio paco/http (1 client): PUT {:.2}x  GET {:.2}x",
        paco1.0 / http1.0,
        paco1.1 / http1.1
    );
    drop(c);
}

//! 4 KiB PUT and GET throughput and latency through Ringsmith's proxy and through Swift
//! 2.38.3's proxy, in the same run, over the same three Swift storage nodes (3 replicas).
//!
//! `cargo bench -p ringsmith-server --bench proxy_vs_swift` (env: BENCH_SECS, BENCH_CONC).
//! Prints requests/s, latency percentiles and the ratio. Not a test: nothing is asserted.

#[path = "../tests/proxy_common/mod.rs"]
mod proxy_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_common::{login, Cluster};

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
    let client = reqwest::Client::builder().pool_max_idle_per_host(conc).build().unwrap();
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
                    client.put(format!("{url}/bench/o{n}")).header("x-auth-token", &token).body(body.clone()).send().await
                } else {
                    client.get(format!("{url}/bench/o{n}")).header("x-auth-token", &token).send().await
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
    Run { rps: lat.len() as f64 / elapsed, lat, errors }
}

fn report(name: &str, op: &str, r: &Run) {
    println!(
        "{name:<10} {op:<4} {:>9.1} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  ok {:>6}  errors {}",
        r.rps, pct(&r.lat, 0.5), pct(&r.lat, 0.9), pct(&r.lat, 0.99), pct(&r.lat, 1.0), r.lat.len(), r.errors
    );
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10.0);
    let conc: usize = std::env::var("BENCH_CONC").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let mut cluster = Cluster::start(3, "");
    let swift_port = cluster.start_swift_proxy();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ours = cluster.url();
        let swift = format!("http://127.0.0.1:{swift_port}");
        println!("4 KiB objects, {conc} concurrent clients, {secs} s per phase, 3 replicas on 3 Swift 2.38.3 storage nodes");
        let mut results = Vec::new();
        for (name, base) in [("swift", swift.as_str()), ("ringsmith", ours.as_str())] {
            let (tok, url) = login(base, "test:tester", "testing").await;
            let c = reqwest::Client::new();
            let r = c.put(format!("{url}/bench")).header("x-auth-token", &tok).send().await.unwrap();
            assert!(r.status().is_success(), "{name}: container PUT {}", r.status());
            let put = drive(&url, &tok, "PUT", secs, conc, 1000).await;
            report(name, "PUT", &put);
            let get = drive(&url, &tok, "GET", secs, conc, 1000.min(put.lat.len().max(1))).await;
            report(name, "GET", &get);
            results.push((put.rps, get.rps));
        }
        println!(
            "ratio ringsmith/swift: PUT {:.2}x  GET {:.2}x",
            results[1].0 / results[0].0,
            results[1].1 / results[0].1
        );
    });
    drop(cluster);
}

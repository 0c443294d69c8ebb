//! A bounded load generator for object servers (Ringsmith's or Swift's): `requests`
//! PUTs of `size` bytes with `concurrency` in flight, then the same number of GETs of
//! those objects, on one device. Prints requests per second for each phase as
//! `PUT <rps>` and `GET <rps>` lines; every response must be a 201/200 with the right
//! body length, or the run fails.
//!
//! ```text
//! cargo run --release -p ringsmith-server --example object_load -- \
//!     http://127.0.0.1:6200/sda1 5000 16 4096
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: object_load <base-url e.g. http://127.0.0.1:6200/sda1> <requests> <concurrency> <size>");
        std::process::exit(2);
    }
    let base = args[1].trim_end_matches('/').to_string();
    let requests: usize = args[2].parse().expect("requests");
    let concurrency: usize = args[3].parse().expect("concurrency");
    let size: usize = args[4].parse().expect("size");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let run_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let body = bytes::Bytes::from(vec![b'x'; size]);
        for phase in ["PUT", "GET"] {
            let next = Arc::new(AtomicUsize::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (client, next, base, body) =
                    (client.clone(), next.clone(), base.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            break;
                        }
                        let url = format!("{base}/0/bench/c/o-{run_id}-{i}");
                        if phase == "PUT" {
                            let ts = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .unwrap()
                                .as_secs_f64();
                            let r = client
                                .put(&url)
                                .header("X-Timestamp", format!("{ts:016.5}"))
                                .header("Content-Type", "application/octet-stream")
                                .body(body.clone())
                                .send()
                                .await
                                .expect("PUT");
                            assert_eq!(r.status().as_u16(), 201, "PUT {url}");
                            let _ = r.bytes().await;
                        } else {
                            let r = client.get(&url).send().await.expect("GET");
                            assert_eq!(r.status().as_u16(), 200, "GET {url}");
                            let b = r.bytes().await.expect("GET body");
                            assert_eq!(b.len(), size, "GET {url}");
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.expect("load task");
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{phase} {:.0}", requests as f64 / secs);
        }
    });
}

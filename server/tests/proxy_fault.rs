//! Fault tolerance: one of three storage nodes dies (SIGKILL) in the middle of a stream of
//! PUTs. Every PUT the proxy acknowledged must read back intact, and GETs keep working.

mod proxy_common;

use std::time::Duration;

use proxy_common::{tester_with_container, Cluster};
use reqwest::StatusCode;

fn payload(i: usize) -> Vec<u8> {
    (0..4096usize)
        .map(|j| ((i * 131 + j * 7) % 251) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_during_puts_loses_no_acknowledged_object() {
    let mut c = tokio::task::spawn_blocking(|| Cluster::start(3, ""))
        .await
        .unwrap();
    let (http, tok, url) = tester_with_container(&c.url(), "stream", Duration::from_secs(30)).await;

    let total = 120;
    let kill_at = 40;
    let mut acked = Vec::new();
    let mut failed = 0;
    for i in 0..total {
        if i == kill_at {
            // Kill node 1 (object, container and account servers) mid-stream, while a
            // few PUTs are in flight.
            let inflight: Vec<_> = (0..4)
                .map(|k| {
                    let (http, url, tok) = (http.clone(), url.clone(), tok.clone());
                    let n = total + k;
                    tokio::spawn(async move {
                        let r = http
                            .put(format!("{url}/stream/obj-{n}"))
                            .header("x-auth-token", &tok)
                            .body(payload(n))
                            .send()
                            .await;
                        (n, r.map(|r| r.status()).ok())
                    })
                })
                .collect();
            tokio::task::block_in_place(|| c.kill_node(1));
            for h in inflight {
                let (n, s) = h.await.unwrap();
                if s == Some(StatusCode::CREATED) {
                    acked.push(n);
                }
            }
        }
        let r = http
            .put(format!("{url}/stream/obj-{i}"))
            .header("x-auth-token", &tok)
            .body(payload(i))
            .send()
            .await
            .unwrap();
        match r.status() {
            StatusCode::CREATED => acked.push(i),
            s => {
                failed += 1;
                eprintln!("PUT obj-{i}: {s}");
            }
        }
        // GETs keep working throughout.
        if i % 10 == 9 {
            let j = acked[acked.len() / 2];
            let r = http
                .get(format!("{url}/stream/obj-{j}"))
                .header("x-auth-token", &tok)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "GET obj-{j} after {i} PUTs");
            assert_eq!(r.bytes().await.unwrap().as_ref(), payload(j).as_slice());
        }
    }
    // Two replicas out of three are a quorum, so PUTs after the kill still succeed.
    assert!(
        failed <= 4,
        "{failed} PUTs failed with one node of three down:\n{}",
        c.proxy_log()
    );
    for &i in &acked {
        let r = http
            .get(format!("{url}/stream/obj-{i}"))
            .header("x-auth-token", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged obj-{i} is lost");
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            payload(i).as_slice(),
            "acknowledged obj-{i} came back different"
        );
    }
    // The proxy stopped sending to the dead node: it was error limited.
    assert!(c.proxy_log().contains("error limited"), "{}", c.proxy_log());
}

/// The `.data` files under storage node `i`'s device.
fn data_files(c: &Cluster, i: usize) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    usize::from(p.extension().is_some_and(|x| x == "data"))
                }
            })
            .sum()
    }
    walk(&c.dir.path().join(format!("srv/node{i}/d{i}/objects")))
}

fn signal(c: &Cluster, node: usize, sig: &str) {
    // The object server is the node's first process.
    let pid = c.nodes[node].children[0].id().to_string();
    let st = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Two object servers hang (SIGSTOP: their kernel still completes TCP handshakes, so a
/// connect succeeds and nothing more happens). Every PUT must still store all three
/// replicas, on handoffs where a primary hangs: the proxy learns from the missing
/// `100 Continue` that a node will not take its replica and gives the slot to the next
/// node. Without that, a PUT whose partition has both hung nodes among its primaries gets
/// no quorum (503), and one with a single hung primary keeps only two replicas. When the
/// hung servers wake up, the requests they were sent and then abandoned store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_object_servers_are_replaced_by_handoffs() {
    let c = tokio::task::spawn_blocking(|| Cluster::start(5, ""))
        .await
        .unwrap();
    let (http, tok, url) = tester_with_container(&c.url(), "hung", Duration::from_secs(60)).await;
    let hung = [1usize, 3];
    for n in hung {
        signal(&c, n, "-STOP");
    }
    let total = 24;
    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..total {
        let t = std::time::Instant::now();
        let r = http
            .put(format!("{url}/hung/obj-{i}"))
            .header("x-auth-token", &tok)
            .body(payload(i))
            .send()
            .await
            .unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "PUT obj-{i} with two hung object servers"
        );
    }
    println!(
        "{total} PUTs with 2 of 5 object servers hung: {:.2} s, slowest {:.2} s",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    let live: usize = [0, 2, 4].iter().map(|&n| data_files(&c, n)).sum();
    assert_eq!(
        live,
        3 * total,
        "every object has its three replicas on live nodes"
    );
    for i in (0..total).step_by(5) {
        let r = http
            .get(format!("{url}/hung/obj-{i}"))
            .header("x-auth-token", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().as_ref(), payload(i).as_slice());
    }

    // Small writes (DELETE here) go round the hung nodes the same way, and a read of a
    // deleted object settles on the tombstones without waiting on the hung nodes.
    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    for i in (1..total).step_by(4) {
        let t = std::time::Instant::now();
        let r = http
            .delete(format!("{url}/hung/obj-{i}"))
            .header("x-auth-token", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "DELETE obj-{i}");
        slowest = slowest.max(t.elapsed());
        let t = std::time::Instant::now();
        let r = http
            .get(format!("{url}/hung/obj-{i}"))
            .header("x-auth-token", &tok)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "GET obj-{i} after its DELETE"
        );
        slowest = slowest.max(t.elapsed());
    }
    println!(
        "6 DELETEs and GETs with 2 of 5 object servers hung: {:.2} s, slowest {:.2} s",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );

    for n in hung {
        signal(&c, n, "-CONT");
    }
    // The woken servers now read the heads queued for them; the proxy closed those
    // connections without a body, so nothing may be stored.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in hung {
        assert_eq!(data_files(&c, n), 0, "node {n} stored an abandoned replica");
    }
    // The proxy says which nodes it found silent.
    let log = c.proxy_log();
    for n in hung {
        let node = format!("{}:{}", c.nodes[n].ip, c.nodes[n].ports[0]);
        assert!(
            log.lines()
                .any(|l| l.contains("backend silent") && l.contains(&node)),
            "no word of silent {node} in the proxy log:\n{log}"
        );
    }
}

//! Fault tolerance: one of three storage nodes dies (SIGKILL) in the middle of a stream of
//! PUTs. Every PUT the proxy acknowledged must read back intact, and GETs keep working.

mod proxy_common;

use std::time::Duration;

use proxy_common::{login, Cluster};
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (tok, url) = login(&c.url(), "test:tester", "testing").await;
    let r = http
        .put(format!("{url}/stream"))
        .header("x-auth-token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

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

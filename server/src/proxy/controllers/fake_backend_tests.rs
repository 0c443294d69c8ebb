//! The proxy app's backend logic (quorum, handoffs, fall-over, `X-Newest`, error limiting)
//! driven through its real entry point, [`handle`], against a scripted fake transport:
//! no sockets, no Python. The fake is a [`DirectNodes`] that serves every node, so
//! [`super::super::backend::Transport::request`] hands it each backend request exactly
//! as it would hand PACO's in-process object server; it records what it was asked and
//! answers from a per-test script.
//!
//! The rings are real ring files in a temporary `swift_dir`: 4 devices, 3 replicas, every
//! partition on `d0 d1 d2` with `d3` the only handoff. Each ring's devices get their own
//! port (account 6202, container 6201, object 6200, as in Swift's defaults), so the error
//! limiter, keyed by `ip:port/device`, keeps them apart.

use std::path::Path;
use std::sync::Mutex;

use axum::http::Request as HttpRequest;
use ringsmith::device::Device;
use ringsmith::ring::{FormatVersion, RingData};

use super::super::backend::DirectNodes;
use super::super::pipeline::InfoRegistry;
use super::*;

/// One backend request the fake saw.
#[derive(Clone, Debug)]
struct Call {
    device: String,
    port: u16,
    method: Method,
    /// `/<part>/<account>[/<container>[/<object>]]`, query string cut off.
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    /// How many names the path holds: 1 account, 2 container, 3 object.
    fn depth(&self) -> usize {
        self.path.trim_start_matches('/').split('/').count() - 1
    }

    fn is_object(&self) -> bool {
        self.depth() == 3
    }
}

/// What the fake answers one call with.
enum Reply {
    Status(u16, Vec<(&'static str, String)>, &'static str),
    /// What the HTTP transport gives when a node does not answer within node_timeout.
    Timeout,
    /// A node that never answers (within any test's patience).
    Hang,
}

fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new(), "")
}

type Script = dyn Fn(&Call) -> Reply + Send + Sync;

struct FakeNodes {
    script: Box<Script>,
    calls: Mutex<Vec<Call>>,
}

impl FakeNodes {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn object_calls(&self, method: &Method) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.is_object() && c.method == *method)
            .collect()
    }
}

impl DirectNodes for FakeNodes {
    fn serves(&self, _node: &Node) -> bool {
        true
    }

    fn call<'a>(
        &'a self,
        node: &'a Node,
        method: &'a Method,
        path: &'a str,
        headers: &'a HeaderMap,
        body: Body,
    ) -> futures_util::future::BoxFuture<'a, Result<BackendResponse, BackendError>> {
        Box::pin(async move {
            // Read the whole body, as a storage server would before answering a PUT.
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let call = Call {
                device: node.device.clone(),
                port: node.port,
                method: method.clone(),
                path: path.split('?').next().unwrap_or("").to_string(),
                headers: headers.clone(),
                body,
            };
            let reply = (self.script)(&call);
            self.calls.lock().unwrap().push(call);
            match reply {
                Reply::Timeout => Err(BackendError::Timeout),
                Reply::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Err(BackendError::Timeout)
                }
                Reply::Status(code, headers, body) => {
                    let mut h = HeaderMap::new();
                    for (k, v) in headers {
                        set(&mut h, k, &v);
                    }
                    Ok(BackendResponse {
                        status: StatusCode::from_u16(code).unwrap(),
                        headers: h,
                        body: Body::from(body),
                    })
                }
            }
        })
    }
}

/// The account and container answers an object request needs on its way: both exist,
/// the container in policy 0.
fn info_ok(call: &Call) -> Option<Reply> {
    match call.depth() {
        1 => Some(status(204)),
        2 => Some(Reply::Status(
            204,
            vec![("x-backend-storage-policy-index", "0".into())],
            "",
        )),
        _ => None,
    }
}

fn save_ring(path: &Path, port: u32) {
    let devs = (0..4u32)
        .map(|id| {
            Some(Device {
                id,
                region: 1,
                zone: id + 1,
                ip: "127.0.0.1".into(),
                port,
                replication_ip: "127.0.0.1".into(),
                replication_port: port,
                device: format!("d{id}"),
                weight: 1.0,
                meta: String::new(),
                extra: Default::default(),
            })
        })
        .collect();
    RingData {
        devs,
        // Four partitions (part_shift 30): all but 2 on d0 d1 d2, where the names the
        // tests use land (checked in `proxy_with`); 2 puts d3 in the ring, where Swift's
        // handoff walk finds it (it offers only devices that hold some partition, and
        // never looks at partition 0 of a ring this small).
        replica2part2dev: vec![vec![0, 0, 3, 0], vec![1, 1, 0, 1], vec![2, 2, 1, 2]],
        part_shift: 30,
        next_part_power: None,
        version: Some(1),
        dev_id_bytes: 2,
    }
    .save(path, FormatVersion::V1)
    .unwrap();
}

/// A proxy over the fake, and the fake. `extra` goes into `[app:proxy-server]`.
fn proxy_with(
    dir: &tempfile::TempDir,
    extra: &str,
    script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
) -> (Arc<Proxy>, Arc<FakeNodes>) {
    let swift_dir = dir.path();
    std::fs::write(
        swift_dir.join("swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = fake\n\n\
         [storage-policy:0]\nname = gold\ndefault = yes\n",
    )
    .unwrap();
    save_ring(&swift_dir.join("object.ring.gz"), 6200);
    save_ring(&swift_dir.join("container.ring.gz"), 6201);
    save_ring(&swift_dir.join("account.ring.gz"), 6202);
    let conf_path = swift_dir.join("proxy-server.conf");
    let conf = ringsmith::swift::conf::Conf::parse(
        &format!(
            "[pipeline:main]\npipeline = proxy-server\n\n\
             [app:proxy-server]\nuse = egg:swift#proxy\nswift_dir = {}\n{extra}\n",
            swift_dir.display()
        ),
        &conf_path,
    )
    .unwrap();
    let swift = ringsmith::swift::SwiftConf::load(swift_dir).unwrap();
    let mut proxy = Proxy::from_conf(
        &conf,
        &conf.section("app:proxy-server"),
        &swift,
        InfoRegistry::default(),
    )
    .unwrap();
    let fake = Arc::new(FakeNodes {
        script: Box::new(script),
        calls: Mutex::new(Vec::new()),
    });
    proxy.transport.in_process = Some(fake.clone());
    let on_d0_to_d2 = |ring: Arc<Ring>, part: usize| {
        let primaries: Vec<String> = ring
            .part_nodes(part)
            .into_iter()
            .map(|n| n.device)
            .collect();
        let handoffs: Vec<String> = ring
            .more_nodes(part)
            .into_iter()
            .map(|n| n.device)
            .collect();
        assert_eq!(
            (primaries, handoffs),
            (
                vec!["d0".into(), "d1".into(), "d2".into()],
                vec!["d3".to_string()]
            )
        );
    };
    let ring = proxy.account_ring.get();
    on_d0_to_d2(ring.clone(), ring.get_part("a", None, None));
    let ring = proxy.container_ring.get();
    on_d0_to_d2(ring.clone(), ring.get_part("a", Some("c"), None));
    let ring = proxy.object_rings[&0].get();
    on_d0_to_d2(ring.clone(), ring.get_part("a", Some("c"), Some("o")));
    (Arc::new(proxy), fake)
}

async fn send(
    proxy: &Arc<Proxy>,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Response {
    let mut req = HttpRequest::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    handle(proxy, req.body(Body::from(body)).unwrap()).await
}

async fn body_of(r: Response) -> Bytes {
    r.into_body().collect().await.unwrap().to_bytes()
}

fn devices(calls: &[Call]) -> Vec<String> {
    let mut d: Vec<String> = calls.iter().map(|c| c.device.clone()).collect();
    d.sort();
    d
}

fn object_node(proxy: &Proxy, device: &str) -> Node {
    let ring = proxy.object_rings[&0].get();
    let part = ring.get_part("a", Some("c"), Some("o"));
    ring.part_nodes(part)
        .into_iter()
        .chain(ring.more_nodes(part))
        .find(|n| n.device == device)
        .unwrap()
}

fn container_nodes(proxy: &Proxy) -> Vec<Node> {
    let ring = proxy.container_ring.get();
    ring.part_nodes(ring.get_part("a", Some("c"), None))
}

#[tokio::test]
async fn object_put_succeeds_with_two_of_three_and_sends_each_replica_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| {
        info_ok(c).unwrap_or_else(|| match c.device.as_str() {
            "d2" => status(503),
            _ => status(201),
        })
    });
    let r = send(
        &proxy,
        Method::PUT,
        "/v1/a/c/o",
        &[("content-length", "5")],
        "hello",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let puts = fake.object_calls(&Method::PUT);
    assert_eq!(devices(&puts), ["d0", "d1", "d2"], "one PUT per primary");
    let ts = puts[0].headers["x-timestamp"].clone();
    for p in &puts {
        assert_eq!(p.body, "hello");
        assert_eq!(p.port, 6200);
        assert_eq!(
            p.headers["x-timestamp"], ts,
            "one timestamp for every replica"
        );
        assert_eq!(p.headers["x-backend-storage-policy-index"], "0");
    }
    // Each replica tells its object server a different container replica to update.
    let updates: std::collections::HashSet<String> = puts
        .iter()
        .map(|p| {
            p.headers["x-container-device"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(updates.len(), 3);
    for p in &puts {
        assert_eq!(p.headers["x-container-host"], "127.0.0.1:6201");
    }
    // The container info lookup came first, on the container ring.
    assert!(fake
        .calls()
        .iter()
        .any(|c| c.depth() == 2 && c.port == 6201 && c.method == Method::HEAD));
}

#[tokio::test]
async fn object_put_with_one_of_three_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| {
        info_ok(c).unwrap_or_else(|| match c.device.as_str() {
            "d0" => status(201),
            "d1" => Reply::Timeout,
            _ => status(500),
        })
    });
    let r = send(
        &proxy,
        Method::PUT,
        "/v1/a/c/o",
        &[("content-length", "5")],
        "hello",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        devices(&fake.object_calls(&Method::PUT)),
        ["d0", "d1", "d2"]
    );
}

#[tokio::test]
async fn object_put_goes_to_the_handoff_when_a_primary_is_benched() {
    let dir = tempfile::tempdir().unwrap();
    // d1 runs out of space on the first PUT (507 benches it at once).
    let (proxy, fake) = proxy_with(&dir, "", |c| {
        info_ok(c).unwrap_or_else(|| match c.device.as_str() {
            "d1" => status(507),
            _ => status(201),
        })
    });
    let first = send(
        &proxy,
        Method::PUT,
        "/v1/a/c/o",
        &[("content-length", "2")],
        "v1",
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED, "2 of 3 is a quorum");
    assert!(proxy.limiter.is_limited(&object_node(&proxy, "d1")));
    let second = send(
        &proxy,
        Method::PUT,
        "/v1/a/c/o",
        &[("content-length", "2")],
        "v2",
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second_puts: Vec<Call> = fake
        .object_calls(&Method::PUT)
        .into_iter()
        .filter(|c| c.body == "v2")
        .collect();
    assert_eq!(
        devices(&second_puts),
        ["d0", "d2", "d3"],
        "d3, the handoff, took d1's place"
    );
}

#[tokio::test]
async fn object_get_falls_over_failing_primaries_to_the_handoff() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| {
        info_ok(c).unwrap_or_else(|| match c.device.as_str() {
            "d0" => status(500),
            "d1" => Reply::Timeout,
            "d2" => status(507),
            _ => Reply::Status(200, vec![("content-length", "4".into())], "data"),
        })
    });
    let r = send(&proxy, Method::GET, "/v1/a/c/o", &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_of(r).await, "data");
    let gets = fake.object_calls(&Method::GET);
    assert_eq!(gets.len(), 4, "every primary, then the handoff");
    assert_eq!(
        gets[3].device, "d3",
        "the handoff is asked only after the primaries"
    );
    // 507 benches at once; one 500 or one timeout does not (the limit is 10).
    assert!(proxy.limiter.is_limited(&object_node(&proxy, "d2")));
    assert!(!proxy.limiter.is_limited(&object_node(&proxy, "d0")));
    assert!(proxy.limiter.has_errors(&object_node(&proxy, "d1")));
}

#[tokio::test]
async fn object_get_everywhere_missing_is_404_after_asking_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| info_ok(c).unwrap_or_else(|| status(404)));
    let r = send(&proxy, Method::GET, "/v1/a/c/o", &[], "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        devices(&fake.object_calls(&Method::GET)),
        ["d0", "d1", "d2", "d3"]
    );
}

#[tokio::test]
async fn x_newest_get_returns_the_newest_replica() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| {
        info_ok(c).unwrap_or_else(|| {
            let (ts, body) = match c.device.as_str() {
                "d0" => ("0000000001.00000", "old"),
                "d1" => ("0000000003.00000", "new"),
                _ => ("0000000002.00000", "mid"),
            };
            Reply::Status(200, vec![("x-timestamp", ts.into())], body)
        })
    });
    let r = send(
        &proxy,
        Method::GET,
        "/v1/a/c/o",
        &[("x-newest", "true")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_of(r).await, "new");
    assert_eq!(
        devices(&fake.object_calls(&Method::GET)),
        ["d0", "d1", "d2"],
        "every primary asked"
    );

    // Without X-Newest the first answer wins: one node asked.
    let r = send(&proxy, Method::GET, "/v1/a/c/o", &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.object_calls(&Method::GET).len(), 4);
}

#[tokio::test]
async fn x_newest_container_head_picks_the_newest_put_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(&dir, "", |c| match (c.depth(), c.device.as_str()) {
        (2, "d0") => Reply::Status(
            204,
            vec![
                ("x-put-timestamp", "0000000005.00000".into()),
                ("x-container-object-count", "7".into()),
            ],
            "",
        ),
        (2, "d1") => status(500),
        (2, _) => Reply::Status(
            204,
            vec![
                ("x-put-timestamp", "0000000004.00000".into()),
                ("x-container-object-count", "6".into()),
            ],
            "",
        ),
        _ => status(204),
    });
    let r = send(&proxy, Method::HEAD, "/v1/a/c", &[("x-newest", "true")], "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["x-container-object-count"], "7");
    // The container info lookup before it asks one node; the X-Newest HEAD asks all.
    let heads: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| c.depth() == 2 && c.headers.contains_key("x-newest"))
        .collect();
    assert_eq!(devices(&heads), ["d0", "d1", "d2"]);
    assert!(proxy.limiter.has_errors(&container_nodes(&proxy)[1]));
}

#[tokio::test]
async fn account_head_falls_over_and_passes_the_stats_through() {
    let dir = tempfile::tempdir().unwrap();
    // Every account replica but one is broken; that one has the stats.
    let (proxy, fake) = proxy_with(&dir, "", |c| match c.device.as_str() {
        "d1" => Reply::Status(
            204,
            vec![
                ("x-account-container-count", "3".into()),
                ("x-account-object-count", "12".into()),
                ("x-account-bytes-used", "4096".into()),
            ],
            "",
        ),
        "d0" => Reply::Timeout,
        _ => status(503),
    });
    let r = send(&proxy, Method::HEAD, "/v1/a", &[], "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["x-account-container-count"], "3");
    assert_eq!(r.headers()["x-account-object-count"], "12");
    assert_eq!(r.headers()["x-account-bytes-used"], "4096");
    assert!(
        !r.headers().contains_key("x-backend-storage-policy-index"),
        "backend headers stay inside"
    );
    let heads = fake.calls();
    assert!(heads
        .iter()
        .all(|c| c.depth() == 1 && c.port == 6202 && c.method == Method::HEAD));
    assert!(heads.iter().any(|c| c.device == "d1"));
    assert_eq!(
        heads.last().unwrap().device,
        "d1",
        "asking stops at the first good answer"
    );

    // All of them broken: 503.
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _) = proxy_with(&dir, "", |_| status(503));
    let r = send(&proxy, Method::HEAD, "/v1/a", &[], "").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_node_with_repeated_errors_is_skipped_until_the_interval_passes() {
    let dir = tempfile::tempdir().unwrap();
    // Container PUTs to d0 fail; after more than error_suppression_limit (1) errors it is
    // benched and the next PUT goes to the handoff without asking it.
    let (proxy, fake) = proxy_with(&dir, "error_suppression_limit = 1\n", |c| {
        match (c.depth(), c.device.as_str()) {
            (2, "d0") => status(500),
            (2, _) => status(201),
            _ => status(204),
        }
    });
    for round in 1..=3 {
        let r = send(&proxy, Method::PUT, "/v1/a/c", &[], "").await;
        assert_eq!(r.status(), StatusCode::CREATED, "round {round}");
    }
    let d0_node = container_nodes(&proxy)[0].clone();
    assert!(proxy.limiter.is_limited(&d0_node));
    let puts: Vec<Call> = fake
        .calls()
        .into_iter()
        .filter(|c| c.depth() == 2 && c.method == Method::PUT)
        .collect();
    let to_d0 = puts.iter().filter(|c| c.device == "d0").count();
    assert_eq!(
        to_d0, 2,
        "benched after its second error, not asked a third time"
    );
    // Each round: 3 successes (d1, d2, and d3 in d0's place).
    assert_eq!(puts.iter().filter(|c| c.device == "d3").count(), 3);
    assert_eq!(puts.len(), 2 + 3 * 3);
}

#[tokio::test]
async fn a_hung_replicas_slot_goes_to_the_handoff_and_the_node_is_offered_writes_last() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(
        &dir,
        "post_quorum_timeout = 0.05\nconcurrency_timeout = 0.05\n",
        |c| match (c.depth(), c.device.as_str()) {
            (2, "d2") => Reply::Hang,
            (2, _) => status(201),
            _ => status(204),
        },
    );
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        send(&proxy, Method::PUT, "/v1/a/c", &[], ""),
    )
    .await
    .expect("the PUT must not wait for the hung replica");
    assert_eq!(r.status(), StatusCode::CREATED);
    // The hung node was asked; when it stayed silent its slot went to the handoff, and
    // it is now known to be silent.
    let d2 = container_nodes(&proxy)[2].clone();
    assert_eq!(d2.device, "d2");
    assert!(proxy.limiter.is_silent(&d2));
    let puts = |fake: &FakeNodes| {
        fake.calls()
            .into_iter()
            .filter(|c| c.depth() == 2 && c.method == Method::PUT)
            .collect::<Vec<_>>()
    };
    assert_eq!(devices(&puts(&fake)), ["d0", "d1", "d2", "d3"]);
    // The next write does not wait on it at all: the handoff is asked at once.
    let r = send(&proxy, Method::PUT, "/v1/a/c", &[], "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Vec<String> = devices(&puts(&fake)[4..]);
    assert_eq!(second, ["d0", "d1", "d3"]);
}

#[tokio::test]
async fn concurrent_gets_ask_the_next_node_when_one_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, fake) = proxy_with(
        &dir,
        "concurrent_gets = true\nconcurrency_timeout = 0.05\n",
        |c| {
            info_ok(c).unwrap_or_else(|| match c.device.as_str() {
                "d2" => Reply::Status(200, Vec::new(), "data"),
                _ => Reply::Hang,
            })
        },
    );
    // Whatever order the primaries are tried in, the hung ones only cost
    // concurrency_timeout each.
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        send(&proxy, Method::GET, "/v1/a/c/o", &[], ""),
    )
    .await
    .expect("a hung node must not hold the read");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_of(r).await, "data");
    // The fake records a call when it starts: the hung nodes asked before d2 are there
    // too, and nothing past the primaries was needed.
    let gets = fake.object_calls(&Method::GET);
    assert_eq!(gets.last().unwrap().device, "d2");
    assert!(gets.len() <= 3);
}

//! Container server handler tests (oneshot), and object → container → account
//! propagation over loopback between in-process servers.

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::Value;

use super::*;
use crate::object::tests::{req, send, Node};

fn router(node: &Node) -> Router {
    container_router(ContainerState::new(
        ContainerConfig::from_conf(&node.conf("container-server")).unwrap(),
    ))
}

/// A timestamp `n` seconds after a base fixed for the whole test run (so two calls
/// with the same `n` always agree).
fn t(n: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().seconds() - 1000);
    Timestamp::from_ticks((base + n) * 100_000, 0).internal()
}

async fn put_obj(r: &Router, name: &str, ts: &str, size: &str) -> StatusCode {
    put_row(r, name, &[("x-timestamp", ts), ("x-size", size)]).await
}

/// An object server's row update for `a/c/<name>` (content type text/plain, ETag 0af9)
/// with `headers` added.
async fn put_row(r: &Router, name: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut all = vec![("x-content-type", "text/plain"), ("x-etag", "0af9")];
    all.extend_from_slice(headers);
    send(
        r,
        req("PUT", &format!("/sda1/0/a/c/{name}"), &all, Body::empty()),
    )
    .await
    .0
}

#[tokio::test]
async fn create_list_stats_and_delete() {
    let node = Node::new();
    let r = router(&node);
    assert_eq!(
        put_obj(&r, "o", &t(1), "1").await,
        StatusCode::NOT_FOUND,
        "no DB yet"
    );
    let (s, h, _) = send(
        &r,
        req(
            "PUT",
            "/sda1/0/a/c",
            &[
                ("x-timestamp", &t(1)),
                ("x-container-meta-color", "red"),
                ("x-backend-storage-policy-index", "1"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["x-backend-storage-policy-index"], "1");
    assert_eq!(
        send(
            &r,
            req(
                "PUT",
                "/sda1/0/a/c",
                &[("x-timestamp", &t(2))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    // The policy is fixed at creation.
    let (s, h, _) = send(
        &r,
        req(
            "PUT",
            "/sda1/0/a/c",
            &[
                ("x-timestamp", &t(3)),
                ("x-backend-storage-policy-index", "0"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(h["x-backend-storage-policy-index"], "1");

    for (n, size) in [
        ("a/1.txt", "12"),
        ("a/2.txt", "3"),
        ("b/x.txt", "5"),
        ("c.txt", "10"),
    ] {
        let q = req(
            "PUT",
            &format!("/sda1/0/a/c/{n}"),
            &[
                ("x-timestamp", &t(4)),
                ("x-size", size),
                ("x-content-type", "text/plain;swift_bytes=99"),
                ("x-etag", "e1"),
                ("x-backend-storage-policy-index", "1"),
            ],
            Body::empty(),
        );
        assert_eq!(send(&r, q).await.0, StatusCode::CREATED);
    }
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/a/c", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["x-container-object-count"], "4");
    assert_eq!(h["x-container-bytes-used"], "30");
    assert_eq!(h["x-container-meta-color"], "red");
    assert_eq!(h["x-backend-sharding-state"], "unsharded");
    assert_eq!(h["x-put-timestamp"], t(2).as_str());

    let (s, _, b) = send(&r, req("GET", "/sda1/0/a/c", &[], Body::empty())).await;
    assert_eq!(
        (s, String::from_utf8(b).unwrap()),
        (
            StatusCode::OK,
            "a/1.txt\na/2.txt\nb/x.txt\nc.txt\n".to_string()
        )
    );
    let (s, h, b) = send(
        &r,
        req(
            "GET",
            "/sda1/0/a/c?format=json&delimiter=/",
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json; charset=utf-8");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v[0], serde_json::json!({"subdir": "a/"}));
    assert_eq!(v[2]["name"], "c.txt");
    assert_eq!(v[2]["bytes"], 99, "swift_bytes overrides the size");
    assert_eq!(v[2]["content_type"], "text/plain");
    assert_eq!(v[2]["last_modified"].as_str().unwrap().len(), 26);
    let (_, _, b) = send(
        &r,
        req(
            "GET",
            "/sda1/0/a/c?format=xml&prefix=a/&limit=1",
            &[],
            Body::empty(),
        ),
    )
    .await;
    let x = String::from_utf8(b).unwrap();
    assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c\"><object><name>a/1.txt</name><hash>e1</hash><bytes>99</bytes>"), "{x}");
    let (_, _, b) = send(
        &r,
        req(
            "GET",
            "/sda1/0/a/c?marker=a/2.txt&end_marker=c.txt",
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(b, b"b/x.txt\n");
    let (_, _, b) = send(
        &r,
        req(
            "GET",
            "/sda1/0/a/c?reverse=true&limit=2",
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(b, b"c.txt\nb/x.txt\n");
    let (_, _, b) = send(&r, req("GET", "/sda1/0/a/c?path=a", &[], Body::empty())).await;
    assert_eq!(b, b"a/1.txt\na/2.txt\n");
    let (s, _, _) = send(&r, req("GET", "/sda1/0/a/c?prefix=zzz", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        send(
            &r,
            req("GET", "/sda1/0/a/c?limit=10001", &[], Body::empty())
        )
        .await
        .0,
        StatusCode::PRECONDITION_FAILED
    );

    // Not empty: 409. Delete the rows, then the container.
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/a/c",
                &[("x-timestamp", &t(5))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    for n in ["a/1.txt", "a/2.txt", "b/x.txt", "c.txt"] {
        let (s, _, _) = send(
            &r,
            req(
                "DELETE",
                &format!("/sda1/0/a/c/{n}"),
                &[
                    ("x-timestamp", &t(6)),
                    ("x-backend-storage-policy-index", "1"),
                ],
                Body::empty(),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/a/c",
                &[("x-timestamp", &t(7))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/a/c", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h.contains_key("x-backend-delete-timestamp"));
    // Recreated after deletion with another policy: allowed.
    let (s, h, _) = send(
        &r,
        req(
            "PUT",
            "/sda1/0/a/c",
            &[
                ("x-timestamp", &t(8)),
                ("x-backend-storage-policy-index", "0"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["x-backend-storage-policy-index"], "0");
}

#[tokio::test]
async fn bad_container_requests() {
    let node = Node::new();
    let r = router(&node);
    let long = format!("/sda1/0/a/{}", "c".repeat(257));
    let cases = vec![
        (
            req("PUT", "/sda1/0/a/c", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
        ),
        (
            req("PUT", &long, &[("x-timestamp", &t(1))], Body::empty()),
            StatusCode::BAD_REQUEST,
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c",
                &[
                    ("x-timestamp", &t(1)),
                    ("x-backend-storage-policy-index", "7"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            req("GET", "/sda1/0/a", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
        ),
        (
            req("GET", "/../0/a/c", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
        ),
        (
            req("GET", "/nodev/0/a/c", &[], Body::empty()),
            StatusCode::INSUFFICIENT_STORAGE,
        ),
        (
            req("GET", "/sda1/0/a/c", &[], Body::empty()),
            StatusCode::NOT_FOUND,
        ),
        (
            req(
                "POST",
                "/sda1/0/a/c",
                &[("x-timestamp", &t(1))],
                Body::empty(),
            ),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (q, want) in cases {
        let what = format!("{} {}", q.method(), q.uri());
        assert_eq!(send(&r, q).await.0, want, "{what}");
    }
    let (s, h, _) = send(&r, req("OPTIONS", "/", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["server"], "container-server/2.38.3");
}

#[tokio::test]
async fn auto_created_accounts_get_rows_without_a_put() {
    let node = Node::new();
    let r = router(&node);
    let (s, _, _) = send(
        &r,
        req(
            "PUT",
            "/sda1/0/.expiring_objects/123/obj",
            &[
                ("x-timestamp", &t(1)),
                ("x-size", "0"),
                ("x-content-type", "text/plain"),
                ("x-etag", "d41d"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, _, b) = send(
        &r,
        req("GET", "/sda1/0/.expiring_objects/123", &[], Body::empty()),
    )
    .await;
    assert_eq!(b, b"obj\n");
}

/// Serves a router on a loopback port; returns "127.0.0.1:port".
pub(crate) async fn serve(r: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, r).await.unwrap() });
    addr
}

#[tokio::test]
async fn object_writes_reach_the_container_and_containers_reach_the_account() {
    let node = Node::new();
    let account = serve(crate::account::account_router(
        crate::account::AccountState::new(
            crate::account::AccountConfig::from_conf(&node.conf("account-server")).unwrap(),
        ),
    ))
    .await;
    let container = serve(router(&node)).await;
    let objects = node.router();
    let http = reqwest::Client::new();
    let acct = |m: &str, p: &str| {
        http.request(
            reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
            format!("http://{account}{p}"),
        )
    };
    assert_eq!(
        acct("PUT", "/sda1/0/AUTH_t")
            .header("x-timestamp", t(1))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let cr = router(&node);
    let (s, _, _) = send(
        &cr,
        req(
            "PUT",
            "/sda1/0/AUTH_t/c",
            &[
                ("x-timestamp", &t(2)),
                ("x-account-host", &account),
                ("x-account-partition", "0"),
                ("x-account-device", "sda1"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let body = vec![1u8; 1234];
    let (s, _, _) = send(
        &objects,
        req(
            "PUT",
            "/sda1/0/AUTH_t/c/o",
            &[
                ("x-timestamp", &t(3)),
                ("content-type", "a/b"),
                ("content-length", "1234"),
                ("x-container-host", &container),
                ("x-container-partition", "0"),
                ("x-container-device", "sda1"),
            ],
            body,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, h, b) = send(
        &cr,
        req("GET", "/sda1/0/AUTH_t/c?format=json", &[], Body::empty()),
    )
    .await;
    assert_eq!(h["x-container-object-count"], "1");
    assert_eq!(h["x-container-bytes-used"], "1234");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v[0]["content_type"], "a/b");
    // The account learns the counts on the next container report (here: a PUT).
    let (s, _, _) = send(
        &cr,
        req(
            "PUT",
            "/sda1/0/AUTH_t/c",
            &[
                ("x-timestamp", &t(4)),
                ("x-account-host", &account),
                ("x-account-partition", "0"),
                ("x-account-device", "sda1"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let resp = acct("HEAD", "/sda1/0/AUTH_t").send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["x-account-object-count"], "1");
    assert_eq!(resp.headers()["x-account-bytes-used"], "1234");
    assert_eq!(
        resp.headers()["x-account-storage-policy-gold-container-count"],
        "1"
    );
    // Object DELETE removes the row.
    let (s, _, _) = send(
        &objects,
        req(
            "DELETE",
            "/sda1/0/AUTH_t/c/o",
            &[
                ("x-timestamp", &t(5)),
                ("x-container-host", &container),
                ("x-container-partition", "0"),
                ("x-container-device", "sda1"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, h, _) = send(&cr, req("GET", "/sda1/0/AUTH_t/c", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["x-container-object-count"], "0");
    // A container PUT for an account that exists nowhere is a 404.
    let (s, _, _) = send(
        &cr,
        req(
            "PUT",
            "/sda1/0/AUTH_none/c",
            &[
                ("x-timestamp", &t(6)),
                ("x-account-host", &account),
                ("x-account-partition", "0"),
                ("x-account-device", "sda1"),
            ],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Swift's `validate_metadata` on a container: 90 items in all, not per request.
#[tokio::test]
async fn metadata_count_applies_to_the_merged_whole() {
    let node = crate::object::tests::Node::new();
    let r = router(&node);
    let put = crate::object::tests::req(
        "PUT",
        "/sda1/0/a/cm",
        &[("x-timestamp", "1700000000.00000")],
        Body::empty(),
    );
    assert_eq!(
        crate::object::tests::send(&r, put).await.0,
        StatusCode::CREATED
    );
    let post = |n: u32, from: usize, count: usize| {
        let names: Vec<String> = (from..from + count)
            .map(|i| format!("x-container-meta-k{i}"))
            .collect();
        let ts = format!("17000000{n:02}.00000");
        let mut h: Vec<(&str, &str)> = vec![("x-timestamp", ts.as_str())];
        for name in &names {
            h.push((name.as_str(), "v"));
        }
        crate::object::tests::req("POST", "/sda1/0/a/cm", &h, Body::empty())
    };
    assert_eq!(
        crate::object::tests::send(&r, post(1, 0, 60)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        crate::object::tests::send(&r, post(2, 60, 30)).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, _, body) = crate::object::tests::send(&r, post(3, 90, 1)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body, b"Too many metadata items");
}

/// An object POST moves a listed object's `last_modified` (the row's metadata time), and
/// a replicated row whose `created_at` encodes a later metadata time, as Swift's rows do,
/// is merged by its parts through `UPDATE`.
#[tokio::test]
async fn a_post_moves_last_modified_and_encoded_rows_merge() {
    let node = Node::new();
    let r = router(&node);
    let (s, _, _) = send(
        &r,
        req(
            "PUT",
            "/sda1/0/a/c",
            &[("x-timestamp", &t(1))],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(put_obj(&r, "o", &t(2), "1").await, StatusCode::CREATED);
    // What an object server sends for a POST: the data time and the POST's time.
    let (data, posted) = (t(2), t(5));
    let post = [
        ("x-timestamp", &*data),
        ("x-meta-timestamp", &*posted),
        ("x-size", "1"),
    ];
    assert_eq!(put_row(&r, "o", &post).await, StatusCode::CREATED);
    let listed = |body: Vec<u8>| -> Value { serde_json::from_slice(&body).unwrap() };
    let (_, _, body) = send(
        &r,
        req("GET", "/sda1/0/a/c?format=json", &[], Body::empty()),
    )
    .await;
    let iso = |n: u64| Timestamp::parse(&t(n)).unwrap().isoformat();
    assert_eq!(listed(body)[0]["last_modified"], iso(5));

    // A row from a replica: data at 2, content type at 7, metadata at 8.
    let data = Timestamp::parse(&t(2)).unwrap();
    let encoded = RowTimes {
        data,
        ctype: Timestamp::parse(&t(7)).unwrap(),
        meta: Timestamp::parse(&t(8)).unwrap(),
    }
    .encode();
    assert!(encoded.contains('+'), "{encoded}");
    let item = serde_json::json!([{
        "name": "o", "created_at": encoded, "size": 1, "content_type": "image/png",
        "etag": "0af9", "deleted": 0, "storage_policy_index": 0,
    }]);
    let (s, _, _) = send(
        &r,
        req(
            "UPDATE",
            "/sda1/0/a/c",
            &[("x-timestamp", &t(9))],
            Body::from(item.to_string()),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, _, body) = send(
        &r,
        req("GET", "/sda1/0/a/c?format=json", &[], Body::empty()),
    )
    .await;
    let row = &listed(body)[0];
    assert_eq!(
        row["content_type"], "image/png",
        "the newer content type wins"
    );
    assert_eq!(row["last_modified"], iso(8));
}

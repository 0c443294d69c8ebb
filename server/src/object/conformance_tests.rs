//! Object server answers that Swift's functional tests check (oneshot).

use axum::body::Body;
use axum::http::StatusCode;

use super::tests::{req, send, Node};
use crate::common::Timestamp;

fn ts(n: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().seconds() - 1000);
    Timestamp::from_ticks((base + n) * 100_000, 0).internal()
}

fn put(t: &str, extra: &[(&str, &str)]) -> axum::http::Request<Body> {
    let mut h = vec![
        ("x-timestamp", t),
        ("content-type", "text/plain"),
        ("content-length", "5"),
    ];
    h.extend_from_slice(extra);
    req("PUT", "/sda1/0/a/c/o", &h, b"hello".to_vec())
}

#[tokio::test]
async fn x_if_delete_at_is_checked_in_swifts_order() {
    let node = Node::new();
    let r = node.router();
    let del = |t: &str, v: &str| {
        req(
            "DELETE",
            "/sda1/0/a/c/o",
            &[("x-timestamp", t), ("x-if-delete-at", v)],
            Body::empty(),
        )
    };
    // No object yet: a readable value is 404, an unreadable one 400 first.
    assert_eq!(
        send(&r, del(&ts(1), "bad")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&r, del(&ts(1), "9999999999")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&r, put(&ts(2), &[("x-delete-at", "9999999999")]))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&r, del(&ts(3), "bad")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&r, del(&ts(3), "9999999998")).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&r, del(&ts(3), "9999999999")).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn unsatisfiable_range_keeps_the_objects_headers() {
    let node = Node::new();
    let r = node.router();
    assert_eq!(
        send(&r, put(&ts(1), &[("x-object-manifest", "c/seg")]))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, h, _) = send(
        &r,
        req(
            "GET",
            "/sda1/0/a/c/o",
            &[("range", "bytes=10-20")],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h["content-range"], "bytes */5");
    assert!(h["etag"]
        .to_str()
        .unwrap()
        .contains("5d41402abc4b2a76b9719d911017c592"));
    assert_eq!(h["accept-ranges"], "bytes");
    // The proxy needs this to serve a range of a DLO from its segments.
    assert_eq!(h["x-object-manifest"], "c/seg");
}

#[tokio::test]
async fn utf8_content_type_is_kept() {
    let node = Node::new();
    let r = node.router();
    let ctype = "text/\u{8509}\u{5605}";
    let req_put = axum::http::Request::builder()
        .method("PUT")
        .uri("/sda1/0/a/c/o")
        .header("x-timestamp", ts(1))
        .header("content-length", "5")
        .header(
            "content-type",
            axum::http::HeaderValue::from_bytes(ctype.as_bytes()).unwrap(),
        )
        .body(Body::from("hello"))
        .unwrap();
    assert_eq!(send(&r, req_put).await.0, StatusCode::CREATED);
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"].as_bytes(), ctype.as_bytes());
}

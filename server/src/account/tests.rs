//! Account server handler tests (oneshot).

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::Value;

use super::*;
use crate::object::tests::{req, send, Node};

/// A timestamp `n` seconds after a base fixed for the whole test run (so two calls
/// with the same `n` always agree).
fn t(n: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().seconds() - 1000);
    Timestamp::from_ticks((base + n) * 100_000, 0).internal()
}

#[tokio::test]
async fn account_lifecycle_listing_and_policy_stats() {
    let node = Node::new();
    let r = account_router(AccountState::new(
        AccountConfig::from_conf(&node.conf("account-server")).unwrap(),
    ));
    assert_eq!(
        send(&r, req("HEAD", "/sda1/0/AUTH_a", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let report = |c: &'static str,
                  put: String,
                  del: &'static str,
                  objs: &'static str,
                  policy: &'static str| {
        req(
            "PUT",
            &format!("/sda1/0/AUTH_a/{c}"),
            &[
                ("x-put-timestamp", &put),
                ("x-delete-timestamp", del),
                ("x-object-count", objs),
                ("x-bytes-used", "100"),
                ("x-backend-storage-policy-index", policy),
            ],
            Body::empty(),
        )
    };
    assert_eq!(
        send(&r, report("c1", t(2), "0", "1", "0")).await.0,
        StatusCode::NOT_FOUND,
        "no account yet"
    );
    assert_eq!(
        send(
            &r,
            req(
                "PUT",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(1)), ("x-account-meta-owner", "me")],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(
            &r,
            req(
                "PUT",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(2))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(&r, report("c1", t(2), "0", "1", "0")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&r, report("c2", t(2), "0", "2", "1")).await.0,
        StatusCode::CREATED
    );
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/AUTH_a", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["x-account-container-count"], "2");
    assert_eq!(h["x-account-object-count"], "3");
    assert_eq!(h["x-account-bytes-used"], "200");
    assert_eq!(h["x-account-meta-owner"], "me");
    assert_eq!(h["x-account-storage-policy-gold-object-count"], "1");
    assert_eq!(h["x-account-storage-policy-silver-object-count"], "2");
    let (s, _, b) = send(
        &r,
        req("GET", "/sda1/0/AUTH_a?format=json", &[], Body::empty()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v[1]["name"], "c2");
    assert_eq!(v[1]["count"], 2);
    assert_eq!(v[1]["storage_policy"], "silver");
    let (_, _, b) = send(
        &r,
        req("GET", "/sda1/0/AUTH_a?format=xml", &[], Body::empty()),
    )
    .await;
    assert!(String::from_utf8(b)
        .unwrap()
        .contains("<container><name>c1</name><count>1</count><bytes>100</bytes>"));
    let (_, _, b) = send(
        &r,
        req("GET", "/sda1/0/AUTH_a?marker=c1", &[], Body::empty()),
    )
    .await;
    assert_eq!(b, b"c2\n");
    // A container deletion report.
    assert_eq!(
        send(&r, report("c1", t(2), "0000000000.00000", "0", "0"))
            .await
            .0,
        StatusCode::CREATED
    );
    let del = t(3);
    let q = req(
        "PUT",
        "/sda1/0/AUTH_a/c1",
        &[
            ("x-put-timestamp", &t(2)),
            ("x-delete-timestamp", &del),
            ("x-object-count", "0"),
            ("x-bytes-used", "0"),
        ],
        Body::empty(),
    );
    assert_eq!(send(&r, q).await.0, StatusCode::NO_CONTENT);
    let (_, _, b) = send(&r, req("GET", "/sda1/0/AUTH_a", &[], Body::empty())).await;
    assert_eq!(b, b"c2\n");
    assert_eq!(
        send(
            &r,
            req(
                "POST",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(4)), ("x-account-meta-owner", "")],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, h, _) = send(&r, req("HEAD", "/sda1/0/AUTH_a", &[], Body::empty())).await;
    assert!(h.get("x-account-meta-owner").is_none());
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(5))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/AUTH_a", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["x-account-status"], "Deleted");
    assert_eq!(
        send(
            &r,
            req(
                "PUT",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(6))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/AUTH_a",
                &[("x-timestamp", &t(7))],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, h, _) = send(&r, req("OPTIONS", "/", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["server"], "account-server/2.38.3");
    assert_eq!(
        send(&r, req("PUT", "/sda1/0/AUTH_b", &[], Body::empty()))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

/// Swift's `validate_metadata`: each POST may be within the limits while the account's
/// metadata as a whole is not; such a POST is a 400 and changes nothing.
#[tokio::test]
async fn metadata_limits_apply_to_the_merged_whole() {
    let node = Node::new();
    let r = account_router(AccountState::new(
        AccountConfig::from_conf(&node.conf("account-server")).unwrap(),
    ));
    let put = req(
        "PUT",
        "/sda1/0/AUTH_m",
        &[("x-timestamp", &t(1))],
        Body::empty(),
    );
    assert_eq!(send(&r, put).await.0, StatusCode::CREATED);
    let post = |n: u64, name: &str, value: &str| {
        req(
            "POST",
            "/sda1/0/AUTH_m",
            &[("x-timestamp", &t(n)), (name, value)],
            Body::empty(),
        )
    };
    // 4096 bytes of names + values in all is the edge: 16 items of 2 + 254 bytes, sent
    // in two POSTs of 8 (each well within the limits alone).
    let value = "v".repeat(254);
    let half = |n: u64, first: usize| {
        let names: Vec<String> = (first..first + 8)
            .map(|i| format!("x-account-meta-{i:02}"))
            .collect();
        let ts = t(n);
        let mut h: Vec<(&str, &str)> = vec![("x-timestamp", ts.as_str())];
        for name in &names {
            h.push((name.as_str(), value.as_str()));
        }
        req("POST", "/sda1/0/AUTH_m", &h, Body::empty())
    };
    assert_eq!(send(&r, half(2, 0)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(send(&r, half(3, 8)).await.0, StatusCode::NO_CONTENT);
    let (s, _, body) = send(&r, post(4, "x-account-meta-c", "z")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body, b"Total metadata too large");
    let (_, h, _) = send(&r, req("HEAD", "/sda1/0/AUTH_m", &[], Body::empty())).await;
    assert!(!h.contains_key("x-account-meta-c"));
    // Removing an item makes room again.
    assert_eq!(
        send(&r, post(5, "x-account-meta-00", "")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&r, post(6, "x-account-meta-c", "z")).await.0,
        StatusCode::NO_CONTENT
    );
}

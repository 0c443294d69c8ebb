//! Handler tests about the disk and its neighbours: policy directories, expiry,
//! REPLICATE, async_pending, chunked uploads, quarantine, OPTIONS and recon, full or
//! unmounted devices, and clients that vanish mid-body.

use std::path::Path;

use axum::body::Body;
use axum::http::StatusCode;
use md5::{Digest, Md5};

use super::tests::{hash_dir, put, req, send, ts, Node};
use super::*;
use crate::common::Timestamp;

#[tokio::test]
async fn policies_use_their_own_directories() {
    let node = Node::new();
    let r = node.router();
    let mut p = put("/sda1/3/a/c/o", &ts(1), b"silver");
    p.headers_mut()
        .insert("x-backend-storage-policy-index", "1".parse().unwrap());
    assert_eq!(send(&r, p).await.0, StatusCode::CREATED);
    assert!(hash_dir(&node, "objects-1", "3", "a", "c", "o").exists());
    assert_eq!(
        send(&r, req("GET", "/sda1/3/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, _, b) = send(
        &r,
        req(
            "GET",
            "/sda1/3/a/c/o",
            &[("x-backend-storage-policy-index", "1")],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!((s, b.as_slice()), (StatusCode::OK, &b"silver"[..]));
}

#[tokio::test]
async fn expired_objects_are_gone() {
    let node = Node::new();
    let r = node.router();
    let at = (Timestamp::now().seconds() + 2).to_string();
    let mut p = put("/sda1/0/a/c/o", &Timestamp::now().internal(), b"x");
    p.headers_mut().insert("x-delete-at", at.parse().unwrap());
    assert_eq!(send(&r, p).await.0, StatusCode::CREATED);
    let (s, h, _) = send(&r, req("HEAD", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-delete-at"], at.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &r,
            req(
                "GET",
                "/sda1/0/a/c/o",
                &[("x-backend-open-expired", "true")],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn replicate_answers_swift_suffix_hashes() {
    let node = Node::new();
    let r = node.router();
    let t1 = ts(1);
    assert_eq!(
        send(&r, put("/sda1/5/a/c/o", &t1, b"x")).await.0,
        StatusCode::CREATED
    );
    let hd = hash_dir(&node, "objects", "5", "a", "c", "o");
    let suffix = hd
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (s, _, body) = send(&r, req("REPLICATE", "/sda1/5", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    let v = ringsmith::pickle::loads(&body).unwrap();
    let ringsmith::pickle::Value::Dict(items) = v else {
        panic!("{v:?}")
    };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].0.as_str(), Some(suffix.as_str()));
    let want = hex::encode(Md5::digest(format!("{t1}.data").as_bytes()));
    assert_eq!(items[0].1.as_str(), Some(want.as_str()));
    // Invalidation-only form answers None and records the suffix.
    let (s, _, body) = send(
        &r,
        req(
            "REPLICATE",
            &format!("/sda1/5/{suffix}"),
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(ringsmith::pickle::loads(&body).unwrap().is_none());
    assert!(
        std::fs::read_to_string(node.dev().join("objects/5/hashes.invalid"))
            .unwrap()
            .contains(&suffix)
    );
    let (_, _, body) = send(&r, req("REPLICATE", "/sda1/99", &[], Body::empty())).await;
    assert!(
        matches!(ringsmith::pickle::loads(&body).unwrap(), ringsmith::pickle::Value::Dict(d) if d.is_empty())
    );
    assert_eq!(
        send(&r, req("REPLICATE", "/sda1/5/zzz", &[], Body::empty()))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn failed_container_update_becomes_async_pending() {
    let node = Node::new();
    let r = node.router();
    let t1 = ts(1);
    let body = b"abc".to_vec();
    let q = req(
        "PUT",
        "/sda1/0/a/c/o",
        &[
            ("x-timestamp", &t1),
            ("content-type", "text/plain"),
            ("content-length", "3"),
            ("x-container-host", "127.0.0.1:1"),
            ("x-container-partition", "4"),
            ("x-container-device", "d9"),
        ],
        body,
    );
    assert_eq!(send(&r, q).await.0, StatusCode::CREATED);
    let h = ringsmith::hash::HashConfig::new("pre", "suf")
        .hash_path("a", Some("c"), Some("o"))
        .unwrap();
    let path = node
        .dev()
        .join("async_pending")
        .join(&h[29..])
        .join(format!("{h}-{t1}"));
    let mut waited = 0;
    while !path.exists() && waited < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let v = ringsmith::pickle::loads(&std::fs::read(&path).unwrap()).unwrap();
    let ringsmith::pickle::Value::Dict(items) = v else {
        panic!()
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(kk, _)| kk.as_str() == Some(k))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("op").as_str(), Some("PUT"));
    assert_eq!(get("obj").as_str(), Some("o"));
    let ringsmith::pickle::Value::Dict(hs) = get("headers") else {
        panic!()
    };
    let hget = |k: &str| {
        hs.iter()
            .find(|(kk, _)| kk.as_str() == Some(k))
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    assert_eq!(hget("X-Size").as_deref(), Some("3"));
    assert_eq!(
        hget("X-Etag").as_deref(),
        Some(hex::encode(Md5::digest(b"abc")).as_str())
    );
    assert_eq!(hget("X-Backend-Storage-Policy-Index").as_deref(), Some("0"));
}

#[tokio::test]
async fn chunked_upload_streams_to_disk() {
    let node = Node::new();
    let r = node.router();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|i| Ok(vec![i as u8; 10_000])).collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let q = req(
        "PUT",
        "/sda1/0/a/c/big",
        &[
            ("x-timestamp", &ts(1)),
            ("content-type", "x/y"),
            ("transfer-encoding", "chunked"),
        ],
        body,
    );
    let (s, h, _) = send(&r, q).await;
    assert_eq!(s, StatusCode::CREATED);
    let mut all = Vec::new();
    for i in 0..40u8 {
        all.extend(std::iter::repeat_n(i, 10_000));
    }
    assert_eq!(
        h["etag"],
        format!("\"{}\"", hex::encode(Md5::digest(&all))).as_str()
    );
    let (s, _, b) = send(&r, req("GET", "/sda1/0/a/c/big", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, all);
}

#[tokio::test]
async fn corrupt_data_is_quarantined_on_read() {
    let node = Node::new();
    let r = node.router();
    let t1 = ts(1);
    let body = vec![7u8; 200_000];
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t1, &body)).await.0,
        StatusCode::CREATED
    );
    let data = hash_dir(&node, "objects", "0", "a", "c", "o").join(format!("{t1}.data"));
    // Same size, different bytes: only the streaming md5 can notice.
    let mut f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    std::io::Write::write_all(&mut f, b"BAD!").unwrap();
    drop(f);
    // The answer starts as a 200, but its body fails before the last piece: the damaged
    // bytes never make a complete object.
    let resp =
        tower::ServiceExt::oneshot(r.clone(), req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.into_body().into_data_stream();
    let mut got = 0usize;
    let mut failed = false;
    while let Some(piece) = futures_util::StreamExt::next(&mut stream).await {
        match piece {
            Ok(b) => got += b.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must fail");
    assert!(
        got < body.len(),
        "only {got} of {} bytes may arrive",
        body.len()
    );
    assert_eq!(
        send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let q = node.dev().join("quarantined/objects");
    assert_eq!(std::fs::read_dir(q).unwrap().count(), 1);
}

#[tokio::test]
async fn options_and_recon() {
    let node = Node::new();
    let r = node.router();
    let (s, h, _) = send(&r, req("OPTIONS", "/", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["server"], "object-server/2.38.3");
    let (s, _, b) = send(&r, req("GET", "/recon/version", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, br#"{"version":"2.38.3"}"#);
}

#[tokio::test]
async fn full_or_unmounted_devices_are_507() {
    let node = Node::new();
    // A reserve of 100% means every write would eat into it: a full disk.
    let text = format!(
        "[DEFAULT]\ndevices = {}\nmount_check = false\nswift_dir = {}\nfallocate_reserve = 100%\n",
        node.dir.path().join("node").display(),
        node.dir.path().display()
    );
    let cfg =
        ObjectConfig::from_conf(&Conf::parse(&text, Path::new("full.conf")).unwrap()).unwrap();
    let r = object_router(ObjectState::new(cfg));
    let (s, _, _) = send(&r, put("/sda1/0/a/c/o", &ts(1), b"data")).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE);
    assert!(
        !node.dev().join("objects").exists(),
        "nothing written on a full device"
    );
    // mount_check: a plain directory is not a mount point.
    let text = text
        .replace("mount_check = false", "mount_check = true")
        .replace("100%", "0");
    let cfg = ObjectConfig::from_conf(&Conf::parse(&text, Path::new("m.conf")).unwrap()).unwrap();
    let r = object_router(ObjectState::new(cfg));
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &ts(1), b"data")).await.0,
        StatusCode::INSUFFICIENT_STORAGE
    );
    assert_eq!(
        send(&r, req("REPLICATE", "/sda1/0", &[], Body::empty()))
            .await
            .0,
        StatusCode::INSUFFICIENT_STORAGE
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_body_leaves_no_object() {
    let node = Node::new();
    let r = node.router();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![1u8; 1000]),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "gone",
        )),
    ];
    let q = req(
        "PUT",
        "/sda1/0/a/c/o",
        &[
            ("x-timestamp", &ts(1)),
            ("content-type", "x/y"),
            ("content-length", "5000"),
        ],
        Body::from_stream(futures_util::stream::iter(chunks)),
    );
    assert_eq!(send(&r, q).await.0.as_u16(), 499);
    // Short body (fewer bytes than Content-Length): also 499, nothing visible.
    let q = req(
        "PUT",
        "/sda1/0/a/c/o",
        &[
            ("x-timestamp", &ts(1)),
            ("content-type", "x/y"),
            ("content-length", "5000"),
        ],
        vec![0u8; 10],
    );
    assert_eq!(send(&r, q).await.0.as_u16(), 499);
    assert_eq!(
        send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        std::fs::read_dir(node.dev().join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn corrupt_small_objects_are_never_served() {
    let node = Node::new();
    let r = node.router();
    let t1 = ts(1);
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t1, b"small body")).await.0,
        StatusCode::CREATED
    );
    let data = hash_dir(&node, "objects", "0", "a", "c", "o").join(format!("{t1}.data"));
    let mut f = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    std::io::Write::write_all(&mut f, b"S").unwrap();
    drop(f);
    assert_eq!(
        send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        std::fs::read_dir(node.dev().join("quarantined/objects"))
            .unwrap()
            .count(),
        1
    );
}

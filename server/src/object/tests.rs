//! Handler tests: requests through the router with `oneshot`, no socket (except the
//! container server that receives updates, which listens on loopback).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use tower::ServiceExt;

use super::*;
use crate::common::Timestamp;

pub(crate) struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("node/sda1")).unwrap();
        std::fs::write(
            dir.path().join("swift.conf"),
            "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\
             [storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:1]\nname = silver\n",
        )
        .unwrap();
        Node { dir }
    }

    pub fn conf(&self, app: &str) -> Conf {
        let text = format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nswift_dir = {}\nrecon_cache_path = {}\nfallocate_reserve = 0\n[app:{app}]\n",
            self.dir.path().join("node").display(),
            self.dir.path().display(),
            self.dir.path().join("cache").display()
        );
        Conf::parse(&text, Path::new("test.conf")).unwrap()
    }

    pub fn dev(&self) -> PathBuf {
        self.dir.path().join("node/sda1")
    }

    pub fn router(&self) -> Router {
        let cfg = ObjectConfig::from_conf(&self.conf("object-server")).unwrap();
        object_router(ObjectState::new(cfg))
    }
}

pub(crate) async fn send(
    r: &Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

pub(crate) fn req(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

/// A timestamp `n` seconds after a base fixed for the whole test run (so two calls
/// with the same `n` always agree).
fn ts(n: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().seconds() - 1000);
    Timestamp::from_ticks((base + n) * 100_000, 0).internal()
}

fn put(path: &str, t: &str, body: &[u8]) -> Request<Body> {
    let len = body.len().to_string();
    req(
        "PUT",
        path,
        &[
            ("x-timestamp", t),
            ("content-type", "text/plain"),
            ("content-length", &len),
            ("x-object-meta-color", "blue"),
        ],
        body.to_vec(),
    )
}

fn hash_dir(node: &Node, objects: &str, part: &str, a: &str, c: &str, o: &str) -> PathBuf {
    let h = ringsmith::hash::HashConfig::new("pre", "suf")
        .hash_path(a, Some(c), Some(o))
        .unwrap();
    node.dev().join(objects).join(part).join(&h[29..]).join(h)
}

#[tokio::test]
async fn put_get_head_round_trip_in_swift_layout() {
    let node = Node::new();
    let r = node.router();
    let body = b"hello object".to_vec();
    let etag = hex::encode(Md5::digest(&body));
    let t1 = ts(1);
    let mut p = put("/sda1/7/a/c/dir/o", &t1, &body);
    p.headers_mut().insert("etag", etag.parse().unwrap());
    let (s, h, _) = send(&r, p).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["etag"], format!("\"{etag}\"").as_str());

    let (s, h, got) = send(&r, req("GET", "/sda1/7/a/c/dir/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, body);
    assert_eq!(h["x-object-meta-color"], "blue");
    assert_eq!(h["x-timestamp"], t1.as_str());
    assert_eq!(h["x-backend-timestamp"], t1.as_str());
    assert_eq!(h["x-backend-data-timestamp"], t1.as_str());
    assert_eq!(h["content-type"], "text/plain");

    let (s, h, got) = send(&r, req("HEAD", "/sda1/7/a/c/dir/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(got.is_empty());
    assert_eq!(h["content-length"], "12");

    // On disk exactly where Swift keeps it, with Swift's metadata keys.
    let hd = hash_dir(&node, "objects", "7", "a", "c", "dir/o");
    let data = hd.join(format!("{t1}.data"));
    assert_eq!(std::fs::read(&data).unwrap(), body);
    let f = std::fs::File::open(&data).unwrap();
    let meta = diskfile::read_metadata(&f, &data).unwrap();
    assert_eq!(meta["name"], "/a/c/dir/o");
    assert_eq!(meta["ETag"], etag);
    assert_eq!(meta["Content-Length"], "12");
    assert_eq!(meta["X-Object-Meta-Color"], "blue");
    // The suffix was invalidated for the replicator.
    let inv = std::fs::read_to_string(node.dev().join("objects/7/hashes.invalid")).unwrap();
    assert_eq!(
        inv.trim(),
        &hd.parent().unwrap().file_name().unwrap().to_string_lossy()[..]
    );
}

#[tokio::test]
async fn last_write_wins_and_conflicts_name_the_existing_timestamp() {
    let node = Node::new();
    let r = node.router();
    let t2 = ts(2);
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t2, b"v2")).await.0,
        StatusCode::CREATED
    );
    for older in [ts(1), t2.clone()] {
        let (s, h, _) = send(&r, put("/sda1/0/a/c/o", &older, b"old")).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(h["x-backend-timestamp"], t2.as_str());
    }
    let t3 = ts(3);
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t3, b"v3")).await.0,
        StatusCode::CREATED
    );
    let (_, _, body) = send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!(body, b"v3");
    // The older .data was cleaned up.
    let hd = hash_dir(&node, "objects", "0", "a", "c", "o");
    let names: Vec<_> = std::fs::read_dir(&hd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
}

#[tokio::test]
async fn etag_mismatch_is_422_and_leaves_nothing() {
    let node = Node::new();
    let r = node.router();
    let mut p = put("/sda1/0/a/c/o", &ts(1), b"data");
    p.headers_mut()
        .insert("etag", "00000000000000000000000000000000".parse().unwrap());
    assert_eq!(send(&r, p).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let tmp = node.dev().join("tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "temp files left in {}", tmp.display());
    assert!(!hash_dir(&node, "objects", "0", "a", "c", "o").exists());
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_and_5xx() {
    let node = Node::new();
    let r = node.router();
    let t = ts(1);
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[("content-type", "x/y"), ("content-length", "0")],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "Missing X-Timestamp",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", "yesterday"),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "X-Timestamp",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[("x-timestamp", &t), ("content-length", "0")],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "content type",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[("x-timestamp", &t), ("content-type", "x/y")],
                Body::empty(),
            ),
            StatusCode::LENGTH_REQUIRED,
            "Content-Length",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "6000000000"),
                ],
                Body::empty(),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "large",
        ),
        (
            req(
                "PUT",
                &format!("/sda1/0/a/c/{}", "o".repeat(1025)),
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "longer than 1024",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                    ("x-object-meta-big", &"v".repeat(300)),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "longer than 256",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                    ("x-delete-at", "12"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "X-Delete-At in past",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                    ("x-delete-at", "soon"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "Non-integer",
        ),
        (
            req("GET", "/../0/a/c/o", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid device",
        ),
        (
            req("GET", "/sda1/../a/c/o", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid partition",
        ),
        (
            req("GET", "/sda1%2F..%2F..%2Fetc/0/a/c/o", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid",
        ),
        (
            req("GET", "/sda1/0/a/c", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid path",
        ),
        (
            req("GET", "/sda1/0/a/c/o%00", &[], Body::empty()),
            StatusCode::PRECONDITION_FAILED,
            "NULL",
        ),
        (
            req("GET", "/sda1/0/a/c/%ff", &[], Body::empty()),
            StatusCode::PRECONDITION_FAILED,
            "UTF8",
        ),
        (
            req(
                "GET",
                "/sda1/0/a/c/o",
                &[("x-backend-storage-policy-index", "5")],
                Body::empty(),
            ),
            StatusCode::SERVICE_UNAVAILABLE,
            "No policy with index 5",
        ),
        (
            req("GET", "/nodev/0/a/c/o", &[], Body::empty()),
            StatusCode::INSUFFICIENT_STORAGE,
            "nodev",
        ),
        (
            req(
                "PUT",
                "/sda1/0/a/c/o",
                &[
                    ("x-timestamp", &t),
                    ("content-type", "x/y"),
                    ("content-length", "0"),
                    ("x-container-host", "127.0.0.1:1,127.0.0.1:2"),
                    ("x-container-partition", "1"),
                    ("x-container-device", "d1"),
                ],
                Body::empty(),
            ),
            StatusCode::BAD_REQUEST,
            "do not match",
        ),
        (
            req("COPY", "/sda1/0/a/c/o", &[], Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
            "Not Allowed",
        ),
    ];
    for (rq, want, msg) in cases {
        let what = format!("{} {}", rq.method(), rq.uri());
        let (s, _, body) = send(&r, rq).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(s, want, "{what}: {body}");
        assert!(body.contains(msg), "{what}: {body:?} lacks {msg:?}");
    }
    // Nothing was written by any of them.
    assert!(!node.dev().join("objects/0").exists());
}

#[tokio::test]
async fn ranges_and_conditional_requests() {
    let node = Node::new();
    let r = node.router();
    let body = b"0123456789ab";
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &ts(1), body)).await.0,
        StatusCode::CREATED
    );
    let get = |hs: Vec<(&'static str, String)>| {
        let mut q = req("GET", "/sda1/0/a/c/o", &[], Body::empty());
        for (k, v) in hs {
            q.headers_mut().insert(k, v.parse().unwrap());
        }
        q
    };
    let (s, h, b) = send(&r, get(vec![("range", "bytes=0-1".into())])).await;
    assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &b"01"[..]));
    assert_eq!(h["content-range"], "bytes 0-1/12");
    let (s, h, b) = send(&r, get(vec![("range", "bytes=-5".into())])).await;
    assert_eq!(
        (s, b.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"789ab"[..])
    );
    assert_eq!(h["content-range"], "bytes 7-11/12");
    let (s, h, b) = send(&r, get(vec![("range", "bytes=0-1,4-5".into())])).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    let ct = h["content-type"].to_str().unwrap().to_string();
    let boundary = ct.strip_prefix("multipart/byteranges;boundary=").unwrap();
    let text = String::from_utf8(b.clone()).unwrap();
    assert_eq!(
        text,
        format!("--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/12\r\n\r\n01\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 4-5/12\r\n\r\n45\r\n--{boundary}--")
    );
    assert_eq!(h["content-length"], b.len().to_string().as_str());
    assert_eq!(
        send(&r, get(vec![("range", "bytes=50-60".into())])).await.0,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let etag = hex::encode(Md5::digest(body));
    assert_eq!(
        send(&r, get(vec![("if-none-match", format!("\"{etag}\""))]))
            .await
            .0,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        send(&r, get(vec![("if-match", "\"nope\"".into())])).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        send(&r, get(vec![("if-match", format!("\"{etag}\""))]))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &r,
            get(vec![(
                "if-modified-since",
                "Sun, 01 Jan 2090 00:00:00 GMT".into()
            )])
        )
        .await
        .0,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        send(
            &r,
            get(vec![(
                "if-unmodified-since",
                "Sat, 01 Jan 2000 00:00:00 GMT".into()
            )])
        )
        .await
        .0,
        StatusCode::PRECONDITION_FAILED
    );
    // If-None-Match: * on PUT refuses to overwrite.
    let mut p = put("/sda1/0/a/c/o", &ts(2), b"x");
    p.headers_mut()
        .insert("if-none-match", "*".parse().unwrap());
    assert_eq!(send(&r, p).await.0, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn post_replaces_user_metadata_in_a_meta_file() {
    let node = Node::new();
    let r = node.router();
    let (t1, t2) = (ts(1), ts(2));
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t1, b"x")).await.0,
        StatusCode::CREATED
    );
    let (s, _, _) = send(
        &r,
        req(
            "POST",
            "/sda1/0/a/c/o",
            &[("x-timestamp", &t2), ("x-object-meta-shape", "round")],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, h, b) = send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!((s, b.as_slice()), (StatusCode::OK, &b"x"[..]));
    assert_eq!(h["x-object-meta-shape"], "round");
    assert!(h.get("x-object-meta-color").is_none());
    assert_eq!(h["x-backend-timestamp"], t2.as_str());
    assert_eq!(h["x-backend-data-timestamp"], t1.as_str());
    assert!(hash_dir(&node, "objects", "0", "a", "c", "o")
        .join(format!("{t2}.meta"))
        .exists());
    // Not newer: 409; no object: 404.
    assert_eq!(
        send(
            &r,
            req(
                "POST",
                "/sda1/0/a/c/o",
                &[("x-timestamp", &t2)],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        send(
            &r,
            req(
                "POST",
                "/sda1/0/a/c/none",
                &[("x-timestamp", &t2)],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn delete_writes_a_tombstone() {
    let node = Node::new();
    let r = node.router();
    let (t1, t2, t3) = (ts(1), ts(2), ts(3));
    assert_eq!(
        send(&r, put("/sda1/0/a/c/o", &t1, b"x")).await.0,
        StatusCode::CREATED
    );
    let (s, h, _) = send(
        &r,
        req(
            "DELETE",
            "/sda1/0/a/c/o",
            &[("x-timestamp", &t2)],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["x-backend-timestamp"], t2.as_str());
    let (s, h, _) = send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["x-backend-timestamp"], t2.as_str());
    let hd = hash_dir(&node, "objects", "0", "a", "c", "o");
    let names: Vec<String> = std::fs::read_dir(&hd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![format!("{t2}.ts")]);
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/a/c/o",
                &[("x-timestamp", &t3)],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &r,
            req(
                "DELETE",
                "/sda1/0/a/c/o",
                &[("x-timestamp", &t1)],
                Body::empty()
            )
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
}

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
    let (s, _, _) = send(&r, req("GET", "/sda1/0/a/c/o", &[], Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
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

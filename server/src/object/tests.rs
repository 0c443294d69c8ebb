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
pub(crate) fn ts(n: u64) -> String {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().seconds() - 1000);
    Timestamp::from_ticks((base + n) * 100_000, 0).internal()
}

pub(crate) fn put(path: &str, t: &str, body: &[u8]) -> Request<Body> {
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

pub(crate) fn hash_dir(
    node: &Node,
    objects: &str,
    part: &str,
    a: &str,
    c: &str,
    o: &str,
) -> PathBuf {
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
            // A NUL may only lead a name (the reserved namespace), as Swift checks.
            req("GET", "/sda1/0/a/c/o%00", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid reserved-namespace object",
        ),
        (
            req("GET", "/sda1/0/a/c/%00o", &[], Body::empty()),
            StatusCode::BAD_REQUEST,
            "Invalid reserved-namespace object in user-namespace container",
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

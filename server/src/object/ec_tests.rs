//! EC fragment archives through the router: the footer-only MIME PUT (the multiphase
//! one needs a socket and is covered by tests/ec_swift_proxy.rs), bad footers, the
//! on-disk names, fragment preferences and the EC backend headers.

use axum::http::StatusCode;
use md5::{Digest, Md5};

use super::tests::{req, send, ts, Node};

fn ec_node() -> Node {
    let node = Node::new();
    std::fs::write(
        node.dir.path().join("swift.conf"),
        "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\
         [storage-policy:0]\nname = gold\ndefault = yes\n\
         [storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\n\
         ec_type = liberasurecode_rs_vand\nec_num_data_fragments = 4\n\
         ec_num_parity_fragments = 2\n",
    )
    .unwrap();
    node
}

/// The footer-only MIME document Swift's proxy sends (without the commit phase).
fn mime_body(archive: &[u8], footer: &str, footer_md5: Option<String>) -> Vec<u8> {
    let md5 = footer_md5.unwrap_or_else(|| hex::encode(Md5::digest(footer.as_bytes())));
    let mut b = b"--bnd\r\nX-Document: object body\r\n\r\n".to_vec();
    b.extend_from_slice(archive);
    b.extend_from_slice(
        format!(
            "\r\n--bnd\r\nX-Document: object metadata\r\nContent-MD5: {md5}\r\n\r\n{footer}\r\n--bnd--"
        )
        .as_bytes(),
    );
    b
}

fn ec_put(t: &str, body: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    req(
        "PUT",
        "/sda1/0/a/c/o",
        &[
            ("x-timestamp", t),
            ("content-type", "application/octet-stream"),
            ("transfer-encoding", "chunked"),
            ("x-backend-storage-policy-index", "1"),
            ("x-backend-obj-metadata-footer", "yes"),
            ("x-backend-obj-multipart-mime-boundary", "bnd"),
        ],
        body,
    )
}

fn data_names(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![node.dev().join("objects-1")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".data") {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn footer_put_stores_a_durable_fragment_with_ec_headers() {
    let node = ec_node();
    let r = node.router();
    let archive = b"fragment-archive-bytes".to_vec();
    let etag = hex::encode(Md5::digest(&archive));
    let footer = format!(
        r#"{{"X-Object-Sysmeta-EC-Etag": "abc", "X-Object-Sysmeta-Ec-Frag-Index": "2", "X-Object-Meta-Color": "red", "Etag": "{etag}"}}"#
    );
    let t1 = ts(1);
    let (s, _, body) = send(&r, ec_put(&t1, mime_body(&archive, &footer, None))).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(data_names(&node), vec![format!("{t1}#2#d.data")]);

    let get = |prefs: Option<&'static str>| {
        let mut h = vec![("x-backend-storage-policy-index", "1")];
        if let Some(p) = prefs {
            h.push(("x-backend-fragment-preferences", p));
        }
        req("GET", "/sda1/0/a/c/o", &h, "")
    };
    let (s, h, body) = send(&r, get(None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, archive);
    assert_eq!(h["x-object-sysmeta-ec-frag-index"], "2");
    assert_eq!(h["x-object-sysmeta-ec-etag"], "abc");
    assert_eq!(h["x-object-meta-color"], "red");
    assert_eq!(h["x-backend-durable-timestamp"], t1.as_str());
    assert_eq!(h["x-backend-data-timestamp"], t1.as_str());
    assert_eq!(
        h["x-backend-fragments"],
        format!("{{\"{t1}\": [2]}}").as_str()
    );

    // A newer non-durable fragment (X-Backend-No-Commit): kept next to the durable
    // one; plain reads still get the durable one, preference-led reads the newest.
    let t2 = ts(2);
    let mut put2 = ec_put(&t2, mime_body(b"newer", &footer.replace(&etag, ""), None));
    put2.headers_mut()
        .insert("x-backend-no-commit", "true".parse().unwrap());
    let (s, _, body) = send(&r, put2).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        data_names(&node),
        vec![format!("{t1}#2#d.data"), format!("{t2}#2.data")]
    );
    let (_, h, body) = send(&r, get(None)).await;
    assert_eq!(body, archive);
    assert_eq!(
        h["x-backend-fragments"],
        format!("{{\"{t1}\": [2], \"{t2}\": [2]}}").as_str()
    );
    let (s, h, body) = send(&r, get(Some("[]"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, b"newer");
    assert_eq!(h["x-backend-data-timestamp"], t2.as_str());
    assert_eq!(h["x-backend-durable-timestamp"], t1.as_str());
    // Not JSON: ignored, as Swift's safe_json_loads does (the durable fragment).
    let (s, _, body) = send(&r, get(Some("{not json"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, archive);
    // JSON of the wrong shape: a clear 400.
    let (s, _, body) = send(&r, get(Some(r#"[{"timestamp": "x", "exclude": []}]"#))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("Fragment-Preferences"));
}

#[tokio::test]
async fn bad_footers_are_refused_and_leave_nothing() {
    let node = ec_node();
    let r = node.router();
    let archive = b"abc".to_vec();
    let good = format!(
        r#"{{"X-Object-Sysmeta-Ec-Frag-Index": "1", "Etag": "{}"}}"#,
        hex::encode(Md5::digest(&archive))
    );
    // Footer MD5 mismatch: 422.
    let (s, _, _) = send(
        &r,
        ec_put(&ts(1), mime_body(&archive, &good, Some("0".repeat(32)))),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Footer Etag is not the archive's md5: 422.
    let wrong =
        r#"{"X-Object-Sysmeta-Ec-Frag-Index": "1", "Etag": "00000000000000000000000000000000"}"#;
    let (s, _, _) = send(&r, ec_put(&ts(2), mime_body(&archive, wrong, None))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Not JSON: 400.
    let (s, _, _) = send(&r, ec_put(&ts(3), mime_body(&archive, "nope", None))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // No fragment index anywhere: 400.
    let (s, _, body) = send(&r, ec_put(&ts(4), mime_body(&archive, "{}", None))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("Frag-Index"));
    // Truncated MIME document: 400, no file.
    let mut cut = mime_body(&archive, &good, None);
    cut.truncate(20);
    let (s, _, _) = send(&r, ec_put(&ts(5), cut)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // No boundary header: 400.
    let mut no_boundary = ec_put(&ts(6), mime_body(&archive, &good, None));
    no_boundary
        .headers_mut()
        .remove("x-backend-obj-multipart-mime-boundary");
    let (s, _, _) = send(&r, no_boundary).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(data_names(&node).is_empty(), "{:?}", data_names(&node));
}

#[tokio::test]
async fn replicate_answers_the_ec_suffix_hash_form() {
    let node = ec_node();
    let r = node.router();
    let archive = b"abc".to_vec();
    let footer = format!(
        r#"{{"X-Object-Sysmeta-Ec-Frag-Index": "3", "Etag": "{}"}}"#,
        hex::encode(Md5::digest(&archive))
    );
    let t1 = ts(1);
    let (s, _, _) = send(&r, ec_put(&t1, mime_body(&archive, &footer, None))).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, body) = send(
        &r,
        req(
            "REPLICATE",
            "/sda1/0",
            &[("x-backend-storage-policy-index", "1")],
            "",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v = ringsmith::pickle::loads(&body).unwrap();
    let ringsmith::pickle::Value::Dict(suffixes) = v.deref_shared() else {
        panic!("not a dict: {v:?}");
    };
    assert_eq!(suffixes.len(), 1);
    let ringsmith::pickle::Value::Dict(per_frag) = &suffixes[0].1 else {
        panic!("not the EC form: {suffixes:?}");
    };
    let get = |k: &ringsmith::pickle::Value| {
        per_frag
            .iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    };
    assert_eq!(
        get(&ringsmith::pickle::Value::Int(3)),
        Some(hex::encode(Md5::digest(t1.as_bytes())))
    );
    assert_eq!(
        get(&ringsmith::pickle::Value::None),
        Some(hex::encode(Md5::digest(format!("{t1}.durable").as_bytes())))
    );
}

#[tokio::test]
async fn replicate_lists_a_suffix_for_the_pulling_reconstructor() {
    let node = ec_node();
    let r = node.router();
    let archive = b"abc".to_vec();
    let footer = format!(
        r#"{{"X-Object-Sysmeta-Ec-Frag-Index": "2", "Etag": "{}"}}"#,
        hex::encode(Md5::digest(&archive))
    );
    let t1 = ts(1);
    let (s, _, _) = send(&r, ec_put(&t1, mime_body(&archive, &footer, None))).await;
    assert_eq!(s, StatusCode::CREATED);
    // objects-1/0/<suffix>/<hash>
    let part = node.dev().join("objects-1/0");
    let suffix_dir = std::fs::read_dir(&part)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir());
    let suffix_dir = suffix_dir.unwrap().path();
    let hash_dir = std::fs::read_dir(&suffix_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let hash_dir = hash_dir.file_name().to_string_lossy().into_owned();
    let suffix = &hash_dir[29..];
    let policy = [
        ("x-backend-storage-policy-index", "1"),
        ("x-ringsmith-list-suffix", "yes"),
    ];
    let (s, _, body) = send(
        &r,
        req("REPLICATE", &format!("/sda1/0/{suffix}"), &policy, ""),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[&hash_dir]["name"], "/a/c/o", "{v}");
    assert_eq!(
        v[&hash_dir]["files"],
        serde_json::json!([format!("{t1}#2#d.data")])
    );
    // An empty suffix lists nothing; two suffixes are refused.
    let (s, _, body) = send(&r, req("REPLICATE", "/sda1/0/fff", &policy, "")).await;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"{}"[..]));
    let (s, _, _) = send(&r, req("REPLICATE", "/sda1/0/fff-abc", &policy, "")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

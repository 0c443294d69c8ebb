//! Interop: real Swift 2.38.3's proxy with a 4+2 `liberasurecode_rs_vand` policy as the
//! cluster's default, over six Ringsmith object servers (plus Ringsmith's account and
//! container servers) on 127.x addresses. Swift's proxy does the encoding and the
//! multiphase MIME PUT; our object servers store, commit and serve the fragment
//! archives. Never skips: a missing virtualenv is a failure.

mod ec_common;
mod proxy_common;

use std::path::Path;
use std::process::Command;

use ec_common::*;
use md5::{Digest, Md5};
use proxy_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_proxy_stores_ec_objects_on_ringsmith_object_servers() {
    let mut cluster = ec_cluster(Storage::Ringsmith);
    let base = cluster.url();
    let (http, token, url) = tester_with_container(&base, "ec", TIMEOUT).await;

    let sizes = [0usize, 1, SEGMENT - 1, SEGMENT, 3 * SEGMENT + 17, 40_000];
    let mut objects = Vec::new();
    for (n, size) in sizes.iter().enumerate() {
        let body = body_of(*size, n as u8 + 1);
        let name = format!("obj-{size}");
        let r = http
            .put(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .header("x-object-meta-color", "blue")
            .header("content-length", body.len().to_string())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if r.status() != 201 {
            let log = std::fs::read_to_string(cluster.dir.path().join("log/swift-proxy.log"))
                .unwrap_or_default();
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            let olog = std::fs::read_to_string(cluster.dir.path().join("log/object-0.log"))
                .unwrap_or_default();
            panic!("PUT {name}: {status} {text}; proxy log:\n{log}\nobject log:\n{olog}");
        }
        let etag = hex::encode(Md5::digest(&body));
        assert_eq!(
            r.headers()["etag"].to_str().unwrap().trim_matches('"'),
            etag,
            "PUT {name} etag"
        );
        objects.push((name, body, etag));
    }

    for (name, body, etag) in &objects {
        let r = http
            .get(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {name}");
        assert_eq!(
            r.headers()["etag"].to_str().unwrap().trim_matches('"'),
            etag
        );
        assert_eq!(r.headers()["x-object-meta-color"], "blue");
        assert_eq!(&r.bytes().await.unwrap()[..], &body[..], "GET {name} body");

        let r = http
            .head(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "HEAD {name}");
        assert_eq!(
            r.headers()["content-length"],
            body.len().to_string().as_str()
        );
        assert_eq!(
            r.headers()["etag"].to_str().unwrap().trim_matches('"'),
            etag
        );

        let len = body.len();
        if len > 2 {
            let mut ranges = vec![(0usize, 0usize), (1, len - 2), (len / 2, len - 1)];
            if len > SEGMENT + 10 {
                // Across a segment boundary.
                ranges.push((SEGMENT - 5, SEGMENT + 5));
            }
            for (a, b) in ranges {
                let r = http
                    .get(format!("{url}/ec/{name}"))
                    .header("x-auth-token", &token)
                    .header("range", format!("bytes={a}-{b}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 206, "GET {name} bytes={a}-{b}");
                assert_eq!(&r.bytes().await.unwrap()[..], &body[a..=b], "range {a}-{b}");
            }
            let r = http
                .get(format!("{url}/ec/{name}"))
                .header("x-auth-token", &token)
                .header("range", "bytes=-2")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 206);
            assert_eq!(&r.bytes().await.unwrap()[..], &body[len - 2..]);
        }
    }

    // On disk: every object is six durable fragment archives, indexes 0..5, named as
    // Swift names them.
    let files = data_files(cluster.dir.path());
    let mut by_hash: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".data") {
            let hash = f
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            by_hash.entry(hash).or_default().push(name);
        }
    }
    assert_eq!(by_hash.len(), objects.len(), "hash dirs: {by_hash:?}");
    for (hash, names) in &by_hash {
        let mut idx: Vec<u32> = names
            .iter()
            .map(|n| {
                let parts: Vec<&str> = n.trim_end_matches(".data").split('#').collect();
                assert_eq!(parts.len(), 3, "{hash}: {n} is not <ts>#<frag>#d.data");
                assert_eq!(parts[2], "d", "{hash}: {n} is not durable");
                parts[1].parse().unwrap()
            })
            .collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2, 3, 4, 5], "{hash}: {names:?}");
    }
    // Swift's own tool reads our fragment archive's metadata.
    let some_data = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with("#d.data"))
        .unwrap();
    let out = Command::new(ringsmith_testkit::swift_bin("swift-object-info"))
        .arg(some_data)
        .arg(format!("--swift-dir={}", cluster.etc().display()))
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "swift-object-info: {info}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(info.contains("X-Object-Sysmeta-Ec-Frag-Index"), "{info}");
    assert!(info.contains("X-Object-Sysmeta-Ec-Etag"), "{info}");

    // DELETE, then 404.
    let (gone, _, _) = objects.pop().unwrap();
    let r = http
        .delete(format!("{url}/ec/{gone}"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "DELETE");
    let r = http
        .get(format!("{url}/ec/{gone}"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "GET after DELETE");

    // Two of six nodes down: every object still reads back whole (k = 4 remain).
    cluster.kill_node(1);
    cluster.kill_node(4);
    for (name, body, _) in &objects {
        let r = http
            .get(format!("{url}/ec/{name}"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {name} with two nodes down");
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &body[..],
            "{name} with two nodes down"
        );
    }
}

/// The `.data` xattr metadata of `<hash>` with fragment index `frag`, under `root`.
fn fragment_metadata(root: &Path, frag: u32) -> std::collections::BTreeMap<String, String> {
    let path = data_files(root)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(&format!("#{frag}#d.data")))
        .unwrap_or_else(|| panic!("no #{frag}#d.data under {}", root.display()));
    let f = std::fs::File::open(&path).unwrap();
    ringsmith_server::object::diskfile::read_metadata(&f, &path)
        .unwrap()
        .into_iter()
        .collect()
}

/// The same PUT through Swift's proxy, once over Swift's object servers and once over
/// ours: the fragment archives' bytes and xattr metadata agree (timestamps aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_archives_match_swifts_object_servers() {
    let body = body_of(2 * SEGMENT + 100, 7);
    let mut stored = Vec::new();
    for storage in [Storage::Swift, Storage::Ringsmith] {
        let cluster = ec_cluster(storage);
        let (http, token, url) = tester_with_container(&cluster.url(), "ec", TIMEOUT).await;
        let r = http
            .put(format!("{url}/ec/same"))
            .header("x-auth-token", &token)
            .header("x-object-meta-color", "green")
            .header("content-type", "text/plain")
            .header("content-length", body.len().to_string())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{storage:?} PUT");
        let mut per_frag = Vec::new();
        for frag in 0..6 {
            let mut meta = fragment_metadata(cluster.dir.path(), frag);
            let ts = meta.remove("X-Timestamp").expect("X-Timestamp stored");
            assert!(!ts.is_empty());
            let path = data_files(cluster.dir.path())
                .into_iter()
                .find(|p| p.to_string_lossy().ends_with(&format!("#{frag}#d.data")))
                .unwrap();
            per_frag.push((meta, std::fs::read(path).unwrap()));
        }
        stored.push(per_frag);

        // REPLICATE of the object's partition on node 0 answers the EC suffix-hash form;
        // on Swift's server this checks Ringsmith's recipe against Swift's answer.
        let data = data_files(cluster.dir.path())
            .into_iter()
            .find(|p| {
                p.to_string_lossy().contains("/node0/") && p.to_string_lossy().ends_with(".data")
            })
            .expect("a fragment on node 0");
        let part_dir = data
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let part = part_dir.file_name().unwrap().to_string_lossy().into_owned();
        let node = &cluster.nodes[0];
        let r = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(b"REPLICATE").unwrap(),
                format!("http://{}:{}/d0/{part}", node.ip, node.ports[0]),
            )
            .header("x-backend-storage-policy-index", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{storage:?} REPLICATE");
        let answered = ec_hash_map(&ringsmith::pickle::loads(&r.bytes().await.unwrap()).unwrap());
        let recipe =
            ringsmith_server::object::diskfile::ec_hashes::ec_partition_hashes(&part_dir, None)
                .unwrap();
        let recipe = ec_hash_map(
            &ringsmith::pickle::loads(
                &ringsmith_server::object::diskfile::ec_hashes::pickle_ec_hashes(&recipe),
            )
            .unwrap(),
        );
        assert_eq!(answered.len(), 1, "{storage:?}: {answered:?}");
        assert_eq!(
            answered, recipe,
            "{storage:?} REPLICATE vs Ringsmith's EC recipe"
        );
    }
    let (swift, ours) = (&stored[0], &stored[1]);
    for frag in 0..6 {
        assert_eq!(ours[frag].0, swift[frag].0, "metadata of fragment {frag}");
        assert_eq!(ours[frag].1, swift[frag].1, "bytes of fragment {frag}");
    }
}

/// `{suffix: {frag_index|None: md5}}` as sorted strings, from an unpickled answer.
fn ec_hash_map(
    v: &ringsmith::pickle::Value,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
    use ringsmith::pickle::Value;
    let Value::Dict(items) = v.deref_shared() else {
        panic!("REPLICATE answer is not a dict: {v:?}");
    };
    items
        .iter()
        .map(|(k, inner)| {
            let Value::Dict(per_frag) = inner.deref_shared() else {
                panic!("suffix {k:?} is not in the EC form: {inner:?}");
            };
            let per_frag = per_frag
                .iter()
                .map(|(fi, md5)| {
                    let key = match fi {
                        Value::None => "None".to_string(),
                        Value::Int(n) => n.to_string(),
                        other => panic!("bad frag key {other:?}"),
                    };
                    (key, md5.as_str().unwrap().to_string())
                })
                .collect();
            (k.as_str().unwrap().to_string(), per_frag)
        })
        .collect()
}

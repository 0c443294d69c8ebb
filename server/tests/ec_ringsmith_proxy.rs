//! Ringsmith's proxy serving an erasure-coded policy (4+2 `liberasurecode_rs_vand`,
//! 4 KiB segments) over six Ringsmith object servers, with real Swift 2.38.3's proxy on
//! the same cluster as the oracle: what one proxy writes the other must read, byte for
//! byte. Through the real binaries; never skips (a missing virtualenv is a failure).

mod ec_common;
mod proxy_common;

use ec_common::*;
use md5::{Digest, Md5};
use proxy_common::*;

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn login(port: u16) -> Client {
        let (token, url) = login(
            &format!("http://127.0.0.1:{port}"),
            "test:tester",
            "testing",
        )
        .await;
        Client {
            http: reqwest::Client::new(),
            url,
            token,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/{path}", self.url))
            .header("x-auth-token", &self.token)
    }

    async fn put(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.req(reqwest::Method::PUT, path)
            .header("content-length", body.len().to_string())
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut rb = self.req(reqwest::Method::GET, path);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }
}

fn etag_of(r: &reqwest::Response) -> String {
    r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// Durable fragment indexes on disk for every object hash directory.
fn durable_indexes(cluster: &Cluster) -> std::collections::BTreeMap<String, Vec<u32>> {
    let mut by_hash: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    for f in data_files(cluster.dir.path()) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix("#d.data") {
            let idx: u32 = stem.rsplit('#').next().unwrap().parse().unwrap();
            let hash = f
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            by_hash.entry(hash).or_default().push(idx);
        }
    }
    for v in by_hash.values_mut() {
        v.sort();
    }
    by_hash
}

/// The expected body of a multipart/byteranges answer.
fn multipart(boundary: &str, ctype: &str, body: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (a, b)) in ranges.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body[*a..=*b]);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--").as_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringsmith_proxy_serves_ec_objects_interoperably_with_swifts_proxy() {
    let mut cluster = ec_cluster(Storage::Ringsmith);
    let swift_port = cluster.proxy_port;
    let ours_port = cluster.start_another_proxy("ringsmith-proxy", "");
    let ours = Client::login(ours_port).await;
    let swift = Client::login(swift_port).await;
    let r = ours.req(reqwest::Method::PUT, "ec").send().await.unwrap();
    assert!(r.status().is_success(), "container PUT: {}", r.status());

    // PUT through our proxy, sizes from empty to several segments.
    let sizes = [
        0usize,
        1,
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        3 * SEGMENT + 17,
        40_000,
    ];
    let mut objects = Vec::new();
    for (n, size) in sizes.iter().enumerate() {
        let body = body_of(*size, n as u8 + 3);
        let name = format!("ours-{size}");
        let r = ours
            .req(reqwest::Method::PUT, &format!("ec/{name}"))
            .header("content-length", body.len().to_string())
            .header("x-object-meta-color", "green")
            .header("content-type", "application/x-test")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let etag = r.headers().get("etag").cloned();
        assert_eq!(
            status,
            201,
            "PUT {name}: {}\nproxy log:\n{}",
            r.text().await.unwrap_or_default(),
            std::fs::read_to_string(cluster.dir.path().join("log/ringsmith-proxy.log"))
                .unwrap_or_default()
        );
        assert_eq!(
            etag.unwrap().to_str().unwrap(),
            md5_hex(&body),
            "PUT {name} etag"
        );
        objects.push((name, body));
    }
    // A chunked upload (no Content-Length), several segments long.
    let chunked_body = body_of(2 * SEGMENT + 100, 99);
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        chunked_body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let r = ours
        .req(reqwest::Method::PUT, "ec/ours-chunked")
        .header("x-object-meta-color", "green")
        .header("content-type", "application/x-test")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "chunked PUT");
    assert_eq!(etag_of(&r), md5_hex(&chunked_body));
    objects.push(("ours-chunked".to_string(), chunked_body));

    // Every object is six durable fragment archives, indexes 0..5.
    let on_disk = durable_indexes(&cluster);
    assert_eq!(on_disk.len(), objects.len(), "{on_disk:?}");
    for idx in on_disk.values() {
        assert_eq!(idx, &vec![0, 1, 2, 3, 4, 5]);
    }

    // Both proxies read them back whole, with the object's etag, length and metadata.
    for (name, body) in &objects {
        for (who, client) in [("ours", &ours), ("swift", &swift)] {
            let r = client.get(&format!("ec/{name}"), &[]).await;
            assert_eq!(r.status(), 200, "{who} GET {name}");
            assert_eq!(etag_of(&r), md5_hex(body), "{who} GET {name} etag");
            assert_eq!(
                r.headers()
                    .get("x-object-meta-color")
                    .map(|v| v.to_str().unwrap()),
                Some("green"),
                "{who} GET {name}: {:?}",
                r.headers()
            );
            assert_eq!(r.headers()["content-type"], "application/x-test");
            assert!(
                !r.headers()
                    .keys()
                    .any(|k| k.as_str().starts_with("x-object-sysmeta")),
                "{who}: sysmeta leaked"
            );
            assert_eq!(&r.bytes().await.unwrap()[..], &body[..], "{who} GET {name}");
            let r = client
                .req(reqwest::Method::HEAD, &format!("ec/{name}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                r.headers()["content-length"],
                body.len().to_string().as_str()
            );
            assert_eq!(etag_of(&r), md5_hex(body), "{who} HEAD {name}");
        }
    }

    // Ranges: within a segment, across boundaries, suffixes, open ends, multipart.
    let (name, body) = objects
        .iter()
        .find(|(n, _)| n == &format!("ours-{}", 3 * SEGMENT + 17))
        .unwrap();
    let len = body.len();
    let singles: Vec<(String, (usize, usize))> = vec![
        ("bytes=0-0".into(), (0, 0)),
        (
            format!("bytes={}-{}", SEGMENT - 5, SEGMENT + 5),
            (SEGMENT - 5, SEGMENT + 5),
        ),
        (
            format!("bytes=100-{}", 2 * SEGMENT + 9),
            (100, 2 * SEGMENT + 9),
        ),
        ("bytes=-5000".into(), (len - 5000, len - 1)),
        ("bytes=-17".into(), (len - 17, len - 1)),
        (format!("bytes={}-", 3 * SEGMENT), (3 * SEGMENT, len - 1)),
        ("bytes=5-999999".into(), (5, len - 1)),
    ];
    for (spec, (a, b)) in &singles {
        for (who, client) in [("ours", &ours), ("swift", &swift)] {
            let r = client.get(&format!("ec/{name}"), &[("range", spec)]).await;
            assert_eq!(r.status(), 206, "{who} {spec}");
            assert_eq!(
                r.headers()["content-range"],
                format!("bytes {a}-{b}/{len}").as_str(),
                "{who} {spec}"
            );
            assert_eq!(
                &r.bytes().await.unwrap()[..],
                &body[*a..=*b],
                "{who} {spec}"
            );
        }
    }
    let multi = [
        (10usize, 20usize),
        (SEGMENT - 2, SEGMENT + 2),
        (len - 3, len - 1),
    ];
    let spec = format!(
        "bytes={}",
        multi
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = ours.get(&format!("ec/{name}"), &[("range", &spec)]).await;
    assert_eq!(r.status(), 206);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges;boundary=")
        .unwrap()
        .to_string();
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &multipart(&boundary, "application/x-test", body, &multi)[..]
    );
    let r = ours
        .get(&format!("ec/{name}"), &[("range", "bytes=999999-")])
        .await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    // Conditionals compare against the object's etag, not a fragment archive's.
    let etag = md5_hex(body);
    let r = ours
        .get(&format!("ec/{name}"), &[("if-match", &etag)])
        .await;
    assert_eq!(r.status(), 200);
    let r = ours
        .get(&format!("ec/{name}"), &[("if-match", "nope")])
        .await;
    assert_eq!(r.status(), 412);
    let r = ours
        .get(&format!("ec/{name}"), &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), 304);
    assert_eq!(etag_of(&r), etag);
    let r = ours
        .get(
            &format!("ec/{name}"),
            &[("if-none-match", &etag), ("range", "bytes=0-1")],
        )
        .await;
    assert_eq!(r.status(), 304);

    // A wrong client etag is a 422 and leaves nothing behind.
    let r = ours
        .req(reqwest::Method::PUT, "ec/bad-etag")
        .header("etag", "0123456789abcdef0123456789abcdef")
        .body(body_of(5000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(ours.get("ec/bad-etag", &[]).await.status(), 404);

    // Swift's proxy writes, ours reads (whole and ranged).
    let theirs = body_of(2 * SEGMENT + 333, 77);
    let r = swift.put("ec/theirs", theirs.clone()).await;
    assert_eq!(r.status(), 201);
    let r = ours.get("ec/theirs", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(etag_of(&r), md5_hex(&theirs));
    assert_eq!(&r.bytes().await.unwrap()[..], &theirs[..]);
    let r = ours
        .get(
            "ec/theirs",
            &[(
                "range",
                &format!("bytes={}-{}", SEGMENT - 1, 2 * SEGMENT + 1),
            )],
        )
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &theirs[SEGMENT - 1..=2 * SEGMENT + 1]
    );

    // POST and DELETE through ours; Swift's proxy sees the result.
    let r = ours
        .req(reqwest::Method::POST, "ec/theirs")
        .header("x-object-meta-shade", "teal")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = swift.get("ec/theirs", &[]).await;
    assert_eq!(r.headers()["x-object-meta-shade"], "teal");
    assert_eq!(&r.bytes().await.unwrap()[..], &theirs[..]);
    let r = ours
        .req(reqwest::Method::DELETE, "ec/theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(swift.get("ec/theirs", &[]).await.status(), 404);
    assert_eq!(ours.get("ec/theirs", &[]).await.status(), 404);

    // python-swiftclient through our proxy: upload and download a multi-segment file.
    let up = body_of(5 * SEGMENT + 1234, 42);
    std::fs::write(cluster.dir.path().join("upload.bin"), &up).unwrap();
    cluster.proxy_port = ours_port;
    let out = cluster.swift("test:tester", "testing", &["upload", "ec", "upload.bin"]);
    assert!(
        out.status.success(),
        "swift upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cluster.swift(
        "test:tester",
        "testing",
        &["download", "ec", "upload.bin", "-o", "downloaded.bin"],
    );
    assert!(
        out.status.success(),
        "swift download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.proxy_port = swift_port;
    assert_eq!(
        std::fs::read(cluster.dir.path().join("downloaded.bin")).unwrap(),
        up
    );
    objects.push(("upload.bin".to_string(), up));

    // One node down: a PUT still reaches the quorum (k+1 = 5 of 6).
    cluster.kill_node(2);
    let before = durable_indexes(&cluster);
    // Archives larger than what the object server checks before answering, so it
    // streams them and the proxy is the one to find a damaged fragment.
    let late = body_of(80 * SEGMENT + 7, 5);
    let r = ours.put("ec/late", late.clone()).await;
    assert_eq!(r.status(), 201, "PUT with one node down");
    let late_hash = durable_indexes(&cluster)
        .into_keys()
        .find(|h| !before.contains_key(h))
        .unwrap();
    objects.push(("late".to_string(), late.clone()));

    // A damaged fragment header in the middle of one archive (node 0's): a GET that
    // reads from node 0 replaces that source at that segment with the fifth node and
    // still gives the whole object.
    let node0 = data_files(cluster.dir.path())
        .into_iter()
        .find(|f| {
            f.to_string_lossy().contains(&late_hash) && f.to_string_lossy().contains("/node0/")
        })
        .unwrap();
    let pristine = std::fs::read(&node0).unwrap();
    let mut bytes = pristine.clone();
    let fragment = 80 + SEGMENT / 4; // header + a quarter of a segment
    bytes[10 * fragment + 30] ^= 0x40;
    std::fs::write(&node0, &bytes).unwrap();
    let log = cluster.dir.path().join("log/ringsmith-proxy.log");
    let mut replaced = false;
    for _ in 0..8 {
        let r = ours.get("ec/late", &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &late[..],
            "GET past a damaged fragment"
        );
        if std::fs::read_to_string(&log)
            .unwrap()
            .contains("replacing a fragment source")
        {
            replaced = true;
            break;
        }
    }
    // Node 0's object server may also catch the damage itself: it checks the archive's
    // md5 before sending the last piece, quarantines it and fails that body, which the
    // proxy handles the same way (another source from that segment on).
    let quarantined = !node0.exists();
    assert!(
        replaced || quarantined,
        "no GET read node 0's archive (or none replaced it), and it was not quarantined"
    );
    if quarantined {
        // Put the quarantined hash directory back (its files keep their xattrs):
        // <dev>/<objects-N>/<part>/<suffix>/<hash>/<file> went to
        // <dev>/quarantined/<objects-N>/<hash>.
        let hash_dir = node0.parent().unwrap();
        let objects = hash_dir.ancestors().nth(3).unwrap();
        let dev = objects.parent().unwrap();
        let from = dev
            .join("quarantined")
            .join(objects.file_name().unwrap())
            .join(hash_dir.file_name().unwrap());
        std::fs::rename(&from, hash_dir).unwrap();
    }
    std::fs::write(&node0, &pristine).unwrap();
    // Two down (m): every object still reads back whole, from either proxy.
    cluster.kill_node(4);
    for (name, body) in &objects {
        let r = ours.get(&format!("ec/{name}"), &[]).await;
        assert_eq!(r.status(), 200, "GET {name} with 2 nodes down");
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &body[..],
            "GET {name} with 2 nodes down"
        );
        let r = swift.get(&format!("ec/{name}"), &[]).await;
        assert_eq!(&r.bytes().await.unwrap()[..], &body[..], "Swift GET {name}");
    }
    let r = ours
        .get(
            "ec/late",
            &[("range", &format!("bytes={}-{}", SEGMENT, SEGMENT + 10))],
        )
        .await;
    assert_eq!(r.status(), 206);
    // ...but a PUT cannot reach the quorum with 4 of 6 nodes: 503, as Swift.
    let r = ours.put("ec/too-few", body_of(100, 1)).await;
    assert_eq!(r.status(), 503, "PUT with two nodes down");
    let r = swift.put("ec/too-few", body_of(100, 1)).await;
    assert_eq!(r.status(), 503, "Swift's PUT with two nodes down");

    // A fragment archive whose first fragment header is damaged (its metadata checksum
    // no longer matches) is refused: with 4 of 6 nodes up every read of "late" needs
    // it, and the download fails instead of giving wrong bytes.
    let victim = data_files(cluster.dir.path())
        .into_iter()
        .find(|f| {
            let p = f.to_string_lossy();
            p.contains(&late_hash) && !p.contains("/node2/") && !p.contains("/node4/")
        })
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[30] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let r = ours.get("ec/late", &[]).await;
    let status = r.status();
    assert_eq!(status, 200);
    if let Ok(b) = r.bytes().await {
        panic!(
            "a damaged fragment gave a complete body ({} bytes)",
            b.len()
        );
    }
}

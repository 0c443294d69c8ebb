//! Large objects on `ringsmith cluster up`, through the real binaries: python-swiftclient's
//! segmented uploads (DLO and SLO, from a file and from stdin), downloads compared by MD5,
//! deletes that take the segments along; then the SLO middleware's answers to bad
//! manifests and changed segments over raw HTTP, and its `/info` and start-up checks.

mod cluster_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cluster_support::{
    check_listeners, free_base, free_port, header, http, ringsmith, server_bin, text, Down,
};
use md5::Digest;

struct Cluster {
    _guard: Down,
    dir: std::path::PathBuf,
    tmp: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn up() -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let port = free_port("127.0.0.1");
        let base = free_base();
        let guard = Down(dir.clone());
        let up = ringsmith()
            .args(["cluster", "up", "--nodes", "1", "--dir"])
            .arg(&dir)
            .args([
                "--proxy-port",
                &port.to_string(),
                "--base-port",
                &base.to_string(),
            ])
            .arg("--server-bin")
            .arg(server_bin())
            .output()
            .unwrap();
        assert!(up.status.success(), "cluster up failed:\n{}", text(&up));
        check_listeners(&dir);
        Cluster {
            _guard: guard,
            dir,
            tmp,
            port,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn swift(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(ringsmith_testkit::swift_bin("swift"))
            .args(["-A", &format!("http://{}/auth/v1.0", self.addr())])
            .args(["-U", "test:tester", "-K", "testing"])
            .args(args)
            .current_dir(self.tmp.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(data) = stdin {
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.swift(args, None);
        assert!(o.status.success(), "swift {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn token(&self) -> String {
        let (s, head, _) = http(
            &self.addr(),
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
            b"",
        );
        assert_eq!(s, 200, "{head}");
        header(&head, "x-auth-token").unwrap().to_string()
    }
}

/// Deterministic bytes no two segments share.
fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

fn file_md5(p: &Path) -> String {
    md5_hex(&std::fs::read(p).unwrap())
}

#[test]
fn swiftclient_segmented_uploads_round_trip_and_delete_their_segments() {
    let c = Cluster::up();
    let big = data(3 * 1024 * 1024 + 512 * 1024);
    std::fs::write(c.tmp.path().join("big.bin"), &big).unwrap();
    let want = md5_hex(&big);

    // DLO: four segments and a manifest naming their prefix.
    c.ok(&[
        "upload",
        "--segment-size",
        "1M",
        "--use-dlo",
        "dlo",
        "big.bin",
    ]);
    let st = c.ok(&["stat", "dlo", "big.bin"]);
    assert!(st.contains("Manifest: dlo_segments/big.bin/"), "{st}");
    assert_eq!(c.ok(&["list", "dlo_segments"]).lines().count(), 4);
    c.ok(&["download", "dlo", "big.bin", "-o", "dlo.out"]);
    assert_eq!(file_md5(&c.tmp.path().join("dlo.out")), want);

    // SLO, asked for and by default (the cluster's /info offers slo).
    for (container, extra) in [("slo", Some("--use-slo")), ("slo2", None)] {
        let mut args = vec!["upload", "--segment-size", "1M"];
        args.extend(extra);
        args.extend([container, "big.bin"]);
        c.ok(&args);
        let st = c.ok(&["stat", container, "big.bin"]);
        assert!(st.contains("Content Length: 3670016"), "{st}");
        let (s, head, body) = http(
            &c.addr(),
            "GET",
            &format!("/v1/AUTH_test/{container}/big.bin"),
            &[("X-Auth-Token", &c.token())],
            b"",
        );
        assert_eq!(s, 200, "{head}");
        assert_eq!(
            header(&head, "x-static-large-object"),
            Some("True"),
            "{head}"
        );
        assert_eq!(md5_hex(&body), want);
        c.ok(&["download", container, "big.bin", "-o", "slo.out"]);
        assert_eq!(file_md5(&c.tmp.path().join("slo.out")), want);
    }
    let segs = format!("{}_segments", "slo");
    assert_eq!(c.ok(&["list", &segs]).lines().count(), 4);

    // From stdin: python-swiftclient segments the stream and writes an SLO manifest.
    let o = c.swift(
        &[
            "upload",
            "--segment-size",
            "1M",
            "--object-name",
            "piped.bin",
            "pipe",
            "-",
        ],
        Some(&big),
    );
    assert!(o.status.success(), "upload from stdin: {}", text(&o));
    let (s, head, body) = http(
        &c.addr(),
        "GET",
        "/v1/AUTH_test/pipe/piped.bin",
        &[("X-Auth-Token", &c.token())],
        b"",
    );
    assert_eq!(s, 200, "{head}");
    assert_eq!(
        header(&head, "x-static-large-object"),
        Some("True"),
        "{head}"
    );
    assert_eq!(md5_hex(&body), want);

    // Deleting a segmented object deletes its segments.
    c.ok(&["delete", "slo", "big.bin"]);
    assert_eq!(c.ok(&["list", "slo_segments"]).trim(), "");
    c.ok(&["delete", "dlo", "big.bin"]);
    assert_eq!(c.ok(&["list", "dlo_segments"]).trim(), "");
    let gone = c.swift(&["stat", "slo", "big.bin"], None);
    assert!(!gone.status.success());
}

#[test]
fn slo_bad_manifests_and_changed_segments_get_swifts_answers() {
    let c = Cluster::up();
    let addr = c.addr();
    let tok = c.token();
    let auth = [("X-Auth-Token", tok.as_str())];
    let req = |method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut h = auth.to_vec();
        h.extend_from_slice(extra);
        http(&addr, method, path, &h, body)
    };
    assert_eq!(req("PUT", "/v1/AUTH_test/c", &[], b"").0, 201);
    let seg_a = vec![b'a'; 1024 * 1024];
    let seg_b = vec![b'b'; 1024 * 1024];
    assert_eq!(req("PUT", "/v1/AUTH_test/c/a", &[], &seg_a).0, 201);
    assert_eq!(req("PUT", "/v1/AUTH_test/c/b", &[], &seg_b).0, 201);
    let (ea, eb) = (md5_hex(&seg_a), md5_hex(&seg_b));

    // Each bad manifest: Swift's status and body, and no object afterwards.
    let put = |body: String| {
        req(
            "PUT",
            "/v1/AUTH_test/c/m?multipart-manifest=put",
            &[],
            body.as_bytes(),
        )
    };
    let cases = [
        (
            "not json".to_string(),
            400,
            "Manifest must be valid JSON.\n".to_string(),
        ),
        (
            r#"[{"path": "/c/a", "bogus": 1}]"#.to_string(),
            400,
            "Index 0: extraneous keys \"bogus\"\n".to_string(),
        ),
        (
            r#"[{"path": "/c/nope"}]"#.to_string(),
            400,
            "Errors:\n/c/nope, 404 Not Found\n".to_string(),
        ),
        (
            format!(r#"[{{"path": "/c/a", "etag": "{eb}"}}]"#),
            400,
            "Errors:\n/c/a, Etag Mismatch\n".to_string(),
        ),
        (
            r#"[{"path": "/c/a", "size_bytes": 5}]"#.to_string(),
            400,
            "Errors:\n/c/a, Size Mismatch\n".to_string(),
        ),
    ];
    for (manifest, status, body) in cases {
        let (s, head, got) = put(manifest.clone());
        assert_eq!(s, status, "{manifest}: {head}");
        assert_eq!(String::from_utf8_lossy(&got), body, "{manifest}");
        assert_eq!(
            req("HEAD", "/v1/AUTH_test/c/m", &[], b"").0,
            404,
            "{manifest}"
        );
    }

    // A good manifest: the SLO's ETag is the MD5 of its segments' ETags.
    let manifest = format!(
        r#"[{{"path": "/c/a", "etag": "{ea}", "size_bytes": 1048576}}, {{"path": "/c/b", "etag": "{eb}"}}]"#
    );
    let (s, head, _) = put(manifest);
    assert_eq!(s, 201, "{head}");
    let slo_etag = md5_hex(format!("{ea}{eb}").as_bytes());
    assert_eq!(
        header(&head, "etag"),
        Some(format!("\"{slo_etag}\"").as_str())
    );
    let (s, head, _) = req("HEAD", "/v1/AUTH_test/c/m", &[], b"");
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-length"), Some("2097152"));

    // A range across the segment boundary, and two ranges as multipart/byteranges.
    let (s, head, body) = req(
        "GET",
        "/v1/AUTH_test/c/m",
        &[("Range", "bytes=1048574-1048577")],
        b"",
    );
    assert_eq!(s, 206, "{head}");
    assert_eq!(body, b"aabb");
    assert_eq!(
        header(&head, "content-range"),
        Some("bytes 1048574-1048577/2097152")
    );
    let (s, head, body) = req(
        "GET",
        "/v1/AUTH_test/c/m",
        &[("Range", "bytes=0-1,-2")],
        b"",
    );
    assert_eq!(s, 206, "{head}");
    let ctype = header(&head, "content-type").unwrap();
    let boundary = ctype.split("boundary=").nth(1).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("Content-Range: bytes 0-1/2097152\r\n\r\naa\r\n"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 2097150-2097151/2097152\r\n\r\nbb\r\n"),
        "{body}"
    );
    assert!(body.ends_with(&format!("--{boundary}--")), "{body}");
    // Conditions are the SLO's ETag's.
    let quoted = format!("\"{slo_etag}\"");
    assert_eq!(
        req(
            "GET",
            "/v1/AUTH_test/c/m",
            &[("If-None-Match", &quoted)],
            b""
        )
        .0,
        304
    );
    assert_eq!(
        req("GET", "/v1/AUTH_test/c/m", &[("If-Match", &quoted)], b"").0,
        200
    );

    // The first segment changed: 409 before any byte. A later one: the body stops short.
    assert_eq!(req("PUT", "/v1/AUTH_test/c/b", &[], b"changed").0, 201);
    let (s, head, body) = req("GET", "/v1/AUTH_test/c/m", &[], b"");
    assert_eq!(s, 200, "{head}");
    assert_eq!(header(&head, "content-length"), Some("2097152"));
    assert!(
        body.len() <= 1024 * 1024,
        "a changed segment was served: {} bytes",
        body.len()
    );
    assert_eq!(req("PUT", "/v1/AUTH_test/c/a", &[], b"changed").0, 201);
    assert_eq!(req("GET", "/v1/AUTH_test/c/m", &[], b"").0, 409);
    // A missing first segment is the same conflict.
    assert_eq!(req("DELETE", "/v1/AUTH_test/c/a", &[], b"").0, 204);
    assert_eq!(req("GET", "/v1/AUTH_test/c/m", &[], b"").0, 409);
    let log = std::fs::read_to_string(c.dir.join("log/proxy.log")).unwrap();
    assert!(
        log.contains("Object segment no longer valid"),
        "the proxy logs why"
    );

    // The manifest itself, in both formats.
    let (s, head, body) = req("GET", "/v1/AUTH_test/c/m?multipart-manifest=get", &[], b"");
    assert_eq!(s, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("application/json; charset=utf-8")
    );
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored[0]["name"], "/c/a");
    assert_eq!(stored[0]["hash"], ea);
    let (_, _, raw) = req(
        "GET",
        "/v1/AUTH_test/c/m?multipart-manifest=get&format=raw",
        &[],
        b"",
    );
    let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(raw[1]["path"], "/c/b");
    assert_eq!(raw[1]["size_bytes"], 1048576);

    // The listing shows the manifest's size as the SLO's, and both ETags.
    let (_, _, listing) = req("GET", "/v1/AUTH_test/c?format=json", &[], b"");
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    let m = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "m")
        .unwrap();
    assert_eq!(m["bytes"], 2097152);
    assert_eq!(m["slo_etag"], quoted.as_str());

    // The SLO flag is the middleware's to set.
    let (s, _, body) = req(
        "POST",
        "/v1/AUTH_test/c/m",
        &[("X-Static-Large-Object", "True")],
        b"",
    );
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&body).contains("reserved header"));

    // DELETE ?multipart-manifest=delete: segments, then the manifest, reported as JSON.
    let (s, _, body) = req(
        "DELETE",
        "/v1/AUTH_test/c/m?multipart-manifest=delete",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(s, 200);
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // `a` was deleted above: two deleted (b and the manifest), one not found.
    assert_eq!(report["Number Deleted"], 2, "{report}");
    assert_eq!(report["Number Not Found"], 1, "{report}");
    assert_eq!(report["Response Status"], "200 OK");
    for o in ["a", "b", "m"] {
        assert_eq!(
            req("HEAD", &format!("/v1/AUTH_test/c/{o}"), &[], b"").0,
            404
        );
    }
}

#[test]
fn slo_limits_are_in_info_and_bad_values_stop_the_proxy() {
    let c = Cluster::up();
    let (s, _, body) = http(&c.addr(), "GET", "/info", &[], b"");
    assert_eq!(s, 200);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let slo = &info["slo"];
    assert_eq!(slo["max_manifest_segments"], 1000);
    assert_eq!(slo["max_manifest_size"], 8 * 1024 * 1024);
    assert_eq!(slo["min_segment_size"], 1);
    assert_eq!(slo["yield_frequency"], 10);
    assert_eq!(slo["allow_async_delete"], true);

    let conf = c.dir.join("etc/proxy-server.conf");
    let text_conf = std::fs::read_to_string(&conf).unwrap();
    let bad = text_conf.replace(
        "[filter:slo]\nuse = egg:swift#slo\n",
        "[filter:slo]\nuse = egg:swift#slo\nmax_manifest_segments = lots\n",
    );
    assert_ne!(
        bad, text_conf,
        "the cluster's proxy config has a [filter:slo] section"
    );
    let bad_conf = c.tmp.path().join("bad-proxy.conf");
    std::fs::write(&bad_conf, bad).unwrap();
    let out = Command::new(server_bin())
        .arg("proxy")
        .arg("-c")
        .arg(&bad_conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("filter:slo") && err.contains("max_manifest_segments") && err.contains("lots"),
        "{err}"
    );
}

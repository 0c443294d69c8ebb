//! The proxy's middleware pipeline through the real binary: what `[pipeline:main]` loads
//! is what `/info` offers, a pipeline Ringsmith cannot build stops the proxy at start
//! with a message naming the filter and option, and the quota middlewares refuse an
//! upload past a quota without storing anything.

mod proxy_common;

use std::process::{Command, Stdio};

use proxy_common::{login, send, Cluster, Storage};
use reqwest::{Client, StatusCode};

/// Starts a proxy on `conf_text` and expects it to refuse, returning what it said.
fn refused_start(c: &Cluster, name: &str, conf_text: &str) -> String {
    let conf = c.etc().join(format!("{name}.conf"));
    std::fs::write(&conf, conf_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"))
        .args(["proxy", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{name}: the proxy started");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_info_start_errors_and_quotas() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();

    // /info: the loaded middlewares, and only those.
    let info: serde_json::Value = http
        .get(format!("{base}/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for loaded in [
        "swift",
        "tempauth",
        "bulk_delete",
        "bulk_upload",
        "copy",
        "dlo",
        "container_quotas",
        "account_quotas",
        "tempurl",
        "formpost",
    ] {
        assert!(info.get(loaded).is_some(), "/info lacks {loaded}: {info}");
    }
    assert_eq!(info["symlink"]["symloop_max"], 2);
    assert_eq!(
        info["versioned_writes"]["allowed_flags"],
        serde_json::json!(["x-versions-location", "x-history-location"])
    );
    // tempurl's section, with Swift's defaults.
    assert_eq!(
        info["tempurl"],
        serde_json::json!({
            "methods": ["GET", "HEAD", "PUT", "POST", "DELETE"],
            "incoming_remove_headers": ["x-timestamp", "x-open-expired"],
            "incoming_allow_headers": [],
            "outgoing_remove_headers": ["x-object-meta-*"],
            "outgoing_allow_headers": ["x-object-meta-public-*"],
            "allowed_digests": ["sha1", "sha256", "sha512"],
            "deprecated_digests": ["sha1"],
        })
    );
    assert_eq!(
        info["formpost"],
        serde_json::json!({
            "allowed_digests": ["sha1", "sha256", "sha512"],
            "deprecated_digests": ["sha1"],
        })
    );
    assert!(info.get("staticweb").is_some());
    for absent in ["slo", "object_versioning"] {
        assert!(info.get(absent).is_none(), "/info offers {absent}: {info}");
    }
    assert_eq!(info["dlo"]["max_get_time"], 86400);
    // healthcheck is in this pipeline.
    let r = http
        .get(format!("{base}/healthcheck"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "OK");

    // Pipelines the proxy cannot build: each refusal names what is wrong.
    let good = c.proxy_conf("");
    let unknown = good.replacen("pipeline = catch_errors", "pipeline = catch_errors wat", 1)
        + "\n[filter:wat]\nuse = egg:swift#no_such_middleware\n";
    let said = refused_start(&c, "unknown", &unknown);
    assert!(
        said.contains("\"wat\"") && said.contains("no_such_middleware"),
        "{said}"
    );
    let missing = good.replacen(
        "pipeline = catch_errors",
        "pipeline = catch_errors nosection",
        1,
    );
    let said = refused_start(&c, "missing", &missing);
    assert!(said.contains("[filter:nosection]"), "{said}");
    let bad_value = good.replacen(
        "[filter:dlo]\nuse = egg:swift#dlo\n",
        "[filter:dlo]\nuse = egg:swift#dlo\nmax_get_time = soon\n",
        1,
    );
    let said = refused_start(&c, "bad_value", &bad_value);
    assert!(
        said.contains("[filter:dlo]") && said.contains("max_get_time"),
        "{said}"
    );

    // Container quotas.
    let (owner, url) = login(&base, "test:tester", "testing").await;
    let (reader, _) = login(&base, "test:tester3", "testing3").await;
    let cq = format!("{url}/cq");
    assert_eq!(
        send(&http, "PUT", &cq, &owner, &[], "").await.status(),
        StatusCode::CREATED
    );
    let r = send(
        &http,
        "POST",
        &cq,
        &owner,
        &[("x-container-meta-quota-bytes", "ten")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.text().await.unwrap(), "Invalid bytes quota.");
    let r = send(
        &http,
        "POST",
        &cq,
        &owner,
        &[("x-container-meta-quota-count", "-1")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.text().await.unwrap(), "Invalid count quota.");
    let r = send(
        &http,
        "POST",
        &cq,
        &owner,
        &[("x-container-meta-quota-bytes", "10")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        &http,
        "PUT",
        &format!("{cq}/big"),
        &owner,
        &[],
        "eleven bytes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.text().await.unwrap(), "Upload exceeds quota.");
    let r = send(&http, "HEAD", &format!("{cq}/big"), &owner, &[], "").await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a refused upload stored nothing"
    );
    // Someone who may not write there hears that, not about the quota.
    let r = send(
        &http,
        "PUT",
        &format!("{cq}/big"),
        &reader,
        &[],
        "eleven bytes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&http, "PUT", &format!("{cq}/small"), &owner, &[], "five!").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A copy is an upload like any other.
    let r = send(
        &http,
        "PUT",
        &format!("{cq}/copy"),
        &owner,
        &[("x-copy-from", "cq/small"), ("content-length", "0")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED, "5 + 5 bytes fit in 10");

    // Account quotas: only a reseller admin sets them; then they bind.
    let (admin, _) = login(&base, "admin:admin", "admin").await;
    let r = send(
        &http,
        "POST",
        &url,
        &owner,
        &[("x-account-quota-bytes", "100")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        &http,
        "POST",
        &url,
        &admin,
        &[("x-account-quota-bytes", "lots")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(
        &http,
        "POST",
        &url,
        &admin,
        &[("x-account-quota-bytes", "12")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&http, "HEAD", &url, &owner, &[], "").await;
    assert_eq!(r.headers()["x-account-quota-bytes"], "12");
    assert!(!r.headers().keys().any(|k| k.as_str().contains("sysmeta")));
    let ca = format!("{url}/ca");
    assert_eq!(
        send(&http, "PUT", &ca, &owner, &[], "").await.status(),
        StatusCode::CREATED
    );
    let r = send(
        &http,
        "PUT",
        &format!("{ca}/o"),
        &owner,
        &[],
        "more than twelve bytes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.text().await.unwrap(), "Upload exceeds quota.");
    let r = send(
        &http,
        "POST",
        &url,
        &admin,
        &[("x-remove-account-quota-bytes", "x")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        &http,
        "PUT",
        &format!("{ca}/o"),
        &owner,
        &[],
        "more than twelve bytes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A client cannot write the sysmeta behind a quota directly: the gatekeeper drops it.
    let r = send(
        &http,
        "POST",
        &url,
        &owner,
        &[("x-account-sysmeta-quota-bytes", "1")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&http, "HEAD", &url, &owner, &[], "").await;
    assert!(r.headers().get("x-account-quota-bytes").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_follow_list_and_refuse_what_swift_refuses() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();
    let (owner, url) = login(&base, "test:tester", "testing").await;
    for cont in ["c", "links"] {
        let r = send(&http, "PUT", &format!("{url}/{cont}"), &owner, &[], "").await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = send(
        &http,
        "PUT",
        &format!("{url}/c/target"),
        &owner,
        &[],
        "target bytes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let target_etag = r.headers()["etag"].to_str().unwrap().to_string();

    // A dynamic link reads as its target.
    let link = format!("{url}/links/dyn");
    let r = send(
        &http,
        "PUT",
        &link,
        &owner,
        &[("x-symlink-target", "c/target")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(&http, "GET", &link, &owner, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let location = r.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(location.ends_with("/c/target"), "{location}");
    assert_eq!(r.text().await.unwrap(), "target bytes");
    let r = send(&http, "GET", &link, &owner, &[("range", "bytes=0-5")], "").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.text().await.unwrap(), "target");
    let r = send(
        &http,
        "HEAD",
        &format!("{link}?symlink=get"),
        &owner,
        &[],
        "",
    )
    .await;
    assert_eq!(r.headers()["x-symlink-target"], "c/target");
    assert_eq!(r.headers()["content-type"], "application/symlink");
    assert!(!r.headers().keys().any(|k| k.as_str().contains("sysmeta")));

    // Static links check the etag when made and when read.
    let r = send(
        &http,
        "PUT",
        &format!("{url}/links/bad-static"),
        &owner,
        &[
            ("x-symlink-target", "c/target"),
            ("x-symlink-target-etag", "0123"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = send(
        &http,
        "PUT",
        &format!("{url}/links/static"),
        &owner,
        &[
            ("x-symlink-target", "c/target"),
            ("x-symlink-target-etag", &target_etag),
        ],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &http,
        "PUT",
        &format!("{url}/c/target"),
        &owner,
        &[],
        "changed",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &http,
        "GET",
        &format!("{url}/links/static"),
        &owner,
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = send(&http, "GET", &link, &owner, &[], "").await;
    assert_eq!(
        r.text().await.unwrap(),
        "changed",
        "a dynamic link follows the change"
    );

    // The listing says what is a link.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = send(
        &http,
        "GET",
        &format!("{url}/links?format=json"),
        &owner,
        &[],
        "",
    )
    .await;
    let listing: serde_json::Value = r.json().await.unwrap();
    let dynamic = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "dyn")
        .expect("dyn listed");
    assert_eq!(dynamic["symlink_path"], "/v1/AUTH_test/c/target");
    assert_eq!(dynamic["hash"], "d41d8cd98f00b204e9800998ecf8427e");

    // Loops end, bodies and self-links are refused, POST is redirected.
    for (from, to) in [("a", "links/b"), ("b", "links/a")] {
        let r = send(
            &http,
            "PUT",
            &format!("{url}/links/{from}"),
            &owner,
            &[("x-symlink-target", to)],
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = send(&http, "GET", &format!("{url}/links/a"), &owner, &[], "").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many levels of symbolic links"));
    let r = send(
        &http,
        "PUT",
        &format!("{url}/links/x"),
        &owner,
        &[("x-symlink-target", "c/target")],
        "body",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(
        &http,
        "PUT",
        &format!("{url}/links/self"),
        &owner,
        &[("x-symlink-target", "links/self")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(
        &http,
        "PUT",
        &format!("{url}/links/y"),
        &owner,
        &[("x-symlink-target", "no-slash")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    // (reqwest would follow the 307 and POST to the target: ask without redirects.)
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = send(
        &no_redirects,
        "POST",
        &link,
        &owner,
        &[("x-object-meta-color", "blue")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()["location"], "/v1/AUTH_test/c/target");

    // Another account's user may not read through a link what they may not read directly.
    let (other, _) = login(&base, "test2:tester2", "testing2").await;
    let r = send(&http, "GET", &link, &other, &[], "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// An archive made by Python's `tarfile` (the venv's), as a user's tool would make it:
/// `members` are (name, content); `c/meta` gets a pax user-metadata attribute.
fn make_archive(dir: &std::path::Path, mode: &str, members: &[(&str, &str)]) -> Vec<u8> {
    let out = dir.join(format!("archive.{}", mode.replace(':', "")));
    let spec = serde_json::to_string(members).unwrap();
    let script = format!(
        "import io, json, tarfile\n\
         t = tarfile.open({out:?}, 'w:{mode}', format=tarfile.PAX_FORMAT)\n\
         for name, data in json.loads({spec:?}):\n\
         \x20   info = tarfile.TarInfo(name)\n\
         \x20   info.size = len(data.encode())\n\
         \x20   if name.endswith('meta'):\n\
         \x20       info.pax_headers = {{'SCHILY.xattr.user.meta.color': 'blue'}}\n\
         \x20   t.addfile(info, io.BytesIO(data.encode()))\n\
         t.close()\n",
        out = out.display().to_string(),
    );
    let py = ringsmith_testkit::swift_venv().join("bin/python");
    let status = Command::new(py).arg("-c").arg(&script).status().unwrap();
    assert!(status.success(), "python tarfile failed");
    std::fs::read(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_archive_uploads_tar_gz_and_bz2() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();
    let (owner, url) = login(&base, "test:tester", "testing").await;
    let work = tempfile::tempdir().unwrap();
    let info: serde_json::Value = http
        .get(format!("{base}/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["bulk_upload"]["max_containers_per_extraction"], 10000);

    for (mode, kind, cont) in [
        ("", "tar", "plain"),
        ("gz", "tar.gz", "gz"),
        ("bz2", "tar.bz2", "bz"),
    ] {
        let archive = make_archive(
            work.path(),
            mode,
            &[
                (&format!("{cont}/a.txt"), "alpha"),
                (&format!("{cont}/dir/b.txt"), "bravo"),
                (&format!("{cont}/meta"), "with metadata"),
                ("top-level-file", "skipped"),
            ],
        );
        let r = http
            .put(format!("{url}?extract-archive={kind}"))
            .header("x-auth-token", &owner)
            .header("accept", "application/json")
            .body(archive)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{kind}");
        let report: serde_json::Value =
            serde_json::from_str(r.text().await.unwrap().trim()).unwrap();
        assert_eq!(report["Response Status"], "201 Created", "{kind}: {report}");
        assert_eq!(report["Number Files Created"], 3, "{kind}: {report}");
        let r = send(
            &http,
            "GET",
            &format!("{url}/{cont}/dir/b.txt"),
            &owner,
            &[],
            "",
        )
        .await;
        assert_eq!(r.text().await.unwrap(), "bravo", "{kind}");
        let r = send(
            &http,
            "HEAD",
            &format!("{url}/{cont}/meta"),
            &owner,
            &[],
            "",
        )
        .await;
        assert_eq!(r.headers()["x-object-meta-color"], "blue", "{kind}");
        assert_eq!(r.headers()["content-length"], "13");
    }

    // Into a container and prefix given by the path.
    let archive = make_archive(work.path(), "", &[("sub/x", "ex")]);
    let r = http
        .put(format!("{url}/gz/pre?extract-archive=tar"))
        .header("x-auth-token", &owner)
        .body(archive)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("Number Files Created: 1"), "{text}");
    let r = send(
        &http,
        "GET",
        &format!("{url}/gz/pre/sub/x"),
        &owner,
        &[],
        "",
    )
    .await;
    assert_eq!(r.text().await.unwrap(), "ex");

    // Bad input: the report says so, and nothing is created from a corrupt archive.
    let r = http
        .put(format!("{url}?extract-archive=zip"))
        .header("x-auth-token", &owner)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.text().await.unwrap(), "Unsupported archive format");
    let mut corrupt = make_archive(work.path(), "", &[("bad/one", "1")]);
    corrupt[10] ^= 0xff;
    let r = http
        .put(format!("{url}?extract-archive=tar"))
        .header("x-auth-token", &owner)
        .body(corrupt)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("Response Status: 400 Bad Request"), "{text}");
    assert!(text.contains("Invalid Tar File"), "{text}");
    let r = send(&http, "HEAD", &format!("{url}/bad"), &owner, &[], "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Someone else's account: refused as a whole.
    let (other, _) = login(&base, "test2:tester2", "testing2").await;
    let archive = make_archive(work.path(), "", &[("theirs/o", "x")]);
    let r = http
        .put(format!("{url}?extract-archive=tar"))
        .header("x-auth-token", &other)
        .body(archive)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains("201 Created"), "{text}");
    let r = send(&http, "HEAD", &format!("{url}/theirs"), &owner, &[], "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn body(http: &Client, url: &str, token: &str) -> (StatusCode, String) {
    let r = send(http, "GET", url, token, &[], "").await;
    (r.status(), r.text().await.unwrap())
}

async fn listing(http: &Client, url: &str, token: &str) -> Vec<serde_json::Value> {
    let r = send(http, "GET", &format!("{url}?format=json"), token, &[], "").await;
    if r.status() == StatusCode::NO_CONTENT {
        return Vec::new();
    }
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_writes_stack_and_history() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();
    let (owner, url) = login(&base, "test:tester", "testing").await;
    for cont in ["stack", "archive", "hist", "harchive"] {
        let r = send(&http, "PUT", &format!("{url}/{cont}"), &owner, &[], "").await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = send(
        &http,
        "POST",
        &format!("{url}/stack"),
        &owner,
        &[("x-versions-location", "archive")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&http, "HEAD", &format!("{url}/stack"), &owner, &[], "").await;
    assert_eq!(r.headers()["x-versions-location"], "archive");
    assert!(!r.headers().keys().any(|k| k.as_str().contains("sysmeta")));

    // Stack mode: each overwrite archives the old version; DELETE pops it back.
    let obj = format!("{url}/stack/obj");
    for v in ["v1", "v2", "v3"] {
        assert_eq!(
            send(&http, "PUT", &obj, &owner, &[], v).await.status(),
            StatusCode::CREATED
        );
    }
    let archived = listing(&http, &format!("{url}/archive"), &owner).await;
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(archived
        .iter()
        .all(|e| e["name"].as_str().unwrap().starts_with("003obj/")));
    assert_eq!(
        body(&http, &obj, &owner).await,
        (StatusCode::OK, "v3".into())
    );
    assert!(send(&http, "DELETE", &obj, &owner, &[], "")
        .await
        .status()
        .is_success());
    assert_eq!(
        body(&http, &obj, &owner).await,
        (StatusCode::OK, "v2".into())
    );
    assert!(send(&http, "DELETE", &obj, &owner, &[], "")
        .await
        .status()
        .is_success());
    assert_eq!(
        body(&http, &obj, &owner).await,
        (StatusCode::OK, "v1".into())
    );
    assert!(send(&http, "DELETE", &obj, &owner, &[], "")
        .await
        .status()
        .is_success());
    assert_eq!(body(&http, &obj, &owner).await.0, StatusCode::NOT_FOUND);
    assert!(listing(&http, &format!("{url}/archive"), &owner)
        .await
        .is_empty());

    // History mode: DELETE archives and leaves a marker; the object is gone.
    let r = send(
        &http,
        "PUT",
        &format!("{url}/hist"),
        &owner,
        &[("x-history-location", "harchive")],
        "",
    )
    .await;
    assert!(r.status().is_success());
    let hobj = format!("{url}/hist/doc");
    for v in ["one", "two"] {
        assert_eq!(
            send(&http, "PUT", &hobj, &owner, &[], v).await.status(),
            StatusCode::CREATED
        );
    }
    assert!(send(&http, "DELETE", &hobj, &owner, &[], "")
        .await
        .status()
        .is_success());
    assert_eq!(body(&http, &hobj, &owner).await.0, StatusCode::NOT_FOUND);
    let history = listing(&http, &format!("{url}/harchive"), &owner).await;
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(types[2], "application/x-deleted;swift_versions_deleted=1");
    let first = history[0]["name"].as_str().unwrap();
    assert_eq!(
        body(&http, &format!("{url}/harchive/{first}"), &owner)
            .await
            .1,
        "one"
    );

    // Bad settings are refused; an unauthorized writer archives nothing.
    let r = send(
        &http,
        "POST",
        &format!("{url}/stack"),
        &owner,
        &[("x-versions-location", "a"), ("x-history-location", "b")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(
        &http,
        "POST",
        &format!("{url}/stack"),
        &owner,
        &[("x-versions-location", "a/b")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        send(&http, "PUT", &obj, &owner, &[], "mine").await.status(),
        StatusCode::CREATED
    );
    let (other, _) = login(&base, "test2:tester2", "testing2").await;
    let r = send(&http, "PUT", &obj, &other, &[], "theirs").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(listing(&http, &format!("{url}/archive"), &owner)
        .await
        .is_empty());
    // Removing the setting stops the archiving.
    let r = send(
        &http,
        "POST",
        &format!("{url}/stack"),
        &owner,
        &[("x-remove-versions-location", "x")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&http, "HEAD", &format!("{url}/stack"), &owner, &[], "").await;
    assert!(r.headers().get("x-versions-location").is_none());
    assert_eq!(
        send(&http, "PUT", &obj, &owner, &[], "again")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert!(listing(&http, &format!("{url}/archive"), &owner)
        .await
        .is_empty());
}

/// python-swiftclient sets versioning with `swift post -H`, and the archive behaves as the
/// headers promise: an overwrite keeps the old bytes, a delete brings them back.
#[test]
fn swiftclient_posts_versioning_headers() {
    let c = Cluster::start_with(Storage::Ringsmith, 1, "");
    let swift = |args: &[&str]| c.swift_ok(args);
    swift(&["post", "archive"]);
    swift(&["post", "docs", "-H", "X-Versions-Location: archive"]);
    let stat = swift(&["stat", "docs"]);
    assert!(stat.contains("archive"), "{stat}");
    let file = c.dir.path().join("report.txt");
    std::fs::write(&file, "first draft").unwrap();
    swift(&["upload", "docs", "report.txt"]);
    std::fs::write(&file, "final text").unwrap();
    swift(&["upload", "docs", "report.txt"]);
    let archived = swift(&["list", "archive"]);
    assert_eq!(archived.lines().count(), 1, "{archived}");
    assert!(archived.starts_with("00areport.txt/"), "{archived}");
    swift(&["delete", "docs", "report.txt"]);
    swift(&["download", "docs", "report.txt", "-o", "restored.txt"]);
    assert_eq!(
        std::fs::read_to_string(c.dir.path().join("restored.txt")).unwrap(),
        "first draft"
    );
    assert_eq!(swift(&["list", "archive"]).trim(), "");
}

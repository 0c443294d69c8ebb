//! Object versioning (`allow_object_versioning = true`) through the real binaries: a
//! Ringsmith proxy on Ringsmith storage nodes, driven by python-swiftclient's `swift` CLI
//! and its `Connection` as users drive Swift: enable versioning, overwrite, list the
//! versions, read an old one, restore it, delete, and clean up. The reserved namespace the
//! versions live in stays out of clients' reach.

mod proxy_common;

use std::process::{Command, Stdio};

use proxy_common::{login, send, Cluster, Storage};
use reqwest::{Client, StatusCode};

const OBJECT_VERSIONING: &str = "[filter:versioned_writes]\nallow_object_versioning = true\n";

/// `swift list --versions` rows as (version id, content type, name).
fn versions(c: &Cluster, container: &str) -> Vec<(String, String, String)> {
    c.swift_ok(&["list", "--versions", container])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 6, "unexpected listing row {l:?}");
            (f[3].to_string(), f[4].to_string(), f[5..].join(" "))
        })
        .collect()
}

/// python-swiftclient's `Connection.put_object(..., query_string="version-id=...")`: the
/// zero-byte PUT that makes an old version current again.
fn restore_with_swiftclient(c: &Cluster, container: &str, object: &str, version: &str) {
    let script = format!(
        "from swiftclient.client import Connection\n\
         c = Connection(authurl='{}/auth/v1.0', user='test:tester', key='testing')\n\
         c.put_object('{container}', '{object}', contents=b'', \
         query_string='version-id={version}')\n",
        c.url()
    );
    let out = Command::new(ringsmith_testkit::swift_venv().join("bin/python3"))
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("run python-swiftclient");
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn swiftclient_versions_overwrite_list_restore_delete() {
    let c = Cluster::start_with(Storage::Ringsmith, 1, OBJECT_VERSIONING);
    let capabilities = c.swift_ok(&["capabilities"]);
    assert!(capabilities.contains("object_versioning"), "{capabilities}");

    c.swift_ok(&["post", "docs", "-H", "X-Versions-Enabled: true"]);
    let stat = c.swift_ok(&["stat", "docs"]);
    assert!(stat.contains("Versions-Enabled: True"), "{stat}");

    let file = c.dir.path().join("report.txt");
    std::fs::write(&file, "first draft").unwrap();
    c.swift_ok(&["upload", "docs", "report.txt"]);
    std::fs::write(&file, "final text, longer").unwrap();
    c.swift_ok(&["upload", "docs", "report.txt"]);

    // One object in the container, two versions of it, newest first.
    let plain = c.swift_ok(&["list", "docs"]);
    assert_eq!(plain.trim(), "report.txt");
    let listed = versions(&c, "docs");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|(_, _, n)| n == "report.txt"));
    let (newest, oldest) = (listed[0].0.clone(), listed[1].0.clone());
    assert!(newest > oldest && oldest != "null", "{listed:?}");

    // The old version reads back by its id; the current one is the newest.
    c.swift_ok(&[
        "download",
        "docs",
        "report.txt",
        "--version-id",
        &oldest,
        "-o",
        "old.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(c.dir.path().join("old.txt")).unwrap(),
        "first draft"
    );
    let current = c.swift_ok(&["stat", "docs", "report.txt"]);
    assert!(current.contains(&newest), "{current}");

    // Restore the first draft: it is current again, and no version was lost.
    restore_with_swiftclient(&c, "docs", "report.txt", &oldest);
    c.swift_ok(&["download", "docs", "report.txt", "-o", "now.txt"]);
    assert_eq!(
        std::fs::read_to_string(c.dir.path().join("now.txt")).unwrap(),
        "first draft"
    );
    assert_eq!(versions(&c, "docs").len(), 2);

    // A delete leaves a delete marker on top; the object is gone, its versions are not.
    c.swift_ok(&["delete", "docs", "report.txt"]);
    let after = versions(&c, "docs");
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[0].1, "application/x-deleted;swift_versions_deleted=1");
    let gone = c.swift(
        "test:tester",
        "testing",
        &["download", "docs", "report.txt", "-o", "-"],
    );
    assert!(!gone.status.success());
    assert_eq!(c.swift_ok(&["list", "docs"]).trim(), "");

    // A container with versions left cannot go; `delete --versions` empties it first.
    let refused = c.swift("test:tester", "testing", &["delete", "docs"]);
    assert!(!refused.status.success());
    c.swift_ok(&["delete", "docs", "report.txt", "--version-id", &newest]);
    assert_eq!(versions(&c, "docs").len(), 2);
    c.swift_ok(&["delete", "--versions", "docs"]);
    assert_eq!(c.swift_ok(&["list"]).trim(), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_names_stay_internal() {
    let c = Cluster::start_with(Storage::Ringsmith, 1, OBJECT_VERSIONING);
    let http = Client::new();
    let (tok, url) = login(&c.url(), "test:tester", "testing").await;
    let r = send(
        &http,
        "PUT",
        &format!("{url}/c"),
        &tok,
        &[("x-versions-enabled", "true")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(&http, "HEAD", &format!("{url}/c"), &tok, &[], "").await;
    assert_eq!(r.headers()["x-versions-enabled"], "True");
    let r = send(&http, "PUT", &format!("{url}/c/o"), &tok, &[], "v1").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v1 = r.headers()["x-object-version-id"]
        .to_str()
        .unwrap()
        .to_string();
    let r = send(&http, "PUT", &format!("{url}/c/o"), &tok, &[], "v2-longer").await;
    let v2 = r.headers()["x-object-version-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(v2 > v1);

    // Clients cannot name the versions container, even with the backend header (the
    // gatekeeper drops it); the account listing never shows it.
    for path in ["%00versions%00c", "%00versions%00c/%00o"] {
        let r = send(
            &http,
            "GET",
            &format!("{url}/{path}"),
            &tok,
            &[("x-backend-allow-reserved-names", "true")],
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED, "{path}");
    }
    let r = send(&http, "GET", &format!("{url}?format=json"), &tok, &[], "").await;
    let listing: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(listing.len(), 1, "{listing:?}");
    assert_eq!(listing[0]["name"], "c");
    // The container's bytes are its links' (none) plus its versions' (2 + 9).
    let r = send(&http, "HEAD", &format!("{url}/c"), &tok, &[], "").await;
    assert_eq!(r.headers()["x-container-bytes-used"], "11");

    // GET answers name the version, as Swift's do.
    let r = send(&http, "GET", &format!("{url}/c/o"), &tok, &[], "").await;
    assert_eq!(r.headers()["x-object-version-id"], v2.as_str());
    let loc = r.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(loc.ends_with(&format!("/c/o?version-id={v2}")), "{loc}");
    assert_eq!(r.text().await.unwrap(), "v2-longer");
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?version-id={v1}"),
        &tok,
        &[],
        "",
    )
    .await;
    assert_eq!(r.text().await.unwrap(), "v1");

    // Swift's errors for bad version requests.
    for (method, query, body, want) in [
        ("GET", "version-id=junk", "", StatusCode::BAD_REQUEST),
        (
            "POST",
            &format!("version-id={v1}")[..],
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            &format!("version-id={v1}")[..],
            "data",
            StatusCode::BAD_REQUEST,
        ),
        ("PUT", "version-id=null", "", StatusCode::BAD_REQUEST),
        (
            "PUT",
            "version-id=1000000000.00000",
            "",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let length: &[(&str, &str)] = if body.is_empty() {
            &[("content-length", "0")]
        } else {
            &[]
        };
        let r = send(
            &http,
            method,
            &format!("{url}/c/o?{query}"),
            &tok,
            length,
            body,
        )
        .await;
        assert_eq!(r.status(), want, "{method} ?{query}");
    }
    let r = send(
        &http,
        "GET",
        &format!("{url}/c?versions"),
        &tok,
        &[("accept", "application/xml")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    let r = send(
        &http,
        "GET",
        &format!("{url}/c?versions&version_marker=1"),
        &tok,
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Another user cannot version their way into a container they may not write.
    let (tok3, _) = login(&c.url(), "test:tester3", "testing3").await;
    let r = send(&http, "PUT", &format!("{url}/c/o"), &tok3, &[], "intruder").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&http, "DELETE", &format!("{url}/c/o"), &tok3, &[], "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(&http, "GET", &format!("{url}/c?versions"), &tok, &[], "").await;
    let all: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["version_id"], v2.as_str());
    assert_eq!(all[0]["is_latest"], true);
    assert_eq!(all[1]["is_latest"], false);
}

/// Swift's own proxy, object versioning on, in front of Ringsmith's storage servers: they
/// take the reserved-namespace names Swift's middleware writes and list them when asked
/// with `X-Backend-Allow-Reserved-Names`.
#[tokio::test(flavor = "multi_thread")]
async fn swift_proxy_versions_on_ringsmith_storage() {
    let mut c = Cluster::start_with(Storage::Ringsmith, 1, "");
    let port = c.start_swift_proxy_with_sections(
        "catch_errors gatekeeper proxy-logging listing_formats tempauth copy dlo \
         versioned_writes symlink proxy-logging",
        "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\n\
         allow_object_versioning = true\n",
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = Client::new();
    let (tok, url) = login(&base, "test:tester", "testing").await;
    let r = send(
        &http,
        "PUT",
        &format!("{url}/c"),
        &tok,
        &[("x-versions-enabled", "true")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(&http, "PUT", &format!("{url}/c/o"), &tok, &[], "old").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let old = r.headers()["x-object-version-id"]
        .to_str()
        .unwrap()
        .to_string();
    let r = send(&http, "PUT", &format!("{url}/c/o"), &tok, &[], "new!").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Container updates into the hidden container reach the container server at once.
    let r = send(
        &http,
        "GET",
        &format!("{url}/c?versions&format=json"),
        &tok,
        &[],
        "",
    )
    .await;
    let all: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["version_id"], old.as_str());
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?version-id={old}"),
        &tok,
        &[],
        "",
    )
    .await;
    assert_eq!(r.text().await.unwrap(), "old");
    // The account listing shows only `c` (Swift's listing_formats would drop a reserved
    // name too; the versions listing above is what needs the storage servers' help).
    let r = send(&http, "GET", &format!("{url}?format=json"), &tok, &[], "").await;
    let names: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(names[0]["name"], "c");
    let r = send(&http, "DELETE", &format!("{url}/c/o"), &tok, &[], "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        &http,
        "GET",
        &format!("{url}/c?versions&format=json"),
        &tok,
        &[],
        "",
    )
    .await;
    let all: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all[0]["content_type"],
        "application/x-deleted;swift_versions_deleted=1"
    );
}

//! Swift behaviours the proxy gained for Swift's functional suite, through the real
//! binaries (a one-node Ringsmith cluster): account ACLs, `X-Remove-*`, bulk delete,
//! `Content-Length: 0` on empty listings, and `WWW-Authenticate` on a 401.

mod proxy_common;

use proxy_common::{login, send, Cluster, Storage};
use reqwest::{Client, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_removals_bulk_delete_and_empty_listings() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();
    let (owner, url) = login(&base, "test:tester", "testing").await;
    let (other, _) = login(&base, "test2:tester2", "testing2").await;

    // An empty account: 204 with Content-Length 0 on GET and HEAD.
    for m in ["GET", "HEAD"] {
        let r = send(&http, m, &url, &owner, &[], "").await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{m}");
        assert_eq!(r.headers()["content-length"], "0", "{m}");
    }
    // 401 names the realm.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Swift realm=\"AUTH_test\"");

    // Account ACLs: invalid is 400; read-only lets test2 list but not write.
    let r = send(
        &http,
        "POST",
        &url,
        &owner,
        &[("x-account-access-control", "{\"boss\":[]}")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let c1 = format!("{url}/c1");
    assert_eq!(
        send(&http, "PUT", &c1, &owner, &[], "").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        send(&http, "GET", &url, &other, &[], "").await.status(),
        StatusCode::FORBIDDEN
    );
    let acl = "{\"read-only\":[\"test2:tester2\"]}";
    let r = send(
        &http,
        "POST",
        &url,
        &owner,
        &[("x-account-access-control", acl)],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(&http, "HEAD", &url, &owner, &[], "").await;
    assert_eq!(r.headers()["x-account-access-control"], acl);
    let r = send(&http, "GET", &url, &other, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !r.headers().contains_key("x-account-access-control"),
        "owners only"
    );
    assert_eq!(
        send(&http, "PUT", &format!("{c1}/o"), &other, &[], "x")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let acl = "{\"read-write\":[\"test2:tester2\"]}";
    send(
        &http,
        "POST",
        &url,
        &owner,
        &[("x-account-access-control", acl)],
        "",
    )
    .await;
    assert_eq!(
        send(&http, "PUT", &format!("{c1}/o"), &other, &[], "x")
            .await
            .status(),
        StatusCode::CREATED
    );

    // X-Remove-Container-Meta-*.
    send(
        &http,
        "POST",
        &c1,
        &owner,
        &[("x-container-meta-test", "v")],
        "",
    )
    .await;
    send(
        &http,
        "POST",
        &c1,
        &owner,
        &[("x-remove-container-meta-test", "x")],
        "",
    )
    .await;
    let r = send(&http, "HEAD", &c1, &owner, &[], "").await;
    assert!(!r.headers().contains_key("x-container-meta-test"));

    // Bulk delete: one object there, one not.
    let r = send(
        &http,
        "POST",
        &format!("{url}?bulk-delete"),
        &owner,
        &[
            ("accept", "application/json"),
            ("content-type", "text/plain"),
        ],
        "c1/o\n/c1/missing\n",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["Number Deleted"], 1);
    assert_eq!(doc["Number Not Found"], 1);
    assert_eq!(doc["Response Status"], "200 OK");
    assert_eq!(
        send(&http, "HEAD", &format!("{c1}/o"), &owner, &[], "")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

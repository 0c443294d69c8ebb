//! Temporary URLs through the real proxy binary, as an attacker would try them: a
//! tempurl grants its object (or prefix) and its method, from its addresses, until it
//! expires, and nothing else. Every altered, expired, misdirected or foreign tempurl is
//! `401 Temp URL invalid`, and never the object (nor a hint that it exists). Keys are the
//! owner's: others neither see nor set them. Signatures here are computed with the
//! `hmac` crate as a client would, not with the proxy's code.

mod proxy_common;

use base64::Engine;
use hmac::{Hmac, Mac};
use proxy_common::{login, Cluster, Storage};
use reqwest::{Client, Method, StatusCode};

const INVALID: &str = "401 Unauthorized: Temp URL invalid\n";
const SECRET: &str = "the secret object";

fn hmac_raw(digest: &str, key: &str, message: &str) -> Vec<u8> {
    macro_rules! run {
        ($d:ty) => {{
            let mut m = Hmac::<$d>::new_from_slice(key.as_bytes()).unwrap();
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }};
    }
    match digest {
        "sha1" => run!(sha1::Sha1),
        "sha256" => run!(sha2::Sha256),
        "sha512" => run!(sha2::Sha512),
        other => panic!("{other}"),
    }
}

/// `temp_url_sig=..&temp_url_expires=..` for `method` on the unquoted `path`.
fn tempurl(method: &str, expires: u64, path: &str, key: &str) -> String {
    let sig = hex::encode(hmac_raw(
        "sha256",
        key,
        &format!("{method}\n{expires}\n{path}"),
    ));
    format!("temp_url_sig={sig}&temp_url_expires={expires}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn send(
    http: &Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &'static str,
) -> reqwest::Response {
    let mut rb = http.request(Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.body(body).send().await.unwrap()
}

/// Asserts a tempurl request was refused as invalid, without the object's content.
async fn assert_invalid(http: &Client, method: &str, url: &str, why: &str) {
    let r = send(http, method, url, None, &[], "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}: {url}");
    let body = r.text().await.unwrap();
    if method != "HEAD" {
        assert_eq!(body, INVALID, "{why}");
    }
    assert!(!body.contains(SECRET), "{why}: leaked the object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempurls_grant_exactly_what_they_sign() {
    let c = tokio::task::spawn_blocking(|| Cluster::start_with(Storage::Ringsmith, 1, ""))
        .await
        .unwrap();
    let base = c.url();
    let http = Client::new();
    let (owner, url) = login(&base, "test:tester", "testing").await;
    let (other, url2) = login(&base, "test2:tester2", "testing2").await;
    let (plain, _) = login(&base, "test:tester3", "testing3").await;
    let acct = url.rsplit('/').next().unwrap().to_string();
    let acct2 = url2.rsplit('/').next().unwrap().to_string();

    // The owner's keys: one on the account, one on container c2 only.
    for (target, h, v) in [
        (url.clone(), "x-account-meta-temp-url-key", "akey"),
        (url2.clone(), "x-account-meta-temp-url-key", "otherkey"),
    ] {
        let tok = if target == url { &owner } else { &other };
        let r = send(&http, "POST", &target, Some(tok), &[(h, v)], "").await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    for (cont, headers) in [
        ("c", vec![]),
        (
            "c2",
            vec![
                ("x-container-meta-temp-url-key", "ckey"),
                ("x-container-read", "test:tester3"),
                ("x-container-write", "test:tester3"),
            ],
        ),
    ] {
        let r = send(
            &http,
            "PUT",
            &format!("{url}/{cont}"),
            Some(&owner),
            &headers,
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for obj in ["c/o", "c/pre-a", "c2/o2"] {
        let r = send(
            &http,
            "PUT",
            &format!("{url}/{obj}"),
            Some(&owner),
            &[
                ("x-object-meta-private", "hidden"),
                ("x-object-meta-public-tag", "shown"),
            ],
            SECRET,
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = send(&http, "PUT", &format!("{url2}/c"), Some(&other), &[], "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = send(
        &http,
        "PUT",
        &format!("{url2}/c/o"),
        Some(&other),
        &[],
        "theirs",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let exp = now() + 600;
    let path = format!("/v1/{acct}/c/o");
    let good = tempurl("GET", exp, &path, "akey");

    // The real thing: the object, as an attachment, with only public metadata.
    let r = send(&http, "GET", &format!("{url}/c/o?{good}"), None, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"o\"; filename*=UTF-8''o"
    );
    assert!(h.contains_key("expires"));
    assert!(!h.contains_key("x-object-meta-private"), "{h:?}");
    assert_eq!(h["x-object-meta-public-tag"], "shown");
    assert_eq!(r.text().await.unwrap(), SECRET);
    // HEAD is allowed by a GET signature; `filename` and `inline` pick the disposition.
    let r = send(&http, "HEAD", &format!("{url}/c/o?{good}"), None, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?{good}&inline&filename=My+File.txt"),
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(
        r.headers()["content-disposition"],
        "inline; filename=\"My File.txt\"; filename*=UTF-8''My%20File.txt"
    );

    // Altered signature, expiry, path, method.
    let sig_pos = good.find('=').unwrap() + 1;
    let mut bad_sig = good.clone().into_bytes();
    bad_sig[sig_pos] = if bad_sig[sig_pos] == b'a' { b'b' } else { b'a' };
    let bad_sig = String::from_utf8(bad_sig).unwrap();
    assert_invalid(&http, "GET", &format!("{url}/c/o?{bad_sig}"), "altered sig").await;
    let later = good.replace(&exp.to_string(), &(exp + 1).to_string());
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{later}"),
        "altered expiry",
    )
    .await;
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/pre-a?{good}"),
        "other object",
    )
    .await;
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/nothere?{good}"),
        "missing object",
    )
    .await;
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c2/o?{good}"),
        "other container",
    )
    .await;
    assert_invalid(&http, "GET", &format!("{url2}/c/o?{good}"), "other account").await;
    assert_invalid(&http, "GET", &format!("{url}/c?{good}"), "the container").await;
    assert_invalid(&http, "GET", &format!("{url}?{good}"), "the account").await;
    assert_invalid(&http, "PUT", &format!("{url}/c/o?{good}"), "PUT with GET").await;
    assert_invalid(
        &http,
        "DELETE",
        &format!("{url}/c/o?{good}"),
        "DELETE with GET",
    )
    .await;
    assert_invalid(&http, "POST", &format!("{url}/c/o?{good}"), "POST with GET").await;
    assert_invalid(&http, "COPY", &format!("{url}/c/o?{good}"), "COPY").await;
    let sig_only = good.split('&').next().unwrap();
    assert_invalid(&http, "GET", &format!("{url}/c/o?{sig_only}"), "no expiry").await;
    let head_only = tempurl("HEAD", exp, &path, "akey");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{head_only}"),
        "GET with HEAD",
    )
    .await;
    // Expired, though correctly signed.
    let past = now() - 1;
    let expired = tempurl("GET", past, &path, "akey");
    assert_invalid(&http, "GET", &format!("{url}/c/o?{expired}"), "expired").await;
    // Signed with another account's key, or for another account's path.
    let foreign = tempurl("GET", exp, &path, "otherkey");
    assert_invalid(&http, "GET", &format!("{url}/c/o?{foreign}"), "foreign key").await;
    let theirs = tempurl("GET", exp, &format!("/v1/{acct2}/c/o"), "akey");
    assert_invalid(
        &http,
        "GET",
        &format!("{url2}/c/o?{theirs}"),
        "our key, their path",
    )
    .await;
    // A valid tempurl with a bogus token is still only the tempurl.
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?{good}"),
        Some("AUTH_tkbogus"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Malformed parameters.
    for q in [
        "temp_url_sig=&temp_url_expires=9999999999",
        "temp_url_sig=zz&temp_url_expires=9999999999",
        "temp_url_sig=md5:AAAA&temp_url_expires=9999999999",
        "temp_url_expires=9999999999",
    ] {
        assert_invalid(&http, "GET", &format!("{url}/c/o?{q}"), q).await;
    }

    // IP ranges: the range is signed, and the client's address must be in it.
    let ip_sig = |range: &str| {
        let sig = hex::encode(hmac_raw(
            "sha256",
            "akey",
            &format!("ip={range}\nGET\n{exp}\n{path}"),
        ));
        format!("temp_url_sig={sig}&temp_url_expires={exp}&temp_url_ip_range={range}")
    };
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?{}", ip_sig("127.0.0.0/8")),
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{}", ip_sig("10.0.0.0/8")),
        "wrong IP",
    )
    .await;
    let widened =
        ip_sig("127.0.0.1").replace("temp_url_ip_range=127.0.0.1", "temp_url_ip_range=0.0.0.0/0");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{widened}"),
        "altered range",
    )
    .await;
    let unbound = ip_sig("10.0.0.0/8").replace("&temp_url_ip_range=10.0.0.0/8", "");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{unbound}"),
        "range removed",
    )
    .await;
    // From one loopback address but not another.
    let from = |ip: &str| {
        Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let one = ip_sig("127.0.0.1");
    let r = send(
        &from("127.0.0.1"),
        "GET",
        &format!("{url}/c/o?{one}"),
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_invalid(
        &from("127.0.0.2"),
        "GET",
        &format!("{url}/c/o?{one}"),
        "other address",
    )
    .await;

    // Other digests and spellings.
    for (digest, spell) in [("sha1", "hex"), ("sha512", "b64"), ("sha256", "url")] {
        let raw = hmac_raw(digest, "akey", &format!("GET\n{exp}\n{path}"));
        let sig = match spell {
            "hex" => hex::encode(&raw),
            "b64" => format!(
                "{digest}:{}",
                base64::engine::general_purpose::STANDARD.encode(&raw)
            ),
            _ => format!(
                "{digest}:{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw)
            ),
        };
        let sig = sig
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let r = send(
            &http,
            "GET",
            &format!("{url}/c/o?temp_url_sig={sig}&temp_url_expires={exp}"),
            None,
            &[],
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{digest} {spell}");
    }
    // ISO 8601 expiry in the URL, Unix time in the signature.
    let iso = httpdate_iso(exp);
    let r = send(
        &http,
        "GET",
        &format!("{url}/c/o?{}", good.replace(&exp.to_string(), &iso)),
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Prefix URLs reach what starts with the prefix, nothing else.
    let pre_sig = hex::encode(hmac_raw(
        "sha256",
        "akey",
        &format!("GET\n{exp}\nprefix:/v1/{acct}/c/pre"),
    ));
    let pre = format!("temp_url_sig={pre_sig}&temp_url_expires={exp}&temp_url_prefix=pre");
    let r = send(&http, "GET", &format!("{url}/c/pre-a?{pre}"), None, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{pre}"),
        "outside the prefix",
    )
    .await;
    let wider = pre.replace("temp_url_prefix=pre", "temp_url_prefix=");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{wider}"),
        "prefix shortened",
    )
    .await;

    // A container key works in its container only.
    let ckey = tempurl("GET", exp, &format!("/v1/{acct}/c2/o2"), "ckey");
    let r = send(&http, "GET", &format!("{url}/c2/o2?{ckey}"), None, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let elsewhere = tempurl("GET", exp, &path, "ckey");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{elsewhere}"),
        "container key elsewhere",
    )
    .await;

    // PUT tempurls upload that object, and may not point it at other data.
    let put_path = format!("/v1/{acct}/c/up");
    let put = tempurl("PUT", exp, &put_path, "akey");
    let r = send(
        &http,
        "PUT",
        &format!("{url}/c/up?{put}"),
        None,
        &[],
        "uploaded",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    for (h, v) in [
        ("x-object-manifest", "c/o"),
        ("x-copy-from", "c/o"),
        ("x-symlink-target", "c/o"),
    ] {
        let r = send(
            &http,
            "PUT",
            &format!("{url}/c/up?{put}"),
            None,
            &[(h, v)],
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{h}");
        let body = r.text().await.unwrap();
        assert!(body.contains("is not allowed in this tempurl"), "{body}");
    }
    let r = send(&http, "GET", &format!("{url}/c/up"), Some(&owner), &[], "").await;
    assert_eq!(r.text().await.unwrap(), "uploaded");
    assert_invalid(&http, "GET", &format!("{url}/c/up?{put}"), "GET with PUT").await;
    let r = send(&http, "HEAD", &format!("{url}/c/up?{put}"), None, &[], "").await;
    assert_eq!(r.status(), StatusCode::OK, "HEAD with a PUT signature");

    // Keys are the owner's: a reader with an ACL does not see the container's key, a
    // writer with an ACL cannot change it, and a non-owner cannot set the account's.
    // (An object write ACL cannot smuggle one in through an object POST either.)
    let r = send(&http, "HEAD", &format!("{url}/c2"), Some(&plain), &[], "").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(!r.headers().contains_key("x-container-meta-temp-url-key"));
    let r = send(
        &http,
        "POST",
        &format!("{url}/c2"),
        Some(&plain),
        &[("x-container-meta-temp-url-key", "mine")],
        "",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "container POST is the owner's"
    );
    let r = send(&http, "HEAD", &format!("{url}/c2"), Some(&owner), &[], "").await;
    assert_eq!(r.headers()["x-container-meta-temp-url-key"], "ckey");
    let r = send(
        &http,
        "POST",
        &url,
        Some(&plain),
        &[("x-account-meta-temp-url-key", "mine")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mine = tempurl("GET", exp, &path, "mine");
    assert_invalid(
        &http,
        "GET",
        &format!("{url}/c/o?{mine}"),
        "a key a non-owner set",
    )
    .await;
    // The owner sees the account key; a key removed stops working.
    let r = send(&http, "HEAD", &url, Some(&owner), &[], "").await;
    assert_eq!(r.headers()["x-account-meta-temp-url-key"], "akey");
    let r = send(
        &http,
        "POST",
        &url,
        Some(&owner),
        &[("x-remove-account-meta-temp-url-key", "x")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_invalid(&http, "GET", &format!("{url}/c/o?{good}"), "key removed").await;

    // Malformed referrer ACLs open nothing: an ACL with an empty referrer rule is refused
    // as Swift refuses it (and would match no referrer anyway), and a `.domain` rule does
    // not match the bare domain.
    for (acl, status) in [
        (".r:", StatusCode::BAD_REQUEST),
        (".r:.example.com", StatusCode::NO_CONTENT),
    ] {
        let r = send(
            &http,
            "POST",
            &format!("{url}/c"),
            Some(&owner),
            &[("x-container-read", acl)],
            "",
        )
        .await;
        assert_eq!(r.status(), status, "{acl}");
        let r = send(
            &http,
            "GET",
            &format!("{url}/c/o"),
            None,
            &[("referer", "http://example.com/")],
            "",
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{acl}");
        assert!(!r.text().await.unwrap().contains(SECRET));
    }
    let r = send(
        &http,
        "POST",
        &format!("{url}/c"),
        Some(&owner),
        &[("x-container-write", ".r:*")],
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text().await.unwrap(),
        "Referrers not allowed in write ACL: '.r:*'"
    );
}

/// `%Y-%m-%dT%H:%M:%SZ` of a Unix time.
fn httpdate_iso(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

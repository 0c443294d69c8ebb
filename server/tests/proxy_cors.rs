//! CORS with the proxy's own options (`cors_allow_origin`, `cors_expose_headers`,
//! `strict_cors_mode`), through the real binary, side by side with Swift 2.38.3's proxy
//! given the same options on the same storage nodes: preflights and actual requests from
//! the container's origin, the operator's origin, an unknown one and none get the same
//! status and the same `Access-Control-*` and `Vary` headers from both.

mod proxy_common;

use std::collections::BTreeSet;

use proxy_common::{login, Cluster};
use reqwest::{Client, Method};

/// What a CORS answer says: status and the CORS headers (lists as sets: Swift builds
/// them from Python sets, in no fixed order).
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, BTreeSet<String>)>,
}

async fn ask(
    http: &Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut rb = http.request(method, url);
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let mut out = Vec::new();
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
        "vary",
        "allow",
    ] {
        if let Some(v) = r.headers().get(name) {
            let set = v
                .to_str()
                .unwrap()
                .split(',')
                .map(|s| s.trim().to_string())
                .collect();
            out.push((name.to_string(), set));
        }
    }
    Answer {
        status: r.status().as_u16(),
        headers: out,
    }
}

/// Request headers as pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

const OPTIONS_STRICT: &str =
    "cors_allow_origin = http://op.example, http://op2.example\ncors_expose_headers = X-Op-Header, x-other\n";
const OPTIONS_LAX: &str = "cors_allow_origin = http://op.example\nstrict_cors_mode = false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cors_options_as_swift_applies_them() {
    let mut c = Cluster::start(1, "");
    let http = Client::new();
    // Swift decorates some refusals or not depending on the middlewares in front of the
    // app; both pipelines are compared.
    let minimal =
        "catch_errors gatekeeper proxy-logging listing_formats tempauth copy dlo proxy-logging";
    let full = "catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl \
                tempauth formpost staticweb copy container-quotas account-quotas dlo \
                versioned_writes symlink proxy-logging";
    let mut pairs = Vec::new();
    for (name, options, filters) in [
        ("strict-minimal", OPTIONS_STRICT, minimal),
        ("strict-full", OPTIONS_STRICT, full),
        ("lax-minimal", OPTIONS_LAX, minimal),
    ] {
        let ours = c.start_another_proxy(
            name,
            &format!(
                "[pipeline:main]\npipeline = {filters} proxy-server\n[app:proxy-server]\n{options}"
            ),
        );
        let swift = c.start_swift_proxy_with_app_options(filters, options);
        pairs.push((name, ours, swift));
    }

    // The container allows one origin and exposes one header; its object has metadata.
    let (token, storage) = login(&c.url(), "test:tester", "testing").await;
    let path = storage.strip_prefix(&c.url()).unwrap().to_string();
    let r = http
        .put(format!("{storage}/corsy"))
        .header("x-auth-token", &token)
        .header(
            "x-container-meta-access-control-allow-origin",
            "http://c.example",
        )
        .header(
            "x-container-meta-access-control-expose-headers",
            "X-Foo x-bar",
        )
        .header("x-container-meta-access-control-max-age", "77")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .put(format!("{storage}/corsy/obj"))
        .header("x-auth-token", &token)
        .header("x-object-meta-color", "red")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .put(format!("{storage}/plain"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let origins = [
        Some("http://c.example"),
        Some("http://op.example"),
        Some("http://op2.example"),
        Some("http://other.example"),
        None,
    ];
    let targets = [
        "/corsy/obj",
        "/corsy",
        "/plain",
        "/nosuch",
        "/plain/nosuch",
        "",
    ];
    let mut compared = 0;
    for (name, ours, swift) in &pairs {
        let (our_token, _) = login(
            &format!("http://127.0.0.1:{ours}"),
            "test:tester",
            "testing",
        )
        .await;
        let (swift_token, _) = login(
            &format!("http://127.0.0.1:{swift}"),
            "test:tester",
            "testing",
        )
        .await;
        for target in targets {
            for origin in origins {
                let mut pre: Vec<(&str, &str)> = vec![
                    ("access-control-request-method", "PUT"),
                    ("access-control-request-headers", "x-a, X-B"),
                ];
                let mut actual = Vec::new();
                if let Some(o) = origin {
                    pre.push(("origin", o));
                    actual.push(("origin", o));
                }
                let cases: [(Method, Headers<'_>, bool); 5] = [
                    (Method::OPTIONS, &pre, false),
                    (Method::GET, &actual, true),
                    (Method::HEAD, &actual, true),
                    (Method::POST, &actual, true),
                    // Anonymous: refused, and the refusal decorated as Swift decorates it.
                    (Method::GET, &actual, false),
                ];
                for (method, headers, with_token) in cases {
                    let url = |port: &u16| format!("http://127.0.0.1:{port}{path}{target}");
                    let a = ask(
                        &http,
                        method.clone(),
                        &url(ours),
                        with_token.then_some(our_token.as_str()),
                        headers,
                    )
                    .await;
                    let b = ask(
                        &http,
                        method.clone(),
                        &url(swift),
                        with_token.then_some(swift_token.as_str()),
                        headers,
                    )
                    .await;
                    assert_eq!(
                        a, b,
                        "{name}: {method} {target} from {origin:?} (token: {with_token}): ours, then Swift's"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 3 * 6 * 5 * 5);
}

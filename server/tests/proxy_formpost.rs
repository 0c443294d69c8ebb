//! formpost through the real binary, side by side with Swift 2.38.3's own proxy on the
//! same storage nodes: every form (valid, redirected, over its size or count limits,
//! expired, badly signed, signed for another place, malformed) gets the same status,
//! `Location` and body from both, and what each stores is what the form said. A refused
//! file leaves nothing behind.

mod proxy_common;

use base64::Engine;
use hmac::{Hmac, Mac};
use proxy_common::{login, Cluster};
use reqwest::{Client, StatusCode};

const BOUNDARY: &str = "----RingsmithFormBoundary7MA4YWxk";

fn sign(key: &str, message: &str, digest: &str) -> String {
    match digest {
        "sha256" => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
            m.update(message.as_bytes());
            hex::encode(m.finalize().into_bytes())
        }
        "sha512" => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
            m.update(message.as_bytes());
            format!(
                "sha512:{}",
                base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
            )
        }
        other => panic!("{other}"),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A form: its fields in order, then its files `(field name, filename, content type, data)`.
struct Form {
    fields: Vec<(String, String)>,
    files: Vec<(String, String, String, Vec<u8>)>,
}

impl Form {
    /// A signed form for `path` (the unquoted path the form posts to).
    fn signed(
        path: &str,
        key: &str,
        redirect: &str,
        max_size: &str,
        max_count: &str,
        expires: u64,
    ) -> Form {
        let sig = sign(
            key,
            &format!("{path}\n{redirect}\n{max_size}\n{max_count}\n{expires}"),
            "sha256",
        );
        let mut fields = vec![];
        if !redirect.is_empty() {
            fields.push(("redirect".to_string(), redirect.to_string()));
        }
        fields.extend([
            ("max_file_size".to_string(), max_size.to_string()),
            ("max_file_count".to_string(), max_count.to_string()),
            ("expires".to_string(), expires.to_string()),
            ("signature".to_string(), sig),
        ]);
        Form {
            fields,
            files: vec![],
        }
    }

    fn file(mut self, name: &str, content_type: &str, data: &[u8]) -> Form {
        let n = self.files.len() + 1;
        self.files.push((
            format!("file{n}"),
            name.to_string(),
            content_type.to_string(),
            data.to_vec(),
        ));
        self
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in &self.fields {
            b.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        for (field, name, ct, data) in &self.files {
            b.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n"
                )
                .as_bytes(),
            );
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        b
    }
}

/// What a proxy answered a form: status, `Location`, body.
async fn post(http: &Client, url: &str, body: Vec<u8>) -> (StatusCode, Option<String>, String) {
    let r = http
        .post(url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, location, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formposts_answer_as_swift_does() {
    let mut c = tokio::task::spawn_blocking(|| Cluster::start(1, ""))
        .await
        .unwrap();
    let swift_port = c.start_swift_proxy_with(
        "catch_errors gatekeeper proxy-logging listing_formats tempurl tempauth formpost copy dlo proxy-logging",
    );
    let ours = c.url();
    let swift = format!("http://127.0.0.1:{swift_port}");
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (token, url) = login(&ours, "test:tester", "testing").await;
    let acct = url.rsplit('/').next().unwrap().to_string();
    let r = http
        .post(&url)
        .header("x-auth-token", &token)
        .header("x-account-meta-temp-url-key", "akey")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for (cont, key) in [("c", None), ("c2", Some("ckey"))] {
        let mut rb = http
            .put(format!("{url}/{cont}"))
            .header("x-auth-token", &token);
        if let Some(k) = key {
            rb = rb.header("x-container-meta-temp-url-key", k);
        }
        assert!(rb.send().await.unwrap().status().is_success());
    }
    let head = |path: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            http.head(path)
                .header("x-auth-token", token)
                .send()
                .await
                .unwrap()
        }
    };

    let later = now() + 600;
    let cpath = format!("/v1/{acct}/c");
    let c2path = format!("/v1/{acct}/c2");
    let redirect = "http://127.0.0.1/done";
    // (case, path posted to, form builder given a tag for its file names)
    type Build<'a> = Box<dyn Fn(&str) -> Form + 'a>;
    let cases: Vec<(&str, String, Build<'_>)> = vec![
        (
            "redirected upload",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", redirect, "100", "2", later).file(
                    &format!("{t}-a.txt"),
                    "text/plain",
                    b"hello",
                )
            }),
        ),
        (
            "plain upload",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", "", "100", "2", later).file(
                    &format!("{t}-b.bin"),
                    "application/x-thing",
                    b"bytes",
                )
            }),
        ),
        (
            "two files, one allowed",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", redirect, "100", "1", later)
                    .file(&format!("{t}-one.txt"), "text/plain", b"1")
                    .file(&format!("{t}-two.txt"), "text/plain", b"2")
            }),
        ),
        (
            "too big",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", redirect, "5", "1", later).file(
                    &format!("{t}-big.txt"),
                    "text/plain",
                    &[b'x'; 70_000],
                )
            }),
        ),
        (
            "exactly the limit",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", "", "5", "1", later).file(
                    &format!("{t}-five.txt"),
                    "text/plain",
                    b"12345",
                )
            }),
        ),
        (
            "expired",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", "", "100", "1", now() - 1).file(
                    &format!("{t}-old.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "wrong key",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "nokey", "", "100", "1", later).file(
                    &format!("{t}-bad.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "signed for another container",
            c2path.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", "", "100", "1", later).file(
                    &format!("{t}-moved.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "container key in its container",
            c2path.clone(),
            Box::new(|t: &str| {
                Form::signed(&c2path, "ckey", "", "100", "1", later).file(
                    &format!("{t}-ck.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "container key elsewhere",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "ckey", "", "100", "1", later).file(
                    &format!("{t}-ck2.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "no files",
            cpath.clone(),
            Box::new(|_| Form::signed(&cpath, "akey", "", "100", "1", later)),
        ),
        (
            "bad max_file_size",
            cpath.clone(),
            Box::new(|t: &str| {
                Form::signed(&cpath, "akey", "", "lots", "1", later).file(
                    &format!("{t}-n.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
        (
            "sha512 in base64",
            cpath.clone(),
            Box::new(|t: &str| {
                let mut f = Form::signed(&cpath, "akey", "", "100", "1", later).file(
                    &format!("{t}-512.txt"),
                    "text/plain",
                    b"x",
                );
                let sig = sign("akey", &format!("{cpath}\n\n100\n1\n{later}"), "sha512");
                f.fields.retain(|(k, _)| k != "signature");
                f.fields.push(("signature".into(), sig));
                f
            }),
        ),
        (
            "a prefix in the container",
            format!("{cpath}/pre-"),
            Box::new(|t: &str| {
                Form::signed(&format!("{cpath}/pre-"), "akey", "", "100", "1", later).file(
                    &format!("{t}.txt"),
                    "text/plain",
                    b"x",
                )
            }),
        ),
    ];
    for (case, path, build) in &cases {
        let mine = post(&http, &format!("{ours}{path}"), build("rs").body()).await;
        let theirs = post(&http, &format!("{swift}{path}"), build("sw").body()).await;
        assert_eq!(mine, theirs, "{case}: ours vs Swift's");
    }
    // A malformed form, the same way.
    let mine = post(&http, &format!("{ours}{cpath}"), b"not a form".to_vec()).await;
    let theirs = post(&http, &format!("{swift}{cpath}"), b"not a form".to_vec()).await;
    assert_eq!(mine, theirs, "invalid start");
    assert_eq!(mine.0, StatusCode::BAD_REQUEST);

    // What was stored: the uploads the forms allowed, as sent, and nothing refused.
    for (tag, base) in [("rs", &ours), ("sw", &swift)] {
        let _ = base;
        let r = http
            .get(format!("{url}/c/{tag}-b.bin"))
            .header("x-auth-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{tag}");
        assert_eq!(r.headers()["content-type"], "application/x-thing");
        assert_eq!(r.text().await.unwrap(), "bytes");
        for stored in ["a.txt", "one.txt", "five.txt", "512.txt"] {
            let r = head(format!("{url}/c/{tag}-{stored}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{tag}-{stored}");
        }
        let r = head(format!("{url}/c2/{tag}-ck.txt")).await;
        assert_eq!(r.status(), StatusCode::OK, "{tag} container key");
        let r = head(format!("{url}/c/pre-{tag}.txt")).await;
        assert_eq!(r.status(), StatusCode::OK, "{tag} prefix");
        for refused in [
            "c/two.txt",
            "c/big.txt",
            "c/old.txt",
            "c/bad.txt",
            "c2/moved.txt",
            "c/ck2.txt",
            "c/n.txt",
        ] {
            let (cont, name) = refused.split_once('/').unwrap();
            let r = head(format!("{url}/{cont}/{tag}-{name}")).await;
            assert_eq!(
                r.status(),
                StatusCode::NOT_FOUND,
                "{tag}: {refused} was stored"
            );
        }
    }
    // The answers themselves, spelled out once.
    let r = post(&http, &format!("{ours}{cpath}"), cases[0].2("again").body()).await;
    assert_eq!(r.0, StatusCode::SEE_OTHER);
    assert_eq!(
        r.1.as_deref(),
        Some("http://127.0.0.1/done?status=201&message=")
    );
    let r = post(&http, &format!("{ours}{cpath}"), cases[3].2("again").body()).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (StatusCode::BAD_REQUEST, "FormPost: max_file_size exceeded")
    );
    let r = post(&http, &format!("{ours}{cpath}"), cases[5].2("again").body()).await;
    assert_eq!(
        (r.0, r.2.as_str()),
        (StatusCode::UNAUTHORIZED, "FormPost: Form Expired")
    );
}

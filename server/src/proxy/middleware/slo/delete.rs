//! `DELETE ?multipart-manifest=delete`: every segment (sub-manifests' segments first, then
//! the sub-manifests), then the manifest, each by a DELETE subrequest with the caller's
//! rights. The answer is a bulk-delete report (text, JSON or XML per `Accept`).
//!
//! While the deletes run, the answer gets whitespace every `yield_frequency` seconds, so
//! a client does not time out on a large manifest.
//!
//! `&async=yes` is checked as Swift checks it (one segment container, no nested SLOs);
//! Ringsmith then deletes the segments before the manifest rather than queueing them
//! for the object expirer (docs/differences.md).

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::Value;

use super::{best_format, csv_append, report_body, status_line, Slo};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::{header, quote, text};

/// One thing to delete, as Swift's `get_segments_to_delete_iter` walks them.
struct Entry {
    /// `/container/object`, unquoted.
    name: String,
    sub_slo: bool,
    /// Why it cannot be deleted (reading it as a manifest failed): (status, message).
    error: Option<(StatusCode, String)>,
}

/// A failure reading a manifest, as the status and body Swift's exception carries.
type ReadError = (StatusCode, String);

fn entries_of(manifest: &[Value]) -> Vec<Entry> {
    manifest
        .iter()
        .filter(|v| v.get("data").is_none())
        .filter_map(|v| {
            Some(Entry {
                name: v.get("name")?.as_str()?.to_string(),
                sub_slo: match v.get("sub_slo") {
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) => ringsmith::swift::conf::is_true(s),
                    _ => false,
                },
                error: None,
            })
        })
        .collect()
}

struct Deleter {
    slo: Slo,
    caller: Caller,
    base: String,
    /// `?version-id=` of the request (object versioning): the manifest read is that
    /// version, and so is the manifest deleted (`top`, as `/container/object`).
    version_id: Option<String>,
    top: String,
}

impl Deleter {
    /// Swift's `get_slo_segments`: the stored manifest of `/container/object`.
    async fn manifest(&self, name: &str) -> Result<Vec<Value>, ReadError> {
        let mut uri = format!(
            "{}/{}?multipart-manifest=get",
            self.base,
            quote(name.trim_start_matches('/'))
        );
        if let Some(v) = &self.version_id {
            uri.push_str(&format!("&version-id={}", quote(v)));
        }
        let mut h = HeaderMap::new();
        // Only the last byte of an object that turns out not to be a manifest.
        set(&mut h, "range", "bytes=-1");
        csv_append(
            &mut h,
            "x-backend-ignore-range-if-metadata-present",
            "X-Static-Large-Object",
        );
        let resp = self
            .slo
            .0
            .next
            .call(
                self.caller
                    .subrequest(Method::GET, &uri, h, Body::empty(), "SLO"),
            )
            .await;
        let status = resp.status();
        let is_slo = header(resp.headers(), "x-static-large-object")
            .is_some_and(ringsmith::swift::conf::is_true);
        if status.is_success() {
            if !is_slo {
                return Err((StatusCode::BAD_REQUEST, "Not an SLO manifest".into()));
            }
            let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|_| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Unable to load SLO manifest".to_string(),
                    )
                })?;
            return match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(v)) => Ok(v),
                _ => Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unable to load SLO manifest".into(),
                )),
            };
        }
        Err(match status {
            StatusCode::NOT_FOUND => (status, "SLO manifest not found".into()),
            StatusCode::UNAUTHORIZED => (status, "401 Unauthorized".into()),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest or segment.".into(),
            ),
        })
    }

    async fn delete(&self, name: &str) -> StatusCode {
        let mut uri = format!("{}/{}", self.base, quote(name.trim_start_matches('/')));
        if let Some(v) = self.version_id.as_ref().filter(|_| name == self.top) {
            uri.push_str(&format!("?version-id={}", quote(v)));
        }
        let mut h = HeaderMap::new();
        set(&mut h, "content-length", "0");
        self.slo
            .0
            .next
            .call(
                self.caller
                    .subrequest(Method::DELETE, &uri, h, Body::empty(), "SLO"),
            )
            .await
            .status()
    }
}

pub async fn handle(slo: &Slo, req: Request, path: ApiPath) -> Response {
    let (parts, _) = req.into_parts();
    let top = format!(
        "/{}/{}",
        path.container.as_deref().unwrap_or(""),
        path.object.as_deref().unwrap_or("")
    );
    let deleter = Deleter {
        slo: slo.clone(),
        caller: Caller::of(&parts),
        base: format!("/{}/{}", path.version, quote(&path.account)),
        version_id: query_param(parts.uri.query(), "version-id"),
        top: top.clone(),
    };
    let is_async = query_param(parts.uri.query(), "async")
        .is_some_and(|v| ringsmith::swift::conf::is_true(&v));
    if is_async && slo.0.conf.allow_async_delete {
        return async_delete(slo, &deleter, parts, &top).await;
    }
    let format = best_format(&parts.headers);
    // The deletes run in a task of their own; while they do, the answer (already a 200)
    // gets whitespace every `yield_frequency` seconds, as Swift's bulk deleter sends it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let every = Duration::from_secs(slo.0.conf.yield_frequency.max(1));
    tokio::spawn(async move {
        let work = delete_all(&deleter, top, format);
        tokio::pin!(work);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut filler: &'static [u8] = if format.is_some_and(|f| f.ends_with("/xml")) {
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        } else {
            b" "
        };
        let mut separator: &'static [u8] = b"";
        let report = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    if tx.send(Ok(Bytes::from_static(filler))).await.is_err() {
                        return;
                    }
                    (filler, separator) = (b" ", b"\r\n\r\n");
                }
            }
        };
        let mut out = separator.to_vec();
        out.extend_from_slice(&report);
        let _ = tx.send(Ok(Bytes::from(out))).await;
    });
    // As under Swift's WSGI server, the status line goes out with the first bytes: a
    // quick delete is answered only once it is done.
    let mut rx = rx;
    let first = rx.recv().await;
    let rest =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let stream = futures_util::stream::iter(first).chain(rest);
    let mut r = Response::new(Body::from_stream(stream));
    if let Some(f) = format {
        set(r.headers_mut(), "content-type", f);
    }
    r
}

/// Swift's `get_segments_to_delete_iter` fed to its bulk deleter: every segment (a
/// sub-manifest's before the sub-manifest), the manifest last; the report's bytes.
async fn delete_all(deleter: &Deleter, top: String, format: Option<&'static str>) -> Vec<u8> {
    let mut deleted = 0u64;
    let mut not_found = 0u64;
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut bad_gateway = false;
    let mut abort: Option<(StatusCode, String)> = None;
    if format.is_none() {
        abort = Some((StatusCode::NOT_ACCEPTABLE, String::new()));
    }
    let mut queue: VecDeque<Entry> = VecDeque::new();
    queue.push_back(Entry {
        name: top,
        sub_slo: true,
        error: None,
    });
    let limit = deleter.slo.0.conf.max_manifest_segments.saturating_mul(10);
    while abort.is_none() {
        if queue.len() > limit {
            abort = Some((
                StatusCode::BAD_REQUEST,
                "Too many buffered slo segments to delete.".into(),
            ));
            break;
        }
        let Some(mut entry) = queue.pop_front() else {
            break;
        };
        if entry.sub_slo {
            match deleter.manifest(&entry.name).await {
                Ok(m) => queue.extend(entries_of(&m)),
                Err(e) => entry.error = Some(e),
            }
            // The manifest itself goes after its segments.
            entry.sub_slo = false;
            queue.push_back(entry);
            continue;
        }
        if let Some((code, message)) = &entry.error {
            if *code == StatusCode::NOT_FOUND {
                not_found += 1;
            } else {
                failed.push((quote(&entry.name), message.clone()));
            }
            continue;
        }
        match deleter.delete(&entry.name).await {
            s if s.is_success() => deleted += 1,
            StatusCode::NOT_FOUND => not_found += 1,
            StatusCode::UNAUTHORIZED => {
                failed.push((quote(&entry.name), status_line(StatusCode::UNAUTHORIZED)))
            }
            s => {
                bad_gateway |= s.is_server_error();
                failed.push((quote(&entry.name), status_line(s)));
            }
        }
    }
    let (status, body) = match abort {
        Some((s, b)) => (status_line(s), b),
        None if !failed.is_empty() => (
            status_line(if bad_gateway {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::BAD_REQUEST
            }),
            String::new(),
        ),
        None if deleted == 0 && not_found == 0 => (
            status_line(StatusCode::BAD_REQUEST),
            "Invalid bulk delete.".into(),
        ),
        None => (status_line(StatusCode::OK), String::new()),
    };
    let fields = [
        ("Response Status", Value::String(status)),
        ("Response Body", Value::String(body)),
        ("Number Deleted", Value::from(deleted)),
        ("Number Not Found", Value::from(not_found)),
    ];
    report_body(format.unwrap_or("text/plain"), &fields, &failed, "delete")
}

/// `?multipart-manifest=delete&async=yes`: Swift's checks, then the segments and the
/// manifest are deleted (the manifest's DELETE answers).
async fn async_delete(slo: &Slo, deleter: &Deleter, parts: Parts, top: &str) -> Response {
    let manifest = match deleter.manifest(top).await {
        Ok(m) => m,
        Err((s, m)) => return text(s, m),
    };
    let segments = entries_of(&manifest);
    let mut containers: Vec<String> = Vec::new();
    for s in &segments {
        let c = s
            .name
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        if !containers.contains(&c) {
            containers.push(c);
        }
    }
    if containers.len() > 1 {
        let listed: Vec<String> = containers
            .iter()
            .map(|c| format!("\"{}\"", quote(c)))
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "All segments must be in one container. Found segments in {}",
                listed.join(", ")
            ),
        );
    }
    if segments.iter().any(|s| s.sub_slo) {
        return text(StatusCode::BAD_REQUEST, "No segments may be large objects.");
    }
    for s in &segments {
        let st = deleter.delete(&s.name).await;
        if !(st.is_success() || st == StatusCode::NOT_FOUND) {
            return text(
                st,
                format!("deleting segment {}: {}", quote(&s.name), status_line(st)),
            );
        }
    }
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::DELETE;
    *req.uri_mut() = parts.uri;
    *req.headers_mut() = parts.headers;
    *req.extensions_mut() = parts.extensions;
    slo.0.next.call(req).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::proxy::middleware::slo::{Inner, SloConfig};
    use crate::proxy::pipeline::{Handler, ResponseFuture};

    /// The rest of the stack: one manifest `m` of two segments; each DELETE takes `delay`
    /// and is recorded.
    struct SlowStore {
        delay: Duration,
        manifest: &'static str,
        deleted: std::sync::Mutex<Vec<String>>,
    }

    impl Handler for SlowStore {
        fn call(&self, req: Request) -> ResponseFuture<'_> {
            Box::pin(async move {
                let mut r = Response::new(Body::empty());
                if req.method() == Method::GET && req.uri().path().ends_with("/m") {
                    *r.body_mut() = Body::from(self.manifest);
                    set(r.headers_mut(), "x-static-large-object", "True");
                } else if req.method() == Method::DELETE {
                    tokio::time::sleep(self.delay).await;
                    self.deleted
                        .lock()
                        .unwrap()
                        .push(req.uri().path().to_string());
                    *r.status_mut() = StatusCode::NO_CONTENT;
                }
                r
            })
        }
    }

    const ONE_CONTAINER: &str = r#"[{"name": "/c/s1", "bytes": 1, "hash": "x"},
                                     {"name": "/c/s2", "bytes": 1, "hash": "y"}]"#;

    fn store(delay: Duration, manifest: &'static str) -> Arc<SlowStore> {
        Arc::new(SlowStore {
            delay,
            manifest,
            deleted: Default::default(),
        })
    }

    fn slo(delay: Duration) -> Slo {
        slo_over(store(delay, ONE_CONTAINER))
    }

    fn slo_over(next: Arc<SlowStore>) -> Slo {
        Slo(Arc::new(Inner {
            next,
            conf: SloConfig {
                max_manifest_segments: 1000,
                max_manifest_size: 8 << 20,
                yield_frequency: 1,
                allow_async_delete: true,
                max_get_time: 86400,
                rate_limit_under_size: 1 << 20,
                rate_limit_after_segment: 10,
                rate_limit_segments_per_sec: 1,
                concurrency: 2,
                delete_concurrency: 2,
            },
        }))
    }

    async fn delete(slo: &Slo, accept: &str) -> String {
        let mut req = Request::new(Body::empty());
        *req.method_mut() = Method::DELETE;
        *req.uri_mut() = "/v1/AUTH_t/c/m?multipart-manifest=delete".parse().unwrap();
        set(req.headers_mut(), "accept", accept);
        let resp = slo.call(req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_slow_delete_sends_whitespace_then_the_report() {
        let slow = slo(Duration::from_millis(700));
        let body = delete(&slow, "text/plain").await;
        // Three deletes of 0.7 s: at least one heartbeat, then the separator and report.
        assert!(body.starts_with(' '), "{body:?}");
        let (_, report) = body.split_once("\r\n\r\n").expect("separator");
        assert!(report.starts_with("Number Deleted: 3\n"), "{report:?}");
        assert!(report.contains("Response Status: 200 OK\n"), "{report:?}");

        let xml = delete(&slow, "application/xml").await;
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            "{xml:?}"
        );
        assert!(xml.contains("\r\n\r\n<delete>\n<number_deleted>3</number_deleted>"));
    }

    #[tokio::test]
    async fn a_quick_delete_is_just_the_report() {
        let body = delete(&slo(Duration::ZERO), "application/json").await;
        let v: Value = serde_json::from_str(&body).expect(&body);
        assert_eq!(v["Number Deleted"], 3);
        assert_eq!(v["Errors"], serde_json::json!([]));
    }

    async fn async_delete(slo: &Slo) -> (StatusCode, String) {
        let mut req = Request::new(Body::empty());
        *req.method_mut() = Method::DELETE;
        *req.uri_mut() = "/v1/AUTH_t/c/m?multipart-manifest=delete&async=yes"
            .parse()
            .unwrap();
        let resp = slo.call(req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn async_delete_checks_like_swift_then_deletes_segments_before_the_manifest() {
        let two = store(
            Duration::ZERO,
            r#"[{"name": "/c/s1", "bytes": 1, "hash": "x"},
                {"name": "/d/s2", "bytes": 1, "hash": "y"}]"#,
        );
        let (s, body) = async_delete(&slo_over(two.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            "All segments must be in one container. Found segments in \"c\", \"d\""
        );
        assert!(two.deleted.lock().unwrap().is_empty(), "nothing deleted");
        let nested = store(
            Duration::ZERO,
            r#"[{"name": "/c/s1", "bytes": 1, "hash": "x", "sub_slo": true}]"#,
        );
        let (s, body) = async_delete(&slo_over(nested.clone())).await;
        assert_eq!(
            (s, body.as_str()),
            (StatusCode::BAD_REQUEST, "No segments may be large objects.")
        );
        assert!(nested.deleted.lock().unwrap().is_empty());

        let one = store(Duration::ZERO, ONE_CONTAINER);
        let (s, _) = async_delete(&slo_over(one.clone())).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(
            *one.deleted.lock().unwrap(),
            ["/v1/AUTH_t/c/s1", "/v1/AUTH_t/c/s2", "/v1/AUTH_t/c/m"]
        );
    }
}

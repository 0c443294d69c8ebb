//! Bulk upload: `PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2`
//! with an archive as the body. Each regular file becomes an object at
//! `<upload path>/<its path in the archive>`: the first path segment is the container
//! (created if missing, at most `max_containers_per_extraction` of them), files at the top
//! level are skipped. Every object is a PUT subrequest with the caller's rights, its bytes
//! streamed straight from the (decompressed) archive, and the request's user metadata and
//! expiry plus any `SCHILY.xattr.user.*` pax attributes as its metadata.
//!
//! The answer is a 200 whose body reports the outcome (Swift's `Response Status`,
//! `Number Files Created` and errors); while the archive is processed a space is sent
//! every `yield_frequency` seconds so clients and balancers do not time out.

use std::time::Duration;

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, BufReader};

use super::tar::{Member, TarError, TarReader};
use super::{report, report_type, Bulk};
use crate::proxy::backend::{header_value, set};
use crate::proxy::env::{ApiPath, Caller};
use crate::proxy::header;
use crate::proxy::middleware::listing_formats::{choose, Format};
use crate::proxy::pipeline::App;

/// What one extraction needs, owned, so it can run while the answer streams.
struct Job {
    next: App,
    caller: Caller,
    path: ApiPath,
    /// Headers copied onto every object: user metadata and expiry.
    object_headers: HeaderMap,
    max_containers: usize,
    max_failed: usize,
    max_file_size: u64,
    max_object_name_length: usize,
}

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// A pax attribute that becomes object metadata, as Swift maps them.
fn pax_header(key: &str) -> Option<String> {
    if key == "SCHILY.xattr.user.mime_type" || key == "LIBARCHIVE.xattr.user.mime_type" {
        return Some("content-type".into());
    }
    ["SCHILY.xattr.user.meta.", "LIBARCHIVE.xattr.user.meta."]
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .map(|rest| format!("x-object-meta-{}", rest.to_ascii_lowercase()))
}

struct Outcome {
    created: usize,
    status: StatusCode,
    body: String,
    errors: Vec<(String, String)>,
}

impl Job {
    async fn ensure_container(&self, container: &str) -> Result<bool, StatusCode> {
        let path = ApiPath {
            container: Some(container.to_string()),
            object: None,
            ..self.path.clone()
        }
        .to_path();
        let head = self
            .next
            .call(self.caller.subrequest(
                Method::HEAD,
                &path,
                HeaderMap::new(),
                Body::empty(),
                "EA",
            ))
            .await;
        if head.status().is_success() {
            return Ok(false);
        }
        if head.status() != StatusCode::NOT_FOUND {
            return Err(head.status());
        }
        let mut h = HeaderMap::new();
        set(&mut h, "content-length", "0");
        let put = self
            .next
            .call(
                self.caller
                    .subrequest(Method::PUT, &path, h, Body::empty(), "EA"),
            )
            .await;
        if put.status().is_success() {
            Ok(true)
        } else {
            Err(put.status())
        }
    }

    /// PUTs one member, its bytes pumped from the archive as the subrequest reads them.
    async fn put_member<R: AsyncRead + Unpin>(
        &self,
        tar: &mut TarReader<R>,
        member: &Member,
        object_path: &str,
    ) -> Result<StatusCode, TarError> {
        let mut h = self.object_headers.clone();
        set(&mut h, "content-length", &member.size.to_string());
        for (k, v) in &member.pax {
            if let Some(name) =
                pax_header(k).and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            {
                h.insert(name, header_value(v));
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
        let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let put = self.next.call(
            self.caller
                .subrequest(Method::PUT, object_path, h, body, "EA"),
        );
        let pump = async move {
            loop {
                match tar.read_chunk(64 * 1024).await {
                    Ok(c) if c.is_empty() => return Ok(()),
                    Ok(c) => {
                        if tx.send(Ok(c)).await.is_err() {
                            // The PUT stopped reading (it answered early); skip the rest.
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return Err(e);
                    }
                }
            }
        };
        // `pump` owns the sender: when it is done the body ends.
        let (resp, pumped) = tokio::join!(put, pump);
        pumped?;
        Ok(resp.status())
    }

    async fn run<R: AsyncRead + Unpin>(self, archive: R) -> Outcome {
        let mut tar = TarReader::new(archive);
        let mut out = Outcome {
            created: 0,
            status: StatusCode::CREATED,
            body: String::new(),
            errors: Vec::new(),
        };
        let base = {
            let mut b = String::new();
            if let Some(c) = &self.path.container {
                b.push_str(c);
                if let Some(o) = &self.path.object {
                    b.push('/');
                    b.push_str(o);
                }
            }
            b.trim_end_matches('/').to_string()
        };
        let mut failure_status = StatusCode::BAD_REQUEST;
        let mut seen_containers = std::collections::HashSet::new();
        let mut created_containers = 0usize;
        loop {
            if out.errors.len() >= self.max_failed {
                break;
            }
            let member = match tar.next_member().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    out.status = StatusCode::BAD_REQUEST;
                    out.body = format!("Invalid Tar File: {e}");
                    return out;
                }
            };
            if !member.is_file() {
                continue;
            }
            let mut name = member
                .name
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string();
            if !base.is_empty() {
                name = format!("{base}/{name}");
            }
            let Some((container, object)) = name.split_once('/') else {
                continue; // a file at the top level has no container
            };
            let quoted = crate::proxy::quote(&name);
            if object.is_empty() || name.contains('\0') {
                out.errors
                    .push((quoted, status_line(StatusCode::PRECONDITION_FAILED)));
                continue;
            }
            if member.size > self.max_file_size {
                out.errors
                    .push((quoted, status_line(StatusCode::PAYLOAD_TOO_LARGE)));
                continue;
            }
            if object.len() > self.max_object_name_length {
                out.errors
                    .push((quoted, status_line(StatusCode::BAD_REQUEST)));
                continue;
            }
            let mut container_failure = None;
            if seen_containers.insert(container.to_string()) {
                match self.ensure_container(container).await {
                    Ok(true) => {
                        created_containers += 1;
                        if created_containers > self.max_containers {
                            out.status = StatusCode::BAD_REQUEST;
                            out.body = format!(
                                "More than {} containers to create from tar.",
                                self.max_containers
                            );
                            return out;
                        }
                    }
                    Ok(false) => {}
                    Err(StatusCode::UNAUTHORIZED) => {
                        out.status = StatusCode::UNAUTHORIZED;
                        out.body = "This server could not verify that you are authorized to access the document you requested.".into();
                        return out;
                    }
                    Err(s) => {
                        let cpath =
                            format!("/{}/{}/{}", self.path.version, self.path.account, container);
                        container_failure = Some((crate::proxy::quote(&cpath), status_line(s)));
                    }
                }
            }
            let target = ApiPath {
                container: Some(container.to_string()),
                object: Some(object.to_string()),
                ..self.path.clone()
            };
            let status = match self.put_member(&mut tar, &member, &target.to_path()).await {
                Ok(s) => s,
                Err(e) => {
                    out.status = StatusCode::BAD_REQUEST;
                    out.body = format!("Invalid Tar File: {e}");
                    return out;
                }
            };
            if status.is_success() {
                out.created += 1;
                continue;
            }
            if let Some(f) = container_failure {
                out.errors.push(f);
            }
            if status == StatusCode::UNAUTHORIZED {
                out.errors.push((quoted, status_line(status)));
                out.status = StatusCode::UNAUTHORIZED;
                return out;
            }
            if status.is_server_error() {
                failure_status = StatusCode::BAD_GATEWAY;
            }
            out.errors.push((quoted, status_line(status)));
        }
        if !out.errors.is_empty() {
            out.status = failure_status;
        } else if out.created == 0 {
            out.status = StatusCode::BAD_REQUEST;
            out.body = "Invalid Tar File: No Valid Files".into();
        }
        out
    }
}

impl Bulk {
    pub(super) async fn extract(&self, req: Request, path: ApiPath, kind: &str) -> Response {
        let (parts, body) = req.into_parts();
        let format = choose(
            None,
            header(&parts.headers, "accept").filter(|a| !a.is_empty()),
        );
        let chunked = header(&parts.headers, "transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
        let early = if format.is_none() {
            Some(StatusCode::NOT_ACCEPTABLE)
        } else if !parts.headers.contains_key("content-length") && !chunked {
            Some(StatusCode::LENGTH_REQUIRED)
        } else {
            None
        };
        let mut object_headers = HeaderMap::new();
        for (k, v) in &parts.headers {
            let n = k.as_str();
            if n.starts_with("x-object-meta-") || n == "x-delete-at" || n == "x-delete-after" {
                object_headers.insert(k.clone(), v.clone());
            }
        }
        // Each object's type is guessed from its name (or its pax mime_type).
        if let Some(d) = parts.headers.get("x-detect-content-type") {
            object_headers.insert("x-detect-content-type", d.clone());
        }
        let job = Job {
            next: self.next.clone(),
            caller: Caller::of(&parts),
            path,
            object_headers,
            max_containers: self.max_containers_per_extraction,
            max_failed: self.max_failed_extractions,
            max_file_size: self.max_file_size,
            max_object_name_length: self.max_object_name_length,
        };
        let kind = kind.to_string();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(2);
        let heartbeat = self.yield_frequency;
        tokio::spawn(async move {
            let outcome = match early {
                Some(status) => Outcome {
                    created: 0,
                    status,
                    body: String::new(),
                    errors: Vec::new(),
                },
                None => {
                    let stream = body.into_data_stream().map_err(std::io::Error::other);
                    let reader = BufReader::new(tokio_util::io::StreamReader::new(stream));
                    let work: std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>> =
                        match kind.as_str() {
                            "gz" => Box::pin(job.run(GzipDecoder::new(reader))),
                            "bz2" => Box::pin(job.run(BzDecoder::new(reader))),
                            _ => Box::pin(job.run(reader)),
                        };
                    let mut work = work;
                    let mut tick = tokio::time::interval(heartbeat);
                    tick.tick().await;
                    loop {
                        tokio::select! {
                            o = &mut work => break o,
                            _ = tick.tick() => {
                                if tx.send(Ok(bytes::Bytes::from_static(b" "))).await.is_err() {
                                    tracing::warn!("extract-archive: the client went away; finishing the extraction");
                                }
                            }
                        }
                    }
                }
            };
            let mut text = String::new();
            if format == Some(Format::Xml) {
                text.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            }
            text.push_str(&report(
                format,
                "extract",
                &[
                    ("Number Files Created", outcome.created.into()),
                    ("Response Body", outcome.body.into()),
                    ("Response Status", status_line(outcome.status).into()),
                ],
                &outcome.errors,
            ));
            let _ = tx.send(Ok(bytes::Bytes::from(text))).await;
        });
        let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let mut r = Response::new(body);
        set(r.headers_mut(), "content-type", report_type(format));
        r
    }
}

/// The archive kinds Swift accepts, by `?extract-archive=` value.
pub(super) fn archive_kind(value: &str) -> Option<&'static str> {
    match value.trim_matches('.').to_ascii_lowercase().as_str() {
        "tar" => Some(""),
        "tar.gz" => Some("gz"),
        "tar.bz2" => Some("bz2"),
        _ => None,
    }
}

/// How often the extraction sends a heartbeat space.
pub(super) fn heartbeat(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

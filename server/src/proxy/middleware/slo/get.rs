//! GET and HEAD of an SLO.
//!
//! The manifest is asked for with `X-Backend-Etag-Is-At: X-Object-Sysmeta-Slo-Etag` (so
//! the object server answers `If-Match`/`If-None-Match` against the SLO's ETag) and
//! `X-Backend-Ignore-Range-If-Metadata-Present: X-Static-Large-Object` (so a ranged GET
//! still returns the whole manifest). The answer keeps the manifest's metadata with the
//! SLO's ETag and length; the body is produced by a task that walks the segments (and
//! sub-manifests, fetched when reached) and streams each one's bytes into a small
//! channel, so memory stays a few chunks whatever the object's size. The first segment
//! is checked before the headers go out (409 if it is missing or changed); a later one
//! that is missing or changed ends the stream short, and is logged.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

use super::manifest::{self, Stored};
use super::{csv_append, Slo, SYSMETA_SLO_ETAG, SYSMETA_SLO_SIZE};
use crate::object::range::{parse_range, RangeOutcome};
use crate::proxy::backend::set;
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::{empty, header, quote, text};

/// Sub-manifests nest at most this deep (Swift's `max_slo_recursion_depth`).
const MAX_RECURSION_DEPTH: usize = 10;
/// A stored manifest read back is bounded (what a PUT can store, with room).
const MAX_STORED_MANIFEST: usize = 64 * 1024 * 1024;

/// What the manifest's response says about the SLO (Swift's `RespAttrs`).
struct Attrs {
    is_slo: bool,
    manifest_etag: String,
    slo_etag: Option<String>,
    slo_size: Option<u64>,
}

impl Attrs {
    fn of(h: &HeaderMap) -> Attrs {
        let is_slo =
            header(h, "x-static-large-object").is_some_and(ringsmith::swift::conf::is_true);
        Attrs {
            is_slo,
            manifest_etag: header(h, "etag")
                .unwrap_or("")
                .trim_matches('"')
                .to_string(),
            slo_etag: header(h, SYSMETA_SLO_ETAG)
                .filter(|e| !e.is_empty())
                .map(str::to_string),
            slo_size: header(h, SYSMETA_SLO_SIZE).and_then(|s| s.trim().parse().ok()),
        }
    }

    /// A manifest stored without the SLO sysmeta (an old Swift's): its ETag and size
    /// come from the segments.
    fn is_legacy(&self) -> bool {
        self.slo_etag.is_none() || self.slo_size.is_none()
    }
}

fn request_from(parts: &Parts, method: Method, headers: HeaderMap) -> Request {
    let mut r = Request::new(Body::empty());
    *r.method_mut() = method;
    *r.uri_mut() = parts.uri.clone();
    *r.headers_mut() = headers;
    *r.extensions_mut() = parts.extensions.clone();
    r
}

/// Swift's `get_valid_part_num`.
fn part_number(parts: &Parts) -> Result<Option<usize>, Response> {
    let Some(raw) = query_param(parts.uri.query(), "part-number") else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n > 0 => {
            if parts.headers.contains_key("range") {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    "Range requests are not supported with part number queries",
                ));
            }
            Ok(Some(n as usize))
        }
        _ => Err(text(
            StatusCode::BAD_REQUEST,
            "Part number must be an integer greater than 0",
        )),
    }
}

pub async fn handle(slo: &Slo, req: Request, path: ApiPath) -> Response {
    let (parts, _) = req.into_parts();
    let query = parts.uri.query();
    let manifest_get = query_param(query, "multipart-manifest").as_deref() == Some("get");
    let raw_format = manifest_get && query_param(query, "format").as_deref() == Some("raw");
    let mut down = parts.headers.clone();
    if !manifest_get {
        csv_append(
            &mut down,
            "x-backend-etag-is-at",
            "X-Object-Sysmeta-Slo-Etag",
        );
        csv_append(
            &mut down,
            "x-backend-ignore-range-if-metadata-present",
            "X-Static-Large-Object",
        );
    }
    let mut resp = slo
        .0
        .next
        .call(request_from(&parts, parts.method.clone(), down))
        .await;
    let mut attrs = Attrs::of(resp.headers());
    if !attrs.is_slo {
        return resp;
    }
    if manifest_get {
        return manifest_response(resp, raw_format, parts.method == Method::HEAD).await;
    }
    let part_num = match part_number(&parts) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let is_head = parts.method == Method::HEAD;
    let status = resp.status();
    let conditional_failure = matches!(
        status,
        StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED
    );
    let listing_needed = if is_head {
        attrs.is_legacy() || part_num.is_some()
    } else if conditional_failure {
        attrs.is_legacy()
    } else {
        true
    };
    // A HEAD has no body to read the manifest from, and a range or condition may have
    // been applied to the manifest's own bytes by an old object server: ask again.
    let refetch = listing_needed
        && (is_head
            || conditional_failure
            || status == StatusCode::RANGE_NOT_SATISFIABLE
            || (status == StatusCode::PARTIAL_CONTENT && !complete_body(resp.headers())));
    if refetch {
        let caller = Caller::of(&parts);
        let uri = match parts.uri.query() {
            Some(q) => format!("{}?{q}", parts.uri.path()),
            None => parts.uri.path().to_string(),
        };
        resp = slo
            .0
            .next
            .call(caller.subrequest(Method::GET, &uri, HeaderMap::new(), Body::empty(), "SLO"))
            .await;
        attrs = Attrs::of(resp.headers());
        if !attrs.is_slo {
            return resp;
        }
    }
    let (mut head, body) = resp.into_parts();
    let mut status = head.status;
    let segments = if listing_needed {
        let Ok(bytes) = http_body_util::Limited::new(body, MAX_STORED_MANIFEST)
            .collect()
            .await
            .map(|b| b.to_bytes())
        else {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest",
            );
        };
        match manifest::parse_stored(&bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(path = %parts.uri.path(), error = %e, "Unable to load SLO manifest");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unable to load SLO manifest",
                );
            }
        }
    } else {
        None
    };
    if let Some(segs) = &segments {
        if attrs.is_legacy() {
            let parts_: Vec<_> = segs.iter().map(manifest::etag_part).collect();
            attrs.slo_etag = Some(manifest::slo_etag(&parts_));
            attrs.slo_size = Some(segs.iter().map(Stored::length).sum());
        }
    }
    let slo_etag = attrs.slo_etag.clone().unwrap_or_default();
    let slo_size = attrs.slo_size.unwrap_or(0);
    let h = &mut head.headers;
    set(h, "etag", &format!("\"{slo_etag}\""));
    set(h, "x-manifest-etag", &attrs.manifest_etag);
    set(h, "content-length", &slo_size.to_string());
    h.remove("content-range");
    if conditional_failure && !refetch {
        set(h, "content-length", "0");
        return Response::from_parts(head, Body::empty());
    }
    let last_modified = header(&head.headers, "last-modified").map(str::to_string);
    if let Some(s) =
        super::super::conditional_status(&parts.headers, &slo_etag, last_modified.as_deref())
    {
        let mut r = empty(s);
        *r.headers_mut() = head.headers;
        set(r.headers_mut(), "content-length", "0");
        return r;
    }
    let Some(segments) = segments else {
        // HEAD of a manifest with its sysmeta: the headers say everything.
        return Response::from_parts(head, Body::empty());
    };
    let mut byteranges: Vec<(u64, u64)> = Vec::new();
    let mut multipart = false;
    if let Some(n) = part_num {
        set(
            &mut head.headers,
            "x-parts-count",
            &segments.len().to_string(),
        );
        if n > segments.len() {
            let body = "The requested part number is not satisfiable";
            let mut r = if is_head {
                empty(StatusCode::RANGE_NOT_SATISFIABLE)
            } else {
                text(StatusCode::RANGE_NOT_SATISFIABLE, body)
            };
            let ct = r.headers().get("content-type").cloned();
            *r.headers_mut() = head.headers;
            if let Some(ct) = ct {
                r.headers_mut().insert("content-type", ct);
            }
            let len = if is_head { 0 } else { body.len() };
            set(r.headers_mut(), "content-length", &len.to_string());
            set(
                r.headers_mut(),
                "content-range",
                &format!("bytes */{slo_size}"),
            );
            return r;
        }
        let start: u64 = segments[..n - 1].iter().map(Stored::length).sum();
        let end = start + segments[n - 1].length() - 1;
        byteranges.push((start, end));
        status = StatusCode::PARTIAL_CONTENT;
    } else {
        match header(&parts.headers, "range").map(|r| parse_range(r, slo_size)) {
            None | Some(RangeOutcome::Full) => {
                if slo_size > 0 {
                    byteranges.push((0, slo_size - 1));
                }
            }
            Some(RangeOutcome::Unsatisfiable) => {
                let mut r = text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "Requested Range Not Satisfiable",
                );
                set(
                    r.headers_mut(),
                    "content-range",
                    &format!("bytes */{slo_size}"),
                );
                set(r.headers_mut(), "etag", &format!("\"{slo_etag}\""));
                return r;
            }
            Some(RangeOutcome::Ranges(rs)) => {
                status = StatusCode::PARTIAL_CONTENT;
                multipart = rs.len() > 1;
                byteranges = rs.iter().map(|r| (r.start, r.end)).collect();
            }
        }
    }
    let ctype = header(&head.headers, "content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let boundary = multipart.then(|| format!("{:032x}", rand::random::<u128>()));
    let length = match &boundary {
        Some(b) => multipart_length(&byteranges, b, &ctype, slo_size),
        None => byteranges.iter().map(|(a, b)| b - a + 1).sum(),
    };
    if status == StatusCode::PARTIAL_CONTENT {
        if let Some(b) = &boundary {
            set(
                &mut head.headers,
                "content-type",
                &format!("multipart/byteranges;boundary={b}"),
            );
        } else {
            let (a, b) = byteranges[0];
            set(
                &mut head.headers,
                "content-range",
                &format!("bytes {a}-{b}/{slo_size}"),
            );
        }
    }
    set(&mut head.headers, "content-length", &length.to_string());
    head.status = status;
    if is_head {
        return Response::from_parts(head, Body::empty());
    }
    let writer = Writer {
        slo: slo.clone(),
        caller: Caller::of(&parts),
        base: format!("/{}/{}", path.version, quote(&path.account)),
        manifest_path: parts.uri.path().to_string(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(slo.0.conf.max_get_time),
        first: None,
        segments_served: 0,
        next_slot: tokio::time::Instant::now(),
        cache: HashMap::new(),
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (first_tx, first_rx) = oneshot::channel();
    let job = Job {
        byteranges,
        boundary,
        ctype,
        total: slo_size,
    };
    tokio::spawn(writer.run(job, segments, tx, first_tx));
    if let Ok(Err(msg)) = first_rx.await {
        tracing::error!(path = %parts.uri.path(), "{msg}");
        return text(StatusCode::CONFLICT, "<html><h1>Conflict</h1><p>There was a conflict when trying to complete your request.</p></html>");
    }
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Response::from_parts(head, Body::from_stream(stream))
}

/// Whether a 206's Content-Range covers the whole manifest.
fn complete_body(h: &HeaderMap) -> bool {
    let Some(cr) = header(h, "content-range").and_then(|v| v.strip_prefix("bytes ")) else {
        return false;
    };
    let Some((span, total)) = cr.split_once('/') else {
        return false;
    };
    let Some((a, b)) = span.split_once('-') else {
        return false;
    };
    matches!((a.parse::<u64>(), b.parse::<u64>(), total.parse::<u64>()), (Ok(0), Ok(b), Ok(t)) if b + 1 == t)
}

fn part_header(boundary: &str, ctype: &str, a: u64, b: u64, total: u64) -> String {
    format!("--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n")
}

fn multipart_length(ranges: &[(u64, u64)], boundary: &str, ctype: &str, total: u64) -> u64 {
    let mut n = 0;
    for &(a, b) in ranges {
        n += part_header(boundary, ctype, a, b, total).len() as u64 + (b - a + 1) + 2;
    }
    n + boundary.len() as u64 + 4
}

/// `?multipart-manifest=get`: the stored manifest as JSON, or (`format=raw`) in the
/// client's PUT format with its own length and ETag.
async fn manifest_response(resp: Response, raw: bool, is_head: bool) -> Response {
    let (mut head, body) = resp.into_parts();
    if !head.status.is_success() {
        return Response::from_parts(head, body);
    }
    if !raw {
        set(
            &mut head.headers,
            "content-type",
            "application/json; charset=utf-8",
        );
        return Response::from_parts(head, body);
    }
    // A HEAD has no body to convert: read the manifest as a GET would.
    let bytes = match http_body_util::Limited::new(body, MAX_STORED_MANIFEST)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to load SLO manifest",
            )
        }
    };
    let Ok(converted) = manifest::to_raw_format(&bytes) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unable to load SLO manifest",
        );
    };
    set(
        &mut head.headers,
        "content-length",
        &converted.len().to_string(),
    );
    set(
        &mut head.headers,
        "etag",
        &hex::encode(Md5::digest(&converted)),
    );
    if is_head {
        return Response::from_parts(head, Body::empty());
    }
    Response::from_parts(head, Body::from(converted))
}

/// What the body is made of: byte ranges of the large object, maybe as multipart.
struct Job {
    byteranges: Vec<(u64, u64)>,
    boundary: Option<String>,
    ctype: String,
    total: u64,
}

/// One piece of the body: inline bytes, or a span of one segment object.
enum Piece {
    Data(Bytes),
    Object {
        name: String,
        hash: String,
        bytes: u64,
        first: u64,
        last: u64,
    },
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Produces the body in a task of its own, into a channel of a few chunks.
struct Writer {
    slo: Slo,
    caller: Caller,
    /// `/v1/<quoted account>`: segment names are `/container/object` under it.
    base: String,
    manifest_path: String,
    deadline: tokio::time::Instant,
    /// Told once whether the first segment could be read (then the headers go out).
    first: Option<oneshot::Sender<Result<(), String>>>,
    segments_served: usize,
    next_slot: tokio::time::Instant,
    /// A few sub-manifests already read, by name.
    cache: HashMap<String, std::sync::Arc<Vec<Stored>>>,
}

/// Why the body stops early: an error to log (and, before the first byte, a 409).
type Stop = String;

impl Writer {
    async fn run(
        mut self,
        job: Job,
        segments: Vec<Stored>,
        tx: Tx,
        first: oneshot::Sender<Result<(), String>>,
    ) {
        self.first = Some(first);
        let segments = std::sync::Arc::new(segments);
        let result = self.write_all(&job, segments, &tx).await;
        match result {
            Ok(()) => {
                if let Some(f) = self.first.take() {
                    let _ = f.send(Ok(()));
                }
            }
            Err(msg) => {
                if let Some(f) = self.first.take() {
                    let _ = f.send(Err(msg));
                } else {
                    tracing::error!(manifest = %self.manifest_path, "{msg}");
                    let _ = tx.send(Err(std::io::Error::other(msg))).await;
                }
            }
        }
    }

    async fn emit(&mut self, tx: &Tx, b: Bytes) -> Result<(), Stop> {
        if let Some(f) = self.first.take() {
            let _ = f.send(Ok(()));
        }
        tx.send(Ok(b))
            .await
            .map_err(|_| "client went away".to_string())
    }

    async fn write_all(
        &mut self,
        job: &Job,
        segments: std::sync::Arc<Vec<Stored>>,
        tx: &Tx,
    ) -> Result<(), Stop> {
        for &(a, b) in &job.byteranges {
            if let Some(bd) = &job.boundary {
                // The part header waits until the part's first segment is known good.
                let h = part_header(bd, &job.ctype, a, b, job.total);
                self.walk(
                    segments.clone(),
                    a as i64,
                    b as i64,
                    1,
                    tx,
                    Some(Bytes::from(h)),
                )
                .await?;
                self.emit(tx, Bytes::from_static(b"\r\n")).await?;
            } else {
                self.walk(segments.clone(), a as i64, b as i64, 1, tx, None)
                    .await?;
            }
        }
        if let Some(bd) = &job.boundary {
            self.emit(tx, Bytes::from(format!("--{bd}--"))).await?;
        }
        Ok(())
    }

    /// Serves bytes `first..=last` (relative to this list of segments), descending into
    /// sub-manifests. `lead` goes out just before the first byte.
    fn walk<'a>(
        &'a mut self,
        segments: std::sync::Arc<Vec<Stored>>,
        mut first: i64,
        mut last: i64,
        depth: usize,
        tx: &'a Tx,
        mut lead: Option<Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Stop>> + Send + 'a>> {
        Box::pin(async move {
            for seg in segments.iter() {
                let len = seg.length() as i64;
                if first >= len {
                    first -= len;
                    last -= len;
                    continue;
                }
                if last < 0 {
                    break;
                }
                match seg {
                    Stored::Data(d) => {
                        let a = first.max(0) as usize;
                        let b = (len - 1).min(last) as usize;
                        self.serve(
                            Piece::Data(Bytes::copy_from_slice(&d[a..=b])),
                            tx,
                            &mut lead,
                        )
                        .await?;
                    }
                    Stored::Object {
                        name,
                        hash,
                        bytes,
                        range,
                        sub_slo,
                    } => {
                        let (rs, re) = range
                            .map(|(a, b)| (a as i64, b as i64))
                            .unwrap_or((0, len - 1));
                        let a = rs + first.max(0);
                        let b = re.min(rs + last);
                        if *sub_slo {
                            if depth >= MAX_RECURSION_DEPTH {
                                return Err(format!(
                                    "While processing manifest {:?}, max recursion depth was exceeded",
                                    self.manifest_path
                                ));
                            }
                            let sub = self.sub_manifest(name).await?;
                            let lead_taken = lead.take();
                            self.walk(sub, a, b, depth + 1, tx, lead_taken).await?;
                        } else {
                            let piece = Piece::Object {
                                name: name.clone(),
                                hash: hash.clone(),
                                bytes: *bytes,
                                first: a as u64,
                                last: b as u64,
                            };
                            self.serve(piece, tx, &mut lead).await?;
                        }
                    }
                }
                first -= len;
                last -= len;
            }
            Ok(())
        })
    }

    async fn sub_manifest(&mut self, name: &str) -> Result<std::sync::Arc<Vec<Stored>>, Stop> {
        if let Some(s) = self.cache.get(name) {
            return Ok(s.clone());
        }
        let uri = format!("{}/{}", self.base, quote(name.trim_start_matches('/')));
        let resp = self
            .slo
            .0
            .next
            .call(
                self.caller
                    .subrequest(Method::GET, &uri, HeaderMap::new(), Body::empty(), "SLO"),
            )
            .await;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_STORED_MANIFEST)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let short = if text.len() <= 60 {
                text.to_string()
            } else {
                format!("{}...", &text[..57.min(text.len())])
            };
            return Err(format!(
                "while fetching {}, GET of submanifest {uri} failed with status {} ({short})",
                self.manifest_path,
                status.as_u16()
            ));
        }
        let segs = manifest::parse_stored(&body).map_err(|e| {
            format!(
                "while fetching {}, JSON-decoding of submanifest {uri} failed with {e}",
                self.manifest_path
            )
        })?;
        let segs = std::sync::Arc::new(segs);
        if self.cache.len() >= 20 {
            self.cache.clear();
        }
        self.cache.insert(name.to_string(), segs.clone());
        Ok(segs)
    }

    /// Sends one piece: its bytes checked against the manifest (ETag, and size and MD5 for
    /// a whole segment).
    async fn serve(&mut self, piece: Piece, tx: &Tx, lead: &mut Option<Bytes>) -> Result<(), Stop> {
        if tokio::time::Instant::now() > self.deadline {
            return Err(format!(
                "While processing manifest {}, max LO GET time of {}s exceeded",
                self.manifest_path, self.slo.0.conf.max_get_time
            ));
        }
        let (name, hash, bytes, first, last) = match piece {
            Piece::Data(d) => {
                if let Some(l) = lead.take() {
                    self.emit(tx, l).await?;
                }
                return self.emit(tx, d).await;
            }
            Piece::Object {
                name,
                hash,
                bytes,
                first,
                last,
            } => (name, hash, bytes, first, last),
        };
        self.rate_limit(last - first + 1).await;
        let whole = first == 0 && bytes > 0 && last == bytes - 1;
        let mut h = HeaderMap::new();
        if !whole {
            set(&mut h, "range", &format!("bytes={first}-{last}"));
        }
        let uri = format!(
            "{}/{}?multipart-manifest=get",
            self.base,
            quote(name.trim_start_matches('/'))
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
        let seg_path = uri.split('?').next().unwrap_or("").to_string();
        if !status.is_success() {
            let body = http_body_util::Limited::new(resp.into_body(), 4096)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            let short = if text.len() <= 60 {
                text.to_string()
            } else {
                format!("{}...", &text[..57.min(text.len())])
            };
            return Err(format!(
                "While processing manifest {}, got {} ({short}) while retrieving {seg_path}",
                self.manifest_path,
                status.as_u16()
            ));
        }
        let got_etag = header(resp.headers(), "etag")
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let got_len: Option<u64> =
            header(resp.headers(), "content-length").and_then(|v| v.parse().ok());
        if (!hash.is_empty() && got_etag != hash) || (bytes > 0 && whole && got_len != Some(bytes))
        {
            return Err(format!(
                "Object segment no longer valid: {seg_path} etag: {got_etag} != {hash} or {} != {bytes}.",
                got_len.map(|l| l.to_string()).unwrap_or_else(|| "None".into())
            ));
        }
        if let Some(l) = lead.take() {
            self.emit(tx, l).await?;
        }
        let mut md5 = whole.then(Md5::new);
        let mut seen = 0u64;
        let mut stream = resp.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("reading {seg_path}: {e}"))?;
            if let Some(m) = md5.as_mut() {
                m.update(&chunk);
            }
            seen += chunk.len() as u64;
            self.emit(tx, chunk).await?;
            if tokio::time::Instant::now() > self.deadline {
                return Err(format!(
                    "While processing manifest {}, max LO GET time of {}s exceeded",
                    self.manifest_path, self.slo.0.conf.max_get_time
                ));
            }
        }
        if let Some(m) = md5 {
            let actual = hex::encode(m.finalize());
            if seen != bytes || actual != got_etag {
                return Err(format!(
                    "Bad MD5 checksum or length for {seg_path} as part of {}: headers had {got_etag} \
                     ({bytes} bytes), but the object was {actual} ({seen} bytes)",
                    self.manifest_path
                ));
            }
        }
        Ok(())
    }

    /// Swift's rate limit on small segments: after the first `rate_limit_after_segment`,
    /// those smaller than `rate_limit_under_size` go at most `rate_limit_segments_per_sec`.
    async fn rate_limit(&mut self, piece_len: u64) {
        let conf = &self.slo.0.conf;
        self.segments_served += 1;
        if conf.rate_limit_segments_per_sec == 0
            || self.segments_served <= conf.rate_limit_after_segment
            || piece_len >= conf.rate_limit_under_size
        {
            return;
        }
        let now = tokio::time::Instant::now();
        if self.next_slot > now {
            tokio::time::sleep_until(self.next_slot).await;
        }
        self.next_slot = self.next_slot.max(now)
            + Duration::from_secs_f64(1.0 / conf.rate_limit_segments_per_sec as f64);
    }
}

//! The body of an SLO GET, produced by a task of its own: it walks the manifest's segments
//! (fetching sub-manifests when it reaches them), reads each piece with a subrequest and
//! sends the bytes into a channel of a few chunks, checking each segment against the
//! manifest (ETag; size and MD5 when read whole). Whether the first piece could be read is
//! reported before any byte, so the caller can still answer 409.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

use super::manifest::{self, Stored};
use super::Slo;
use crate::proxy::backend::set;
use crate::proxy::env::Caller;
use crate::proxy::{header, quote};

/// Sub-manifests nest at most this deep (Swift's `max_slo_recursion_depth`).
const MAX_RECURSION_DEPTH: usize = 10;
/// A stored manifest read back is bounded (what a PUT can store, with room).
pub(super) const MAX_STORED_MANIFEST: usize = 64 * 1024 * 1024;

/// One multipart/byteranges part's header.
pub(super) fn part_header(boundary: &str, ctype: &str, a: u64, b: u64, total: u64) -> String {
    format!("--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{total}\r\n\r\n")
}

/// What the body is made of: byte ranges of the large object, maybe as multipart.
pub(super) struct Job {
    pub(super) byteranges: Vec<(u64, u64)>,
    pub(super) boundary: Option<String>,
    pub(super) ctype: String,
    pub(super) total: u64,
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

pub(super) type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Produces the body in a task of its own, into a channel of a few chunks.
pub(super) struct Writer {
    pub(super) slo: Slo,
    pub(super) caller: Caller,
    /// `/v1/<quoted account>`: segment names are `/container/object` under it.
    pub(super) base: String,
    pub(super) manifest_path: String,
    pub(super) deadline: tokio::time::Instant,
    /// Told once whether the first segment could be read (then the headers go out).
    pub(super) first: Option<oneshot::Sender<Result<(), String>>>,
    pub(super) segments_served: usize,
    pub(super) next_slot: tokio::time::Instant,
    /// A few sub-manifests already read, by name.
    pub(super) cache: HashMap<String, std::sync::Arc<Vec<Stored>>>,
}

/// Why the body stops early: an error to log (and, before the first byte, a 409).
type Stop = String;

/// The client stopped reading: not an error of the large object's.
const CLIENT_GONE: &str = "client went away";

impl Writer {
    pub(super) async fn run(
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
                } else if msg == CLIENT_GONE {
                    // Nobody left to tell; the client's disconnect is in the access log.
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
        // Swift judges "small" by the whole segment's size, whatever part is read.
        self.rate_limit(bytes).await;
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
    async fn rate_limit(&mut self, segment_size: u64) {
        let conf = &self.slo.0.conf;
        self.segments_served += 1;
        if conf.rate_limit_segments_per_sec == 0
            || self.segments_served <= conf.rate_limit_after_segment
            || segment_size >= conf.rate_limit_under_size
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

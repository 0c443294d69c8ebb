//! `SSYNC /<dev>/<part>`: the receiving end of Swift's ssync replication protocol.
//!
//! The request and the answer are both chunked streams of lines, interleaved: the
//! answer (200, `X-Backend-Accept-No-Commit: True`) starts before the sender has sent
//! anything, so the protocol runs in a task that writes answer lines into the response
//! body while it reads the request body.
//!
//! 1. Missing check: the sender offers `<hash> <timestamps>` lines; we compare each with
//!    the hash directory in this partition and, after `:MISSING_CHECK: END`, answer the
//!    hashes we want with `d` (data) and/or `m` (metadata).
//! 2. Updates: PUT/POST/DELETE subrequests (request line, header lines, a blank line, and
//!    for a PUT exactly Content-Length body bytes). Each runs through this object server's
//!    own handlers, marked `X-Backend-Replication`, under this partition whatever the name
//!    hashes to (as Swift's receiver does). 404 counts as success.
//!
//! Errors become one `:ERROR: <code> '<message>'` line, as Swift writes them; the sender
//! then treats the whole sync as failed and keeps its copy. While a sync runs it holds
//! the partition's `.lock-replication` and the device's `.lock` (Swift's
//! `replication_lock`), and one of `replication_concurrency` slots.

mod input;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::sync::mpsc;

use super::diskfile::{self, ec, FragmentSelection, Lookup, OnDiskState};
use super::request::disk_error;
use super::ObjectState;
use crate::common::headers as h;
use crate::common::shell::{blocking, storage_path, Resp};
use crate::common::{plain, Timestamp};
use input::SsyncInput;
use ringsmith::swift::policy::Policy;
use wire::{Held, Offer};

/// A failure that ends the sync: the code and message of the `:ERROR:` line.
struct Abort(u16, String);

impl From<String> for Abort {
    fn from(m: String) -> Abort {
        Abort(0, m)
    }
}

/// What one sync works on, validated before the answer starts.
struct SyncTarget {
    device: String,
    partition: String,
    policy: Policy,
    device_path: PathBuf,
    part_dir: PathBuf,
    frag_index: Option<u32>,
}

pub(super) async fn ssync(state: &Arc<ObjectState>, path: &str, req: Request) -> Resp {
    let sp = match storage_path(path, 2, 2) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let policy = match super::request::request_policy(state, req.headers()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let frag_index = match h::get(req.headers(), "x-backend-ssync-frag-index") {
        None | Some("") => None,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid X-Backend-Ssync-Frag-Index '{v}'"),
                )
            }
        },
    };
    let device_path = match state.cfg.storage.devices.require(&sp.device) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let part_dir = device_path.join(policy.dir("objects")).join(&sp.partition);
    let target = SyncTarget {
        device: sp.device,
        partition: sp.partition,
        policy,
        device_path,
        part_dir,
        frag_index,
    };
    let input = SsyncInput::new(
        req.into_body(),
        state.cfg.client_timeout,
        state.cfg.network_chunk_size,
    );
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let state = state.clone();
    tokio::spawn(async move {
        let mut session = Session {
            state,
            target,
            input,
            tx,
        };
        session.run().await;
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    let mut resp = axum::http::Response::new(body);
    resp.headers_mut().insert(
        "x-backend-accept-no-commit",
        HeaderValue::from_static("True"),
    );
    resp
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

struct Session {
    state: Arc<ObjectState>,
    target: SyncTarget,
    input: SsyncInput,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Session {
    async fn send(&mut self, data: impl Into<Bytes>) {
        // A sender that hung up is noticed on the next read.
        let _ = self.tx.send(Ok(data.into())).await;
    }

    async fn run(&mut self) {
        self.send(&b"\r\n"[..]).await;
        let slot = match &self.state.ssync_slots {
            Some(sem) => match sem.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let msg = "<html><h1>Service Unavailable</h1><p>The server is currently \
                               unavailable. Please try again at a later time.</p></html>";
                    self.send(format!(":ERROR: 503 b'{msg}'\n")).await;
                    return;
                }
            },
            None => None,
        };
        let result = match self.lock().await {
            Ok(locks) => {
                let r = self.exchange().await;
                drop(locks);
                r
            }
            Err(e) => Err(e),
        };
        drop(slot);
        match result {
            Ok(()) => {}
            Err(Abort(code, msg)) => {
                tracing::warn!(
                    device = %self.target.device,
                    partition = %self.target.partition,
                    error = %msg,
                    "ssync receiver"
                );
                let quoted = python_quote(&msg);
                if code == 500 {
                    self.send(format!(":ERROR: {code} b{quoted}\n")).await;
                } else {
                    self.send(format!(":ERROR: {code} {quoted}\n")).await;
                }
            }
        }
    }

    /// Swift's `replication_lock`: the partition's `.lock-replication`, then the device's
    /// `.lock` (one sync per device, Swift's default `replication_concurrency_per_device`).
    async fn lock(&mut self) -> Result<Vec<ringsmith::flock::LockGuard>, Abort> {
        let part_dir = self.target.part_dir.clone();
        let device_path = self.target.device_path.clone();
        let per_device = self.state.cfg.replication_concurrency_per_device;
        let timeout = self.state.cfg.replication_lock_timeout;
        blocking(
            move || -> Result<Vec<ringsmith::flock::LockGuard>, String> {
                let started = std::time::Instant::now();
                std::fs::create_dir_all(&part_dir).map_err(|e| e.to_string())?;
                let part_lock = part_dir.join(".lock-replication");
                let mut held = Vec::new();
                match ringsmith::flock::lock_with_timeout(&part_lock, timeout) {
                    Ok(Some(g)) => held.push(g),
                    Ok(None) => {
                        return Err(format!(
                            "{} seconds: {}",
                            timeout.as_secs(),
                            part_lock.display()
                        ))
                    }
                    Err(e) => return Err(e.to_string()),
                }
                if per_device > 0 {
                    // Any one of `per_device` lock files: `.lock`, `.lock1`, ...
                    let names: Vec<PathBuf> = (0..per_device)
                        .map(|i| {
                            let n = if i == 0 {
                                ".lock".into()
                            } else {
                                format!(".lock{i}")
                            };
                            device_path.join(n)
                        })
                        .collect();
                    loop {
                        for n in &names {
                            if let Ok(Some(g)) =
                                ringsmith::flock::lock_with_timeout(n, Duration::ZERO)
                            {
                                held.push(g);
                                return Ok(held);
                            }
                        }
                        if started.elapsed() >= timeout {
                            return Err(format!(
                                "{} seconds: {}",
                                timeout.as_secs(),
                                names[0].display()
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Ok(held)
            },
        )
        .await
        .map_err(|m| Abort(0, m))
    }

    async fn exchange(&mut self) -> Result<(), Abort> {
        let wanted = self.missing_check().await?;
        let mut answer = String::from(":MISSING_CHECK: START\r\n");
        for line in wanted {
            answer.push_str(&line);
            answer.push_str("\r\n");
        }
        answer.push_str(":MISSING_CHECK: END\r\n");
        self.send(answer).await;
        self.updates().await?;
        self.send(&b":UPDATES: START\r\n:UPDATES: END\r\n"[..])
            .await;
        Ok(())
    }

    async fn missing_check(&mut self) -> Result<Vec<String>, Abort> {
        let line = self.input.read_line("missing_check start").await?;
        if line.is_empty() {
            return Err(Abort(0, "client disconnected".into()));
        }
        if line.trim_ascii() != b":MISSING_CHECK: START" {
            return Err(Abort(
                0,
                format!(
                    "Looking for :MISSING_CHECK: START got {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(1024)])
                ),
            ));
        }
        let mut wanted = Vec::new();
        loop {
            let line = self.input.read_line("missing_check line").await?;
            if line.is_empty() || line.trim_ascii() == b":MISSING_CHECK: END" {
                break;
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| "non-ASCII missing_check line".to_string())?;
            let offer = wire::decode_offer(text)?;
            let held = self.held(&offer).await?;
            if let Some(w) = wire::wanted(&offer, &held) {
                wanted.push(wire::encode_wanted(&offer.hash, w));
            }
        }
        Ok(wanted)
    }

    /// What this partition holds of an offered object. A non-durable fragment of ours
    /// that the sender holds durable is made durable here instead of being sent again.
    async fn held(&mut self, offer: &Offer) -> Result<Held, Abort> {
        if offer.hash.len() != 32 || !offer.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Held::default());
        }
        let hash_dir = self
            .target
            .part_dir
            .join(&offer.hash[29..])
            .join(&offer.hash);
        let frag_index = self.target.frag_index;
        let offer = offer.clone();
        let device = self.target.device.clone();
        let result = blocking(move || -> Result<Held, diskfile::DiskError> {
            let mut made_durable = false;
            loop {
                let held = held_now(&hash_dir, frag_index)?;
                let st = OnDiskState::read_dir(&hash_dir)?;
                let Some(files) = st.ec else {
                    return Ok(held);
                };
                let newer_than_durable = files.durable_timestamp.is_none_or(|d| d < offer.ts_data);
                let have_offered_fragment = frag_index.is_some_and(|fi| {
                    files
                        .frag_sets
                        .get(&offer.ts_data)
                        .is_some_and(|set| set.iter().any(|(_, f)| *f == fi))
                });
                if !(newer_than_durable && have_offered_fragment) {
                    return Ok(held);
                }
                if !offer.durable {
                    // Ours is as new as the offered non-durable one: nothing wanted.
                    return Ok(Held {
                        ts_data: Some(offer.ts_data),
                        ..held
                    });
                }
                if made_durable {
                    return Ok(held);
                }
                let fi = frag_index.unwrap_or_default();
                let from = hash_dir.join(ec::fragment_name(offer.ts_data, fi, false));
                let to = hash_dir.join(ec::fragment_name(offer.ts_data, fi, true));
                std::fs::rename(&from, &to)?;
                diskfile::fsync_dir(&hash_dir)?;
                let _ = diskfile::cleanup(&hash_dir, None);
                if let Some(part_dir) = hash_dir.parent().and_then(|s| s.parent()) {
                    let suffix = &offer.hash[29..];
                    diskfile::hashes::invalidate_hash(part_dir, suffix)?;
                }
                made_durable = true;
            }
        })
        .await;
        result.map_err(|e| {
            let r = disk_error(&device, e);
            Abort(r.status().as_u16(), "disk error".into())
        })
    }

    async fn updates(&mut self) -> Result<(), Abort> {
        let line = self.input.read_line("updates start").await?;
        if line.is_empty() {
            return Err(Abort(0, "client disconnected".into()));
        }
        if line.trim_ascii() != b":UPDATES: START" {
            return Err(Abort(
                0,
                format!(
                    "Looking for :UPDATES: START got {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(1024)])
                ),
            ));
        }
        let (mut successes, mut failures) = (0u64, 0u64);
        loop {
            let line = self.input.read_line("updates line").await?;
            if line.is_empty() || line.trim_ascii() == b":UPDATES: END" {
                break;
            }
            let context = String::from_utf8_lossy(line.trim_ascii()).into_owned();
            let status = self.subrequest(&context).await?;
            if (200..300).contains(&status) || status == 404 {
                successes += 1;
            } else {
                tracing::warn!(status, subrequest = %context, "ssync subrequest failed");
                failures += 1;
            }
            let cfg = &self.state.cfg;
            if failures >= cfg.replication_failure_threshold
                && (successes == 0
                    || failures as f64 / successes as f64 > cfg.replication_failure_ratio)
            {
                return Err(Abort(
                    0,
                    format!("Too many {failures} failures to {successes} successes"),
                ));
            }
        }
        if failures > 0 {
            return Err(Abort(
                500,
                format!("ERROR: With :UPDATES: {failures} failures to {successes} successes"),
            ));
        }
        Ok(())
    }

    /// Reads one subrequest (its head line is `context`), runs it, and returns its status.
    async fn subrequest(&mut self, context: &str) -> Result<u16, Abort> {
        let (method, path) = context
            .split_once(' ')
            .ok_or_else(|| format!("Bad subrequest line {context:?}"))?;
        let mut headers = HeaderMap::new();
        let mut replication_headers = Vec::new();
        let mut content_length: Option<u64> = None;
        loop {
            let line = self.input.read_line("updates line").await?;
            if line.is_empty() {
                return Err(format!("Got no headers for {context}").into());
            }
            let line = line.trim_ascii();
            if line.is_empty() {
                break;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| format!("Bad header line in {context}"))?;
            let name = String::from_utf8_lossy(line[..colon].trim_ascii()).to_ascii_lowercase();
            let value = line[colon + 1..].trim_ascii();
            let hn = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("Bad header name {name:?} in {context}"))?;
            let hv = HeaderValue::from_bytes(value)
                .map_err(|_| format!("Bad header value for {name} in {context}"))?;
            if name == "content-length" {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("Bad Content-Length in {context}"))?;
                content_length = Some(n);
            }
            // The object server stores every synced header as it came, except the
            // ETag it computes itself and the sender's commit instruction.
            if name != "etag" && name != "x-backend-no-commit" {
                replication_headers.push(name.clone());
            }
            headers.insert(hn, hv);
        }
        let body_len = match method {
            "DELETE" | "POST" => {
                if content_length.is_some_and(|n| n != 0) {
                    return Err(format!("{method} subrequest with content-length {path}").into());
                }
                0
            }
            "PUT" => {
                content_length.ok_or_else(|| format!("No content-length sent for {context}"))?
            }
            _ => return Err(format!("Invalid subrequest method {method}").into()),
        };
        let policy_index = self.target.policy.index.to_string();
        h::insert(
            &mut headers,
            "x-backend-storage-policy-index",
            &policy_index,
        );
        h::insert(&mut headers, "x-backend-replication", "True");
        if let Some(fi) = self.target.frag_index {
            h::insert(&mut headers, "x-backend-ssync-frag-index", &fi.to_string());
        }
        if !replication_headers.is_empty() {
            h::insert(
                &mut headers,
                "x-backend-replication-headers",
                &replication_headers.join(" "),
            );
        }
        let Ok(decoded) = crate::common::path::decode_path(path) else {
            self.skip_body(body_len, context).await?;
            return Ok(412);
        };
        let full_path = format!(
            "/{}/{}{}",
            self.target.device, self.target.partition, decoded
        );
        let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let mut req = Request::new(Body::from_stream(tokio_stream_from(body_rx)));
        *req.method_mut() = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("Invalid subrequest method {method}"))?;
        *req.headers_mut() = headers;
        let state = self.state.clone();
        let handler = async move { super::handle(&state, req, &full_path).await };
        // The subrequest's body is fed from the SSYNC stream while the handler runs; what
        // the handler does not read (a refusal) is read and dropped so the next
        // subrequest starts at its head line.
        let chunk = self.state.cfg.network_chunk_size.max(1);
        let input = &mut self.input;
        let feeder = async move {
            let mut left = body_len;
            let mut tx = Some(body_tx);
            while left > 0 {
                let piece = input.read_some(chunk.min(left as usize), context).await?;
                left -= piece.len() as u64;
                if let Some(t) = &tx {
                    if t.send(Ok(piece)).await.is_err() {
                        tx = None;
                    }
                }
            }
            Ok::<(), String>(())
        };
        let (resp, fed) = tokio::join!(handler, feeder);
        fed?;
        Ok(resp.status().as_u16())
    }

    async fn skip_body(&mut self, mut left: u64, context: &str) -> Result<(), Abort> {
        while left > 0 {
            let piece = self
                .input
                .read_some(left.min(1 << 20) as usize, context)
                .await?;
            left -= piece.len() as u64;
        }
        Ok(())
    }
}

/// What `hash_dir` holds, as the missing check compares it: for EC, the fragment of
/// `frag_index` (Swift's `get_diskfile_from_hash(frag_index=...)`).
fn held_now(
    hash_dir: &std::path::Path,
    frag_index: Option<u32>,
) -> Result<Held, diskfile::DiskError> {
    let select = FragmentSelection {
        prefs: None,
        frag_index,
    };
    Ok(match diskfile::open_selecting(hash_dir, None, &select) {
        Ok(Lookup::Found(o)) => {
            let ctype = o
                .metadata
                .get("Content-Type-Timestamp")
                .and_then(|t| Timestamp::parse(t).ok())
                .unwrap_or(o.data_timestamp);
            Held {
                ts_data: Some(o.data_timestamp),
                ts_meta: Some(o.meta_timestamp.unwrap_or(o.data_timestamp)),
                ts_ctype: Some(ctype),
            }
        }
        Ok(Lookup::Deleted(t)) => Held {
            ts_data: Some(t),
            ..Held::default()
        },
        Ok(Lookup::NotFound) => Held::default(),
        // A directory we cannot read is treated as absent: the sender's copy replaces it.
        Err(e) if e.is_insufficient_storage() => return Err(e),
        Err(_) => Held::default(),
    })
}

/// Python's `repr` of a str, as Swift's `:ERROR:` lines quote their messages.
fn python_quote(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

//! The sending end of Swift's SSYNC protocol (see `object::ssync` for the receiver).
//!
//! One call syncs some suffixes of one local partition to one remote device: offer every
//! object (`:MISSING_CHECK:`), read which the receiver wants, then send them as PUT
//! (data file bytes and its metadata), POST (the `.meta` metadata) and DELETE (a
//! tombstone's time) subrequests (`:UPDATES:`). The request is chunked both ways over a
//! plain TCP connection: the protocol reads the answer while the request is still open,
//! which a request/response HTTP client cannot do.
//!
//! Durable fragment archives are offered, and for a revert non-durable ones too (sent
//! with `X-Backend-No-Commit`, as Swift's revert does). With `send_data` false only
//! tombstones and metadata are sent: a primary pushing to a partner cannot send its own
//! fragment for the partner's index (the pulling rebuild covers data).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ringsmith::device::Device;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::common::Timestamp;
use crate::object::diskfile::{self, FragmentSelection, Lookup};
use crate::object::ssync::wire::{self, Offer};

/// What to offer from a local partition.
pub struct SyncSource {
    pub part_dir: PathBuf,
    pub partition: u32,
    pub policy_index: u32,
    /// For EC: the fragment index whose archives are offered.
    pub frag_index: Option<u32>,
    pub suffixes: Vec<String>,
    /// False: offer only what needs no data sent (tombstones, and `.meta` updates).
    pub send_data: bool,
    /// Offer the newest fragment archive even if not yet durable (a revert does: the
    /// receiver stores it non-durable, `X-Backend-No-Commit`).
    pub include_non_durable: bool,
}

/// How a sync ended: the offered objects the receiver now holds (hash -> the offered
/// data or tombstone time), and how many subrequests were sent.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    pub in_sync: BTreeMap<String, Timestamp>,
    pub sent: usize,
}

pub struct Timeouts {
    pub connect: Duration,
    /// Each write, and each wait for an answer line.
    pub io: Duration,
}

/// What one hash directory offers.
struct LocalObject {
    offer: Offer,
    deleted: bool,
}

/// The objects of `source` to offer, in suffix and hash order.
fn local_objects(source: &SyncSource) -> Vec<LocalObject> {
    let select = selection(source);
    let mut out = Vec::new();
    for suffix in &source.suffixes {
        let Ok(rd) = std::fs::read_dir(source.part_dir.join(suffix)) else {
            continue;
        };
        let mut hashes: Vec<(String, PathBuf)> = rd
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(h, _)| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        hashes.sort();
        for (hash, dir) in hashes {
            match diskfile::open_selecting(&dir, None, &select) {
                Ok(Lookup::Found(o)) => {
                    let ctype = o
                        .metadata
                        .get("Content-Type-Timestamp")
                        .and_then(|t| Timestamp::parse(t).ok())
                        .filter(|t| *t > o.data_timestamp)
                        .unwrap_or(o.data_timestamp);
                    out.push(LocalObject {
                        offer: Offer {
                            hash,
                            ts_data: o.data_timestamp,
                            ts_meta: o.meta_timestamp.unwrap_or(o.data_timestamp),
                            ts_ctype: ctype,
                            durable: is_durable(&o),
                        },
                        deleted: false,
                    });
                }
                Ok(Lookup::Deleted(t)) => out.push(LocalObject {
                    offer: Offer {
                        hash,
                        ts_data: t,
                        ts_meta: t,
                        ts_ctype: t,
                        durable: true,
                    },
                    deleted: true,
                }),
                // Nothing offerable (no fragment of this index), or unreadable: the
                // auditor deals with the latter.
                _ => {}
            }
        }
    }
    out
}

fn selection(source: &SyncSource) -> FragmentSelection {
    FragmentSelection {
        // No preferences at all: the newest archive of the index, durable or not.
        prefs: source.include_non_durable.then(Vec::new),
        frag_index: source.frag_index,
    }
}

fn is_durable(o: &diskfile::OpenObject) -> bool {
    o.ec.as_ref()
        .is_none_or(|e| e.durable_timestamp == Some(o.data_timestamp))
}

/// A subrequest to send: its head, and for a PUT the data file to stream.
struct Update {
    head: Vec<u8>,
    body: Option<(PathBuf, u64)>,
}

fn subrequest_head(method: &str, name: &str, headers: &BTreeMap<String, String>) -> Vec<u8> {
    let path: String = name
        .split('/')
        .map(super::quote)
        .collect::<Vec<_>>()
        .join("/");
    let mut head = format!("{method} {path}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The subrequests for one wanted object, read from disk now (it may have changed).
fn updates_for(
    source: &SyncSource,
    hash: &str,
    want: wire::Wanted,
) -> Result<Vec<Update>, diskfile::DiskError> {
    let dir = source.part_dir.join(&hash[hash.len() - 3..]).join(hash);
    let select = selection(source);
    let mut out = Vec::new();
    match diskfile::open_selecting(&dir, None, &select)? {
        Lookup::Found(o) => {
            let data_meta = diskfile::read_metadata(&o.file, &o.data_path)?;
            let name = data_meta.get("name").cloned().unwrap_or_default();
            if want.data && source.send_data {
                let mut headers: BTreeMap<String, String> = data_meta
                    .iter()
                    .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "Content-Length")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                headers.insert("Content-Length".into(), o.size.to_string());
                if !is_durable(&o) {
                    headers.insert("X-Backend-No-Commit".into(), "True".into());
                }
                out.push(Update {
                    head: subrequest_head("PUT", &name, &headers),
                    body: Some((o.data_path.clone(), o.size)),
                });
            }
            if want.meta && o.meta_timestamp.is_some_and(|m| m > o.data_timestamp) {
                let st = diskfile::OnDiskState::read_dir(&dir)?;
                if let Some(m) = st.meta {
                    let path = dir.join(&m.name);
                    let f = std::fs::File::open(&path)?;
                    let mut meta = diskfile::read_metadata(&f, &path)?;
                    meta.remove("name");
                    out.push(Update {
                        head: subrequest_head("POST", &name, &meta),
                        body: None,
                    });
                }
            }
        }
        Lookup::Deleted(t) if want.data => {
            let st = diskfile::OnDiskState::read_dir(&dir)?;
            let name = st
                .tombstone
                .and_then(|ts| {
                    let path = dir.join(&ts.name);
                    let f = std::fs::File::open(&path).ok()?;
                    diskfile::read_metadata(&f, &path)
                        .ok()?
                        .get("name")
                        .cloned()
                })
                .unwrap_or_default();
            if !name.is_empty() {
                let mut headers = BTreeMap::new();
                headers.insert("X-Timestamp".to_string(), t.internal());
                out.push(Update {
                    head: subrequest_head("DELETE", &name, &headers),
                    body: None,
                });
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The answer body, de-chunked, read line by line.
struct AnswerReader {
    inner: BufReader<OwnedReadHalf>,
    buffer: Vec<u8>,
    chunk_left: usize,
    ended: bool,
    timeout: Duration,
}

impl AnswerReader {
    async fn fill(&mut self) -> Result<(), String> {
        if self.chunk_left == 0 {
            let mut size_line = String::new();
            self.inner
                .read_line(&mut size_line)
                .await
                .map_err(|e| e.to_string())?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            self.chunk_left =
                usize::from_str_radix(size, 16).map_err(|_| "Early disconnect".to_string())?;
            if self.chunk_left == 0 {
                self.ended = true;
                return Ok(());
            }
        }
        let mut piece = vec![0u8; self.chunk_left.min(64 * 1024)];
        let n = self
            .inner
            .read(&mut piece)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("Early disconnect".into());
        }
        self.buffer.extend_from_slice(&piece[..n]);
        self.chunk_left -= n;
        if self.chunk_left == 0 {
            let mut crlf = [0u8; 2];
            self.inner
                .read_exact(&mut crlf)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The next non-empty line (trimmed); an error at the end of the answer.
    async fn line(&mut self, waiting_for: &str) -> Result<String, String> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line).trim().to_string();
                if text.is_empty() {
                    continue;
                }
                if text.starts_with(":ERROR:") {
                    return Err(format!("receiver: {text}"));
                }
                return Ok(text);
            }
            if self.ended {
                return Err(format!("Early disconnect waiting for {waiting_for}"));
            }
            tokio::time::timeout(self.timeout, self.fill())
                .await
                .map_err(|_| format!("timeout waiting for {waiting_for}"))??;
        }
    }
}

struct Connection {
    writer: OwnedWriteHalf,
    answer: AnswerReader,
    timeout: Duration,
}

impl Connection {
    async fn open(
        node: &Device,
        source: &SyncSource,
        backend_index: Option<u32>,
        t: &Timeouts,
    ) -> Result<Connection, String> {
        let base = super::node_base(node);
        let addr = base.trim_start_matches("http://").to_string();
        let stream = tokio::time::timeout(t.connect, TcpStream::connect(&addr))
            .await
            .map_err(|_| format!("connect timeout to {addr}"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (read, mut writer) = stream.into_split();
        let mut head = format!(
            "SSYNC /{}/{} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\
             X-Backend-Storage-Policy-Index: {}\r\n",
            super::quote(&node.device),
            source.partition,
            source.policy_index
        );
        if let Some(fi) = backend_index {
            head.push_str(&format!(
                "X-Backend-Ssync-Frag-Index: {fi}\r\nX-Backend-Ssync-Node-Index: {fi}\r\n"
            ));
        }
        head.push_str("\r\n");
        tokio::time::timeout(t.io, writer.write_all(head.as_bytes()))
            .await
            .map_err(|_| "timeout sending SSYNC".to_string())?
            .map_err(|e| e.to_string())?;
        let mut inner = BufReader::new(read);
        let mut status = String::new();
        tokio::time::timeout(t.io, inner.read_line(&mut status))
            .await
            .map_err(|_| "timeout waiting for the SSYNC answer".to_string())?
            .map_err(|e| e.to_string())?;
        let code = status.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut chunked = false;
        loop {
            let mut line = String::new();
            inner
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            let l = line.trim();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.trim().eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        if code != "200" {
            return Err(format!("Expected status 200; got {}", status.trim()));
        }
        if !chunked {
            return Err("SSYNC answer is not chunked".into());
        }
        Ok(Connection {
            writer,
            answer: AnswerReader {
                inner,
                buffer: Vec::new(),
                chunk_left: 0,
                ended: false,
                timeout: t.io,
            },
            timeout: t.io,
        })
    }

    /// Sends `data` as one chunk.
    async fn chunk(&mut self, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        tokio::time::timeout(self.timeout, self.writer.write_all(&framed))
            .await
            .map_err(|_| "timeout sending to the receiver".to_string())?
            .map_err(|e| e.to_string())
    }

    async fn expect(&mut self, line: &str) -> Result<(), String> {
        let got = self.answer.line(line).await?;
        if got != line {
            return Err(format!("Unexpected response: {got:?}"));
        }
        Ok(())
    }
}

/// Syncs `source` to `node` (its fragment index `backend_index`, for EC).
pub async fn ssync(
    source: &SyncSource,
    node: &Device,
    backend_index: Option<u32>,
    t: &Timeouts,
) -> Result<SyncOutcome, String> {
    let mut outcome = SyncOutcome::default();
    if source.suffixes.is_empty() {
        return Ok(outcome);
    }
    let objects = {
        let s = SyncSource {
            part_dir: source.part_dir.clone(),
            suffixes: source.suffixes.clone(),
            ..*source
        };
        tokio::task::spawn_blocking(move || local_objects(&s))
            .await
            .map_err(|e| e.to_string())?
    };
    let mut conn = Connection::open(node, source, backend_index, t).await?;
    // Missing check: every offer, then the wanted list.
    let mut offers = b":MISSING_CHECK: START\r\n".to_vec();
    for o in &objects {
        offers.extend_from_slice(wire::encode_offer(&o.offer).as_bytes());
        offers.extend_from_slice(b"\r\n");
    }
    offers.extend_from_slice(b":MISSING_CHECK: END\r\n");
    conn.chunk(&offers).await?;
    conn.expect(":MISSING_CHECK: START").await?;
    let mut wanted = BTreeMap::new();
    loop {
        let line = conn.answer.line(":MISSING_CHECK: END").await?;
        if line == ":MISSING_CHECK: END" {
            break;
        }
        if let Some((hash, want)) = wire::decode_wanted(&line) {
            wanted.insert(hash, want);
        }
    }
    // Updates.
    conn.chunk(b":UPDATES: START\r\n").await?;
    for o in &objects {
        let Some(want) = wanted.get(&o.offer.hash) else {
            continue;
        };
        if o.deleted && !want.data {
            continue;
        }
        let src = SyncSource {
            part_dir: source.part_dir.clone(),
            suffixes: Vec::new(),
            ..*source
        };
        let hash = o.offer.hash.clone();
        let want = *want;
        let updates = tokio::task::spawn_blocking(move || updates_for(&src, &hash, want))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for u in updates {
            conn.chunk(&u.head).await?;
            if let Some((path, size)) = u.body {
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let mut left = size;
                let mut buf = vec![0u8; 64 * 1024];
                while left > 0 {
                    let n = file.read(&mut buf).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err(format!("{} shorter than its size", path.display()));
                    }
                    let n = n.min(left as usize);
                    conn.chunk(&buf[..n]).await?;
                    left -= n as u64;
                }
            }
            outcome.sent += 1;
        }
    }
    conn.chunk(b":UPDATES: END\r\n").await?;
    conn.expect(":UPDATES: START").await?;
    conn.expect(":UPDATES: END").await?;
    let _ = tokio::time::timeout(conn.timeout, conn.writer.write_all(b"0\r\n\r\n")).await;
    // Everything offered is now in sync, except what we could not send.
    for o in objects {
        let skipped =
            !source.send_data && !o.deleted && wanted.get(&o.offer.hash).is_some_and(|w| w.data);
        if !skipped {
            outcome.in_sync.insert(o.offer.hash, o.offer.ts_data);
        }
    }
    Ok(outcome)
}

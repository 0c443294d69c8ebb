//! A memcached client that chooses servers as Swift's `MemcacheRing` does, so a Ringsmith
//! proxy and a Swift proxy given the same `memcache_servers` put every key on the same
//! server, in the same form (the key's md5 hex; JSON values flagged 2).
//!
//! Each server sits on a ring at 50 points (`md5("<server>-<i>")`); a key goes to the
//! point after the one it sorts behind, then on around the ring to the next distinct
//! servers, `tries` of them. A server that failed more than `error_suppression_limit`
//! times within `error_suppression_interval` is skipped for that long. Every failure
//! (refused, timed out, garbled) is a miss for a read and a no-op for a write: a cache
//! that is down costs time (bounded by `connect_timeout`/`io_timeout`), never an error.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Points each server gets on the ring (Swift's `NODE_WEIGHT`).
const NODE_WEIGHT: usize = 50;
/// Values memcached holds as JSON (Swift's `JSON_FLAG`).
const JSON_FLAG: u32 = 2;
/// Swift's pickled values, which a reader must ignore.
const PICKLE_FLAG: u32 = 1;
/// Longer TTLs are sent as absolute Unix times, as memcached reads them.
const EXPTIME_MAXDELTA: u64 = 30 * 24 * 60 * 60;

/// The `memcache_servers` and their tuning, as Swift's `load_memcache` reads them.
#[derive(Clone, Debug)]
pub struct MemcacheOptions {
    pub servers: Vec<String>,
    pub max_connections: usize,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub tries: usize,
    pub error_limit_count: usize,
    pub error_limit_time: Duration,
}

type Conn = BufReader<TcpStream>;

struct Server {
    addr: String,
    idle: Mutex<Vec<Conn>>,
    errors: Mutex<Vec<Instant>>,
    limited_until: Mutex<Option<Instant>>,
}

pub struct MemcacheRing {
    opts: MemcacheOptions,
    servers: Vec<Server>,
    /// Ring points (md5 hex) to the index of their server, sorted.
    points: Vec<(String, usize)>,
}

#[derive(Debug, thiserror::Error)]
pub enum MemcacheError {
    #[error("no memcached server answered")]
    NoServer,
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// `host:port`, `[v6]:port` or a bare host (port 11211), as a socket address string.
fn with_port(server: &str) -> String {
    let s = server.trim();
    if s.starts_with('[') {
        return if s.contains("]:") {
            s.to_string()
        } else {
            format!("{s}:11211")
        };
    }
    match s.matches(':').count() {
        0 => format!("{s}:11211"),
        1 => s.to_string(),
        _ => format!("[{s}]:11211"),
    }
}

fn exptime(ttl: u64) -> u64 {
    if ttl > EXPTIME_MAXDELTA {
        ttl + crate::proxy::auth::now_secs()
    } else {
        ttl
    }
}

impl MemcacheRing {
    pub fn new(mut opts: MemcacheOptions) -> MemcacheRing {
        let mut points = BTreeMap::new();
        for (i, s) in opts.servers.iter().enumerate() {
            for n in 0..NODE_WEIGHT {
                points.insert(md5_hex(&format!("{s}-{n}")), i);
            }
        }
        opts.tries = opts.tries.min(opts.servers.len()).max(1);
        let servers = opts
            .servers
            .iter()
            .map(|s| Server {
                addr: with_port(s),
                idle: Mutex::new(Vec::new()),
                errors: Mutex::new(Vec::new()),
                limited_until: Mutex::new(None),
            })
            .collect();
        MemcacheRing {
            opts,
            servers,
            points: points.into_iter().collect(),
        }
    }

    /// The servers a key is tried on, in order (Swift's `_get_conns`, which starts one
    /// point past the key's place on the ring).
    fn servers_for(&self, hash_key: &str) -> Vec<usize> {
        let n = self.points.len();
        let mut pos = self.points.partition_point(|(p, _)| p.as_str() <= hash_key);
        let mut chosen = Vec::new();
        while chosen.len() < self.opts.tries {
            pos = (pos + 1) % n;
            let s = self.points[pos].1;
            if !chosen.contains(&s) {
                chosen.push(s);
            }
        }
        chosen
    }

    fn is_limited(&self, s: usize) -> bool {
        let mut until = self.servers[s].limited_until.lock().expect("memcache");
        match *until {
            Some(t) if t > Instant::now() => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// Counts a failure; too many in the interval suppress the server for that long.
    fn failed(&self, s: usize, what: &str, why: &str) {
        let server = &self.servers[s];
        tracing::warn!(server = %server.addr, "memcached {what}: {why}");
        let now = Instant::now();
        let mut errors = server.errors.lock().expect("memcache");
        errors.push(now);
        if errors.len() > self.opts.error_limit_count {
            let window = self.opts.error_limit_time;
            errors.retain(|t| now.duration_since(*t) < window);
            if errors.len() > self.opts.error_limit_count {
                tracing::error!(server = %server.addr, "error limiting memcached server");
                *server.limited_until.lock().expect("memcache") = Some(now + window);
            }
        }
    }

    async fn connection(&self, s: usize) -> Result<Conn, String> {
        if let Some(c) = self.servers[s].idle.lock().expect("memcache").pop() {
            return Ok(c);
        }
        let addr = self.servers[s].addr.clone();
        match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(BufReader::new(stream))
            }
            Ok(Err(e)) => Err(format!("connecting: {e}")),
            Err(_) => Err("connecting: timed out".into()),
        }
    }

    fn give_back(&self, s: usize, conn: Conn) {
        let mut idle = self.servers[s].idle.lock().expect("memcache");
        if idle.len() < self.opts.max_connections.max(1) {
            idle.push(conn);
        }
    }

    /// Runs `op` on the key's servers in turn until one answers.
    async fn run<T, F>(&self, what: &str, key: &str, op: F) -> Result<T, MemcacheError>
    where
        F: for<'c> Fn(
            &'c mut Conn,
            &'c str,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, String>> + Send + 'c>,
        >,
    {
        let hash_key = md5_hex(key);
        for s in self.servers_for(&hash_key) {
            if self.is_limited(s) {
                continue;
            }
            let mut conn = match self.connection(s).await {
                Ok(c) => c,
                Err(e) => {
                    self.failed(s, what, &e);
                    continue;
                }
            };
            match tokio::time::timeout(self.opts.io_timeout, op(&mut conn, &hash_key)).await {
                Ok(Ok(v)) => {
                    self.give_back(s, conn);
                    return Ok(v);
                }
                Ok(Err(e)) => self.failed(s, what, &e),
                Err(_) => self.failed(s, what, "timed out"),
            }
        }
        Err(MemcacheError::NoServer)
    }

    pub async fn get(&self, key: &str) -> Option<Value> {
        self.run("get", key, |c, k| Box::pin(get_op(c, k)))
            .await
            .ok()
            .flatten()
    }

    pub async fn set(&self, key: &str, value: &Value, ttl: u64) -> Result<(), MemcacheError> {
        let body = value.to_string();
        self.run("set", key, |c, k| {
            let body = body.clone();
            Box::pin(async move { store(c, "set", k, JSON_FLAG, exptime(ttl), &body).await })
        })
        .await
        .map(|_| ())
    }

    /// Swift's `incr`: adds `delta` (creating the key at `delta`, or 0 for a negative
    /// delta, with `ttl`); the new value.
    pub async fn incr(&self, key: &str, delta: i64, ttl: u64) -> Result<u64, MemcacheError> {
        self.run("incr", key, |c, k| {
            Box::pin(incr_op(c, k, delta, exptime(ttl)))
        })
        .await
    }

    pub async fn delete(&self, key: &str) {
        let _ = self
            .run("delete", key, |c, k| {
                Box::pin(async move {
                    c.get_mut()
                        .write_all(format!("delete {k}\r\n").as_bytes())
                        .await
                        .map_err(|e| e.to_string())?;
                    read_line(c).await.map(|_| ())
                })
            })
            .await;
    }
}

async fn read_line(c: &mut Conn) -> Result<String, String> {
    let mut line = String::new();
    let n = c.read_line(&mut line).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(line.trim_end().to_string())
}

async fn get_op(c: &mut Conn, key: &str) -> Result<Option<Value>, String> {
    c.get_mut()
        .write_all(format!("get {key}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut value = None;
    loop {
        let line = read_line(c).await?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["END"] => return Ok(value),
            ["VALUE", k, flags, size, ..] => {
                let flags: u32 = flags
                    .parse()
                    .map_err(|_| format!("bad flags in {line:?}"))?;
                let size: usize = size.parse().map_err(|_| format!("bad size in {line:?}"))?;
                let mut data = vec![0u8; size + 2];
                c.read_exact(&mut data).await.map_err(|e| e.to_string())?;
                data.truncate(size);
                if *k != key || flags & PICKLE_FLAG != 0 {
                    continue;
                }
                value = Some(if flags & JSON_FLAG != 0 {
                    serde_json::from_slice(&data).map_err(|e| format!("bad JSON: {e}"))?
                } else {
                    Value::String(String::from_utf8_lossy(&data).into_owned())
                });
            }
            _ => return Err(format!("unexpected answer {line:?}")),
        }
    }
}

/// `set`/`add`: true when stored.
async fn store(
    c: &mut Conn,
    verb: &str,
    key: &str,
    flags: u32,
    exptime: u64,
    body: &str,
) -> Result<bool, String> {
    let msg = format!(
        "{verb} {key} {flags} {exptime} {}\r\n{body}\r\n",
        body.len()
    );
    c.get_mut()
        .write_all(msg.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    match read_line(c).await?.as_str() {
        "STORED" => Ok(true),
        "NOT_STORED" if verb == "add" => Ok(false),
        other => Err(format!("failed {verb}: {other}")),
    }
}

async fn incr_or_decr(c: &mut Conn, key: &str, delta: i64) -> Result<Option<u64>, String> {
    let verb = if delta >= 0 { "incr" } else { "decr" };
    c.get_mut()
        .write_all(format!("{verb} {key} {}\r\n", delta.unsigned_abs()).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let line = read_line(c).await?;
    if line == "NOT_FOUND" {
        return Ok(None);
    }
    line.parse()
        .map(Some)
        .map_err(|_| format!("failed {verb}: {line}"))
}

async fn incr_op(c: &mut Conn, key: &str, delta: i64, exptime: u64) -> Result<u64, String> {
    if let Some(v) = incr_or_decr(c, key, delta).await? {
        return Ok(v);
    }
    let start = delta.max(0) as u64;
    if store(c, "add", key, 0, exptime, &start.to_string()).await? {
        return Ok(start);
    }
    // Someone else added it between our incr and add.
    incr_or_decr(c, key, delta)
        .await?
        .ok_or_else(|| "key expired between add and incr".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(servers: &[&str], tries: usize) -> MemcacheRing {
        MemcacheRing::new(MemcacheOptions {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            max_connections: 2,
            connect_timeout: Duration::from_millis(300),
            io_timeout: Duration::from_secs(2),
            tries,
            error_limit_count: 10,
            error_limit_time: Duration::from_secs(60),
        })
    }

    #[test]
    fn keys_spread_over_servers_and_tries_are_distinct() {
        let r = ring(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], 3);
        let mut first = [0usize; 3];
        for i in 0..300 {
            let order = r.servers_for(&md5_hex(&format!("key{i}")));
            assert_eq!(order.len(), 3);
            let mut sorted = order.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3);
            first[order[0]] += 1;
        }
        assert!(first.iter().all(|&n| n > 40), "{first:?}");
        // More tries than servers: each server once.
        assert_eq!(ring(&["127.0.0.1:1"], 3).servers_for("x").len(), 1);
    }

    #[test]
    fn server_spellings_get_ports() {
        assert_eq!(with_port("127.0.0.1"), "127.0.0.1:11211");
        assert_eq!(with_port(" 127.0.0.1:7 "), "127.0.0.1:7");
        assert_eq!(with_port("[::1]:7"), "[::1]:7");
        assert_eq!(with_port("[::1]"), "[::1]:11211");
        assert_eq!(with_port("::1"), "[::1]:11211");
    }

    #[tokio::test]
    async fn a_dead_server_is_a_miss_then_suppressed() {
        // A port nothing listens on: connections are refused at once.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let r = ring(&[&addr], 3);
        for _ in 0..10 {
            assert!(r.get("k").await.is_none());
            assert!(!r.is_limited(0));
        }
        assert!(r.set("k", &Value::from(1), 10).await.is_err());
        assert!(
            r.is_limited(0),
            "11 errors within the interval suppress the server"
        );
        assert!(r.incr("k", 1, 10).await.is_err());
        r.delete("k").await;
    }
}

//! The proxy's shared cache (Swift's `swift.cache`): tempauth's tokens, account and
//! container info, and ratelimit's counters live here. With the `cache` filter
//! (`egg:swift#memcache`) and `memcache_servers` set (in the filter or in
//! `<swift_dir>/memcache.conf`) it is memcached, so several proxies share it; otherwise it
//! is a map inside this proxy.
//!
//! Values are JSON as Swift stores them, under Swift's keys, so a Swift proxy on the same
//! memcached reads what a Ringsmith proxy wrote (tokens most usefully).

pub mod memcache;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringsmith::swift::conf::{Conf, ConfError, Section};
use serde_json::Value;

use crate::proxy::pipeline::{App, FilterContext};
pub use memcache::{MemcacheError, MemcacheOptions, MemcacheRing};

/// Entries the in-process cache holds at most; past that, expired ones are dropped and,
/// if still full, everything (a cache may forget).
const LOCAL_CAPACITY: usize = 100_000;

pub enum Cache {
    Local(LocalCache),
    Memcache(MemcacheRing),
}

#[derive(Default)]
pub struct LocalCache {
    entries: Mutex<HashMap<String, (Option<Instant>, Value)>>,
}

impl LocalCache {
    fn live(&self, key: &str) -> Option<Value> {
        let mut map = self.entries.lock().expect("local cache");
        match map.get(key) {
            Some((Some(until), _)) if *until <= Instant::now() => {
                map.remove(key);
                None
            }
            Some((_, v)) => Some(v.clone()),
            None => None,
        }
    }

    fn put(&self, key: &str, value: Value, ttl: u64) {
        let mut map = self.entries.lock().expect("local cache");
        put_locked(&mut map, key, value, ttl);
    }
}

/// Stores under the caller's lock; a full map drops its expired entries, then everything.
fn put_locked(
    map: &mut HashMap<String, (Option<Instant>, Value)>,
    key: &str,
    value: Value,
    ttl: u64,
) {
    let until = (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl));
    if map.len() >= LOCAL_CAPACITY {
        let now = Instant::now();
        map.retain(|_, (u, _)| u.is_none_or(|u| u > now));
        if map.len() >= LOCAL_CAPACITY {
            map.clear();
        }
    }
    map.insert(key.to_string(), (until, value));
}

impl Cache {
    pub fn local() -> Cache {
        Cache::Local(LocalCache::default())
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Cache::Memcache(_))
    }

    /// The value under `key`; `None` when absent, expired, or the cache is unreachable.
    pub async fn get(&self, key: &str) -> Option<Value> {
        match self {
            Cache::Local(l) => l.live(key),
            Cache::Memcache(m) => m.get(key).await,
        }
    }

    /// Stores `value` for `ttl` seconds (0: no expiry); an error only when no server
    /// took it.
    pub async fn set(&self, key: &str, value: &Value, ttl: u64) -> Result<(), MemcacheError> {
        match self {
            Cache::Local(l) => {
                l.put(key, value.clone(), ttl);
                Ok(())
            }
            Cache::Memcache(m) => m.set(key, value, ttl).await,
        }
    }

    /// Adds `delta` to the counter at `key` (created at `max(delta, 0)` with `ttl`).
    pub async fn incr(&self, key: &str, delta: i64, ttl: u64) -> Result<u64, MemcacheError> {
        match self {
            Cache::Local(l) => {
                // One lock for read and write: concurrent increments must all count.
                let mut map = l.entries.lock().expect("local cache");
                let now = Instant::now();
                let live = map
                    .get_mut(key)
                    .filter(|(until, _)| until.is_none_or(|u| u > now));
                match live {
                    Some((_, value)) => {
                        // memcached keeps a counter's original expiry; so does this.
                        let next = (value.as_u64().unwrap_or(0) as i64)
                            .saturating_add(delta)
                            .max(0) as u64;
                        *value = Value::from(next);
                        Ok(next)
                    }
                    None => {
                        let next = delta.max(0) as u64;
                        put_locked(&mut map, key, Value::from(next), ttl);
                        Ok(next)
                    }
                }
            }
            Cache::Memcache(m) => m.incr(key, delta, ttl).await,
        }
    }

    pub async fn delete(&self, key: &str) {
        match self {
            Cache::Local(l) => {
                l.entries.lock().expect("local cache").remove(key);
            }
            Cache::Memcache(m) => m.delete(key).await,
        }
    }
}

/// The memcached options of the `cache` filter: its own section over
/// `<swift_dir>/memcache.conf`'s `[memcache]`. `None` when no servers are named.
pub fn memcache_options(
    filter: &Section,
    swift_dir: &std::path::Path,
) -> Result<Option<MemcacheOptions>, ConfError> {
    let path = swift_dir.join("memcache.conf");
    let file = if path.exists() {
        Some(Conf::load(&path)?.section("memcache"))
    } else {
        None
    };
    // The filter's value wins over memcache.conf's, as in Swift.
    let pick = |key: &str| -> Option<(&Section, &str)> {
        if let Some(v) = filter.get(key) {
            return Some((filter, v));
        }
        file.as_ref().and_then(|f| f.get(key).map(|v| (f, v)))
    };
    let servers: Vec<String> = pick("memcache_servers")
        .map(|(_, v)| v)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if servers.is_empty() {
        return Ok(None);
    }
    if let Some((sec, _)) = pick("tls_enabled") {
        if sec.bool_or("tls_enabled", false)? {
            return Err(ConfError::Value {
                path: sec.path.clone(),
                section: sec.name.clone(),
                key: "tls_enabled".into(),
                message: "TLS to memcached is not supported by Ringsmith".into(),
            });
        }
    }
    let num = |key: &str, default: f64| -> Result<f64, ConfError> {
        match pick(key) {
            Some((sec, _)) => sec.parse_or(key, default),
            None => Ok(default),
        }
    };
    let secs = |key: &str, default: f64| -> Result<Duration, ConfError> {
        Ok(Duration::from_secs_f64(num(key, default)?.max(0.001)))
    };
    let max_connections = match pick("memcache_max_connections") {
        Some(_) => num("memcache_max_connections", 2.0)?,
        None => num("max_connections", 2.0)?,
    };
    Ok(Some(MemcacheOptions {
        servers,
        max_connections: if max_connections <= 0.0 {
            2
        } else {
            max_connections as usize
        },
        connect_timeout: secs("connect_timeout", 0.3)?,
        io_timeout: secs("io_timeout", 2.0)?,
        tries: num("tries", 3.0)?.max(1.0) as usize,
        error_limit_count: num("error_suppression_limit", 10.0)?.max(0.0) as usize,
        error_limit_time: secs("error_suppression_interval", 60.0)?,
    }))
}

/// `egg:swift#memcache`: points the proxy's cache at memcached when servers are named.
/// The filter itself passes requests through; every user of the cache reaches it through
/// the proxy.
pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let swift_dir = ctx
        .section
        .get("swift_dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ctx.proxy.swift_dir.clone());
    if let Some(opts) = memcache_options(&ctx.section, &swift_dir)? {
        tracing::info!(servers = ?opts.servers, "cache: memcached");
        ctx.proxy
            .set_cache(Cache::Memcache(MemcacheRing::new(opts)));
    }
    Ok(next)
}

/// The cache as a shared handle.
pub type SharedCache = Arc<Cache>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_cache_expires_and_counts() {
        let c = Cache::local();
        c.set("a", &Value::from("x"), 0).await.unwrap();
        assert_eq!(c.get("a").await, Some(Value::from("x")));
        c.delete("a").await;
        assert_eq!(c.get("a").await, None);
        assert_eq!(c.incr("n", 3, 60).await.unwrap(), 3);
        assert_eq!(c.incr("n", 2, 60).await.unwrap(), 5);
        assert_eq!(c.incr("n", -9, 60).await.unwrap(), 0);
        assert_eq!(c.incr("m", -1, 60).await.unwrap(), 0);
        // Concurrent increments all count.
        let shared = std::sync::Arc::new(Cache::local());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let c = shared.clone();
                tokio::spawn(async move {
                    for _ in 0..100 {
                        c.incr("k", 1, 60).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(shared.incr("k", 0, 60).await.unwrap(), 800);
        let l = LocalCache::default();
        l.put("gone", Value::from(1), 1);
        l.entries.lock().unwrap().get_mut("gone").unwrap().0 = Some(Instant::now());
        assert_eq!(l.live("gone"), None);
    }

    #[test]
    fn options_come_from_the_filter_over_memcache_conf() {
        let dir = tempfile::tempdir().unwrap();
        let filter = |text: &str| {
            Conf::parse(text, std::path::Path::new("proxy-server.conf"))
                .unwrap()
                .section("filter:cache")
        };
        let none = filter("[filter:cache]\nuse = egg:swift#memcache\n");
        assert!(memcache_options(&none, dir.path()).unwrap().is_none());
        std::fs::write(
            dir.path().join("memcache.conf"),
            "[memcache]\nmemcache_servers = 127.0.0.1:7, 127.0.0.2:8\ntries = 2\n",
        )
        .unwrap();
        let o = memcache_options(&none, dir.path()).unwrap().unwrap();
        assert_eq!(o.servers, ["127.0.0.1:7", "127.0.0.2:8"]);
        assert_eq!(o.tries, 2);
        assert_eq!(o.connect_timeout, Duration::from_millis(300));
        let own = filter("[filter:cache]\nmemcache_servers = 127.0.0.3:9\nio_timeout = 0.5\n");
        let o = memcache_options(&own, dir.path()).unwrap().unwrap();
        assert_eq!(o.servers, ["127.0.0.3:9"]);
        assert_eq!((o.tries, o.io_timeout), (2, Duration::from_millis(500)));
        let bad = filter("[filter:cache]\nmemcache_servers = 127.0.0.3:9\ntries = many\n");
        let e = memcache_options(&bad, dir.path()).unwrap_err().to_string();
        assert!(e.contains("tries"), "{e}");
        let tls = filter("[filter:cache]\nmemcache_servers = 127.0.0.3:9\ntls_enabled = yes\n");
        let e = memcache_options(&tls, dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("tls_enabled") && e.contains("not supported"),
            "{e}"
        );
    }
}

//! The consistency daemons: the background processes that keep every replica whole.
//!
//! Each daemon is a *pass* over the local devices, run once (`--once`) or in a loop
//! with `interval` seconds between pass starts:
//!
//! * [`object_replicator`] compares suffix hashes with the other primaries (`REPLICATE`)
//!   and pushes what differs as ordinary backend requests (PUT/POST/DELETE carrying the
//!   original `X-Timestamp`), so the receiver's own timestamp checks guarantee that
//!   nothing newer is ever overwritten. Handoff partitions are pushed to every primary
//!   and removed locally only when all of them confirmed.
//! * [`object_reconstructor`] rebuilds this node's missing EC fragment archives from
//!   its partners' fragments (it pulls; Swift's pushes).
//! * [`object_auditor`] re-reads every object, checks MD5 and metadata, and quarantines
//!   corrupt ones (invalidating the suffix so the replicator restores a good copy).
//! * [`object_updater`] replays `async_pending` container updates.
//! * [`container_updater`] reports container stats to the account servers.
//! * [`db_auditor`] checks container and account databases.
//! * [`expirer`] deletes objects whose `X-Delete-At` passed, from the
//!   `.expiring_objects` queue our object server writes.
//!
//! What they share lives here: the configuration common to all of them, the ring and
//! local-device lookup, the rate limiter, the recon cache writer and the run loop with
//! graceful shutdown. Pure parts are unit-tested here; the behaviour as a whole is
//! tested on a real local cluster in `server/tests/daemons_*.rs`.

pub mod container_updater;
pub mod db_auditor;
pub mod db_replicator;
pub mod expirer;
pub mod object_auditor;
pub mod object_reconstructor;
pub mod object_replicator;
pub mod object_updater;
pub mod reconstructor_revert;
pub mod ssync_sender;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringsmith::device::Device;
use ringsmith::hash::HashConfig;
use ringsmith::ring::Ring;
use serde_json::{Map, Value};

use crate::common::{DeviceSettings, Timestamp};
use ringsmith::swift::conf::{Conf, ConfError, Section};
use ringsmith::swift::policy::Policies;

/// Settings every daemon reads: its own section (`[object-replicator]`, ...), which
/// inherits `[DEFAULT]` like Swift's; `bind_ip`/`bind_port` identify the local devices.
#[derive(Clone, Debug)]
pub struct DaemonConf {
    pub name: String,
    pub devices: DeviceSettings,
    pub swift_dir: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub recon_cache_path: PathBuf,
    pub interval: Duration,
    pub bind_ip: String,
    pub bind_port: u16,
    pub node_timeout: Duration,
    pub conn_timeout: Duration,
    pub reclaim_age: u64,
    pub concurrency: usize,
    pub section: Section,
}

/// [`config::secs`](crate::common::config::secs) with its error as text.
pub(crate) fn secs(s: &Section, key: &str, default: f64) -> Result<Duration, String> {
    crate::common::config::secs(s, key, default).map_err(|e| e.to_string())
}

impl DaemonConf {
    /// `name` is the daemon (`object-replicator`); `server` the server whose
    /// `[app:*-server]` section supplies fallbacks (`object`).
    pub fn from_conf(
        conf: &Conf,
        name: &str,
        server: &str,
        default_port: u16,
    ) -> Result<DaemonConf, String> {
        let s = conf.section(name);
        let app = conf.section(&format!("app:{server}-server"));
        let get = |k: &str, d: &str| s.get(k).or_else(|| app.get(k)).unwrap_or(d).to_string();
        let swift_dir = PathBuf::from(get("swift_dir", "/etc/swift"));
        let (hash, policies, _) = crate::common::config::load_swift_conf(&swift_dir)?;
        let e = |e: ConfError| e.to_string();
        // Swift's defaults: the database auditors pause 30 minutes between passes, the
        // object auditor and everything else 30 seconds.
        let interval_default = if name.ends_with("auditor") && name != "object-auditor" {
            1800.0
        } else {
            30.0
        };
        let interval = if s.get("interval").is_some() {
            secs(&s, "interval", interval_default)?
        } else {
            secs(&s, "run_pause", interval_default)?
        };
        let bind_port: u16 = get("bind_port", &default_port.to_string())
            .parse()
            .map_err(|_| {
                format!(
                    "{}: [{name}] bind_port is not a port number",
                    conf.path.display()
                )
            })?;
        Ok(DaemonConf {
            name: name.to_string(),
            devices: crate::common::config::device_settings(&s).map_err(e)?,
            swift_dir,
            hash,
            policies,
            recon_cache_path: PathBuf::from(get("recon_cache_path", "/var/cache/swift")),
            interval,
            bind_ip: get("bind_ip", "0.0.0.0"),
            bind_port,
            node_timeout: secs(&s, "node_timeout", 10.0)?,
            conn_timeout: secs(&s, "conn_timeout", 0.5)?,
            reclaim_age: s.parse_or("reclaim_age", 604_800).map_err(e)?,
            concurrency: s.parse_or::<usize>("concurrency", 1).map_err(e)?.max(1),
            section: s,
        })
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.conn_timeout)
            .timeout(self.node_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client with static settings")
    }

    pub fn load_ring(&self, name: &str) -> Result<Ring, String> {
        let path = self.swift_dir.join(format!("{name}.ring.gz"));
        Ring::load(&path, self.hash.clone()).map_err(|e| e.to_string())
    }

    /// Tombstones older than this are reclaimed.
    pub fn reclaim_before(&self) -> Timestamp {
        Timestamp::from_ticks(
            Timestamp::now()
                .ticks()
                .saturating_sub(self.reclaim_age * 100_000),
            0,
        )
    }

    /// Device directories under `devices` (mount-checked when `mount_check` is on).
    pub fn device_dirs(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.devices.devices) else {
            tracing::warn!(devices = %self.devices.devices.display(), "devices directory is not readable");
            return out;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let crate::common::DeviceState::Ok(p) = self.devices.device_path(&name) {
                if p.is_dir() {
                    out.push((name, p));
                }
            }
        }
        out.sort();
        out
    }
}

/// The ring's devices served by this node: same port and an IP this node binds
/// (any IP when bound to the wildcard address).
pub fn local_devices(ring: &Ring, bind_ip: &str, bind_port: u16) -> Vec<Device> {
    let wildcard = bind_ip == "0.0.0.0" || bind_ip == "::";
    ring.devs()
        .iter()
        .flatten()
        .filter(|d| {
            let port_ok =
                d.port == u32::from(bind_port) || d.replication_port == u32::from(bind_port);
            port_ok && (wildcard || d.ip == bind_ip || d.replication_ip == bind_ip)
        })
        .cloned()
        .collect()
}

/// `http://ip:port` for backend traffic to a device (its replication address).
pub fn node_base(d: &Device) -> String {
    let ip = if d.replication_ip.is_empty() {
        &d.ip
    } else {
        &d.replication_ip
    };
    let port = if d.replication_port == 0 {
        d.port
    } else {
        d.replication_port
    };
    format!("http://{}:{port}", ringsmith::device::bracket_ipv6(ip))
}

pub use ringsmith::swift::escape::quote;

/// A token-bucket-free limiter: items are spaced so that no more than `rate` pass
/// per second on average, with up to one second of burst after a quiet period (what
/// Swift's `ratelimit_sleep` does). A rate of 0 means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    next: Option<Instant>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter { rate, next: None }
    }

    /// How long to wait at `now` before `n` more items may go.
    pub fn delay(&mut self, now: Instant, n: u64) -> Duration {
        if self.rate <= 0.0 || n == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(n as f64 / self.rate);
        let burst = Duration::from_secs(1);
        // Idle for a while: at most one second of credit, not unbounded.
        let floor = now.checked_sub(burst).unwrap_or(now);
        let start = match self.next {
            Some(t) if t > floor => t,
            _ => floor,
        };
        let next = start + cost;
        self.next = Some(next);
        next.saturating_duration_since(now)
    }

    pub async fn wait(&mut self, n: u64) {
        let d = self.delay(Instant::now(), n);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// Merges `entries` into `<recon_cache_path>/<file>.recon` atomically, under a lock
/// shared with every daemon writing the same file.
pub fn dump_recon_cache(cache_dir: &Path, file: &str, entries: Map<String, Value>) {
    if let Err(e) = try_dump_recon_cache(cache_dir, file, entries) {
        tracing::warn!(cache = %cache_dir.display(), error = %e, "cannot write recon cache");
    }
}

fn try_dump_recon_cache(
    cache_dir: &Path,
    file: &str,
    entries: Map<String, Value>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let _lock = ringsmith::flock::lock(&cache_dir.join(format!(".{file}.recon.lock")))?;
    let path = cache_dir.join(format!("{file}.recon"));
    let mut current: Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for (k, v) in entries {
        current.insert(k, v);
    }
    let text = serde_json::to_string(&Value::Object(current)).unwrap_or_default() + "\n";
    ringsmith::atomic::write_bytes_atomic(&path, 0o644, text.as_bytes())
}

/// Runs `pass` once, or forever with `interval` between pass starts, until SIGTERM or
/// SIGINT: a signal during a pass stops it at its next await point (every write a
/// pass makes is atomic, so nothing is left half-done); during the pause it ends the
/// wait at once.
pub async fn run<F, Fut>(name: &str, once: bool, interval: Duration, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let shutdown = crate::common::runner::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let start = Instant::now();
        tracing::info!(daemon = name, "pass starting");
        tokio::select! {
            _ = pass() => {}
            _ = &mut shutdown => {
                tracing::info!(daemon = name, "shutting down mid-pass");
                return;
            }
        }
        tracing::info!(
            daemon = name,
            elapsed_s = start.elapsed().as_secs_f64(),
            "pass done"
        );
        if once {
            return;
        }
        let pause = interval
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(100));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut shutdown => {
                tracing::info!(daemon = name, "shutting down");
                return;
            }
        }
    }
}

/// Seconds since the epoch, as Swift stores `*_last` in recon.
pub fn now_f64() -> f64 {
    Timestamp::now().as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_spaces_items_after_a_one_second_burst() {
        let mut rl = RateLimiter::new(10.0);
        let t0 = Instant::now();
        // The first second's worth passes without waiting.
        for _ in 0..10 {
            assert_eq!(rl.delay(t0, 1), Duration::ZERO);
        }
        // The 11th must wait a tenth of a second.
        let d = rl.delay(t0, 1);
        assert!((d.as_secs_f64() - 0.1).abs() < 1e-6, "{d:?}");
        // Byte-style costs: 50 units at 10/s is five seconds beyond the backlog.
        let d = rl.delay(t0, 50);
        assert!((d.as_secs_f64() - 5.1).abs() < 1e-6, "{d:?}");
        // Unlimited never waits.
        let mut free = RateLimiter::new(0.0);
        assert_eq!(free.delay(t0, 1_000_000), Duration::ZERO);
        // After a long idle period credit is capped at one second.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..10 {
            assert_eq!(rl.delay(later, 1), Duration::ZERO);
        }
        assert!(rl.delay(later, 1) > Duration::ZERO);
    }

    #[test]
    fn recon_cache_merges_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Map::new();
        a.insert("async_pending".into(), Value::from(3));
        dump_recon_cache(dir.path(), "object", a);
        let mut b = Map::new();
        b.insert("replication_last".into(), Value::from(1.5));
        dump_recon_cache(dir.path(), "object", b);
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("object.recon")).unwrap(),
        )
        .unwrap();
        assert_eq!(v["async_pending"], 3);
        assert_eq!(v["replication_last"], 1.5);
    }
}

//! The object updater: replays the container updates the object server could not
//! deliver (`<dev>/async_pending[-N]/<sfx>/<hash>-<timestamp>`, pickles in Swift's
//! format, so files written by Swift's object server replay too).
//!
//! Per object hash only the newest update matters (older ones are removed unsent).
//! Each update goes to every container replica from the container ring, skipping the
//! node ids already recorded in `successes`. When all succeed the file is unlinked;
//! otherwise it is rewritten (atomically) with the new `successes`, so a later sweep
//! only retries the replicas that still need it. Sweep stats go to `object.recon`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ringsmith::pickle::Value;
use serde_json::{json, Map};

use super::{node_base, quote, DaemonConf, RateLimiter};
use ringsmith::swift::policy::Policy;

/// A parsed `async_pending` file.
#[derive(Clone, Debug, PartialEq)]
pub struct AsyncUpdate {
    pub op: String,
    pub account: String,
    pub container: String,
    pub obj: String,
    pub headers: Vec<(String, String)>,
    pub successes: Vec<i64>,
    /// The whole pickle, so a rewrite keeps keys we do not interpret.
    pub raw: Vec<(Value, Value)>,
}

fn text(v: &Value) -> Option<String> {
    match v.deref_shared() {
        Value::Str(s) => Some(s.clone()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

pub fn parse_async_pending(bytes: &[u8]) -> Result<AsyncUpdate, String> {
    let v = ringsmith::pickle::loads(bytes).map_err(|e| format!("not a pickle: {e}"))?;
    let Value::Dict(items) = v.deref_shared().clone() else {
        return Err("not a dict".into());
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(kk, _)| text(kk).as_deref() == Some(k))
            .map(|(_, v)| v)
    };
    let field = |k: &str| get(k).and_then(text).ok_or_else(|| format!("missing {k}"));
    let op = field("op")?;
    if op != "PUT" && op != "DELETE" {
        return Err(format!("unknown op {op:?}"));
    }
    let mut headers = Vec::new();
    if let Some(Value::Dict(h)) = get("headers").map(|v| v.deref_shared()) {
        for (k, v) in h {
            if let (Some(k), Some(v)) = (text(k), text(v)) {
                headers.push((k, v));
            }
        }
    }
    let successes = get("successes")
        .and_then(|v| {
            v.deref_shared()
                .as_seq()
                .map(|s| s.iter().filter_map(|x| x.as_i64()).collect())
        })
        .unwrap_or_default();
    Ok(AsyncUpdate {
        op,
        account: field("account")?,
        container: field("container")?,
        obj: field("obj")?,
        headers,
        successes,
        raw: items,
    })
}

impl AsyncUpdate {
    pub fn to_pickle(&self) -> Vec<u8> {
        let mut items: Vec<(Value, Value)> = self
            .raw
            .iter()
            .filter(|(k, _)| text(k).as_deref() != Some("successes"))
            .cloned()
            .collect();
        items.push((
            Value::Str("successes".into()),
            Value::List(self.successes.iter().map(|i| Value::Int(*i)).collect()),
        ));
        ringsmith::pickle::dumps(&Value::Dict(items))
    }
}

/// Groups `<hash>-<timestamp>` names by hash; returns (newest, older) per hash.
pub fn newest_per_object(names: &[String]) -> (Vec<String>, Vec<String>) {
    let mut by_hash: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for n in names {
        if let Some((h, _)) = n.split_once('-') {
            by_hash.entry(h).or_default().push(n);
        }
    }
    let (mut keep, mut drop) = (Vec::new(), Vec::new());
    for (_, mut v) in by_hash {
        v.sort_by_key(|n| {
            n.split_once('-')
                .and_then(|(_, t)| crate::common::Timestamp::parse(t).ok())
                .unwrap_or(crate::common::Timestamp::ZERO)
        });
        let newest = v.pop().expect("non-empty group");
        keep.push(newest.clone());
        drop.extend(v.into_iter().cloned());
    }
    (keep, drop)
}

pub struct ObjectUpdater {
    conf: DaemonConf,
    http: reqwest::Client,
    objects_per_second: f64,
}

#[derive(Default, Debug)]
pub struct SweepStats {
    pub successes: u64,
    pub failures: u64,
    pub quarantines: u64,
    pub unlinks: u64,
}

impl ObjectUpdater {
    pub fn new(conf: DaemonConf) -> Result<ObjectUpdater, String> {
        let objects_per_second = conf
            .section
            .parse_or("objects_per_second", 50.0)
            .map_err(|e| e.to_string())?;
        Ok(ObjectUpdater {
            http: conf.http(),
            conf,
            objects_per_second,
        })
    }

    pub async fn run_pass(&self) {
        let start = Instant::now();
        let ring = match self.conf.load_ring("container") {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the container ring");
                return;
            }
        };
        let mut stats = SweepStats::default();
        let mut limiter = RateLimiter::new(self.objects_per_second);
        for (dev, dev_path) in self.conf.device_dirs() {
            for policy in self.conf.policies.iter() {
                self.sweep(&ring, policy, &dev_path, &mut limiter, &mut stats)
                    .await;
            }
            tracing::info!(target: "object-updater", device = %dev, ?stats, "object update sweep completed");
        }
        let mut m = Map::new();
        m.insert(
            "object_updater_sweep".into(),
            json!(start.elapsed().as_secs_f64()),
        );
        m.insert(
            "object_updater_stats".into(),
            json!({
                "successes": stats.successes, "failures": stats.failures,
                "quarantines": stats.quarantines, "unlinks": stats.unlinks,
            }),
        );
        m.insert("object_updater_last".into(), json!(super::now_f64()));
        super::dump_recon_cache(&self.conf.recon_cache_path, "object", m);
    }

    async fn sweep(
        &self,
        ring: &ringsmith::ring::Ring,
        policy: &Policy,
        dev_path: &Path,
        limiter: &mut RateLimiter,
        stats: &mut SweepStats,
    ) {
        let async_dir = dev_path.join(policy.dir("async_pending"));
        let Ok(rd) = std::fs::read_dir(&async_dir) else {
            return;
        };
        let mut suffixes: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        suffixes.sort();
        for sdir in suffixes {
            let names: Vec<String> = std::fs::read_dir(&sdir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let (keep, obsolete) = newest_per_object(&names);
            for n in obsolete {
                if std::fs::remove_file(sdir.join(&n)).is_ok() {
                    stats.unlinks += 1;
                }
            }
            for n in keep {
                limiter.wait(1).await;
                self.process(ring, policy, dev_path, &sdir.join(&n), stats)
                    .await;
            }
            let _ = std::fs::remove_dir(&sdir); // only when empty
        }
    }

    async fn process(
        &self,
        ring: &ringsmith::ring::Ring,
        policy: &Policy,
        dev_path: &Path,
        path: &Path,
        stats: &mut SweepStats,
    ) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            // Gone (another sweep sent it) or unreadable (the device went away): nothing
            // says the file is bad, so it is not quarantined.
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read async_pending");
                return;
            }
        };
        let mut upd = match parse_async_pending(&bytes) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "quarantining unreadable async_pending");
                let q = dev_path.join("quarantined").join("objects");
                let _ = std::fs::create_dir_all(&q);
                if let Some(name) = path.file_name() {
                    let _ = std::fs::rename(path, q.join(name));
                }
                stats.quarantines += 1;
                return;
            }
        };
        let (part, nodes) = match ring.get_nodes(&upd.account, Some(&upd.container), None) {
            Ok((p, n)) => (p, n.iter().cloned().collect::<Vec<_>>()),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "bad path in async_pending");
                stats.failures += 1;
                return;
            }
        };
        let mut all_ok = true;
        for node in nodes {
            if upd.successes.contains(&i64::from(node.id)) {
                continue;
            }
            let url = format!(
                "{}/{}/{part}{}",
                node_base(&node),
                quote(&node.device),
                quote(&format!("/{}/{}/{}", upd.account, upd.container, upd.obj))
            );
            let method =
                reqwest::Method::from_bytes(upd.op.as_bytes()).expect("op validated at parse");
            let mut req = self.http.request(method, &url);
            for (k, v) in &upd.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            req = req
                .header("X-Backend-Storage-Policy-Index", policy.index.to_string())
                .header(
                    "User-Agent",
                    format!("object-updater {}", std::process::id()),
                );
            match req.send().await {
                Ok(r) if r.status().is_success() => upd.successes.push(i64::from(node.id)),
                Ok(r) => {
                    tracing::warn!(node = %node.describe(), status = %r.status(), "container update failed");
                    all_ok = false;
                }
                Err(e) => {
                    tracing::warn!(node = %node.describe(), error = %e, "container update failed");
                    all_ok = false;
                }
            }
        }
        if all_ok {
            stats.successes += 1;
            if std::fs::remove_file(path).is_ok() {
                stats.unlinks += 1;
            }
        } else {
            stats.failures += 1;
            if let Err(e) = ringsmith::atomic::write_bytes_atomic(path, 0o644, &upd.to_pickle()) {
                tracing::error!(file = %path.display(), error = %e, "cannot record successes");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::update::PendingUpdate;

    #[test]
    fn parses_our_and_swifts_pickles_and_keeps_successes() {
        let u = PendingUpdate {
            op: "PUT",
            account: "AUTH_test".into(),
            container: "c".into(),
            obj: "o/ö".into(),
            headers: vec![
                ("X-Timestamp".into(), "1795313248.76961".into()),
                ("X-Size".into(), "3".into()),
            ],
        };
        let mut p = parse_async_pending(&u.to_pickle()).unwrap();
        assert_eq!((p.op.as_str(), p.obj.as_str()), ("PUT", "o/ö"));
        assert_eq!(p.headers.len(), 2);
        assert!(p.successes.is_empty());
        p.successes = vec![0, 2];
        let again = parse_async_pending(&p.to_pickle()).unwrap();
        assert_eq!(again.successes, vec![0, 2]);
        assert_eq!(again.account, "AUTH_test");
        assert!(parse_async_pending(b"nope").is_err());
    }

    #[test]
    fn only_the_newest_update_per_object_is_kept() {
        let names: Vec<String> = [
            "aaa-0000000002.00000",
            "aaa-0000000001.00000",
            "bbb-0000000001.00000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (keep, drop) = newest_per_object(&names);
        assert_eq!(keep, vec!["aaa-0000000002.00000", "bbb-0000000001.00000"]);
        assert_eq!(drop, vec!["aaa-0000000001.00000"]);
    }
}

//! The container updater: reports each container's put/delete timestamps, object
//! count and bytes to the account replicas, for containers whose stats changed since
//! the last report (`reported_*` columns), then records what was reported. This is
//! how account listings and stats catch up after the object updater replayed writes
//! the containers missed.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Map};

use super::{node_base, quote, DaemonConf};
use crate::container::broker;
use crate::db;

pub struct ContainerUpdater {
    conf: DaemonConf,
    http: reqwest::Client,
}

/// Every `*.db` under `<dev>/<kind>/<part>/<sfx>/<hash>/`.
pub fn db_files(dev_path: &std::path::Path, kind: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let list = |p: &std::path::Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for part in list(&dev_path.join(kind)) {
        for sfx in list(&part) {
            for hdir in list(&sfx) {
                for f in list(&hdir) {
                    if f.extension().is_some_and(|e| e == "db") {
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}

impl ContainerUpdater {
    pub fn new(conf: DaemonConf) -> ContainerUpdater {
        ContainerUpdater {
            http: conf.http(),
            conf,
        }
    }

    pub async fn run_pass(&self) {
        let start = Instant::now();
        let ring = match self.conf.load_ring("account") {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the account ring");
                return;
            }
        };
        let (mut successes, mut failures, mut no_changes) = (0u64, 0u64, 0u64);
        for (_, dev_path) in self.conf.device_dirs() {
            for path in db_files(&dev_path, "containers") {
                let p = path.clone();
                let info = tokio::task::spawn_blocking(move || {
                    crate::db::broker::open_db::<broker::ContainerDb>(&p)
                        .and_then(|c| broker::info(&c))
                })
                .await;
                let info = match info {
                    Ok(Ok(i)) => i,
                    other => {
                        tracing::warn!(db = %path.display(), result = ?other.map(|r| r.err()), "cannot read container");
                        failures += 1;
                        continue;
                    }
                };
                if info.put_timestamp == info.reported_put_timestamp
                    && info.delete_timestamp == info.reported_delete_timestamp
                    && info.object_count == info.reported_object_count
                    && info.bytes_used == info.reported_bytes_used
                {
                    no_changes += 1;
                    continue;
                }
                let (part, nodes) = match ring.get_nodes(&info.account, None, None) {
                    Ok((p, n)) => (p, n.iter().cloned().collect::<Vec<_>>()),
                    Err(_) => continue,
                };
                let (count, bytes) = if info.is_deleted() {
                    (0, 0)
                } else {
                    (info.object_count, info.bytes_used)
                };
                let mut ok = 0;
                for node in &nodes {
                    let url = format!(
                        "{}/{}/{part}/{}/{}",
                        node_base(node),
                        quote(&node.device),
                        quote(&info.account),
                        quote(&info.container)
                    );
                    let r = self
                        .http
                        .put(&url)
                        .header("X-Put-Timestamp", &info.put_timestamp)
                        .header("X-Delete-Timestamp", &info.delete_timestamp)
                        .header("X-Object-Count", count.to_string())
                        .header("X-Bytes-Used", bytes.to_string())
                        .header("X-Account-Override-Deleted", "yes")
                        .header(
                            "X-Backend-Storage-Policy-Index",
                            info.storage_policy_index.to_string(),
                        )
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => ok += 1,
                        Ok(r) => {
                            tracing::warn!(node = %node.describe(), status = %r.status(), "account update failed")
                        }
                        Err(e) => {
                            tracing::warn!(node = %node.describe(), error = %e, "account update failed")
                        }
                    }
                }
                // A majority of account replicas is what Swift's updater requires too.
                if ok > nodes.len() / 2 {
                    successes += 1;
                    let p = path.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        db::open(&p).and_then(|c| broker::set_reported(&c, &info))
                    })
                    .await;
                } else {
                    failures += 1;
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        tracing::info!(target: "container-updater", successes, failures, no_changes, elapsed_s = elapsed, "container update sweep completed");
        let mut m = Map::new();
        m.insert("container_updater_sweep".into(), json!(elapsed));
        super::dump_recon_cache(&self.conf.recon_cache_path, "container", m);
    }
}

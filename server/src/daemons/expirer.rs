//! The object expirer.
//!
//! Our object server (like Swift 2.38's) queues every object with an `X-Delete-At` as
//! a row `<delete_at>-<account>/<container>/<object>` in the container
//! `.expiring_objects/<delete_at rounded down to expiring_objects_container_divisor>`.
//! The expirer lists that account and its containers straight from the account and
//! container servers, and for each row whose time has passed deletes the object on
//! every primary with `X-If-Delete-At` (so an object re-written without expiry since
//! is left alone) and `X-Timestamp` = the delete-at time, naming the container
//! replicas so the listing is updated. When every primary answered, the queue row is
//! deleted on every container replica.

use std::time::Instant;

use serde_json::{json, Map};

use super::{node_base, quote, DaemonConf};
use crate::common::Timestamp;

pub const EXPIRING_ACCOUNT: &str = ".expiring_objects";

/// Splits a queue row `<at>-<account>/<container>/<object>`.
pub fn parse_task(name: &str) -> Option<(u64, String, String, String)> {
    let (at, rest) = name.split_once('-')?;
    let at: u64 = at.parse().ok()?;
    let mut parts = rest.splitn(3, '/');
    let (a, c, o) = (parts.next()?, parts.next()?, parts.next()?);
    if a.is_empty() || c.is_empty() || o.is_empty() {
        return None;
    }
    Some((at, a.into(), c.into(), o.into()))
}

pub struct Expirer {
    conf: DaemonConf,
    http: reqwest::Client,
}

impl Expirer {
    pub fn new(conf: DaemonConf) -> Expirer {
        Expirer {
            http: conf.http(),
            conf,
        }
    }

    /// A JSON listing from the first replica that answers.
    async fn listing(&self, ring: &ringsmith::ring::Ring, path: &[&str]) -> Option<Vec<String>> {
        let (part, nodes) = match path {
            [a] => ring.get_nodes(a, None, None).ok()?,
            [a, c] => ring.get_nodes(a, Some(c), None).ok()?,
            _ => return None,
        };
        let rel = path.iter().map(|p| quote(p)).collect::<Vec<_>>().join("/");
        for node in nodes.iter() {
            let mut names = Vec::new();
            let mut marker = String::new();
            let mut ok = true;
            loop {
                let url = format!("{}/{}/{part}/{rel}", node_base(node), quote(&node.device));
                let r = self
                    .http
                    .get(&url)
                    .query(&[("format", "json"), ("marker", marker.as_str())])
                    .send()
                    .await;
                let items: Vec<serde_json::Value> = match r {
                    Ok(r) if r.status().as_u16() == 200 => match r.json().await {
                        Ok(v) => v,
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    },
                    Ok(r) if r.status().as_u16() == 204 || r.status().as_u16() == 404 => vec![],
                    _ => {
                        ok = false;
                        break;
                    }
                };
                if items.is_empty() {
                    break;
                }
                for it in &items {
                    if let Some(n) = it.get("name").and_then(|n| n.as_str()) {
                        names.push(n.to_string());
                    }
                }
                marker = names.last().cloned().unwrap_or_default();
            }
            if ok {
                return Some(names);
            }
        }
        None
    }

    pub async fn run_pass(&self) {
        let start = Instant::now();
        let rings = (
            self.conf.load_ring("account"),
            self.conf.load_ring("container"),
            self.conf.load_ring("object"),
        );
        let (Ok(aring), Ok(cring), Ok(oring)) = rings else {
            tracing::error!("the expirer needs the account, container and object rings");
            return;
        };
        let now = Timestamp::now().seconds();
        let (mut objects, mut failures) = (0u64, 0u64);
        let containers = self
            .listing(&aring, &[EXPIRING_ACCOUNT])
            .await
            .unwrap_or_default();
        for cont in containers {
            // Containers are named by time; later ones hold nothing due yet.
            if cont.parse::<u64>().is_ok_and(|t| t > now) {
                continue;
            }
            let Some(tasks) = self.listing(&cring, &[EXPIRING_ACCOUNT, &cont]).await else {
                continue;
            };
            for task in tasks {
                let Some((at, a, c, o)) = parse_task(&task) else {
                    tracing::warn!(task, "unparsable expirer queue entry");
                    continue;
                };
                if at > now {
                    continue;
                }
                if self.expire(&oring, &cring, at, &a, &c, &o).await {
                    objects += 1;
                    self.drop_task(&cring, &cont, &task).await;
                } else {
                    failures += 1;
                }
            }
        }
        tracing::info!(target: "object-expirer", objects, failures, elapsed_s = start.elapsed().as_secs_f64(), "expirer pass completed");
        let mut m = Map::new();
        m.insert(
            "object_expiration_pass".into(),
            json!(start.elapsed().as_secs_f64()),
        );
        m.insert("expired_last_pass".into(), json!(objects));
        super::dump_recon_cache(&self.conf.recon_cache_path, "object", m);
    }

    async fn expire(
        &self,
        oring: &ringsmith::ring::Ring,
        cring: &ringsmith::ring::Ring,
        at: u64,
        a: &str,
        c: &str,
        o: &str,
    ) -> bool {
        let Ok((part, nodes)) = oring.get_nodes(a, Some(c), Some(o)) else {
            return false;
        };
        let Ok((cpart, cnodes)) = cring.get_nodes(a, Some(c), None) else {
            return false;
        };
        let hosts: Vec<String> = cnodes
            .iter()
            .map(|d| node_base(d).trim_start_matches("http://").to_string())
            .collect();
        let devs: Vec<String> = cnodes.iter().map(|d| d.device.clone()).collect();
        let mut all = true;
        for (i, node) in nodes.iter().enumerate() {
            let url = format!(
                "{}/{}/{part}{}",
                node_base(node),
                quote(&node.device),
                quote(&format!("/{a}/{c}/{o}"))
            );
            let mut req = self
                .http
                .delete(&url)
                .header(
                    "X-Timestamp",
                    Timestamp::from_ticks(at * 100_000, 0).internal(),
                )
                .header("X-If-Delete-At", at.to_string())
                .header("X-Backend-Clean-Expiring-Object-Queue", "no");
            // Each primary updates one container replica, as the proxy arranges it.
            if let (Some(h), Some(d)) = (
                hosts.get(i % hosts.len().max(1)),
                devs.get(i % devs.len().max(1)),
            ) {
                req = req
                    .header("X-Container-Host", h)
                    .header("X-Container-Device", d)
                    .header("X-Container-Partition", cpart.to_string());
            }
            match req.send().await {
                // 404: already gone; 412: rewritten with another expiry; 409: newer.
                Ok(r)
                    if r.status().is_success()
                        || matches!(r.status().as_u16(), 404 | 409 | 412) => {}
                Ok(r) => {
                    tracing::warn!(node = %node.describe(), status = %r.status(), "expiring delete failed");
                    all = false;
                }
                Err(e) => {
                    tracing::warn!(node = %node.describe(), error = %e, "expiring delete failed");
                    all = false;
                }
            }
        }
        all
    }

    async fn drop_task(&self, cring: &ringsmith::ring::Ring, cont: &str, task: &str) {
        let Ok((part, nodes)) = cring.get_nodes(EXPIRING_ACCOUNT, Some(cont), None) else {
            return;
        };
        for node in nodes.iter() {
            let url = format!(
                "{}/{}/{part}{}",
                node_base(node),
                quote(&node.device),
                quote(&format!("/{EXPIRING_ACCOUNT}/{cont}/{task}"))
            );
            let _ = self
                .http
                .delete(&url)
                .header("X-Timestamp", Timestamp::now().internal())
                .send()
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_rows_parse() {
        assert_eq!(
            parse_task("1795313248-AUTH_test/c/a/b"),
            Some((1795313248, "AUTH_test".into(), "c".into(), "a/b".into()))
        );
        assert_eq!(parse_task("x-AUTH_test/c/o"), None);
        assert_eq!(parse_task("12-AUTH_test/c"), None);
    }
}

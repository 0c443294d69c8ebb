//! Container updates after an object write, and the `async_pending` queue for the ones
//! that fail.
//!
//! The proxy names the container replicas to update in `X-Container-Host`,
//! `-Partition` and `-Device` (comma lists of equal length). Each is sent as
//! `PUT|DELETE /<cdev>/<cpart>/<a>/<c>/<o>`; a connection error or a non-2xx answer is
//! pickled like Swift's `pickle_async_update` under
//! `<dev>/async_pending[-N]/<hash[-3:]>/<hash>-<timestamp>` for the object updater, so
//! Swift's `swift-object-updater` and ours can both replay it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringsmith::pickle::Value;

use crate::common::Timestamp;
use ringsmith::swift::policy::Policy;

/// One container replica to update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateTarget {
    pub host: String,
    pub partition: String,
    pub device: String,
}

/// Pairs `X-*-Host` with `X-*-Device`; `Err` when the lists differ in length (a 400).
pub fn targets(
    hosts: Option<&str>,
    partition: Option<&str>,
    devices: Option<&str>,
) -> Result<Vec<UpdateTarget>, String> {
    let split = |s: Option<&str>| -> Vec<String> {
        s.map(|v| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    let hosts = split(hosts);
    let devices = split(devices);
    if hosts.len() != devices.len() {
        return Err(format!(
            "X-Container-Host and X-Container-Device headers do not match ({} hosts, {} devices)",
            hosts.len(),
            devices.len()
        ));
    }
    if hosts.is_empty() {
        return Ok(vec![]);
    }
    let partition = partition
        .map(str::trim)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| "Missing or invalid container partition".to_string())?;
    Ok(hosts
        .into_iter()
        .zip(devices)
        .map(|(host, device)| UpdateTarget {
            host,
            partition: partition.to_string(),
            device,
        })
        .collect())
}

/// One queued update: what `async_pending` files hold.
#[derive(Clone, Debug)]
pub struct PendingUpdate {
    pub op: &'static str,
    pub account: String,
    pub container: String,
    pub obj: String,
    pub headers: Vec<(String, String)>,
}

impl PendingUpdate {
    pub fn to_pickle(&self) -> Vec<u8> {
        let s = |x: &str| Value::Str(x.to_string());
        let headers = self.headers.iter().map(|(k, v)| (s(k), s(v))).collect();
        ringsmith::pickle::dumps(&Value::Dict(vec![
            (s("op"), s(self.op)),
            (s("account"), s(&self.account)),
            (s("container"), s(&self.container)),
            (s("obj"), s(&self.obj)),
            (s("headers"), Value::Dict(headers)),
            (s("db_state"), Value::None),
        ]))
    }

    /// Writes the update atomically (temp under `tmp[-N]`, fsync, rename).
    pub fn save(
        &self,
        device_path: &Path,
        policy: &Policy,
        obj_hash: &str,
        timestamp: Timestamp,
    ) -> std::io::Result<PathBuf> {
        let dir = device_path
            .join(policy.dir("async_pending"))
            .join(&obj_hash[obj_hash.len() - 3..]);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{obj_hash}-{}", timestamp.internal()));
        ringsmith::atomic::write_bytes_atomic(&path, 0o644, &self.to_pickle())?;
        Ok(path)
    }
}

use ringsmith::swift::escape::quote as quote_path;

/// Sends one update; true on a 2xx.
pub async fn send(
    client: &reqwest::Client,
    target: &UpdateTarget,
    update: &PendingUpdate,
    timeout: Duration,
) -> Result<(), String> {
    let url = format!(
        "http://{}/{}/{}{}",
        target.host,
        quote_path(&target.device),
        target.partition,
        quote_path(&format!(
            "/{}/{}/{}",
            update.account, update.container, update.obj
        ))
    );
    let method = reqwest::Method::from_bytes(update.op.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = client.request(method, &url).timeout(timeout);
    for (k, v) in &update.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("status {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_pair_hosts_and_devices() {
        let t = targets(Some("127.0.0.1:1, 127.0.0.2:1"), Some("7"), Some("d1,d2")).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].device, "d2");
        assert!(targets(Some("h:1,h:2"), Some("7"), Some("d1")).is_err());
        assert!(targets(None, None, None).unwrap().is_empty());
        assert!(targets(Some("h:1"), Some("x"), Some("d")).is_err());
    }

    #[test]
    fn pending_update_pickles_like_swift() {
        let u = PendingUpdate {
            op: "DELETE",
            account: "AUTH_test".into(),
            container: "c".into(),
            obj: "o".into(),
            headers: vec![("X-Timestamp".into(), "1795313248.76961".into())],
        };
        let v = ringsmith::pickle::loads(&u.to_pickle()).unwrap();
        let Value::Dict(items) = v else { panic!() };
        assert!(items.contains(&(Value::Str("op".into()), Value::Str("DELETE".into()))));
        assert!(items.contains(&(Value::Str("db_state".into()), Value::None)));
    }
}

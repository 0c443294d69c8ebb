//! Container updates after an object write, and the `async_pending` queue for the ones
//! that fail.
//!
//! The proxy names the container replicas to update in `X-Container-Host`,
//! `-Partition` and `-Device` (comma lists of equal length). Each is sent as
//! `PUT|DELETE /<cdev>/<cpart>/<a>/<c>/<o>`; a connection error or a non-2xx answer is
//! pickled like Swift's `pickle_async_update` under
//! `<dev>/async_pending[-N]/<hash[-3:]>/<hash>-<timestamp>` for the object updater, so
//! Swift's `swift-object-updater` and ours can both replay it.
//!
//! An object write waits up to `container_update_timeout` for its update, as Swift's
//! does, but not for a container server that has just failed or outlasted that timeout
//! ([`SlowHosts`]): with one container server hung, Swift makes every write that names it
//! wait a full second, and the proxy then blames the *object* server for the delay and
//! error-limits healthy nodes. Here, for a few seconds after such a failure, the update
//! goes straight to `async_pending` (written before the write is answered) for the
//! updater to deliver; then the host is tried again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use ringsmith::pickle::Value;

use super::request::ObjectRequest;
use super::ObjectState;
use crate::common::headers::{self as h, update_targets, UpdateTarget};
use crate::common::shell::blocking;
use crate::common::Timestamp;
use ringsmith::swift::policy::Policy;

/// Container servers (`ip:port`) whose last update failed or timed out, and until when
/// writes stop waiting for them.
#[derive(Default)]
pub struct SlowHosts(Mutex<HashMap<String, Instant>>);

impl SlowHosts {
    /// How long a slow host is not tried: long enough that a hung host costs one write in
    /// a while its second, short enough that a recovered one is soon used again.
    const COOL_DOWN: Duration = Duration::from_secs(10);

    pub fn is_slow(&self, host: &str) -> bool {
        let m = self.0.lock().expect("slow hosts lock");
        m.get(host).is_some_and(|until| Instant::now() < *until)
    }

    fn mark(&self, host: &str) {
        let mut m = self.0.lock().expect("slow hosts lock");
        m.insert(host.to_string(), Instant::now() + Self::COOL_DOWN);
    }
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

    /// Writes the update atomically (temp, fsync, rename). With `mount_checked`, the
    /// device must still be mounted and the file must land on its filesystem: an update
    /// saved after the device was unmounted (the save can run well after the request's
    /// mount check) would otherwise go to the filesystem underneath, hidden once the
    /// device is back. That case is `ENODEV`, and whatever it created is removed.
    pub fn save(
        &self,
        device_path: &Path,
        mount_checked: bool,
        policy: &Policy,
        obj_hash: &str,
        timestamp: Timestamp,
    ) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let gone = || std::io::Error::from_raw_os_error(libc::ENODEV);
        if mount_checked && !crate::common::is_mount_point(device_path) {
            return Err(gone());
        }
        let queue = device_path.join(policy.dir("async_pending"));
        let dir = queue.join(&obj_hash[obj_hash.len() - 3..]);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{obj_hash}-{}", timestamp.internal()));
        ringsmith::atomic::write_bytes_atomic(&path, 0o644, &self.to_pickle())?;
        if let Some(devices) = device_path.parent().filter(|_| mount_checked) {
            if std::fs::metadata(&path)?.dev() == std::fs::metadata(devices)?.dev() {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                let _ = std::fs::remove_dir(&queue);
                return Err(gone());
            }
        }
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

// ----------------------------------------------- sending them from the object server

pub(super) async fn container_updates(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    headers: &HeaderMap,
    op: &'static str,
    mut cheaders: Vec<(String, String)>,
    targets: Vec<UpdateTarget>,
    req_ts: Timestamp,
) {
    if targets.is_empty() {
        return;
    }
    cheaders.push((
        "X-Backend-Storage-Policy-Index".into(),
        or.policy.index.to_string(),
    ));
    cheaders.push((
        "X-Trans-Id".into(),
        h::get(headers, "x-trans-id").unwrap_or("-").to_string(),
    ));
    cheaders.push((
        "Referer".into(),
        // Swift's `as_referer`: the URL's path is quoted (names may hold NUL or UTF-8).
        format!("{op} http://localhost{}", quote_path(&or.name())),
    ));
    cheaders.push((
        "User-Agent".into(),
        format!("object-server {}", std::process::id()),
    ));
    let update = PendingUpdate {
        op,
        account: or.account.clone(),
        container: or.container.clone(),
        obj: or.object.clone(),
        headers: cheaders,
    };
    send_or_queue(state, or, update, targets, req_ts).await;
}

async fn send_or_queue(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    update: PendingUpdate,
    targets: Vec<UpdateTarget>,
    req_ts: Timestamp,
) {
    let st = state.clone();
    let device_path = or.device_path.clone();
    let mounted = or.mount_checked;
    let policy = or.policy.clone();
    let hash = or.hash.clone();
    let hosts: Vec<String> = targets.iter().map(|t| t.host.clone()).collect();
    if hosts.iter().any(|h| state.slow_update_hosts.is_slow(h)) {
        // The updater delivers it to every container replica.
        let res =
            blocking(move || update.save(&device_path, mounted, &policy, &hash, req_ts)).await;
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot write async_pending");
        }
        return;
    }
    // Each failed replica is queued; the task outlives a slow update so the answer is
    // not held longer than container_update_timeout, as in Swift.
    let task = tokio::spawn(async move {
        let mut failed = false;
        for t in &targets {
            match send(&st.http, t, &update, st.cfg.node_timeout).await {
                Ok(()) => {}
                Err(e) => {
                    st.slow_update_hosts.mark(&t.host);
                    tracing::error!(
                        host = %t.host, device = %t.device, error = %e,
                        "container update failed (saving for async update later)"
                    );
                    failed = true;
                }
            }
        }
        if failed {
            let u = update.clone();
            let res = blocking(move || u.save(&device_path, mounted, &policy, &hash, req_ts)).await;
            if let Err(e) = res {
                tracing::error!(error = %e, "cannot write async_pending");
            }
        }
    });
    if tokio::time::timeout(state.cfg.container_update_timeout, task)
        .await
        .is_err()
    {
        for h in &hosts {
            state.slow_update_hosts.mark(h);
        }
    }
}

/// The expirer queue: `.expiring_objects/<X-Delete-At-Container>/<at>-<a>/<c>/<o>`.
pub(super) async fn delete_at_updates(
    state: &Arc<ObjectState>,
    or: &ObjectRequest,
    headers: &HeaderMap,
    new_at: Option<u64>,
    old_at: Option<String>,
    req_ts: Timestamp,
) {
    let old_at = old_at.and_then(|v| v.parse::<u64>().ok());
    if new_at == old_at {
        return;
    }
    let Some(at) = new_at else {
        return;
    };
    let Ok(targets) = update_targets(
        h::get(headers, "x-delete-at-host"),
        h::get(headers, "x-delete-at-partition"),
        h::get(headers, "x-delete-at-device"),
    ) else {
        return;
    };
    let Some(container) = h::get(headers, "x-delete-at-container") else {
        return;
    };
    if targets.is_empty() {
        return;
    }
    let update = PendingUpdate {
        op: "PUT",
        account: ".expiring_objects".into(),
        container: container.to_string(),
        obj: format!("{at}-{}/{}/{}", or.account, or.container, or.object),
        headers: vec![
            ("X-Size".into(), "0".into()),
            ("X-Content-Type".into(), "text/plain".into()),
            ("X-Timestamp".into(), req_ts.internal()),
            ("X-Etag".into(), "d41d8cd98f00b204e9800998ecf8427e".into()),
            ("X-Backend-Storage-Policy-Index".into(), "0".into()),
        ],
    };
    send_or_queue(state, or, update, targets, req_ts).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_host_is_slow_for_a_while_and_others_are_not() {
        let slow = SlowHosts::default();
        assert!(!slow.is_slow("127.0.0.1:6201"));
        slow.mark("127.0.0.1:6201");
        assert!(slow.is_slow("127.0.0.1:6201"));
        assert!(!slow.is_slow("127.0.0.2:6201"));
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

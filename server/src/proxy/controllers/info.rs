//! What the proxy app knows about accounts and containers (Swift's `get_account_info` and
//! `get_container_info`), cached for `recheck_container_existence`, and account
//! auto-creation.

use super::*;

/// What the proxy knows about a container (Swift's `get_container_info`).
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub status: u16,
    pub policy_index: u32,
    pub read_acl: Option<String>,
    pub write_acl: Option<String>,
    pub object_count: u64,
    pub bytes_used: u64,
    pub cors: crate::proxy::cors::Cors,
    /// `X-Container-Meta-*`, keyed by the rest of the name, lowercase (Swift's `meta`).
    pub meta: std::collections::BTreeMap<String, String>,
    /// `X-Container-Sysmeta-*`, likewise (Swift's `sysmeta`).
    pub sysmeta: std::collections::BTreeMap<String, String>,
}

/// What the proxy knows about an account (Swift's `get_account_info`).
#[derive(Clone, Debug, Default)]
pub struct AccountInfo {
    pub status: u16,
    pub bytes_used: u64,
    pub object_count: u64,
    pub container_count: u64,
    pub meta: std::collections::BTreeMap<String, String>,
    pub sysmeta: std::collections::BTreeMap<String, String>,
    /// Per policy index: (bytes used, object count).
    pub policy_stats: std::collections::BTreeMap<u32, (u64, u64)>,
}

/// The headers under `prefix`, keyed by the rest of the name.
pub(super) fn headers_under(
    h: &HeaderMap,
    prefix: &str,
) -> std::collections::BTreeMap<String, String> {
    h.iter()
        .filter_map(|(k, v)| {
            let rest = k.as_str().strip_prefix(prefix)?;
            Some((
                rest.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

impl Proxy {
    /// The account's ACLs (a HEAD of the account; asked only when tempauth alone says no,
    /// so a change is seen at once).
    pub async fn account_acls(self: &Arc<Self>, account: &str) -> Option<account_acl::AccountAcls> {
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server account acls");
        let path = format!("/{part}/{}", quote(account));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        if !r.status.is_success() {
            return None;
        }
        r.header(account_acl::SYSMETA)
            .and_then(account_acl::AccountAcls::parse)
    }

    pub async fn container_info(self: &Arc<Self>, account: &str, container: &str) -> ContainerInfo {
        let key = format!("{account}/{container}");
        if let Some((at, info)) = self.info_cache.lock().expect("info cache").get(&key) {
            if at.elapsed() < self.info_ttl {
                return info.clone();
            }
        }
        let ring = self.container_ring.get();
        let part = ring.get_part(account, Some(container), None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}/{}", quote(account), quote(container));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        let num = |k: &str| r.header(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        let info = ContainerInfo {
            status: r.status.as_u16(),
            policy_index: num("x-backend-storage-policy-index") as u32,
            read_acl: r.header("x-container-read").map(str::to_string),
            write_acl: r.header("x-container-write").map(str::to_string),
            object_count: num("x-container-object-count"),
            bytes_used: num("x-container-bytes-used"),
            cors: crate::proxy::cors::Cors::from_container_headers(&r.headers),
            meta: headers_under(&r.headers, "x-container-meta-"),
            sysmeta: headers_under(&r.headers, "x-container-sysmeta-"),
        };
        if info.status / 100 == 2 {
            self.info_cache
                .lock()
                .expect("info cache")
                .insert(key, (Instant::now(), info.clone()));
        }
        info
    }

    /// The account's stats and metadata, cached like container info.
    pub async fn account_info(self: &Arc<Self>, account: &str) -> AccountInfo {
        if let Some((at, info)) = self
            .account_info_cache
            .lock()
            .expect("info cache")
            .get(account)
        {
            if at.elapsed() < self.info_ttl {
                return info.clone();
            }
        }
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}", quote(account));
        let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
        let num = |k: &str| r.header(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
        let mut policy_stats = std::collections::BTreeMap::new();
        for (k, v) in &r.headers {
            let Some(rest) = k.as_str().strip_prefix("x-account-storage-policy-") else {
                continue;
            };
            let value: u64 = v.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0);
            let (name, is_bytes) = if let Some(n) = rest.strip_suffix("-bytes-used") {
                (n, true)
            } else if let Some(n) = rest.strip_suffix("-object-count") {
                (n, false)
            } else {
                continue;
            };
            if let Some(p) = self.policies.by_name(name) {
                let e: &mut (u64, u64) = policy_stats.entry(p.index).or_default();
                if is_bytes {
                    e.0 = value;
                } else {
                    e.1 = value;
                }
            }
        }
        let info = AccountInfo {
            status: r.status.as_u16(),
            bytes_used: num("x-account-bytes-used"),
            object_count: num("x-account-object-count"),
            container_count: num("x-account-container-count"),
            meta: headers_under(&r.headers, "x-account-meta-"),
            sysmeta: headers_under(&r.headers, "x-account-sysmeta-"),
            policy_stats,
        };
        if info.status / 100 == 2 {
            self.account_info_cache
                .lock()
                .expect("info cache")
                .insert(account.to_string(), (Instant::now(), info.clone()));
        }
        info
    }

    pub(super) fn forget_account(&self, account: &str) {
        self.account_info_cache
            .lock()
            .expect("info cache")
            .remove(account);
    }

    pub(super) fn forget_container(&self, account: &str, container: &str) {
        self.info_cache
            .lock()
            .expect("info cache")
            .remove(&format!("{account}/{container}"));
    }

    /// Whether the account exists, creating it when `account_autocreate` is on.
    pub(super) async fn ensure_account(
        self: &Arc<Self>,
        account: &str,
        trans_id: &str,
    ) -> Result<(), Response> {
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let path = format!("/{part}/{}", quote(account));
        let mut h = HeaderMap::new();
        set(&mut h, "x-trans-id", trans_id);
        let r = self
            .read_one(ring.clone(), part, &Method::HEAD, &path, &h)
            .await;
        if r.status.is_success() {
            return Ok(());
        }
        if r.status != StatusCode::NOT_FOUND {
            return Err(status_text(StatusCode::SERVICE_UNAVAILABLE));
        }
        if !self.account_autocreate {
            return Err(status_text(StatusCode::NOT_FOUND));
        }
        set(&mut h, "x-timestamp", &timestamp_now());
        let answers = self
            .make_requests(
                ring.clone(),
                part,
                Method::PUT,
                path,
                h,
                Bytes::new(),
                |_, _| {},
            )
            .await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        match best_status(&statuses, quorum_size(ring.part_nodes(part).len())) {
            Some((s, _)) if s / 100 == 2 || s == 409 => Ok(()),
            _ => Err(status_text(StatusCode::SERVICE_UNAVAILABLE)),
        }
    }
}

//! What the proxy app knows about accounts and containers (Swift's `get_account_info` and
//! `get_container_info`), cached for `recheck_container_existence`, and account
//! auto-creation.

use super::*;
use serde_json::Value;

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
    /// The rest of Swift's info dict (sync, versions, sharding state, timestamps), kept
    /// so that a Swift proxy reading the shared cache finds every key it expects.
    pub swift_extra: serde_json::Map<String, Value>,
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
    /// The rest of Swift's info dict (every policy's `storage_policies` entry).
    pub swift_extra: serde_json::Map<String, Value>,
}

/// Swift's cache keys for account and container info.
pub fn account_cache_key(account: &str) -> String {
    format!("account/{account}")
}

pub fn container_cache_key(account: &str, container: &str) -> String {
    format!("container/{account}/{container}")
}

/// A count as Swift caches it: a number, or the header's string.
fn cached_num(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn cached_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn cached_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl ContainerInfo {
    /// Swift's container info dict (`headers_to_container_info`), as it caches it.
    pub fn to_cache(&self) -> Value {
        let mut v = Value::Object(self.swift_extra.clone());
        merge(
            &mut v,
            serde_json::json!({
                "status": self.status,
                "read_acl": self.read_acl,
                "write_acl": self.write_acl,
                "object_count": self.object_count.to_string(),
                "bytes": self.bytes_used.to_string(),
                "storage_policy": self.policy_index.to_string(),
                "cors": {
                    "allow_origin": self.cors.allow_origin,
                    "expose_headers": self.cors.expose_headers,
                    "max_age": self.cors.max_age,
                },
                "meta": self.meta,
                "sysmeta": self.sysmeta,
            }),
        );
        v
    }

    /// Reads what [`to_cache`](Self::to_cache) or a Swift proxy stored; `None` for
    /// anything that is not such a dict.
    pub fn from_cache(v: &Value) -> Option<ContainerInfo> {
        let o = v.as_object()?;
        let status = o.get("status")?.as_u64()? as u16;
        let cors = o.get("cors").and_then(Value::as_object);
        let cors_field = |k: &str| cors.and_then(|c| cached_str(c.get(k)));
        Some(ContainerInfo {
            status,
            policy_index: cached_num(o.get("storage_policy")) as u32,
            read_acl: cached_str(o.get("read_acl")),
            write_acl: cached_str(o.get("write_acl")),
            object_count: cached_num(o.get("object_count")),
            bytes_used: cached_num(o.get("bytes")),
            cors: crate::proxy::cors::Cors {
                allow_origin: cors_field("allow_origin"),
                max_age: cors_field("max_age"),
                expose_headers: cors_field("expose_headers"),
            },
            meta: cached_map(o.get("meta")),
            sysmeta: cached_map(o.get("sysmeta")),
            swift_extra: extra_of(o, CONTAINER_KEYS),
        })
    }
}

/// The container info keys [`ContainerInfo`] has fields for.
const CONTAINER_KEYS: &[&str] = &[
    "status",
    "read_acl",
    "write_acl",
    "object_count",
    "bytes",
    "storage_policy",
    "cors",
    "meta",
    "sysmeta",
];
/// The account info keys [`AccountInfo`] has fields for.
const ACCOUNT_KEYS: &[&str] = &[
    "status",
    "container_count",
    "total_object_count",
    "bytes",
    "meta",
    "sysmeta",
];

fn extra_of(o: &serde_json::Map<String, Value>, known: &[&str]) -> serde_json::Map<String, Value> {
    o.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// Swift's container info keys that are not [`ContainerInfo`] fields, from the HEAD.
fn container_extra(h: &HeaderMap) -> serde_json::Map<String, Value> {
    let get = |k: &str| {
        super::header(h, k)
            .map(|v| Value::from(v.to_string()))
            .unwrap_or(Value::Null)
    };
    let mut m = serde_json::Map::new();
    for (key, header) in [
        ("sync_to", "x-container-sync-to"),
        ("sync_key", "x-container-sync-key"),
        ("versions", "x-versions-location"),
        ("created_at", "x-backend-timestamp"),
        ("put_timestamp", "x-backend-put-timestamp"),
        ("delete_timestamp", "x-backend-delete-timestamp"),
        ("status_changed_at", "x-backend-status-changed-at"),
    ] {
        m.insert(key.into(), get(header));
    }
    let sharding = super::header(h, "x-backend-sharding-state").unwrap_or("unsharded");
    m.insert("sharding_state".into(), Value::from(sharding));
    m
}

impl AccountInfo {
    /// Swift's account info dict (`headers_to_account_info`), as it caches it.
    pub fn to_cache(&self) -> Value {
        let policies: serde_json::Map<String, Value> = self
            .policy_stats
            .iter()
            .map(|(idx, (bytes, objects))| {
                (
                    idx.to_string(),
                    serde_json::json!({"bytes": bytes, "object_count": objects}),
                )
            })
            .collect();
        let mut v = serde_json::json!({"storage_policies": policies});
        merge(&mut v, Value::Object(self.swift_extra.clone()));
        merge(
            &mut v,
            serde_json::json!({
                "status": self.status,
                "container_count": self.container_count.to_string(),
                "total_object_count": self.object_count.to_string(),
                "bytes": self.bytes_used.to_string(),
                "meta": self.meta,
                "sysmeta": self.sysmeta,
            }),
        );
        v
    }

    pub fn from_cache(v: &Value) -> Option<AccountInfo> {
        let o = v.as_object()?;
        let status = o.get("status")?.as_u64()? as u16;
        let policy_stats = o
            .get("storage_policies")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(idx, s)| {
                        Some((
                            idx.parse().ok()?,
                            (
                                cached_num(s.get("bytes")),
                                cached_num(s.get("object_count")),
                            ),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(AccountInfo {
            status,
            bytes_used: cached_num(o.get("bytes")),
            object_count: cached_num(o.get("total_object_count")),
            container_count: cached_num(o.get("container_count")),
            meta: cached_map(o.get("meta")),
            sysmeta: cached_map(o.get("sysmeta")),
            policy_stats,
            swift_extra: extra_of(o, ACCOUNT_KEYS),
        })
    }
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
        let key = container_cache_key(account, container);
        let cache = self.cache();
        if let Some(info) = cache
            .get(&key)
            .await
            .as_ref()
            .and_then(ContainerInfo::from_cache)
        {
            return info;
        }
        let ring = self.container_ring.get();
        let part = ring.get_part(account, Some(container), None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}/{}", quote(account), quote(container));
        // The backend answer (its body is not Sync) must be gone before the cache write.
        let info = {
            let r = self.read_one(ring, part, &Method::HEAD, &path, &h).await;
            let num = |k: &str| r.header(k).and_then(|v| v.parse().ok()).unwrap_or(0u64);
            ContainerInfo {
                status: r.status.as_u16(),
                policy_index: num("x-backend-storage-policy-index") as u32,
                read_acl: r.header("x-container-read").map(str::to_string),
                write_acl: r.header("x-container-write").map(str::to_string),
                object_count: num("x-container-object-count"),
                bytes_used: num("x-container-bytes-used"),
                cors: crate::proxy::cors::Cors::from_container_headers(&r.headers),
                meta: headers_under(&r.headers, "x-container-meta-"),
                sysmeta: headers_under(&r.headers, "x-container-sysmeta-"),
                swift_extra: container_extra(&r.headers),
            }
        };
        if info.status / 100 == 2 {
            // A cache that is down only costs the next request another HEAD.
            let _ = cache
                .set(&key, &info.to_cache(), self.info_ttl.as_secs().max(1))
                .await;
        }
        info
    }

    /// The account's stats and metadata, cached like container info.
    pub async fn account_info(self: &Arc<Self>, account: &str) -> AccountInfo {
        let key = account_cache_key(account);
        let cache = self.cache();
        if let Some(info) = cache
            .get(&key)
            .await
            .as_ref()
            .and_then(AccountInfo::from_cache)
        {
            return info;
        }
        let ring = self.account_ring.get();
        let part = ring.get_part(account, None, None);
        let mut h = HeaderMap::new();
        set(&mut h, "user-agent", "proxy-server info");
        let path = format!("/{part}/{}", quote(account));
        let info = {
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
            AccountInfo {
                status: r.status.as_u16(),
                bytes_used: num("x-account-bytes-used"),
                object_count: num("x-account-object-count"),
                container_count: num("x-account-container-count"),
                meta: headers_under(&r.headers, "x-account-meta-"),
                sysmeta: headers_under(&r.headers, "x-account-sysmeta-"),
                policy_stats,
                swift_extra: self.account_extra(&r.headers),
            }
        };
        if info.status / 100 == 2 {
            let _ = cache
                .set(
                    &key,
                    &info.to_cache(),
                    self.account_info_ttl.as_secs().max(1),
                )
                .await;
        }
        info
    }

    /// Swift's `storage_policies` of account info: every policy, with its counts.
    fn account_extra(&self, h: &HeaderMap) -> serde_json::Map<String, Value> {
        let count = |p: &str, what: &str| -> u64 {
            super::header(
                h,
                &format!("x-account-storage-policy-{}-{what}", p.to_ascii_lowercase()),
            )
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
        };
        let policies: serde_json::Map<String, Value> = self
            .policies
            .iter()
            .map(|p| {
                (
                    p.index.to_string(),
                    serde_json::json!({
                        "container_count": count(p.name(), "container-count"),
                        "object_count": count(p.name(), "object-count"),
                        "bytes": count(p.name(), "bytes-used"),
                    }),
                )
            })
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("storage_policies".into(), Value::Object(policies));
        m
    }

    /// The container's info read from its servers now rather than from the cache (which
    /// it then refreshes): for counts that must be current, such as a versions container's
    /// bytes under a quota.
    pub async fn container_info_now(
        self: &Arc<Self>,
        account: &str,
        container: &str,
    ) -> ContainerInfo {
        self.cache()
            .delete(&container_cache_key(account, container))
            .await;
        self.container_info(account, container).await
    }

    /// Drops the account's cached info (every proxy on the same memcached sees that).
    pub(super) async fn forget_account(&self, account: &str) {
        self.cache().delete(&account_cache_key(account)).await;
    }

    /// Drops the container's cached info, and its account's (whose counts change).
    pub(super) async fn forget_container(&self, account: &str, container: &str) {
        let cache = self.cache();
        cache.delete(&container_cache_key(account, container)).await;
        cache.delete(&account_cache_key(account)).await;
    }

    /// Whether the account exists, creating it when `account_autocreate` is on, with the
    /// account sysmeta the request carries (keystoneauth's project domain), as Swift's
    /// autocreate does.
    pub(super) async fn ensure_account(
        self: &Arc<Self>,
        account: &str,
        trans_id: &str,
        request: &HeaderMap,
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
        for (name, value) in request {
            if name.as_str().starts_with("x-account-sysmeta-") {
                h.insert(name.clone(), value.clone());
            }
        }
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

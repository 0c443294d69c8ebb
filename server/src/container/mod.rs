//! The container server: one SQLite database per container (see [`broker`]) holding
//! its object rows, per-policy counts and metadata.
//!
//! `PUT /d/p/a/c` creates the database with its storage policy, fixed from then on (a
//! PUT naming another policy is a 409 while the container exists). Object servers send
//! `PUT|DELETE /d/p/a/c/o` after each write; rows are merged newest-wins. Container
//! PUT and DELETE report the container's stats to the account servers named in
//! `X-Account-Host/Partition/Device`. GET lists objects in plain, JSON or XML.
//!
//! All database work runs on tokio's blocking pool. An object server's row update is
//! appended to the database's `.pending` file without opening SQLite (see
//! [`crate::db::pending`]); every other request opens the database with the pending rows
//! merged first, does one short transaction, and closes it.

pub mod broker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use serde_json::json;

use crate::common::config::{secs, StorageConfig};
use crate::common::headers as h;
use crate::common::path::StoragePath;
use crate::common::shell::{
    blocking, header_is_true, required_timestamp, storage_path, Resp, Shell,
};
use crate::common::{empty, plain, Timestamp};
use crate::db::broker::{db_error, open_db, put_record, update_metadata, update_put_timestamp};
use crate::db::listing::render;
use crate::db::requests::{
    self, found_or_404, listing_response, metadata_headers, read_existing, request_metadata,
    request_params, timestamp_headers,
};
use crate::db::{self, ts, DbKind, Entry, ListingFormat};
use crate::recon::ServerKind;
use broker::{ContainerDb, ContainerInfo, ObjectRecord};
use ringsmith::swift::conf::{Conf, ConfError};
use ringsmith::swift::escape::xml_text;
use ringsmith::swift::timestamp::RowTimes;

#[derive(Clone, Debug)]
pub struct ContainerConfig {
    pub storage: StorageConfig,
    pub node_timeout: Duration,
    pub conn_timeout: Duration,
    pub auto_create_account_prefix: String,
}

impl ContainerConfig {
    pub fn from_conf(conf: &Conf) -> Result<ContainerConfig, String> {
        let app = conf.section("app:container-server");
        let e = |e: ConfError| e.to_string();
        Ok(ContainerConfig {
            storage: StorageConfig::from_section(&app)?,
            node_timeout: secs(&app, "node_timeout", 3.0).map_err(e)?,
            conn_timeout: secs(&app, "conn_timeout", 0.5).map_err(e)?,
            auto_create_account_prefix: app.str_or("auto_create_account_prefix", "."),
        })
    }
}

pub struct ContainerState {
    pub cfg: ContainerConfig,
    pub http: reqwest::Client,
}

impl ContainerState {
    pub fn new(cfg: ContainerConfig) -> Arc<ContainerState> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.conn_timeout)
            .build()
            .expect("reqwest client with static settings");
        Arc::new(ContainerState { cfg, http })
    }
}

pub fn container_router(state: Arc<ContainerState>) -> Router {
    let shell = Shell::new(
        "container-server",
        ServerKind::Container,
        vec!["DELETE", "GET", "HEAD", "POST", "PUT", "UPDATE"],
        &state.cfg.storage,
    );
    shell.router(move |req, path| {
        let state = state.clone();
        async move { handle(&state, req, &path).await }
    })
}

struct Target {
    path: StoragePath,
    account: String,
    container: String,
    db_path: PathBuf,
}

fn target(state: &ContainerState, path: &str) -> Result<Target, Resp> {
    let sp = storage_path(path, 4, 5)?;
    let dev = state.cfg.storage.devices.require(&sp.device)?;
    let (Some(account), Some(container)) = (sp.account.clone(), sp.container.clone()) else {
        return Err(plain(StatusCode::BAD_REQUEST, "Invalid path"));
    };
    let hash = state
        .cfg
        .storage
        .hash
        .hash_path(&account, Some(&container), None)
        .map_err(|e| plain(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Target {
        db_path: db::db_path(&dev, ContainerDb::DIR, &sp.partition, &hash),
        path: sp,
        account,
        container,
    })
}

async fn handle(state: &Arc<ContainerState>, req: Request, path: &str) -> Resp {
    let t = match target(state, path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let query = req.uri().query().map(str::to_string);
    let headers = req.headers().clone();
    let has_obj = t.path.object.is_some();
    match (req.method().as_str(), has_obj) {
        ("PUT", true) => object_update(state, t, &headers, false).await,
        ("DELETE", true) => object_update(state, t, &headers, true).await,
        ("PUT", false) => put_container(state, t, &headers).await,
        ("DELETE", false) => delete_container(state, t, &headers).await,
        ("POST", false) => {
            let bump = !header_is_true(&headers, "x-backend-no-timestamp-update");
            requests::post::<ContainerDb>(t.db_path, &headers, &state.cfg.storage.constraints, bump)
                .await
        }
        ("HEAD", false) => get_container(state, t, &headers, None, true).await,
        ("GET", false) => get_container(state, t, &headers, query, false).await,
        ("UPDATE", false) => {
            let body = match axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await {
                Ok(b) => b,
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "UPDATE body too large"),
            };
            update_container(t, &headers, body).await
        }
        _ => plain(StatusCode::BAD_REQUEST, "Invalid path"),
    }
}

/// Object rows from object servers (`PUT`/`DELETE /d/p/a/c/o`).
async fn object_update(
    state: &Arc<ContainerState>,
    t: Target,
    headers: &HeaderMap,
    delete: bool,
) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let policy_index = match h::get(headers, "x-backend-storage-policy-index") {
        Some(v) => match v.trim().parse::<u32>() {
            Ok(i) => i,
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "Invalid X-Backend-Storage-Policy-Index",
                )
            }
        },
        None => 0,
    };
    let opt_ts = |name: &str| h::get(headers, name).and_then(|v| Timestamp::parse(v).ok());
    let rec = ObjectRecord {
        name: t.path.object.clone().unwrap_or_default(),
        created_at: req_ts,
        size: h::get(headers, "x-size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        content_type: h::get(headers, "x-content-type").unwrap_or("").to_string(),
        etag: h::get(headers, "x-etag").unwrap_or("").to_string(),
        deleted: delete,
        policy_index,
        ctype_timestamp: opt_ts("x-content-type-timestamp"),
        meta_timestamp: opt_ts("x-meta-timestamp"),
    };
    if !delete
        && (h::get(headers, "x-size").is_none()
            || h::get(headers, "x-content-type").is_none()
            || h::get(headers, "x-etag").is_none())
    {
        return plain(
            StatusCode::BAD_REQUEST,
            "Missing X-Size, X-Content-Type or X-Etag",
        );
    }
    let auto_create = t.account.starts_with(&state.cfg.auto_create_account_prefix)
        || header_is_true(headers, "x-backend-auto-create");
    let (account, container, path) = (t.account.clone(), t.container.clone(), t.db_path.clone());
    let res = blocking(move || -> rusqlite::Result<StatusCode> {
        if !path.exists() {
            if !auto_create || delete {
                return Ok(StatusCode::NOT_FOUND);
            }
            broker::create(&path, &account, &container, req_ts, policy_index)?;
        }
        // As Swift's container server: appended to the pending file, merged later in a
        // batch; the database itself is not opened.
        put_record::<ContainerDb>(&path, &rec.to_pending_tuple())?;
        Ok(if delete {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::CREATED
        })
    })
    .await;
    match res {
        Ok(s) => empty(s),
        Err(e) => db_error(e),
    }
}

enum PutOutcome {
    Created(ContainerInfo),
    Accepted(ContainerInfo),
    PolicyConflict(u32),
}

async fn put_container(state: &Arc<ContainerState>, t: Target, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.container.len() > state.cfg.storage.constraints.max_container_name_length {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "Container name length of {} longer than {}",
                t.container.len(),
                state.cfg.storage.constraints.max_container_name_length
            ),
        );
    }
    let (items, limits) =
        match request_metadata::<ContainerDb>(headers, &state.cfg.storage.constraints) {
            Ok(x) => x,
            Err(r) => return r,
        };
    let requested = match h::get(headers, "x-backend-storage-policy-index") {
        Some(v) => match v
            .trim()
            .parse::<u32>()
            .ok()
            .and_then(|i| state.cfg.storage.policies.get(i))
        {
            Some(p) => Some(p.index),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid X-Storage-Policy-Index {v:?}"),
                )
            }
        },
        None => None,
    };
    let default_index = h::get(headers, "x-backend-storage-policy-default")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|i| state.cfg.storage.policies.get(*i).is_some())
        .unwrap_or(state.cfg.storage.policies.default_policy().index);
    let (account, container, path) = (t.account.clone(), t.container.clone(), t.db_path.clone());
    let res = blocking(move || -> rusqlite::Result<PutOutcome> {
        if !path.exists() {
            let mut conn = broker::create(
                &path,
                &account,
                &container,
                req_ts,
                requested.unwrap_or(default_index),
            )?;
            update_metadata::<ContainerDb>(&mut conn, &items, req_ts, &limits)?;
            return Ok(PutOutcome::Created(broker::info(&conn)?));
        }
        let mut conn = open_db::<ContainerDb>(&path)?;
        let before = broker::info(&conn)?;
        let was_deleted = before.is_deleted();
        if let Some(want) = requested {
            if want != before.storage_policy_index {
                if was_deleted {
                    // A deleted container may be recreated with another policy.
                    broker::set_storage_policy(&conn, want)?;
                } else {
                    return Ok(PutOutcome::PolicyConflict(before.storage_policy_index));
                }
            }
        }
        update_put_timestamp::<ContainerDb>(&conn, req_ts)?;
        if was_deleted {
            broker::update_status_changed_at(&conn, req_ts)?;
        }
        update_metadata::<ContainerDb>(&mut conn, &items, req_ts, &limits)?;
        let after = broker::info(&conn)?;
        if after.is_deleted() {
            // The PUT is older than the DELETE: still deleted.
            return Ok(PutOutcome::PolicyConflict(u32::MAX));
        }
        Ok(if was_deleted {
            PutOutcome::Created(after)
        } else {
            PutOutcome::Accepted(after)
        })
    })
    .await;
    let (status, info) = match res {
        Err(e) => return db_error(e),
        Ok(PutOutcome::PolicyConflict(u32::MAX)) => return plain(StatusCode::CONFLICT, "Conflict"),
        Ok(PutOutcome::PolicyConflict(idx)) => {
            let mut r = plain(StatusCode::CONFLICT, "Conflict");
            h::insert(
                r.headers_mut(),
                "x-backend-storage-policy-index",
                &idx.to_string(),
            );
            return r;
        }
        Ok(PutOutcome::Created(i)) => (StatusCode::CREATED, i),
        Ok(PutOutcome::Accepted(i)) => (StatusCode::ACCEPTED, i),
    };
    if let Some(r) = account_update(state, &t, headers, &info).await {
        return r;
    }
    let mut r = empty(status);
    h::insert(
        r.headers_mut(),
        "x-backend-storage-policy-index",
        &info.storage_policy_index.to_string(),
    );
    r
}

/// Reports the container's stats to every account replica named by the proxy. `Some`
/// response when the request must fail (every account server said 404).
async fn account_update(
    state: &Arc<ContainerState>,
    t: &Target,
    headers: &HeaderMap,
    info: &ContainerInfo,
) -> Option<Resp> {
    let targets = match h::update_targets(
        h::get(headers, "x-account-host"),
        h::get(headers, "x-account-partition"),
        h::get(headers, "x-account-device"),
    ) {
        Ok(t) => t,
        Err(m) => {
            return Some(plain(
                StatusCode::BAD_REQUEST,
                m.replace("Container", "Account"),
            ))
        }
    };
    if targets.is_empty() {
        return None;
    }
    let (put_ts, del_ts, count, bytes) = if info.is_deleted() {
        (
            info.put_timestamp.clone(),
            info.delete_timestamp.clone(),
            0,
            0,
        )
    } else {
        (
            info.put_timestamp.clone(),
            info.delete_timestamp.clone(),
            info.object_count,
            info.bytes_used,
        )
    };
    let mut not_found = 0;
    let mut ok = 0;
    for tg in &targets {
        let url = format!(
            "http://{}/{}/{}/{}/{}",
            tg.host,
            enc(&tg.device),
            tg.partition,
            enc(&t.account),
            enc(&t.container)
        );
        let mut req = state
            .http
            .put(&url)
            .timeout(state.cfg.node_timeout)
            .header("X-Put-Timestamp", &put_ts)
            .header("X-Delete-Timestamp", &del_ts)
            .header("X-Object-Count", count.to_string())
            .header("X-Bytes-Used", bytes.to_string())
            .header(
                "X-Backend-Storage-Policy-Index",
                info.storage_policy_index.to_string(),
            )
            .header("X-Trans-Id", h::get(headers, "x-trans-id").unwrap_or("-"));
        if let Some(v) = h::get(headers, "x-account-override-deleted") {
            req = req.header("X-Account-Override-Deleted", v);
        }
        match req.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => not_found += 1,
            Ok(r) if r.status().is_success() => ok += 1,
            Ok(r) => {
                tracing::error!(host = %tg.host, status = %r.status(), "account update failed")
            }
            Err(e) => tracing::error!(host = %tg.host, error = %e, "account update failed"),
        }
    }
    if ok > 0 {
        let path = t.db_path.clone();
        let info = info.clone();
        let _ =
            blocking(move || db::open(&path).and_then(|c| broker::set_reported(&c, &info))).await;
    }
    if not_found == targets.len() {
        return Some(plain(StatusCode::NOT_FOUND, "Account not found"));
    }
    None
}

/// One path segment, quoted with nothing safe (not even `/`).
fn enc(s: &str) -> String {
    ringsmith::swift::escape::quote_with(s, b"")
}

async fn delete_container(state: &Arc<ContainerState>, t: Target, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let path = t.db_path.clone();
    let limits = crate::db::broker::meta_limits::<ContainerDb>(&state.cfg.storage.constraints);
    enum Outcome {
        NotFound,
        NotEmpty,
        Deleted(Box<ContainerInfo>),
    }
    let res = blocking(move || -> rusqlite::Result<Outcome> {
        if !path.exists() {
            return Ok(Outcome::NotFound);
        }
        let mut conn = open_db::<ContainerDb>(&path)?;
        let i = broker::info(&conn)?;
        if i.is_deleted() {
            return Ok(Outcome::NotFound);
        }
        if i.object_count > 0 {
            return Ok(Outcome::NotEmpty);
        }
        // Swift's `delete_db` clears the metadata first (but sharding's), so a container
        // made again under the same name starts without the old ACLs and settings.
        let text: String = conn.query_row("SELECT metadata FROM container_stat", [], |r| {
            r.get::<_, Option<String>>(0).map(|o| o.unwrap_or_default())
        })?;
        let cleared: Vec<(String, String)> =
            crate::db::metadata::live_metadata(&crate::db::metadata::parse_metadata(&text))
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| {
                    !matches!(
                        k.to_ascii_lowercase().as_str(),
                        "x-container-sysmeta-shard-quoted-root"
                            | "x-container-sysmeta-shard-root"
                            | "x-container-sysmeta-sharding"
                    )
                })
                .map(|k| (k, String::new()))
                .collect();
        update_metadata::<ContainerDb>(&mut conn, &cleared, req_ts, &limits)?;
        broker::set_delete_timestamp(&conn, req_ts)?;
        broker::update_status_changed_at(&conn, req_ts)?;
        Ok(Outcome::Deleted(Box::new(broker::info(&conn)?)))
    })
    .await;
    match res {
        Err(e) => db_error(e),
        Ok(Outcome::NotFound) => plain(StatusCode::NOT_FOUND, ""),
        Ok(Outcome::NotEmpty) => plain(StatusCode::CONFLICT, "Conflict"),
        Ok(Outcome::Deleted(info)) => {
            if let Some(r) = account_update(state, &t, headers, &info).await {
                if r.status() != StatusCode::NOT_FOUND {
                    return r;
                }
            }
            empty(StatusCode::NO_CONTENT)
        }
    }
}

fn container_headers(i: &ContainerInfo, hm: &mut HeaderMap) {
    let created = ts(&i.created_at);
    let put = ts(&i.put_timestamp);
    h::insert(hm, "x-backend-timestamp", &created.internal());
    h::insert(hm, "x-backend-put-timestamp", &put.internal());
    h::insert(
        hm,
        "x-backend-delete-timestamp",
        &ts(&i.delete_timestamp).internal(),
    );
    h::insert(
        hm,
        "x-backend-status-changed-at",
        &ts(&i.status_changed_at).internal(),
    );
    h::insert(
        hm,
        "x-backend-storage-policy-index",
        &i.storage_policy_index.to_string(),
    );
    h::insert(hm, "x-backend-sharding-state", "unsharded");
    if i.is_deleted() {
        return;
    }
    h::insert(hm, "x-container-object-count", &i.object_count.to_string());
    h::insert(hm, "x-container-bytes-used", &i.bytes_used.to_string());
    timestamp_headers(hm, created, put);
    metadata_headers(hm, &i.metadata);
}

async fn get_container(
    state: &Arc<ContainerState>,
    t: Target,
    headers: &HeaderMap,
    query: Option<String>,
    head: bool,
) -> Resp {
    let params = match request_params(
        query.as_deref(),
        headers,
        state.cfg.storage.constraints.container_listing_limit,
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let p2 = params.clone();
    let read = read_existing::<ContainerDb, _>(t.db_path.clone(), move |conn| {
        let i = broker::info(conn)?;
        let rows = if head || i.is_deleted() {
            vec![]
        } else {
            broker::list(conn, &p2, i.storage_policy_index)?
        };
        Ok((i, rows))
    });
    let (info, rows) = match read.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut hm = HeaderMap::new();
    container_headers(&info, &mut hm);
    if info.is_deleted() {
        let mut r = plain(StatusCode::NOT_FOUND, "");
        r.headers_mut().extend(hm);
        return r;
    }
    if head {
        return listing_response(None, params.format, hm);
    }
    let body = render_objects(&t.container, &rows, params.format);
    let mut r = listing_response(Some(body), params.format, hm);
    h::insert(r.headers_mut(), "x-backend-record-type", "object");
    h::insert(
        r.headers_mut(),
        "x-backend-record-storage-policy-index",
        &info.storage_policy_index.to_string(),
    );
    r
}

/// `swift_bytes=N` in a stored content type overrides the listed size (SLO manifests).
fn split_swift_bytes(ctype: &str, size: i64) -> (String, i64) {
    let mut bytes = size;
    let parts: Vec<&str> = ctype.split(';').collect();
    let mut kept = Vec::new();
    for p in parts {
        if let Some(v) = p.trim().strip_prefix("swift_bytes=") {
            if let Ok(n) = v.parse() {
                bytes = n;
                continue;
            }
        }
        kept.push(p);
    }
    (kept.join(";"), bytes)
}

fn render_objects(
    container: &str,
    rows: &[Entry<broker::ObjectRow>],
    format: ListingFormat,
) -> String {
    render(
        format,
        "container",
        container,
        rows,
        |n, r| {
            let (ct, bytes) = split_swift_bytes(&r.content_type, r.size);
            json!({
                "bytes": bytes, "hash": r.etag, "name": n, "content_type": ct,
                "last_modified": r.last_modified().isoformat(),
            })
        },
        |n, r| {
            let (ct, bytes) = split_swift_bytes(&r.content_type, r.size);
            format!(
                "<object><name>{}</name><hash>{}</hash><bytes>{}</bytes><content_type>{}</content_type><last_modified>{}</last_modified></object>",
                xml_text(n),
                xml_text(&r.etag),
                bytes,
                xml_text(&ct),
                r.last_modified().isoformat()
            )
        },
    )
}

/// `UPDATE /d/p/a/c`: a JSON list of object records to merge (sharder, reconciler).
async fn update_container(t: Target, headers: &HeaderMap, body: axum::body::Bytes) -> Resp {
    if let Err(r) = required_timestamp(headers) {
        return r;
    }
    let items: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Array(a)) => a,
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                "Invalid UPDATE body: expected a JSON list",
            )
        }
    };
    let mut recs = Vec::new();
    for it in items {
        let s = |k: &str| it.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        // Swift's rows encode the content-type and metadata times in `created_at`.
        let Ok(times) = RowTimes::decode(&s("created_at")) else {
            return plain(StatusCode::BAD_REQUEST, "Invalid created_at in UPDATE item");
        };
        recs.push(ObjectRecord {
            name: s("name"),
            created_at: times.data,
            size: it.get("size").and_then(|v| v.as_i64()).unwrap_or(0),
            content_type: s("content_type"),
            etag: s("etag"),
            deleted: it.get("deleted").and_then(|v| v.as_i64()).unwrap_or(0) == 1,
            policy_index: it
                .get("storage_policy_index")
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as u32,
            ctype_timestamp: Some(times.ctype),
            meta_timestamp: Some(times.meta),
        });
    }
    let path = t.db_path.clone();
    let res = blocking(move || -> rusqlite::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let mut conn = db::open(&path)?;
        broker::merge_objects(&mut conn, &recs)?;
        Ok(true)
    })
    .await;
    found_or_404(res, StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests;

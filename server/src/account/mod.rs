//! The account server: one SQLite database per account (see [`broker`]) listing its
//! containers with the stats the container servers report, per-policy totals and the
//! account's metadata.
//!
//! `PUT /d/p/a` creates the account; `PUT /d/p/a/c` is a container server's stats
//! report (from a container PUT/DELETE or the container updater); `DELETE /d/p/a` marks
//! the account DELETED for the reaper. Counts are therefore as fresh as the last report,
//! exactly as in Swift.

pub mod broker;

use ringsmith::swift::escape::{xml_attr, xml_text};
use ringsmith::swift::MetaTarget;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::Router;
use ringsmith::hash::HashConfig;
use serde_json::json;

use crate::common::headers::{self as h, check_metadata};
use crate::common::path::{decode_path, parse_storage_path, PathError, StoragePath};
use crate::common::{
    empty, insufficient_storage, plain, Constraints, DeviceSettings, DeviceState, Timestamp,
    SWIFT_VERSION,
};
use crate::container::broker::ts;
use crate::container::metadata_items;
use crate::db::{self, Entry, ListingFormat};
use crate::recon::{ReconState, ServerKind};
use broker::{AccountInfo, ContainerReport};
use ringsmith::swift::conf::Conf;
use ringsmith::swift::policy::Policies;
use ringsmith::swift::timestamp::http_date;

type Resp = Response<Body>;

#[derive(Clone, Debug)]
pub struct AccountConfig {
    pub devices: DeviceSettings,
    pub swift_dir: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub constraints: Constraints,
    pub auto_create_account_prefix: String,
    pub recon_cache_path: PathBuf,
}

impl AccountConfig {
    pub fn from_conf(conf: &Conf) -> Result<AccountConfig, String> {
        let app = conf.section("app:account-server");
        let swift_dir = PathBuf::from(app.str_or("swift_dir", "/etc/swift"));
        let (hash, policies, constraints) = crate::common::config::load_swift_conf(&swift_dir)?;
        Ok(AccountConfig {
            devices: crate::common::config::device_settings(&app).map_err(|e| e.to_string())?,
            swift_dir,
            hash,
            policies,
            constraints,
            auto_create_account_prefix: app.str_or("auto_create_account_prefix", "."),
            recon_cache_path: PathBuf::from(app.str_or("recon_cache_path", "/var/cache/swift")),
        })
    }
}

pub struct AccountState {
    pub cfg: AccountConfig,
}

impl AccountState {
    pub fn new(cfg: AccountConfig) -> Arc<AccountState> {
        Arc::new(AccountState { cfg })
    }
}

pub fn account_router(state: Arc<AccountState>) -> Router {
    let recon = ReconState::new(
        ServerKind::Account,
        state.cfg.devices.devices.clone(),
        state.cfg.swift_dir.clone(),
        state.cfg.recon_cache_path.clone(),
        state.cfg.policies.clone(),
    );
    Router::new().fallback(move |req: Request| {
        let state = state.clone();
        let recon = recon.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let resp = if path.starts_with("/recon/") {
                recon.handle(&path).await
            } else {
                handle(&state, req).await
            };
            tracing::info!(target: "account-server", method = %method, path = %path, status = resp.status().as_u16(), "request");
            resp
        }
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking db task panicked")
}

fn db_error(e: rusqlite::Error) -> Resp {
    if let Some(m) = db::metadata_too_large(&e) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    tracing::error!(error = %e, "database error");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("database error: {e}"),
    )
}

fn required_timestamp(headers: &HeaderMap) -> Result<Timestamp, Resp> {
    match h::timestamp(headers, "x-timestamp") {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(plain(StatusCode::BAD_REQUEST, "Missing X-Timestamp header")),
        Err(m) => Err(plain(StatusCode::BAD_REQUEST, m)),
    }
}

struct Target {
    path: StoragePath,
    account: String,
    db_path: PathBuf,
}

async fn handle(state: &Arc<AccountState>, req: Request) -> Resp {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        let mut r = empty(StatusCode::OK);
        r.headers_mut().insert(
            "allow",
            HeaderValue::from_static("DELETE, GET, HEAD, OPTIONS, POST, PUT"),
        );
        h::insert(
            r.headers_mut(),
            "server",
            &format!("account-server/{SWIFT_VERSION}"),
        );
        return r;
    }
    if !matches!(method.as_str(), "PUT" | "GET" | "HEAD" | "POST" | "DELETE") {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let path = match decode_path(req.uri().path()) {
        Ok(p) => p,
        Err(_) => {
            return plain(
                StatusCode::PRECONDITION_FAILED,
                "Invalid UTF8 or contains NULL",
            )
        }
    };
    let sp = match parse_storage_path(&path, 3, 4) {
        Ok(p) => p,
        Err(PathError::Invalid(m)) => return plain(StatusCode::BAD_REQUEST, m),
        Err(PathError::BadEncoding) => {
            return plain(
                StatusCode::PRECONDITION_FAILED,
                "Invalid UTF8 or contains NULL",
            )
        }
    };
    let dev = match state.cfg.devices.device_path(&sp.device) {
        DeviceState::Ok(p) => p,
        DeviceState::Unavailable => return insufficient_storage(&sp.device),
    };
    let account = sp.account.clone().unwrap_or_default();
    let hash = match state.cfg.hash.hash_path(&account, None, None) {
        Ok(h) => h,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let t = Target {
        db_path: db::db_path(&dev, "accounts", &sp.partition, &hash),
        path: sp,
        account,
    };
    let headers = req.headers().clone();
    let query = req.uri().query().map(str::to_string);
    match (method.as_str(), t.path.container.is_some()) {
        ("PUT", true) => put_container(state, t, &headers).await,
        ("PUT", false) => put_account(state, t, &headers).await,
        ("DELETE", false) => delete_account(t, &headers).await,
        ("POST", false) => post_account(state, t, &headers).await,
        ("HEAD", false) => get_account(state, t, &headers, None, true).await,
        ("GET", false) => get_account(state, t, &headers, query, false).await,
        _ => plain(StatusCode::BAD_REQUEST, "Invalid path"),
    }
}

async fn put_container(state: &Arc<AccountState>, t: Target, headers: &HeaderMap) -> Resp {
    let name = t.path.container.clone().unwrap_or_default();
    let parse_ts = |n: &str| -> Result<Timestamp, Resp> {
        match h::get(headers, n) {
            None => Ok(Timestamp::ZERO),
            Some(v) => Timestamp::parse(v)
                .map_err(|_| plain(StatusCode::BAD_REQUEST, format!("Invalid {n}"))),
        }
    };
    let put_ts = match parse_ts("x-put-timestamp") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let del_ts = match parse_ts("x-delete-timestamp") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let int = |n: &str| {
        h::get(headers, n)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    let rep = ContainerReport {
        name,
        put_timestamp: put_ts,
        delete_timestamp: del_ts,
        object_count: int("x-object-count"),
        bytes_used: int("x-bytes-used"),
        policy_index: int("x-backend-storage-policy-index").max(0) as u32,
    };
    let auto_create = t.account.starts_with(&state.cfg.auto_create_account_prefix);
    let override_deleted =
        h::get(headers, "x-account-override-deleted").is_some_and(ringsmith::swift::conf::is_true);
    let (path, account) = (t.db_path.clone(), t.account.clone());
    let res = blocking(move || -> rusqlite::Result<bool> {
        let mut conn = if path.exists() {
            db::open(&path)?
        } else if auto_create {
            broker::create(&path, &account, put_ts)?
        } else {
            return Ok(false);
        };
        if broker::info(&conn)?.is_deleted() && !override_deleted {
            return Ok(false);
        }
        broker::put_container(&mut conn, &rep)?;
        Ok(true)
    })
    .await;
    match res {
        Err(e) => db_error(e),
        Ok(false) => plain(StatusCode::NOT_FOUND, ""),
        Ok(true) if del_ts > put_ts => empty(StatusCode::NO_CONTENT),
        Ok(true) => empty(StatusCode::CREATED),
    }
}

async fn put_account(state: &Arc<AccountState>, t: Target, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.account.len() > state.cfg.constraints.max_account_name_length {
        return plain(StatusCode::BAD_REQUEST, "Account name too long");
    }
    if let Err(m) = check_metadata(headers, MetaTarget::Account, &state.cfg.constraints) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let limits = db::MetaLimits {
        prefix: "x-account-meta-",
        max_count: state.cfg.constraints.max_meta_count,
        max_overall_size: state.cfg.constraints.max_meta_overall_size,
    };
    let items = metadata_items(headers, "account", &[]);
    let (path, account) = (t.db_path.clone(), t.account.clone());
    let res = blocking(move || -> rusqlite::Result<StatusCode> {
        if !path.exists() {
            let mut conn = broker::create(&path, &account, req_ts)?;
            broker::update_metadata(&mut conn, &items, req_ts, &limits)?;
            return Ok(StatusCode::CREATED);
        }
        let mut conn = db::open(&path)?;
        let i = broker::info(&conn)?;
        if i.status == "DELETED" {
            return Ok(StatusCode::FORBIDDEN);
        }
        broker::update_put_timestamp(&conn, req_ts)?;
        broker::update_metadata(&mut conn, &items, req_ts, &limits)?;
        if broker::info(&conn)?.is_deleted() {
            return Ok(StatusCode::CONFLICT);
        }
        Ok(StatusCode::ACCEPTED)
    })
    .await;
    match res {
        Err(e) => db_error(e),
        Ok(StatusCode::FORBIDDEN) => plain(StatusCode::FORBIDDEN, "Recently deleted"),
        Ok(StatusCode::CONFLICT) => plain(StatusCode::CONFLICT, "Conflict"),
        Ok(s) => empty(s),
    }
}

async fn delete_account(t: Target, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let path = t.db_path.clone();
    let res = blocking(move || -> rusqlite::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let conn = db::open(&path)?;
        if broker::info(&conn)?.is_deleted() {
            return Ok(false);
        }
        broker::delete(&conn, req_ts)?;
        Ok(true)
    })
    .await;
    match res {
        Err(e) => db_error(e),
        Ok(false) => plain(StatusCode::NOT_FOUND, ""),
        Ok(true) => empty(StatusCode::NO_CONTENT),
    }
}

async fn post_account(state: &Arc<AccountState>, t: Target, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(m) = check_metadata(headers, MetaTarget::Account, &state.cfg.constraints) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let limits = db::MetaLimits {
        prefix: "x-account-meta-",
        max_count: state.cfg.constraints.max_meta_count,
        max_overall_size: state.cfg.constraints.max_meta_overall_size,
    };
    let items = metadata_items(headers, "account", &[]);
    let path = t.db_path.clone();
    let res = blocking(move || -> rusqlite::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let mut conn = db::open(&path)?;
        if broker::info(&conn)?.is_deleted() {
            return Ok(false);
        }
        broker::update_metadata(&mut conn, &items, req_ts, &limits)?;
        Ok(true)
    })
    .await;
    match res {
        Err(e) => db_error(e),
        Ok(false) => plain(StatusCode::NOT_FOUND, ""),
        Ok(true) => empty(StatusCode::NO_CONTENT),
    }
}

fn account_headers(
    state: &AccountState,
    i: &AccountInfo,
    stats: &[(u32, i64, i64, i64)],
    hm: &mut HeaderMap,
) {
    let created = ts(&i.created_at);
    let put = ts(&i.put_timestamp);
    h::insert(
        hm,
        "x-account-container-count",
        &i.container_count.to_string(),
    );
    h::insert(hm, "x-account-object-count", &i.object_count.to_string());
    h::insert(hm, "x-account-bytes-used", &i.bytes_used.to_string());
    h::insert(hm, "x-timestamp", &created.normal());
    h::insert(hm, "x-put-timestamp", &put.normal());
    h::insert(hm, "last-modified", &http_date(put.ceil_seconds()));
    for (idx, containers, objects, bytes) in stats {
        let name = state.cfg.policies.name_of(*idx);
        h::insert(
            hm,
            &format!("x-account-storage-policy-{name}-container-count"),
            &containers.to_string(),
        );
        h::insert(
            hm,
            &format!("x-account-storage-policy-{name}-object-count"),
            &objects.to_string(),
        );
        h::insert(
            hm,
            &format!("x-account-storage-policy-{name}-bytes-used"),
            &bytes.to_string(),
        );
    }
    for (k, v) in db::live_metadata(&db::parse_metadata(&i.metadata)) {
        h::insert(hm, &k, &v);
    }
}

async fn get_account(
    state: &Arc<AccountState>,
    t: Target,
    headers: &HeaderMap,
    query: Option<String>,
    head: bool,
) -> Resp {
    let params = match db::listing_params(
        query.as_deref(),
        h::get(headers, "accept"),
        state.cfg.constraints.account_listing_limit,
    ) {
        Ok(p) => p,
        Err((code, m)) => {
            return plain(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                m,
            )
        }
    };
    let path = t.db_path.clone();
    let p2 = params.clone();
    type Got = (
        AccountInfo,
        Vec<(u32, i64, i64, i64)>,
        Vec<Entry<broker::ContainerRow>>,
    );
    let res = blocking(move || -> rusqlite::Result<Option<Got>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = db::open(&path)?;
        let i = broker::info(&conn)?;
        if i.is_deleted() {
            return Ok(Some((i, vec![], vec![])));
        }
        let stats = broker::policy_stats(&conn)?;
        let rows = if head {
            vec![]
        } else {
            broker::list(&conn, &p2)?
        };
        Ok(Some((i, stats, rows)))
    })
    .await;
    let (info, stats, rows) = match res {
        Err(e) => return db_error(e),
        Ok(None) => return plain(StatusCode::NOT_FOUND, ""),
        Ok(Some(x)) => x,
    };
    if info.is_deleted() {
        let mut r = plain(StatusCode::NOT_FOUND, "");
        h::insert(r.headers_mut(), "x-account-status", "Deleted");
        return r;
    }
    let mut hm = HeaderMap::new();
    account_headers(state, &info, &stats, &mut hm);
    if head {
        let mut r = empty(StatusCode::NO_CONTENT);
        r.headers_mut().extend(hm);
        h::insert(
            r.headers_mut(),
            "content-type",
            params.format.content_type(),
        );
        return r;
    }
    let body = render(state, &t.account, &rows, params.format);
    let status = if body.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().extend(hm);
    h::insert(
        r.headers_mut(),
        "content-type",
        params.format.content_type(),
    );
    r
}

fn render(
    state: &AccountState,
    account: &str,
    rows: &[Entry<broker::ContainerRow>],
    format: ListingFormat,
) -> String {
    match format {
        ListingFormat::Plain => rows
            .iter()
            .map(|e| match e {
                Entry::Row(n, _) | Entry::Subdir(n) => format!("{n}\n"),
            })
            .collect(),
        ListingFormat::Json => serde_json::Value::Array(
            rows.iter()
                .map(|e| match e {
                    Entry::Subdir(d) => json!({"subdir": d}),
                    Entry::Row(n, r) => json!({
                        "name": n, "count": r.object_count, "bytes": r.bytes_used,
                        "last_modified": ts(&r.put_timestamp).isoformat(),
                        "storage_policy": state.cfg.policies.name_of(r.policy_index),
                    }),
                })
                .collect(),
        )
        .to_string(),
        ListingFormat::Xml => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"{}\">",
                xml_attr(account)
            );
            for e in rows {
                match e {
                    Entry::Subdir(d) => s.push_str(&format!(
                        "<subdir name=\"{}\"><name>{}</name></subdir>",
                        xml_attr(d),
                        xml_text(d)
                    )),
                    Entry::Row(n, r) => s.push_str(&format!(
                        "<container><name>{}</name><count>{}</count><bytes>{}</bytes><last_modified>{}</last_modified><storage_policy>{}</storage_policy></container>",
                        xml_text(n),
                        r.object_count,
                        r.bytes_used,
                        ts(&r.put_timestamp).isoformat(),
                        xml_text(&state.cfg.policies.name_of(r.policy_index))
                    )),
                }
            }
            s.push_str("</account>");
            s
        }
    }
}

#[cfg(test)]
mod tests;

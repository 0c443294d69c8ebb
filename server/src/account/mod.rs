//! The account server: one SQLite database per account (see [`broker`]) listing its
//! containers with the stats the container servers report, per-policy totals and the
//! account's metadata.
//!
//! `PUT /d/p/a` creates the account; `PUT /d/p/a/c` is a container server's stats
//! report (from a container PUT/DELETE or the container updater); `DELETE /d/p/a` marks
//! the account DELETED for the reaper. Counts are therefore as fresh as the last report,
//! exactly as in Swift. A report is appended to the database's `.pending` file (see
//! [`crate::db::pending`]) and merged before the next read, as Swift's are.

pub mod broker;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use serde_json::json;

use crate::common::config::StorageConfig;
use crate::common::headers as h;
use crate::common::path::StoragePath;
use crate::common::shell::{
    blocking, header_is_true, required_timestamp, storage_path, Resp, Shell,
};
use crate::common::{empty, plain, Timestamp};
use crate::db::broker::{
    db_error, open_db, open_live, put_record, update_metadata, update_put_timestamp,
};
use crate::db::listing::render;
use crate::db::requests::{
    self, found_or_404, listing_response, metadata_headers, read_existing, request_metadata,
    request_params, timestamp_headers,
};
use crate::db::{self, ts, DbKind, Entry};
use crate::recon::ServerKind;
use broker::{AccountDb, AccountInfo, ContainerReport};
use ringsmith::swift::conf::Conf;
use ringsmith::swift::escape::xml_text;

#[derive(Clone, Debug)]
pub struct AccountConfig {
    pub storage: StorageConfig,
    pub auto_create_account_prefix: String,
}

impl AccountConfig {
    pub fn from_conf(conf: &Conf) -> Result<AccountConfig, String> {
        let app = conf.section("app:account-server");
        Ok(AccountConfig {
            storage: StorageConfig::from_section(&app)?,
            auto_create_account_prefix: app.str_or("auto_create_account_prefix", "."),
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
    let shell = Shell::new(
        "account-server",
        ServerKind::Account,
        vec!["DELETE", "GET", "HEAD", "POST", "PUT"],
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
    db_path: PathBuf,
}

fn target(state: &AccountState, path: &str) -> Result<Target, Resp> {
    let sp = storage_path(path, 3, 4)?;
    let dev = state.cfg.storage.devices.require(&sp.device)?;
    let account = sp.account.clone().unwrap_or_default();
    let hash = state
        .cfg
        .storage
        .hash
        .hash_path(&account, None, None)
        .map_err(|e| plain(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Target {
        db_path: db::db_path(&dev, AccountDb::DIR, &sp.partition, &hash),
        path: sp,
        account,
    })
}

async fn handle(state: &Arc<AccountState>, req: Request, path: &str) -> Resp {
    let t = match target(state, path) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let headers = req.headers();
    let query = req.uri().query().map(str::to_string);
    match (req.method().as_str(), t.path.container.is_some()) {
        ("PUT", true) => put_container(state, t, headers).await,
        ("PUT", false) => put_account(state, t, headers).await,
        ("DELETE", false) => delete_account(t, headers).await,
        ("POST", false) => {
            requests::post::<AccountDb>(t.db_path, headers, &state.cfg.storage.constraints, false)
                .await
        }
        ("HEAD", false) => get_account(state, t, headers, None, true).await,
        ("GET", false) => get_account(state, t, headers, query, false).await,
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
    let override_deleted = header_is_true(headers, "x-account-override-deleted");
    let (path, account) = (t.db_path.clone(), t.account.clone());
    let res = blocking(move || -> rusqlite::Result<bool> {
        if !path.exists() {
            if !auto_create {
                return Ok(false);
            }
            broker::create(&path, &account, put_ts)?;
        }
        // Swift's order: the deleted check reads the database (merging what is
        // pending), the report itself is appended to the pending file.
        if !override_deleted && broker::info(&open_db::<AccountDb>(&path)?)?.is_deleted() {
            return Ok(false);
        }
        put_record::<AccountDb>(&path, &rep.to_pending_tuple())?;
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
    if t.account.len() > state.cfg.storage.constraints.max_account_name_length {
        return plain(StatusCode::BAD_REQUEST, "Account name too long");
    }
    let (items, limits) =
        match request_metadata::<AccountDb>(headers, &state.cfg.storage.constraints) {
            Ok(x) => x,
            Err(r) => return r,
        };
    let (path, account) = (t.db_path.clone(), t.account.clone());
    let res = blocking(move || -> rusqlite::Result<StatusCode> {
        if !path.exists() {
            let mut conn = broker::create(&path, &account, req_ts)?;
            update_metadata::<AccountDb>(&mut conn, &items, req_ts, &limits)?;
            return Ok(StatusCode::CREATED);
        }
        let mut conn = open_db::<AccountDb>(&path)?;
        let i = broker::info(&conn)?;
        if i.status == "DELETED" {
            return Ok(StatusCode::FORBIDDEN);
        }
        update_put_timestamp::<AccountDb>(&conn, req_ts)?;
        update_metadata::<AccountDb>(&mut conn, &items, req_ts, &limits)?;
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
        let Some(conn) = open_live::<AccountDb>(&path)? else {
            return Ok(false);
        };
        broker::delete(&conn, req_ts)?;
        Ok(true)
    })
    .await;
    found_or_404(res, StatusCode::NO_CONTENT)
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
    timestamp_headers(hm, created, put);
    for (idx, containers, objects, bytes) in stats {
        let name = state.cfg.storage.policies.name_of(*idx);
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
    metadata_headers(hm, &i.metadata);
}

async fn get_account(
    state: &Arc<AccountState>,
    t: Target,
    headers: &HeaderMap,
    query: Option<String>,
    head: bool,
) -> Resp {
    let params = match request_params(
        query.as_deref(),
        headers,
        state.cfg.storage.constraints.account_listing_limit,
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let p2 = params.clone();
    let read = read_existing::<AccountDb, _>(t.db_path.clone(), move |conn| {
        let i = broker::info(conn)?;
        if i.is_deleted() {
            return Ok((i, vec![], vec![]));
        }
        let stats = broker::policy_stats(conn)?;
        let rows = if head {
            vec![]
        } else {
            broker::list(conn, &p2)?
        };
        Ok((i, stats, rows))
    });
    let (info, stats, rows) = match read.await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if info.is_deleted() {
        let mut r = plain(StatusCode::NOT_FOUND, "");
        h::insert(r.headers_mut(), "x-account-status", "Deleted");
        return r;
    }
    let mut hm = HeaderMap::new();
    account_headers(state, &info, &stats, &mut hm);
    let body = (!head).then(|| render_listing(state, &t.account, &rows, params.format));
    listing_response(body, params.format, hm)
}

/// The account's containers in `format`.
fn render_listing(
    state: &AccountState,
    account: &str,
    rows: &[Entry<broker::ContainerRow>],
    format: db::ListingFormat,
) -> String {
    let policy = |r: &broker::ContainerRow| state.cfg.storage.policies.name_of(r.policy_index);
    render(
        format,
        "account",
        account,
        rows,
        |n, r| {
            json!({
                "name": n, "count": r.object_count, "bytes": r.bytes_used,
                "last_modified": ts(&r.put_timestamp).isoformat(),
                "storage_policy": policy(r),
            })
        },
        |n, r| {
            format!(
                "<container><name>{}</name><count>{}</count><bytes>{}</bytes><last_modified>{}</last_modified><storage_policy>{}</storage_policy></container>",
                xml_text(n),
                r.object_count,
                r.bytes_used,
                ts(&r.put_timestamp).isoformat(),
                xml_text(&policy(r))
            )
        },
    )
}

#[cfg(test)]
mod tests;

//! The broker both database kinds share, generic over [`DbKind`]: creating a database
//! (schema, the sync tables, a first stat row, all in a temp file renamed into place),
//! the stat row's put timestamp and metadata, a page of listed rows, and the
//! replicator's sync points. A kind names its tables and brings its schema; the
//! account and container brokers add only their own rows and merge rules.

use std::path::Path;

use axum::http::StatusCode;
use rusqlite::{params, Connection, Row};

use super::listing::{list_iter, Entry, ListingParams};
use super::metadata::{check_merged_metadata, merge_metadata, parse_metadata, MetaLimits};
use super::pending;
use crate::common::shell::Resp;
use crate::common::{plain, Constraints, Timestamp};
use ringsmith::pickle::Value;
use ringsmith::swift::MetaTarget;

/// One kind of Swift database: accounts or containers.
pub trait DbKind {
    /// `account` or `container`, as in `X-<name>-Meta-*`.
    const NAME: &'static str;
    /// Which metadata rules of `check_metadata` apply.
    const META_TARGET: MetaTarget;
    /// Headers stored as metadata besides `X-<name>-Meta-*` and `X-<name>-Sysmeta-*`.
    const SAVE_HEADERS: &'static [&'static str];
    /// The directory under a device: `accounts` or `containers`.
    const DIR: &'static str;
    /// Where the one stat row lives: `account_stat`, or the `container_stat` view.
    const STAT_TABLE: &'static str;
    /// The listed rows: `container` (in an account) or `object` (in a container).
    const ROW_TABLE: &'static str;
    /// The kind's own tables, triggers and views (the sync tables are added to them).
    const SCHEMA: &'static str;
    /// The user-metadata prefix Swift's merged limits apply to.
    const META_PREFIX: &'static str;

    /// Swift's `is_deleted` for this kind, read from the stat row.
    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool>;

    /// Merges records read from a `.pending` file (Swift's row tuples) into the rows,
    /// all in one transaction; records that are not this kind's tuples are skipped.
    fn merge_pending(conn: &mut Connection, records: Vec<Value>) -> rusqlite::Result<()>;
}

/// `outgoing_sync` / `incoming_sync`, the replicators' tables in both kinds.
pub const SYNC_TABLES: &str = r#"
CREATE TABLE outgoing_sync (remote_id TEXT UNIQUE, sync_point INTEGER, updated_at TEXT DEFAULT 0);
CREATE TABLE incoming_sync (remote_id TEXT UNIQUE, sync_point INTEGER, updated_at TEXT DEFAULT 0);
CREATE TRIGGER outgoing_sync_insert AFTER INSERT ON outgoing_sync
BEGIN UPDATE outgoing_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID; END;
CREATE TRIGGER outgoing_sync_update AFTER UPDATE ON outgoing_sync
BEGIN UPDATE outgoing_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID; END;
CREATE TRIGGER incoming_sync_insert AFTER INSERT ON incoming_sync
BEGIN UPDATE incoming_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID; END;
CREATE TRIGGER incoming_sync_update AFTER UPDATE ON incoming_sync
BEGIN UPDATE incoming_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID; END;
"#;

/// A stored timestamp column; an unreadable one counts as zero.
pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO)
}

fn cannot_open(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(message),
    )
}

/// Creates the database at `path` with `K`'s schema and the sync tables; `init` writes
/// the first stat row. Built in a temp file and renamed, so a crash never leaves a
/// half-initialised database; when another request created it first, theirs wins.
pub fn create<K: DbKind>(
    path: &Path,
    init: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<Connection> {
    let dir = path.parent().expect("db path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| cannot_open(format!("{}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".{}.tmp", crate::common::unique_hex()));
    {
        let conn = super::open(&tmp)?;
        conn.execute_batch(&format!("BEGIN; {} {SYNC_TABLES} COMMIT;", K::SCHEMA))?;
        init(&conn)?;
    }
    if path.exists() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        std::fs::rename(&tmp, path).map_err(|e| cannot_open(e.to_string()))?;
    }
    super::open(path)
}

/// Opens `K`'s database at `path` with its pending records merged first, as Swift's
/// brokers merge them before every read and every write that is not a row update.
pub fn open_db<K: DbKind>(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = super::open(path)?;
    commit_pending::<K>(path, &mut conn)?;
    Ok(conn)
}

/// Merges `path`'s pending records (if any) through `conn`.
pub fn commit_pending<K: DbKind>(path: &Path, conn: &mut Connection) -> rusqlite::Result<()> {
    pending::commit(path, |records| K::merge_pending(conn, records)).map_err(Into::into)
}

/// Records one row update (a `K` row tuple) for the existing database at `path`:
/// appended to its pending file, or merged at once with the file's records when the
/// file is full.
pub fn put_record<K: DbKind>(path: &Path, record: &Value) -> rusqlite::Result<()> {
    pending::put_record(path, record, |records| {
        K::merge_pending(&mut super::open(path)?, records)
    })
    .map_err(Into::into)
}

/// Opens the database at `path` unless it is missing or deleted.
pub fn open_live<K: DbKind>(path: &Path) -> rusqlite::Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = open_db::<K>(path)?;
    Ok((!K::is_deleted(&conn)?).then_some(conn))
}

/// Raises the put timestamp to `t` (never lowers it).
pub fn update_put_timestamp<K: DbKind>(conn: &Connection, t: Timestamp) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "UPDATE {} SET put_timestamp = ? WHERE put_timestamp < ?",
            K::STAT_TABLE
        ),
        params![t.internal(), t.internal()],
    )?;
    Ok(())
}

/// Swift's merged-metadata limits for `K` under `constraints`.
pub fn meta_limits<K: DbKind>(constraints: &Constraints) -> MetaLimits {
    MetaLimits {
        prefix: K::META_PREFIX,
        max_count: constraints.max_meta_count,
        max_overall_size: constraints.max_meta_overall_size,
    }
}

/// Merges `items` into the stored metadata; a merged result past `limits` is refused with
/// a [`MetadataTooLarge`](super::MetadataTooLarge) (inside `UserFunctionError`) and
/// nothing is written.
pub fn update_metadata<K: DbKind>(
    conn: &mut Connection,
    items: &[(String, String)],
    t: Timestamp,
    limits: &MetaLimits,
) -> rusqlite::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let text: String = tx.query_row(
        &format!("SELECT metadata FROM {}", K::STAT_TABLE),
        [],
        |r| r.get::<_, Option<String>>(0).map(|o| o.unwrap_or_default()),
    )?;
    let mut md = parse_metadata(&text);
    merge_metadata(&mut md, items, t);
    check_merged_metadata(&md, limits)
        .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
    tx.execute(
        &format!("UPDATE {} SET metadata = ?", K::STAT_TABLE),
        params![serde_json::Value::Object(md).to_string()],
    )?;
    tx.commit()
}

/// A listing page of `K`'s live rows: `columns` after `name`, read by `row` (whose
/// column 0 is the first of `columns`), restricted further by `filter` when not empty.
pub fn list<K: DbKind, R>(
    conn: &Connection,
    params: &ListingParams,
    columns: &str,
    filter: &str,
    row: impl Fn(&Row, usize) -> rusqlite::Result<R>,
) -> rusqlite::Result<Vec<Entry<R>>> {
    list_iter(params, |w, reverse, n| {
        let (cond, args) = w.sql();
        let mut clauses = vec!["deleted = 0".to_string()];
        clauses.extend(
            [filter, cond.as_str()]
                .into_iter()
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
        let sql = format!(
            "SELECT name, {columns} FROM {} WHERE {} ORDER BY name {} LIMIT {n}",
            K::ROW_TABLE,
            clauses.join(" AND "),
            if reverse { "DESC" } else { "ASC" }
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, row(r, 1)?))
        })?;
        rows.collect()
    })
}

/// The replicator's last row sent to `remote` (-1: none yet). Databases written by an
/// older Swift may lack the table, so it is created on demand.
pub fn outgoing_sync_point(conn: &Connection, remote: &str) -> rusqlite::Result<i64> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS outgoing_sync (remote_id TEXT UNIQUE, sync_point INTEGER, updated_at TEXT DEFAULT 0);",
    )?;
    match conn.query_row(
        "SELECT sync_point FROM outgoing_sync WHERE remote_id = ?",
        params![remote],
        |r| r.get(0),
    ) {
        Ok(p) => Ok(p),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(-1),
        Err(e) => Err(e),
    }
}

/// Records that rows up to `point` reached `remote`.
pub fn set_outgoing_sync_point(
    conn: &Connection,
    remote: &str,
    point: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO outgoing_sync (remote_id, sync_point) VALUES (?1, ?2) \
         ON CONFLICT(remote_id) DO UPDATE SET sync_point = ?2, updated_at = STRFTIME('%s', 'NOW')",
        params![remote, point],
    )?;
    Ok(())
}

/// The answer to a failed database operation: Swift's 400 for merged metadata past its
/// limits, a 500 otherwise.
pub fn db_error(e: rusqlite::Error) -> Resp {
    if let Some(m) = super::metadata_too_large(&e) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    tracing::error!(error = %e, "database error");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("database error: {e}"),
    )
}

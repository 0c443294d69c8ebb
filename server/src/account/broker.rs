//! The account database: Swift's schema (`container`, `account_stat`, `policy_stat`),
//! its stat row with per-policy totals, and the merge of container reports. Creation,
//! put timestamps, metadata and listing pages are the shared broker's
//! ([`db::broker`]), with [`AccountDb`] naming the tables.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::common::Timestamp;
use crate::db::{self, broker, pending, ts, DbKind, Entry, ListingParams};
use ringsmith::pickle::Value;
use ringsmith::swift::MetaTarget;

/// Swift's account schema.
const SCHEMA: &str = r#"
CREATE TABLE container (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    put_timestamp TEXT,
    delete_timestamp TEXT,
    object_count INTEGER,
    bytes_used INTEGER,
    deleted INTEGER DEFAULT 0,
    storage_policy_index INTEGER DEFAULT 0
);
CREATE INDEX ix_container_deleted_name ON container (deleted, name);
CREATE TRIGGER container_insert AFTER INSERT ON container
BEGIN
    UPDATE account_stat
    SET container_count = container_count + (1 - new.deleted),
        object_count = object_count + new.object_count,
        bytes_used = bytes_used + new.bytes_used,
        hash = chexor(hash, new.name, new.put_timestamp || '-' || new.delete_timestamp || '-' || new.object_count || '-' || new.bytes_used);
END;
CREATE TRIGGER container_update BEFORE UPDATE ON container
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
CREATE TRIGGER container_delete AFTER DELETE ON container
BEGIN
    UPDATE account_stat
    SET container_count = container_count - (1 - old.deleted),
        object_count = object_count - old.object_count,
        bytes_used = bytes_used - old.bytes_used,
        hash = chexor(hash, old.name, old.put_timestamp || '-' || old.delete_timestamp || '-' || old.object_count || '-' || old.bytes_used);
END;
CREATE TABLE account_stat (
    account TEXT,
    created_at TEXT,
    put_timestamp TEXT DEFAULT '0',
    delete_timestamp TEXT DEFAULT '0',
    container_count INTEGER,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0,
    hash TEXT default '00000000000000000000000000000000',
    id TEXT,
    status TEXT DEFAULT '',
    status_changed_at TEXT DEFAULT '0',
    metadata TEXT DEFAULT ''
);
INSERT INTO account_stat (container_count) VALUES (0);
CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    container_count INTEGER DEFAULT 0,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0
);
CREATE TRIGGER container_insert_ps AFTER INSERT ON container
BEGIN
    INSERT OR IGNORE INTO policy_stat (storage_policy_index, container_count, object_count, bytes_used)
        VALUES (new.storage_policy_index, 0, 0, 0);
    UPDATE policy_stat
    SET container_count = container_count + (1 - new.deleted),
        object_count = object_count + new.object_count,
        bytes_used = bytes_used + new.bytes_used
    WHERE storage_policy_index = new.storage_policy_index;
END;
CREATE TRIGGER container_delete_ps AFTER DELETE ON container
BEGIN
    UPDATE policy_stat
    SET container_count = container_count - (1 - old.deleted),
        object_count = object_count - old.object_count,
        bytes_used = bytes_used - old.bytes_used
    WHERE storage_policy_index = old.storage_policy_index;
END;
"#;

/// The account database kind.
pub struct AccountDb;

impl DbKind for AccountDb {
    const NAME: &'static str = "account";
    const META_TARGET: MetaTarget = MetaTarget::Account;
    const SAVE_HEADERS: &'static [&'static str] = &[];
    const DIR: &'static str = "accounts";
    const STAT_TABLE: &'static str = "account_stat";
    const ROW_TABLE: &'static str = "container";
    const SCHEMA: &'static str = SCHEMA;
    const META_PREFIX: &'static str = "x-account-meta-";

    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool> {
        Ok(info(conn)?.is_deleted())
    }

    fn merge_pending(conn: &mut Connection, records: Vec<Value>) -> rusqlite::Result<()> {
        let reps: Vec<ContainerReport> = records
            .iter()
            .filter_map(|r| {
                let rep = ContainerReport::from_pending_tuple(r);
                if rep.is_none() {
                    tracing::warn!(record = ?r, "skipped a pending record that is not a container row");
                }
                rep
            })
            .collect();
        merge_containers(conn, &reps)
    }
}

#[derive(Clone, Debug)]
pub struct AccountInfo {
    pub account: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub container_count: i64,
    pub object_count: i64,
    pub bytes_used: i64,
    pub status: String,
    pub metadata: String,
}

impl AccountInfo {
    /// Swift's `_is_deleted_info` for accounts.
    pub fn is_deleted(&self) -> bool {
        self.status == "DELETED"
            || (self.container_count == 0 && ts(&self.delete_timestamp) > ts(&self.put_timestamp))
    }
}

#[derive(Clone, Debug)]
pub struct ContainerRow {
    pub object_count: i64,
    pub bytes_used: i64,
    pub put_timestamp: String,
    pub policy_index: u32,
}

pub fn create(
    path: &Path,
    account: &str,
    put_timestamp: Timestamp,
) -> rusqlite::Result<Connection> {
    broker::create::<AccountDb>(path, |conn| {
        conn.execute(
            "UPDATE account_stat SET account = ?, created_at = ?, id = ?, put_timestamp = ?, status_changed_at = ?",
            params![
                account,
                Timestamp::now().internal(),
                db::new_db_id(),
                put_timestamp.internal(),
                put_timestamp.internal()
            ],
        )?;
        Ok(())
    })
}

pub fn info(conn: &Connection) -> rusqlite::Result<AccountInfo> {
    conn.query_row(
        "SELECT account, created_at, put_timestamp, delete_timestamp, container_count, object_count, bytes_used, status, metadata FROM account_stat",
        [],
        |r| {
            Ok(AccountInfo {
                account: r.get(0)?,
                created_at: r.get(1)?,
                put_timestamp: r.get(2)?,
                delete_timestamp: r.get(3)?,
                container_count: r.get(4)?,
                object_count: r.get(5)?,
                bytes_used: r.get(6)?,
                status: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                metadata: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
            })
        },
    )
}

/// (policy index, container count, object count, bytes used) for every policy in use.
pub fn policy_stats(conn: &Connection) -> rusqlite::Result<Vec<(u32, i64, i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT storage_policy_index, container_count, object_count, bytes_used FROM policy_stat ORDER BY storage_policy_index",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// A container's stats from a container server; newest timestamps win (Swift's
/// `merge_items` for accounts).
pub struct ContainerReport {
    pub name: String,
    pub put_timestamp: Timestamp,
    pub delete_timestamp: Timestamp,
    pub object_count: i64,
    pub bytes_used: i64,
    pub policy_index: u32,
}

impl ContainerReport {
    /// The tuple Swift's account broker appends to a `.pending` file: `(name,
    /// put_timestamp, delete_timestamp, object_count, bytes_used, deleted,
    /// storage_policy_index)`.
    pub fn to_pending_tuple(&self) -> Value {
        let deleted = self.delete_timestamp > self.put_timestamp && self.object_count == 0;
        Value::Tuple(vec![
            Value::Str(self.name.clone()),
            Value::Str(self.put_timestamp.internal()),
            Value::Str(self.delete_timestamp.internal()),
            Value::Int(self.object_count),
            Value::Int(self.bytes_used),
            Value::Int(i64::from(deleted)),
            Value::Int(i64::from(self.policy_index)),
        ])
    }

    /// Reads one pending tuple (Swift's `_commit_puts_load`; the policy index is
    /// optional, and a missing timestamp or count reads as zero).
    pub fn from_pending_tuple(v: &Value) -> Option<ContainerReport> {
        let f = v.as_seq()?;
        let stamp = |i: usize| {
            pending::text(f.get(i))
                .and_then(|t| Timestamp::parse(&t).ok())
                .unwrap_or(Timestamp::ZERO)
        };
        Some(ContainerReport {
            name: pending::text(f.first())?,
            put_timestamp: stamp(1),
            delete_timestamp: stamp(2),
            object_count: pending::int(f.get(3)).unwrap_or(0),
            bytes_used: pending::int(f.get(4)).unwrap_or(0),
            policy_index: pending::int(f.get(6)).unwrap_or(0).max(0) as u32,
        })
    }
}

/// Merges one container report; see [`merge_containers`].
pub fn put_container(conn: &mut Connection, rep: &ContainerReport) -> rusqlite::Result<()> {
    merge_containers(conn, std::slice::from_ref(rep))
}

/// Merges container reports in order, all in one transaction.
pub fn merge_containers(conn: &mut Connection, reps: &[ContainerReport]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for rep in reps {
        merge_one(&tx, rep)?;
    }
    tx.commit()
}

fn merge_one(tx: &Connection, rep: &ContainerReport) -> rusqlite::Result<()> {
    let existing: Option<(String, String)> = tx
        .prepare_cached(
            "SELECT put_timestamp, delete_timestamp FROM container WHERE name = ? AND deleted IN (0, 1)",
        )?
        .query_row(params![rep.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut put = rep.put_timestamp;
    let mut del = rep.delete_timestamp;
    if let Some((p, d)) = existing {
        put = put.max(ts(&p));
        del = del.max(ts(&d));
    }
    let deleted = del > put && rep.object_count == 0;
    tx.prepare_cached("DELETE FROM container WHERE name = ? AND deleted IN (0, 1)")?
        .execute(params![rep.name])?;
    tx.prepare_cached(
        "INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        rep.name,
        put.internal(),
        del.internal(),
        if deleted { 0 } else { rep.object_count },
        if deleted { 0 } else { rep.bytes_used },
        i64::from(deleted),
        rep.policy_index
    ])?;
    Ok(())
}

pub fn list(
    conn: &Connection,
    params: &ListingParams,
) -> rusqlite::Result<Vec<Entry<ContainerRow>>> {
    broker::list::<AccountDb, _>(
        conn,
        params,
        "object_count, bytes_used, put_timestamp, storage_policy_index",
        "",
        |r, i| {
            Ok(ContainerRow {
                object_count: r.get(i)?,
                bytes_used: r.get(i + 1)?,
                put_timestamp: r.get(i + 2)?,
                policy_index: r.get(i + 3)?,
            })
        },
    )
}

/// Swift's `delete_db`: marks the account DELETED; the reaper empties it later.
pub fn delete(conn: &Connection, t: Timestamp) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE account_stat SET delete_timestamp = ?, status = 'DELETED', status_changed_at = ? WHERE delete_timestamp < ?",
        params![t.internal(), t.internal(), t.internal()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_reports_roll_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = create(
            &dir.path().join("a/a.db"),
            "AUTH_a",
            Timestamp::parse("1").unwrap(),
        )
        .unwrap();
        let rep = |name: &str, put: &str, del: &str, objs: i64, policy: u32| ContainerReport {
            name: name.into(),
            put_timestamp: Timestamp::parse(put).unwrap(),
            delete_timestamp: Timestamp::parse(del).unwrap(),
            object_count: objs,
            bytes_used: objs * 10,
            policy_index: policy,
        };
        put_container(&mut conn, &rep("c1", "2", "0", 3, 0)).unwrap();
        put_container(&mut conn, &rep("c2", "2", "0", 1, 1)).unwrap();
        let i = info(&conn).unwrap();
        assert_eq!(
            (i.container_count, i.object_count, i.bytes_used),
            (2, 4, 40)
        );
        assert_eq!(
            policy_stats(&conn).unwrap(),
            vec![(0, 1, 3, 30), (1, 1, 1, 10)]
        );
        put_container(&mut conn, &rep("c2", "2", "3", 0, 1)).unwrap();
        let i = info(&conn).unwrap();
        assert_eq!((i.container_count, i.object_count), (1, 3));
    }
}

//! The container database: Swift's schema (`object`, `policy_stat`, `container_info`,
//! the `container_stat` view), its stat row, the storage policy, and the merge of object
//! records. Creation, put timestamps, metadata and listing pages are the shared
//! broker's ([`db::broker`]), with [`ContainerDb`] naming the tables.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::common::Timestamp;
use crate::db::{self, broker, pending, ts, DbKind, Entry, ListingParams};
use ringsmith::pickle::Value;
use ringsmith::swift::timestamp::RowTimes;
use ringsmith::swift::MetaTarget;

/// Swift's container schema.
const SCHEMA: &str = r#"
CREATE TABLE object (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    created_at TEXT,
    size INTEGER,
    content_type TEXT,
    etag TEXT,
    deleted INTEGER DEFAULT 0,
    storage_policy_index INTEGER DEFAULT 0
);
CREATE INDEX ix_object_deleted_name ON object (deleted, name);
CREATE TRIGGER object_update BEFORE UPDATE ON object
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
CREATE TABLE policy_stat (
    storage_policy_index INTEGER PRIMARY KEY,
    object_count INTEGER DEFAULT 0,
    bytes_used INTEGER DEFAULT 0
);
CREATE TRIGGER object_insert_policy_stat AFTER INSERT ON object
BEGIN
    UPDATE policy_stat
    SET object_count = object_count + (1 - new.deleted),
        bytes_used = bytes_used + new.size
    WHERE storage_policy_index = new.storage_policy_index;
    INSERT INTO policy_stat (storage_policy_index, object_count, bytes_used)
    SELECT new.storage_policy_index, (1 - new.deleted), new.size
    WHERE NOT EXISTS(SELECT changes() as change FROM policy_stat WHERE change <> 0);
    UPDATE container_info SET hash = chexor(hash, new.name, new.created_at);
END;
CREATE TRIGGER object_delete_policy_stat AFTER DELETE ON object
BEGIN
    UPDATE policy_stat
    SET object_count = object_count - (1 - old.deleted),
        bytes_used = bytes_used - old.size
    WHERE storage_policy_index = old.storage_policy_index;
    UPDATE container_info SET hash = chexor(hash, old.name, old.created_at);
END;
CREATE TABLE container_info (
    account TEXT,
    container TEXT,
    created_at TEXT,
    put_timestamp TEXT DEFAULT '0',
    delete_timestamp TEXT DEFAULT '0',
    reported_put_timestamp TEXT DEFAULT '0',
    reported_delete_timestamp TEXT DEFAULT '0',
    reported_object_count INTEGER DEFAULT 0,
    reported_bytes_used INTEGER DEFAULT 0,
    hash TEXT default '00000000000000000000000000000000',
    id TEXT,
    status TEXT DEFAULT '',
    status_changed_at TEXT DEFAULT '0',
    metadata TEXT DEFAULT '',
    x_container_sync_point1 INTEGER DEFAULT -1,
    x_container_sync_point2 INTEGER DEFAULT -1,
    storage_policy_index INTEGER DEFAULT 0,
    reconciler_sync_point INTEGER DEFAULT -1
);
CREATE VIEW container_stat
AS SELECT ci.account, ci.container, ci.created_at,
    ci.put_timestamp, ci.delete_timestamp,
    ci.reported_put_timestamp, ci.reported_delete_timestamp,
    ci.reported_object_count, ci.reported_bytes_used, ci.hash,
    ci.id, ci.status, ci.status_changed_at, ci.metadata,
    ci.x_container_sync_point1, ci.x_container_sync_point2,
    ci.reconciler_sync_point,
    ci.storage_policy_index,
    coalesce(ps.object_count, 0) AS object_count,
    coalesce(ps.bytes_used, 0) AS bytes_used
FROM container_info ci LEFT JOIN policy_stat ps
ON ci.storage_policy_index = ps.storage_policy_index;
CREATE TRIGGER container_stat_update
INSTEAD OF UPDATE ON container_stat
BEGIN
    UPDATE container_info
    SET account = NEW.account, container = NEW.container,
        created_at = NEW.created_at, put_timestamp = NEW.put_timestamp,
        delete_timestamp = NEW.delete_timestamp,
        reported_put_timestamp = NEW.reported_put_timestamp,
        reported_delete_timestamp = NEW.reported_delete_timestamp,
        reported_object_count = NEW.reported_object_count,
        reported_bytes_used = NEW.reported_bytes_used,
        hash = NEW.hash, id = NEW.id, status = NEW.status,
        status_changed_at = NEW.status_changed_at, metadata = NEW.metadata,
        x_container_sync_point1 = NEW.x_container_sync_point1,
        x_container_sync_point2 = NEW.x_container_sync_point2,
        storage_policy_index = NEW.storage_policy_index,
        reconciler_sync_point = NEW.reconciler_sync_point;
END;
CREATE TABLE shard_range (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT, timestamp TEXT, lower TEXT, upper TEXT,
    object_count INTEGER DEFAULT 0, bytes_used INTEGER DEFAULT 0,
    meta_timestamp TEXT, deleted INTEGER DEFAULT 0, state INTEGER,
    state_timestamp TEXT, epoch TEXT, reported INTEGER DEFAULT 0,
    tombstones INTEGER DEFAULT -1
);
CREATE TRIGGER shard_range_update BEFORE UPDATE ON shard_range
BEGIN
    SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
END;
"#;

/// The container database kind.
pub struct ContainerDb;

impl DbKind for ContainerDb {
    const NAME: &'static str = "container";
    const META_TARGET: MetaTarget = MetaTarget::Container;
    const SAVE_HEADERS: &'static [&'static str] = &[
        "x-container-read",
        "x-container-write",
        "x-container-sync-key",
        "x-container-sync-to",
        "x-versions-location",
        "x-history-location",
    ];
    const DIR: &'static str = "containers";
    const STAT_TABLE: &'static str = "container_stat";
    const ROW_TABLE: &'static str = "object";
    const SCHEMA: &'static str = SCHEMA;
    const META_PREFIX: &'static str = "x-container-meta-";

    fn is_deleted(conn: &Connection) -> rusqlite::Result<bool> {
        Ok(info(conn)?.is_deleted())
    }

    fn merge_pending(conn: &mut Connection, records: Vec<Value>) -> rusqlite::Result<()> {
        let recs: Vec<ObjectRecord> = records
            .iter()
            .filter_map(|r| {
                let rec = ObjectRecord::from_pending_tuple(r);
                if rec.is_none() {
                    tracing::warn!(record = ?r, "skipped a pending record that is not an object row");
                }
                rec
            })
            .collect();
        merge_objects(conn, &recs)
    }
}

#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub account: String,
    pub container: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub status_changed_at: String,
    pub object_count: i64,
    pub bytes_used: i64,
    pub storage_policy_index: u32,
    pub metadata: String,
    pub hash: String,
    pub id: String,
    pub reported_put_timestamp: String,
    pub reported_delete_timestamp: String,
    pub reported_object_count: i64,
    pub reported_bytes_used: i64,
}

impl ContainerInfo {
    /// Swift's `_is_deleted_info`: no objects and deleted after the last PUT.
    pub fn is_deleted(&self) -> bool {
        self.object_count == 0 && ts(&self.delete_timestamp) > ts(&self.put_timestamp)
    }
}

/// A listed object row.
#[derive(Clone, Debug)]
pub struct ObjectRow {
    pub created_at: String,
    pub size: i64,
    pub content_type: String,
    pub etag: String,
}

impl ObjectRow {
    /// What a listing shows as `last_modified`: the row's metadata time, which a POST
    /// moves, as Swift's container server shows it.
    pub fn last_modified(&self) -> Timestamp {
        RowTimes::decode(&self.created_at).map_or(Timestamp::ZERO, |t| t.meta)
    }
}

pub fn create(
    path: &Path,
    account: &str,
    container: &str,
    put_timestamp: Timestamp,
    policy_index: u32,
) -> rusqlite::Result<Connection> {
    broker::create::<ContainerDb>(path, |conn| {
        conn.execute(
            "INSERT INTO policy_stat (storage_policy_index) VALUES (?)",
            params![policy_index],
        )?;
        conn.execute(
            "INSERT INTO container_info (account, container, created_at, id, put_timestamp, status_changed_at, storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
            params![
                account,
                container,
                Timestamp::now().internal(),
                db::new_db_id(),
                put_timestamp.internal(),
                put_timestamp.internal(),
                policy_index
            ],
        )?;
        Ok(())
    })
}

pub fn info(conn: &Connection) -> rusqlite::Result<ContainerInfo> {
    conn.query_row(
        "SELECT account, container, created_at, put_timestamp, delete_timestamp, status_changed_at, object_count, bytes_used, storage_policy_index, metadata, hash, id, reported_put_timestamp, reported_delete_timestamp, reported_object_count, reported_bytes_used FROM container_stat",
        [],
        |r| {
            Ok(ContainerInfo {
                account: r.get(0)?,
                container: r.get(1)?,
                created_at: r.get(2)?,
                put_timestamp: r.get(3)?,
                delete_timestamp: r.get(4)?,
                status_changed_at: r.get(5)?,
                object_count: r.get(6)?,
                bytes_used: r.get(7)?,
                storage_policy_index: r.get(8)?,
                metadata: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                hash: r.get(10)?,
                id: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                reported_put_timestamp: r.get(12)?,
                reported_delete_timestamp: r.get(13)?,
                reported_object_count: r.get(14)?,
                reported_bytes_used: r.get(15)?,
            })
        },
    )
}

/// A record from an object server or an `UPDATE` merge.
#[derive(Clone, Debug)]
pub struct ObjectRecord {
    pub name: String,
    pub created_at: Timestamp,
    pub size: i64,
    pub content_type: String,
    pub etag: String,
    pub deleted: bool,
    pub policy_index: u32,
    pub ctype_timestamp: Option<Timestamp>,
    pub meta_timestamp: Option<Timestamp>,
}

impl ObjectRecord {
    /// Its data, content-type and metadata times: a content-type time moves the metadata
    /// time with it unless a metadata time is given too.
    pub fn times(&self) -> RowTimes {
        let ctype = self.ctype_timestamp.unwrap_or(self.created_at);
        RowTimes {
            data: self.created_at,
            ctype,
            meta: self.meta_timestamp.unwrap_or(ctype),
        }
    }

    /// The tuple Swift's container broker appends to a `.pending` file: `(name,
    /// created_at, size, content_type, etag, deleted, storage_policy_index,
    /// ctype_timestamp, meta_timestamp)`, a deletion with Swift's placeholder values.
    pub fn to_pending_tuple(&self) -> Value {
        let text = |s: &str| Value::Str(s.to_string());
        let opt_ts = |t: Option<Timestamp>| t.map_or(Value::None, |t| text(&t.internal()));
        let (size, ctype, etag) = if self.deleted {
            (0, "application/deleted", "noetag")
        } else {
            (self.size, self.content_type.as_str(), self.etag.as_str())
        };
        Value::Tuple(vec![
            text(&self.name),
            text(&self.created_at.internal()),
            Value::Int(size),
            text(ctype),
            text(etag),
            Value::Int(i64::from(self.deleted)),
            Value::Int(i64::from(self.policy_index)),
            opt_ts(self.ctype_timestamp),
            opt_ts(self.meta_timestamp),
        ])
    }

    /// Reads one pending tuple (Swift's `_commit_puts_load`: the policy index and the
    /// two extra timestamps are optional, for records older Swifts wrote).
    pub fn from_pending_tuple(v: &Value) -> Option<ObjectRecord> {
        let f = v.as_seq()?;
        let opt_ts = |i: usize| pending::text(f.get(i)).and_then(|t| Timestamp::parse(&t).ok());
        // Swift writes the data time alone here; an encoded one is read whole all the same.
        let times = RowTimes::decode(&pending::text(f.get(1))?).ok()?;
        Some(ObjectRecord {
            name: pending::text(f.first())?,
            created_at: times.data,
            size: pending::int(f.get(2))?,
            content_type: pending::text(f.get(3))?,
            etag: pending::text(f.get(4))?,
            deleted: pending::int(f.get(5))? != 0,
            policy_index: pending::int(f.get(6)).unwrap_or(0).max(0) as u32,
            ctype_timestamp: opt_ts(7).or((times.ctype != times.data).then_some(times.ctype)),
            meta_timestamp: opt_ts(8).or((times.meta != times.ctype).then_some(times.meta)),
        })
    }
}

/// Merges one object record; see [`merge_objects`].
pub fn put_object(conn: &mut Connection, rec: &ObjectRecord) -> rusqlite::Result<()> {
    merge_objects(conn, std::slice::from_ref(rec))
}

/// Merges object records in order, all in one transaction: a newer data timestamp
/// replaces the row; a POST's newer content-type replaces just the content type;
/// anything older is ignored.
pub fn merge_objects(conn: &mut Connection, recs: &[ObjectRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for rec in recs {
        merge_one(&tx, rec)?;
    }
    tx.commit()
}

fn merge_one(tx: &Connection, rec: &ObjectRecord) -> rusqlite::Result<()> {
    let existing: Option<(String, i64, String, String, i64)> = tx
        .prepare_cached(
            "SELECT created_at, size, content_type, etag, deleted FROM object WHERE name = ? AND deleted IN (0, 1)",
        )?
        .query_row(params![rec.name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let mut times = rec.times();
    let (mut ctype, mut swift_bytes) = take_swift_bytes(&rec.content_type);
    let (mut size, mut etag, mut deleted) = (rec.size, rec.etag.clone(), i64::from(rec.deleted));
    if let Some((old_created, old_size, old_ctype, old_etag, old_deleted)) = existing {
        // Each part of the row keeps whichever side's time for it is newer (Swift's
        // `update_new_item_from_existing`); a tie keeps what is stored.
        let old = RowTimes::decode(&old_created).unwrap_or(RowTimes::at(Timestamp::ZERO));
        let (old_ctype, old_swift_bytes) = take_swift_bytes(&old_ctype);
        let mut newer = false;
        if old.data >= times.data {
            (size, etag, deleted, swift_bytes) = (old_size, old_etag, old_deleted, old_swift_bytes);
            times.data = old.data;
        } else {
            newer = true;
        }
        if old.ctype >= times.ctype {
            ctype = old_ctype;
            times.ctype = old.ctype;
        } else {
            newer = true;
        }
        if old.meta >= times.meta {
            times.meta = old.meta;
        } else {
            newer = true;
        }
        if !newer {
            return Ok(());
        }
        tx.prepare_cached("DELETE FROM object WHERE name = ? AND deleted IN (0, 1)")?
            .execute(params![rec.name])?;
    }
    // The size an SLO manifest's listing shows travels with the data, not the type.
    if let Some(b) = swift_bytes {
        ctype = format!("{ctype};swift_bytes={b}");
    }
    tx.prepare_cached(
        "INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![rec.name, times.encode(), size, ctype, etag, deleted, rec.policy_index])?;
    Ok(())
}

/// A content type without its `swift_bytes` parameter, and that parameter's value. The
/// rest of the type is kept as it was sent (Swift rebuilds it from its parsed parameters).
fn take_swift_bytes(ctype: &str) -> (String, Option<String>) {
    let mut parts = ctype.split(';');
    let mut kept = parts.next().unwrap_or("").to_string();
    let mut bytes = None;
    for p in parts {
        match p.trim().strip_prefix("swift_bytes=") {
            Some(v) => bytes = Some(v.trim().to_string()),
            None => {
                kept.push(';');
                kept.push_str(p);
            }
        }
    }
    (kept, bytes)
}

pub fn list(
    conn: &Connection,
    params: &ListingParams,
    policy_index: u32,
) -> rusqlite::Result<Vec<Entry<ObjectRow>>> {
    broker::list::<ContainerDb, _>(
        conn,
        params,
        "created_at, size, content_type, etag",
        &format!("storage_policy_index = {policy_index}"),
        |r, i| {
            Ok(ObjectRow {
                created_at: r.get(i)?,
                size: r.get(i + 1)?,
                content_type: r.get(i + 2)?,
                etag: r.get(i + 3)?,
            })
        },
    )
}

pub fn update_status_changed_at(conn: &Connection, t: Timestamp) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE container_stat SET status_changed_at = ?",
        params![t.internal()],
    )?;
    Ok(())
}

pub fn set_delete_timestamp(conn: &Connection, t: Timestamp) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE container_stat SET delete_timestamp = ? WHERE delete_timestamp < ?",
        params![t.internal(), t.internal()],
    )?;
    Ok(())
}

pub fn set_storage_policy(conn: &Connection, index: u32) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO policy_stat (storage_policy_index) VALUES (?)",
        params![index],
    )?;
    conn.execute(
        "UPDATE container_stat SET storage_policy_index = ?",
        params![index],
    )?;
    Ok(())
}

pub fn set_reported(conn: &Connection, i: &ContainerInfo) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE container_stat SET reported_put_timestamp = ?, reported_delete_timestamp = ?, reported_object_count = ?, reported_bytes_used = ?",
        params![i.put_timestamp, i.delete_timestamp, i.object_count, i.bytes_used],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/c.db");
        let mut conn = create(&p, "a", "c", Timestamp::parse("1").unwrap(), 0).unwrap();
        let rec = |name: &str, t: &str, size: i64, deleted: bool| ObjectRecord {
            name: name.into(),
            created_at: Timestamp::parse(t).unwrap(),
            size,
            content_type: "text/plain".into(),
            etag: "e".into(),
            deleted,
            policy_index: 0,
            ctype_timestamp: None,
            meta_timestamp: None,
        };
        put_object(&mut conn, &rec("o1", "2", 10, false)).unwrap();
        put_object(&mut conn, &rec("o2", "2", 5, false)).unwrap();
        put_object(&mut conn, &rec("o1", "1.5", 99, false)).unwrap(); // older: ignored
        let i = info(&conn).unwrap();
        assert_eq!((i.object_count, i.bytes_used), (2, 15));
        put_object(&mut conn, &rec("o1", "3", 0, true)).unwrap();
        let i = info(&conn).unwrap();
        assert_eq!((i.object_count, i.bytes_used), (1, 5));
        assert_ne!(i.hash, "0".repeat(32));
        let rows = list(
            &conn,
            &ListingParams {
                limit: 10,
                ..Default::default()
            },
            0,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        // The file is readable by plain SQLite with Swift's view.
        let n: i64 = conn
            .query_row("SELECT count(*) FROM object WHERE deleted = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }

    /// The same object updates (PUTs, POSTs with and without a content type, replayed
    /// older writes, a DELETE, an SLO's `swift_bytes`) merged by Swift 2.38.3's
    /// ContainerBroker and by ours leave the same rows, `created_at` encoding included.
    #[test]
    fn rows_merge_as_swifts_broker_merges_them() {
        // (name, data time, size, content type, etag, deleted, ctype time, meta time)
        type Update<'a> = (
            &'a str,
            &'a str,
            i64,
            &'a str,
            &'a str,
            bool,
            Option<&'a str>,
            Option<&'a str>,
        );
        let updates: Vec<Update> = vec![
            (
                "o1",
                "1700000001.00000",
                10,
                "text/plain",
                "e1",
                false,
                None,
                None,
            ),
            // A POST without a content type: only the metadata time moves.
            (
                "o1",
                "1700000001.00000",
                10,
                "text/plain",
                "e1",
                false,
                None,
                Some("1700000003.00000"),
            ),
            // A POST with one.
            (
                "o1",
                "1700000001.00000",
                10,
                "image/png",
                "e1",
                false,
                Some("1700000004.00000"),
                Some("1700000004.00000"),
            ),
            // A PUT newer than the data but older than the POSTs, replayed late.
            (
                "o1",
                "1700000002.00000",
                20,
                "text/html",
                "e2",
                false,
                None,
                None,
            ),
            (
                "o2",
                "1700000005.00000",
                1,
                "application/x;swift_bytes=100",
                "e3",
                false,
                None,
                None,
            ),
            (
                "o2",
                "1700000005.00000",
                1,
                "text/y",
                "e3",
                false,
                Some("1700000006.00000"),
                Some("1700000006.00000"),
            ),
            (
                "o3",
                "1700000001.00000",
                7,
                "text/plain",
                "e4",
                false,
                None,
                None,
            ),
            (
                "o3",
                "1700000002.00000",
                0,
                "application/deleted",
                "noetag",
                true,
                None,
                None,
            ),
            // Older than what is stored on every count: ignored.
            (
                "o2",
                "1700000004.00000",
                9,
                "text/z",
                "e5",
                false,
                None,
                None,
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut conn = create(
            &dir.path().join("c.db"),
            "a",
            "c",
            Timestamp::parse("1").unwrap(),
            0,
        )
        .unwrap();
        let t = |s: &str| Timestamp::parse(s).unwrap();
        for (name, data, size, ctype, etag, deleted, ctype_ts, meta_ts) in &updates {
            put_object(
                &mut conn,
                &ObjectRecord {
                    name: name.to_string(),
                    created_at: t(data),
                    size: *size,
                    content_type: ctype.to_string(),
                    etag: etag.to_string(),
                    deleted: *deleted,
                    policy_index: 0,
                    ctype_timestamp: ctype_ts.map(t),
                    meta_timestamp: meta_ts.map(t),
                },
            )
            .unwrap();
        }
        let mut ours = Vec::new();
        let mut q = conn
            .prepare("SELECT name, created_at, size, content_type, etag, deleted FROM object ORDER BY name")
            .unwrap();
        let mut rows = q.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            ours.push(serde_json::json!([
                r.get::<_, String>(0).unwrap(),
                r.get::<_, String>(1).unwrap(),
                r.get::<_, i64>(2).unwrap(),
                r.get::<_, String>(3).unwrap(),
                r.get::<_, String>(4).unwrap(),
                r.get::<_, i64>(5).unwrap(),
            ]));
        }
        let script = r#"
import json, sys, tempfile, os
from swift.container.backend import ContainerBroker
updates = json.load(sys.stdin)
d = tempfile.mkdtemp()
b = ContainerBroker(os.path.join(d, 'c.db'), account='a', container='c')
b.initialize('0000000001.00000', 0)
for name, data, size, ctype, etag, deleted, ctype_ts, meta_ts in updates:
    b.put_object(name, data, size, ctype, etag, deleted=int(deleted),
                 storage_policy_index=0, ctype_timestamp=ctype_ts, meta_timestamp=meta_ts)
    b._commit_puts()
with b.get() as conn:
    rows = conn.execute('SELECT name, created_at, size, content_type, etag, deleted '
                        'FROM object ORDER BY name').fetchall()
print(json.dumps([list(r) for r in rows]))
"#;
        let swift = ringsmith_testkit::swift_python_json(
            &["-c", script],
            serde_json::to_string(&updates).unwrap().as_bytes(),
        );
        assert_eq!(serde_json::Value::Array(ours), swift);
    }
}

//! The container and account replicators.
//!
//! Swift's db-replicator speaks a JSON RPC over `REPLICATE` and ships whole databases
//! with rsync. Ringsmith's storage servers expose no such RPC, so this replicator uses
//! the backend requests they already serve (a documented difference):
//!
//! * the remote replica is created if missing (`PUT /d/p/a[/c]` with the database's
//!   own put timestamp and, for containers, its storage policy);
//! * rows the remote has not seen from us are pushed in batches, newest-wins merges on
//!   the receiver making repeats harmless: object rows with
//!   `UPDATE /d/p/a/c` (a JSON list of records), container rows of an account with
//!   `PUT /d/p/a/c` carrying the row's timestamps and counts;
//! * what "seen" means is a sync point per remote replica (`ip:port/device`) in the
//!   local database's `outgoing_sync` table, Swift's own table for this; a remote that
//!   answers 404 (new, or its copy was quarantined) gets a full push from row 0 — the
//!   "far behind, push the whole database" case;
//! * a deleted container's delete timestamp follows with `DELETE /d/p/a/c`.
//!
//! A database on a handoff device is pushed to every primary and removed once all of
//! them accepted it. Stats go to `<kind>.recon` (`replication_stats`,
//! `replication_time`, `replication_last`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ringsmith::device::Device;
use ringsmith::ring::Ring;
use rusqlite::params;
use serde_json::{json, Map, Value};

use super::{node_base, quote, DaemonConf};
use crate::common::shell::blocking;
use crate::db;

/// Rows per push request.
const BATCH: i64 = 1000;

/// What a replica database is, read from its stat table.
#[derive(Clone, Debug)]
struct DbInfo {
    account: String,
    container: Option<String>,
    put_timestamp: String,
    delete_timestamp: String,
    policy_index: u32,
}

pub struct DbReplicator {
    conf: DaemonConf,
    http: reqwest::Client,
    /// `container` or `account`.
    kind: &'static str,
}

#[derive(Default, Debug)]
struct PassStats {
    attempted: u64,
    success: u64,
    failure: u64,
    no_change: u64,
    rows_pushed: u64,
    remote_created: u64,
    remove: u64,
}

/// Opens a database of `kind` with its pending records merged, so replication sends
/// every row (Swift's replicator reads through the broker, which merges them too).
fn open_merged(path: &Path, kind: &str) -> rusqlite::Result<rusqlite::Connection> {
    if kind == "container" {
        crate::db::broker::open_db::<crate::container::broker::ContainerDb>(path)
    } else {
        crate::db::broker::open_db::<crate::account::broker::AccountDb>(path)
    }
}

fn read_info(conn: &rusqlite::Connection, kind: &str) -> rusqlite::Result<DbInfo> {
    if kind == "container" {
        conn.query_row(
            "SELECT account, container, put_timestamp, delete_timestamp, storage_policy_index FROM container_stat",
            [],
            |r| {
                Ok(DbInfo {
                    account: r.get(0)?,
                    container: Some(r.get(1)?),
                    put_timestamp: r.get(2)?,
                    delete_timestamp: r.get(3)?,
                    policy_index: r.get::<_, i64>(4)?.max(0) as u32,
                })
            },
        )
    } else {
        conn.query_row(
            "SELECT account, put_timestamp, delete_timestamp FROM account_stat",
            [],
            |r| {
                Ok(DbInfo {
                    account: r.get(0)?,
                    container: None,
                    put_timestamp: r.get(1)?,
                    delete_timestamp: r.get(2)?,
                    policy_index: 0,
                })
            },
        )
    }
}

/// Rows after `after` (by ROWID), at most `BATCH`, as `(rowid, record)`.
fn rows_after(
    conn: &rusqlite::Connection,
    kind: &str,
    after: i64,
) -> rusqlite::Result<Vec<(i64, Value)>> {
    if kind == "container" {
        let mut st = conn.prepare(
            "SELECT ROWID, name, created_at, size, content_type, etag, deleted, storage_policy_index \
             FROM object WHERE ROWID > ? ORDER BY ROWID LIMIT ?",
        )?;
        let rows = st.query_map(params![after, BATCH], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json!({
                    "name": r.get::<_, String>(1)?, "created_at": r.get::<_, String>(2)?,
                    "size": r.get::<_, i64>(3)?, "content_type": r.get::<_, String>(4)?,
                    "etag": r.get::<_, String>(5)?, "deleted": r.get::<_, i64>(6)?,
                    "storage_policy_index": r.get::<_, i64>(7)?,
                }),
            ))
        })?;
        rows.collect()
    } else {
        let mut st = conn.prepare(
            "SELECT ROWID, name, put_timestamp, delete_timestamp, object_count, bytes_used, storage_policy_index \
             FROM container WHERE ROWID > ? ORDER BY ROWID LIMIT ?",
        )?;
        let rows = st.query_map(params![after, BATCH], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json!({
                    "name": r.get::<_, String>(1)?, "put_timestamp": r.get::<_, String>(2)?,
                    "delete_timestamp": r.get::<_, String>(3)?, "object_count": r.get::<_, i64>(4)?,
                    "bytes_used": r.get::<_, i64>(5)?, "storage_policy_index": r.get::<_, i64>(6)?,
                }),
            ))
        })?;
        rows.collect()
    }
}

impl DbReplicator {
    pub fn new(conf: DaemonConf, kind: &'static str) -> DbReplicator {
        DbReplicator {
            http: conf.http(),
            conf,
            kind,
        }
    }

    pub async fn run_pass(self: &Arc<Self>) {
        let start = Instant::now();
        let ring = match self.conf.load_ring(self.kind) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(kind = self.kind, error = %e, "cannot load ring");
                return;
            }
        };
        let mut stats = PassStats::default();
        for dev in super::local_devices(&ring, &self.conf.bind_ip, self.conf.bind_port) {
            let crate::common::DeviceState::Ok(dev_path) =
                self.conf.devices.device_path(&dev.device)
            else {
                continue;
            };
            for path in super::container_updater::db_files(&dev_path, &format!("{}s", self.kind)) {
                stats.attempted += 1;
                match self.replicate_db(&ring, &dev, &path, &mut stats).await {
                    Ok(()) => stats.success += 1,
                    Err(e) => {
                        stats.failure += 1;
                        tracing::warn!(db = %path.display(), error = %e, "database replication failed");
                    }
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        tracing::info!(
            kind = self.kind,
            ?stats,
            elapsed_s = elapsed,
            "database replication pass completed"
        );
        let mut m = Map::new();
        m.insert(
            "replication_stats".into(),
            json!({
                "attempted": stats.attempted, "success": stats.success, "failure": stats.failure,
                "no_change": stats.no_change, "remove": stats.remove, "rows_pushed": stats.rows_pushed,
                "remote_merge": stats.rows_pushed, "rsync": stats.remote_created,
                "start": super::now_f64() - elapsed,
            }),
        );
        m.insert("replication_time".into(), json!(elapsed));
        m.insert("replication_last".into(), json!(super::now_f64()));
        super::dump_recon_cache(&self.conf.recon_cache_path, self.kind, m);
    }

    async fn replicate_db(
        &self,
        ring: &Ring,
        dev: &Device,
        path: &Path,
        stats: &mut PassStats,
    ) -> Result<(), String> {
        let p = path.to_path_buf();
        let kind = self.kind;
        let info = blocking(move || open_merged(&p, kind).and_then(|c| read_info(&c, kind)))
            .await
            .map_err(|e| e.to_string())?;
        let (part, primaries) = ring
            .get_nodes(&info.account, info.container.as_deref(), None)
            .map_err(|e| e.to_string())?;
        let primaries: Vec<Device> = primaries.iter().cloned().collect();
        let is_primary = primaries.iter().any(|d| d.id == dev.id);
        let mut all_ok = true;
        for node in primaries.iter().filter(|d| d.id != dev.id) {
            if let Err(e) = self.sync_to(node, part, path, &info, stats).await {
                tracing::warn!(node = %node.describe(), error = %e, "database sync failed");
                all_ok = false;
            }
        }
        if !is_primary {
            if !all_ok || primaries.is_empty() {
                return Err("handoff database kept: not every primary accepted it".into());
            }
            let hash_dir: PathBuf = path
                .parent()
                .ok_or("database has no directory")?
                .to_path_buf();
            std::fs::remove_dir_all(&hash_dir).map_err(|e| e.to_string())?;
            stats.remove += 1;
            tracing::info!(db = %path.display(), "handoff database moved to its primaries and removed");
            return Ok(());
        }
        if all_ok {
            Ok(())
        } else {
            Err("some primaries were not brought in step".into())
        }
    }

    async fn sync_to(
        &self,
        node: &Device,
        part: u32,
        path: &Path,
        info: &DbInfo,
        stats: &mut PassStats,
    ) -> Result<(), String> {
        let mut rel = format!("/{}", info.account);
        if let Some(c) = &info.container {
            rel.push('/');
            rel.push_str(c);
        }
        let url = format!(
            "{}/{}/{part}{}",
            node_base(node),
            quote(&node.device),
            quote(&rel)
        );
        let remote_id = format!(
            "{}/{}",
            node_base(node).trim_start_matches("http://"),
            node.device
        );
        let head = self
            .http
            .head(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let code = head.status().as_u16();
        let deleted_remote = head.headers().contains_key("x-backend-timestamp") && code == 404;
        let missing = code == 404;
        if !(head.status().is_success() || missing) {
            return Err(format!("HEAD answered {code}"));
        }
        if missing {
            // New (or quarantined) remote replica: create it and push everything.
            let mut req = self
                .http
                .put(&url)
                .header("X-Timestamp", &info.put_timestamp)
                .header("X-Account-Override-Deleted", "yes");
            if info.container.is_some() {
                req = req.header(
                    "X-Backend-Storage-Policy-Index",
                    info.policy_index.to_string(),
                );
            }
            let r = req.send().await.map_err(|e| e.to_string())?;
            if !(r.status().is_success() || r.status().as_u16() == 409) {
                if !deleted_remote {
                    return Err(format!(
                        "creating the remote replica answered {}",
                        r.status()
                    ));
                }
            } else {
                stats.remote_created += 1;
            }
            let (p, rid) = (path.to_path_buf(), remote_id.clone());
            blocking(move || {
                db::open(&p).and_then(|c| crate::db::broker::set_outgoing_sync_point(&c, &rid, -1))
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        let mut pushed_any = false;
        loop {
            let (p, rid, kind) = (path.to_path_buf(), remote_id.clone(), self.kind);
            let (point, rows) = blocking(move || -> rusqlite::Result<(i64, Vec<(i64, Value)>)> {
                let c = db::open(&p)?;
                let point = crate::db::broker::outgoing_sync_point(&c, &rid)?;
                Ok((point, rows_after(&c, kind, point)?))
            })
            .await
            .map_err(|e| e.to_string())?;
            let Some(last) = rows.last().map(|(id, _)| *id) else {
                break;
            };
            pushed_any = true;
            self.push_rows(&url, info, rows.iter().map(|(_, v)| v))
                .await?;
            stats.rows_pushed += rows.len() as u64;
            let (p, rid) = (path.to_path_buf(), remote_id.clone());
            blocking(move || {
                db::open(&p).and_then(|c| {
                    crate::db::broker::set_outgoing_sync_point(&c, &rid, last.max(point))
                })
            })
            .await
            .map_err(|e| e.to_string())?;
        }
        if !pushed_any {
            stats.no_change += 1;
        }
        // A deleted container's delete timestamp travels too.
        if info.container.is_some()
            && crate::db::ts(&info.delete_timestamp) > crate::db::ts(&info.put_timestamp)
        {
            let _ = self
                .http
                .delete(&url)
                .header("X-Timestamp", &info.delete_timestamp)
                .send()
                .await;
        }
        Ok(())
    }

    async fn push_rows<'a>(
        &self,
        url: &str,
        info: &DbInfo,
        rows: impl Iterator<Item = &'a Value>,
    ) -> Result<(), String> {
        if info.container.is_some() {
            let body: Vec<&Value> = rows.collect();
            let r = self
                .http
                .request(
                    reqwest::Method::from_bytes(b"UPDATE").expect("static method"),
                    url,
                )
                .header("X-Timestamp", crate::common::Timestamp::now().internal())
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("UPDATE answered {}", r.status()));
            }
            return Ok(());
        }
        for row in rows {
            let s = |k: &str| {
                row.get(k)
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default()
            };
            let curl = format!("{url}/{}", quote(&s("name")));
            let r = self
                .http
                .put(&curl)
                .header("X-Put-Timestamp", s("put_timestamp"))
                .header("X-Delete-Timestamp", s("delete_timestamp"))
                .header("X-Object-Count", s("object_count"))
                .header("X-Bytes-Used", s("bytes_used"))
                .header("X-Backend-Storage-Policy-Index", s("storage_policy_index"))
                .header("X-Account-Override-Deleted", "yes")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            // 404: the account is deleted there; its own replica decides.
            if !(r.status().is_success() || r.status().as_u16() == 404) {
                return Err(format!("container row PUT answered {}", r.status()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::broker::{outgoing_sync_point, set_outgoing_sync_point};

    #[test]
    fn sync_points_and_row_batches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.db");
        let ts = |s: &str| crate::common::Timestamp::parse(s).unwrap();
        let mut conn = crate::container::broker::create(&p, "a", "c", ts("1"), 0).unwrap();
        for i in 0..3 {
            crate::container::broker::put_object(
                &mut conn,
                &crate::container::broker::ObjectRecord {
                    name: format!("o{i}"),
                    created_at: ts("2"),
                    size: 1,
                    content_type: "t/p".into(),
                    etag: "e".into(),
                    deleted: false,
                    policy_index: 0,
                    ctype_timestamp: None,
                    meta_timestamp: None,
                },
            )
            .unwrap();
        }
        let conn = db::open(&p).unwrap();
        assert_eq!(outgoing_sync_point(&conn, "r1").unwrap(), -1);
        let rows = rows_after(&conn, "container", -1).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].1["name"], "o0");
        set_outgoing_sync_point(&conn, "r1", rows[1].0).unwrap();
        assert_eq!(outgoing_sync_point(&conn, "r1").unwrap(), rows[1].0);
        let rest = rows_after(&conn, "container", rows[1].0).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1["name"], "o2");
        assert_eq!(read_info(&conn, "container").unwrap().account, "a");
    }
}

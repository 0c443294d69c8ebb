//! The container and account auditors: open every database, run SQLite's
//! `PRAGMA integrity_check` and read its stat row; a database that fails is moved
//! with its hash directory to `<dev>/quarantined/<containers|accounts>/<hash>`, so
//! the replicator (or an operator) restores it from a peer instead of serving it.
//! Stats go to `<kind>.recon` with Swift's key names.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Map};

use super::DaemonConf;

/// `Ok` when the database is readable and consistent; the reason otherwise.
pub fn check_db(path: &Path, stat_table: &str) -> Result<(), String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if verdict != "ok" {
        return Err(verdict);
    }
    conn.query_row(
        &format!("SELECT put_timestamp FROM {stat_table}"),
        [],
        |r| r.get::<_, String>(0),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

pub struct DbAuditor {
    conf: DaemonConf,
    /// `container` or `account`.
    kind: &'static str,
}

impl DbAuditor {
    pub fn new(conf: DaemonConf, kind: &'static str) -> DbAuditor {
        DbAuditor { conf, kind }
    }

    fn device_still_usable(&self, device: &str) -> bool {
        matches!(
            self.conf.devices.device_path(device),
            crate::common::DeviceState::Ok(_)
        )
    }

    /// Blocking (SQLite); callers run it off the runtime.
    pub fn run_pass(&self) {
        let start = Instant::now();
        let dir = format!("{}s", self.kind);
        let (mut passed, mut failed) = (0u64, 0u64);
        let files_per_second: f64 = self
            .conf
            .section
            .parse_or(&format!("{}s_per_second", self.kind), 200.0)
            .unwrap_or(200.0);
        let mut limiter = super::RateLimiter::new(files_per_second);
        for (dev_name, dev_path) in self.conf.device_dirs() {
            for db in super::container_updater::db_files(&dev_path, &dir) {
                std::thread::sleep(limiter.delay(Instant::now(), 1));
                match check_db(&db, &format!("{}_stat", self.kind)) {
                    Ok(()) => passed += 1,
                    // A database that vanished (replicated away, or its device unmounted
                    // mid-pass) is not corrupt: quarantining it would make directories on
                    // whatever filesystem is left underneath.
                    Err(_) if !db.exists() || !self.device_still_usable(&dev_name) => {}
                    Err(reason) => {
                        failed += 1;
                        let hash_dir = db.parent().expect("db files sit in a hash dir");
                        let q = dev_path.join("quarantined").join(&dir);
                        let name = hash_dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let mut dest = q.join(&name);
                        if dest.exists() {
                            dest = q.join(format!("{name}-{}", crate::common::unique_hex()));
                        }
                        let moved = std::fs::create_dir_all(&q)
                            .and_then(|_| std::fs::rename(hash_dir, &dest));
                        tracing::error!(target: "db-auditor", db = %db.display(), %reason, to = %dest.display(),
                            moved = moved.is_ok(), "Quarantined database");
                    }
                }
            }
        }
        let k = self.kind;
        tracing::info!(
            kind = k,
            passed,
            failed,
            elapsed_s = start.elapsed().as_secs_f64(),
            "database audit pass completed"
        );
        let mut m = Map::new();
        m.insert(format!("{k}_audits_passed"), json!(passed));
        m.insert(format!("{k}_audits_failed"), json!(failed));
        m.insert(format!("{k}_audits_since"), json!(super::now_f64()));
        m.insert(
            format!("{k}_auditor_pass_completed"),
            json!(start.elapsed().as_secs_f64()),
        );
        super::dump_recon_cache(&self.conf.recon_cache_path, k, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_db_passes_and_garbage_fails() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.db");
        crate::container::broker::create(
            &good,
            "a",
            "c",
            crate::common::Timestamp::parse("1").unwrap(),
            0,
        )
        .unwrap();
        assert_eq!(check_db(&good, "container_stat"), Ok(()));
        let bad = dir.path().join("bad.db");
        std::fs::write(&bad, b"this is not a database at all, just rot").unwrap();
        assert!(check_db(&bad, "container_stat").is_err());
    }
}

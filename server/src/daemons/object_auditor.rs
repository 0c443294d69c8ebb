//! The object auditor.
//!
//! Walks every object on every device and checks it the way a reader would: the
//! metadata must load (checksum and pickle), the file's size must equal
//! `Content-Length`, and — in the full pass — the MD5 of the contents must equal the
//! `ETag`; a fragment archive of an erasure-coded policy must also be a run of whole
//! fragments whose headers are sound and carry the archive's index. A failing object's whole hash directory is moved to
//! `<dev>/quarantined/objects[-N]/<hash>` and its suffix invalidated, so the next
//! replication pass sees a hash mismatch and restores a good copy from a peer.
//!
//! A pass first runs the zero-byte fast pass (ZBF: only empty files, metadata checks,
//! `zero_byte_files_per_second`), then the full pass (`files_per_second`,
//! `bytes_per_second`). Tombstones older than `reclaim_age` get their suffix
//! invalidated so the next hashing reclaims them. Stats go to `object.recon` as
//! `object_auditor_stats_ALL` / `_ZBF`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use md5::{Digest, Md5};
use ringsmith::swift::policy::PolicyType;
use ringsmith_ec::ArchiveChecker;
use serde_json::{json, Map};

use super::{DaemonConf, RateLimiter};
use crate::object::diskfile::hashes;
use crate::object::diskfile::{self, DiskError, Lookup, OnDiskState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every object, contents hashed.
    All,
    /// Zero-byte files only: a cheap, frequent check.
    ZeroByte,
}

#[derive(Default, Debug, Clone)]
pub struct AuditStats {
    pub passes: u64,
    pub quarantined: u64,
    pub errors: u64,
    pub bytes_processed: u64,
}

/// Why an object fails its audit.
pub fn check_object(
    path: &Path,
    meta: &diskfile::Metadata,
    size: u64,
    contents_md5: Option<&str>,
) -> Result<(), String> {
    let want_len: u64 = meta
        .get("Content-Length")
        .ok_or("no Content-Length in metadata")?
        .parse()
        .map_err(|_| "Content-Length in metadata is not a number")?;
    if want_len != size {
        return Err(format!(
            "{}: metadata Content-Length {want_len} != file size {size}",
            path.display()
        ));
    }
    let etag = meta.get("ETag").ok_or("no ETag in metadata")?;
    if meta.get("name").is_none() {
        return Err(format!("{}: no name in metadata", path.display()));
    }
    if let Some(md5) = contents_md5 {
        if etag != md5 {
            return Err(format!(
                "{}: ETag {etag} and file's md5 {md5} do not match",
                path.display()
            ));
        }
    }
    Ok(())
}

pub struct ObjectAuditor {
    conf: DaemonConf,
    files_per_second: f64,
    bytes_per_second: f64,
    zbf_per_second: f64,
}

impl ObjectAuditor {
    pub fn new(conf: DaemonConf) -> Result<ObjectAuditor, String> {
        let s = &conf.section;
        let e = |e: ringsmith::swift::conf::ConfError| e.to_string();
        Ok(ObjectAuditor {
            files_per_second: s.parse_or("files_per_second", 20.0).map_err(e)?,
            bytes_per_second: s.parse_or("bytes_per_second", 10_000_000.0).map_err(e)?,
            zbf_per_second: s.parse_or("zero_byte_files_per_second", 50.0).map_err(e)?,
            conf,
        })
    }

    /// Both passes, ZBF first; blocking (file reads), so callers run it off the runtime.
    pub fn run_pass(&self) {
        for mode in [Mode::ZeroByte, Mode::All] {
            let start = Instant::now();
            let started_at = super::now_f64();
            let stats = self.audit(mode);
            let key = if mode == Mode::All {
                "object_auditor_stats_ALL"
            } else {
                "object_auditor_stats_ZBF"
            };
            tracing::info!(target: "object-auditor", mode = ?mode, passes = stats.passes,
                quarantined = stats.quarantined, errors = stats.errors, bytes = stats.bytes_processed,
                elapsed_s = start.elapsed().as_secs_f64(), "object audit pass completed");
            let mut m = Map::new();
            m.insert(
                key.into(),
                json!({
                    "audit_time": start.elapsed().as_secs_f64(),
                    "bytes_processed": stats.bytes_processed,
                    "errors": stats.errors,
                    "passes": stats.passes,
                    "quarantined": stats.quarantined,
                    "start_time": started_at,
                }),
            );
            super::dump_recon_cache(&self.conf.recon_cache_path, "object", m);
        }
    }

    pub fn audit(&self, mode: Mode) -> AuditStats {
        let mut stats = AuditStats::default();
        let (mut files, mut bytes) = match mode {
            Mode::All => (
                RateLimiter::new(self.files_per_second),
                RateLimiter::new(self.bytes_per_second),
            ),
            Mode::ZeroByte => (RateLimiter::new(self.zbf_per_second), RateLimiter::new(0.0)),
        };
        let reclaim = self.conf.reclaim_before();
        for (_, dev_path) in self.conf.device_dirs() {
            for policy in self.conf.policies.iter() {
                let objects_dir = policy.dir("objects");
                let ec_unique = match &policy.policy_type {
                    PolicyType::ErasureCoding(ec) => Some(ec.ndata + ec.nparity),
                    PolicyType::Replication => None,
                };
                walk(&dev_path.join(&objects_dir), |part_dir, sfx, hash_dir| {
                    let st = match OnDiskState::read_dir(hash_dir) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                    if let Some(t) = &st.tombstone {
                        if t.timestamp < reclaim {
                            let _ = hashes::invalidate_hash(part_dir, sfx);
                        }
                        return;
                    }
                    let Some(data) = &st.data else { return };
                    let data_path = hash_dir.join(&data.name);
                    let size = std::fs::metadata(&data_path).map(|m| m.len()).unwrap_or(0);
                    if mode == Mode::ZeroByte && size != 0 {
                        return;
                    }
                    std::thread::sleep(files.delay(Instant::now(), 1));
                    match self.audit_one(hash_dir, ec_unique, &mut bytes, &mut stats) {
                        Ok(()) => stats.passes += 1,
                        Err(AuditFailure::Corrupt(reason)) => {
                            tracing::error!(target: "object-auditor", %reason, "Quarantined object");
                            match diskfile::quarantine(&dev_path, &objects_dir, hash_dir) {
                                Ok(dest) => {
                                    stats.quarantined += 1;
                                    tracing::warn!(to = %dest.display(), "object quarantined");
                                    let _ = hashes::invalidate_hash(part_dir, sfx);
                                }
                                Err(e) => {
                                    stats.errors += 1;
                                    tracing::error!(object = %hash_dir.display(), error = %e, "cannot quarantine");
                                }
                            }
                        }
                        Err(AuditFailure::Io(e)) => {
                            stats.errors += 1;
                            tracing::error!(object = %hash_dir.display(), error = %e, "audit error");
                        }
                    }
                });
            }
        }
        stats
    }

    /// Audits the object in `hash_dir`; `ec_unique` is the policy's count of unique
    /// fragment indexes when it is erasure-coded.
    fn audit_one(
        &self,
        hash_dir: &Path,
        ec_unique: Option<u32>,
        bytes: &mut RateLimiter,
        stats: &mut AuditStats,
    ) -> Result<(), AuditFailure> {
        let o = match diskfile::open(hash_dir, None) {
            Ok(Lookup::Found(o)) => o,
            // Raced with a delete or replication: nothing to audit.
            Ok(_) => return Ok(()),
            Err(DiskError::BadMetadata { path, reason }) => {
                return Err(AuditFailure::Corrupt(format!(
                    "{}: bad metadata: {reason}",
                    path.display()
                )))
            }
            Err(e) => return Err(AuditFailure::Io(e.to_string())),
        };
        let mut f = o.file;
        // A fragment archive must also be whole fragments, each with a sound header for
        // this archive's index (Swift checks each fragment's header as it reads).
        let mut fragments = match (ec_unique, &o.ec) {
            (Some(unique), Some(ec)) => Some(ArchiveChecker::new(ec.frag_index % unique.max(1))),
            _ => None,
        };
        let bad_archive = |e: String| {
            AuditFailure::Corrupt(format!(
                "{}: invalid fragment archive: {e}",
                o.data_path.display()
            ))
        };
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 65536];
        let mut read = 0u64;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| AuditFailure::Io(e.to_string()))?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            if let Some(check) = fragments.as_mut() {
                check.feed(&buf[..n]).map_err(bad_archive)?;
            }
            read += n as u64;
            std::thread::sleep(bytes.delay(Instant::now(), n as u64));
        }
        stats.bytes_processed += read;
        if let Some(check) = &fragments {
            check.finish().map_err(bad_archive)?;
        }
        check_object(
            &o.data_path,
            &o.metadata,
            read,
            Some(&hex::encode(md5.finalize())),
        )
        .map_err(AuditFailure::Corrupt)
    }
}

enum AuditFailure {
    Corrupt(String),
    Io(String),
}

/// Calls `f(part_dir, suffix, hash_dir)` for every object under an `objects[-N]`
/// directory, in sorted order. Only one directory level is listed at a time, so
/// memory stays bounded by the largest directory, not the number of objects.
pub fn walk(objects: &Path, mut f: impl FnMut(&Path, &str, &Path)) {
    let list = |p: &Path| -> Vec<(String, PathBuf)> {
        let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                    .filter(|(_, p)| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    for (pname, part_dir) in list(objects) {
        if !pname.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for (sfx, sdir) in list(&part_dir) {
            if !hashes::valid_suffix(&sfx) {
                continue;
            }
            for (_, hdir) in list(&sdir) {
                f(&part_dir, &sfx, &hdir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_etag_and_name() {
        let p = Path::new("/x/1.data");
        let mut m = diskfile::Metadata::new();
        m.insert("Content-Length".into(), "5".into());
        m.insert("ETag".into(), "5d41402abc4b2a76b9719d911017c592".into());
        m.insert("name".into(), "/a/c/o".into());
        assert!(check_object(p, &m, 5, Some("5d41402abc4b2a76b9719d911017c592")).is_ok());
        let e = check_object(p, &m, 5, Some("932fa1df4cc240f052835e4956329d4b")).unwrap_err();
        assert!(e.contains("do not match"), "{e}");
        assert!(check_object(p, &m, 4, None)
            .unwrap_err()
            .contains("Content-Length 5 != file size 4"));
        m.remove("name");
        assert!(check_object(p, &m, 5, None).is_err());
    }
}

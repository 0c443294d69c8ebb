//! Temp files that no write will ever finish: a named temp file (on a filesystem without
//! `O_TMPFILE`, or the rename path of a rewrite) whose server died before renaming it.
//!
//! Swift's replicator removes temp files older than `reclaim_age` (a week), because it
//! cannot tell a live upload from a leftover. Ours can: a writer holds an exclusive
//! `flock` on its temp file until it is renamed or removed, and the kernel drops that
//! lock when the process dies, however it dies. So the replicator (and the
//! reconstructor, for EC policies) removes every temp file nobody holds, on its next
//! pass after the crash.
//!
//! Two writers do not take the lock: Swift's own object server sharing a device with
//! ours, and one of ours in the instant between creating its file and locking it. Both
//! are covered by also requiring the file to be untouched for [`STALE_TEMP_AGE`]: a live
//! Swift upload writes at least every `client_timeout` (60 s by default) or is aborted.

use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long an unlocked temp file must have been untouched before it is removed.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Marks `file` as being written: an exclusive `flock`, released when the file is
/// closed or the process dies. Waits for the lock: only a sweep's brief probe can hold
/// it, and a sweep never removes a file this fresh.
pub fn hold_temp(file: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes the files of `tmp_dir` that no writer holds and that are older than
/// `min_age`; gives how many were removed. A missing directory has nothing to remove.
pub fn remove_stale_temp_files(tmp_dir: &Path, min_age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp_dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < min_age {
            continue;
        }
        // SAFETY: `file` stays open for the call; the lock goes with it when it closes.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free && std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), "removed a temp file left by a dead write");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backdate(path: &Path, by: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn only_unheld_old_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let dead = tmp.join("tmpdead");
        let fresh = tmp.join("tmpfresh");
        let live = tmp.join("tmplive");
        for p in [&dead, &fresh, &live] {
            std::fs::write(p, b"partial").unwrap();
        }
        backdate(&dead, Duration::from_secs(120));
        backdate(&live, Duration::from_secs(120));
        // A slow upload: old, but its writer still holds it.
        let writer = std::fs::File::options().write(true).open(&live).unwrap();
        hold_temp(&writer).unwrap();

        assert_eq!(remove_stale_temp_files(&tmp, STALE_TEMP_AGE), 1);
        assert!(!dead.exists());
        assert!(fresh.exists());
        assert!(live.exists());

        // Once the writer is gone (closed, or its process killed) it is a leftover.
        drop(writer);
        assert_eq!(remove_stale_temp_files(&tmp, STALE_TEMP_AGE), 1);
        assert!(!live.exists());
        assert_eq!(
            remove_stale_temp_files(&dir.path().join("missing"), STALE_TEMP_AGE),
            0
        );
    }
}

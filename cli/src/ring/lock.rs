//! The builder lock: an exclusive `flock` on `<builder dir>/.lock`, the file Swift's
//! `lock_parent_directory` uses, so `ringsmith ring`, `swift-ring-builder-safe` and other
//! Ringsmith processes exclude each other on the same directory.
//!
//! Swift only takes it when invoked as `swift-ring-builder-safe`; Ringsmith always does (a
//! concurrent `add` and `rebalance` on one builder lose an update otherwise). Waiting is
//! bounded: 15 seconds as in Swift, or `RINGSMITH_LOCK_TIMEOUT` seconds.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held for the life of the command; the kernel releases it when the file closes.
pub struct DirLock {
    _guard: ringsmith::flock::LockGuard,
}

/// Why the lock was not taken.
pub enum LockError {
    TimedOut,
    Io(PathBuf, std::io::Error),
}

pub fn default_timeout() -> Duration {
    std::env::var("RINGSMITH_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(15))
}

/// Locks the directory holding `builder_file`, creating it (as Swift does) if missing.
pub fn lock_parent_directory(builder_file: &Path, timeout: Duration) -> Result<DirLock, LockError> {
    let dir = match builder_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| LockError::Io(dir.clone(), e))?;
    let lock_path = dir.join(".lock");
    match ringsmith::flock::lock_with_timeout(&lock_path, timeout) {
        Ok(Some(guard)) => Ok(DirLock { _guard: guard }),
        Ok(None) => Err(LockError::TimedOut),
        Err(e) => Err(LockError::Io(lock_path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_locker_times_out_until_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let builder = dir.path().join("object.builder");
        let first = lock_parent_directory(&builder, Duration::ZERO)
            .ok()
            .expect("first lock");
        assert!(matches!(
            lock_parent_directory(&builder, Duration::from_millis(50)),
            Err(LockError::TimedOut)
        ));
        drop(first);
        assert!(lock_parent_directory(&builder, Duration::ZERO).is_ok());
    }
}

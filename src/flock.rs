//! Swift's lock files: an exclusive `flock` on a file (usually `<dir>/.lock`), held for
//! as long as the guard lives. Swift's tools and ours take the same locks, so a
//! `swift-ring-builder` and a `ringsmith ring` on one builder, or Swift's replicator and
//! ours on one partition, never interleave their writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// A held lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Waits as long as it takes for the lock on `path`, creating the file if needed.
pub fn lock(path: &Path) -> io::Result<LockGuard> {
    let file = open(path)?;
    file.lock()?;
    Ok(LockGuard { _file: file })
}

/// Swift's `lock_path` with a timeout: retries with growing pauses (10 ms up to 200 ms)
/// until `timeout` has passed; `Ok(None)` when someone else still holds it then.
pub fn lock_with_timeout(path: &Path, timeout: Duration) -> io::Result<Option<LockGuard>> {
    let file = open(path)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(LockGuard { _file: file })),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_locker_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = lock(&path).unwrap();
        assert!(lock_with_timeout(&path, Duration::from_millis(30))
            .unwrap()
            .is_none());
        drop(first);
        assert!(lock_with_timeout(&path, Duration::ZERO).unwrap().is_some());
        let missing = dir.path().join("no/such/dir/.lock");
        assert!(lock(&missing).is_err());
    }
}

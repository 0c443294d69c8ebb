//! Swift's `.pending` files: row updates for a database (object rows of a container,
//! container rows of an account) are appended to `<hash>.db.pending` and folded into
//! SQLite later, many rows in one transaction, instead of one transaction per update.
//!
//! The format is Swift's, byte for byte, so either server can read what the other left:
//! each record is `:` followed by base64 of the row tuple pickled with protocol 2 (`:`
//! never occurs in base64, so it delimits records). Writers and mergers hold Swift's
//! lock, an exclusive `flock` on `.lock` in the database's directory, so a Swift server
//! and ours on the same device never interleave. Records are merged when the file has
//! grown past [`PENDING_CAP`] (together with the record that found it full), and before
//! anything reads the database.
//!
//! Durability is Swift's: an append is written to the file but not fsynced, so an
//! acknowledged update survives the server process dying (the kernel still holds it) and
//! is lost only with the machine, exactly as Swift's is. A merge commits the SQLite
//! transaction (which SQLite syncs) before it empties the file, so a crash in between
//! merges the records again; merges are idempotent (newest wins). A record that does not
//! decode (a torn last append after a crash) is skipped with a warning, as Swift does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use ringsmith::pickle::{self, Value};

/// Swift's `PENDING_CAP`: past this many bytes the next update merges the file.
pub const PENDING_CAP: u64 = 131_072;

/// How long a writer waits for the lock before giving up (Swift's `pending_timeout`).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// `<db>.pending`.
pub fn pending_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".pending");
    PathBuf::from(p)
}

/// One record as it is appended: `:` and base64 of the pickled tuple.
pub fn encode_record(tuple: &Value) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pickle::dumps(tuple));
    let mut out = Vec::with_capacity(b64.len() + 1);
    out.push(b':');
    out.extend_from_slice(b64.as_bytes());
    out
}

/// The records of a pending file's contents, in order; entries that do not decode are
/// left out (and counted in the second value).
pub fn decode_records(contents: &[u8]) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut bad = 0;
    for entry in contents.split(|&b| b == b':').filter(|e| !e.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry)
            .ok()
            .and_then(|raw| pickle::loads(&raw).ok());
        match decoded {
            Some(v) => records.push(v),
            None => bad += 1,
        }
    }
    (records, bad)
}

/// Why a pending-file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    #[error("pending file {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("timed out after {0:?} waiting for the lock {1}")]
    LockTimeout(Duration, PathBuf),
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
}

impl From<PendingError> for rusqlite::Error {
    fn from(e: PendingError) -> rusqlite::Error {
        match e {
            PendingError::Db(e) => e,
            other => rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some(other.to_string()),
            ),
        }
    }
}

/// Threads of this process queue on one of these (by directory) before trying the
/// `flock`, so they wait on a futex and wake at once instead of polling the file lock;
/// the `flock` then only arbitrates with other processes (Swift's, or other workers).
static STRIPES: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

/// Swift's `lock_parent_directory`: the in-process stripe, then `flock` on `<dir>/.lock`.
pub struct DirLock {
    _file: File,
    _stripe: MutexGuard<'static, ()>,
}

impl DirLock {
    pub fn acquire(db: &Path, timeout: Duration) -> Result<DirLock, PendingError> {
        let dir = db.parent().unwrap_or(Path::new("."));
        let lock_path = dir.join(".lock");
        let stripe = &STRIPES[stripe_of(dir)];
        let guard = stripe.lock().unwrap_or_else(|p| p.into_inner());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| PendingError::Io(lock_path.clone(), e))?;
        let deadline = Instant::now() + timeout;
        // Another process holds it: short pauses first, since appends take microseconds.
        let mut pause = Duration::from_micros(200);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(DirLock {
                        _file: file,
                        _stripe: guard,
                    })
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(PendingError::Io(lock_path, e)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PendingError::LockTimeout(timeout, lock_path));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

fn stripe_of(dir: &Path) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    (h.finish() % STRIPES.len() as u64) as usize
}

fn file_len(path: &Path) -> Result<u64, PendingError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(PendingError::Io(path.to_path_buf(), e)),
    }
}

/// Swift's `put_record`: appends `record` (an encoded tuple, see [`encode_record`]) to
/// `db`'s pending file, or, when that file is already past [`PENDING_CAP`], merges its
/// records and this one into the database at once with `merge`.
pub fn put_record(
    db: &Path,
    record: &Value,
    merge: impl FnOnce(Vec<Value>) -> rusqlite::Result<()>,
) -> Result<(), PendingError> {
    let pending = pending_path(db);
    let _lock = DirLock::acquire(db, LOCK_TIMEOUT)?;
    if file_len(&pending)? > PENDING_CAP {
        return commit_locked(db, &pending, vec![record.clone()], merge);
    }
    let io_err = |e| PendingError::Io(pending.clone(), e);
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&pending)
        .map_err(io_err)?;
    // One write: a crash leaves at most this record torn, which the next merge skips.
    f.write_all(&encode_record(record)).map_err(io_err)?;
    Ok(())
}

/// Swift's `_commit_puts`: merges every record in `db`'s pending file into the
/// database with `merge` (one call, so one transaction) and empties the file. Nothing to
/// do (and no lock taken) when there is no pending file or it is empty.
pub fn commit(
    db: &Path,
    merge: impl FnOnce(Vec<Value>) -> rusqlite::Result<()>,
) -> Result<(), PendingError> {
    let pending = pending_path(db);
    if file_len(&pending)? == 0 {
        return Ok(());
    }
    let _lock = DirLock::acquire(db, LOCK_TIMEOUT)?;
    commit_locked(db, &pending, Vec::new(), merge)
}

fn commit_locked(
    db: &Path,
    pending: &Path,
    extra: Vec<Value>,
    merge: impl FnOnce(Vec<Value>) -> rusqlite::Result<()>,
) -> Result<(), PendingError> {
    let io_err = |e| PendingError::Io(pending.to_path_buf(), e);
    let mut file = match OpenOptions::new().read(true).write(true).open(pending) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let mut records = Vec::new();
    if let Some(f) = file.as_mut() {
        let mut contents = Vec::new();
        f.read_to_end(&mut contents).map_err(io_err)?;
        let (found, bad) = decode_records(&contents);
        if bad > 0 {
            tracing::warn!(db = %db.display(), bad, "skipped undecodable pending records");
        }
        records = found;
    }
    records.extend(extra);
    if !records.is_empty() {
        merge(records)?;
    }
    // Only once the merge is committed: a crash before this merges the records again.
    if let Some(f) = file {
        f.set_len(0).map_err(io_err)?;
    }
    Ok(())
}

/// A text field of a pending tuple: a `str`, or the `bytes` of a Python 2 pickle.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v?.deref_shared() {
        Value::Str(s) => Some(s.clone()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(format!("{f:.5}")),
        _ => None,
    }
}

/// An integer field of a pending tuple (Swift stores counts and flags as ints; a
/// numeric string is read too).
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v?.deref_shared() {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

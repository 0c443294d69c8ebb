//! Suffix hashes: what `REPLICATE` answers and replicators compare.
//!
//! A suffix hash is the md5 over the suffix's hash directories in sorted order, feeding
//! for each the files that decide its state as `<ts internal><ext>` (meta, then
//! tombstone, then data) — Swift's recipe, so a Swift replicator and ours agree on which
//! suffixes differ. The per-partition cache is Swift's: `hashes.pkl` (a pickled dict of
//! suffix → md5 or None, plus `valid` and `updated`), and `hashes.invalid`, a log of
//! suffixes a write touched, appended under the partition lock and folded into
//! `hashes.pkl` on the next `REPLICATE`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use md5::{Digest, Md5};
use ringsmith::pickle::Value;

use super::{cleanup, OnDiskState};
use crate::common::Timestamp;

pub const HASH_FILE: &str = "hashes.pkl";
pub const HASH_INVALIDATIONS_FILE: &str = "hashes.invalid";

/// The partition lock Swift's object server and replicator take: `<dir>/.lock`.
fn lock_partition(dir: &Path) -> io::Result<ringsmith::flock::LockGuard> {
    ringsmith::flock::lock(&dir.join(".lock"))
}

pub fn valid_suffix(s: &str) -> bool {
    s.len() == 3
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Records that `suffix` of the partition at `part_dir` changed.
pub fn invalidate_hash(part_dir: &Path, suffix: &str) -> io::Result<()> {
    fs::create_dir_all(part_dir)?;
    let _lock = lock_partition(part_dir)?;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part_dir.join(HASH_INVALIDATIONS_FILE))?;
    f.write_all(format!("{suffix}\n").as_bytes())
}

/// md5 of one suffix directory; `None` when the suffix is gone (it is then removed).
pub fn hash_suffix(
    suffix_dir: &Path,
    reclaim_before: Option<Timestamp>,
) -> io::Result<Option<String>> {
    let mut names: Vec<String> = match fs::read_dir(suffix_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    names.sort();
    let mut md5 = Md5::new();
    let mut any = false;
    for hsh in names {
        let hdir = suffix_dir.join(&hsh);
        if !hdir.is_dir() {
            continue;
        }
        let st: OnDiskState = cleanup(&hdir, reclaim_before)?;
        for input in st.hash_inputs() {
            md5.update(input.as_bytes());
            any = true;
        }
    }
    if !any {
        // Only removed when empty, as Swift does; the suffix then disappears from the dict.
        if fs::remove_dir(suffix_dir).is_ok() {
            return Ok(None);
        }
    }
    Ok(Some(hex::encode(md5.finalize())))
}

fn read_hashes(part_dir: &Path) -> (bool, BTreeMap<String, Option<String>>) {
    let mut out = BTreeMap::new();
    let Ok(bytes) = fs::read(part_dir.join(HASH_FILE)) else {
        return (false, out);
    };
    let Ok(loaded) = ringsmith::pickle::loads(&bytes) else {
        return (false, out);
    };
    let Value::Dict(items) = loaded.deref_shared() else {
        return (false, out);
    };
    let mut valid = false;
    for (k, v) in items {
        let Some(key) = k.as_str() else {
            continue;
        };
        if key == "valid" {
            valid = v.as_bool() == Some(true);
            continue;
        }
        if !valid_suffix(key) {
            continue;
        }
        out.insert(key.to_string(), v.as_str().map(str::to_string));
    }
    (valid, out)
}

fn write_hashes(part_dir: &Path, hashes: &BTreeMap<String, Option<String>>) -> io::Result<()> {
    let mut items = vec![
        (Value::Str("valid".into()), Value::Bool(true)),
        (
            Value::Str("updated".into()),
            Value::Float(Timestamp::now().as_f64()),
        ),
    ];
    for (k, v) in hashes {
        items.push((
            Value::Str(k.clone()),
            v.clone().map(Value::Str).unwrap_or(Value::None),
        ));
    }
    let bytes = ringsmith::pickle::dumps(&Value::Dict(items));
    ringsmith::atomic::write_bytes_atomic(&part_dir.join(HASH_FILE), 0o644, &bytes)
}

/// Swift's `get_hashes`: folds `hashes.invalid` into `hashes.pkl`, rehashes the suffixes
/// that need it (all of them when the cache is missing or invalid), saves the cache and
/// returns suffix → md5. A missing partition is an empty dict.
pub fn get_hashes(
    part_dir: &Path,
    recalculate: &[String],
    reclaim_before: Option<Timestamp>,
) -> io::Result<BTreeMap<String, String>> {
    if !part_dir.is_dir() {
        return Ok(BTreeMap::new());
    }
    let _lock = lock_partition(part_dir)?;
    let (valid, mut hashes) = read_hashes(part_dir);
    if !valid {
        hashes.clear();
        for e in fs::read_dir(part_dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if valid_suffix(&name) {
                hashes.insert(name, None);
            }
        }
    }
    if let Ok(inv) = fs::read_to_string(part_dir.join(HASH_INVALIDATIONS_FILE)) {
        for line in inv.lines() {
            let s = line.trim();
            if valid_suffix(s) {
                hashes.insert(s.to_string(), None);
            }
        }
    }
    for s in recalculate {
        if valid_suffix(s) {
            hashes.insert(s.clone(), None);
        }
    }
    let todo: Vec<String> = hashes
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for s in todo {
        match hash_suffix(&part_dir.join(&s), reclaim_before)? {
            Some(h) => {
                hashes.insert(s, Some(h));
            }
            None => {
                hashes.remove(&s);
            }
        }
    }
    write_hashes(part_dir, &hashes)?;
    // Truncated only after hashes.pkl reflects it; both under the partition lock.
    let _ = fs::write(part_dir.join(HASH_INVALIDATIONS_FILE), b"");
    Ok(hashes
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// The pickle `REPLICATE` answers: `{suffix: md5hex}` as str → str.
pub fn pickle_hashes(hashes: &BTreeMap<String, String>) -> Vec<u8> {
    let items = hashes
        .iter()
        .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
        .collect();
    ringsmith::pickle::dumps(&Value::Dict(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstone_only_suffix_matches_swift_observation() {
        // servers.md §2.7: a suffix holding only 1795313248.76961.ts hashes to
        // md5(b'1795313248.76961.ts').
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("500");
        let hdir = part.join("ff8/b149068873e38c458bf20c744e600ff8");
        fs::create_dir_all(&hdir).unwrap();
        fs::write(hdir.join("1795313248.76961.ts"), b"").unwrap();
        invalidate_hash(&part, "ff8").unwrap();
        let h = get_hashes(&part, &[], None).unwrap();
        assert_eq!(h["ff8"], "8959681ba92ba4904e94eed1d27ee58d");
        // Cached: removing the file is not seen until the suffix is invalidated.
        fs::remove_file(hdir.join("1795313248.76961.ts")).unwrap();
        assert_eq!(get_hashes(&part, &[], None).unwrap().len(), 1);
        invalidate_hash(&part, "ff8").unwrap();
        assert!(get_hashes(&part, &[], None).unwrap().is_empty());
        assert!(!part.join("ff8").exists());
    }
}

//! Suffix hashes of an erasure-coded partition, in the form Swift's reconstructor
//! compares: `{suffix: {frag_index: md5, None: md5}}`.
//!
//! Per hash directory (in sorted order, after cleanup): the kept `.meta` and tombstone
//! feed the `None` hasher as `<ts><ext>`; every kept fragment archive feeds the hasher
//! of its fragment index with `<ts>` (newest frag set first); a durable frag set feeds
//! `None` with `<ts>.durable`, whether durability came from a `#d` name or a legacy
//! `.durable` file, so both layouts hash alike. A suffix left empty is removed and
//! absent from the answer.
//!
//! Computed afresh on each call (no `hashes.pkl` cache for EC partitions yet).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use md5::{Digest, Md5};
use ringsmith::pickle::Value;

use super::{cleanup, hashes::valid_suffix};
use crate::common::Timestamp;

/// Per-suffix hashes, keyed by fragment index (`None` for the object-wide entry).
pub type EcSuffixHashes = BTreeMap<String, BTreeMap<Option<u32>, String>>;

pub fn ec_partition_hashes(
    part_dir: &Path,
    reclaim_before: Option<Timestamp>,
) -> io::Result<EcSuffixHashes> {
    let mut out = EcSuffixHashes::new();
    let rd = match fs::read_dir(part_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut suffixes: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| valid_suffix(n))
        .collect();
    suffixes.sort();
    for suffix in suffixes {
        if let Some(h) = ec_suffix_hash(&part_dir.join(&suffix), reclaim_before)? {
            out.insert(suffix, h);
        }
    }
    Ok(out)
}

fn ec_suffix_hash(
    suffix_dir: &Path,
    reclaim_before: Option<Timestamp>,
) -> io::Result<Option<BTreeMap<Option<u32>, String>>> {
    let mut names: Vec<String> = match fs::read_dir(suffix_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut hashers: BTreeMap<Option<u32>, Md5> = BTreeMap::new();
    for hsh in names {
        let hdir = suffix_dir.join(&hsh);
        if !hdir.is_dir() {
            continue;
        }
        let st = cleanup(&hdir, reclaim_before)?;
        if let Some(m) = &st.meta {
            hashers
                .entry(None)
                .or_default()
                .update(format!("{}.meta", m.timestamp.internal()));
        }
        if let Some(t) = &st.tombstone {
            hashers
                .entry(None)
                .or_default()
                .update(format!("{}.ts", t.timestamp.internal()));
        }
        if let Some(ec) = &st.ec {
            for (ts, set) in ec.frag_sets.iter().rev() {
                for (_, fi) in set {
                    hashers.entry(Some(*fi)).or_default().update(ts.internal());
                }
            }
            if let Some(d) = ec.durable_timestamp {
                hashers
                    .entry(None)
                    .or_default()
                    .update(format!("{}.durable", d.internal()));
            }
        }
    }
    if hashers.is_empty() && fs::remove_dir(suffix_dir).is_ok() {
        return Ok(None);
    }
    Ok(Some(
        hashers
            .into_iter()
            .map(|(k, h)| (k, hex::encode(h.finalize())))
            .collect(),
    ))
}

/// The REPLICATE answer: a pickle of `{suffix: {frag_index or None: md5}}`.
pub fn pickle_ec_hashes(hashes: &EcSuffixHashes) -> Vec<u8> {
    let items = hashes
        .iter()
        .map(|(suffix, per_frag)| {
            let inner = per_frag
                .iter()
                .map(|(fi, md5)| {
                    let key = fi.map_or(Value::None, |f| Value::Int(f as i64));
                    (key, Value::Str(md5.clone()))
                })
                .collect();
            (Value::Str(suffix.clone()), Value::Dict(inner))
        })
        .collect();
    ringsmith::pickle::dumps(&Value::Dict(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_of(parts: &[&str]) -> String {
        let mut h = Md5::new();
        for p in parts {
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn per_fragment_and_durable_entries() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("7");
        let hdir = part.join("abc/0123456789abcdef0123456789abcabc");
        fs::create_dir_all(&hdir).unwrap();
        for n in [
            "0000000002.00000#1#d.data",
            "0000000003.00000#1.data",
            "0000000004.00000.meta",
        ] {
            fs::write(hdir.join(n), b"").unwrap();
        }
        // A legacy layout of the same state hashes the same.
        let hdir2 = part.join("abd/0123456789abcdef0123456789abcabd");
        fs::create_dir_all(&hdir2).unwrap();
        for n in [
            "0000000002.00000#1.data",
            "0000000002.00000.durable",
            "0000000003.00000#1.data",
            "0000000004.00000.meta",
        ] {
            fs::write(hdir2.join(n), b"").unwrap();
        }
        fs::create_dir_all(part.join("abe")).unwrap();
        let h = ec_partition_hashes(&part, None).unwrap();
        assert_eq!(h.len(), 2, "{h:?}");
        let abc = &h["abc"];
        assert_eq!(
            abc[&None],
            md5_of(&["0000000004.00000.meta", "0000000002.00000.durable"])
        );
        assert_eq!(
            abc[&Some(1)],
            md5_of(&["0000000003.00000", "0000000002.00000"])
        );
        assert_eq!(h["abc"], h["abd"]);
        assert!(!part.join("abe").exists());
        let p = ringsmith::pickle::loads(&pickle_ec_hashes(&h)).unwrap();
        assert!(format!("{p:?}").contains("Int(1)"));
    }
}

//! The reconstructor's pushes, with SSYNC (`ssync_sender`):
//!
//! - **Revert**: a partition of an EC ring on a local device that is not one of its
//!   primaries holds handoff fragment archives (written while a primary was down). Each
//!   fragment index's archives go to the primary that owns that index; once it holds
//!   them, the local copies are removed. Tombstones on a handoff go to every primary.
//!   A partition left with no objects is removed.
//! - **Partner sync**: a primary sends its tombstones and `.meta` updates to a partner
//!   whose suffix hashes differ, so a DELETE or POST one primary missed converges (the
//!   fragment data itself is rebuilt by the pulling side, `object_reconstructor`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ringsmith::device::Device;

use super::ssync_sender::{ssync, SyncSource, Timeouts};
use crate::common::Timestamp;
use crate::object::diskfile::{self, ec, hashes};

/// What a revert of one partition did.
#[derive(Debug, Default)]
pub struct RevertCounts {
    pub reverted: u64,
    pub failures: u64,
}

/// Per fragment index, the suffixes holding an archive of it; and the suffixes
/// holding tombstones.
fn handoff_contents(part_dir: &Path) -> (BTreeMap<u32, BTreeSet<String>>, BTreeSet<String>) {
    let mut frags: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut tombs = BTreeSet::new();
    for suffix in std::fs::read_dir(part_dir).into_iter().flatten().flatten() {
        let s = suffix.file_name().to_string_lossy().into_owned();
        if !hashes::valid_suffix(&s) {
            continue;
        }
        for hash_dir in std::fs::read_dir(suffix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(hash_dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().into_owned();
                if let Some((_, fi, _)) = ec::parse_fragment_name(&name) {
                    frags.entry(fi).or_default().insert(s.clone());
                } else if name.ends_with(".ts") {
                    tombs.insert(s.clone());
                }
            }
        }
    }
    (frags, tombs)
}

/// Removes the reverted archive `<ts>#<fi>[#d].data` of `hash` (and, when no archive is
/// left, what only described it: `.meta`, tombstones synced, the directory).
fn remove_reverted(part_dir: &Path, hash: &str, ts: Timestamp, frag_index: Option<u32>) {
    let suffix = &hash[hash.len() - 3..];
    let dir = part_dir.join(suffix).join(hash);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        let reverted = match (ec::parse_fragment_name(n), frag_index) {
            (Some((t, fi, _)), Some(want)) => t == ts && fi == want,
            (None, None) => n == &format!("{}.ts", ts.internal()),
            _ => false,
        };
        if reverted {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
    let left: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let holds_object = left
        .iter()
        .any(|n| n.ends_with(".data") || n.ends_with(".ts"));
    if !holds_object {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = diskfile::fsync_dir(&part_dir.join(suffix));
    let _ = hashes::invalidate_hash(part_dir, suffix);
}

/// Removes a partition directory that holds no object any more.
fn remove_if_empty(part_dir: &Path) {
    let holds_suffix = std::fs::read_dir(part_dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            hashes::valid_suffix(&n)
                && std::fs::read_dir(e.path()).is_ok_and(|mut rd| rd.next().is_some())
        });
    if !holds_suffix {
        let _ = std::fs::remove_dir_all(part_dir);
    }
}

/// Reverts the handoff partition at `part_dir` to its `primaries` (fragment index =
/// position mod `width`).
pub async fn revert_partition(
    part_dir: &Path,
    partition: u32,
    policy_index: u32,
    width: usize,
    primaries: &[Device],
    t: &Timeouts,
) -> RevertCounts {
    let mut counts = RevertCounts::default();
    let pd = part_dir.to_path_buf();
    let Ok((frags, tombs)) = tokio::task::spawn_blocking(move || handoff_contents(&pd)).await
    else {
        counts.failures += 1;
        return counts;
    };
    for (fi, suffixes) in frags {
        let Some(node) = primaries
            .iter()
            .enumerate()
            .find(|(pos, _)| pos % width == fi as usize)
            .map(|(_, d)| d)
        else {
            continue;
        };
        let source = SyncSource {
            part_dir: part_dir.to_path_buf(),
            partition,
            policy_index,
            frag_index: Some(fi),
            suffixes: suffixes.into_iter().collect(),
            send_data: true,
            include_non_durable: true,
        };
        match ssync(&source, node, Some(fi), t).await {
            Ok(outcome) => {
                let pd = part_dir.to_path_buf();
                let n = outcome.in_sync.len() as u64;
                let _ = tokio::task::spawn_blocking(move || {
                    for (hash, ts) in outcome.in_sync {
                        remove_reverted(&pd, &hash, ts, Some(fi));
                    }
                })
                .await;
                counts.reverted += n;
            }
            Err(e) => {
                tracing::warn!(partition, frag_index = fi, node = %node.device, error = %e, "revert failed; keeping the handoff archives");
                counts.failures += 1;
            }
        }
    }
    if !tombs.is_empty() {
        // Tombstones belong on every primary; removed here only once all hold them.
        let mut synced: Option<BTreeMap<String, Timestamp>> = None;
        for (pos, node) in primaries.iter().enumerate() {
            let source = SyncSource {
                part_dir: part_dir.to_path_buf(),
                partition,
                policy_index,
                frag_index: Some((pos % width) as u32),
                suffixes: tombs.iter().cloned().collect(),
                send_data: false,
                include_non_durable: false,
            };
            match ssync(&source, node, Some((pos % width) as u32), t).await {
                Ok(o) => {
                    let only_tombs: BTreeMap<String, Timestamp> = o.in_sync;
                    synced = Some(match synced {
                        None => only_tombs,
                        Some(prev) => prev
                            .into_iter()
                            .filter(|(h, ts)| only_tombs.get(h) == Some(ts))
                            .collect(),
                    });
                }
                Err(e) => {
                    tracing::warn!(partition, node = %node.device, error = %e, "tombstone revert failed");
                    counts.failures += 1;
                    synced = Some(BTreeMap::new());
                }
            }
        }
        let pd = part_dir.to_path_buf();
        let synced = synced.unwrap_or_default();
        let _ = tokio::task::spawn_blocking(move || {
            for (hash, ts) in synced {
                // Only hash directories whose state is that tombstone.
                let dir = pd.join(&hash[hash.len() - 3..]).join(&hash);
                if let Ok(diskfile::Lookup::Deleted(t)) = diskfile::open(&dir, None) {
                    if t == ts {
                        remove_reverted(&pd, &hash, ts, None);
                    }
                }
            }
        })
        .await;
    }
    let pd = part_dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || remove_if_empty(&pd)).await;
    counts
}

//! The rings as the proxy sees them: placement lookups plus reload-on-change.
//!
//! A proxy answers "which devices hold this name" on every request, and an operator must
//! be able to push a rebalanced `ring.gz` without restarting it. So each ring sits behind
//! a [`RingSlot`]: lookups take a cheap `Arc` snapshot, and at most once per
//! `ring_check_interval` the slot `stat`s its file and, if the mtime or size changed,
//! loads the new file and swaps the snapshot. A file that fails to load (a half-copied
//! ring, say) keeps the old snapshot in service and is logged, so a bad push never takes
//! the proxy down.
//!
//! Placement is the core library's [`ringsmith::ring::Ring`] (Swift's `get_part_nodes` and
//! `get_more_nodes`, checked against Swift on many paths); this module only turns its
//! devices into the [`Node`]s the proxy routes to.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ringsmith::device::Device;
use ringsmith::hash::HashConfig;
pub use ringsmith::ring::RingError;

/// One device of a ring, as much of it as routing needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: u32,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u16,
    pub device: String,
    /// Position among the primaries, or `None` for a handoff.
    pub index: Option<usize>,
}

impl Node {
    fn from_device(d: &Device, index: Option<usize>) -> Node {
        Node {
            id: d.id,
            region: d.region,
            zone: d.zone,
            ip: d.ip.clone(),
            port: d.port as u16,
            device: d.device.clone(),
            index,
        }
    }

    /// `ip:port/device`, the key error limiting and logs use.
    pub fn key(&self) -> String {
        format!("{}:{}/{}", self.ip, self.port, self.device)
    }

    pub fn host(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

/// A loaded ring.
pub struct Ring {
    inner: ringsmith::ring::Ring,
}

impl Ring {
    pub fn load(path: &Path, hash: &HashConfig) -> Result<Ring, RingError> {
        Ok(Ring {
            inner: ringsmith::ring::Ring::load(path, hash.clone())?,
        })
    }

    /// Replica rows, rounded up (what sizes `request_node_count`).
    pub fn replica_count(&self) -> usize {
        self.inner.replica_count().ceil() as usize
    }

    pub fn get_part(&self, a: &str, c: Option<&str>, o: Option<&str>) -> usize {
        // Names were validated (non-empty container whenever an object is given).
        self.inner.get_part(a, c, o).unwrap_or(0) as usize
    }

    /// The primaries of a partition, deduplicated, with `index` set.
    pub fn part_nodes(&self, part: usize) -> Vec<Node> {
        self.inner
            .get_part_nodes(part as u32)
            .iter()
            .enumerate()
            .map(|(i, d)| Node::from_device(d, Some(i)))
            .collect()
    }

    /// Handoffs in Swift's `get_more_nodes` order.
    pub fn more_nodes(&self, part: usize) -> Vec<Node> {
        self.inner
            .get_more_nodes(part as u32)
            .map(|d| Node::from_device(d, None))
            .collect()
    }
}

/// A ring file kept fresh: see the module docs.
pub struct RingSlot {
    path: PathBuf,
    hash: HashConfig,
    reload_interval: Duration,
    state: Mutex<SlotState>,
}

struct SlotState {
    ring: Arc<Ring>,
    stamp: (Option<SystemTime>, u64),
    checked: Instant,
}

fn file_stamp(path: &Path) -> (Option<SystemTime>, u64) {
    match std::fs::metadata(path) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    }
}

impl RingSlot {
    pub fn open(
        path: PathBuf,
        hash: HashConfig,
        reload_interval: Duration,
    ) -> Result<RingSlot, RingError> {
        let stamp = file_stamp(&path);
        let ring = Arc::new(Ring::load(&path, &hash)?);
        Ok(RingSlot {
            path,
            hash,
            reload_interval,
            state: Mutex::new(SlotState {
                ring,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The current ring, reloading it first if the file changed.
    pub fn get(&self) -> Arc<Ring> {
        let mut st = self.state.lock().expect("ring slot lock");
        if st.checked.elapsed() >= self.reload_interval {
            st.checked = Instant::now();
            let stamp = file_stamp(&self.path);
            if stamp != st.stamp && stamp.0.is_some() {
                match Ring::load(&self.path, &self.hash) {
                    Ok(ring) => {
                        tracing::info!(ring = %self.path.display(), "reloaded changed ring");
                        st.ring = Arc::new(ring);
                        st.stamp = stamp;
                    }
                    Err(e) => tracing::error!(error = %e, "keeping the previous ring"),
                }
            }
        }
        st.ring.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsmith::ring::{FormatVersion, RingData};

    fn dev(id: u32, zone: u32) -> Device {
        Device {
            id,
            region: 1,
            zone,
            ip: format!("127.0.0.{}", id + 1),
            port: 6200,
            replication_ip: format!("127.0.0.{}", id + 1),
            replication_port: 6200,
            device: format!("d{id}"),
            weight: 1.0,
            meta: String::new(),
            extra: Default::default(),
        }
    }

    fn save(path: &Path, table: Vec<Vec<u32>>) {
        RingData {
            devs: (0..4).map(|i| Some(dev(i, i + 1))).collect(),
            replica2part2dev: table,
            part_shift: 30,
            next_part_power: None,
            version: Some(1),
            dev_id_bytes: 2,
        }
        .save(path, FormatVersion::V1)
        .unwrap();
    }

    #[test]
    fn primaries_handoffs_and_reload_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object.ring.gz");
        save(
            &path,
            vec![vec![0, 1, 2, 3], vec![1, 2, 3, 0], vec![2, 3, 0, 1]],
        );
        let slot = RingSlot::open(path.clone(), HashConfig::new("", "x"), Duration::ZERO).unwrap();
        let ring = slot.get();
        let p = ring.part_nodes(1);
        assert_eq!(p.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(p[2].index, Some(2));
        assert_eq!(
            ring.more_nodes(1).iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![0]
        );

        // A new ring file is picked up without a restart...
        std::thread::sleep(Duration::from_millis(20));
        save(
            &path,
            vec![vec![3, 3, 3, 3], vec![2, 2, 2, 2], vec![1, 1, 1, 1]],
        );
        assert_eq!(
            slot.get()
                .part_nodes(1)
                .iter()
                .map(|n| n.id)
                .collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        // ...and a broken one is refused while the last good ring keeps serving.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&path, b"not a ring").unwrap();
        assert_eq!(slot.get().part_nodes(1).len(), 3);
    }
}

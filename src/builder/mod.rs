//! The ring builder: Swift's `RingBuilder` state, its `.builder` file, the device
//! operations and the rebalancer.

use std::collections::BTreeMap;

use crate::device::{Device, Tier};

pub use crate::ring::NONE_DEV;

/// A device as the builder tracks it: the ring's device plus its assignment counters.
#[derive(Clone, Debug, PartialEq)]
pub struct BuilderDevice {
    pub dev: Device,
    /// Partition-replicas assigned to this device.
    pub parts: u64,
    /// How many more (negative: fewer) partition-replicas it wants. Swift stores a float for
    /// zero-weight devices of fractional-replica rings (`-parts * replicas`).
    pub parts_wanted: f64,
}

/// Swift 2.38's `RingBuilder` state, field for field (see `../shared/reference/ring.md` §1.1).
#[derive(Clone, Debug, PartialEq)]
pub struct RingBuilder {
    pub part_power: u32,
    pub next_part_power: Option<u32>,
    pub replicas: f64,
    pub min_part_hours: u32,
    /// Indexed by device id; `None` for holes.
    pub devs: Vec<Option<BuilderDevice>>,
    pub devs_changed: bool,
    pub version: u64,
    pub overload: f64,
    /// `None` until the first rebalance. Unassigned slots hold [`NONE_DEV`] in memory.
    pub replica2part2dev: Option<Vec<Vec<u32>>>,
    /// 2 or 4: the id width the table is written with.
    pub dev_id_bytes: u8,
    pub last_part_moves_epoch: u64,
    /// Hours since each partition last moved, saturating at 255.
    pub last_part_moves: Vec<u8>,
    /// Swift turns `_last_part_moves` into a plain list after a partition power increase;
    /// kept so a round trip through Ringsmith gives Swift back the same shape.
    pub last_part_moves_is_list: bool,
    pub last_part_gather_start: u64,
    pub dispersion_graph: BTreeMap<Tier, Vec<u64>>,
    pub dispersion: Option<f64>,
    /// Ids of devices marked for removal at the next rebalance (they stay in `devs` until then).
    pub remove_devs: Vec<u32>,
    /// Assigned at the first save (uuid4 hex), stable afterwards.
    pub id: Option<String>,
}

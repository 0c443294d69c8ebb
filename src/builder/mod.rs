//! The ring builder: Swift's `RingBuilder` state, its `.builder` file, the device
//! operations and the rebalancer.

use std::collections::BTreeMap;

use crate::device::{Device, Tier};

pub use crate::ring::NONE_DEV;

pub mod file;
pub use file::BuilderFileError;

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

/// A device to add (swift-ring-builder `add`). `id` None takes the first hole in `devs`;
/// replication address and port default to the service ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewDevice {
    pub id: Option<u32>,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u32,
    pub replication_ip: Option<String>,
    pub replication_port: Option<u32>,
    pub device: String,
    pub weight: f64,
    pub meta: String,
}

/// Which devices a command applies to (swift-ring-builder search values and `--id/--ip/...`
/// options). Every given key must match; `meta` matches as a substring; addresses are
/// compared after normalisation (lower case, canonical IPv6).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceFilter {
    pub id: Option<u32>,
    pub region: Option<u32>,
    pub zone: Option<u32>,
    pub ip: Option<String>,
    pub port: Option<u32>,
    pub replication_ip: Option<String>,
    pub replication_port: Option<u32>,
    pub device: Option<String>,
    pub meta: Option<String>,
    pub weight: Option<f64>,
}

/// The changes of swift-ring-builder `set_info`; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DevInfoChange {
    pub ip: Option<String>,
    pub port: Option<u32>,
    pub replication_ip: Option<String>,
    pub replication_port: Option<u32>,
    pub device: Option<String>,
    pub meta: Option<String>,
}

/// How to run a rebalance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebalanceOptions {
    /// Same seed and same builder give the same ring, on any machine.
    pub seed: Option<u64>,
    /// The clock for min_part_hours bookkeeping (seconds since the epoch); now when None.
    pub now_secs: Option<u64>,
}

/// What a rebalance did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RebalanceOutcome {
    /// Partition-replica slots whose device changed (Swift's "Reassigned N").
    pub changed_parts: u64,
    pub balance: f64,
    pub removed_devs: u64,
    pub dispersion: f64,
    /// False when a target could not be met this time (see `unmet`).
    pub finished: bool,
    /// Why a target was not met: which tier, how much overload would be needed, or
    /// min_part_hours holding partitions back.
    pub unmet: Vec<String>,
}

//! The ring a server loads: devices, the replica -> partition -> device table, and the
//! lookups Swift's `Ring` class offers.
//!
//! * [`RingData`] is what a `ring.gz` holds, field for field like Swift's `RingData`;
//!   [`format`](mod@format) reads and writes it in Swift's formats v1 and v2.
//! * [`Ring`] (in [`lookup`]) is the runtime view servers and `get-nodes` use: loaded once,
//!   validated, re-laid out for fast lookups, answering `get_part`, `get_part_nodes`,
//!   `get_nodes` and `get_more_nodes` exactly as Swift 2.38 does.

use crate::device::Device;

pub mod format;
pub mod lookup;
#[doc(hidden)]
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;

pub use format::{FormatVersion, LoadedRing, RingError, RingProblem};
pub use lookup::{Handoffs, PartNodes, Ring};

/// Marks an unassigned slot in an in-memory table, whatever the id width on disk
/// (2-byte tables store 0xFFFF there, 4-byte ones 0xFFFF_FFFF).
pub const NONE_DEV: u32 = u32::MAX;

/// What a `ring.gz` holds (Swift's `RingData`).
#[derive(Clone, Debug, PartialEq)]
pub struct RingData {
    /// Indexed by device id; `None` for holes.
    pub devs: Vec<Option<Device>>,
    /// Row r is replica r; column p is partition p. The last row may be shorter
    /// (fractional replica counts).
    pub replica2part2dev: Vec<Vec<u32>>,
    /// `32 - part_power`.
    pub part_shift: u32,
    pub next_part_power: Option<u32>,
    pub version: Option<u64>,
    /// 2 or 4: the width of device ids on disk.
    pub dev_id_bytes: u8,
}

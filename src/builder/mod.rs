//! The ring builder: Swift's `RingBuilder` state, its `.builder` file, the device
//! operations and the rebalancer.

use std::collections::BTreeMap;

use crate::device::{Device, Tier};

pub mod syntax;

pub use crate::ring::NONE_DEV;

pub mod composite;
pub mod declare;
pub mod file;
pub use file::BuilderFileError;
mod dispersion;
mod error;
mod ops;
mod plan;
mod rebalance;
pub mod scenario;
#[cfg(test)]
mod tests;

pub use dispersion::{tier_name, DispersionReport, TierDispersion};
pub use error::BuilderError;
pub use ops::normalize_address;
pub use rebalance::{DeviceMoves, RebalancePlan, TierMoves};

/// Balance reported for a zero-weight device that still holds partitions.
pub const MAX_BALANCE: f64 = 999.99;

/// A device as the builder tracks it: the ring's device plus its assignment counters.
#[derive(Clone, Debug, PartialEq)]
pub struct BuilderDevice {
    pub dev: Device,
    /// Partition-replicas assigned to this device.
    pub parts: u64,
    /// How many more (negative: fewer) partition-replicas it wants. Swift stores a float for
    /// zero-weight devices of fractional-replica rings (`-parts * replicas`). Set by every
    /// rebalance and nowhere else: `None` for a device added since the last one (Swift's
    /// device dict then has no such key).
    pub parts_wanted: Option<f64>,
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

impl NewDevice {
    /// The device `swift-ring-builder add rREGIONzZONE-IP:PORT/DEVICE WEIGHT` adds: the
    /// first free id, replication address and port the service ones, no meta.
    pub fn new(
        region: u32,
        zone: u32,
        ip: impl Into<String>,
        port: u32,
        device: impl Into<String>,
        weight: f64,
    ) -> NewDevice {
        NewDevice {
            region,
            zone,
            ip: ip.into(),
            port,
            device: device.into(),
            weight,
            ..NewDevice::default()
        }
    }

    /// The same device with id `id` instead of the first free one.
    pub fn with_id(self, id: u32) -> NewDevice {
        NewDevice {
            id: Some(id),
            ..self
        }
    }
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

impl RingBuilder {
    /// Checks the table: every slot on a real device, no partition twice on one device,
    /// only the last row short, device counters agreeing with the table. With `stats`,
    /// returns the partition-replicas per device id and the worst balance.
    pub fn validate(&self, stats: bool) -> Result<Option<(Vec<u64>, f64)>, BuilderError> {
        let table = match &self.replica2part2dev {
            Some(t) if !t.is_empty() => t,
            _ => {
                return Err(BuilderError::Validation(
                    "_replica2part2dev empty; did you forget to rebalance?".into(),
                ))
            }
        };
        let parts_on_devs: u64 = self.iter_devs().map(|d| d.parts).sum();
        let parts_in_map: u64 = table.iter().map(|r| r.len() as u64).sum();
        if parts_on_devs != parts_in_map {
            return Err(BuilderError::Validation(format!(
                "All partitions are not double accounted for: {parts_on_devs} != {parts_in_map}"
            )));
        }
        let parts = self.parts();
        let int_replicas = self.replicas.ceil() as usize;
        let mut usage = vec![0u64; self.devs.len()];
        for (replica, row) in table.iter().enumerate() {
            if row.len() < parts && replica + 1 < int_replicas {
                return Err(BuilderError::Validation(format!(
                    "The partition assignments of replica {replica} were shorter than expected \
                     ({} < {parts}) - this should only happen for the last replica",
                    row.len()
                )));
            }
            if row.len() > parts {
                return Err(BuilderError::Validation(format!(
                    "The partition assignments of replica {replica} are longer than the \
                     {parts} partitions"
                )));
            }
            for (part, &d) in row.iter().enumerate() {
                if d == NONE_DEV || self.dev(d).is_none() {
                    return Err(BuilderError::Validation(format!(
                        "Partition {part}, replica {replica} was not allocated to a device."
                    )));
                }
                usage[d as usize] += 1;
            }
        }
        for dev in self.iter_devs() {
            if usage[dev.dev.id as usize] != dev.parts {
                return Err(BuilderError::Validation(format!(
                    "Device {} holds {} partition-replicas but counts {}",
                    dev.dev.id, usage[dev.dev.id as usize], dev.parts
                )));
            }
        }
        let mut devs_for_part: Vec<u32> = Vec::with_capacity(table.len());
        for part in 0..parts {
            devs_for_part.clear();
            for row in table {
                if let Some(&d) = row.get(part) {
                    devs_for_part.push(d);
                }
            }
            for i in 1..devs_for_part.len() {
                if devs_for_part[..i].contains(&devs_for_part[i]) {
                    let list: Vec<String> = devs_for_part.iter().map(|d| d.to_string()).collect();
                    return Err(BuilderError::Validation(format!(
                        "The partition {part} has been assigned to duplicate devices [{}]",
                        list.join(", ")
                    )));
                }
            }
        }
        if !stats {
            return Ok(None);
        }
        let weight_of_one_part = self.weight_of_one_part()?;
        let mut worst = 0.0f64;
        for dev in self.iter_devs() {
            let used = usage[dev.dev.id as usize];
            if dev.dev.weight == 0.0 {
                if used > 0 {
                    worst = MAX_BALANCE;
                    break;
                }
                continue;
            }
            let skew = (100.0 * used as f64 / (dev.dev.weight * weight_of_one_part) - 100.0).abs();
            if skew > worst {
                worst = skew;
            }
        }
        Ok(Some((usage, worst)))
    }

    /// Per device: how far its partition count is from its weight's share, in percent
    /// (`MAX_BALANCE` for a zero-weight device still holding partitions). Overload and
    /// dispersion are not considered.
    pub fn balance_per_dev(&self) -> Vec<(u32, f64)> {
        let Ok(weight_of_one_part) = self.weight_of_one_part() else {
            return self.iter_devs().map(|d| (d.dev.id, 0.0)).collect();
        };
        self.iter_devs()
            .map(|d| {
                let b = if d.dev.weight == 0.0 {
                    if d.parts > 0 {
                        MAX_BALANCE
                    } else {
                        0.0
                    }
                } else {
                    100.0 * d.parts as f64 / (d.dev.weight * weight_of_one_part) - 100.0
                };
                (d.dev.id, b)
            })
            .collect()
    }

    /// The worst absolute device balance.
    pub fn get_balance(&self) -> f64 {
        self.balance_per_dev()
            .into_iter()
            .fold(0.0, |acc, (_, b)| if b.abs() > acc { b.abs() } else { acc })
    }
}

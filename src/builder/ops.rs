//! The builder's device and ring operations, with Swift's semantics: which ones bump the
//! version (ring.md §1.2), which ones mark the devices changed, and Swift's errors.
//!
//! Nothing here moves partitions: every change takes effect at the next rebalance.

use std::net::{IpAddr, Ipv6Addr};

use super::error::{py_float, BuilderError};
use super::{BuilderDevice, DevInfoChange, DeviceFilter, NewDevice, RingBuilder, NONE_DEV};
use crate::device::Device;

/// Largest id a 2-byte table can hold (0xFFFF marks an unassigned slot).
const MAX_DEV_ID_2_BYTES: u32 = 0xFFFE;

impl RingBuilder {
    /// A new, empty builder: `2^part_power` partitions, `replicas` copies (may be fractional,
    /// at least 1), partitions staying put for `min_part_hours` after a move.
    pub fn new(part_power: u32, replicas: f64, min_part_hours: u32) -> Result<Self, BuilderError> {
        if part_power > 32 {
            return Err(BuilderError::InvalidArgument(format!(
                "part_power must be at most 32 (was {part_power})"
            )));
        }
        if replicas.is_nan() || replicas < 1.0 || !replicas.is_finite() {
            return Err(BuilderError::InvalidArgument(format!(
                "replicas must be at least 1 (was {replicas:.6})"
            )));
        }
        let parts = 1usize << part_power;
        Ok(RingBuilder {
            part_power,
            next_part_power: None,
            replicas,
            min_part_hours,
            devs: Vec::new(),
            devs_changed: false,
            version: 0,
            overload: 0.0,
            replica2part2dev: None,
            dev_id_bytes: 2,
            last_part_moves_epoch: 0,
            last_part_moves: vec![0; parts],
            last_part_moves_is_list: false,
            last_part_gather_start: 0,
            dispersion_graph: Default::default(),
            dispersion: Some(0.0),
            remove_devs: Vec::new(),
            id: None,
        })
    }

    /// `2^part_power`.
    pub fn parts(&self) -> usize {
        1usize << self.part_power
    }

    /// The device with this id, if there is one (devices pending removal included).
    pub fn dev(&self, id: u32) -> Option<&BuilderDevice> {
        self.devs.get(id as usize).and_then(|d| d.as_ref())
    }

    fn dev_mut(&mut self, id: u32) -> Result<&mut BuilderDevice, BuilderError> {
        self.devs
            .get_mut(id as usize)
            .and_then(|d| d.as_mut())
            .ok_or(BuilderError::UnknownDevice(id))
    }

    /// All devices, in id order, holes skipped.
    pub fn iter_devs(&self) -> impl Iterator<Item = &BuilderDevice> {
        self.devs.iter().flatten()
    }

    /// True once the ring has been rebalanced at least once.
    pub fn ever_rebalanced(&self) -> bool {
        self.replica2part2dev.is_some()
    }

    /// True if the device is marked for removal at the next rebalance.
    pub fn is_marked_for_removal(&self, id: u32) -> bool {
        self.remove_devs.contains(&id)
    }

    /// Add a device; returns its id (the first hole in `devs` unless one is given).
    /// Ids past 65,534 switch the table to 4-byte ids.
    pub fn add_dev(&mut self, new: NewDevice) -> Result<u32, BuilderError> {
        let id = match new.id {
            Some(id) => id,
            None => self
                .devs
                .iter()
                .position(|d| d.is_none())
                .unwrap_or(self.devs.len()) as u32,
        };
        if id == NONE_DEV {
            return Err(BuilderError::InvalidArgument(format!(
                "Device id {id} is too large"
            )));
        }
        if self.dev(id).is_some() {
            return Err(BuilderError::DuplicateDevice(id));
        }
        if !new.weight.is_finite() || new.weight < 0.0 {
            return Err(BuilderError::InvalidArgument(format!(
                "Invalid weight {} for new device",
                py_float(new.weight)
            )));
        }
        if id > MAX_DEV_ID_2_BYTES && self.dev_id_bytes < 4 {
            self.dev_id_bytes = 4;
        }
        while self.devs.len() <= id as usize {
            self.devs.push(None);
        }
        let replication_ip = new.replication_ip.unwrap_or_else(|| new.ip.clone());
        let replication_port = new.replication_port.unwrap_or(new.port);
        self.devs[id as usize] = Some(BuilderDevice {
            dev: Device {
                id,
                region: new.region,
                zone: new.zone,
                ip: new.ip,
                port: new.port,
                replication_ip,
                replication_port,
                device: new.device,
                weight: new.weight,
                meta: new.meta,
                extra: Default::default(),
            },
            parts: 0,
            parts_wanted: None,
        });
        self.devs_changed = true;
        self.version += 1;
        Ok(id)
    }

    /// Mark a device for removal: weight 0 now, drained of every replica (whatever
    /// min_part_hours says) and deleted at the next rebalance.
    pub fn remove_dev(&mut self, id: u32) -> Result<(), BuilderError> {
        let dev = self.dev_mut(id)?;
        dev.dev.weight = 0.0;
        if !self.remove_devs.contains(&id) {
            self.remove_devs.push(id);
        }
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    fn check_not_removed(&self, id: u32, what: &'static str) -> Result<(), BuilderError> {
        if self.dev(id).is_none() {
            return Err(BuilderError::UnknownDevice(id));
        }
        if self.is_marked_for_removal(id) {
            return Err(BuilderError::MarkedForRemoval { what, id });
        }
        Ok(())
    }

    /// Change a device's weight (0 drains it gradually, respecting min_part_hours).
    pub fn set_dev_weight(&mut self, id: u32, weight: f64) -> Result<(), BuilderError> {
        self.check_not_removed(id, "weight")?;
        if !weight.is_finite() || weight < 0.0 {
            return Err(BuilderError::InvalidArgument(format!(
                "Invalid weight {} for dev_id {id}",
                py_float(weight)
            )));
        }
        self.dev_mut(id)?.dev.weight = weight;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    pub fn set_dev_region(&mut self, id: u32, region: u32) -> Result<(), BuilderError> {
        self.check_not_removed(id, "region")?;
        self.dev_mut(id)?.dev.region = region;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    pub fn set_dev_zone(&mut self, id: u32, zone: u32) -> Result<(), BuilderError> {
        self.check_not_removed(id, "zone")?;
        self.dev_mut(id)?.dev.zone = zone;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    /// swift-ring-builder `set_info`: addresses, device name, meta. Like Swift this neither
    /// bumps the version nor marks the devices changed. Changing the ip moves the device
    /// to another server tier, which the next rebalance accounts for.
    pub fn set_dev_info(&mut self, id: u32, change: DevInfoChange) -> Result<(), BuilderError> {
        let dev = &mut self.dev_mut(id)?.dev;
        if let Some(ip) = change.ip {
            dev.ip = ip;
        }
        if let Some(port) = change.port {
            dev.port = port;
        }
        if let Some(ip) = change.replication_ip {
            dev.replication_ip = ip;
        }
        if let Some(port) = change.replication_port {
            dev.replication_port = port;
        }
        if let Some(device) = change.device {
            dev.device = device;
        }
        if let Some(meta) = change.meta {
            dev.meta = meta;
        }
        Ok(())
    }

    /// Change the replica count (fractional allowed, at least 1). The table's rows grow or
    /// shrink at the next rebalance; devices count as changed when the slot count changes.
    pub fn set_replicas(&mut self, replicas: f64) -> Result<(), BuilderError> {
        if replicas.is_nan() || replicas < 1.0 || !replicas.is_finite() {
            return Err(BuilderError::InvalidArgument(format!(
                "replicas must be at least 1 (was {replicas:.6})"
            )));
        }
        let parts = self.parts() as f64;
        if (parts * self.replicas) as u64 != (parts * replicas) as u64 {
            self.devs_changed = true;
        }
        self.replicas = replicas;
        Ok(())
    }

    /// Overload as a fraction (0.1 = 10 %).
    pub fn set_overload(&mut self, overload: f64) -> Result<(), BuilderError> {
        if !overload.is_finite() || overload < 0.0 {
            return Err(BuilderError::InvalidArgument(format!(
                "Invalid overload value: {}",
                py_float(overload)
            )));
        }
        self.overload = overload;
        Ok(())
    }

    pub fn set_min_part_hours(&mut self, min_part_hours: u32) {
        self.min_part_hours = min_part_hours;
    }

    /// Let every partition move at the next rebalance.
    pub fn pretend_min_part_hours_passed(&mut self) {
        self.last_part_moves_epoch = 0;
        for hours in &mut self.last_part_moves {
            *hours = 0xff;
        }
    }

    /// Seconds until min_part_hours have passed since the last rebalance.
    pub fn min_part_seconds_left(&self, now_secs: u64) -> u64 {
        let elapsed = now_secs.saturating_sub(self.last_part_moves_epoch);
        (self.min_part_hours as u64 * 3600).saturating_sub(elapsed)
    }

    /// Start a partition power increase; false if one is already under way.
    pub fn prepare_increase_partition_power(&mut self) -> bool {
        if self.next_part_power.is_some_and(|n| n != 0) {
            return false;
        }
        self.next_part_power = Some(self.part_power + 1);
        self.version += 1;
        true
    }

    /// Double the partitions: partition p becomes 2p and 2p+1 on the same devices.
    pub fn increase_partition_power(&mut self) -> bool {
        match self.next_part_power {
            Some(n) if n != 0 && n == self.part_power + 1 => {}
            _ => return false,
        }
        if self.part_power >= 32 {
            return false;
        }
        if let Some(table) = &mut self.replica2part2dev {
            for row in table.iter_mut() {
                let mut doubled = Vec::with_capacity(row.len() * 2);
                for &d in row.iter() {
                    doubled.push(d);
                    doubled.push(d);
                }
                *row = doubled;
            }
        }
        for dev in self.devs.iter_mut().flatten() {
            dev.parts *= 2;
        }
        let mut moves = Vec::with_capacity(self.last_part_moves.len() * 2);
        for &m in &self.last_part_moves {
            moves.push(m);
            moves.push(m);
        }
        self.last_part_moves = moves;
        self.last_part_moves_is_list = true;
        self.part_power += 1;
        self.version += 1;
        true
    }

    /// Abandon a prepared increase (only before `increase_partition_power`).
    pub fn cancel_increase_partition_power(&mut self) -> bool {
        match self.next_part_power {
            Some(n) if n != 0 && n == self.part_power + 1 => {}
            _ => return false,
        }
        self.next_part_power = Some(self.part_power);
        self.version += 1;
        true
    }

    /// Close an increase (or a cancelled one) once the relinker's cleanup is done.
    pub fn finish_increase_partition_power(&mut self) -> bool {
        match self.next_part_power {
            Some(n) if n != 0 && n == self.part_power => {
                self.next_part_power = None;
                self.version += 1;
                true
            }
            _ => false,
        }
    }

    /// Ids of the devices matching the filter, in id order.
    pub fn search_devs(&self, filter: &DeviceFilter) -> Vec<u32> {
        self.iter_devs()
            .filter(|d| filter.matches(&d.dev, d.dev.weight))
            .map(|d| d.dev.id)
            .collect()
    }

    /// Partitions with a replica on any of `ids`, with how many: most matches first, ties
    /// in the order Swift finds them (replica row by row).
    pub fn list_parts(&self, ids: &[u32]) -> Vec<(u32, u32)> {
        let Some(table) = &self.replica2part2dev else {
            return Vec::new();
        };
        let wanted: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
        let mut count = vec![0u32; self.parts()];
        let mut order: Vec<u32> = Vec::new();
        for row in table {
            for (part, dev) in row.iter().enumerate() {
                if wanted.contains(dev) {
                    if count[part] == 0 {
                        order.push(part as u32);
                    }
                    count[part] += 1;
                }
            }
        }
        let mut out: Vec<(u32, u32)> = order.into_iter().map(|p| (p, count[p as usize])).collect();
        out.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        out
    }
}

/// Lower case; IPv6 in canonical form (brackets dropped); anything else as given.
pub fn normalize_address(address: &str) -> String {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    match lower.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => canonical_v6(v6),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => lower,
    }
}

fn canonical_v6(v6: Ipv6Addr) -> String {
    v6.to_string()
}

impl DeviceFilter {
    /// True when every key given matches the device.
    pub fn matches(&self, dev: &Device, weight: f64) -> bool {
        if self.id.is_some_and(|v| v != dev.id)
            || self.region.is_some_and(|v| v != dev.region)
            || self.zone.is_some_and(|v| v != dev.zone)
            || self.port.is_some_and(|v| v != dev.port)
            || self
                .replication_port
                .is_some_and(|v| v != dev.replication_port)
            || self.weight.is_some_and(|v| v != weight)
        {
            return false;
        }
        if let Some(ip) = &self.ip {
            if normalize_address(ip) != normalize_address(&dev.ip) {
                return false;
            }
        }
        if let Some(ip) = &self.replication_ip {
            if normalize_address(ip) != normalize_address(&dev.replication_ip) {
                return false;
            }
        }
        if let Some(device) = &self.device {
            if device != &dev.device {
                return false;
            }
        }
        if let Some(meta) = &self.meta {
            if !dev.meta.contains(meta.as_str()) {
                return false;
            }
        }
        true
    }
}

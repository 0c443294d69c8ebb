//! The dry run: what a rebalance would move, per device and per tier, computed on a copy.

use serde::Serialize;

use super::super::plan::NO_TIER;
use super::super::{
    dispersion, BuilderError, RebalanceOptions, RebalanceOutcome, RingBuilder, NONE_DEV,
};

/// Per device: what a rebalance takes away and brings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceMoves {
    pub id: u32,
    /// `r1z1-127.0.0.11/sda`.
    pub name: String,
    pub parts_before: u64,
    pub parts_after: u64,
    /// The device's target after the rebalance.
    pub target: u64,
    pub leaving: u64,
    pub arriving: u64,
    /// True if the device is deleted by this rebalance.
    pub removed: bool,
}

/// Per tier (region, zone, server): partition-replicas leaving and arriving.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TierMoves {
    pub tier: String,
    pub parts_before: u64,
    pub parts_after: u64,
    pub target: u64,
    pub leaving: u64,
    pub arriving: u64,
}

/// What a rebalance would do (a dry run on a copy of the builder).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RebalancePlan {
    pub balance_before: f64,
    pub balance_after: f64,
    pub dispersion_before: f64,
    pub dispersion_after: f64,
    pub required_overload: f64,
    pub overload: f64,
    pub outcome: RebalanceOutcome,
    pub devices: Vec<DeviceMoves>,
    pub tiers: Vec<TierMoves>,
}

impl RingBuilder {
    /// A dry run: rebalance a copy and describe what would move. The builder is untouched.
    pub fn plan_rebalance(
        &self,
        opts: &RebalanceOptions,
    ) -> Result<(RingBuilder, RebalancePlan), BuilderError> {
        let mut after = self.clone();
        let outcome = after.rebalance(opts)?;
        let plan = after.replica_plan()?;
        let dispersion_before = match (&self.replica2part2dev, self.dispersion) {
            (None, _) => 0.0,
            (Some(_), Some(d)) if !self.dispersion_graph.is_empty() => d,
            _ => {
                let tree = crate::builder::plan::TierTree::build(self);
                dispersion::compute(self, &tree).dispersion
            }
        };
        let n = self.devs.len().max(after.devs.len());
        let mut leaving = vec![0u64; n];
        let mut arriving = vec![0u64; n];
        let new_table = after.replica2part2dev.as_ref().unwrap();
        for (r, row) in new_table.iter().enumerate() {
            for (p, &d) in row.iter().enumerate() {
                let before = self
                    .replica2part2dev
                    .as_ref()
                    .and_then(|t| t.get(r))
                    .and_then(|row| row.get(p))
                    .copied()
                    .unwrap_or(NONE_DEV);
                if before != d {
                    if before != NONE_DEV && (before as usize) < n {
                        leaving[before as usize] += 1;
                    }
                    arriving[d as usize] += 1;
                }
            }
        }
        // Slots dropped by a replica-count decrease leave without arriving anywhere.
        if let Some(old) = &self.replica2part2dev {
            for (r, row) in old.iter().enumerate() {
                let new_len = new_table.get(r).map_or(0, |x| x.len());
                for &d in row.iter().skip(new_len) {
                    if d != NONE_DEV && (d as usize) < n {
                        leaving[d as usize] += 1;
                    }
                }
            }
        }
        let mut devices = Vec::new();
        for dev in self.iter_devs() {
            let id = dev.dev.id as usize;
            let after_dev = after.dev(dev.dev.id);
            let target = plan
                .tree
                .dev_path
                .get(id)
                .filter(|p| p[3] != NO_TIER)
                .map_or(0, |p| plan.parts_by_tier[p[3] as usize]);
            let target = if after_dev.is_some_and(|d| d.dev.weight > 0.0) {
                target
            } else {
                0
            };
            devices.push(DeviceMoves {
                id: dev.dev.id,
                name: dispersion::tier_name(&dev.dev.tiers()[3], self),
                parts_before: dev.parts,
                parts_after: after_dev.map_or(0, |d| d.parts),
                target,
                leaving: leaving[id],
                arriving: arriving[id],
                removed: after_dev.is_none(),
            });
        }
        for dev in after.iter_devs() {
            if self.dev(dev.dev.id).is_none() {
                let id = dev.dev.id as usize;
                devices.push(DeviceMoves {
                    id: dev.dev.id,
                    name: dispersion::tier_name(&dev.dev.tiers()[3], &after),
                    parts_before: 0,
                    parts_after: dev.parts,
                    target: dev.parts,
                    leaving: leaving[id],
                    arriving: arriving[id],
                    removed: false,
                });
            }
        }
        devices.sort_by_key(|d| d.id);
        // Tiers: sum the devices (ids are stable across the dry run).
        let mut tiers: std::collections::BTreeMap<crate::device::Tier, TierMoves> =
            Default::default();
        for d in &devices {
            let src = self.dev(d.id).or_else(|| after.dev(d.id)).unwrap();
            for tier in src.dev.tiers().into_iter().take(3) {
                let name = dispersion::tier_name(&tier, self);
                let e = tiers.entry(tier).or_insert_with(|| TierMoves {
                    tier: name,
                    ..Default::default()
                });
                e.parts_before += d.parts_before;
                e.parts_after += d.parts_after;
                e.target += d.target;
                e.leaving += d.leaving;
                e.arriving += d.arriving;
            }
        }
        let mut tiers: Vec<(crate::device::Tier, TierMoves)> = tiers.into_iter().collect();
        tiers.sort_by(|a, b| dispersion::python_tier_cmp(&a.0, &b.0));
        let report = RebalancePlan {
            balance_before: if self.ever_rebalanced() {
                self.get_balance()
            } else {
                0.0
            },
            balance_after: outcome.balance,
            dispersion_before,
            dispersion_after: outcome.dispersion,
            required_overload: plan.required_overload,
            overload: self.overload,
            outcome,
            devices,
            tiers: tiers.into_iter().map(|(_, t)| t).collect(),
        };
        Ok((after, report))
    }
}

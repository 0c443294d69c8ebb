//! Free dispersion: swap devices between two replicas placed in this rebalance.
//!
//! When the weights do not allow full dispersion (required overload above the ring's), the
//! plan lets a tier hold more replicas of a partition than an even split would, and which
//! partitions end up "at risk" is decided by the order of placement. Two replicas placed in
//! this rebalance (of different partitions, on devices A and B) can trade devices without
//! any extra move (each was moving anyway) and without changing any device's count. A trade
//! is made when it lowers the two partitions' replicas at risk together and both stay
//! within the plan's per-tier bounds, so balance and moves stay as they were and dispersion
//! only improves.

use super::Run;
use crate::builder::NONE_DEV;

/// Bound on candidate checks, so a ring where nothing can improve stays fast.
const CHECK_BUDGET: u64 = 20_000_000;

impl Run<'_> {
    pub(super) fn disperse_placed(&mut self) {
        // A placement within the plan's bounds puts nothing at risk unless some tier's bound
        // is above its fair share (the overload does not allow full dispersion).
        let risky_tier = self
            .plan
            .max
            .iter()
            .zip(&self.plan.max_allowed)
            .any(|(&max, &fair)| max as f64 > fair);
        if !risky_tier {
            return;
        }
        let mut fluid: Vec<(u32, u16)> = self
            .fluid
            .iter()
            .copied()
            .filter(|&(p, r)| self.placed_this_run(r as usize, p as usize))
            .collect();
        fluid.sort_unstable();
        fluid.dedup();
        if fluid.len() < 2 {
            return;
        }
        let ndev = self.b.devs.len();
        let mut fluid_on: Vec<Vec<(u32, u16)>> = vec![Vec::new(); ndev];
        for &(p, r) in &fluid {
            let d = self.table[r as usize][p as usize];
            if d != NONE_DEV {
                fluid_on[d as usize].push((p, r));
            }
        }
        let devs: Vec<u32> = self
            .b
            .iter_devs()
            .filter(|d| d.dev.weight > 0.0 && !self.b.remove_devs.contains(&d.dev.id))
            .map(|d| d.dev.id)
            .collect();
        let mut budget = CHECK_BUDGET;
        for &(p1, r1) in &fluid {
            let (part1, row1) = (p1 as usize, r1 as usize);
            let a = self.table[row1][part1];
            self.collect_paths(part1, Some(row1));
            let risk_a = self.risk_with(a);
            if risk_a <= 0.0 {
                continue;
            }
            'devices: for &b in &devs {
                if b == a || budget == 0 {
                    continue;
                }
                budget -= 1;
                self.collect_paths(part1, Some(row1));
                if !self.admissible(b) {
                    continue;
                }
                let gain1 = risk_a - self.risk_with(b);
                if gain1 <= 1e-9 {
                    continue;
                }
                for i in 0..fluid_on[b as usize].len() {
                    let (p2, r2) = fluid_on[b as usize][i];
                    let (part2, row2) = (p2 as usize, r2 as usize);
                    if part2 == part1 || self.table[row2][part2] != b {
                        continue;
                    }
                    if budget == 0 {
                        break 'devices;
                    }
                    budget -= 1;
                    self.collect_paths(part2, Some(row2));
                    if !self.admissible(a) {
                        continue;
                    }
                    let loss2 = self.risk_with(a) - self.risk_with(b);
                    if loss2 >= gain1 - 1e-9 {
                        continue;
                    }
                    // Trade: same devices, same counts, fewer replicas at risk.
                    self.table[row1][part1] = b;
                    self.table[row2][part2] = a;
                    fluid_on[b as usize][i] = (p1, r1);
                    fluid_on[a as usize].push((p2, r2));
                    break 'devices;
                }
            }
        }
    }
}

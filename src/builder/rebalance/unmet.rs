//! Why a rebalance left devices above their targets: the rule that holds each one.

use super::Run;
use crate::builder::{dispersion, NONE_DEV};

impl Run<'_> {
    /// Devices left above their target, with the rule that holds them there: per device,
    /// its replicas are split into those min_part_hours holds, those whose partition
    /// already moved a replica in this rebalance, and those free to move. With none free
    /// the device's count is the lowest this rebalance can reach (the bound), and the
    /// message says so; otherwise no admissible destination was left within the plan.
    pub(super) fn unmet(&self) -> Vec<String> {
        let n = self.plan.tree.len();
        let mut by_time = vec![0u64; n];
        let mut by_one_move = vec![0u64; n];
        let mut free = vec![0u64; n];
        for (r, row) in self.table.iter().enumerate() {
            for (p, &d) in row.iter().enumerate() {
                if d == NONE_DEV {
                    continue;
                }
                let dn = self.plan.tree.dev_path[d as usize][3] as usize;
                if self.count[dn] <= self.target[dn] {
                    continue;
                }
                if self.placed_this_run(r, p) {
                    free[dn] += 1;
                } else if self.moved_parts[p] {
                    by_one_move[dn] += 1;
                } else if (self.b.last_part_moves[p] as u32) < self.b.min_part_hours {
                    by_time[dn] += 1;
                } else {
                    free[dn] += 1;
                }
            }
        }
        let mut out = Vec::new();
        let mut extra = 0;
        for dev in self.b.iter_devs() {
            let dn = self.plan.tree.dev_path[dev.dev.id as usize][3] as usize;
            let surplus = self.count[dn] - self.target[dn];
            if surplus <= 0 || self.b.remove_devs.contains(&dev.dev.id) {
                continue;
            }
            if out.len() >= 10 {
                extra += 1;
                continue;
            }
            let name = dispersion::tier_name(&dev.dev.tiers()[3], self.b);
            let mut rules = Vec::new();
            if by_time[dn] > 0 {
                rules.push(format!(
                    "min_part_hours ({}h) holds {} of its partitions",
                    self.b.min_part_hours, by_time[dn]
                ));
            }
            if by_one_move[dn] > 0 {
                rules.push(format!(
                    "{} of its partitions already moved a replica in this rebalance (one \
                     replica per partition per rebalance)",
                    by_one_move[dn]
                ));
            }
            let why = if free[dn] == 0 {
                format!(
                    "{}; it cannot go lower in this rebalance (bound {}); rebalance again later",
                    rules.join(" and "),
                    self.count[dn]
                )
            } else {
                let mut why = format!(
                    "no under-filled device can take any of its {} movable partition-replicas \
                     within the plan's per-tier bounds (overload {:.6}",
                    free[dn], self.b.overload
                );
                if self.plan.required_overload > self.b.overload {
                    why += &format!(", full dispersion needs {:.6}", self.plan.required_overload);
                }
                why.push(')');
                for rule in rules {
                    why += "; ";
                    why += &rule;
                }
                why
            };
            out.push(format!(
                "device d{} {name} holds {} partition-replicas, target {}: {why}",
                dev.dev.id, self.count[dn], self.target[dn]
            ));
        }
        if extra > 0 {
            out.push(format!("... and {extra} more devices above target"));
        }
        out
    }
}

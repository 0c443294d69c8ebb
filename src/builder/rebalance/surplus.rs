//! The direct surplus pass: replicas on over-target devices move straight to under-target
//! devices that can take them within the plan (see "Then settle the surplus, directly" in
//! the parent module).

use super::{Run, MAX_SURPLUS_PASSES};
use crate::builder::NONE_DEV;

impl Run<'_> {
    /// Move replicas from over-target devices to under-target ones, each move to an
    /// admissible device, until nothing more can move.
    pub(super) fn settle_surplus(&mut self) {
        let parts = self.parts;
        let rows = self.table.len();
        for pass in 0..MAX_SURPLUS_PASSES + 1 {
            // First pass: only replicas placed in this rebalance (moving one again costs no
            // extra move). Second: only replicas whose partition is over its fair share in
            // one of the device's tiers, so that balance moves also improve dispersion.
            let fluid_only = pass == 0;
            let risky_only = pass == 1;
            let over: i64 = self.over_total();
            if over == 0 {
                break;
            }
            let mut moved_any = false;
            for i in 0..parts {
                let p = (self.gather_start + i) % parts;
                // Replicas on over-target devices, the fullest relative to its weight's share
                // (what balance measures) first: when each partition may move only one
                // replica, the moves go where they lower the worst device the most.
                let mut order = [(0.0f64, 0usize); 16];
                let mut n_order = 0;
                for r in 0..rows.min(16) {
                    let Some(&d) = self.table[r].get(p) else {
                        continue;
                    };
                    let dn = self.plan.tree.dev_path[d as usize][3] as usize;
                    let surplus = self.count[dn] - self.target[dn];
                    if surplus > 0 {
                        order[n_order] = (self.fill(dn), r);
                        n_order += 1;
                    }
                }
                if n_order == 0 {
                    continue;
                }
                order[..n_order].sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for &(_, r) in &order[..n_order] {
                    let d = self.table[r][p];
                    let dn = self.plan.tree.dev_path[d as usize][3] as usize;
                    if self.count[dn] <= self.target[dn] {
                        continue;
                    }
                    if risky_only && !self.over_fair_share(p, d) {
                        continue;
                    }
                    let fluid = self.placed_this_run(r, p);
                    if !fluid && (fluid_only || !self.can_move(p)) {
                        continue;
                    }
                    self.collect_paths(p, Some(r));
                    // Take the replica off first so that the tiers it leaves count it gone.
                    self.add_count(d, -1);
                    let to = match self.find_home(0, true) {
                        Some(to) if to != d => Some(to),
                        // Two hops: this replica takes the place of one placed earlier in
                        // this run, which moves on to an under-target device. If that place
                        // is its own device, only the other replica moves.
                        _ => self.place_by_displacing(p, r),
                    };
                    match to {
                        Some(to) => {
                            self.table[r][p] = to;
                            self.add_count(to, 1);
                            if to != d {
                                self.fluid.push((p as u32, r as u16));
                                self.moved_parts[p] = true;
                            }
                            moved_any = true;
                            // One replica per partition per pass is plenty.
                            break;
                        }
                        None => self.add_count(d, 1),
                    }
                }
            }
            if !moved_any && !risky_only && !fluid_only {
                break;
            }
        }
    }

    /// True if the partition has more replicas than the fair share (`max_allowed`) in one
    /// of the tiers of `dev`, which holds one of them.
    fn over_fair_share(&self, part: usize, dev: u32) -> bool {
        let path = self.plan.tree.dev_path[dev as usize];
        (0..4).any(|l| {
            let n = self
                .table
                .iter()
                .filter_map(|row| row.get(part))
                .filter(|&&x| x != NONE_DEV && self.plan.tree.dev_path[x as usize][l] == path[l])
                .count();
            n as f64 > self.plan.max_allowed[path[l] as usize]
        })
    }

    pub(super) fn over_total(&self) -> i64 {
        self.b
            .iter_devs()
            .map(|d| {
                let dn = self.plan.tree.dev_path[d.dev.id as usize][3] as usize;
                (self.count[dn] - self.target[dn]).max(0)
            })
            .sum()
    }
}

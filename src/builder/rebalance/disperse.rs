//! Free dispersion: trades that lower the replicas at risk without changing any device's
//! count or the number of partition-replicas moved.
//!
//! When the weights do not allow full dispersion (required overload above the ring's), the
//! plan lets a tier hold more replicas of a partition than an even split would, and which
//! partitions end up "at risk" is decided by the order of placement. Two kinds of trade fix
//! what that order got wrong; each is made only when it lowers the two partitions' replicas
//! at risk together and both stay within the plan's per-tier bounds, so balance and moves
//! stay as they were and dispersion only improves.
//!
//! - **Destinations.** Two replicas placed in this rebalance (of different partitions, on
//!   devices A and B) trade devices: each was moving anyway.
//! - **Sources.** A replica that moved from S to T goes back to S, and another partition's
//!   replica on S, one at risk there, moves to T instead. S still gives up one replica and T
//!   still gains one; one partition moves instead of another. The surplus pass picks which
//!   replica leaves S before it knows where it will go (a new server in a new region takes
//!   whatever the scan reaches first), so this is where Swift's placement, which gathers
//!   at-risk replicas first, used to do better.

use super::Run;
use crate::builder::NONE_DEV;

/// Bound on candidate checks, so a ring where nothing can improve stays fast.
const CHECK_BUDGET: u64 = 20_000_000;

impl Run<'_> {
    /// A placement within the plan's bounds puts nothing at risk unless some tier's bound
    /// is above its fair share (the overload does not allow full dispersion).
    fn dispersion_limited(&self) -> bool {
        self.plan
            .max
            .iter()
            .zip(&self.plan.max_allowed)
            .any(|(&max, &fair)| max as f64 > fair)
    }

    pub(super) fn disperse_placed(&mut self) {
        if !self.dispersion_limited() {
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
            .map(|d| d.dev.id)
            .filter(|&d| self.usable(d))
            .collect();
        let mut budget = CHECK_BUDGET;
        for &(p1, r1) in &fluid {
            let (part1, row1) = (p1 as usize, r1 as usize);
            let a = self.table[row1][part1];
            self.collect_paths(part1, Some(row1));
            if self.risk_with(a) <= 0.0 {
                continue;
            }
            'devices: for &b in &devs {
                if b == a || budget == 0 {
                    continue;
                }
                budget -= 1;
                let Some(gain1) = self.risk_saved(part1, row1, a, b) else {
                    continue;
                };
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
                    let Some(gain2) = self.risk_saved(part2, row2, b, a) else {
                        continue;
                    };
                    if gain1 + gain2 <= 1e-9 {
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

    /// Source trades (see the module docs). Returns how many were made: the partition that goes back becomes movable again on
    /// its old device, which can open a chain of moves the earlier passes ruled out, so
    /// the caller settles again when devices are left above target.
    pub(super) fn disperse_sources(&mut self) -> usize {
        if !self.dispersion_limited() {
            return 0;
        }
        let mut trades = 0;
        let rows = self.table.len();
        let ndev = self.b.devs.len();
        // Replicas that moved in this rebalance, one per partition, from a device that may
        // take them back: (part, row, source).
        let mut moved: Vec<(u32, u16, u32)> = Vec::new();
        for i in 0..self.parts {
            let p = (self.gather_start + i) % self.parts;
            if let Some((r, s)) = self.single_move(p) {
                if self.usable(s) {
                    moved.push((p as u32, r as u16, s));
                }
            }
        }
        if moved.is_empty() {
            return 0;
        }
        let mut is_source = vec![false; ndev];
        for &(_, _, s) in &moved {
            is_source[s as usize] = true;
        }
        // Per source device, the replicas that may still move and are at risk there.
        let mut budget = CHECK_BUDGET;
        let mut at_risk_on: Vec<Vec<(u32, u16)>> = vec![Vec::new(); ndev];
        for p in 0..self.parts {
            if !self.can_move(p) {
                continue;
            }
            for r in 0..rows {
                let Some(&d) = self.table[r].get(p) else {
                    continue;
                };
                if d == NONE_DEV || !is_source[d as usize] || budget == 0 {
                    continue;
                }
                budget -= 1;
                self.collect_paths(p, Some(r));
                if self.risk_with(d) > 0.0 {
                    at_risk_on[d as usize].push((p as u32, r as u16));
                }
            }
        }
        for (p1, r1, s) in moved {
            let (part1, row1) = (p1 as usize, r1 as usize);
            let t = self.table[row1][part1];
            if at_risk_on[s as usize].is_empty() || budget == 0 {
                continue;
            }
            budget -= 1;
            // What sending this replica back saves (negative when it was at risk on S).
            let Some(back_gain) = self.risk_saved(part1, row1, t, s) else {
                continue;
            };
            for i in 0..at_risk_on[s as usize].len() {
                let (p2, r2) = at_risk_on[s as usize][i];
                let (part2, row2) = (p2 as usize, r2 as usize);
                if part2 == part1 || self.moved_parts[part2] || self.table[row2][part2] != s {
                    continue;
                }
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let Some(move_gain) = self.risk_saved(part2, row2, s, t) else {
                    continue;
                };
                if back_gain + move_gain <= 1e-9 {
                    continue;
                }
                self.table[row1][part1] = s;
                self.moved_parts[part1] = false;
                self.table[row2][part2] = t;
                self.moved_parts[part2] = true;
                self.fluid.push((p2, r2));
                at_risk_on[s as usize].swap_remove(i);
                trades += 1;
                break;
            }
        }
        trades
    }

    /// Row trades: a partition that moved one replica (S to T) moves another of its
    /// replicas (on S2) to T instead, and the first stays on S, when that lowers the
    /// partition's replicas at risk. Only between devices above their targets (S2 stays at
    /// or above its target, S was at or above it), and only when neither ends further from
    /// its share than the worst device already is, so the deviation from the targets and the balance stay as they
    /// were; moves stay the same. This is what is left when every partition has used its
    /// move (a tiny ring after a big server arrives) and there is no partition to trade
    /// sources with. Returns how many were made.
    pub(super) fn disperse_rows(&mut self) -> usize {
        if !self.dispersion_limited() || self.over_total() == 0 {
            return 0;
        }
        let rows = self.table.len();
        let mut trades = 0;
        let mut budget = CHECK_BUDGET;
        // Trades keep every device within this, so it holds for the whole pass.
        let worst = self.worst_balance();
        for i in 0..self.parts {
            let p = (self.gather_start + i) % self.parts;
            if budget == 0 {
                break;
            }
            let Some((r1, s)) = self.single_move(p) else {
                continue;
            };
            let t = self.table[r1][p];
            if !self.usable(s) || self.surplus(s) < 0 || !self.within_balance(s, 1, worst) {
                continue;
            }
            self.collect_paths(p, Some(r1));
            let risk_now = self.risk_with(t);
            if risk_now <= 0.0 {
                continue;
            }
            for r2 in 0..rows {
                if r2 == r1 || budget == 0 {
                    continue;
                }
                let Some(&s2) = self.table[r2].get(p) else {
                    continue;
                };
                if s2 == NONE_DEV
                    || s2 == s
                    || self.surplus(s2) < 1
                    || !self.within_balance(s2, -1, worst)
                {
                    continue;
                }
                budget -= 1;
                if self.try_row_exchange(p, (r1, s), r2, |run| run.risk_with(s) < risk_now - 1e-9) {
                    self.add_count(s, 1);
                    self.add_count(s2, -1);
                    self.fluid.push((p as u32, r2 as u16));
                    trades += 1;
                    break;
                }
            }
        }
        trades
    }

    /// The exchange both row trades make: the replica of `part` in row `r1`, moved there
    /// from `s` in this rebalance, goes back to `s`, and the replica in row `r2` goes where
    /// the move went instead. Kept when both devices stay within the plan's per-tier
    /// bounds and `keep` agrees (asked with the partition's other replicas collected
    /// without row `r1`, so `risk_with(s)` is the risk after the exchange); otherwise both
    /// rows are restored. Returns whether it was kept.
    pub(super) fn try_row_exchange(
        &mut self,
        part: usize,
        (r1, s): (usize, u32),
        r2: usize,
        keep: impl FnOnce(&Self) -> bool,
    ) -> bool {
        let t = self.table[r1][part];
        let other = self.table[r2][part];
        self.table[r1][part] = s;
        self.table[r2][part] = t;
        self.collect_paths(part, Some(r2));
        let fits = self.admissible(t) && {
            self.collect_paths(part, Some(r1));
            self.admissible(s)
        };
        if fits && keep(self) {
            return true;
        }
        self.table[r1][part] = t;
        self.table[r2][part] = other;
        false
    }

    /// How many fewer replicas of `part` are at risk if its replica in `row` moves from
    /// `from` to `to` (negative when more are); `None` when `to` may not take it within the
    /// plan's per-tier bounds. Every trade is judged by this.
    pub(super) fn risk_saved(
        &mut self,
        part: usize,
        row: usize,
        from: u32,
        to: u32,
    ) -> Option<f64> {
        self.collect_paths(part, Some(row));
        if !self.admissible(to) {
            return None;
        }
        Some(self.risk_with(from) - self.risk_with(to))
    }

    /// A device that may take replicas: weighted and not being removed.
    pub(super) fn usable(&self, dev: u32) -> bool {
        self.b
            .dev(dev)
            .is_some_and(|d| d.dev.weight > 0.0 && !self.b.remove_devs.contains(&dev))
    }

    /// What balance measures: the largest |count / share - 1| over weighted devices.
    fn worst_balance(&self) -> f64 {
        self.b
            .iter_devs()
            .filter(|d| d.dev.weight > 0.0)
            .map(|d| (self.fill(self.path(d.dev.id)[3] as usize) - 1.0).abs())
            .fold(0.0, f64::max)
    }

    /// True if `dev` with `delta` more replicas stays within `worst` (see
    /// [`Self::worst_balance`]).
    fn within_balance(&self, dev: u32, delta: i64, worst: f64) -> bool {
        let node = self.path(dev)[3] as usize;
        let share = self.share[node];
        share > 0.0 && ((self.count[node] + delta) as f64 / share - 1.0).abs() <= worst
    }

    /// The one replica of `part` that moved in this rebalance, as (row, the device it
    /// left), when exactly one did, from a device that existed (not a new slot of a
    /// replica-count increase), and it is placed now.
    pub(super) fn single_move(&self, part: usize) -> Option<(usize, u32)> {
        if !self.moved_parts[part] {
            return None;
        }
        let mut changed = (0..self.table.len())
            .filter(|&r| part < self.table[r].len() && self.placed_this_run(r, part));
        let (Some(row), None) = (changed.next(), changed.next()) else {
            return None;
        };
        let left = self.old.get(row).and_then(|r| r.get(part)).copied()?;
        (left != NONE_DEV && self.table[row][part] != NONE_DEV).then_some((row, left))
    }
}

//! Shortening chains: two moves that pass a count along where one would do.
//!
//! The surplus passes are greedy: a replica moves from U to V, and later, to make room or to
//! reach a device below its target, a replica of another partition moves on from V to W.
//! Device counts then change only at U (one fewer) and W (one more), but two replicas moved.
//! If the first replica may go to W directly, it goes there and the second goes back to V:
//! the same counts with one move fewer. The first may be any replica placed in this
//! rebalance (re-placing it is free); the second must be an existing replica that moved,
//! which this gives back its partition's one move. A trade is made only when both
//! partitions stay within the plan's bounds and put no more replicas at risk together.

use super::Run;
use crate::builder::NONE_DEV;

/// Bound on candidate checks, so a ring where nothing can be shortened stays fast.
const CHECK_BUDGET: u64 = 20_000_000;

impl Run<'_> {
    /// Returns how many moves were saved.
    pub(super) fn shorten_chains(&mut self) -> usize {
        let rows = self.table.len();
        let ndev = self.b.devs.len();
        // Existing replicas that moved, by the device they left: (part, row, now on).
        let mut left_from: Vec<Vec<(u32, u16)>> = vec![Vec::new(); ndev];
        let mut any = false;
        for p in 0..self.parts {
            if let Some((r, v)) = self.single_move(p).filter(|&(_, v)| self.usable(v)) {
                left_from[v as usize].push((p as u32, r as u16));
                any = true;
            }
        }
        if !any {
            return 0;
        }
        let mut saved = 0;
        let mut budget = CHECK_BUDGET;
        for r_a in 0..rows {
            for p_a in 0..self.table[r_a].len() {
                if budget == 0 {
                    return saved;
                }
                if !self.placed_this_run(r_a, p_a) {
                    continue;
                }
                let v = self.table[r_a][p_a];
                if v == NONE_DEV || left_from[v as usize].is_empty() {
                    continue;
                }
                for i in 0..left_from[v as usize].len() {
                    let (p_b, r_b) = left_from[v as usize][i];
                    let (p_b, r_b) = (p_b as usize, r_b as usize);
                    let w = self.table[r_b][p_b];
                    if p_b == p_a || w == NONE_DEV || w == v || !self.placed_this_run(r_b, p_b) {
                        continue;
                    }
                    budget = budget.saturating_sub(1);
                    let Some(saved_a) = self.risk_saved(p_a, r_a, v, w) else {
                        continue;
                    };
                    let Some(saved_b) = self.risk_saved(p_b, r_b, w, v) else {
                        continue;
                    };
                    if saved_a + saved_b < -1e-9 {
                        continue;
                    }
                    // Counts stay: V loses A and gets B back, W loses B and gets A.
                    self.table[r_a][p_a] = w;
                    self.table[r_b][p_b] = v;
                    self.moved_parts[p_b] = false;
                    self.fluid.push((p_a as u32, r_a as u16));
                    left_from[v as usize].swap_remove(i);
                    saved += 1;
                    break;
                }
            }
        }
        saved
    }
}

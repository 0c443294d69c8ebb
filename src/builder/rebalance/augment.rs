//! Chains of moves for the surplus the direct moves could not settle.
//!
//! After the direct pass (`settle_surplus`) a device can stay above its target although a
//! better placement exists: none of its movable replicas may go to an under-target device
//! directly (their partitions already have a replica in that device's zone or server), but
//! one may go to a device at its target whose own movable replica of *another* partition
//! may go on to an under-target device. That is an augmenting path in the graph
//!
//! - nodes: devices;
//! - an edge `u -> v` for each movable replica on `u` whose partition may go to `v` within
//!   the plan's per-tier bounds without raising that partition's dispersion;
//! - cost 0 for a replica already placed in this rebalance (moving it again is still one
//!   move), 1 otherwise.
//!
//! Each path from an over-target device to an under-target one lowers the total surplus by
//! one and leaves every device in between at its count. Paths are found by a 0-1 breadth-first
//! search from all over-target devices at once, so each is a cheapest one (fewest new moves)
//! given the moves before it: this is successive shortest paths for a min-cost flow whose
//! supplies are the surpluses and whose demands are the deficits. The rules stay in the edge
//! set: a replica is movable only if its partition may move (min_part_hours passed and no
//! other replica of it moved in this rebalance) or it was itself placed in this rebalance.

use super::Run;
use crate::builder::NONE_DEV;

/// A bound on admissibility checks per rebalance, so a ring with no possible improvement
/// cannot make the search expensive (the 2^20-partition benchmark never gets here).
const CHECK_BUDGET: u64 = 40_000_000;

/// One hop of a path: the replica in slot (part, row) moves from its device to `to`.
///
/// With `redirect` set to the row of the replica that the partition already moved in this
/// rebalance (from device `to` to some device B), the hop instead *redirects* that move: the
/// replica in `redirect` goes back to `to`, and the replica in `row` goes to B. The moves
/// count is unchanged (one replica of the partition moves either way), the device the hop
/// leaves loses one replica and `to` gains one: an edge of cost 0 that lets the search
/// change *which* replica of a partition uses the partition's one move.
#[derive(Clone, Copy, Debug)]
struct Hop {
    part: u32,
    row: u16,
    to: u32,
    redirect: Option<u16>,
}

impl Run<'_> {
    /// Move surplus along cheapest augmenting paths until no over-target device has one.
    pub(super) fn settle_by_paths(&mut self) {
        self.settle_by_paths_costing(true);
    }

    /// Chains of replicas placed in this rebalance only (re-placing one costs no move), tried
    /// before any existing replica is moved for balance: the queue's descent can fill a
    /// device that a later replica needed, and the greedy surplus pass would then pay a
    /// move to repair what re-placing two queued replicas repairs for free. Only when
    /// existing replicas could otherwise be moved (a first rebalance moves nothing else)
    /// and something was queued.
    pub(super) fn settle_by_free_paths(&mut self) {
        let existing = self.old.iter().any(|row| !row.is_empty());
        if existing && !self.fluid.is_empty() {
            self.settle_by_paths_costing(false);
        }
    }

    fn settle_by_paths_costing(&mut self, moves_allowed: bool) {
        if self.over_total() == 0 {
            return;
        }
        let devs: Vec<u32> = self
            .b
            .iter_devs()
            .map(|d| d.dev.id)
            .filter(|&d| self.usable(d))
            .collect();
        if devs.is_empty() {
            return;
        }
        let ndev = self.b.devs.len();
        // Slots per device; entries go stale when a replica moves (checked on use).
        let mut slots_on: Vec<Vec<(u32, u16)>> = vec![Vec::new(); ndev];
        for (r, row) in self.table.iter().enumerate() {
            for (p, &d) in row.iter().enumerate() {
                if d != NONE_DEV {
                    slots_on[d as usize].push((p as u32, r as u16));
                }
            }
        }
        let mut budget = CHECK_BUDGET;
        // First only moves that keep each partition's dispersion, then any move the plan
        // allows: the plan's per-tier bounds already say how far the weights let the
        // replicas spread, and a device above its target is what the operator sees first.
        for keep_dispersion in [true, false] {
            loop {
                let found = self.cheapest_path(
                    &devs,
                    &slots_on,
                    &mut budget,
                    keep_dispersion,
                    moves_allowed,
                );
                let Some(path) = found else {
                    break;
                };
                if !self.apply_path(&path, &mut slots_on) {
                    break;
                }
            }
        }
    }

    pub(super) fn surplus(&self, dev: u32) -> i64 {
        let dn = self.plan.tree.dev_path[dev as usize][3] as usize;
        self.count[dn] - self.target[dn]
    }

    fn movable(&self, part: usize, row: usize) -> bool {
        self.placed_this_run(row, part) || self.can_move(part)
    }

    /// Replicas of the partition in `self.scratch` at risk (what dispersion counts) if one
    /// more replica were on `extra`.
    pub(super) fn risk_with(&self, extra: u32) -> f64 {
        let path = self.plan.tree.dev_path[extra as usize];
        let mut worst = 0.0f64;
        for level in 0..4 {
            let mut seen: [u32; 8] = [NONE_DEV; 8];
            let mut at_risk = 0.0;
            let all = self
                .scratch
                .iter()
                .map(|q| q[level])
                .chain(std::iter::once(path[level]));
            for (i, node) in all.enumerate() {
                if i < 8 {
                    if seen.contains(&node) {
                        continue;
                    }
                    seen[i] = node;
                }
                let n = self.scratch.iter().filter(|q| q[level] == node).count()
                    + usize::from(path[level] == node);
                let allowed = self.plan.max_allowed[node as usize];
                if n as f64 > allowed {
                    at_risk += n as f64 - allowed;
                }
            }
            worst = worst.max(at_risk);
        }
        worst
    }

    /// The redirect hop for the replica in (part, row), if there is one: the partition has
    /// moved exactly one other replica in this rebalance (from a weighted device A that is
    /// not being removed, to B), this replica has not moved, and the ring with that move
    /// undone and this replica on B instead stays within the plan's bounds (and, with
    /// `keep_dispersion`, puts no more of the partition at risk).
    fn redirect_hop(&mut self, part: usize, row: usize, keep_dispersion: bool) -> Option<Hop> {
        if self.placed_this_run(row, part) || !self.moved_parts[part] {
            return None;
        }
        let rows = self.table.len();
        let mut moved_row = None;
        for rx in 0..rows {
            if self.table[rx].get(part).is_some() && self.placed_this_run(rx, part) {
                if moved_row.is_some() {
                    return None;
                }
                moved_row = Some(rx);
            }
        }
        let rx = moved_row?;
        let a = *self.old.get(rx)?.get(part)?;
        if a == NONE_DEV || self.b.remove_devs.contains(&a) {
            return None;
        }
        if !self.b.dev(a).is_some_and(|d| d.dev.weight > 0.0) {
            return None;
        }
        let u = self.table[row][part];
        if self.b.remove_devs.contains(&u) {
            return None;
        }
        let b = self.table[rx][part];
        // The partition's devices after the redirect.
        let mut after: Vec<u32> = (0..rows)
            .filter_map(|q| self.table[q].get(part).map(|&d| (q, d)))
            .map(|(q, d)| {
                if q == rx {
                    a
                } else if q == row {
                    b
                } else {
                    d
                }
            })
            .collect();
        let mut sorted = after.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        for &d in &after {
            let path = self.plan.tree.dev_path[d as usize];
            for (l, &node) in path.iter().enumerate() {
                let n = after
                    .iter()
                    .filter(|&&x| self.plan.tree.dev_path[x as usize][l] == node)
                    .count() as u32;
                if n > self.plan.max[node as usize] {
                    return None;
                }
            }
        }
        if keep_dispersion {
            let last = after.pop()?;
            self.scratch.clear();
            for &d in &after {
                self.scratch.push(self.plan.tree.dev_path[d as usize]);
            }
            let risk_after = self.risk_with(last);
            self.collect_paths(part, Some(row));
            let risk_before = self.risk_with(u);
            if risk_after > risk_before + 1e-9 {
                return None;
            }
        }
        Some(Hop {
            part: part as u32,
            row: row as u16,
            to: a,
            redirect: Some(rx as u16),
        })
    }

    /// 0-1 BFS from every over-target device; returns the hops of a cheapest path ending on
    /// an under-target device, or None.
    fn cheapest_path(
        &mut self,
        devs: &[u32],
        slots_on: &[Vec<(u32, u16)>],
        budget: &mut u64,
        keep_dispersion: bool,
        moves_allowed: bool,
    ) -> Option<Vec<Hop>> {
        let ndev = self.b.devs.len();
        let mut dist = vec![u32::MAX; ndev];
        let mut via: Vec<Option<(u32, Hop)>> = vec![None; ndev];
        let mut deque = std::collections::VecDeque::new();
        for &d in devs {
            if self.surplus(d) > 0 {
                dist[d as usize] = 0;
                deque.push_back(d);
            }
        }
        if deque.is_empty() {
            return None;
        }
        let mut done = vec![false; ndev];
        let mut best_sink: Option<u32> = None;
        while let Some(u) = deque.pop_front() {
            if done[u as usize] {
                continue;
            }
            done[u as usize] = true;
            if let Some(s) = best_sink {
                if dist[u as usize] >= dist[s as usize] {
                    break;
                }
            }
            // Cost-0 edges (replicas placed in this rebalance) first.
            for pass_fluid in [true, false] {
                if !pass_fluid && !moves_allowed {
                    break;
                }
                let cost = if pass_fluid { 0 } else { 1 };
                let reach = dist[u as usize] + cost;
                for &(p, r) in &slots_on[u as usize] {
                    let (part, row) = (p as usize, r as usize);
                    if self.table[row].get(part) != Some(&u) {
                        continue;
                    }
                    if pass_fluid {
                        if let Some(hop) = self.redirect_hop(part, row, keep_dispersion) {
                            let a = hop.to as usize;
                            if !done[a] && dist[a] > reach {
                                dist[a] = reach;
                                via[a] = Some((u, hop));
                                deque.push_front(hop.to);
                                if self.surplus(hop.to) < 0
                                    && best_sink.is_none_or(|s| dist[s as usize] > reach)
                                {
                                    best_sink = Some(hop.to);
                                }
                            }
                        }
                    }
                    if self.placed_this_run(row, part) != pass_fluid || !self.movable(part, row) {
                        continue;
                    }
                    // Only worth a look if some device is still improvable via this edge.
                    if !devs
                        .iter()
                        .any(|&v| !done[v as usize] && dist[v as usize] > reach)
                    {
                        break;
                    }
                    self.collect_paths(part, Some(row));
                    let risk_here = if keep_dispersion {
                        self.risk_with(u)
                    } else {
                        f64::INFINITY
                    };
                    for &v in devs {
                        if v == u || done[v as usize] || dist[v as usize] <= reach {
                            continue;
                        }
                        if *budget == 0 {
                            return None;
                        }
                        *budget -= 1;
                        if !self.admissible(v)
                            || (keep_dispersion && self.risk_with(v) > risk_here + 1e-9)
                        {
                            continue;
                        }
                        dist[v as usize] = reach;
                        via[v as usize] = Some((
                            u,
                            Hop {
                                part: p,
                                row: r,
                                to: v,
                                redirect: None,
                            },
                        ));
                        if cost == 0 {
                            deque.push_front(v);
                        } else {
                            deque.push_back(v);
                        }
                        if self.surplus(v) < 0 && best_sink.is_none_or(|s| dist[s as usize] > reach)
                        {
                            best_sink = Some(v);
                        }
                    }
                }
            }
        }
        let sink = best_sink?;
        let mut hops = Vec::new();
        let mut at = sink;
        while let Some((from, hop)) = via[at as usize] {
            hops.push(hop);
            at = from;
            if hops.len() > ndev {
                return None;
            }
        }
        hops.reverse();
        Some(hops)
    }

    /// Move the replicas of a path, first hop first, re-checking each against the table as
    /// it is then (two hops of one partition would break the one-move rule). Returns false,
    /// with nothing changed, if a hop is no longer allowed.
    fn apply_path(&mut self, hops: &[Hop], slots_on: &mut [Vec<(u32, u16)>]) -> bool {
        let mut parts_seen: Vec<u32> = hops.iter().map(|h| h.part).collect();
        parts_seen.sort_unstable();
        if parts_seen.windows(2).any(|w| w[0] == w[1]) {
            return false;
        }
        for h in hops {
            let (part, row) = (h.part as usize, h.row as usize);
            if let Some(rx) = h.redirect {
                let again = self.redirect_hop(part, row, false);
                if again.map(|x| (x.to, x.redirect)) != Some((h.to, Some(rx))) {
                    return false;
                }
                continue;
            }
            if !self.movable(part, row) {
                return false;
            }
            self.collect_paths(part, Some(row));
            if !self.admissible(h.to) {
                return false;
            }
        }
        for h in hops {
            let (part, row) = (h.part as usize, h.row as usize);
            let from = self.table[row][part];
            if let Some(rx) = h.redirect {
                let rx = rx as usize;
                let b = self.table[rx][part];
                self.table[rx][part] = h.to;
                self.table[row][part] = b;
                self.add_count(from, -1);
                self.add_count(h.to, 1);
                slots_on[b as usize].push((h.part, h.row));
                slots_on[h.to as usize].push((h.part, rx as u16));
                self.fluid.push((h.part, h.row));
                continue;
            }
            self.add_count(from, -1);
            self.table[row][part] = h.to;
            self.add_count(h.to, 1);
            slots_on[h.to as usize].push((h.part, h.row));
            if self.placed_this_run(row, part) {
                self.fluid.push((h.part, h.row));
                self.moved_parts[part] = true;
            }
        }
        true
    }
}

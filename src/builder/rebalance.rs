//! The rebalancer: assign every partition-replica to a device so that devices hold their
//! weight's share, replicas of a partition are as far apart as the tiers allow, and as
//! little as possible moves.
//!
//! # The algorithm
//!
//! **Targets first, exactly.** The replica plan (`plan.rs`, Swift's arithmetic to the bit)
//! gives every tier — region, zone, server, device — two things: a per-partition bound
//! `max` (how many replicas of one partition the tier may hold; devices at most one) and an
//! integer **target**: how many partition-replicas the whole tier should hold. The targets
//! are consistent down the tree (a tier's children sum to it) and across a level (every
//! level sums to the slot count), so "every device at its target" *is* the best balance the
//! weights, the dispersion and the overload allow. Everything below works on these integers
//! in flat arrays indexed by tier id, with a running count per tier.
//!
//! **Gather only what must move**, in this order:
//! 1. slots of devices pending removal (all of them, whatever min_part_hours says), and new
//!    slots from a replica-count increase; rows that shrink just free their slots;
//! 2. dispersion violations: a partition with more replicas in a tier than the plan's `max`
//!    gives up one replica: one on a zero-weight device first (its `max` is 0, so it drains
//!    this way, one replica per partition), else the one on the device fullest relative to
//!    its weight's share;
//! 3. nothing else up front. Swift also gathers "for balance" in up to three passes, taking
//!    replicas from over-weight devices before knowing whether they have anywhere better
//!    to go, and puts many back. Ringsmith instead moves a replica off an over-target device
//!    only together with a destination (below), so every move reduces a surplus.
//!
//! **Place without getting stuck.** A replica is placed by a depth-first descent of the
//! tier tree: at each level the children that still have room *for this partition* (below
//! their `max`), preferring the largest deficit (target minus count; ties broken by a
//! seeded random order). If a branch has no device with room, the descent backs up and
//! tries the next child, so a valid placement is found whenever one exists — where Swift's
//! greedy descent raises "no home" or overfills. Only when no placement within the plan
//! exists at all does it fall back to the device breaking the fewest tier bounds (never two
//! replicas of a partition on one device).
//!
//! **Many queued replicas are placed by a transportation problem first**
//! (`rebalance/transport.rs`). One at a time, each into the largest deficit, the early
//! replicas of a drained server fill the zones that late ones need (a partition may only go
//! back to its own zone or to the zone it lacks). So the queue is grouped into classes by
//! the set of zones each partition may use within its fair share, a maximum flow (classes →
//! zones → regions, capacities the deficits) decides how many of each class go to each zone,
//! and each replica then descends as above inside a zone its class has quota in. What does
//! not fit goes the ordinary way.
//!
//! **Then re-place for free.** If the descent left a device above its target while a
//! chain of re-placements of this rebalance's own replicas (each already moving, so no
//! extra move) reaches one below it, that chain is taken before anything else moves: the
//! greedy pass below would otherwise pay a move of an existing replica to repair it (the
//! search is the one of the chains below, restricted to cost 0).
//!
//! **Then settle the surplus, directly.** Over-target devices are scanned partition by
//! partition from a seeded start; of a partition's replicas on over-target devices the one
//! on the device fullest *relative to its weight's share* goes first (when each partition
//! may move one replica, that is what lowers the worst device, which is what balance
//! measures). A replica moves when (a) it may move — placed in this rebalance
//! already (re-placing it is still a single move), or its partition has not moved in this
//! rebalance and its min_part_hours have passed — and (b) an under-target device can take
//! it within the plan. The first scan only re-places replicas placed in this rebalance
//! (free), the second only replicas at risk for dispersion; scans repeat until nothing
//! changes.
//!
//! **Then settle what is left, by chains** (`rebalance/augment.rs`). A device can stay above
//! target although a better ring exists: after a whole server is drained, say, its
//! replicas can only go to the zone's other servers or to the one zone their partition
//! lacks, and reaching every target needs *chains*: replica A moves to a device at its
//! target whose replica B (of another partition) moves on to a device below target. This
//! is a flow problem — supplies are the surpluses, demands the deficits, an edge `u -> v`
//! for every replica on `u` that the rules let move and whose partition may go to `v`
//! within the plan's per-tier bounds — solved by successive cheapest augmenting paths: a
//! 0-1 breadth-first search from all over-target devices at once, where re-moving a replica
//! placed in this rebalance costs 0 and any other move 1. Paths that keep every partition's
//! dispersion are used first, then any path within the plan.
//!
//! **Then shorten chains** (`rebalance/shorten.rs`). Where a replica moved U to V and
//! another moved on V to W, the first goes to W directly and the second stays: the same
//! counts, one move fewer.
//!
//! **Then trade for dispersion, for free** (`rebalance/disperse.rs`). When the overload does
//! not allow full dispersion, two replicas placed in this rebalance swap devices, and a
//! moved replica goes back to its device while another partition's replica, at risk
//! there, moves in its place, when that lowers the replicas at risk: no device count
//! changes and no move is added.
//!
//! **Then level what cannot settle** (`rebalance/level.rs`): a surplus no under-target
//! device can take moves, free, from the device fullest relative to its share to the one
//! least full after taking it, so it is spread where balance barely sees it.
//!
//! # The guarantee
//!
//! Within the rules — min_part_hours; at most one existing replica of a partition moved per
//! rebalance (slots of removed devices and new slots of a replica-count increase aside);
//! the plan's per-tier bounds, which carry the overload cap; devices being removed drained
//! completely — a rebalance:
//!
//! - **never leaves a device above its target unexplained.** Targets are the plan's integer
//!   shares, so a device at or below its target is within its overload-adjusted share.
//!   Every device left above target is listed in `RebalanceOutcome::unmet` (and printed by
//!   `ringsmith ring rebalance`, also with `--dry-run`) with the rule that holds it: how
//!   many of its replicas min_part_hours holds, how many belong to partitions that already
//!   moved a replica, and — when none of its replicas may move — the bound: it cannot go
//!   lower in this rebalance. Otherwise the message says no under-filled device can take
//!   any of its movable replicas within the plan's bounds, with the overload that full
//!   dispersion would need.
//! - **leaves no improving move or chain of moves.** No replica that the rules let move
//!   sits on an over-target device while an under-target device could take it within the
//!   plan (checked from the outside by `tests/rebalance_guarantee.rs` after random operation
//!   sequences), and no augmenting chain of allowed moves from an over-target device to an
//!   under-target one remains (the search is exhaustive, bounded only by a work budget that
//!   real rings do not reach; a cheapest path that would move two replicas of one partition
//!   ends the search). With no chain left, the total surplus cannot be lowered by
//!   moves made in this state; every device then is within one partition-replica of its
//!   integer target wherever the rules allow it.
//! - **moves only what buys balance**: the removed devices' replicas, dispersion fixes, and
//!   moves along cheapest chains (each chain lowers the total surplus by exactly one, and
//!   is the cheapest one in moves given the moves before it — successive shortest paths).
//!
//! What is *not* proven: because a move uses up its partition's one move, chains interact,
//! and successive shortest paths are then not guaranteed to find the global minimum of
//! moves or of the surplus; and dispersion is improved by the passes above, not optimised.
//! `tests/rebalance_scenarios.rs` measures both against Swift on generated scenarios (the
//! scoreboard is in BENCHMARKS.md, including the steps where Swift still does better).
//!
//! # Compared with Swift's
//!
//! Same plan, same rules. Swift's gather passes pick replicas before knowing whether a
//! better home exists, so they move replicas that end where they were or elsewhere no
//! better; here every balance move lowers a surplus, and chains reach placements that a
//! greedy pass misses (issue 14's drained server, `fixtures/scenarios/drain-server.json`:
//! balance 1.86 with 377 partition-replicas moved, where Swift reaches 2.94 with 656 moves
//! in three rebalances; the direct pass alone left 11.67). The descent with backtracking
//! never fails where Swift's greedy one gets stuck.
//!
//! Determinism: the only randomness is a ChaCha8 stream seeded from `RebalanceOptions::seed`
//! (tie-break order of tiers and the scan start), and every iteration is over vectors in id
//! order, so a seed gives the same ring on any machine.

mod augment;
mod disperse;
mod level;
mod report;
mod shorten;
mod surplus;
mod transport;
mod unmet;

pub use report::{DeviceMoves, RebalancePlan, TierMoves};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::{py_float, BuilderError};
use super::plan::{ReplicaPlan, NO_TIER};
use super::{dispersion, RebalanceOptions, RebalanceOutcome, RingBuilder, NONE_DEV};

/// Partitions per scan chunk of the move passes: bounded work, no per-slot allocation.
const MAX_SURPLUS_PASSES: usize = 6;

impl RingBuilder {
    /// Assign partitions to devices (see the module docs). Fails without changing anything
    /// when the ring cannot be built (too few devices, no weight, an inconsistent plan).
    pub fn rebalance(&mut self, opts: &RebalanceOptions) -> Result<RebalanceOutcome, BuilderError> {
        let weighted = self.iter_devs().filter(|d| d.dev.weight > 0.0).count();
        if (weighted as f64) < self.replicas {
            return Err(BuilderError::Validation(format!(
                "Replica count of {} requires more than {} devices",
                py_float(self.replicas),
                weighted
            )));
        }
        let plan = self.replica_plan()?;
        let now = opts.now_secs.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let seed = opts.seed.unwrap_or_else(|| rand::thread_rng().gen());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.update_last_part_moves(now);
        let old = self.replica2part2dev.clone();
        let mut run = Run::new(self, &plan, &mut rng);
        run.adjust_rows();
        run.gather_removed();
        run.gather_dispersion();
        run.place_queued();
        run.release_unmoved();
        run.settle_by_free_paths();
        run.settle_surplus();
        run.settle_by_paths();
        let shortened = run.shorten_chains();
        run.disperse_placed();
        let trades = run.disperse_sources() + run.disperse_rows();
        if shortened + trades > 0 && run.over_total() > 0 {
            run.settle_surplus();
            run.settle_by_paths();
        }
        if run.level_surplus() > 0 && run.over_total() > 0 {
            run.settle_surplus();
            run.settle_by_paths();
        }
        let unmet = run.unmet();
        let Run {
            table,
            moved_parts,
            gather_start,
            ..
        } = run;
        self.replica2part2dev = Some(table);
        self.last_part_gather_start = gather_start as u64;
        for (part, &moved) in moved_parts.iter().enumerate() {
            if moved {
                self.last_part_moves[part] = 0;
            }
        }
        let changed = count_changed(old.as_deref(), self.replica2part2dev.as_ref().unwrap());
        let removed = self.remove_failed_devices();
        self.devs_changed = false;
        // parts_wanted after the fact: what each device still wants (Swift keeps the same key).
        let parts_total = self.parts() as f64 * self.replicas;
        for dev in self.devs.iter_mut().flatten() {
            let node = plan.tree.dev_path.get(dev.dev.id as usize).map(|p| p[3]);
            dev.parts_wanted = Some(match node {
                Some(n) if n != NO_TIER && dev.dev.weight > 0.0 => {
                    plan.parts_by_tier[n as usize] as f64 - dev.parts as f64
                }
                _ => -parts_total,
            });
        }
        let tree = super::plan::TierTree::build(self);
        let data = dispersion::compute(self, &tree);
        self.dispersion_graph = data.graph;
        self.dispersion = Some(data.dispersion);
        self.version += 1;
        let mut unmet = unmet;
        if data.dispersion > 0.0 && plan.required_overload > self.overload {
            let worst = self
                .dispersion_report(None, false)
                .worst_tier
                .unwrap_or_else(|| "-".into());
            unmet.push(format!(
                "dispersion {:.2}% (worst tier {worst}): full dispersion needs an overload \
                 of {:.6} ({:.2}%), the ring has {:.6}",
                data.dispersion,
                plan.required_overload,
                plan.required_overload * 100.0,
                self.overload
            ));
        }
        let finished = unmet.is_empty();
        Ok(RebalanceOutcome {
            changed_parts: changed,
            balance: self.get_balance(),
            removed_devs: removed,
            dispersion: data.dispersion,
            finished,
            unmet,
        })
    }

    /// Age `last_part_moves` by the whole hours since the last epoch (Swift's rule: the
    /// epoch only advances when at least an hour has passed).
    pub fn update_last_part_moves(&mut self, now: u64) {
        let parts = self.parts();
        if self.last_part_moves.len() != parts {
            self.last_part_moves.resize(parts, 0xff);
        }
        let elapsed_hours = now.saturating_sub(self.last_part_moves_epoch) / 3600;
        if elapsed_hours == 0 {
            return;
        }
        let add = elapsed_hours.min(255) as u16;
        for hours in &mut self.last_part_moves {
            *hours = (*hours as u16 + add).min(255) as u8;
        }
        self.last_part_moves_epoch = now;
    }

    /// Delete the devices marked for removal, trim trailing holes, and go back to 2-byte
    /// ids when they fit comfortably. Returns how many were removed.
    fn remove_failed_devices(&mut self) -> u64 {
        let removed = self.remove_devs.len() as u64;
        for id in std::mem::take(&mut self.remove_devs) {
            if let Some(slot) = self.devs.get_mut(id as usize) {
                *slot = None;
            }
        }
        while matches!(self.devs.last(), Some(None)) {
            self.devs.pop();
        }
        if self.dev_id_bytes > 2 && self.devs.len() < 0xFFFF / 2 {
            self.dev_id_bytes = 2;
        }
        removed
    }
}

fn count_changed(old: Option<&[Vec<u32>]>, new: &[Vec<u32>]) -> u64 {
    let mut changed = 0u64;
    for (r, row) in new.iter().enumerate() {
        let old_row = old.and_then(|o| o.get(r));
        for (p, &d) in row.iter().enumerate() {
            if old_row.and_then(|o| o.get(p)) != Some(&d) {
                changed += 1;
            }
        }
    }
    changed
}

/// The working state of one rebalance.
struct Run<'a> {
    b: &'a mut RingBuilder,
    plan: &'a ReplicaPlan,
    table: Vec<Vec<u32>>,
    /// Table before this rebalance (to tell slots placed in this run apart).
    old: Vec<Vec<u32>>,
    parts: usize,
    /// Partition-replicas per tier node right now.
    count: Vec<i64>,
    /// Target partition-replicas per tier node (0 for tiers without weight).
    target: Vec<i64>,
    /// Seeded tie-break rank per node.
    rank: Vec<u32>,
    /// Slots waiting for a device: (part, row).
    queue: Vec<(u32, u16)>,
    /// Parts that lost or gained a replica in this rebalance.
    moved_parts: Vec<bool>,
    /// Parts with a replica-count change or a removed device this run (their other
    /// replicas stay put).
    gather_start: usize,
    scratch: Vec<[u32; 4]>,
    dfs_buf: Vec<Vec<(bool, i64, u32, u32)>>,
    /// Slots placed in this run, which can be re-placed without counting another move.
    /// Appended to, never pruned: a slot whose replica ends where it was before the run
    /// (a gathered replica placed back, a trade sending one back) keeps its entry, so
    /// every reader checks `placed_this_run` — pruning after each such step would cost a
    /// pass over millions of entries on a first rebalance.
    fluid: Vec<(u32, u16)>,
    /// Bounds the work of augmenting steps per rebalance (they are rare on real rings).
    displace_budget: u64,
    /// The weighted children of node i are `children[child_start[i]..child_start[i + 1]]`
    /// (a flat copy of the tree for the hot loop).
    child_start: Vec<u32>,
    children: Vec<u32>,
    /// Per node: the plan's per-partition bound and the fair share dispersion uses.
    max: Vec<u32>,
    fair: Vec<u32>,
    depth_of: Vec<u8>,
    dev_of: Vec<u32>,
    /// Per device node: the weight's share of partition-replicas (what balance measures
    /// against; 0 without weight).
    share: Vec<f64>,
}

impl<'a> Run<'a> {
    fn new(b: &'a mut RingBuilder, plan: &'a ReplicaPlan, rng: &mut ChaCha8Rng) -> Run<'a> {
        let weight_of_one_part = b.weight_of_one_part().unwrap_or(0.0);
        let mut share = vec![0.0; plan.tree.len()];
        for dev in b.iter_devs() {
            let node = plan.tree.dev_path[dev.dev.id as usize][3] as usize;
            share[node] = dev.dev.weight * weight_of_one_part;
        }
        let parts = b.parts();
        let n = plan.tree.len();
        let table = b.replica2part2dev.take().unwrap_or_default();
        let old = table.clone();
        let target: Vec<i64> = plan
            .tree
            .nodes
            .iter()
            .zip(&plan.parts_by_tier)
            .map(|(node, &parts)| {
                if node.num_weighted_devs > 0 {
                    parts as i64
                } else {
                    0
                }
            })
            .collect();
        let rank = (0..n).map(|_| rng.gen::<u32>()).collect();
        let mut child_start = Vec::with_capacity(n + 1);
        let mut children = Vec::new();
        for node in &plan.tree.nodes {
            child_start.push(children.len() as u32);
            children.extend_from_slice(&node.weighted_children);
        }
        child_start.push(children.len() as u32);
        let gather_start = if parts > 1 {
            (b.last_part_gather_start as usize + parts / 4 + rng.gen_range(0..=parts / 2)) % parts
        } else {
            0
        };
        Run {
            b,
            plan,
            table,
            old,
            parts,
            count: vec![0; n],
            target,
            rank,
            queue: Vec::new(),
            moved_parts: vec![false; parts],
            gather_start,
            scratch: Vec::new(),
            dfs_buf: vec![Vec::new(); 5],
            fluid: Vec::new(),
            displace_budget: 500_000,
            child_start,
            children,
            max: plan.max.clone(),
            fair: plan
                .max_allowed
                .iter()
                .map(|&x| x.floor().max(0.0) as u32)
                .collect(),
            depth_of: plan.tree.nodes.iter().map(|n| n.depth).collect(),
            dev_of: plan.tree.nodes.iter().map(|n| n.dev_id).collect(),
            share,
        }
    }

    /// How full a device node is relative to its weight's share (what balance measures):
    /// of two over-target devices the fuller one gives up a replica first.
    fn fill(&self, node: usize) -> f64 {
        let share = self.share[node];
        if share > 0.0 {
            self.count[node] as f64 / share
        } else {
            f64::INFINITY
        }
    }

    fn path(&self, dev: u32) -> [u32; 4] {
        self.plan.tree.dev_path[dev as usize]
    }

    fn add_count(&mut self, dev: u32, delta: i64) {
        let path = self.path(dev);
        self.count[0] += delta;
        for node in path {
            self.count[node as usize] += delta;
        }
        if let Some(d) = self.b.devs[dev as usize].as_mut() {
            d.parts = (d.parts as i64 + delta) as u64;
        }
    }

    /// Grow or shrink the rows to the replica count; count what stays; queue new slots.
    fn adjust_rows(&mut self) {
        let parts = self.parts;
        let whole = self.b.replicas.trunc() as usize;
        let frac = self.b.replicas.fract();
        let mut lengths = vec![parts; whole];
        if frac > 0.0 {
            lengths.push((parts as f64 * frac) as usize);
        }
        // Device counters are rebuilt from the table, so a table and counters that
        // disagree (an old or hand-edited builder) heal here.
        for dev in self.b.devs.iter_mut().flatten() {
            dev.parts = 0;
        }
        self.table.truncate(lengths.len());
        for (r, &len) in lengths.iter().enumerate() {
            if r == self.table.len() {
                self.table.push(Vec::new());
            }
            let row = &mut self.table[r];
            row.truncate(len);
            while row.len() < len {
                let p = row.len();
                row.push(NONE_DEV);
                self.queue.push((p as u32, r as u16));
                self.moved_parts[p] = true;
            }
        }
        for r in 0..self.table.len() {
            for p in 0..self.table[r].len() {
                let d = self.table[r][p];
                if d == NONE_DEV {
                    continue;
                }
                if self.b.dev(d).is_none() {
                    // A slot on a device that no longer exists: place it again.
                    self.table[r][p] = NONE_DEV;
                    self.queue.push((p as u32, r as u16));
                    self.moved_parts[p] = true;
                    continue;
                }
                self.add_count(d, 1);
            }
        }
    }

    /// Every slot of a device pending removal goes, whatever min_part_hours says.
    fn gather_removed(&mut self) {
        if self.b.remove_devs.is_empty() {
            return;
        }
        let mut removing = vec![false; self.b.devs.len()];
        for &id in &self.b.remove_devs {
            if let Some(x) = removing.get_mut(id as usize) {
                *x = true;
            }
        }
        for r in 0..self.table.len() {
            for p in 0..self.table[r].len() {
                let d = self.table[r][p];
                if d != NONE_DEV && removing[d as usize] {
                    self.table[r][p] = NONE_DEV;
                    self.add_count(d, -1);
                    self.queue.push((p as u32, r as u16));
                    self.moved_parts[p] = true;
                }
            }
        }
    }

    fn can_move(&self, part: usize) -> bool {
        !self.moved_parts[part] && self.b.last_part_moves[part] as u32 >= self.b.min_part_hours
    }

    /// Devices of a partition's other replicas, as tier paths (into `self.scratch`).
    fn collect_paths(&mut self, part: usize, skip_row: Option<usize>) {
        self.scratch.clear();
        for r in 0..self.table.len() {
            if Some(r) == skip_row {
                continue;
            }
            if let Some(&d) = self.table[r].get(part) {
                if d != NONE_DEV {
                    let path = self.plan.tree.dev_path[d as usize];
                    self.scratch.push(path);
                }
            }
        }
    }

    /// Partitions with more replicas in a tier than the plan allows give one up (more only
    /// if two sit on the same device).
    fn gather_dispersion(&mut self) {
        let rows = self.table.len();
        for p in 0..self.parts {
            // Duplicates on one device always go (legacy or corrupt tables).
            for r in 1..rows {
                let Some(&d) = self.table[r].get(p) else {
                    continue;
                };
                if d == NONE_DEV {
                    continue;
                }
                if (0..r).any(|q| self.table[q].get(p) == Some(&d)) {
                    self.table[r][p] = NONE_DEV;
                    self.add_count(d, -1);
                    self.queue.push((p as u32, r as u16));
                    self.moved_parts[p] = true;
                }
            }
            if !self.can_move(p) {
                continue;
            }
            self.collect_paths(p, None);
            // A replica on a device without weight goes first (its device is over its
            // bound of 0, and one replica per partition per rebalance may go), then the one
            // on the device fullest relative to its weight's share (as in the surplus pass:
            // one replica per partition may go, so it goes from the worst device).
            let mut best: Option<((bool, f64), usize)> = None;
            for r in 0..rows {
                let Some(&d) = self.table[r].get(p) else {
                    continue;
                };
                if d == NONE_DEV {
                    continue;
                }
                let path = self.plan.tree.dev_path[d as usize];
                let violates = (0..4).any(|level| {
                    let node = path[level];
                    let n = self.scratch.iter().filter(|q| q[level] == node).count();
                    n as u32 > self.plan.max[node as usize]
                });
                if violates {
                    let dn = path[3] as usize;
                    let key = (self.max[dn] == 0, self.fill(dn));
                    let better = |k: (bool, f64)| (key.0 && !k.0) || (key.0 == k.0 && key.1 > k.1);
                    if best.is_none_or(|(k, _)| better(k)) {
                        best = Some((key, r));
                    }
                }
            }
            if let Some((_, r)) = best {
                let d = self.table[r][p];
                self.table[r][p] = NONE_DEV;
                self.add_count(d, -1);
                self.queue.push((p as u32, r as u16));
                self.moved_parts[p] = true;
            }
        }
    }

    /// Depth-first search for a device for a partition whose other replicas are in
    /// `self.scratch`: children with room for the partition, largest deficit first; with
    /// `need_deficit`, only tiers below their target.
    fn find_home(&mut self, node: u32, need_deficit: bool) -> Option<u32> {
        let depth = self.depth_of[node as usize] as usize;
        if depth == 4 {
            return Some(self.dev_of[node as usize]);
        }
        let (lo, hi) = (
            self.child_start[node as usize] as usize,
            self.child_start[node as usize + 1] as usize,
        );
        // Common case first: the best child by key, without building a list; the sorted
        // list is only built when that branch has no room (backtracking).
        let mut best: Option<(bool, i64, u32, u32)> = None;
        for i in lo..hi {
            let c = self.children[i];
            if let Some(key) = self.child_key(c, depth, need_deficit) {
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
        let best = best?;
        if let Some(d) = self.find_home(best.3, need_deficit) {
            return Some(d);
        }
        let mut cands = std::mem::take(&mut self.dfs_buf[depth]);
        cands.clear();
        for i in lo..hi {
            let c = self.children[i];
            if c == best.3 {
                continue;
            }
            if let Some(key) = self.child_key(c, depth, need_deficit) {
                cands.push(key);
            }
        }
        cands.sort_unstable();
        let mut found = None;
        for &(_, _, _, c) in &cands {
            if let Some(d) = self.find_home(c, need_deficit) {
                found = Some(d);
                break;
            }
        }
        self.dfs_buf[depth] = cands;
        found
    }

    /// Sort key of a child tier for the partition in `self.scratch`, None if it has no
    /// room for it. Tiers where one more replica stays within the fair share (what
    /// dispersion measures) come first, then the largest deficit, then the seeded rank.
    #[inline(always)]
    fn child_key(&self, c: u32, depth: usize, need_deficit: bool) -> Option<(bool, i64, u32, u32)> {
        let ci = c as usize;
        let deficit = self.target[ci] - self.count[ci];
        if need_deficit && deficit <= 0 {
            return None;
        }
        let mut here = 0u32;
        for q in &self.scratch {
            here += (q[depth] == c) as u32;
        }
        if here >= self.max[ci] {
            return None;
        }
        Some((here >= self.fair[ci], -deficit, self.rank[ci], c))
    }

    /// Last resort when no placement within the plan exists: the weighted device without
    /// a replica of the partition that breaks the fewest tier bounds, then the largest
    /// deficit.
    fn fallback_home(&self) -> Option<u32> {
        let mut best: Option<(u32, i64, u32, u32)> = None;
        for dev in self.b.iter_devs() {
            if dev.dev.weight <= 0.0 {
                continue;
            }
            let path = self.plan.tree.dev_path[dev.dev.id as usize];
            if self.scratch.iter().any(|q| q[3] == path[3]) {
                continue;
            }
            let broken = (0..4)
                .filter(|&l| {
                    let here = self.scratch.iter().filter(|q| q[l] == path[l]).count() as u32;
                    here >= self.plan.max[path[l] as usize]
                })
                .count() as u32;
            let dn = path[3] as usize;
            let key = (
                broken,
                -(self.target[dn] - self.count[dn]),
                self.rank[dn],
                dev.dev.id,
            );
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|b| b.3)
    }

    fn place(&mut self, part: usize, row: usize) {
        self.collect_paths(part, Some(row));
        let dev = match self.find_home(0, true) {
            Some(dev) => dev,
            None => match self.place_by_displacing(part, row) {
                Some(dev) => dev,
                None => {
                    self.collect_paths(part, Some(row));
                    self.find_home(0, false)
                        .or_else(|| self.fallback_home())
                        .expect("a weighted device without this partition exists (checked before)")
                }
            },
        };
        self.table[row][part] = dev;
        self.add_count(dev, 1);
        self.fluid.push((part as u32, row as u16));
    }

    /// True if the partition (other replicas in `self.scratch`) may go to `dev` within the plan.
    fn admissible(&self, dev: u32) -> bool {
        let path = self.plan.tree.dev_path[dev as usize];
        if self.plan.tree.nodes[path[3] as usize].num_weighted_devs == 0 {
            return false;
        }
        (0..4).all(|l| {
            let here = self.scratch.iter().filter(|q| q[l] == path[l]).count() as u32;
            here < self.plan.max[path[l] as usize]
        })
    }

    /// An augmenting step for a slot with no under-target device that can take it: find a
    /// replica placed earlier in this run on a device Y that could take this slot instead,
    /// and move that replica on to an under-target device. Both are placements of this
    /// run, so no extra partition moves. Returns Y, with the counts of the displaced replica
    /// already updated (the caller places the slot on Y).
    fn place_by_displacing(&mut self, part: usize, row: usize) -> Option<u32> {
        const MAX_TRIES: usize = 2_000;
        if self.displace_budget == 0 {
            return None;
        }
        let own_paths = self.scratch.clone();
        let mut result = None;
        for i in (0..self.fluid.len()).rev().take(MAX_TRIES) {
            let (qp, qr) = self.fluid[i];
            let (qp, qr) = (qp as usize, qr as usize);
            // A dispersion trade can send a replica back where it was: no longer fluid.
            if qp == part || !self.placed_this_run(qr, qp) {
                continue;
            }
            if self.displace_budget == 0 {
                break;
            }
            self.displace_budget -= 1;
            let y = self.table[qr][qp];
            if y == NONE_DEV {
                continue;
            }
            self.scratch.clone_from(&own_paths);
            if !self.admissible(y) {
                continue;
            }
            self.collect_paths(qp, Some(qr));
            self.add_count(y, -1);
            match self.find_home(0, true) {
                Some(d) if d != y => {
                    self.table[qr][qp] = d;
                    self.add_count(d, 1);
                    self.fluid.push((qp as u32, qr as u16));
                    result = Some(y);
                    break;
                }
                _ => self.add_count(y, 1),
            }
        }
        let _ = row;
        self.scratch = own_paths;
        result
    }

    /// Places the queued slots; many at once (a drained server) first get zone quotas from
    /// a transportation problem (`rebalance/transport.rs`), so early slots do not spend the
    /// room late ones need.
    fn place_queued(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        let mut quotas = self.zone_quotas(&queue);
        for (i, &(p, r)) in queue.iter().enumerate() {
            let (p, r) = (p as usize, r as usize);
            if let Some(q) = quotas.as_mut() {
                if self.place_by_quota(q, i, p, r) {
                    continue;
                }
            }
            self.place(p, r);
        }
    }

    /// A partition whose gathered replica went back to the device it came from has not
    /// moved: it keeps its one move for this rebalance (and its min_part_hours clock).
    fn release_unmoved(&mut self) {
        for p in 0..self.parts {
            if self.moved_parts[p]
                && (0..self.table.len()).all(|r| {
                    p >= self.table[r].len()
                        || (p < self.old.get(r).map_or(0, Vec::len) && !self.placed_this_run(r, p))
                })
            {
                self.moved_parts[p] = false;
            }
        }
    }

    fn placed_this_run(&self, row: usize, part: usize) -> bool {
        self.old.get(row).and_then(|r| r.get(part)) != Some(&self.table[row][part])
    }
}

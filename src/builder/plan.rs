//! The replica plan: how many replicas of each partition every tier should hold.
//!
//! Swift turns device weights into placement targets in four steps, and Ringsmith keeps
//! them bit for bit (the float arithmetic is done in the same order, so the numbers of
//! Swift's unit tests come out identical):
//!
//! 1. **weighted** replicanths: each weighted device gets `weight * replicas / total_weight`
//!    of a partition, capped at one replica (a device cannot hold two copies); what the caps
//!    cut off is spread again over the devices with room. Tiers sum their devices.
//! 2. **wanted** replicanths: "as dispersed as possible, then by weight". From the root down,
//!    a tier's replicanths are water-filled into its children by weight, clamped between the
//!    floor and ceiling of an even split, and never above the child's device count.
//! 3. **required overload**: the largest relative increase any device needs to go from
//!    weighted to wanted. The **target** interpolates linearly between weighted (overload 0)
//!    and wanted (overload >= required).
//! 4. **plan**: per tier `min = floor(target)`, `max = ceil(target)` (with 1e-10 slack): how
//!    many replicas of any one partition the tier may hold. And **parts per tier**: the
//!    integer number of partition-replicas each tier (down to each device) should hold,
//!    `floor(target * parts)` per child plus the leftovers dealt round-robin to the children
//!    with the smallest targets first.
//!
//! Tiers are numbered once per rebalance in a [`TierTree`] (root 0, then regions, zones,
//! servers and devices, each level in Swift's sorted-tuple order), so that everything else
//! works on flat arrays indexed by tier id instead of hashing tuples.

use std::collections::BTreeMap;

use super::error::BuilderError;
use super::RingBuilder;
use crate::device::Tier;

/// Marks "no tier" in the per-device path arrays (holes in `devs`).
pub(crate) const NO_TIER: u32 = u32::MAX;

/// One node of the tier tree.
#[derive(Clone, Debug)]
pub(crate) struct TierNode {
    /// None for the root.
    pub tier: Option<Tier>,
    /// 0 root, 1 region, 2 zone, 3 server, 4 device.
    pub depth: u8,
    pub parent: u32,
    /// Children holding at least one weighted device, in sorted tier order (Swift's
    /// `build_tier_tree` over weighted devices).
    pub weighted_children: Vec<u32>,
    /// Weighted devices below this node.
    pub num_weighted_devs: u32,
    /// For device nodes, the device id.
    pub dev_id: u32,
}

/// Every tier of every device (weighted or not), numbered.
#[derive(Clone, Debug)]
pub(crate) struct TierTree {
    pub nodes: Vec<TierNode>,
    /// Per device id: the node ids of its region, zone, server and device tiers
    /// (`[NO_TIER; 4]` for holes).
    pub dev_path: Vec<[u32; 4]>,
}

impl TierTree {
    pub(crate) fn build(builder: &RingBuilder) -> TierTree {
        let mut all: BTreeMap<Tier, u32> = BTreeMap::new();
        for dev in builder.devs.iter().flatten() {
            for tier in dev.dev.tiers() {
                all.insert(tier, 0);
            }
        }
        let mut nodes = vec![TierNode {
            tier: None,
            depth: 0,
            parent: NO_TIER,
            weighted_children: Vec::new(),
            num_weighted_devs: 0,
            dev_id: NO_TIER,
        }];
        // Tier's Ord puts all regions before all zones etc., so parents get their ids first.
        let keys: Vec<Tier> = all.keys().cloned().collect();
        for tier in keys {
            let parent = match &tier {
                Tier::Region(_) => 0,
                Tier::Zone(r, _) => all[&Tier::Region(*r)],
                Tier::Server(r, z, _) => all[&Tier::Zone(*r, *z)],
                Tier::Device(r, z, ip, _) => all[&Tier::Server(*r, *z, ip.clone())],
            };
            let id = nodes.len() as u32;
            let dev_id = match &tier {
                Tier::Device(_, _, _, id) => *id,
                _ => NO_TIER,
            };
            nodes.push(TierNode {
                depth: tier.depth() as u8,
                tier: Some(tier.clone()),
                parent,
                weighted_children: Vec::new(),
                num_weighted_devs: 0,
                dev_id,
            });
            all.insert(tier, id);
        }
        let mut dev_path = vec![[NO_TIER; 4]; builder.devs.len()];
        for dev in builder.devs.iter().flatten() {
            let tiers = dev.dev.tiers();
            let path = [
                all[&tiers[0]],
                all[&tiers[1]],
                all[&tiers[2]],
                all[&tiers[3]],
            ];
            dev_path[dev.dev.id as usize] = path;
            if dev.dev.weight > 0.0 {
                nodes[0].num_weighted_devs += 1;
                for node in path {
                    nodes[node as usize].num_weighted_devs += 1;
                }
            }
        }
        // Children in id order are in sorted tier order.
        for id in 1..nodes.len() {
            if nodes[id].num_weighted_devs > 0 {
                let parent = nodes[id].parent as usize;
                nodes[parent].weighted_children.push(id as u32);
            }
        }
        TierTree { nodes, dev_path }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node ids of one depth, in sorted tier order.
    pub(crate) fn level(&self, depth: u8) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.nodes[i].depth == depth)
    }
}

/// Everything the rebalancer and the reports need from the weights, per tier id.
#[derive(Clone, Debug)]
pub(crate) struct ReplicaPlan {
    pub tree: TierTree,
    pub target: Vec<f64>,
    pub required_overload: f64,
    /// Per-partition bound: `ceil(target)` (Swift's plan `max`).
    pub max: Vec<u32>,
    /// Swift's `_build_max_replicas_by_tier()` (ceil bound): what dispersion measures against.
    pub max_allowed: Vec<f64>,
    /// Partition-replicas each tier should hold (device level: each device's target).
    pub parts_by_tier: Vec<u64>,
}

impl RingBuilder {
    /// `parts * replicas / total weight`: how much weight one partition-replica is worth.
    pub fn weight_of_one_part(&self) -> Result<f64, BuilderError> {
        let total: f64 = self.iter_devs().fold(0.0, |acc, d| acc + d.dev.weight);
        if total == 0.0 {
            return Err(BuilderError::EmptyRing);
        }
        Ok(self.parts() as f64 * self.replicas / total)
    }

    /// The minimum overload that makes the ring fully dispersed (0 when weights allow it).
    pub fn get_required_overload(&self) -> Result<f64, BuilderError> {
        let tree = TierTree::build(self);
        let weighted = weighted_replicas(self, &tree)?;
        let wanted = wanted_replicas(self, &tree, &weighted)?;
        required_overload(self, &tree, &weighted, &wanted)
    }

    /// Swift's `_build_weighted_replicas_by_tier()` (root omitted).
    pub fn weighted_replicas_by_tier(&self) -> Result<BTreeMap<Tier, f64>, BuilderError> {
        let tree = TierTree::build(self);
        let weighted = weighted_replicas(self, &tree)?;
        Ok(by_tier(&tree, &weighted))
    }

    /// Swift's `_build_wanted_replicas_by_tier()` (root omitted).
    pub fn wanted_replicas_by_tier(&self) -> Result<BTreeMap<Tier, f64>, BuilderError> {
        let tree = TierTree::build(self);
        let weighted = weighted_replicas(self, &tree)?;
        let wanted = wanted_replicas(self, &tree, &weighted)?;
        Ok(by_tier(&tree, &wanted))
    }

    /// Swift's `_build_target_replicas_by_tier()` (root omitted).
    pub fn target_replicas_by_tier(&self) -> Result<BTreeMap<Tier, f64>, BuilderError> {
        let plan = self.replica_plan()?;
        Ok(by_tier(&plan.tree, &plan.target))
    }

    /// Partition-replicas each tier should hold after a rebalance (Swift's
    /// `_set_parts_wanted` arithmetic), root omitted.
    pub fn parts_by_tier(&self) -> Result<BTreeMap<Tier, u64>, BuilderError> {
        let plan = self.replica_plan()?;
        let mut out = BTreeMap::new();
        for (i, node) in plan.tree.nodes.iter().enumerate() {
            if let Some(t) = &node.tier {
                if node.num_weighted_devs > 0 {
                    out.insert(t.clone(), plan.parts_by_tier[i]);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn replica_plan(&self) -> Result<ReplicaPlan, BuilderError> {
        let tree = TierTree::build(self);
        let weighted = weighted_replicas(self, &tree)?;
        let wanted = wanted_replicas(self, &tree, &weighted)?;
        let required = required_overload(self, &tree, &weighted, &wanted)?;
        let target = if required <= 0.0 {
            wanted
        } else {
            let overload = self.overload.min(required);
            let mut target = vec![0.0; tree.len()];
            for i in 0..tree.len() {
                if tree.nodes[i].num_weighted_devs == 0 {
                    continue;
                }
                let m = (wanted[i] - weighted[i]) / required;
                target[i] = m * overload + weighted[i];
            }
            validate_replicas_by_tier(self.replicas, &tree, &target)?;
            target
        };
        let max = target
            .iter()
            .map(|&r| (r - 1e-10).ceil().max(0.0) as u32)
            .collect();
        let max_allowed = max_replicas(self, &tree, f64::ceil);
        let parts_by_tier = parts_by_tier(self, &tree, &target)?;
        Ok(ReplicaPlan {
            tree,
            target,
            required_overload: required,
            max,
            max_allowed,
            parts_by_tier,
        })
    }
}

fn by_tier(tree: &TierTree, values: &[f64]) -> BTreeMap<Tier, f64> {
    let mut out = BTreeMap::new();
    for (i, node) in tree.nodes.iter().enumerate() {
        if let Some(t) = &node.tier {
            if node.num_weighted_devs > 0 {
                out.insert(t.clone(), values[i]);
            }
        }
    }
    out
}

/// Every tier level must sum to the replica count (Swift's `validate_replicas_by_tier`).
fn validate_replicas_by_tier(
    replicas: f64,
    tree: &TierTree,
    values: &[f64],
) -> Result<(), BuilderError> {
    let names = ["cluster", "regions", "zones", "servers", "devices"];
    for (depth, name) in names.iter().enumerate() {
        let sum: f64 = tree
            .level(depth as u8)
            .filter(|&i| tree.nodes[i].num_weighted_devs > 0)
            .fold(0.0, |acc, i| acc + values[i]);
        if (replicas - sum).abs() > 1e-10 {
            return Err(BuilderError::Validation(format!(
                "{sum:?} != {replicas:?} at tier {name}"
            )));
        }
    }
    Ok(())
}

fn weighted_replicas(builder: &RingBuilder, tree: &TierTree) -> Result<Vec<f64>, BuilderError> {
    let weight_of_one_part = builder.weight_of_one_part()?;
    let parts = builder.parts() as f64;
    // (dev id, replicanths), in devs order: the sums below must add in Swift's order.
    let mut per_dev: Vec<(u32, f64)> = Vec::new();
    let mut with_room: Vec<usize> = Vec::new();
    for d in builder.iter_devs() {
        if d.dev.weight == 0.0 {
            continue;
        }
        let mut w = d.dev.weight * weight_of_one_part / parts;
        if w < 1.0 {
            with_room.push(per_dev.len());
        } else {
            w = 1.0;
        }
        per_dev.push((d.dev.id, w));
    }
    loop {
        let assigned = per_dev.iter().fold(0.0, |acc, &(_, w)| acc + w);
        let remaining = builder.replicas - assigned;
        if remaining < 1e-10 {
            break;
        }
        with_room.retain(|&i| per_dev[i].1 < 1.0);
        let room = with_room.iter().fold(0.0, |acc, &i| acc + per_dev[i].1);
        if with_room.is_empty() || room == 0.0 {
            return Err(BuilderError::Validation(format!(
                "Replica count of {} requires more than {} devices",
                super::error::py_float(builder.replicas),
                per_dev.len()
            )));
        }
        let rel_weight = remaining / room;
        for &i in &with_room {
            per_dev[i].1 = (per_dev[i].1 * (rel_weight + 1.0)).min(1.0);
        }
    }
    let mut by_node = vec![0.0; tree.len()];
    for (id, w) in per_dev {
        by_node[0] += w;
        for node in tree.dev_path[id as usize] {
            by_node[node as usize] += w;
        }
    }
    validate_replicas_by_tier(builder.replicas, tree, &by_node)?;
    Ok(by_node)
}

/// Swift's `_build_max_replicas_by_tier(bound)` over the weighted tree; 0 elsewhere.
pub(crate) fn max_replicas(
    builder: &RingBuilder,
    tree: &TierTree,
    bound: fn(f64) -> f64,
) -> Vec<f64> {
    let mut out = vec![0.0; tree.len()];
    let mut stack = vec![(0usize, builder.replicas)];
    while let Some((node, count)) = stack.pop() {
        let n = &tree.nodes[node];
        let count = if n.depth == 4 { count.min(1.0) } else { count };
        out[node] = count;
        let children = &n.weighted_children;
        for &c in children {
            stack.push((c as usize, bound(count / children.len() as f64)));
        }
    }
    out
}

fn wanted_replicas(
    builder: &RingBuilder,
    tree: &TierTree,
    weighted: &[f64],
) -> Result<Vec<f64>, BuilderError> {
    let even = max_replicas(builder, tree, |x| x);
    let dmin: Vec<f64> = even.iter().map(|r| r.floor()).collect();
    let dmax: Vec<f64> = even.iter().map(|r| r.ceil()).collect();
    let num_devs: Vec<f64> = tree
        .nodes
        .iter()
        .map(|n| n.num_weighted_devs as f64)
        .collect();
    let mut wanted = vec![0.0; tree.len()];
    let mut stack = vec![(0usize, builder.replicas)];
    while let Some((node, replicanths)) = stack.pop() {
        if replicanths > num_devs[node] {
            return Err(BuilderError::Validation(format!(
                "More replicanths ({replicanths:?}) than devices ({}) in tier ({})",
                num_devs[node],
                tier_repr(tree, node)
            )));
        }
        wanted[node] = replicanths;
        let sub: &[u32] = &tree.nodes[node].weighted_children;
        if sub.is_empty() {
            continue;
        }
        let mut to_place = vec![0.0f64; sub.len()];
        let mut remaining = replicanths;
        let mut spread: Vec<usize> = (0..sub.len()).collect();
        let mut device_limited = false;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let spread_weight = spread
                .iter()
                .fold(0.0, |acc, &i| acc + weighted[sub[i] as usize]);
            if spread.is_empty() || rounds > 10_000 {
                return Err(BuilderError::Validation(format!(
                    "Unable to place {replicanths:?} replicanths in tier ({})",
                    tier_repr(tree, node)
                )));
            }
            let rel_weight = remaining / spread_weight;
            for &i in &spread {
                let t = sub[i] as usize;
                let mut r = to_place[i] + weighted[t] * rel_weight;
                if r < dmin[t] {
                    r = dmin[t];
                } else if r > dmax[t] && !device_limited {
                    r = dmax[t];
                }
                if r > num_devs[t] {
                    r = num_devs[t];
                }
                to_place[i] = r;
            }
            remaining = replicanths - to_place.iter().fold(0.0, |acc, &x| acc + x);
            if remaining < -1e-10 {
                spread = (0..sub.len())
                    .filter(|&i| to_place[i] > dmin[sub[i] as usize])
                    .collect();
            } else if remaining > 1e-10 {
                spread = (0..sub.len())
                    .filter(|&i| {
                        let t = sub[i] as usize;
                        num_devs[t] > to_place[i] && to_place[i] < dmax[t]
                    })
                    .collect();
                if spread.is_empty() {
                    device_limited = true;
                    spread = (0..sub.len())
                        .filter(|&i| to_place[i] < num_devs[sub[i] as usize])
                        .collect();
                }
            } else {
                break;
            }
        }
        for (i, &t) in sub.iter().enumerate() {
            stack.push((t as usize, to_place[i]));
        }
    }
    validate_replicas_by_tier(builder.replicas, tree, &wanted)?;
    Ok(wanted)
}

fn required_overload(
    builder: &RingBuilder,
    tree: &TierTree,
    weighted: &[f64],
    wanted: &[f64],
) -> Result<f64, BuilderError> {
    let mut max_overload = 0.0;
    for d in builder.iter_devs() {
        let node = tree.dev_path[d.dev.id as usize][3] as usize;
        if d.dev.weight == 0.0 {
            if tree.nodes[node].num_weighted_devs == 0 || wanted[node] == 0.0 {
                continue;
            }
            return Err(BuilderError::Validation(format!(
                "Device {} has zero weight and should not want any replicas",
                tier_repr(tree, node)
            )));
        }
        let required = (wanted[node] - weighted[node]) / weighted[node];
        if required > max_overload {
            max_overload = required;
        }
    }
    Ok(max_overload)
}

/// Swift's `place_parts`: integer partition-replicas per tier from the targets.
fn parts_by_tier(
    builder: &RingBuilder,
    tree: &TierTree,
    target: &[f64],
) -> Result<Vec<u64>, BuilderError> {
    let parts_f = builder.parts() as f64;
    let total = (builder.replicas * parts_f) as u64;
    let mut out = vec![0u64; tree.len()];
    let mut stack = vec![(0usize, total)];
    while let Some((node, mut parts)) = stack.pop() {
        out[node] = parts;
        let sub = &tree.nodes[node].weighted_children;
        if sub.is_empty() {
            continue;
        }
        let mut to_place = vec![0u64; sub.len()];
        for (i, &t) in sub.iter().enumerate() {
            let share = (target[t as usize] * parts_f).floor().max(0.0) as u64;
            to_place[i] = parts.min(share);
            parts -= to_place[i];
        }
        let mut by_target: Vec<usize> = (0..sub.len()).collect();
        // Stable: equal targets keep tier order, as Python's sorted().
        by_target.sort_by(|&a, &b| {
            target[sub[a] as usize]
                .partial_cmp(&target[sub[b] as usize])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut k = 0;
        while parts > 0 {
            to_place[by_target[k % by_target.len()]] += 1;
            parts -= 1;
            k += 1;
        }
        for (i, &t) in sub.iter().enumerate() {
            stack.push((t as usize, to_place[i]));
        }
    }
    let names = ["cluster", "regions", "zones", "servers", "devices"];
    for (depth, name) in names.iter().enumerate() {
        let sum: u64 = tree
            .level(depth as u8)
            .filter(|&i| tree.nodes[i].num_weighted_devs > 0)
            .map(|i| out[i])
            .sum();
        if sum != total {
            return Err(BuilderError::Validation(format!(
                "{sum} != {total} at tier {name}"
            )));
        }
    }
    Ok(out)
}

/// A tier as Python prints the tuple: `(1, 2, '10.0.0.1', 3)`.
pub(crate) fn tier_repr(tree: &TierTree, node: usize) -> String {
    match &tree.nodes[node].tier {
        None => "()".to_string(),
        Some(Tier::Region(r)) => format!("({r},)"),
        Some(Tier::Zone(r, z)) => format!("({r}, {z})"),
        Some(Tier::Server(r, z, ip)) => format!("({r}, {z}, '{ip}')"),
        Some(Tier::Device(r, z, ip, d)) => format!("({r}, {z}, '{ip}', {d})"),
    }
}

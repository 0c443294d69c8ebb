//! Placing many queued replicas at once, as a transportation problem over zones.
//!
//! When a whole server or zone is drained, thousands of replicas wait for a home, and each
//! may only go to the zones its partition does not already fill: a partition with replicas
//! in zones 1, 2 and 3 can take its lost zone-1 replica back into zone 1 or into zone 4,
//! nowhere else. Placed one by one, each into the zone with the largest deficit, the early
//! replicas spend the room the late ones needed: near the end a partition finds both of its
//! zones full while another zone still has room, and the surplus it leaves costs extra
//! moves to repair later (on a 2^18 ring, a drained server cost about 700 moves above the
//! minimum that way).
//!
//! So the queue is first grouped into **classes**, one per set of zones its partitions may
//! use (a handful on real rings), and a maximum flow decides how many of each class go to
//! each zone: source → class (its size) → zone (if the class may use it) → region (the
//! zone's deficit) → sink (the region's deficit). Every replica then descends inside a zone
//! that its class still has quota in, by the usual deficit-first search; one that finds no
//! device there (a server or device bound) takes the ordinary path. The flow only decides
//! zone counts, so the result stays deterministic (classes and zones in id order, ties by
//! the seeded rank).

use super::Run;

/// Above these sizes the grouping is skipped (the greedy path is used as before): the
/// flow stays tiny and the zone sets fit a bit mask.
const MAX_ZONES: usize = 64;
const MAX_CLASSES: usize = 512;
const NO_CLASS: u16 = u16::MAX;

/// Zone quotas per class, and the class of every queued slot.
pub(super) struct Quotas {
    /// Zone tier nodes, in id order.
    zones: Vec<u32>,
    /// `left[class][zone index]`: replicas of the class still to go to that zone.
    left: Vec<Vec<i64>>,
    /// Class of each queued slot (`NO_CLASS`: no zone takes it within its fair share; the
    /// greedy path decides). Two bytes a slot: a first rebalance of 2^20 x 3 queues every
    /// slot.
    class_of: Vec<u16>,
}

impl Run<'_> {
    /// Solves the zone-level transportation problem for the queued slots, or `None` when
    /// the queue is too small to need it or the ring too wide for it.
    pub(super) fn zone_quotas(&mut self, queue: &[(u32, u16)]) -> Option<Quotas> {
        // With nothing placed yet (a first rebalance) every partition may use every zone:
        // one class, nothing to solve.
        if queue.len() < 2 || self.count[0] == 0 {
            return None;
        }
        // Zones with weight, and each zone's region.
        let mut zone_region: Vec<(u32, u32)> = self
            .b
            .iter_devs()
            .filter(|d| d.dev.weight > 0.0)
            .map(|d| {
                let path = self.plan.tree.dev_path[d.dev.id as usize];
                (path[1], path[0])
            })
            .collect();
        zone_region.sort_unstable();
        zone_region.dedup();
        if zone_region.len() < 2 || zone_region.len() > MAX_ZONES {
            return None;
        }
        let zones: Vec<u32> = zone_region.iter().map(|&(z, _)| z).collect();
        let mut regions: Vec<u32> = zone_region.iter().map(|&(_, r)| r).collect();
        regions.sort_unstable();
        regions.dedup();

        // Class = the set of zones the slot's partition has room in.
        let mut masks: Vec<u64> = Vec::new();
        let mut supply: Vec<i64> = Vec::new();
        let mut class_of = Vec::with_capacity(queue.len());
        for &(p, r) in queue {
            self.collect_paths(p as usize, Some(r as usize));
            let mut mask = 0u64;
            for (zi, &(z, rg)) in zone_region.iter().enumerate() {
                let in_region = self.scratch.iter().filter(|q| q[0] == rg).count() as u32;
                let in_zone = self.scratch.iter().filter(|q| q[1] == z).count() as u32;
                // Within the fair share, not only the plan's bound: where the overload does
                // not allow full dispersion, the greedy descent prefers tiers below their fair
                // share, and quotas must not trade that dispersion away.
                if in_region < self.fair[rg as usize] && in_zone < self.fair[z as usize] {
                    mask |= 1 << zi;
                }
            }
            if mask == 0 {
                class_of.push(NO_CLASS);
                continue;
            }
            let class = match masks.iter().position(|&m| m == mask) {
                Some(c) => c,
                None => {
                    if masks.len() == MAX_CLASSES {
                        return None;
                    }
                    masks.push(mask);
                    supply.push(0);
                    masks.len() - 1
                }
            };
            supply[class] += 1;
            class_of.push(class as u16);
        }
        // One class means no choice between classes: the greedy path is already right.
        if masks.len() < 2 {
            return None;
        }

        let deficit = |node: u32| (self.target[node as usize] - self.count[node as usize]).max(0);
        let zone_cap: Vec<i64> = zones.iter().map(|&z| deficit(z)).collect();
        let region_cap: Vec<i64> = regions.iter().map(|&r| deficit(r)).collect();
        let region_of_zone: Vec<usize> = zone_region
            .iter()
            .map(|&(_, rg)| regions.binary_search(&rg).expect("listed"))
            .collect();
        let flow = FlowNet::solve(&supply, &masks, &zone_cap, &region_of_zone, &region_cap);
        Some(Quotas {
            zones,
            left: flow,
            class_of,
        })
    }

    /// Places slot `i` of the queue inside a zone its class still has quota in; false if no
    /// such zone has a device that can take it (the caller then uses the ordinary path).
    pub(super) fn place_by_quota(
        &mut self,
        quotas: &mut Quotas,
        i: usize,
        part: usize,
        row: usize,
    ) -> bool {
        let class = quotas.class_of[i];
        if class == NO_CLASS {
            return false;
        }
        let class = class as usize;
        self.collect_paths(part, Some(row));
        // The zone with the most quota left for this class first, then the larger deficit.
        let mut order: Vec<(i64, i64, u32, usize)> = quotas.left[class]
            .iter()
            .enumerate()
            .filter(|&(_, &left)| left > 0)
            .map(|(zi, &left)| {
                let z = quotas.zones[zi] as usize;
                (-left, self.count[z] - self.target[z], self.rank[z], zi)
            })
            .collect();
        order.sort_unstable();
        for (_, _, _, zi) in order {
            if let Some(dev) = self.find_home(quotas.zones[zi], true) {
                quotas.left[class][zi] -= 1;
                self.table[row][part] = dev;
                self.add_count(dev, 1);
                self.fluid.push((part as u32, row as u16));
                return true;
            }
        }
        false
    }
}

/// The flow network source → class → zone → region → sink, solved by shortest augmenting
/// paths (Edmonds–Karp); it has a few dozen nodes, so this is instant.
struct FlowNet {
    /// Edges as (to, capacity left); edge `e ^ 1` is the reverse of edge `e`.
    edges: Vec<(usize, i64)>,
    out: Vec<Vec<usize>>,
}

impl FlowNet {
    fn add(&mut self, from: usize, to: usize, cap: i64) -> usize {
        self.out[from].push(self.edges.len());
        self.edges.push((to, cap));
        self.out[to].push(self.edges.len());
        self.edges.push((from, 0));
        self.edges.len() - 2
    }

    /// Returns, per class, the flow into each zone.
    fn solve(
        supply: &[i64],
        masks: &[u64],
        zone_cap: &[i64],
        region_of_zone: &[usize],
        region_cap: &[i64],
    ) -> Vec<Vec<i64>> {
        let (classes, zones, regions) = (supply.len(), zone_cap.len(), region_cap.len());
        let source = 0;
        let sink = 1;
        let class_node = |c: usize| 2 + c;
        let zone_node = |z: usize| 2 + classes + z;
        let region_node = |r: usize| 2 + classes + zones + r;
        let mut net = FlowNet {
            edges: Vec::new(),
            out: vec![Vec::new(); 2 + classes + zones + regions],
        };
        let mut class_zone_edge = vec![vec![None; zones]; classes];
        for c in 0..classes {
            net.add(source, class_node(c), supply[c]);
            for (z, slot) in class_zone_edge[c].iter_mut().enumerate() {
                if masks[c] & (1 << z) != 0 {
                    *slot = Some(net.add(class_node(c), zone_node(z), supply[c]));
                }
            }
        }
        for (z, (&region, &cap)) in region_of_zone.iter().zip(zone_cap).enumerate() {
            net.add(zone_node(z), region_node(region), cap);
        }
        for (r, &cap) in region_cap.iter().enumerate() {
            net.add(region_node(r), sink, cap);
        }
        let n = net.out.len();
        loop {
            // Breadth-first search for the shortest path with capacity left.
            let mut via: Vec<Option<usize>> = vec![None; n];
            let mut seen = vec![false; n];
            seen[source] = true;
            let mut frontier = std::collections::VecDeque::from([source]);
            while let Some(u) = frontier.pop_front() {
                for &e in &net.out[u] {
                    let (v, cap) = net.edges[e];
                    if cap > 0 && !seen[v] {
                        seen[v] = true;
                        via[v] = Some(e);
                        frontier.push_back(v);
                    }
                }
            }
            if !seen[sink] {
                break;
            }
            let mut push = i64::MAX;
            let mut v = sink;
            while let Some(e) = via[v] {
                push = push.min(net.edges[e].1);
                v = net.edges[e ^ 1].0;
            }
            let mut v = sink;
            while let Some(e) = via[v] {
                net.edges[e].1 -= push;
                net.edges[e ^ 1].1 += push;
                v = net.edges[e ^ 1].0;
            }
        }
        class_zone_edge
            .iter()
            .map(|row| {
                row.iter()
                    .map(|e| e.map_or(0, |e| net.edges[e ^ 1].1))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::FlowNet;

    #[test]
    fn the_flow_gives_each_class_its_own_zone_before_the_shared_one() {
        // Zone 0 is shared by both classes and has room for 4; zones 1 and 2 each belong
        // to one class and have room for 6. Class 0 (8 replicas) and class 1 (6) fit only
        // if class 1 stays out of zone 0 almost entirely.
        let flow = FlowNet::solve(&[8, 6], &[0b011, 0b101], &[4, 6, 6], &[0, 0, 0], &[14]);
        assert_eq!(flow[0][1] + flow[1][2] + flow[0][0] + flow[1][0], 14);
        assert_eq!(flow[0][0] + flow[1][0], 4);
        assert_eq!(flow[0].iter().sum::<i64>(), 8);
        assert_eq!(flow[1].iter().sum::<i64>(), 6);
        assert_eq!(flow[0][2], 0, "class 0 may not use zone 2");
    }

    #[test]
    fn a_full_region_caps_its_zones() {
        // Two zones in region 0 (room 5 each) but the region has room for 3 only.
        let flow = FlowNet::solve(&[10], &[0b111], &[5, 5, 10], &[0, 0, 1], &[3, 10]);
        assert_eq!(flow[0][0] + flow[0][1], 3);
        assert_eq!(flow[0][2], 7);
    }
}

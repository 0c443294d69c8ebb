//! Dispersion: how many partition-replicas sit in a tier that holds more replicas of their
//! partition than the tier's fair share allows.
//!
//! For every partition the replicas are counted per tier; a tier holding `n` replicas where
//! `max_allowed` (Swift's ceil-bound even split over the weighted tiers, 0 for tiers of
//! zero-weight devices) is smaller puts `n - max_allowed` replicas at risk. Per partition only
//! the worst tier depth counts, and the ring's dispersion is the percentage of all
//! partition-replicas at risk. The per-tier histogram ("graph") records how many partitions
//! have 0, 1, 2, ... replicas in each tier.
//!
//! Unlike Swift, every partition is visited with fractional replica counts: Swift walks
//! `zip(*rows)`, which stops at the short last row and leaves most partitions out of the
//! graph and the dispersion figure (see `docs/differences.md`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::{max_replicas, TierTree};
use super::RingBuilder;
use crate::device::Tier;

/// One row of `swift-ring-builder dispersion -v`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierDispersion {
    /// `r1`, `r1z2`, `r1z2-10.0.0.1`, `r1z2-10.0.0.1/sda`.
    pub tier: String,
    /// Most replicas of one partition the tier should hold.
    pub max_replicas: u64,
    /// Partition-replicas in the tier.
    pub placed_parts: u64,
    /// Percentage of those above `max_replicas`.
    pub dispersion: f64,
    /// Partitions with 0, 1, 2, ... replicas in the tier.
    pub replicas: Vec<u64>,
}

/// Everything `swift-ring-builder dispersion` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DispersionReport {
    /// The ring's dispersion (% of partition-replicas at risk).
    pub dispersion: f64,
    pub balance: f64,
    pub overload: f64,
    pub required_overload: f64,
    /// The highest tier dispersion among the tiers shown, and its tier.
    pub max_dispersion: f64,
    pub worst_tier: Option<String>,
    /// Per-tier rows (only when verbose), in Swift's sorted-tuple order.
    pub graph: Vec<TierDispersion>,
}

/// Dispersion figures computed over the current table.
pub(crate) struct DispersionData {
    pub graph: BTreeMap<Tier, Vec<u64>>,
    pub dispersion: f64,
}

/// Counts the replicas of every partition per tier; the core of the graph and of the
/// dispersion figure. `counts_out` receives, per tier node, the histogram.
pub(crate) fn compute(builder: &RingBuilder, tree: &TierTree) -> DispersionData {
    let parts = builder.parts();
    let max_allowed = max_replicas(builder, tree, f64::ceil);
    let Some(table) = &builder.replica2part2dev else {
        return DispersionData {
            graph: BTreeMap::new(),
            dispersion: 0.0,
        };
    };
    // A partition has at most one replica per row, so `rows + 1` histogram cells per tier
    // suffice; one flat array for all tiers.
    let width = table.len().max(builder.replicas.ceil() as usize) + 1;
    let mut hist = vec![0u64; tree.len() * width];
    let mut seen = vec![false; tree.len()];
    let allowed: Vec<u64> = max_allowed.iter().map(|&a| a.max(0.0) as u64).collect();
    let mut at_risk_total: u64 = 0;
    let mut nodes: Vec<[u32; 4]> = Vec::with_capacity(table.len());
    for part in 0..parts {
        nodes.clear();
        for row in table {
            if let Some(&d) = row.get(part) {
                if let Some(path) = tree.dev_path.get(d as usize) {
                    if path[0] != super::plan::NO_TIER {
                        nodes.push(*path);
                    }
                }
            }
        }
        let mut risk = [0u64; 5];
        for level in 0..4 {
            for i in 0..nodes.len() {
                let node = nodes[i][level];
                if nodes[..i].iter().any(|p| p[level] == node) {
                    continue;
                }
                let n = nodes[i..].iter().filter(|p| p[level] == node).count();
                hist[node as usize * width + n] += 1;
                seen[node as usize] = true;
                let allowed = allowed[node as usize];
                if n as u64 > allowed {
                    risk[level + 1] += n as u64 - allowed;
                }
            }
        }
        at_risk_total += risk.iter().copied().max().unwrap_or(0);
    }
    let int_replicas = builder.replicas.ceil() as usize;
    let hist: Vec<Vec<u64>> = (0..tree.len())
        .map(|node| {
            if !seen[node] {
                return Vec::new();
            }
            let mut h = hist[node * width..(node + 1) * width].to_vec();
            h.truncate((int_replicas + 1).max(h.iter().rposition(|&c| c > 0).unwrap_or(0) + 1));
            h
        })
        .collect();
    let mut graph = BTreeMap::new();
    for (node, mut h) in hist.into_iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let placed: u64 = h.iter().sum();
        h[0] = parts as u64 - placed;
        if let Some(t) = &tree.nodes[node].tier {
            graph.insert(t.clone(), h);
        }
    }
    let dispersion = 100.0 * at_risk_total as f64 / (parts as f64 * builder.replicas);
    DispersionData { graph, dispersion }
}

/// Python's ordering of tier tuples: element by element, a prefix first.
pub(crate) fn python_tier_cmp(a: &Tier, b: &Tier) -> Ordering {
    fn parts(t: &Tier) -> (u32, Option<u32>, Option<&str>, Option<u32>) {
        match t {
            Tier::Region(r) => (*r, None, None, None),
            Tier::Zone(r, z) => (*r, Some(*z), None, None),
            Tier::Server(r, z, ip) => (*r, Some(*z), Some(ip.as_str()), None),
            Tier::Device(r, z, ip, d) => (*r, Some(*z), Some(ip.as_str()), Some(*d)),
        }
    }
    // Option's None < Some matches "a prefix sorts first".
    parts(a).cmp(&parts(b))
}

/// `r1z2-10.0.0.1/sda` and friends (Swift's `get_tier_name`).
pub fn tier_name(tier: &Tier, builder: &RingBuilder) -> String {
    match tier {
        Tier::Region(r) => format!("r{r}"),
        Tier::Zone(r, z) => format!("r{r}z{z}"),
        Tier::Server(r, z, ip) => format!("r{r}z{z}-{ip}"),
        Tier::Device(r, z, ip, id) => {
            let device = builder
                .dev(*id)
                .map(|d| d.dev.device.clone())
                .unwrap_or_else(|| format!("IDd{id}"));
            format!("r{r}z{z}-{ip}/{device}")
        }
    }
}

impl RingBuilder {
    /// Recompute the dispersion graph and figure from the table (`dispersion --recalculate`).
    /// Like Swift, this bumps the version.
    pub fn rebuild_dispersion_graph(&mut self) {
        let tree = TierTree::build(self);
        let data = compute(self, &tree);
        self.dispersion_graph = data.graph;
        self.dispersion = Some(data.dispersion);
        self.version += 1;
    }

    /// What `swift-ring-builder dispersion [-v]` reports. `tier_filter` selects the tiers
    /// shown by name (the CLI passes its regex match). Uses the cached graph, building it
    /// first (without touching the builder) when there is none.
    pub fn dispersion_report(
        &self,
        tier_filter: Option<&dyn Fn(&str) -> bool>,
        verbose: bool,
    ) -> DispersionReport {
        let tree = TierTree::build(self);
        let computed;
        let (graph, dispersion) = if self.dispersion_graph.is_empty() {
            computed = compute(self, &tree);
            (&computed.graph, computed.dispersion)
        } else {
            (&self.dispersion_graph, self.dispersion.unwrap_or(0.0))
        };
        let max_allowed = max_replicas(self, &tree, f64::ceil);
        let mut index: BTreeMap<&Tier, usize> = BTreeMap::new();
        for (i, n) in tree.nodes.iter().enumerate() {
            if let Some(t) = &n.tier {
                index.insert(t, i);
            }
        }
        let mut tiers: Vec<&Tier> = graph.keys().collect();
        tiers.sort_by(|a, b| python_tier_cmp(a, b));
        let mut max_dispersion = 0.0;
        let mut worst_tier = None;
        let mut rows = Vec::new();
        for tier in tiers {
            let counts = &graph[tier];
            let name = tier_name(tier, self);
            if let Some(filter) = tier_filter {
                if !filter(&name) {
                    continue;
                }
            }
            let max = index.get(tier).map(|&i| max_allowed[i]).unwrap_or(0.0) as u64;
            let mut at_risk = 0u64;
            let mut placed = 0u64;
            for (n, &c) in counts.iter().enumerate().skip(1) {
                placed += c * n as u64;
                if n as u64 > max {
                    at_risk += c * (n as u64 - max);
                }
            }
            let tier_dispersion = if placed == 0 {
                0.0
            } else {
                100.0 * at_risk as f64 / placed as f64
            };
            if tier_dispersion > max_dispersion {
                max_dispersion = tier_dispersion;
                worst_tier = Some(name.clone());
            }
            if verbose {
                rows.push(TierDispersion {
                    tier: name,
                    max_replicas: max,
                    placed_parts: placed,
                    dispersion: tier_dispersion,
                    replicas: counts.clone(),
                });
            }
        }
        DispersionReport {
            dispersion,
            balance: self.get_balance(),
            overload: self.overload,
            required_overload: self.get_required_overload().unwrap_or(0.0),
            max_dispersion,
            worst_tier,
            graph: rows,
        }
    }
}

//! Tiny rings against an exhaustive optimum computed here, independently of the rebalancer.
//!
//! From a rebalanced ring and one change (reweight, add a device, remove a device, drain to
//! weight 0, overload), every outcome the rules allow is enumerated: per partition, nothing
//! moves, or one replica moves to a device that does not hold the partition and stays within
//! the plan's per-tier bounds (ceil of each tier's target replicas); a replica on a device
//! being removed must move. The best outcome minimises first the total surplus over the
//! plan's integer targets (sum over devices of max(0, count - target)), then the moves.
//! Ringsmith's rebalance must reach that surplus; its moves are compared with the optimum's
//! and the totals printed.
//!
//! Part power 2 and 3 (4 and 8 partitions) keep the enumeration small; the generated
//! scenarios against Swift (`rebalance_scenarios.rs`) cover part powers 6-9.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};
use ringsmith::device::Tier;

struct Problem {
    /// Per partition, per row: device id.
    holders: Vec<Vec<u32>>,
    /// Per device id: target (0 for removed, zero-weight or missing).
    target: Vec<i64>,
    /// Per device id: may receive replicas.
    receives: Vec<bool>,
    removed: Vec<bool>,
    tiers: Vec<Option<[Tier; 4]>>,
    bound: BTreeMap<Tier, u32>,
}

impl Problem {
    fn fits(&self, others: &[u32], v: u32) -> bool {
        let Some(vt) = &self.tiers[v as usize] else {
            return false;
        };
        (0..4).all(|l| {
            let here = others
                .iter()
                .filter(|&&o| self.tiers[o as usize].as_ref().unwrap()[l] == vt[l])
                .count() as u32;
            here < self.bound.get(&vt[l]).copied().unwrap_or(0)
        })
    }

    /// Per partition: the allowed outcomes as (row, new device) changes, None = unchanged.
    fn options(&self) -> Vec<Vec<Option<(usize, u32)>>> {
        let ndev = self.target.len() as u32;
        self.holders
            .iter()
            .map(|hold| {
                let forced: Vec<usize> = (0..hold.len())
                    .filter(|&r| self.removed[hold[r] as usize])
                    .collect();
                let mut opts = Vec::new();
                let rows: Vec<usize> = if forced.is_empty() {
                    opts.push(None);
                    (0..hold.len()).collect()
                } else {
                    forced.clone()
                };
                for r in rows {
                    let others: Vec<u32> = (0..hold.len())
                        .filter(|&q| q != r)
                        .map(|q| hold[q])
                        .collect();
                    let mut dests: Vec<u32> = (0..ndev)
                        .filter(|&v| self.receives[v as usize] && !hold.contains(&v))
                        .filter(|&v| self.fits(&others, v))
                        .collect();
                    if dests.is_empty() && !forced.is_empty() {
                        // Nothing within the plan: any device without the partition.
                        dests = (0..ndev)
                            .filter(|&v| self.receives[v as usize] && !hold.contains(&v))
                            .collect();
                    }
                    opts.extend(dests.into_iter().map(|v| Some((r, v))));
                }
                opts
            })
            .collect()
    }

    /// (surplus, moves) of the best outcome.
    fn optimum(&self) -> (i64, u64) {
        let options = self.options();
        let mut counts = vec![0i64; self.target.len()];
        for hold in &self.holders {
            for &d in hold {
                counts[d as usize] += 1;
            }
        }
        let mut best = (i64::MAX, u64::MAX);
        self.search(&options, 0, &mut counts, 0, &mut best);
        best
    }

    fn search(
        &self,
        options: &[Vec<Option<(usize, u32)>>],
        part: usize,
        counts: &mut Vec<i64>,
        moves: u64,
        best: &mut (i64, u64),
    ) {
        if part == options.len() {
            let surplus: i64 = counts
                .iter()
                .zip(&self.target)
                .enumerate()
                .map(|(d, (&c, &t))| if self.removed[d] { 0 } else { (c - t).max(0) })
                .sum();
            if (surplus, moves) < *best {
                *best = (surplus, moves);
            }
            return;
        }
        for opt in &options[part] {
            match *opt {
                None => self.search(options, part + 1, counts, moves, best),
                Some((r, v)) => {
                    let from = self.holders[part][r] as usize;
                    counts[from] -= 1;
                    counts[v as usize] += 1;
                    self.search(options, part + 1, counts, moves + 1, best);
                    counts[from] += 1;
                    counts[v as usize] -= 1;
                }
            }
        }
    }
}

fn problem(rb: &RingBuilder) -> Problem {
    let table = rb.replica2part2dev.as_ref().unwrap();
    let ndev = rb.devs.len();
    let targets = rb.parts_by_tier().unwrap();
    let bound = rb
        .target_replicas_by_tier()
        .unwrap()
        .into_iter()
        .map(|(t, r)| (t, (r - 1e-10).ceil().max(0.0) as u32))
        .collect();
    let mut p = Problem {
        holders: (0..rb.parts())
            .map(|part| table.iter().map(|row| row[part]).collect())
            .collect(),
        target: vec![0; ndev],
        receives: vec![false; ndev],
        removed: vec![false; ndev],
        tiers: vec![None; ndev],
        bound,
    };
    for d in rb.iter_devs() {
        let id = d.dev.id as usize;
        let removed = rb.remove_devs.contains(&d.dev.id);
        p.removed[id] = removed;
        p.tiers[id] = Some(d.dev.tiers());
        if d.dev.weight > 0.0 && !removed {
            p.receives[id] = true;
            p.target[id] = targets.get(&d.dev.tiers()[3]).copied().unwrap_or(0) as i64;
        }
    }
    p
}

fn add(rb: &mut RingBuilder, id: u32, rng: &mut ChaCha8Rng) {
    let region = rng.gen_range(1..=2);
    let zone = rng.gen_range(1..=3);
    let server = rng.gen_range(1..=2);
    let ip = format!("127.{region}.{zone}.{server}");
    let weight = [1.0, 2.0, 3.0, 5.0][rng.gen_range(0..4)];
    rb.add_dev(NewDevice::new(region, zone, ip, 6200, format!("d{id}"), weight).with_id(id))
        .unwrap();
}

#[test]
fn tiny_rings_reach_the_exhaustive_optimum() {
    let mut cases = 0;
    let mut moves_ours = 0;
    let mut moves_best = 0;
    let mut more_moves = 0;
    let mut short: Vec<String> = Vec::new();
    for seed in 0..1000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let part_power = rng.gen_range(2..=3);
        let replicas = [1.0, 2.0, 2.0, 3.0][rng.gen_range(0..4)];
        let ndev: u32 = if part_power == 3 {
            4
        } else {
            rng.gen_range(3..=6)
        };
        if (ndev as f64) < replicas + 1.0 {
            continue;
        }
        let mut rb = RingBuilder::new(part_power, replicas, 0).unwrap();
        for id in 0..ndev {
            add(&mut rb, id, &mut rng);
        }
        let opts = |s| RebalanceOptions {
            seed: Some(s),
            now_secs: Some(1_800_000_000),
        };
        if rb.rebalance(&opts(seed)).is_err() {
            continue;
        }
        rb.pretend_min_part_hours_passed();
        match rng.gen_range(0..5) {
            0 => rb.set_dev_weight(rng.gen_range(0..ndev), 0.0).unwrap(),
            1 => rb.remove_dev(rng.gen_range(0..ndev)).unwrap(),
            2 => rb
                .set_dev_weight(rng.gen_range(0..ndev), [1.0, 4.0, 8.0][rng.gen_range(0..3)])
                .unwrap(),
            3 if part_power == 2 => add(&mut rb, ndev, &mut rng),
            _ => rb
                .set_overload([0.0, 0.1, 0.5][rng.gen_range(0..3)])
                .unwrap(),
        }
        if rb.iter_devs().filter(|d| d.dev.weight > 0.0).count() < replicas as usize {
            continue;
        }
        let before = rb.clone();
        let Ok(out) = rb.rebalance(&opts(seed + 1)) else {
            continue;
        };
        let p = problem(&before);
        let (best_surplus, best_moves) = p.optimum();
        let surplus: i64 = rb
            .iter_devs()
            .map(|d| (d.parts as i64 - p.target[d.dev.id as usize]).max(0))
            .sum();
        if surplus != best_surplus {
            if std::env::var("RINGSMITH_EXHAUSTIVE_DEBUG").is_ok() {
                for d in before.iter_devs() {
                    eprintln!(
                        "d{} {:?} w{} target {}",
                        d.dev.id,
                        d.dev.tiers()[3],
                        d.dev.weight,
                        p.target[d.dev.id as usize]
                    );
                }
                eprintln!("before {:?}", before.replica2part2dev);
                eprintln!("after  {:?}", rb.replica2part2dev);
            }
            short.push(format!(
                "seed {seed}: surplus {surplus}, optimum {best_surplus} ({best_moves} moves); \
                 unmet {:?}",
                out.unmet
            ));
        }
        cases += 1;
        moves_ours += out.changed_parts;
        moves_best += best_moves;
        if out.changed_parts > best_moves {
            more_moves += 1;
        }
    }
    println!(
        "{cases} tiny rings: optimum surplus missed in {}; moves {moves_ours} vs the \
         optimum's {moves_best}; more moves than the optimum in {more_moves}",
        short.len()
    );
    for s in &short {
        println!("  {s}");
    }
    // Where the optimum needs a partition's one move spent on another replica than the one
    // the direct pass chose, and no redirect keeps the plan's bounds, the search misses it
    // (see rebalance.rs, "What is not proven"). Keep those rare.
    assert!(
        short.len() * 100 <= cases,
        "optimum surplus missed in {} of {cases} rings",
        short.len()
    );
    assert!(cases >= 500, "only {cases} cases");
    // Fewest moves is not proven (see rebalance.rs); keep the excess where it is.
    assert!(
        more_moves * 20 <= cases,
        "more moves than the optimum in {more_moves} of {cases} rings"
    );
}

//! Property tests of the rebalancer's guarantee (src/builder/rebalance.rs, "The guarantee")
//! after random sequences of operations, checked from the outside: only the public API,
//! the tables before and after, and the plan's per-tier targets.
//!
//! After every rebalance:
//! - the table validates; devices marked for removal are gone;
//! - no partition moved more than one existing replica (slots of removed devices and new
//!   slots of a replica-count increase aside), none moved within min_part_hours;
//! - every device above its target is named in `unmet`;
//! - no single move is left that would lower a device above its target: for every replica
//!   on such a device that the rules let move, no device below its target can take it
//!   within the plan's per-tier bounds (ceil of the target replicas of each tier);
//! - the same seed gives the same ring.

use std::collections::BTreeMap;

use proptest::prelude::*;
use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};
use ringsmith::device::Tier;

#[derive(Clone, Debug)]
enum Op {
    Add {
        region: u32,
        zone: u32,
        server: u32,
        weight: f64,
    },
    Remove(usize),
    SetWeight(usize, f64),
    Overload(f64),
    Replicas(f64),
    Rebalance {
        pretend: bool,
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let weight = prop_oneof![
        Just(1.0),
        Just(10.0),
        Just(100.0),
        Just(100.0),
        Just(250.0),
        Just(3000.0)
    ];
    prop_oneof![
        4 => (1u32..3, 1u32..4, 1u32..3, weight.clone())
            .prop_map(|(region, zone, server, weight)| Op::Add { region, zone, server, weight }),
        2 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), prop_oneof![Just(0.0), weight]).prop_map(|(i, w)| Op::SetWeight(i, w)),
        1 => prop_oneof![Just(0.0), Just(0.1), Just(0.2), Just(1.0)].prop_map(Op::Overload),
        1 => prop_oneof![Just(1.0), Just(2.0), Just(2.5), Just(3.0)].prop_map(Op::Replicas),
        4 => (any::<bool>(), 0u64..1000).prop_map(|(pretend, seed)| Op::Rebalance { pretend, seed }),
    ]
}

fn add(rb: &mut RingBuilder, id: u32, region: u32, zone: u32, server: u32, weight: f64) {
    let ip = format!("127.{region}.{zone}.{server}");
    rb.add_dev(NewDevice::new(region, zone, ip, 6200, format!("d{id}"), weight).with_id(id))
        .unwrap();
}

fn live_ids(rb: &RingBuilder) -> Vec<u32> {
    rb.iter_devs().map(|d| d.dev.id).collect()
}

const NOW: u64 = 1_800_000_000;

fn check(rb: &mut RingBuilder, pretend: bool, seed: u64) -> Result<(), TestCaseError> {
    if pretend {
        rb.pretend_min_part_hours_passed();
    }
    let before = rb.clone();
    let opts = RebalanceOptions {
        seed: Some(seed),
        now_secs: Some(NOW),
    };
    let out = match rb.rebalance(&opts) {
        Ok(out) => out,
        Err(_) => {
            prop_assert_eq!(&*rb, &before, "a failed rebalance changes nothing");
            return Ok(());
        }
    };
    let mut again = before.clone();
    again.rebalance(&opts).unwrap();
    prop_assert_eq!(
        &again.replica2part2dev,
        &rb.replica2part2dev,
        "same seed, same ring"
    );
    rb.validate(false)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for id in &before.remove_devs {
        prop_assert!(rb.dev(*id).is_none(), "d{} still there", id);
    }
    let targets: BTreeMap<Tier, u64> = rb.parts_by_tier().unwrap();
    let target_replicas = rb.target_replicas_by_tier().unwrap();
    let bound = |t: &Tier| -> u32 {
        target_replicas
            .get(t)
            .map_or(0, |&r| (r - 1e-10).ceil().max(0.0) as u32)
    };
    let target_of = |id: u32| -> u64 {
        rb.dev(id)
            .filter(|d| d.dev.weight > 0.0)
            .and_then(|d| targets.get(&d.dev.tiers()[3]).copied())
            .unwrap_or(0)
    };
    for d in rb.iter_devs() {
        if d.parts > target_of(d.dev.id) {
            prop_assert!(
                out.unmet
                    .iter()
                    .any(|u| u.starts_with(&format!("device d{} ", d.dev.id))
                        || u.contains("more devices above target")),
                "d{} above target without a reason: {:?}",
                d.dev.id,
                out.unmet
            );
        }
    }
    let Some(old) = &before.replica2part2dev else {
        return Ok(());
    };
    let new = rb.replica2part2dev.as_ref().unwrap();
    let tiers_of = |id: u32| rb.dev(id).unwrap().dev.tiers();
    for p in 0..rb.parts() {
        let mut exempt = false;
        let mut moved_rows = Vec::new();
        for (r, row) in new.iter().enumerate() {
            let Some(&d) = row.get(p) else { continue };
            match old.get(r).and_then(|o| o.get(p)) {
                None => exempt = true,
                Some(o) if before.remove_devs.contains(o) => exempt = true,
                Some(&o) if o != d => moved_rows.push(r),
                _ => {}
            }
        }
        if exempt {
            prop_assert!(
                moved_rows.is_empty(),
                "part {} moved besides removed/new slots",
                p
            );
        } else {
            prop_assert!(moved_rows.len() <= 1, "part {} moved {:?}", p, moved_rows);
        }
        let held = !pretend && (before.last_part_moves[p] as u32) < before.min_part_hours;
        if held {
            prop_assert!(
                moved_rows.is_empty(),
                "part {} moved within min_part_hours",
                p
            );
        }
        // Which replicas of p may still move in this rebalance: the one that moved (again),
        // or any if the partition has not moved and time allows.
        let movable: Vec<usize> = if exempt {
            Vec::new()
        } else if !moved_rows.is_empty() {
            moved_rows.clone()
        } else if held {
            Vec::new()
        } else {
            (0..new.len())
                .filter(|&r| new[r].get(p).is_some())
                .collect()
        };
        for r in movable {
            let u = new[r][p];
            if rb.dev(u).unwrap().parts <= target_of(u) {
                continue;
            }
            let others: Vec<[Tier; 4]> = (0..new.len())
                .filter(|&q| q != r)
                .filter_map(|q| new[q].get(p).map(|&d| tiers_of(d)))
                .collect();
            for v in rb.iter_devs() {
                if v.dev.weight <= 0.0 || v.parts >= target_of(v.dev.id) {
                    continue;
                }
                let vt = v.dev.tiers();
                let fits = (0..4).all(|l| {
                    let here = others.iter().filter(|o| o[l] == vt[l]).count() as u32;
                    here < bound(&vt[l])
                });
                prop_assert!(
                    !fits,
                    "part {} row {}: d{} is above target ({} > {}) and d{} below ({} < {}) \
                     could take it within the plan",
                    p,
                    r,
                    u,
                    rb.dev(u).unwrap().parts,
                    target_of(u),
                    v.dev.id,
                    v.parts,
                    target_of(v.dev.id)
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
    #[test]
    fn guarantee_holds_after_any_operations(
        part_power in 4u32..8,
        replicas in prop_oneof![Just(1.0), Just(2.0), Just(2.5), Just(3.0)],
        min_part_hours in 0u32..2,
        ops in proptest::collection::vec(op(), 1..20),
    ) {
        let mut rb = RingBuilder::new(part_power, replicas, min_part_hours).unwrap();
        for i in 0..4u32 {
            add(&mut rb, i, 1, i % 3 + 1, i % 2 + 1, 100.0);
        }
        check(&mut rb, true, 0)?;
        let mut next = 4u32;
        for op in ops {
            match op {
                Op::Add { region, zone, server, weight } => {
                    add(&mut rb, next, region, zone, server, weight);
                    next += 1;
                }
                Op::Remove(i) => {
                    let ids = live_ids(&rb);
                    if !ids.is_empty() {
                        // A device already marked for removal refuses; that is not under test.
                        let _ = rb.remove_dev(ids[i % ids.len()]);
                    }
                }
                Op::SetWeight(i, w) => {
                    let ids = live_ids(&rb);
                    if !ids.is_empty() {
                        let _ = rb.set_dev_weight(ids[i % ids.len()], w);
                    }
                }
                Op::Overload(o) => rb.set_overload(o).unwrap(),
                Op::Replicas(r) => rb.set_replicas(r).unwrap(),
                Op::Rebalance { pretend, seed } => check(&mut rb, pretend, seed)?,
            }
        }
        check(&mut rb, true, 7)?;
    }
}

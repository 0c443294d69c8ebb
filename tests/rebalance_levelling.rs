//! A step where the surplus cannot settle and levelling must trade which replica of a
//! partition moves (`src/builder/rebalance/level.rs`), replayed from a fixture.
//!
//! `fixtures/rebalance/scenario-937-after-step-4.builder` is the ring Swift 2.38.3 left after
//! step 4 of generated scenario 937 (`RINGSMITH_SCENARIO_KEEP=DIR
//! RINGSMITH_SCENARIO_FIRST=937 RINGSMITH_SCENARIOS=1 cargo test -p ringsmith --test
//! rebalance_scenarios`). Step 5 removes a server of four devices and adds a small zone;
//! the partitions of the removed devices have used their one move, and devices of weight 1
//! are left holding several times their share. Swift's own rebalance of this step, same
//! seed, ends at a balance of 9,556.25 with 128 partition-replicas moved (the scenario
//! test's figures); Ringsmith ended at 14,384.38 before levelling and at 4,728.13 with it.

use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};

const SWIFT_BALANCE: f64 = 9556.25;
const SWIFT_MOVED: u64 = 128;

#[test]
fn levelling_trades_a_move_onto_the_fullest_device() {
    let mut rb = RingBuilder::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/rebalance/scenario-937-after-step-4.builder"
    )))
    .unwrap();
    for id in 20..24 {
        rb.remove_dev(id).unwrap();
    }
    for (id, server, weight) in [
        (39, 1, 6.0),
        (40, 2, 23.0),
        (41, 2, 30.0),
        (42, 2, 32.0),
        (43, 2, 25.0),
    ] {
        let ip = format!("127.1.5.{server}");
        rb.add_dev(NewDevice::new(1, 5, ip, 6200, format!("d{id}"), weight).with_id(id))
            .unwrap();
    }
    rb.pretend_min_part_hours_passed();
    let outcome = rb
        .rebalance(&RebalanceOptions {
            seed: Some(701_101),
            now_secs: None,
        })
        .unwrap();
    assert!(
        outcome.balance < SWIFT_BALANCE,
        "balance {:.2} (Swift {SWIFT_BALANCE}): {:?}",
        outcome.balance,
        rb.balance_per_dev()
    );
    assert!(
        outcome.changed_parts <= SWIFT_MOVED,
        "moved {} (Swift {SWIFT_MOVED})",
        outcome.changed_parts
    );
}

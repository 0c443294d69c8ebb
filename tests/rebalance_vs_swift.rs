//! Interop: the same scenarios through Swift 2.38's `RingBuilder` (in the reference
//! virtualenv, via `scripts/compare-rebalance.py --swift-json`) and through Ringsmith.
//! Ringsmith must be no worse on any of them: per round, final balance and dispersion
//! no higher than Swift's; over the whole scenario, no more partition-replicas moved.
//!
//! Swift's own moved count and dispersion stop at the short last row with fractional
//! replicas; the script recounts both over every partition, so the comparison is fair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ringsmith::builder::scenario::Scenario;

#[derive(Debug, Default, Clone, Copy)]
struct Round {
    balance: f64,
    dispersion: f64,
    moved: u64,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn swift_rounds(scenario: &Path) -> BTreeMap<u64, Round> {
    let script = root().join("scripts/compare-rebalance.py");
    let stdout = ringsmith_testkit::swift_python(
        &[
            script.as_os_str(),
            std::ffi::OsStr::new("--swift-json"),
            scenario.as_os_str(),
        ],
        b"",
    );
    let mut rounds: BTreeMap<u64, Round> = BTreeMap::new();
    for line in String::from_utf8(stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let r = rounds.entry(v["round"].as_u64().unwrap()).or_default();
        r.balance = v["balance"].as_f64().unwrap();
        r.dispersion = v["dispersion"].as_f64().unwrap_or(0.0);
        r.moved += v["moved"].as_u64().unwrap();
    }
    assert!(
        !rounds.is_empty(),
        "no output from Swift for {}",
        scenario.display()
    );
    rounds
}

fn our_rounds(scenario: &Path) -> BTreeMap<u64, Round> {
    let text = std::fs::read_to_string(scenario).unwrap();
    let scn = Scenario::from_json(&text).unwrap();
    let mut rounds: BTreeMap<u64, Round> = BTreeMap::new();
    let rb = scn
        .run(|s| {
            let r = rounds.entry(s.round as u64).or_default();
            r.balance = s.balance;
            r.dispersion = s.dispersion;
            r.moved += s.moved;
        })
        .unwrap();
    rb.validate(false).unwrap();
    rounds
}

fn compare(name: &str) {
    let path = root().join("fixtures/scenarios").join(name);
    let swift = swift_rounds(&path);
    let ours = our_rounds(&path);
    assert_eq!(swift.len(), ours.len(), "{name}: rounds");
    let eps = 1e-9;
    for (round, s) in &swift {
        let o = ours[round];
        assert!(
            o.balance <= s.balance + eps,
            "{name} round {round}: balance {} worse than Swift's {}",
            o.balance,
            s.balance
        );
        assert!(
            o.dispersion <= s.dispersion + eps,
            "{name} round {round}: dispersion {} worse than Swift's {}",
            o.dispersion,
            s.dispersion
        );
    }
    let moved_swift: u64 = swift.values().map(|r| r.moved).sum();
    let moved_ours: u64 = ours.values().map(|r| r.moved).sum();
    assert!(
        moved_ours <= moved_swift,
        "{name}: moved {moved_ours} partition-replicas, Swift {moved_swift}"
    );
}

#[test]
fn small_cluster_changes() {
    compare("small.json");
}

#[test]
fn adding_a_region_slowly() {
    compare("add-region-slowly.json");
}

#[test]
fn unbalanceable_zones() {
    compare("unbalanceable.json");
}

#[test]
fn overload_and_losing_a_zone() {
    compare("overload.json");
}

#[test]
fn fractional_replicas_and_draining() {
    compare("fractional.json");
}

/// Issue 14's first losing case: every disk of one server removed at once (its zone keeps
/// two thirds of its capacity). The drained replicas can only go to their zone's other
/// servers or to the one zone their partition lacks, so reaching the targets needs chains
/// of moves.
#[test]
fn draining_a_whole_server() {
    compare("drain-server.json");
}

/// Issue 14's second losing case: a small second region with a 20% overload.
#[test]
fn small_second_region_with_overload() {
    compare("small-region-overload.json");
}

/// The replica plan (weighted, wanted and target replicanths per tier, required overload)
/// equals Swift's to the last bit on random rings.
#[test]
fn replica_plan_matches_swift_exactly() {
    use ringsmith::builder::{NewDevice, RingBuilder};
    use ringsmith::device::Tier;

    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let mut cases = Vec::new();
    for case in 0..24 {
        let replicas = [1.0, 2.0, 3.0, 2.5, 4.0][case % 5];
        let overload = [0.0, 0.1, 0.5, 1.0][case % 4];
        let mut devs = Vec::new();
        let count = 4 + next(12);
        for id in 0..count {
            let region = 1 + next(2);
            let zone = 1 + next(3);
            let server = 1 + next(3);
            let weight = [100.0, 200.0, 50.0, 3000.0, 1.5][next(5) as usize];
            devs.push(serde_json::json!({"id": id, "region": region, "zone": zone,
                "ip": format!("10.{region}.{zone}.{server}"), "port": 6200,
                "device": format!("d{id}"), "weight": weight}));
        }
        let remove = if case % 3 == 0 {
            Some(next(count))
        } else {
            None
        };
        cases.push(
            serde_json::json!({"replicas": replicas, "overload": overload,
            "devs": devs, "remove": remove}),
        );
    }
    let program = r#"
import json, sys
from swift.common.ring.builder import RingBuilder
out = []
for case in json.load(sys.stdin):
    rb = RingBuilder(8, case['replicas'], 1)
    for d in case['devs']:
        rb.add_dev(dict(d))
    if case['remove'] is not None:
        rb.remove_dev(case['remove'])
    rb.set_overload(case['overload'])
    try:
        w = rb._build_weighted_replicas_by_tier()
        wa = rb._build_wanted_replicas_by_tier()
        t = rb._build_target_replicas_by_tier()
        req = rb.get_required_overload()
    except Exception as e:
        out.append({'error': str(e)})
        continue
    def dump(m):
        return {json.dumps(list(k)): repr(float(v)) for k, v in m.items() if len(k)}
    out.append({'weighted': dump(w), 'wanted': dump(wa), 'target': dump(t),
                'required': repr(float(req))})
print(json.dumps(out))
"#;
    let swift = ringsmith_testkit::swift_python_json(
        &["-c", program],
        serde_json::to_string(&cases).unwrap().as_bytes(),
    );
    let swift = swift.as_array().expect("Swift printed a JSON list");
    let key = |t: &Tier| -> String {
        match t {
            Tier::Region(r) => format!("[{r}]"),
            Tier::Zone(r, z) => format!("[{r}, {z}]"),
            Tier::Server(r, z, ip) => format!("[{r}, {z}, \"{ip}\"]"),
            Tier::Device(r, z, ip, d) => format!("[{r}, {z}, \"{ip}\", {d}]"),
        }
    };
    let mut compared = 0;
    for (case, expected) in cases.iter().zip(swift) {
        let mut rb = RingBuilder::new(8, case["replicas"].as_f64().unwrap(), 1).unwrap();
        for d in case["devs"].as_array().unwrap() {
            let int = |k: &str| d[k].as_u64().unwrap() as u32;
            let text = |k: &str| d[k].as_str().unwrap().to_string();
            let weight = d["weight"].as_f64().unwrap();
            let dev = NewDevice::new(
                int("region"),
                int("zone"),
                text("ip"),
                6200,
                text("device"),
                weight,
            );
            rb.add_dev(dev.with_id(int("id"))).unwrap();
        }
        if let Some(id) = case["remove"].as_u64() {
            rb.remove_dev(id as u32).unwrap();
        }
        rb.set_overload(case["overload"].as_f64().unwrap()).unwrap();
        if expected.get("error").is_some() {
            assert!(
                rb.target_replicas_by_tier().is_err(),
                "Swift failed: {expected}"
            );
            continue;
        }
        for (name, ours) in [
            ("weighted", rb.weighted_replicas_by_tier().unwrap()),
            ("wanted", rb.wanted_replicas_by_tier().unwrap()),
            ("target", rb.target_replicas_by_tier().unwrap()),
        ] {
            let theirs = expected[name].as_object().unwrap();
            let ours_nonzero: BTreeMap<String, f64> =
                ours.iter().map(|(t, v)| (key(t), *v)).collect();
            for (k, v) in theirs {
                let v: f64 = v.as_str().unwrap().parse().unwrap();
                assert_eq!(
                    ours_nonzero.get(k).copied().unwrap_or(0.0),
                    v,
                    "{name} {k} in {case}"
                );
                compared += 1;
            }
        }
        let req: f64 = expected["required"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            rb.get_required_overload().unwrap(),
            req,
            "required overload in {case}"
        );
    }
    assert!(compared > 500, "compared only {compared} values");
}

/// Ringsmith rebalances a builder Swift built (fractional replicas, a device pending
/// removal, a zero-weight device), and Swift accepts the result: it loads, validates, and
/// rebalances it again.
#[test]
fn rebalances_a_swift_builder_and_swift_accepts_the_result() {
    use ringsmith::builder::{RebalanceOptions, RingBuilder};

    let dir = tempfile::tempdir().unwrap();
    let swift_file = dir.path().join("swift.builder");
    let ours_file = dir.path().join("ours.builder");
    let python = |program: &str| {
        let stdout = ringsmith_testkit::swift_python(
            &[
                std::ffi::OsStr::new("-c"),
                std::ffi::OsStr::new(program),
                swift_file.as_os_str(),
                ours_file.as_os_str(),
            ],
            b"",
        );
        String::from_utf8(stdout).unwrap()
    };
    python(
        r#"
import sys
from swift.common.ring.builder import RingBuilder
rb = RingBuilder(8, 2.5, 1)
for z in range(1, 4):
    for s in range(1, 3):
        for d in range(2):
            rb.add_dev({'region': 1, 'zone': z, 'ip': '10.0.%d.%d' % (z, s), 'port': 6200,
                        'device': 'sd%d' % d, 'weight': 100.0 + 50 * d})
rb.rebalance(seed=3)
rb.remove_dev(2)
rb.set_dev_weight(5, 0)
rb.add_dev({'region': 1, 'zone': 4, 'ip': '10.0.4.1', 'port': 6200, 'device': 'sda',
            'weight': 200.0})
rb.pretend_min_part_hours_passed()
rb.save(sys.argv[1])
"#,
    );
    let mut rb = RingBuilder::load(&swift_file).unwrap();
    let out = rb
        .rebalance(&RebalanceOptions {
            seed: Some(5),
            now_secs: None,
        })
        .unwrap();
    assert_eq!(out.removed_devs, 1);
    rb.validate(false).unwrap();
    assert!(rb.dev(2).is_none());
    // A device holds at most one replica of a partition, so one rebalance drains it.
    assert_eq!(
        rb.dev(5).unwrap().parts,
        0,
        "the zero-weight device is drained"
    );
    rb.save(&ours_file).unwrap();
    let report = python(
        r#"
import sys
from swift.common.ring.builder import RingBuilder
rb = RingBuilder.load(sys.argv[2])
rb.validate()
print(rb.get_balance(), len(rb._replica2part2dev[2]))
rb.pretend_min_part_hours_passed()
rb.rebalance(seed=1)
rb.validate()
print('ok')
"#,
    );
    assert!(report.trim_end().ends_with("ok"), "{report}");
    assert!(
        report.contains(" 128"),
        "Swift sees the 2.5-replica table: {report}"
    );
}

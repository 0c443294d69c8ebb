//! `.builder` files against the real Swift 2.38.3: every Swift-written fixture loads in
//! Ringsmith, Ringsmith's saves load in Swift with an equal `to_dict()` (shared
//! `_remove_devs` objects included), Swift's CLI shows and rebalances them, and
//! `get_ring()` agrees with Swift's. Each test batches its Python work into one process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ringsmith::builder::{RingBuilder, NONE_DEV};
use ringsmith_testkit::{swift_bin, swift_python_json};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/builders")
}

/// Every Swift-made fixture, by name: `fixtures/builders/` (written by
/// `fixtures/make_builder_fixtures.py`) and the rings Swift left in generated rebalance
/// scenarios (`fixtures/rebalance/`).
fn fixtures() -> Vec<(String, PathBuf)> {
    let rebalance = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rebalance");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/builders exists (fixtures/make_builder_fixtures.py writes it)")
        .chain(std::fs::read_dir(rebalance).expect("fixtures/rebalance exists"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "builder"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    assert!(
        out.len() >= 11,
        "expected the full fixture set, found {out:?}"
    );
    out
}

/// Runs `script` with Swift's Python; `args` are passed as `sys.argv[1:]`. Returns stdout
/// parsed as JSON and fails the test with stderr when Python fails.
fn python(script: &str, args: &[&Path]) -> serde_json::Value {
    let mut argv: Vec<&std::ffi::OsStr> =
        vec![std::ffi::OsStr::new("-c"), std::ffi::OsStr::new(script)];
    argv.extend(args.iter().map(|p| p.as_os_str()));
    swift_python_json(&argv, b"")
}

/// For each (swift file, ringsmith file) pair: load both with Swift's RingBuilder.load and
/// report whether to_dict() is equal, whether the container types and array typecodes
/// match, whether `_remove_devs` entries are the very dicts in `devs`, and whether a
/// seeded rebalance of each gives the same table.
const COMPARE: &str = r#"
import copy, json, sys
from array import array
from swift.common.ring import RingBuilder

def shape(v):
    if isinstance(v, array):
        return 'array:' + v.typecode
    if isinstance(v, list):
        return [shape(x) for x in v] if v and isinstance(v[0], array) else 'list'
    return type(v).__name__

res = {}
args = sys.argv[1:]
pairs = list(zip(args[0::2], args[1::2]))
for swift_path, ours_path in pairs:
    a = RingBuilder.load(swift_path)
    b = RingBuilder.load(ours_path)
    da, db = a.to_dict(), b.to_dict()
    diff = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
    shapes = {k: (shape(da[k]), shape(db[k])) for k in
              ('_replica2part2dev', '_last_part_moves', 'devs', '_remove_devs')}
    identity = all(any(r is d for d in b.devs) for r in b._remove_devs)
    swift_identity = all(any(r is d for d in a.devs) for r in a._remove_devs)
    removing, version = len(b._remove_devs), b.version
    tables = None
    if a.devs and any(a.devs) and a.replicas <= len([d for d in a.devs if d and d['weight']]):
        for x in (a, b):
            x.pretend_min_part_hours_passed()
            x.rebalance(seed=11)
        tables = [[list(r) for r in x._replica2part2dev] for x in (a, b)]
        tables = tables[0] == tables[1]
    res[swift_path] = {
        'diff': diff,
        'shapes_equal': all(s[0] == s[1] for s in shapes.values()),
        'shapes': shapes,
        'remove_devs': removing,
        'identity': identity,
        'swift_identity': swift_identity,
        'rebalanced_equal': tables,
        'version': version,
    }
print(json.dumps(res))
"#;

#[test]
fn swift_fixtures_round_trip_through_ringsmith() {
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<PathBuf> = Vec::new();
    for (name, path) in fixtures() {
        let b = RingBuilder::load(&path)
            .unwrap_or_else(|e| panic!("Ringsmith cannot load Swift's {name}: {e}"));
        let ours = out.path().join(format!("{name}.builder"));
        b.save(&ours).unwrap();
        // Ringsmith reads back exactly what it wrote.
        assert_eq!(RingBuilder::load(&ours).unwrap(), b, "{name}");
        args.push(path);
        args.push(ours);
    }
    let arg_refs: Vec<&Path> = args.iter().map(|p| p.as_path()).collect();
    let res = python(COMPARE, &arg_refs);
    let mut rebalanced = 0;
    for (name, path) in fixtures() {
        let r = &res[path.to_str().unwrap()];
        assert_eq!(
            r["diff"],
            serde_json::json!([]),
            "{name}: to_dict() differs: {r}"
        );
        assert_eq!(r["shapes_equal"], true, "{name}: types differ: {r}");
        assert_eq!(r["identity"], true, "{name}: _remove_devs copies: {r}");
        if r["rebalanced_equal"] != serde_json::Value::Null {
            assert_eq!(
                r["rebalanced_equal"], true,
                "{name}: rebalance differs: {r}"
            );
            rebalanced += 1;
        }
    }
    assert!(
        rebalanced >= 8,
        "Swift rebalanced only {rebalanced} fixtures"
    );
    let pending = &res[fixtures_dir()
        .join("pending_removal.builder")
        .to_str()
        .unwrap()];
    assert_eq!(pending["remove_devs"], 1, "{pending}");
    assert_eq!(pending["swift_identity"], true);
    let pp = &res[fixtures_dir()
        .join("part_power_increased.builder")
        .to_str()
        .unwrap()];
    assert_eq!(pp["shapes"]["_last_part_moves"][1], "list", "{pp}");
    let wide = &res[fixtures_dir()
        .join("four_byte_ids.builder")
        .to_str()
        .unwrap()];
    assert_eq!(
        wide["shapes"]["_replica2part2dev"][1],
        serde_json::json!(["array:I", "array:I", "array:I"]),
        "{wide}"
    );
}

#[test]
fn ringsmith_reads_what_each_fixture_holds() {
    let load = |n: &str| RingBuilder::load(fixtures_dir().join(format!("{n}.builder"))).unwrap();
    let fresh = load("fresh");
    assert!(fresh.replica2part2dev.is_none());
    assert_eq!(fresh.devs.len(), 6);
    assert_eq!(fresh.version, 6);

    let pending = load("pending_removal");
    assert_eq!(pending.remove_devs, vec![5]);
    assert!(
        pending.devs[5].is_some(),
        "stays in devs until the rebalance"
    );
    assert_eq!(pending.devs[5].as_ref().unwrap().dev.weight, 0.0);

    let pp = load("part_power_increased");
    assert!(pp.last_part_moves_is_list);
    assert_eq!(pp.next_part_power, Some(9));
    assert_eq!(pp.part_power, 9);
    assert_eq!(pp.last_part_moves.len(), 512);

    let fr = load("fractional");
    assert_eq!(fr.replicas, 2.5);
    let rows: Vec<usize> = fr
        .replica2part2dev
        .as_ref()
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(rows, vec![64, 64, 32]);
    assert!(fr
        .devs
        .iter()
        .flatten()
        .any(|d| d.parts_wanted.is_some_and(|w| w.fract() != 0.0) || d.dev.weight == 0.0));

    let wide = load("four_byte_ids");
    assert_eq!(wide.dev_id_bytes, 4);
    assert_eq!(wide.devs.len(), 70_002);
    assert!(wide.replica2part2dev.as_ref().unwrap()[0]
        .iter()
        .any(|&d| d >= 70_000 && d != NONE_DEV));

    let holes = load("holes");
    assert!(holes.devs[1].is_none() && holes.devs[4].is_none());

    let legacy = load("legacy_dict");
    let rebalanced = load("rebalanced");
    assert_eq!(legacy.id, None);
    assert_eq!(legacy.last_part_moves_epoch, 0);
    assert_eq!(legacy.replica2part2dev, rebalanced.replica2part2dev);
    assert_eq!(load("legacy_dict_protocol0"), legacy);

    let inst = load("legacy_instance");
    assert_eq!(inst.id.as_deref(), Some("00000000000040008000000000000008"));
    assert_eq!(inst.replica2part2dev, rebalanced.replica2part2dev);
    assert_eq!(inst.dispersion_graph, rebalanced.dispersion_graph);

    let wb = load("write_builder");
    assert_eq!(wb.replica2part2dev, rebalanced.replica2part2dev);
    assert_eq!(wb.min_part_hours, 1);
}

const SHOW_AND_REBALANCE_CHECK: &str = r#"
import json, sys
from swift.common.ring import RingBuilder
b = RingBuilder.load(sys.argv[1])
b.validate()
print(json.dumps({'devs': len([d for d in b.devs if d]), 'removed': len(b._remove_devs), 'version': b.version}))
"#;

#[test]
fn swift_ring_builder_shows_and_rebalances_a_ringsmith_builder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.builder");
    let b = RingBuilder::load(fixtures_dir().join("pending_removal.builder")).unwrap();
    b.save(&path).unwrap();

    let show = Command::new(swift_bin("swift-ring-builder"))
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(text.contains("256 partitions, 3.000000 replicas"), "{text}");
    let del_rows: Vec<&str> = text.lines().filter(|l| l.contains(" DEL")).collect();
    assert_eq!(del_rows.len(), 1, "{text}");
    assert!(del_rows[0].trim_start().starts_with('5'), "{text}");

    let reb = Command::new(swift_bin("swift-ring-builder"))
        .arg(&path)
        .args(["pretend_min_part_hours_passed"])
        .output()
        .unwrap();
    assert!(
        reb.status.success(),
        "{}",
        String::from_utf8_lossy(&reb.stdout)
    );
    let reb = Command::new(swift_bin("swift-ring-builder"))
        .arg(&path)
        .args(["rebalance", "--seed", "3"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&reb.stdout);
    // 0 = done, 1 = done with warnings (e.g. balance not yet perfect).
    assert!(matches!(reb.status.code(), Some(0 | 1)), "{text}");
    assert!(text.contains("Reassigned"), "{text}");

    // Swift dropped the removed device; Ringsmith reads Swift's rebalanced builder.
    let after = RingBuilder::load(&path).unwrap();
    // Swift drops the removed device (and trims trailing holes).
    assert!(after.devs.get(5).is_none_or(|d| d.is_none()));
    assert!(after.remove_devs.is_empty());
    assert_eq!(after.version, b.version + 1);
    let backups = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .count();
    assert!(backups >= 1, "swift-ring-builder kept a backup");

    let res = python(SHOW_AND_REBALANCE_CHECK, &[&path]);
    assert_eq!(res["removed"], 0);
    assert_eq!(res["devs"], 5);
}

/// Swift's `get_ring().to_dict()` as JSON (arrays as lists).
const GET_RING: &str = r#"
import json, sys
from swift.common.ring import RingBuilder
res = {}
for p in sys.argv[1:]:
    d = RingBuilder.load(p).get_ring().to_dict()
    d['replica2part2dev_id'] = [list(r) for r in d['replica2part2dev_id']]
    res[p] = d
print(json.dumps(res))
"#;

/// Numbers compare by value (Swift mixes `0` and `0.0` for weights).
fn normalize(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(normalize).collect()),
        serde_json::Value::Object(o) => {
            serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn get_ring_matches_swift() {
    let all = fixtures();
    let paths: Vec<&Path> = all.iter().map(|(_, p)| p.as_path()).collect();
    let swift = python(GET_RING, &paths);
    for (name, path) in &all {
        let ring = RingBuilder::load(path).unwrap().get_ring();
        let none = if ring.dev_id_bytes == 4 {
            u32::MAX as u64
        } else {
            u16::MAX as u64
        };
        let ours = serde_json::json!({
            "devs": ring.devs,
            "replica2part2dev_id": ring
                .replica2part2dev
                .iter()
                .map(|r| r.iter().map(|&d| if d == NONE_DEV { none } else { d as u64 }).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            "part_shift": ring.part_shift,
            "next_part_power": ring.next_part_power,
            "version": ring.version,
            "dev_id_bytes": ring.dev_id_bytes,
        });
        let (ours, theirs) = (normalize(&ours), normalize(&swift[path.to_str().unwrap()]));
        let keys: std::collections::BTreeSet<&String> = ours
            .as_object()
            .unwrap()
            .keys()
            .chain(theirs.as_object().unwrap().keys())
            .collect();
        let differing: Vec<&&String> = keys
            .iter()
            .filter(|k| ours.get(k) != theirs.get(k))
            .collect();
        assert!(
            differing.is_empty(),
            "{name}: get_ring() differs in {differing:?}"
        );
    }
}

/// Swift's `write_builder` of the rebalanced fixture's ring, against Ringsmith's
/// `from_ring` of the same ring written through Ringsmith.
const COMPARE_WRITE_BUILDER: &str = r#"
import json, sys
from swift.common.ring import RingBuilder
a = RingBuilder.load(sys.argv[1]).to_dict()
b = RingBuilder.load(sys.argv[2]).to_dict()
print(json.dumps(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))))
"#;

#[test]
fn from_ring_matches_swift_write_builder() {
    let rebalanced = RingBuilder::load(fixtures_dir().join("rebalanced.builder")).unwrap();
    let ring = rebalanced.get_ring();
    let recovered = RingBuilder::from_ring(&ring, 1);
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("object.builder");
    recovered.save(&ours).unwrap();
    let diff = python(
        COMPARE_WRITE_BUILDER,
        &[&fixtures_dir().join("write_builder.builder"), &ours],
    );
    // Swift assigns a fresh id when it saves; everything else must match.
    assert_eq!(diff, serde_json::json!(["id"]));
    let mut expected = BTreeMap::new();
    for d in recovered.devs.iter().flatten() {
        expected.insert(d.dev.id, d.parts);
    }
    for d in rebalanced.devs.iter().flatten() {
        assert_eq!(expected[&d.dev.id], d.parts);
    }
}

/// Loads each builder with Swift, validates it, then lets Swift rebalance it (seeded) and
/// validate again; reports what it saw.
const SWIFT_VALIDATES_AND_REBALANCES: &str = r#"
import json, sys
from swift.common.ring import RingBuilder
res = {}
for p in sys.argv[1:]:
    b = RingBuilder.load(p)
    b.validate()
    r = {'devs': len([d for d in b.devs if d]), 'removing': len(b._remove_devs),
         'version': b.version, 'balance': b.get_balance()}
    b.pretend_min_part_hours_passed()
    b.rebalance(seed=5)
    b.validate()
    r['balance_after_swift'] = b.get_balance()
    res[p] = r
print(json.dumps(res))
"#;

#[test]
fn ringsmith_rebalances_swift_builders_and_swift_accepts_the_result() {
    use ringsmith::builder::RebalanceOptions;
    let dir = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    for (name, path) in fixtures() {
        let mut b = RingBuilder::load(&path).unwrap();
        if b.next_part_power.is_some() {
            // Mid partition-power increase: Swift itself refuses to rebalance.
            continue;
        }
        b.pretend_min_part_hours_passed();
        let outcome = b
            .rebalance(&RebalanceOptions {
                seed: Some(1),
                now_secs: Some(1_800_000_000),
            })
            .unwrap_or_else(|e| panic!("{name}: Ringsmith cannot rebalance Swift's builder: {e}"));
        b.validate(false)
            .unwrap_or_else(|e| panic!("{name}: invalid after rebalance: {e}"));
        assert!(b.remove_devs.is_empty(), "{name}: {outcome:?}");
        let out = dir.path().join(format!("{name}.builder"));
        b.save(&out).unwrap();
        ours.push((name, out, b));
    }
    assert!(ours.len() >= 10);
    let paths: Vec<&Path> = ours.iter().map(|(_, p, _)| p.as_path()).collect();
    let res = python(SWIFT_VALIDATES_AND_REBALANCES, &paths);
    for (name, path, b) in &ours {
        let r = &res[path.to_str().unwrap()];
        assert_eq!(r["removing"], 0, "{name}: {r}");
        assert_eq!(r["version"], b.version, "{name}: {r}");
        assert_eq!(r["devs"], b.iter_devs().count(), "{name}: {r}");
        let swift_balance = r["balance"].as_f64().unwrap();
        assert!(
            (swift_balance - b.get_balance()).abs() < 1e-6,
            "{name}: Swift sees balance {swift_balance}, Ringsmith {}",
            b.get_balance()
        );
    }
}

#[test]
fn a_builder_made_by_ringsmith_works_in_swift() {
    use ringsmith::builder::{NewDevice, RebalanceOptions};
    let mut b = RingBuilder::new(8, 3.0, 1).unwrap();
    for i in 0..6u32 {
        let (zone, port) = (1 + i % 3, 6200 + i / 3);
        let device = format!("sd{}", ["a", "b"][(i / 3) as usize]);
        b.add_dev(NewDevice {
            meta: format!("disk {i}"),
            ..NewDevice::new(1, zone, format!("127.0.0.{zone}"), port, device, 100.0)
        })
        .unwrap();
    }
    let opts = RebalanceOptions {
        seed: Some(7),
        now_secs: Some(1_800_000_000),
    };
    b.rebalance(&opts).unwrap();
    // A device added since the rebalance, and one marked for removal.
    b.add_dev(NewDevice::new(1, 1, "127.0.0.4", 6200, "sdc", 50.0))
        .unwrap();
    b.remove_dev(2).unwrap();
    assert!(b.ensure_id());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.builder");
    let backup = b.save_with_backup(&path, 1_800_000_000).unwrap();
    assert!(backup.ends_with("backups/1800000000.object.builder"));

    let show = Command::new(swift_bin("swift-ring-builder"))
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{text}");
    assert!(text.contains("7 devices"), "{text}");
    assert!(text.contains("disk 5"), "{text}");
    let del: Vec<&str> = text.lines().filter(|l| l.contains(" DEL")).collect();
    assert_eq!(del.len(), 1, "{text}");
    assert!(del[0].trim_start().starts_with('2'), "{text}");

    let check = r#"
import json, sys
from swift.common.ring import RingBuilder
b = RingBuilder.load(sys.argv[1])
print(json.dumps({'id': b.id, 'removing': [d['id'] for d in b._remove_devs],
                  'same_object': all(any(r is d for d in b.devs) for r in b._remove_devs),
                  'new_dev_keys': sorted(b.devs[6])}))
"#;
    let r = python(check, &[&path]);
    assert_eq!(r["id"], b.id.clone().unwrap());
    assert_eq!(r["removing"], serde_json::json!([2]));
    assert_eq!(r["same_object"], true);
    // Like a device Swift's add_dev made after a rebalance: no parts_wanted yet.
    assert!(!r["new_dev_keys"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("parts_wanted")));

    for args in [
        &["pretend_min_part_hours_passed"][..],
        &["rebalance", "--seed", "2"],
    ] {
        let out = Command::new(swift_bin("swift-ring-builder"))
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let after = RingBuilder::load(&path).unwrap();
    assert!(after.dev(2).is_none());
    assert!(after.dev(6).unwrap().parts > 0);
    after.validate(false).unwrap();
}

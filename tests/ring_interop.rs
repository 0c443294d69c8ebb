//! Interop with the real Swift 2.38.3 (the virtualenv `scripts/swift-venv.sh` makes):
//!
//! * rings Swift wrote (fixtures/rings, v1 and v2, 2- and 4-byte ids, fractional replicas,
//!   holes, next_part_power) load in Ringsmith with the identical devices and table;
//! * rings Ringsmith writes, v1 and v2, load in Swift's `RingData.load`, equal what
//!   Swift's builder `get_ring()` gives, pass the v2 section checks, and satisfy
//!   `swift-ring-builder <ring> version` and `swift-ring-builder <builder>` ("up-to-date");
//! * `get_nodes` and the handoffs of `get_more_nodes` agree with Swift's `Ring` on
//!   10,000+ random paths per ring, including a 2^18-partition ring (handoff stride > 1).
//!
//! Every Python check runs in ONE python process per test. These tests never skip: they
//! fail if the virtualenv is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ringsmith::hash::HashConfig;
use ringsmith::ring::{synthetic, FormatVersion, Ring, RingData};
use serde_json::{json, Value};

const PREFIX: &str = "ringsmith-prefix";
const SUFFIX: &str = "endcap";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rings")
        .join(name)
}

fn hash() -> HashConfig {
    HashConfig::load(&fixture("")).expect("fixtures/rings/swift.conf")
}

/// Runs `script` in Swift's Python with the path of `input` (as JSON) in `sys.argv[1]`;
/// returns its JSON stdout.
fn python(script: &str, input: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, serde_json::to_vec(input).unwrap()).unwrap();
    ringsmith_testkit::swift_python_json(
        &[
            std::ffi::OsStr::new("-c"),
            std::ffi::OsStr::new(script),
            input_path.as_os_str(),
        ],
        b"",
    )
}

const PY_PRELUDE: &str = r#"
import json, sys, itertools
from swift.common import utils
from swift.common.ring import RingData, Ring, RingBuilder
from swift.common.ring.io import RingReader
inp = json.load(open(sys.argv[1]))
utils.HASH_PATH_PREFIX = inp.get('prefix', '').encode()
utils.HASH_PATH_SUFFIX = inp.get('suffix', 'endcap').encode()

def ring_dict(rd):
    d = rd.to_dict()
    d['replica2part2dev_id'] = [list(a) for a in d['replica2part2dev_id']]
    d['format_version'] = rd.format_version
    return d
"#;

/// Compares a ring as Swift read it (`ring_dict` above) with ours.
fn assert_same_as_swift(name: &str, swift: &Value, ours: &RingData) {
    let table: Vec<Vec<u32>> =
        serde_json::from_value(swift["replica2part2dev_id"].clone()).unwrap();
    assert_eq!(table, ours.replica2part2dev, "{name}: table");
    assert_eq!(swift["part_shift"], json!(ours.part_shift), "{name}");
    assert_eq!(
        swift["next_part_power"],
        json!(ours.next_part_power),
        "{name}"
    );
    assert_eq!(swift["version"], json!(ours.version), "{name}");
    assert_eq!(swift["dev_id_bytes"], json!(ours.dev_id_bytes), "{name}");
    let devs = swift["devs"].as_array().unwrap();
    assert_eq!(devs.len(), ours.devs.len(), "{name}: device count");
    for (i, (s, o)) in devs.iter().zip(&ours.devs).enumerate() {
        let o = o.as_ref().map(ringsmith::ring::format::device_json);
        assert_eq!(
            Some(s.clone()).filter(|v| !v.is_null()),
            o,
            "{name}: device {i}"
        );
    }
}

#[test]
fn swift_written_fixtures_load_identically() {
    let names = [
        "basic.v1", "basic.v2", "frac.v1", "frac.v2", "npp.v1", "npp.v2", "uni.v1", "uni.v2",
        "wide.v2",
    ];
    let files: Vec<String> = names
        .iter()
        .map(|n| fixture(&format!("{n}.ring.gz")).display().to_string())
        .collect();
    let out = python(
        &format!(
            "{PY_PRELUDE}\nprint(json.dumps({{f: ring_dict(RingData.load(f)) for f in inp['files']}}))"
        ),
        &json!({ "files": files }),
    );
    for (name, file) in names.iter().zip(&files) {
        let ours = RingData::load(Path::new(file)).unwrap();
        assert_same_as_swift(name, &out[file], &ours);
    }
}

#[test]
fn rings_we_write_load_in_swift() {
    let dir = tempfile::tempdir().unwrap();
    let mut checks = Vec::new();
    for name in ["basic", "frac", "npp", "uni", "wide"] {
        // Start from Swift's v2 ring (v1 where it exists would do as well).
        let data = RingData::load(&fixture(&format!("{name}.v2.ring.gz"))).unwrap();
        for format in [FormatVersion::V1, FormatVersion::V2] {
            if name == "wide" && format == FormatVersion::V1 {
                continue; // v1 cannot hold 4-byte ids; refusing is tested in the unit tests
            }
            let sub = dir.path().join(format!("{name}-v{}", format.number()));
            std::fs::create_dir(&sub).unwrap();
            let ring = sub.join(format!("{name}.ring.gz"));
            data.save(&ring, format).unwrap();
            let builder = sub.join(format!("{name}.builder"));
            std::fs::copy(fixture(&format!("{name}.builder")), &builder).unwrap();
            checks.push(json!({
                "ring": ring.display().to_string(),
                "builder": builder.display().to_string(),
                "format": format.number(),
            }));

            // The CLI's own checks.
            let cli = ringsmith_testkit::swift_bin("swift-ring-builder");
            let out = Command::new(&cli)
                .arg(&ring)
                .arg("version")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{name}: {text}");
            assert!(
                text.contains(&format!("Serialization version: {}", format.number())),
                "{name}: {text}"
            );
            let out = Command::new(&cli).arg(&builder).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("{name}.ring.gz is up-to-date")),
                "{name} v{}: {text}",
                format.number()
            );
        }
    }
    let script = format!(
        "{PY_PRELUDE}
results = []
for c in inp['checks']:
    want = RingBuilder.load(c['builder']).get_ring().to_dict()
    rd = RingData.load(c['ring'])
    sections = []
    if rd.format_version == 2:
        with RingReader.open(c['ring']) as rr:
            for name in rr.index:
                rr.read_section(name)   # checks size and sha256
                sections.append(name)
    r = Ring(c['ring'])
    results.append({{'ring': c['ring'], 'equal': rd.to_dict() == want,
                    'format': rd.format_version, 'sections': sorted(sections),
                    'replica_count': r.replica_count}})
print(json.dumps(results))
"
    );
    let out = python(&script, &json!({ "checks": checks }));
    let results = out.as_array().unwrap();
    assert_eq!(results.len(), checks.len());
    for (r, c) in results.iter().zip(&checks) {
        assert_eq!(r["equal"], json!(true), "{r}");
        assert_eq!(r["format"], c["format"], "{r}");
        if c["format"] == json!(2) {
            assert_eq!(
                r["sections"],
                json!([
                    "swift/ring/assignments",
                    "swift/ring/devices",
                    "swift/ring/metadata"
                ])
            );
        }
    }
}

/// Random account / container / object names: ASCII, spaces, slashes in object names,
/// non-ASCII, long names.
fn random_paths(n: usize, seed: u64) -> Vec<(String, Option<String>, Option<String>)> {
    const ALPHABET: &[char] = &[
        'a', 'b', 'c', 'x', 'Y', 'Z', '0', '7', '_', '-', '.', ' ', '%', 'é', 'ü', '中', '😀', '~',
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let name = |rng: &mut ChaCha8Rng, slash: bool| -> String {
        let len = if rng.gen_bool(0.05) {
            rng.gen_range(60..300)
        } else {
            rng.gen_range(1..24)
        };
        (0..len)
            .map(|_| {
                if slash && rng.gen_bool(0.08) {
                    '/'
                } else {
                    ALPHABET[rng.gen_range(0..ALPHABET.len())]
                }
            })
            .collect()
    };
    (0..n)
        .map(|i| {
            let a = format!("AUTH_{}", name(&mut rng, false));
            match i % 3 {
                0 => (a, None, None),
                1 => (a, Some(name(&mut rng, false)), None),
                _ => (a, Some(name(&mut rng, false)), Some(name(&mut rng, true))),
            }
        })
        .collect()
}

#[test]
fn lookups_agree_with_swift_on_random_paths() {
    const HANDOFFS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    // A large synthetic ring: 2^18 partitions means Swift's handoff walk strides by 4
    // and wraps around with its quirk; 3.25 replicas, holes, two regions.
    let big = dir.path().join("big.ring.gz");
    synthetic::ring(&synthetic::Shape {
        part_power: 18,
        replicas: 3.25,
        hole_every: 7,
        ..Default::default()
    })
    .save(&big, FormatVersion::V2)
    .unwrap();
    let mut rings: Vec<PathBuf> = ["basic.v2", "frac.v1", "npp.v1", "wide.v2", "uni.v1"]
        .iter()
        .map(|n| fixture(&format!("{n}.ring.gz")))
        .collect();
    rings.push(big);
    let paths = random_paths(10_000, 42);
    let script = format!(
        "{PY_PRELUDE}
out = {{}}
for f in inp['rings']:
    r = Ring(f)
    lookups = []
    for a, c, o in inp['paths']:
        part, nodes = r.get_nodes(a, c, o)
        hand = [d['id'] for d in itertools.islice(r.get_more_nodes(part), inp['handoffs'])]
        assert [d['index'] for d in nodes] == list(range(len(nodes)))
        lookups.append([part, [d['id'] for d in nodes], hand])
    # every partition's complete handoff list on the small rings
    full = []
    if r.partition_count <= 1024:
        for p in range(r.partition_count):
            hs = list(r.get_more_nodes(p))
            assert [d['handoff_index'] for d in hs] == list(range(len(hs)))
            full.append([d['id'] for d in hs])
    out[f] = {{'lookups': lookups, 'full': full}}
print(json.dumps(out))
"
    );
    let files: Vec<String> = rings.iter().map(|p| p.display().to_string()).collect();
    let out = python(
        &script,
        &json!({
            "prefix": PREFIX, "suffix": SUFFIX, "rings": files, "handoffs": HANDOFFS,
            "paths": paths.iter().map(|(a, c, o)| json!([a, c, o])).collect::<Vec<_>>(),
        }),
    );
    let cfg = hash();
    assert_eq!(cfg, HashConfig::new(PREFIX, SUFFIX));
    for file in &files {
        let ring = Ring::load(Path::new(file), cfg.clone()).unwrap();
        let swift = &out[file];
        let lookups = swift["lookups"].as_array().unwrap();
        assert_eq!(lookups.len(), paths.len());
        for ((a, c, o), want) in paths.iter().zip(lookups) {
            let (part, nodes) = ring.get_nodes(a, c.as_deref(), o.as_deref()).unwrap();
            let hand: Vec<u32> = ring
                .get_more_nodes(part)
                .take(HANDOFFS)
                .map(|d| d.id)
                .collect();
            let got = json!([part, nodes.ids(), hand]);
            assert_eq!(&got, want, "{file}: {a:?} {c:?} {o:?}");
        }
        for (p, want) in swift["full"].as_array().unwrap().iter().enumerate() {
            let got: Vec<u32> = ring.get_more_nodes(p as u32).map(|d| d.id).collect();
            assert_eq!(&json!(got), want, "{file}: all handoffs of partition {p}");
        }
    }
}

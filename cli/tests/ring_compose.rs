//! Golden tests for `ringsmith ring compose` against the real `swift-ring-composer`
//! (Swift 2.38.3 from the test virtualenv).
//!
//! Two directories hold byte-identical component builders (made once by Swift's own
//! `RingBuilder`). Each step runs the same command line with Swift's tool in one and ours
//! in the other; exit codes, stdout and stderr must be equal once the program name and the
//! directory are normalised, and so must the composite ring (byte for byte) and the
//! composite builder file. The directories evolve in step, so the `--force` and
//! re-compose rules are exercised against the state each tool wrote. Then each tool is
//! handed the other's files: Swift loads and re-composes from Ringsmith's composite file,
//! Ringsmith from Swift's, and Swift's `Ring` serves Ringsmith's composite ring.

mod common;

use std::path::{Path, PathBuf};

use common::{ringsmith, run_in, Out};

fn composer() -> PathBuf {
    ringsmith_testkit::swift_bin("swift-ring-composer")
}

/// Component builders made with Swift's classes: `r1` (2 replicas, region 1), `r2` and
/// `r3` (1 replica, regions 2 and 3), and broken ones for the validation rules.
const MAKE_BUILDERS: &str = r#"
import sys
from swift.common.ring import RingBuilder
d = sys.argv[1]
def make(name, power, replicas, devs, rebalance=True):
    b = RingBuilder(power, replicas, 0)
    for (r, ip, dev) in devs:
        b.add_dev({'region': r, 'zone': 1, 'ip': ip, 'port': 6200,
                   'device': dev, 'weight': 100.0, 'meta': ''})
    if rebalance:
        b.rebalance(seed=1)
    b.save('%s/%s.builder' % (d, name))
    return b
make('r1', 6, 2.0, [(1, '127.0.0.1', 'sda'), (1, '127.0.0.2', 'sda'), (1, '127.0.0.3', 'sda')])
make('r2', 6, 1.0, [(2, '127.0.1.1', 'sda'), (2, '127.0.1.2', 'sda')])
make('r3', 6, 1.0, [(3, '127.0.2.1', 'sda')])
make('power', 7, 1.0, [(4, '127.0.3.1', 'sda')])
make('sameregion', 6, 1.0, [(1, '127.0.4.1', 'sda')])
make('dup', 6, 1.0, [(5, '127.0.0.1', 'sda')])
make('frac', 6, 1.5, [(6, '127.0.5.1', 'sda'), (6, '127.0.5.2', 'sda')])
make('pending', 6, 1.0, [(7, '127.0.6.1', 'sda')], rebalance=False)
open('%s/garbage.composite' % d, 'w').write('{"not": "composite"')
"#;

/// Adds a device to `r1` and rebalances it (a newer version of the same builder).
const GROW_R1: &str = r#"
import sys
from swift.common.ring import RingBuilder
p = sys.argv[1] + '/r1.builder'
b = RingBuilder.load(p)
b.add_dev({'region': 1, 'zone': 2, 'ip': '127.0.0.4', 'port': 6200,
           'device': 'sdb', 'weight': 100.0, 'meta': ''})
b.pretend_min_part_hours_passed()
b.rebalance(seed=2)
b.save(p)
"#;

fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

struct Pair {
    _tmp: tempfile::TempDir,
    swift: PathBuf,
    ours: PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let swift = tmp.path().join("swift");
        let ours = tmp.path().join("ours");
        std::fs::create_dir_all(&swift).unwrap();
        std::fs::create_dir_all(&ours).unwrap();
        ringsmith_testkit::swift_python(&["-c", MAKE_BUILDERS, swift.to_str().unwrap()], b"");
        for e in std::fs::read_dir(&swift).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), ours.join(e.file_name())).unwrap();
        }
        Pair {
            _tmp: tmp,
            swift,
            ours,
        }
    }

    fn norm(&self, text: &str, dir: &Path) -> String {
        text.replace("swift-ring-composer", "PROG")
            .replace("ringsmith ring compose", "PROG")
            .replace(dir.to_str().unwrap(), "<DIR>")
    }

    fn run_swift(&self, args: &[&str]) -> Out {
        run_in(&self.swift, &composer(), args, b"", &[("COLUMNS", "80")])
    }

    fn run_ours(&self, args: &[&str]) -> Out {
        let mut full = vec!["ring", "compose"];
        full.extend_from_slice(args);
        run_in(&self.ours, &ringsmith(), &full, b"", &[])
    }

    /// Runs `args` with both tools; asserts equal exit code and output; returns the code.
    fn same(&self, args: &[&str]) -> i32 {
        let theirs = self.run_swift(args);
        let ours = self.run_ours(args);
        let ctx = format!("{args:?}\n=== swift\n{theirs:?}\n=== ours\n{ours:?}");
        assert_eq!(theirs.code, ours.code, "exit code differs: {ctx}");
        assert_eq!(
            self.norm(&theirs.stdout, &self.swift),
            self.norm(&ours.stdout, &self.ours),
            "stdout differs: {ctx}"
        );
        assert_eq!(
            self.norm(&theirs.stderr, &self.swift),
            self.norm(&ours.stderr, &self.ours),
            "stderr differs: {ctx}"
        );
        theirs.code
    }

    /// Both directories hold the same composite ring bytes and the same metadata.
    fn same_files(&self, ring: &str, composite: &str) {
        // The decompressed ring is compared: flate2's deflate picks other (equally valid)
        // encodings than Python's zlib for every ring Ringsmith writes.
        let a = gunzip(&self.swift.join(ring));
        let b = gunzip(&self.ours.join(ring));
        assert!(a == b, "composite ring {ring} differs from Swift's");
        let a = std::fs::read_to_string(self.swift.join(composite)).unwrap();
        let b = std::fs::read_to_string(self.ours.join(composite)).unwrap();
        assert_eq!(self.norm(&a, &self.swift), self.norm(&b, &self.ours));
    }

    fn grow_r1(&self) {
        ringsmith_testkit::swift_python(&["-c", GROW_R1, self.swift.to_str().unwrap()], b"");
        std::fs::copy(self.swift.join("r1.builder"), self.ours.join("r1.builder")).unwrap();
    }
}

#[test]
fn compose_matches_swift_ring_composer_step_by_step() {
    let p = Pair::new();
    // Usage and argument errors.
    for args in [
        &[][..],
        &["-h"],
        &["c.composite", "compose", "-h"],
        &["c.composite", "show", "-h"],
        &["c.composite", "bogus"],
        &["c.composite", "show", "extra"],
        &["--bogus", "c.composite", "show"],
        &["c.composite", "compose", "r1.builder", "r2.builder"],
        &["c.composite", "compose", "r1.builder", "--output"],
        &[
            "c.composite",
            "compose",
            "r1.builder",
            "--output",
            "x",
            "r2.builder",
        ],
        &[
            "c.composite",
            "compose",
            "r1.builder",
            "r2.builder",
            "--output=x",
            "--force=1",
        ],
        &[
            "c.composite",
            "compose",
            "r1.builder",
            "r2.builder",
            "--output",
            "x",
            "--bad",
        ],
    ] {
        assert_eq!(p.same(args), if args.contains(&"-h") { 0 } else { 2 });
    }
    // Loading problems.
    assert_eq!(p.same(&["missing.composite", "show"]), 2);
    assert_eq!(p.same(&["garbage.composite", "show"]), 2);
    assert_eq!(
        p.same(&[
            "garbage.composite",
            "compose",
            "r1.builder",
            "r2.builder",
            "--output",
            "g.ring.gz"
        ]),
        2
    );
    assert_eq!(
        p.same(&[
            "c.composite",
            "compose",
            "r1.builder",
            "--output",
            "c.ring.gz"
        ]),
        2
    );
    assert_eq!(
        p.same(&[
            "c.composite",
            "compose",
            "r1.builder",
            "nope.builder",
            "--output",
            "c.ring.gz"
        ]),
        2
    );
    assert_eq!(
        p.same(&[
            "c.composite",
            "compose",
            "r1.builder",
            "r1.builder",
            "--output",
            "c.ring.gz"
        ]),
        2
    );
    // Every validation rule, first problem first.
    for bad in ["power", "sameregion", "dup", "frac", "pending"] {
        let file = format!("{bad}.builder");
        assert_eq!(
            p.same(&[
                "v.composite",
                "compose",
                "r1.builder",
                &file,
                "--output",
                "v.ring.gz"
            ]),
            2,
            "{bad}"
        );
    }
    assert!(!p.ours.join("v.composite").exists() && !p.ours.join("v.ring.gz").exists());

    // A first composition, then the update rules.
    let compose = [
        "c.composite",
        "compose",
        "r1.builder",
        "r2.builder",
        "--output",
        "c.ring.gz",
    ];
    assert_eq!(p.same(&compose), 0);
    p.same_files("c.ring.gz", "c.composite");
    assert_eq!(p.same(&["c.composite", "show"]), 0);
    assert_eq!(p.same(&compose), 2, "unmodified components are refused");
    assert_eq!(
        p.same(&[
            "c.composite",
            "compose",
            "r2.builder",
            "r1.builder",
            "--output",
            "c.ring.gz"
        ]),
        2,
        "reordered components are refused"
    );
    let three = [
        "c.composite",
        "compose",
        "r1.builder",
        "r2.builder",
        "r3.builder",
        "--output",
        "c.ring.gz",
    ];
    assert_eq!(p.same(&three), 2, "an extra component needs --force");
    let mut forced = three.to_vec();
    forced.push("--force");
    assert_eq!(p.same(&forced), 0);
    p.same_files("c.ring.gz", "c.composite");
    assert_eq!(p.same(&compose), 2, "a missing component is refused");

    // A component grows: the stored list is reused when no builder is named.
    p.grow_r1();
    assert_eq!(
        p.same(&["c.composite", "compose", "--output", "c2.ring.gz"]),
        0
    );
    p.same_files("c2.ring.gz", "c.composite");
    assert_eq!(p.same(&["c.composite", "show"]), 0);
}

#[test]
fn each_tool_continues_from_the_others_files() {
    let p = Pair::new();
    let compose = [
        "c.composite",
        "compose",
        "r1.builder",
        "r2.builder",
        "--output",
        "c.ring.gz",
    ];
    // Ringsmith composes; Swift's Ring serves the result like its own composite ring.
    assert_eq!(p.run_ours(&compose).code, 0);
    let check = r#"
import sys, json
from swift.common import utils
utils.HASH_PATH_PREFIX, utils.HASH_PATH_SUFFIX = b'', b'test'
from swift.common.ring import Ring
from swift.common.ring.composite_builder import CompositeRingBuilder
r = Ring(sys.argv[1])
cb = CompositeRingBuilder.load(sys.argv[2])
print(json.dumps({'replicas': r.replica_count, 'parts': r.partition_count,
                  'nodes': [n['id'] for n in r.get_part_nodes(5)],
                  'version': cb.version, 'ids': [c['id'] for c in cb.components]}))
"#;
    let ours_ring = p.ours.join("c.ring.gz");
    let ours_comp = p.ours.join("c.composite");
    let seen = ringsmith_testkit::swift_python_json(
        &[
            "-c",
            check,
            ours_ring.to_str().unwrap(),
            ours_comp.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(seen["replicas"], 3.0);
    assert_eq!(seen["parts"], 64);
    assert_eq!(seen["version"], 1);
    assert_eq!(seen["nodes"].as_array().unwrap().len(), 3);
    // Our ring agrees with Ringsmith's own lookup of the same partition.
    let ring = ringsmith::ring::RingData::load(&ours_ring).unwrap();
    let ids: Vec<u64> = (0..3).map(|r| ring.replica2part2dev[r][5] as u64).collect();
    let swift_ids: Vec<u64> = seen["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids, swift_ids);

    // Swift continues from Ringsmith's composite file (update rules apply), and back.
    p.grow_r1();
    let out = run_in(&p.ours, &composer(), &compose, b"", &[]);
    assert_eq!(out.code, 0, "Swift on Ringsmith's composite file: {out:?}");
    let out = run_in(&p.ours, &composer(), &compose, b"", &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out
        .stderr
        .contains("None of the component builders has been modified"));

    // Swift composes; Ringsmith continues from Swift's composite file.
    assert_eq!(run_in(&p.swift, &composer(), &compose, b"", &[]).code, 0);
    let ours_in_swift = |args: &[&str]| {
        let mut full = vec!["ring", "compose"];
        full.extend_from_slice(args);
        run_in(&p.swift, &ringsmith(), &full, b"", &[])
    };
    let out = ours_in_swift(&[
        "c.composite",
        "compose",
        "r2.builder",
        "r1.builder",
        "--output",
        "c.ring.gz",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "Invalid builder change at index 0: Attribute mismatch for replicas: 2.0 != 1.0"
        ),
        "{out:?}"
    );
    let out = ours_in_swift(&["c.composite", "compose", "--output", "c.ring.gz"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("None of the component builders has been modified"),
        "{out:?}"
    );
    let grow_r2 = r#"
import sys
from swift.common.ring import RingBuilder
p = sys.argv[1] + '/r2.builder'
b = RingBuilder.load(p)
b.set_dev_weight(0, 50.0)
b.pretend_min_part_hours_passed()
b.rebalance(seed=3)
b.save(p)
"#;
    ringsmith_testkit::swift_python(&["-c", grow_r2, p.swift.to_str().unwrap()], b"");
    let out = ours_in_swift(&["c.composite", "compose", "--output", "d.ring.gz"]);
    assert_eq!(out.code, 0, "{out:?}");
    let shown: serde_json::Value =
        serde_json::from_str(&ours_in_swift(&["c.composite", "show"]).stdout).unwrap();
    assert_eq!(shown["version"], 2);
    // Swift reads the update Ringsmith recorded: nothing changed since, so it refuses.
    let out = run_in(
        &p.swift,
        &composer(),
        &["c.composite", "compose", "--output", "e.ring.gz"],
        b"",
        &[],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("None of the component builders has been modified"),
        "{out:?}"
    );
    // Forced, Swift makes the same ring from the same builders.
    let out = run_in(
        &p.swift,
        &composer(),
        &["c.composite", "compose", "--output", "e.ring.gz", "--force"],
        b"",
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(gunzip(&p.swift.join("d.ring.gz")) == gunzip(&p.swift.join("e.ring.gz")));
}

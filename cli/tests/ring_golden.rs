//! Golden tests: the real `swift-ring-builder` (Swift 2.38.3 from the test virtualenv) and
//! `ringsmith ring` run the same command on copies of the same builder file, step by step.
//!
//! Before every step Swift's builder (and ring, when there is one) is copied over ours, so
//! each command starts from byte-identical input; then exit codes must be equal and output
//! equal after normalising only what legitimately differs (seconds ticking in "remaining"
//! times, the program name in usage texts). Where the output depends on where the
//! rebalancer put partitions (Ringsmith's placement is its own), the parts that must match
//! are compared: banner, message shape, exit code.

mod common;

use common::{ring, ringsmith, run_in, Out};

fn swift() -> std::path::PathBuf {
    ringsmith_testkit::swift_bin("swift-ring-builder")
}

/// `(0:59:58 remaining)` ticks between the two runs.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match (line.find('('), line.find(" remaining)")) {
            (Some(a), Some(b)) if a < b => {
                format!("{}(<T> remaining){}", &line[..a], &line[b + 11..])
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

struct Pair {
    _tmp: tempfile::TempDir,
    swift_dir: std::path::PathBuf,
    ours_dir: std::path::PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let swift_dir = tmp.path().join("swift");
        let ours_dir = tmp.path().join("ours");
        std::fs::create_dir_all(&swift_dir).unwrap();
        std::fs::create_dir_all(&ours_dir).unwrap();
        Pair {
            _tmp: tmp,
            swift_dir,
            ours_dir,
        }
    }

    /// Copies Swift's builder and ring files over ours so the next step starts from the same bytes.
    fn sync(&self) {
        for name in ["object.builder", "object.ring.gz"] {
            let src = self.swift_dir.join(name);
            let dst = self.ours_dir.join(name);
            if src.exists() {
                std::fs::copy(&src, &dst).unwrap();
            } else if dst.exists() {
                std::fs::remove_file(&dst).unwrap();
            }
        }
    }

    fn run_both(&self, args: &[&str], stdin: &[u8]) -> (Out, Out) {
        self.sync();
        let theirs = run_in(&self.swift_dir, &swift(), args, stdin, &[]);
        let mut full = vec!["ring"];
        full.extend_from_slice(args);
        let ours = run_in(&self.ours_dir, &ringsmith(), &full, stdin, &[]);
        (theirs, ours)
    }

    /// Same exit code, same stdout and stderr (normalised).
    fn same(&self, args: &[&str]) -> Out {
        self.same_with_stdin(args, b"")
    }

    fn same_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        let (theirs, ours) = self.run_both(args, stdin);
        assert_eq!(
            (
                theirs.code,
                normalize(&theirs.stdout),
                normalize(&theirs.stderr)
            ),
            (ours.code, normalize(&ours.stdout), normalize(&ours.stderr)),
            "`{}` differs\nSWIFT: {theirs:?}\nOURS: {ours:?}",
            args.join(" ")
        );
        ours
    }

    /// Same exit code; both outputs contain `needle` (for texts that name the program).
    fn same_code_and(&self, args: &[&str], needle: &str) -> Out {
        let (theirs, ours) = self.run_both(args, b"");
        assert_eq!(
            theirs.code,
            ours.code,
            "`{}`\nSWIFT: {theirs:?}\nOURS: {ours:?}",
            args.join(" ")
        );
        for (who, out) in [("swift", &theirs), ("ours", &ours)] {
            assert!(
                out.stdout.contains(needle) || out.stderr.contains(needle),
                "{who} output of `{}` lacks {needle:?}: {out:?}",
                args.join(" ")
            );
        }
        ours
    }
}

fn build_base(p: &Pair) {
    p.same(&["object.builder", "create", "10", "3", "1"]);
    p.same(&[
        "object.builder",
        "add",
        "r1z1-192.168.0.1:6200/sda",
        "4000",
        "r1z1-192.168.0.1:6200/sdb",
        "4000",
    ]);
    // No region: a warning on stderr, region 1.
    p.same(&["object.builder", "add", "z2-192.168.0.2:6200/sda", "4000"]);
    p.same(&[
        "object.builder",
        "add",
        "r1z2-192.168.0.2:6200R10.0.1.2:6300/sdb_fast disk",
        "4000",
    ]);
    p.same(&[
        "object.builder",
        "add",
        "--region",
        "1",
        "--zone",
        "3",
        "--ip",
        "192.168.0.3",
        "--port",
        "6200",
        "--replication-ip",
        "10.0.0.3",
        "--replication-port",
        "6300",
        "--device",
        "sda",
        "--weight",
        "4000",
        "--meta",
        "rack 3",
    ]);
    p.same(&[
        "object.builder",
        "add",
        "r1z3-[2001:DB8::3]:6200/sdb",
        "2000",
    ]);
}

#[test]
fn device_commands_match_swift() {
    let p = Pair::new();
    build_base(&p);
    p.same(&["object.builder"]);
    p.same(&["object.builder", "search", "d1"]);
    p.same(&["object.builder", "search", "--ip", "192.168.0.1"]);
    p.same(&["object.builder", "search", "[2001:db8::3]"]);
    p.same(&["object.builder", "search", "_fast"]);
    p.same(&["object.builder", "search", "r1z9"]);
    p.same(&["object.builder", "search", "x5"]);
    p.same(&["object.builder", "list_parts", "d1"]);
    p.same(&["object.builder", "set_weight", "d3", "2000"]);
    p.same(&["object.builder", "set_weight", "--id", "2", "3000"]);
    // Two matches and no answer on stdin: Swift asks, reads EOF, aborts.
    p.same_with_stdin(&["object.builder", "set_weight", "z1", "5"], b"");
    p.same_with_stdin(&["object.builder", "set_weight", "z1", "5"], b"n\n");
    p.same_with_stdin(&["object.builder", "set_weight", "z1", "4500"], b"y\n");
    p.same(&["object.builder", "set_weight", "z2", "4500", "--yes"]);
    p.same(&["object.builder", "set_zone", "d5", "4"]);
    p.same(&["object.builder", "set_region", "d5", "2"]);
    p.same(&[
        "object.builder",
        "set_info",
        "d4",
        "192.168.0.33:6201/sdz_rack 3b",
    ]);
    p.same(&["object.builder", "set_info", "d4", "192.168.0.1:6200/sda"]);
    p.same(&[
        "object.builder",
        "set_info",
        "--ip",
        "192.168.0.33",
        "--change-meta",
        "moved",
    ]);
    p.same(&["object.builder", "remove", "d5"]);
    p.same(&["object.builder", "remove", "r7"]);
    p.same(&["object.builder"]);
    p.same(&["object.builder", "add", "z1-1.2.3.4/sda", "10"]);
    p.same(&["object.builder", "add", "r1z1-example.com:6200/sda", "10"]);
    p.same(&["object.builder", "add", "r1z1-192.168.0.1:6200/sda", "10"]);
    p.same_code_and(
        &["object.builder", "add", "r1z1-1.2.3.4:6200/sdq", "-5"],
        "no such option: -5",
    );
    p.same_code_and(&["object.builder", "add", "r1z1-1.2.3.4:6200/sdq"], "add");
    p.same_code_and(&["object.builder", "search", "d1", "--zone", "1"], "search");
    p.same(&["object.builder", "frobnicate"]);
    p.same(&["missing.builder"]);
    p.same(&["object.builder", "set_overload", "10%"]);
    p.same(&["object.builder", "set_overload", "2"]);
    p.same(&["object.builder", "set_overload", "-1"]);
    p.same(&["object.builder", "set_overload", "0.05"]);
    p.same(&["object.builder", "set_replicas", "3.5"]);
    p.same(&["object.builder", "set_replicas", "0.5"]);
    p.same_code_and(
        &["object.builder", "set_replicas", "x"],
        "\"x\" is not a valid number.",
    );
    p.same(&["object.builder", "set_min_part_hours", "0"]);
    p.same(&["object.builder", "pretend_min_part_hours_passed"]);
    p.same(&["object.builder", "dispersion"]);
    p.same(&["object.builder", "write_ring"]);
    p.same(&["object.builder"]);
}

#[test]
fn rebalance_and_reports_match_swift() {
    let p = Pair::new();
    build_base(&p);
    // Placement is Ringsmith's own: compare what must match.
    let (theirs, ours) = p.run_both(&["object.builder", "rebalance", "--seed", "1"], b"");
    assert_eq!(theirs.code, ours.code, "SWIFT: {theirs:?}\nOURS: {ours:?}");
    let banner = "Defaulting to --format-version=1. This ensures the ring\n";
    assert!(ours.stdout.starts_with(banner), "{ours:?}");
    assert!(
        ours.stdout
            .contains("Reassigned 3072 (300.00%) partitions. Balance is now "),
        "{ours:?}"
    );
    assert!(p.ours_dir.join("object.ring.gz").exists() && p.ours_dir.join("backups").is_dir());

    // From here on, both sides start from Swift's rebalanced builder and ring.
    p.same(&["object.builder"]);
    p.same(&["object.builder", "validate"]);
    p.same(&["object.builder", "dispersion"]);
    p.same(&["object.builder", "dispersion", "-v"]);
    p.same(&["object.builder", "dispersion", "r\\d+z\\d+$", "--verbose"]);
    p.same(&["object.builder", "list_parts", "d1"]);
    p.same(&["object.builder", "list_parts", "d1", "d2"]);
    p.same(&["object.builder", "search", "z1"]);
    // min_part_hours has not passed: nothing may move.
    p.same(&["object.builder", "rebalance", "--seed", "2"]);
    p.same(&["object.builder", "write_ring", "--format-version=2"]);
    p.same(&["object.ring.gz", "version"]);
    p.same(&["object.builder"]);
    p.same_code_and(
        &["object.builder", "write_ring", "--format-version", "3"],
        "invalid choice: '3'",
    );
}

#[test]
fn write_builder_and_partition_power_match_swift() {
    let p = Pair::new();
    build_base(&p);
    let (theirs, ours) = p.run_both(&["object.builder", "rebalance", "--seed", "3"], b"");
    assert_eq!(theirs.code, ours.code, "SWIFT: {theirs:?}\nOURS: {ours:?}");
    p.same(&["object.builder", "write_builder"]);
    p.same(&["object.builder", "prepare_increase_partition_power"]);
    p.same(&["object.builder"]);
    p.same(&["object.builder", "prepare_increase_partition_power"]);
    p.same(&["object.builder", "add", "r1z1-192.168.0.9:6200/sda", "10"]);
    p.same(&["object.builder", "rebalance"]);
    p.same(&["object.builder", "increase_partition_power"]);
    p.same(&["object.builder", "increase_partition_power"]);
    p.same(&["object.builder", "cancel_increase_partition_power"]);
    p.same(&["object.builder", "finish_increase_partition_power"]);
    p.same(&["object.builder", "finish_increase_partition_power"]);

    // A builder rebuilt from Swift's ring: same exit code and warning, and Swift loads both.
    // Swift's write_builder opens the ring with `Ring()`, which insists on reading
    // /etc/swift/swift.conf; the wrapper gives it a hash suffix instead (the builder does not
    // depend on it) and then runs Swift's own command-line entry point.
    let tmp = tempfile::tempdir().unwrap();
    let python = ringsmith_testkit::swift_bin("python");
    let wrapper = "import sys\nimport swift.common.utils as u\nu.HASH_PATH_SUFFIX = b'golden'\n\
                   from swift.cli.ringbuilder import main\nmain(['swift-ring-builder'] + sys.argv[1:])\n";
    for who in ["swift", "ours"] {
        let dir = tmp.path().join(who);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            p.swift_dir.join("object.ring.gz"),
            dir.join("object.ring.gz"),
        )
        .unwrap();
        let out = if who == "swift" {
            run_in(
                &dir,
                &python,
                &["-c", wrapper, "object.ring.gz", "write_builder"],
                b"",
                &[],
            )
        } else {
            ring(&dir, &["object.ring.gz", "write_builder"])
        };
        assert_eq!(out.code, 0, "{who}: {out:?}");
        assert!(
            out.stderr
                .contains("WARNING: default min_part_hours may not match"),
            "{who}: {out:?}"
        );
        let shown = run_in(&dir, &swift(), &["object.builder"], b"", &[]);
        assert_eq!(
            shown.code, 0,
            "swift reading {who}'s rebuilt builder: {shown:?}"
        );
    }
    let (swift_view, our_view) = (
        run_in(
            &tmp.path().join("swift"),
            &swift(),
            &["object.builder"],
            b"",
            &[],
        ),
        run_in(
            &tmp.path().join("ours"),
            &swift(),
            &["object.builder"],
            b"",
            &[],
        ),
    );
    // Same content apart from the random builder id.
    let strip_id = |s: &str| {
        s.lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert_eq!(strip_id(&swift_view.stdout), strip_id(&our_view.stdout));
}

#[test]
fn ring_written_by_us_is_up_to_date_for_swift() {
    let p = Pair::new();
    build_base(&p);
    p.sync();
    let out = ring(&p.ours_dir, &["object.builder", "rebalance", "--seed", "5"]);
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    // Swift reads our builder and ring and finds the ring matches the builder.
    let shown = run_in(&p.ours_dir, &swift(), &["object.builder"], b"", &[]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown
            .stdout
            .contains("Ring file object.ring.gz is up-to-date"),
        "{shown:?}"
    );
    let ours = ring(&p.ours_dir, &["object.builder"]);
    assert_eq!(normalize(&ours.stdout), normalize(&shown.stdout));
    let validated = run_in(
        &p.ours_dir,
        &swift(),
        &["object.builder", "validate"],
        b"",
        &[],
    );
    assert_eq!(validated.code, 0, "{validated:?}");
}

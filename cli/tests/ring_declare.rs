//! Declarative rings through the binary: `ringsmith ring plan|apply SPEC BUILDER` drive a
//! builder to a spec in capped steps, each a rebalance saved like `ring … rebalance` saves
//! (backups, lock), waiting for min_part_hours between steps, and refusing what cannot be
//! done. The converged builder is then read by the real swift-ring-builder.

mod common;

use std::path::Path;

use common::{ring, ringsmith, run_in, Out};

const SPEC: &str = r#"
[ring]
min_part_hours = 1

[policy]
max_weight_step = 0.25
balance_tolerance = 1.0

[[device]]
region = 1
zone = 1
ip = "127.0.0.1"
port = 6200
device = "sda"
weight = 200.0

[[device]]
region = 1
zone = 2
ip = "127.0.0.2"
port = 6200
device = "sda"
weight = 100.0

[[device]]
region = 1
zone = 4
ip = "127.0.0.4"
port = 6200
device = "sda"
weight = 100.0
"#;

fn declare(dir: &Path, args: &[&str]) -> Out {
    let mut full = vec!["ring"];
    full.extend_from_slice(args);
    run_in(dir, &ringsmith(), &full, b"", &[])
}

fn json_of(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn weights(dir: &Path) -> Vec<(String, f64)> {
    let b = ringsmith::builder::RingBuilder::load(dir.join("obj.builder")).unwrap();
    b.iter_devs()
        .filter(|d| !b.is_marked_for_removal(d.dev.id))
        .map(|d| (d.dev.ip.clone(), d.dev.weight))
        .collect()
}

#[test]
fn apply_converges_in_capped_steps_and_swift_reads_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(ring(dir, &["obj.builder", "create", "8", "3", "1"]).code, 0);
    for (i, ip) in ["127.0.0.1", "127.0.0.2", "127.0.0.3"].iter().enumerate() {
        let dev = format!("r1z{}-{ip}:6200/sda", i + 1);
        assert_eq!(ring(dir, &["obj.builder", "add", &dev, "100"]).code, 0);
    }
    assert_eq!(
        ring(dir, &["obj.builder", "rebalance", "--seed", "1"]).code,
        0
    );
    std::fs::write(dir.join("spec.toml"), SPEC).unwrap();

    // Just rebalanced: the plan says what is needed and that it must wait.
    let plan = declare(dir, &["plan", "spec.toml", "obj.builder", "--json"]);
    assert_eq!(plan.code, 4, "{plan:?}");
    let p = json_of(&plan);
    assert_eq!(p["status"], "wait");
    assert_eq!(p["total_weight_change"], 300.0);
    assert_eq!(
        p["steps_needed"], 4,
        "3 capped weight steps and the removal: {p}"
    );
    let text = declare(dir, &["plan", "spec.toml", "obj.builder"]);
    assert!(
        text.stdout.contains("drain   d2 r1z3-127.0.0.3:6200/sda"),
        "{text:?}"
    );
    assert!(
        text.stdout.contains("add     r1z4-127.0.0.4:6200/sda"),
        "{text:?}"
    );
    let before = std::fs::read(dir.join("obj.builder")).unwrap();
    assert_eq!(declare(dir, &["apply", "spec.toml", "obj.builder"]).code, 4);
    assert_eq!(
        before,
        std::fs::read(dir.join("obj.builder")).unwrap(),
        "a wait writes nothing"
    );

    // Only backups made by `apply` count below.
    std::fs::remove_dir_all(dir.join("backups")).unwrap();
    let mut steps = 0;
    let mut last = weights(dir);
    loop {
        assert_eq!(
            ring(dir, &["obj.builder", "pretend_min_part_hours_passed"]).code,
            0
        );
        let out = declare(
            dir,
            &["apply", "spec.toml", "obj.builder", "--json", "--seed", "3"],
        );
        let j = json_of(&out);
        if out.code == 0 {
            assert_eq!(j["status"], "done");
            break;
        }
        assert_eq!(out.code, 3, "{out:?}");
        assert_eq!(j["status"], "step");
        steps += 1;
        assert!(steps <= 8, "no convergence: {j}");
        // The weight moved in this step is within the cap (25% of 400).
        let now = weights(dir);
        let moved: f64 = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
            .iter()
            .map(|ip| {
                let w = |v: &[(String, f64)]| {
                    v.iter().find(|(i, _)| i == ip).map(|x| x.1).unwrap_or(0.0)
                };
                (w(&now) - w(&last)).abs()
            })
            .sum();
        assert!(
            moved <= 100.0 + 1e-3,
            "step {steps} moved {moved} of weight"
        );
        last = now;
        // Right after a step, the next one must wait for min_part_hours.
        let again = declare(dir, &["apply", "spec.toml", "obj.builder"]);
        assert!(again.code == 4 || again.code == 0, "{again:?}");
        if again.code == 0 {
            break;
        }
    }
    assert!(steps >= 4, "a 75% change took only {steps} steps");
    assert_eq!(
        weights(dir),
        vec![
            ("127.0.0.1".to_string(), 200.0),
            ("127.0.0.2".to_string(), 100.0),
            ("127.0.0.4".to_string(), 100.0)
        ]
    );
    assert_eq!(declare(dir, &["plan", "spec.toml", "obj.builder"]).code, 0);
    // Backups are named by the second (as Swift names them), so steps within one second
    // share a name; every step leaves a builder and a ring backup.
    let backups: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        backups.iter().any(|n| n.ends_with(".obj.builder")),
        "{backups:?}"
    );
    assert!(
        backups.iter().any(|n| n.ends_with(".obj.ring.gz")),
        "{backups:?}"
    );

    // Swift reads the converged builder and ring.
    let swift = ringsmith_testkit::swift_bin("swift-ring-builder");
    let shown = run_in(dir, &swift, &["obj.builder"], b"", &[]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(
        shown.stdout.contains("127.0.0.4") && !shown.stdout.contains("127.0.0.3"),
        "{shown:?}"
    );
    let validated = run_in(dir, &swift, &["obj.builder", "validate"], b"", &[]);
    assert_eq!(validated.code, 0, "{validated:?}");
}

#[test]
fn bad_specs_and_impossible_changes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(ring(dir, &["obj.builder", "create", "6", "1", "0"]).code, 0);
    assert_eq!(
        ring(
            dir,
            &["obj.builder", "add", "r1z1-127.0.0.1:6200/sda", "100"]
        )
        .code,
        0
    );
    let cases = [
        ("bad.toml", "[[device]\nregion = 1"),
        ("unknown.toml", "[policy]\nmax_step = 0.5\n"),
        (
            "zone.toml",
            "[[device]]\nregion = 1\nzone = 9\nip = \"127.0.0.1\"\nport = 6200\ndevice = \"sda\"\nweight = 1.0\n",
        ),
        ("empty.toml", ""),
    ];
    for (name, text) in cases {
        std::fs::write(dir.join(name), text).unwrap();
        let before = std::fs::read(dir.join("obj.builder")).unwrap();
        let out = declare(dir, &["apply", name, "obj.builder", "--json"]);
        assert_eq!(out.code, 2, "{name}: {out:?}");
        assert_eq!(json_of(&out)["status"], "refused");
        assert_eq!(before, std::fs::read(dir.join("obj.builder")).unwrap());
    }
    let out = declare(dir, &["apply", "zone.toml", "obj.builder"]);
    assert!(
        out.stderr
            .contains("region and zone cannot change in place"),
        "{out:?}"
    );
    let out = declare(dir, &["plan", "empty.toml", "missing.builder"]);
    assert_eq!(out.code, 2);
    // A never-rebalanced builder that already has the spec's devices takes one step.
    std::fs::write(
        dir.join("same.toml"),
        "[[device]]\nregion = 1\nzone = 1\nip = \"127.0.0.1\"\nport = 6200\ndevice = \"sda\"\nweight = 100.0\n",
    )
    .unwrap();
    assert_eq!(declare(dir, &["apply", "same.toml", "obj.builder"]).code, 3);
    assert_eq!(declare(dir, &["apply", "same.toml", "obj.builder"]).code, 0);
}

//! A scripted rebalance as a CI job runs it, end to end through the binary: create a ring,
//! add a rack, dry-run, rebalance, gate on exit codes, add a rack, dry-run again, rebalance,
//! and diff the old ring against the new one — text and JSON.

mod common;

use common::{ring, ringsmith, run_in, snapshot};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn add_rack(dir: &std::path::Path, zone: u32, ip_last: u32) {
    let mut args = vec!["object.builder".to_string(), "add".to_string()];
    for dev in ["sda", "sdb"] {
        args.push(format!("r1z{zone}-10.0.{zone}.{ip_last}:6200/{dev}"));
        args.push("100".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ring(dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 2, "{out:?}");
}

#[test]
fn ci_style_rebalance_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let out = ring(dir, &["object.builder", "create", "8", "3", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        dir.join("backups").read_dir().unwrap().count() == 1,
        "create keeps a backup"
    );
    for zone in 1..=3 {
        add_rack(dir, zone, 1);
    }

    // Dry run: the plan, exit status of the real thing, and nothing written.
    let before = snapshot(dir);
    let out = ring(
        dir,
        &["object.builder", "rebalance", "--seed", "1", "--dry-run"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Dry run: nothing was written."),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("Would reassign 768 (300.00%) partitions."),
        "{out:?}"
    );
    assert!(out.stdout.contains("r1z1-10.0.1.1/sda"), "{out:?}");
    assert_eq!(snapshot(dir), before, "a dry run writes nothing");
    assert!(!dir.join("object.ring.gz").exists());

    let out = ring(
        dir,
        &["object.builder", "rebalance", "--seed", "1", "--json"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out.stdout);
    assert_eq!(doc["saved"], true);
    assert_eq!(doc["changed_parts"], 768);
    assert_eq!(doc["exit_code"], 0);
    assert!(dir.join("object.ring.gz").exists());
    let first_ring = tmp.path().join("first.ring.gz");
    std::fs::copy(dir.join("object.ring.gz"), &first_ring).unwrap();

    // The default view, as JSON: every device holds its share.
    let out = ring(dir, &["object.builder", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let view = json(&out.stdout);
    assert_eq!(view["ring_file_status"], "up-to-date");
    assert_eq!(view["device_count"], 6);
    let devices = view["devices"].as_array().unwrap();
    let total: u64 = devices
        .iter()
        .map(|d| d["partitions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 768);

    // Immediately again: min_part_hours holds everything back, exit 1, nothing written.
    let before = snapshot(dir);
    let out = ring(dir, &["object.builder", "rebalance", "--seed", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("No partitions could be reassigned."),
        "{out:?}"
    );
    assert_eq!(snapshot(dir), before);

    // A new rack; the plan shows data arriving on it only.
    add_rack(dir, 4, 1);
    let out = ring(dir, &["object.builder", "pretend_min_part_hours_passed"]);
    assert_eq!(out.code, 0, "{out:?}");
    let before = snapshot(dir);
    let out = ring(
        dir,
        &[
            "object.builder",
            "rebalance",
            "--seed",
            "2",
            "--dry-run",
            "--json",
        ],
    );
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let plan = json(&out.stdout);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["saved"], false);
    let arriving_new: u64 = plan["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["name"].as_str().unwrap().starts_with("r1z4-"))
        .map(|d| d["arriving"].as_u64().unwrap())
        .sum();
    assert!(arriving_new > 0, "{plan}");
    assert_eq!(snapshot(dir), before, "a dry run writes nothing");

    let out = ring(dir, &["object.builder", "rebalance", "--seed", "2"]);
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    assert!(out.stdout.contains("Reassigned "), "{out:?}");
    let backups: Vec<String> = dir
        .join("backups")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        backups.iter().any(|n| n.ends_with(".object.ring.gz")),
        "{backups:?}"
    );
    assert!(
        backups.iter().any(|n| n.ends_with(".object.builder")),
        "{backups:?}"
    );

    // What moved between the two rings: exit 1 (different), data arrived on zone 4 only.
    let first = first_ring.to_str().unwrap();
    let out = run_in(
        dir,
        &ringsmith(),
        &["ring-diff", first, "object.ring.gz"],
        b"",
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("partition-replicas"), "{out:?}");
    assert!(out.stdout.contains("r1z4"), "{out:?}");
    let out = run_in(
        dir,
        &ringsmith(),
        &["ring-diff", "--json", first, "object.ring.gz"],
        b"",
        &[],
    );
    assert_eq!(out.code, 1, "{out:?}");
    let diff = json(&out.stdout);
    let moved = diff["diff"]["moved_replicas"].as_u64().unwrap();
    let z4 = diff["diff"]["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == "r1z4")
        .cloned()
        .unwrap();
    assert_eq!(
        z4["arriving"].as_u64().unwrap(),
        z4["parts_after"].as_u64().unwrap()
    );
    assert!(moved >= z4["arriving"].as_u64().unwrap());
    // A builder against its own ring: identical, exit 0.
    let out = run_in(
        dir,
        &ringsmith(),
        &["ring-diff", "object.builder", "object.ring.gz"],
        b"",
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");

    // The ring file on its own, with no builder beside it.
    let lone = tmp.path().join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(dir.join("object.ring.gz"), lone.join("object.ring.gz")).unwrap();
    let out = ring(&lone, &["object.ring.gz"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("256 partitions, 3.000000 replicas, 1 regions, 4 zones, 8 devices"),
        "{out:?}"
    );
    let out = ring(&lone, &["object.ring.gz", "--json"]);
    assert_eq!(json(&out.stdout)["device_count"], 8);

    // Search and dispersion for scripts.
    let out = ring(dir, &["object.builder", "search", "z4", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out.stdout)["devices"].as_array().unwrap().len(), 2);
    let out = ring(dir, &["object.builder", "dispersion", "--json"]);
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    let disp = json(&out.stdout);
    assert!(
        disp["dispersion"].as_f64().is_some() && disp["tiers"].is_array(),
        "{disp}"
    );
    let out = ring(dir, &["object.builder", "validate", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json(&out.stdout)["valid"], true);
}

#[test]
fn completions_and_man_page_come_from_clap() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &ringsmith(), &["completions", "bash"], b"", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("ring-diff") && out.stdout.contains("completions"),
        "{out:?}"
    );
    let out = run_in(tmp.path(), &ringsmith(), &["completions", "zsh"], b"", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = run_in(tmp.path(), &ringsmith(), &["man"], b"", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH ringsmith"),
        "{out:?}"
    );
    let out = run_in(
        tmp.path(),
        &ringsmith(),
        &["man", "--dir", "pages"],
        b"",
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(tmp.path().join("pages/ringsmith-ring.1").exists());
    assert!(tmp.path().join("pages/ringsmith-ring-diff.1").exists());
}

#[test]
fn no_arguments_prints_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ring(tmp.path(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    for cmd in [
        "create",
        "rebalance",
        "set_overload",
        "write_builder",
        "Quick list:",
        "Exit codes:",
    ] {
        assert!(out.stdout.contains(cmd), "missing {cmd}: {out:?}");
    }
}

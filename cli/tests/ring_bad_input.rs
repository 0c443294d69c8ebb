//! Bad input through the binary: every case exits 2 with a message naming the problem, and
//! the builder, the ring and the backups are byte-for-byte what they were.

mod common;

use std::os::unix::io::AsRawFd;
use std::path::Path;

use common::{ring, ringsmith, run_in, snapshot, Out};

/// A rebalanced ring with three devices in three zones, built through the binary.
fn rebalanced_ring(dir: &Path) {
    for args in [
        vec!["object.builder", "create", "6", "3", "1"],
        vec![
            "object.builder",
            "add",
            "r1z1-10.0.0.1:6200/sda",
            "100",
            "r1z2-10.0.0.2:6200/sda",
            "100",
            "r1z3-10.0.0.3:6200/sda",
            "100",
            "r1z3-10.0.0.3:6200/sdb",
            "100",
        ],
        vec!["object.builder", "rebalance", "--seed", "1"],
    ] {
        let out = ring(dir, &args);
        assert!(out.code <= 1, "{args:?}: {out:?}");
    }
    assert!(dir.join("object.ring.gz").exists());
}

/// Runs a bad command and checks exit 2, the message, and that nothing changed on disk.
fn refused(dir: &Path, args: &[&str], stdin: &[u8], message: &str) -> Out {
    let before = snapshot(dir);
    let mut full = vec!["ring"];
    full.extend_from_slice(args);
    let out = run_in(
        dir,
        &ringsmith(),
        &full,
        stdin,
        &[("RINGSMITH_LOCK_TIMEOUT", "0.3")],
    );
    assert_eq!(out.code, 2, "`{}`: {out:?}", args.join(" "));
    assert!(
        out.stdout.contains(message) || out.stderr.contains(message),
        "`{}` should say {message:?}: {out:?}",
        args.join(" ")
    );
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    assert_eq!(snapshot(dir), before, "`{}` changed files", args.join(" "));
    out
}

#[test]
fn malformed_add_values() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rebalanced_ring(dir);
    let b = "object.builder";
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9/sda", "100"],
        b"",
        "Invalid port in add value",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9:x/sda", "100"],
        b"",
        "Invalid port :x in add value",
    );
    refused(
        dir,
        &[b, "add", "r1z1-example.com:6200/sda", "100"],
        b"",
        "Invalid ip example.com",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.300:6200/sda", "100"],
        b"",
        "Invalid ip 10.0.0.300",
    );
    refused(
        dir,
        &[b, "add", "r1-10.0.0.9:6200/sda", "100"],
        b"",
        "Invalid add value: r1-10.0.0.9:6200/sda",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9:6200/", "100"],
        b"",
        "Invalid device name",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9:6200/sdx", "heavy"],
        b"",
        "could not convert string to float: 'heavy'",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9:6200/sdx", "-5"],
        b"",
        "no such option: -5",
    );
    refused(dir, &[b, "add", "r1z1-10.0.0.9:6200/sdx"], b"", "add");
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.1:6200/sda", "100"],
        b"",
        "Device 0 already uses 10.0.0.1:6200/sda.",
    );
    // The second value is bad: the first must not be added either.
    refused(
        dir,
        &[
            b,
            "add",
            "r1z1-10.0.0.9:6200/sdx",
            "100",
            "r1z1-10.0.0.9:6200sdy",
            "100",
        ],
        b"",
        "Invalid port :6200sdy in add value",
    );
    refused(
        dir,
        &[b, "add", "--region", "1", "--zone", "1", "--ip", "10.0.0.9"],
        b"",
        "Required argument -p/--port not specified.",
    );
    refused(
        dir,
        &[b, "add", "--region", "x"],
        b"",
        "option --region: invalid integer value: 'x'",
    );
    refused(
        dir,
        &[
            b, "add", "--region", "1", "--zone", "1", "--ip", "-bad-", "--port", "1", "--device",
            "d", "--weight", "1",
        ],
        b"",
        "Invalid address -bad-",
    );
}

#[test]
fn unknown_commands_and_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rebalanced_ring(dir);
    let b = "object.builder";
    refused(dir, &[b, "frobnicate"], b"", "Unknown command: frobnicate");
    refused(
        dir,
        &[b, "search", "x5"],
        b"",
        "Invalid <search-value>: 'x5'",
    );
    refused(dir, &[b, "search", "r9"], b"", "No matching devices found");
    refused(
        dir,
        &[b, "remove", "r9"],
        b"",
        "Search value matched 0 devices.",
    );
    refused(
        dir,
        &[b, "set_info", "d0", "x"],
        b"",
        "Invalid set info change value: 'x'",
    );
    refused(
        dir,
        &[b, "set_info", "d1", "10.0.0.1:6200/sda"],
        b"",
        "Device 0 already uses 10.0.0.1:6200/sda.",
    );
    refused(
        dir,
        &[b, "set_weight", "z3", "5"],
        b"",
        "Aborting device modifications",
    );
    refused(
        dir,
        &[b, "set_weight", "z3", "5"],
        b"no\n",
        "Aborting device modifications",
    );
    refused(dir, &[b, "remove", "z3"], b"", "Aborting device removals");
    refused(
        dir,
        &[b, "set_weight", "d0", "heavy"],
        b"",
        "could not convert string to float: 'heavy'",
    );
    refused(
        dir,
        &[b, "set_zone", "d0", "north"],
        b"",
        "invalid literal for int() with base 10: 'north'",
    );
    refused(
        dir,
        &[b, "set_overload", "-1"],
        b"",
        "Overload must be non-negative.",
    );
    refused(
        dir,
        &[b, "set_overload", "lots"],
        b"",
        "'lots' is not a valid number.",
    );
    refused(
        dir,
        &[b, "set_replicas", "0.5"],
        b"",
        "Replica count must be at least 1.",
    );
    refused(
        dir,
        &[b, "set_min_part_hours", "soon"],
        b"",
        "invalid literal for int() with base 10: 'soon'",
    );
    refused(
        dir,
        &[b, "create", "8", "3", "1"],
        b"",
        "Cowardly refusing to overwrite existing Ring Builder file: object.builder",
    );
    refused(
        dir,
        &[b, "write_builder"],
        b"",
        "Cowardly refusing to overwrite existing Ring Builder file",
    );
    refused(
        dir,
        &[b, "rebalance", "--format-version", "3"],
        b"",
        "invalid choice: '3' (choose from '1', '2')",
    );
    refused(
        dir,
        &[b, "rebalance", "--bogus"],
        b"",
        "no such option: --bogus",
    );
    refused(
        dir,
        &[b, "dispersion", "r1z(", "-v"],
        b"",
        "Invalid dispersion filter",
    );
    refused(
        dir,
        &[b, "increase_partition_power"],
        b"",
        "Ring partition power cannot be increased.",
    );
}

#[test]
fn conflicting_selectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rebalanced_ring(dir);
    let b = "object.builder";
    // A search value and selector options at once: the command's usage, exit 2.
    refused(
        dir,
        &[b, "search", "d1", "--zone", "2"],
        b"",
        "search <search-value>",
    );
    refused(
        dir,
        &[b, "remove", "d1", "--ip", "10.0.0.2"],
        b"",
        "remove <search-value>",
    );
    refused(
        dir,
        &[b, "list_parts", "d1", "--id", "1"],
        b"",
        "list_parts <search-value>",
    );
    refused(
        dir,
        &[b, "set_weight", "d1", "--zone", "2", "5"],
        b"",
        "set_weight <search-value>",
    );
    refused(
        dir,
        &[b, "add", "r1z1-10.0.0.9:6200/sdx", "100", "--zone", "1"],
        b"",
        "add",
    );
    refused(
        dir,
        &[b, "rebalance", "--seed"],
        b"",
        "--seed option requires 1 argument",
    );
}

#[test]
fn missing_corrupt_and_locked_builders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rebalanced_ring(dir);
    refused(
        dir,
        &["nothere.builder"],
        b"",
        "Ring Builder file does not exist: nothere.builder",
    );
    refused(
        dir,
        &["nothere.builder", "add", "r1z1-10.0.0.9:6200/sdx", "1"],
        b"",
        "Ring Builder file does not exist",
    );

    std::fs::write(dir.join("garbage.builder"), b"this is not a pickle").unwrap();
    refused(
        dir,
        &["garbage.builder"],
        b"",
        "Ring Builder file is invalid",
    );
    refused(
        dir,
        &["garbage.builder", "rebalance"],
        b"",
        "garbage.builder",
    );
    let bytes = std::fs::read(dir.join("object.builder")).unwrap();
    std::fs::write(dir.join("cut.builder"), &bytes[..bytes.len() / 2]).unwrap();
    refused(
        dir,
        &["cut.builder", "set_weight", "d0", "5"],
        b"",
        "Ring Builder file is invalid",
    );
    std::fs::write(dir.join("empty.builder"), b"").unwrap();
    refused(dir, &["empty.builder"], b"", "Ring Builder file is invalid");

    std::fs::write(dir.join("bad.ring.gz"), b"\x1f\x8b\x08garbage").unwrap();
    refused(dir, &["bad.ring.gz", "version"], b"", "bad.ring.gz");
    refused(dir, &["bad.ring.gz"], b"", "bad.ring.gz");
    refused(
        dir,
        &["ring-diff-not-a-file.ring.gz", "version"],
        b"",
        "ring-diff-not-a-file.ring.gz",
    );

    // Another process holds the builder directory's lock.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(".lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    refused(
        dir,
        &["object.builder", "set_weight", "d0", "50"],
        b"",
        "Ring/builder dir currently locked.",
    );
    refused(
        dir,
        &["object.builder", "rebalance", "--force"],
        b"",
        "Ring/builder dir currently locked.",
    );
    drop(lock);
    let out = ring(dir, &["object.builder", "set_weight", "d0", "50"]);
    assert_eq!(out.code, 0, "after the lock is released: {out:?}");
}

#[test]
fn ring_diff_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rebalanced_ring(dir);
    std::fs::write(dir.join("junk.ring.gz"), b"junk").unwrap();
    for (args, message) in [
        (
            vec!["ring-diff", "object.ring.gz", "missing.ring.gz"],
            "missing.ring.gz",
        ),
        (
            vec!["ring-diff", "junk.ring.gz", "object.ring.gz"],
            "junk.ring.gz",
        ),
        (vec!["ring-diff", "object.ring.gz"], "NEW"),
    ] {
        let out = run_in(dir, &ringsmith(), &args, b"", &[]);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: {out:?}");
    }
    // Rings of unrelated partition powers cannot be compared.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let out = ring(&other, &["object.builder", "create", "4", "1", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    ring(
        &other,
        &["object.builder", "add", "r1z1-10.0.0.1:6200/sda", "1"],
    );
    let out = ring(&other, &["object.builder", "rebalance"]);
    assert!(out.code <= 1, "{out:?}");
    let out = run_in(
        dir,
        &ringsmith(),
        &["ring-diff", "object.ring.gz", "other/object.ring.gz"],
        b"",
        &[],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("cannot compare"), "{out:?}");
}

//! `ringsmith dispersion populate | report` against a Ringsmith cluster, side by side with
//! Swift 2.38.3's `swift-dispersion-populate` and `swift-dispersion-report` on the same
//! cluster and the same dispersion.conf: healthy, then with a node killed.

mod cluster_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cluster_support::{check_listeners, free_base, free_port, ringsmith, server_bin, text, Down};
use serde_json::Value;

fn swift_tool(name: &str) -> Command {
    let bin = ringsmith_testkit::swift_bin(name);
    assert!(
        bin.exists(),
        "{} missing: the Swift venv is required",
        bin.display()
    );
    let mut c = Command::new(bin);
    c.stdin(Stdio::null());
    c
}

fn ours(args: &[&str], conf: &Path) -> Output {
    ringsmith()
        .arg("dispersion")
        .args(args)
        .arg(conf)
        .output()
        .unwrap()
}

/// Swift's tool, told to read swift.conf from the cluster's etc (it reads
/// /etc/swift/swift.conf whatever swift_dir says) before its main() runs.
fn theirs(tool: &str, args: &[&str], conf: &Path) -> Output {
    let module = match tool {
        "swift-dispersion-report" => "swift.cli.dispersion_report",
        _ => "swift.cli.dispersion_populate",
    };
    let swift_conf = conf.parent().unwrap().join("c/etc/swift.conf");
    let script = format!(
        "import sys\nfrom swift.common import utils, storage_policy\n\
         utils.SWIFT_CONF_FILE = {swift_conf:?}\nstorage_policy.reload_storage_policies()\n\
         import importlib\nsys.argv = [{tool:?}] + sys.argv[1:]\n\
         sys.exit(importlib.import_module({module:?}).main())\n"
    );
    swift_tool("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .arg(conf)
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// The report's lines without the elapsed-time line and the terminal escapes.
fn figures(o: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .flat_map(|l| l.split("\r\x1B[K"))
        // Progress and elapsed time vary from run to run.
        .filter(|l| !l.starts_with("Queried ") && !l.starts_with("Querying ") && !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Both reports, JSON and text, must agree exactly (retries aside); returns the JSON.
fn compare_reports(conf: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["report", "-j"];
    args.extend_from_slice(extra);
    let started = std::time::Instant::now();
    let our_json = ours(&args, conf);
    let our_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let swift_json = theirs("swift-dispersion-report", &args[1..], conf);
    let swift_secs = started.elapsed().as_secs_f64();
    // Side by side, for BENCHMARKS.md; never asserted.
    println!(
        "report {extra:?}: ringsmith {our_secs:.3}s, swift {swift_secs:.3}s, ratio {:.1}x",
        swift_secs / our_secs
    );
    assert_eq!(
        our_json.status.code(),
        swift_json.status.code(),
        "ours: {}\nswift: {}",
        text(&our_json),
        text(&swift_json)
    );
    let (mut a, mut b) = (json_of(&our_json), json_of(&swift_json));
    for v in [&mut a, &mut b] {
        for kind in ["container", "object"] {
            if let Some(Value::Object(m)) = v.get_mut(kind) {
                m.remove("retries");
            }
        }
    }
    assert_eq!(
        a,
        b,
        "JSON differs\nours: {}\nswift: {}",
        text(&our_json),
        text(&swift_json)
    );

    let mut args = vec!["report"];
    args.extend_from_slice(extra);
    let our_text = ours(&args, conf);
    let swift_text = theirs("swift-dispersion-report", &args[1..], conf);
    assert_eq!(our_text.status.code(), swift_text.status.code());
    assert_eq!(
        figures(&our_text),
        figures(&swift_text),
        "ours: {}\nswift: {}",
        text(&our_text),
        text(&swift_text)
    );
    a
}

/// Container listings are updated asynchronously by the object servers: wait until every
/// sample is listed (`copies` expected: samples x 3 replicas) before comparing the tools.
fn settle(conf: &Path, extra: &[&str]) {
    settle_to(conf, extra, 192)
}

fn settle_to(conf: &Path, extra: &[&str], copies: u32) {
    let mut args = vec!["report", "-j"];
    args.extend_from_slice(extra);
    // The proxy lists from one replica at a time: several complete listings in a row mean
    // every replica has caught up (the updater sends what the object servers queued).
    let mut in_a_row = 0;
    for _ in 0..300 {
        let j = json_of(&ours(&args, conf));
        if j["object"]["copies_expected"] == copies && j["container"]["copies_expected"] == copies {
            in_a_row += 1;
            if in_a_row == 12 {
                return;
            }
        } else {
            in_a_row = 0;
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    panic!("the samples were never all listed");
}

/// `cluster up` (3 nodes, part power 6, policies gold and silver) in `tmp/c`, and a
/// dispersion.conf beside it with this coverage. The guard stops the cluster.
fn cluster_with_conf(tmp: &Path, coverage: u32) -> (Down, std::path::PathBuf, std::path::PathBuf) {
    let dir = tmp.join("c");
    let proxy_port = free_port("127.0.0.1");
    let base = free_base();
    let guard = Down(dir.clone());
    let up = ringsmith()
        .args([
            "cluster",
            "up",
            "--nodes",
            "3",
            "--part-power",
            "6",
            "--policies",
            "gold,silver",
            "--daemon-interval",
            "1",
        ])
        .arg("--dir")
        .arg(&dir)
        .args([
            "--proxy-port",
            &proxy_port.to_string(),
            "--base-port",
            &base.to_string(),
        ])
        .arg("--server-bin")
        .arg(server_bin())
        .output()
        .unwrap();
    assert!(up.status.success(), "cluster up failed:\n{}", text(&up));
    check_listeners(&dir);

    let conf = tmp.join("dispersion.conf");
    std::fs::write(
        &conf,
        format!(
            "[dispersion]\nauth_url = http://127.0.0.1:{proxy_port}/auth/v1.0\nauth_user = test:tester\n\
             auth_key = testing\nswift_dir = {}\ndispersion_coverage = {coverage}\nretries = 1\nconcurrency = 64\n",
            dir.join("etc").display(),
        ),
    )
    .unwrap();

    (guard, dir, conf)
}

#[test]
fn dispersion_matches_swift_healthy_and_with_a_node_down() {
    let tmp = tempfile::tempdir().unwrap();
    let (_guard, dir, conf) = cluster_with_conf(tmp.path(), 100);

    // No samples yet: both say so, same exit code, same null JSON.
    let empty = compare_reports(&conf, &[]);
    assert_eq!(
        empty,
        serde_json::json!({"container": null, "object": null})
    );

    let pop = ours(&["populate"], &conf);
    assert!(pop.status.success(), "{}", text(&pop));
    let out = text(&pop);
    assert!(out.contains("Using storage policy: gold "), "{out}");
    assert!(
        out.contains("Created 64 containers for dispersion reporting"),
        "{out}"
    );
    assert!(
        out.contains("Created 64 objects for dispersion reporting"),
        "{out}"
    );

    settle(&conf, &[]);
    let healthy = compare_reports(&conf, &[]);
    assert_eq!(healthy["container"]["copies_expected"], 192, "{healthy}");
    assert_eq!(healthy["container"]["copies_found"], 192, "{healthy}");
    assert_eq!(healthy["object"]["copies_found"], 192, "{healthy}");
    assert_eq!(healthy["object"]["pct_found"], 100.0, "{healthy}");
    assert_eq!(healthy["object"]["missing_0"], 64, "{healthy}");
    let txt = ours(&["report"], &conf);
    let lines = figures(&txt);
    assert!(
        lines.contains(&"100.00% of container copies found (192 of 192)".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Sample represents 100.00% of the object partition space".to_string()),
        "{lines:?}"
    );
    let only = compare_reports(&conf, &["--container-only"]);
    assert!(only.get("object").is_none(), "{only}");

    // Swift populates the second policy; our report reads what Swift wrote.
    let pop = theirs("swift-dispersion-populate", &["-P", "silver"], &conf);
    assert!(pop.status.success(), "{}", text(&pop));
    settle(&conf, &["-P", "silver"]);
    let silver = compare_reports(&conf, &["-P", "silver"]);
    assert_eq!(silver["object"]["copies_found"], 192, "{silver}");
    assert_eq!(silver["container"]["copies_found"], 192, "{silver}");

    // A node down: a third of the copies are missing, and both tools count the same.
    let k = ringsmith()
        .args(["cluster", "fault", "--node", "2", "kill", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(k.status.success(), "{}", text(&k));
    let down = compare_reports(&conf, &[]);
    assert_eq!(down["object"]["copies_found"], 128, "{down}");
    assert_eq!(down["object"]["missing_1"], 64, "{down}");
    assert_eq!(down["container"]["copies_found"], 128, "{down}");
    let txt = figures(&ours(&["report"], &conf));
    assert!(
        txt.contains(&"There were 64 partitions missing 1 copy.".to_string()),
        "{txt:?}"
    );
    assert!(
        txt.contains(&"66.67% of object copies found (128 of 192)".to_string()),
        "{txt:?}"
    );
    compare_reports(&conf, &["-P", "silver", "--object-only"]);
    // `-p`: the partitions missing copies, on stderr, the same from both.
    let partition_lines = |o: &Output| {
        let mut l: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("# "))
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let a = partition_lines(&ours(&["report", "-p", "--object-only"], &conf));
    let b = partition_lines(&theirs(
        "swift-dispersion-report",
        &["-p", "--object-only"],
        &conf,
    ));
    assert_eq!(a.len(), 64, "{a:?}");
    assert!(
        a.contains(&"# Object partition 0 missing 1 copy".to_string()),
        "{a:?}"
    );
    assert_eq!(a, b);

    // Bad input: an unknown policy and a missing file fail like Swift's.
    for args in [vec!["report", "-P", "nope"], vec!["populate", "-P", "nope"]] {
        let o = ours(&args, &conf);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("Unable to find policy: nope"),
            "{}",
            text(&o)
        );
    }
    let o = ours(&["report"], &tmp.path().join("absent.conf"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("Unable to read config file"),
        "{}",
        text(&o)
    );
}

#[test]
fn no_overlap_populate_adds_coverage_and_reads_swifts_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let (_guard, _dir, conf) = cluster_with_conf(tmp.path(), 25);
    // Ours, then Swift's, then ours again, each with --no-overlap: every run samples 16 of
    // the 64 partitions that no earlier run (of either tool) sampled.
    let runs = [("ours", 25), ("swift", 50), ("ours", 75)];
    for (tool, pct) in runs {
        let out = match tool {
            "ours" => ours(&["populate", "--no-overlap"], &conf),
            _ => theirs("swift-dispersion-populate", &["--no-overlap"], &conf),
        };
        assert!(out.status.success(), "{tool}: {}", text(&out));
        let out = text(&out);
        for kind in ["containers", "objects"] {
            assert!(
                out.contains(&format!("Created 16 {kind} for dispersion reporting")),
                "{tool}: {out}"
            );
        }
        for kind in ["container", "object"] {
            assert!(
                out.contains(&format!("Total {kind} coverage is now {pct}.00%.")),
                "{tool}: {out}"
            );
        }
    }
    settle_to(&conf, &[], 144);
    let report = compare_reports(&conf, &[]);
    assert_eq!(report["object"]["copies_expected"], 144, "{report}");
    assert_eq!(report["object"]["copies_found"], 144, "{report}");
    assert_eq!(report["container"]["copies_found"], 144, "{report}");
}

//! The systemd units in packaging/systemd: one per server and daemon, a templated one
//! (`@.service`, instance N = `/etc/swift/<kind>-server/N.conf`) for each that runs from
//! per-process configs, every ExecStart naming a kind the real `ringsmith-server`
//! accepts, and `systemd-analyze verify` clean on all of them.

use std::path::{Path, PathBuf};
use std::process::Command;

const SERVERS_AND_DAEMONS: &[&str] = ringsmith_server::kinds::SERVERS_AND_DAEMONS;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd")
}

fn unit_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(units_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn key<'a>(unit: &'a str, name: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .collect()
}

#[test]
fn every_server_and_daemon_has_a_unit_and_a_template() {
    let mut expected = vec!["ringsmith.target".to_string()];
    for s in SERVERS_AND_DAEMONS {
        expected.push(format!("ringsmith-{s}.service"));
        if !s.starts_with("proxy") {
            expected.push(format!("ringsmith-{s}@.service"));
        }
    }
    expected.sort();
    assert_eq!(unit_files(), expected);
}

#[test]
fn every_exec_start_runs_a_kind_ringsmith_server_accepts() {
    let bin = env!("CARGO_BIN_EXE_ringsmith-server");
    for name in unit_files().iter().filter(|n| n.ends_with(".service")) {
        let text = std::fs::read_to_string(units_dir().join(name)).unwrap();
        let exec = key(&text, "ExecStart");
        assert_eq!(exec.len(), 1, "{name}");
        let words: Vec<&str> = exec[0].split_whitespace().collect();
        assert_eq!(words[0], "/usr/bin/ringsmith-server", "{name}");
        let server = name
            .trim_start_matches("ringsmith-")
            .trim_end_matches(".service")
            .trim_end_matches('@');
        assert_eq!(words[1], server, "{name}");
        let kind = server.split('-').next().unwrap();
        let conf = words[2];
        if name.contains('@') {
            assert_eq!(conf, format!("/etc/swift/{kind}-server/%i.conf"), "{name}");
        } else if kind != "proxy" {
            assert_eq!(conf, format!("/etc/swift/{kind}-server.conf"), "{name}");
        }
        assert_eq!(key(&text, "Type"), ["notify"], "{name}");
        // Seamless reload for the HTTP servers only (daemons restart).
        let reload = key(&text, "ExecReload");
        if server.ends_with("-server") {
            assert_eq!(reload, ["/bin/kill -USR1 $MAINPID"], "{name}");
        } else {
            assert!(reload.is_empty(), "{name}");
        }
        // The real binary knows the kind: it gets as far as reading the config.
        let missing = "/nonexistent/ringsmith-unit-test.conf";
        let out = Command::new(bin)
            .args([words[1], missing])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(!err.contains("unknown server"), "{name}: {err}");
        assert!(err.contains(missing), "{name}: {err}");
    }
    // And the check above can tell: a name it does not know.
    let out = Command::new(bin)
        .args(["object-sharder", "/nonexistent.conf"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown server or daemon"));
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze is needed (Debian package: systemd)"
    );
    // verify insists that ExecStart exists: point the copies at the built binary.
    let tmp = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for name in unit_files() {
        let text = std::fs::read_to_string(units_dir().join(&name))
            .unwrap()
            .replace(
                "/usr/bin/ringsmith-server",
                env!("CARGO_BIN_EXE_ringsmith-server"),
            );
        std::fs::write(tmp.path().join(&name), &text).unwrap();
        // A template is verified through an instance of it.
        let verified = name.replace("@.service", "@1.service");
        if verified != name {
            std::fs::write(tmp.path().join(&verified), &text).unwrap();
        }
        args.push(tmp.path().join(verified));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // Warnings (unknown keys and the like) leave the exit code at 0: none allowed.
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// The hand-written man page (packaging/man) names every kind the units run.
#[test]
fn the_man_page_names_every_server_and_daemon() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/man/ringsmith-server.1"),
    )
    .unwrap();
    for s in SERVERS_AND_DAEMONS {
        assert!(
            page.contains(&format!("\\fB{s}\\fR")),
            "{s} missing from ringsmith-server.1"
        );
    }
}

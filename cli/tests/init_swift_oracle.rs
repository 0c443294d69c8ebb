//! `ringsmith init ... status` against the real swift-init (Swift 2.38.3) on one config
//! tree and one run dir: the same configs found (`.conf`, `.conf.d/`, per-process
//! `N.conf`, the expirer's section rule), the same pid files read, the same lines and
//! exit codes, for groups, `SERVER.N` and `-c N`.
//!
//! The "running servers" are stand-in processes that both tools accept as theirs: argv[0]
//! ends with `ringsmith-server` (our check) and the command line names every
//! `swift-<server>` (swift-init's check). swift-init's `/etc/swift` is a module constant;
//! the test points it at the temp tree.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod cluster_support;
use cluster_support::{ringsmith, server_bin};

/// Servers both tools know (swift-init's lines about the others are left out).
const OURS: &[&str] = ringsmith_server::kinds::SERVERS_AND_DAEMONS;

struct Fakes(Vec<Child>);
impl Drop for Fakes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn fake_server(venv: &Path, dir: &Path) -> Child {
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg0(dir.join("ringsmith-server"))
        .args(["-c", "import time; time.sleep(600)"])
        .args(OURS.iter().map(|s| format!("swift-{s}")))
        .stdin(Stdio::null());
    cmd.spawn().unwrap()
}

fn lay_out(root: &Path) -> (PathBuf, PathBuf) {
    let etc = root.join("etc/swift");
    let run = root.join("run");
    for d in [
        "object-server",
        "container-server.conf.d",
        "account-server/2.conf.d",
    ] {
        std::fs::create_dir_all(etc.join(d)).unwrap();
    }
    let files = [
        ("proxy-server.conf", "[DEFAULT]\n"),
        ("object-server/1.conf", "[DEFAULT]\n[object-replicator]\n"),
        ("object-server/2.conf", "[DEFAULT]\n[object-expirer]\n"),
        ("object-server/readme.txt", "not a config\n"),
        ("container-server.conf.d/10-base.conf", "[DEFAULT]\n"),
        ("account-server/1.conf", "[DEFAULT]\n"),
        ("account-server/2.conf.d/a.conf", "[DEFAULT]\n"),
    ];
    for (f, text) in files {
        std::fs::write(etc.join(f), text).unwrap();
    }
    (etc, run)
}

fn write_pid(run: &Path, rel: &str, pid: u32) {
    let p = run.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, format!("{pid}\n")).unwrap();
}

/// (exit code, sorted lines about servers we implement)
fn swift_init(venv: &Path, etc: &Path, run: &Path, args: &[&str]) -> (i32, Vec<String>) {
    let script = "import sys\nimport swift.common.manager as m\nm.SWIFT_DIR = sys.argv[1]\nsys.argv = ['swift-init'] + sys.argv[2:]\nsys.exit(m.main())\n";
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(etc)
        .args(args)
        .arg("--run-dir")
        .arg(run)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        o.stderr.is_empty(),
        "swift-init {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap(), lines(&o.stdout))
}

fn ours(etc: &Path, run: &Path, args: &[&str]) -> (i32, Vec<String>) {
    let o = ringsmith()
        .arg("init")
        .args(args)
        .arg("--swift-dir")
        .arg(etc)
        .arg("--run-dir")
        .arg(run)
        .arg("--server-bin")
        .arg(server_bin())
        .output()
        .unwrap();
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap(), lines(&o.stdout))
}

fn lines(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .filter(|l| {
            // Lines name their server first ("No X running" second).
            let name = l.strip_prefix("No ").unwrap_or(l);
            OURS.iter().any(|s| name.starts_with(&format!("{s} ")))
        })
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn status_matches_swift_init_on_the_same_tree() {
    let venv = ringsmith_testkit::swift_venv();
    let tmp = tempfile::tempdir().unwrap();
    let (etc, run) = lay_out(tmp.path());
    let mut fakes = Fakes(Vec::new());
    for _ in 0..6 {
        fakes.0.push(fake_server(&venv, tmp.path()));
    }
    let pids: Vec<u32> = fakes.0.iter().map(|c| c.id()).collect();
    write_pid(&run, "object-server/1.pid", pids[0]);
    write_pid(&run, "object-server/2.pid", pids[1]);
    write_pid(&run, "object-replicator/2.pid", pids[2]);
    write_pid(&run, "proxy-server.pid", pids[3]);
    write_pid(&run, "container-server.pid.d", pids[4]);
    write_pid(&run, "object-expirer/2.pid", pids[5]);
    write_pid(&run, "account-auditor/2.pid.d", pids[5]);

    let cases: &[&[&str]] = &[
        &["all", "status"],
        &["main", "status"],
        &["rest", "status"],
        &["object", "status"],
        &["object.2", "status"],
        &["object-replicator", "status", "-c", "2"],
        &["object-replicator", "status", "-c", "1"],
        &["object-server", "status", "-c", "3"],
        &["object-*", "status"],
        &["object-expirer", "status"],
        &["container", "proxy", "status"],
        &["status", "account-auditor"],
        &["account-server", "status"],
    ];
    for args in cases {
        let theirs = swift_init(&venv, &etc, &run, args);
        let mine = ours(&etc, &run, args);
        assert_eq!(mine, theirs, "ringsmith init {args:?} vs swift-init");
    }
    // Enough running and not running to make the comparison mean something.
    let (code, all) = ours(&etc, &run, &["all", "status"]);
    assert_eq!(code, 1);
    assert!(
        all.iter().filter(|l| l.contains(" running (")).count() >= 7,
        "{all:#?}"
    );
    assert!(all.iter().any(|l| l.starts_with("No ")), "{all:#?}");
}

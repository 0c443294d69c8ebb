//! `ringsmith dash` as an operator meets it: a real `ringsmith cluster up`, the dashboard in
//! a tmux pane, keys typed with `send-keys`, the screen read with `capture-pane`. Kills one
//! storage server and waits (bounded) for the dashboard to show it down.

mod cluster_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::{check_listeners, free_base, free_port, ringsmith};

/// A private tmux server (its own socket), killed with everything in it on drop; the
/// cluster is stopped on drop too, whatever the test did.
struct Session {
    socket: PathBuf,
    cluster: PathBuf,
}

impl Session {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "dash"])
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }
    /// Polls the screen until `pred` holds; panics with the last screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if start.elapsed() > limit {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
        let _ = ringsmith()
            .args(["cluster", "down", "--dir"])
            .arg(&self.cluster)
            .output();
    }
}

fn object_server_pid(cluster: &Path, addr: &str) -> i32 {
    let text = std::fs::read_to_string(cluster.join("run/cluster.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["procs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == addr)
        .and_then(|p| p["pid"].as_i64())
        .unwrap_or_else(|| panic!("{addr} not in cluster.json: {text}")) as i32
}

#[test]
fn dash_shows_a_live_cluster_and_a_killed_server_as_down() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = tmp.path().join("c");
    let base = free_base();
    let session = Session {
        socket: tmp.path().join("tmux.sock"),
        cluster: cluster.clone(),
    };
    let up = ringsmith()
        .args([
            "cluster",
            "up",
            "--nodes",
            "3",
            "--part-power",
            "6",
            "--wait",
            "60",
        ])
        .args(["--proxy-port", &free_port("127.0.0.1").to_string()])
        .args(["--base-port", &base.to_string(), "--dir"])
        .arg(&cluster)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "cluster up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    check_listeners(&cluster);

    let command = format!(
        "{} dash --swift-dir {} --interval 0.5 --timeout 1; echo DASH-EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_ringsmith"),
        cluster.join("etc").display()
    );
    session.tmux(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "120",
        "-y",
        "32",
        &command,
    ]);

    let object2 = format!("127.0.0.2:{base}");
    let screen = session.wait_for("all hosts up", Duration::from_secs(30), |s| {
        s.contains("LIVE") && s.contains("hosts 9 up / 0 down")
    });
    for n in 2..=4 {
        assert!(screen.contains(&format!("127.0.0.{n}:{base}")), "{screen}");
    }
    assert!(screen.contains("ring md5 agree"), "{screen}");

    // Views switch with digits; the devices tree shows the rings' devices.
    session.keys(&["2"]);
    session.wait_for("the devices view", Duration::from_secs(10), |s| {
        s.contains("Devices of account") && s.contains("region 1") && s.contains("zone 1")
    });
    session.keys(&["?"]);
    session.wait_for("help", Duration::from_secs(10), |s| s.contains(" Help "));
    // Esc alone (a following key would read as Alt-<key>), then back to the overview.
    session.keys(&["Escape"]);
    session.wait_for("help closed", Duration::from_secs(10), |s| {
        !s.contains(" Help ")
    });
    session.keys(&["1"]);
    session.wait_for("the overview", Duration::from_secs(10), |s| {
        s.contains("Hosts (worst first")
    });

    // Kill one object server: the dashboard shows it down, worst first, with the reason.
    let pid = object_server_pid(&cluster, &object2);
    // SAFETY: a plain kill(2) of a pid this test's cluster started and recorded.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let screen = session.wait_for(
        "the killed server shown down",
        Duration::from_secs(30),
        |s| s.contains("hosts 8 up / 1 down"),
    );
    let down_line = screen
        .lines()
        .find(|l| l.contains(&object2))
        .unwrap_or_else(|| panic!("{object2} missing:\n{screen}"));
    assert!(down_line.contains("DOWN"), "{down_line}");
    let first_host_row = screen
        .lines()
        .find(|l| l.contains(":") && l.contains("127.0.0."))
        .unwrap();
    assert!(first_host_row.contains(&object2), "worst first:\n{screen}");

    session.keys(&["q"]);
    session.wait_for("dash to quit cleanly on q", Duration::from_secs(10), |s| {
        s.contains("DASH-EXITED 0")
    });
}

/// `dash --offline` on ring and builder files alone: it shows them, and never connects to
/// a device's host even when that host is listening.
#[test]
fn dash_offline_reads_files_and_makes_no_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let builder = etc.join("object.builder");
    for args in [
        vec!["create", "6", "1", "1"],
        vec!["add", &format!("r1z1-127.0.0.1:{port}/d1"), "100"],
        vec!["rebalance"],
    ] {
        let out = ringsmith()
            .arg("ring")
            .arg(&builder)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.code().unwrap_or(9) <= 1,
            "ring {args:?}: {out:?}"
        );
    }
    let session = Session {
        socket: tmp.path().join("tmux.sock"),
        cluster: tmp.path().join("no-cluster"),
    };
    let command = format!(
        "{} dash --offline --swift-dir {} --interval 0.2; echo DASH-EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_ringsmith"),
        etc.display()
    );
    session.tmux(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "120",
        "-y",
        "32",
        &command,
    ]);
    let screen = session.wait_for("the offline host", Duration::from_secs(30), |s| {
        s.contains(&format!("127.0.0.1:{port}")) && s.contains("hosts 0 up / 1 down")
    });
    assert!(!screen.contains("LIVE"), "{screen}");
    // Several polling intervals later, still not one connection.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "dash --offline connected to a host"
    );
    session.keys(&["q"]);
    session.wait_for("dash to quit on q", Duration::from_secs(10), |s| {
        s.contains("DASH-EXITED 0")
    });
}

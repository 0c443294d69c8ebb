//! Test support shared by the interop tests of every crate: the Swift 2.38.3 virtualenv
//! and a uniform way to ask its Python. A dev-dependency only; nothing here ships.

use std::path::PathBuf;

mod listener;

pub use listener::{check_listener, wait_listening};

/// The virtualenv holding the real Swift 2.38.3 (see `scripts/swift-venv.sh`).
///
/// Interop tests never skip: when the virtualenv is missing this panics with the command
/// that creates it.
pub fn swift_venv() -> PathBuf {
    let venv = match std::env::var_os("RINGSMITH_SWIFT_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("ringsmith/swift-venv")
        }
    };
    assert!(
        venv.join("bin/python").exists() && venv.join("bin/swift-ring-builder").exists(),
        "the Swift 2.38.3 virtualenv is missing at {}; run scripts/swift-venv.sh (scripts/test.sh does)",
        venv.display()
    );
    venv
}

/// `<venv>/bin/<name>`.
pub fn swift_bin(name: &str) -> PathBuf {
    swift_venv().join("bin").join(name)
}

/// Runs the virtualenv's Python with `args` (`["-c", script, ...]` or a script path and its
/// arguments), `stdin` fed to it and `RINGSMITH_SWIFT_VENV` set; returns its stdout.
///
/// Every interop test that asks Swift something goes through here, so a failing Python
/// always fails the test the same way: with its stderr and stdout in the message.
pub fn swift_python<A: AsRef<std::ffi::OsStr>>(args: &[A], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let venv = swift_venv();
    let mut child = Command::new(venv.join("bin/python"))
        .args(args)
        .env("RINGSMITH_SWIFT_VENV", &venv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Swift virtualenv's python");
    // Written from a thread so a large input cannot deadlock against a full stdout pipe.
    let mut child_stdin = child.stdin.take().expect("piped stdin");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || child_stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for python");
    // A script that exits without reading its stdin closes the pipe; that is not an error.
    let _ = writer.join();
    assert!(
        out.status.success(),
        "python failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

/// [`swift_python`] for scripts that print one JSON document.
pub fn swift_python_json<A: AsRef<std::ffi::OsStr>>(args: &[A], stdin: &[u8]) -> serde_json::Value {
    let stdout = swift_python(args, stdin);
    serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&stdout)
        )
    })
}

/// Runs `cmd` to completion with its stdout and stderr captured, or kills it once `limit`
/// has passed: `Err` then carries what it printed until then. A daemon run that hangs
/// fails its test with its output instead of holding CI until the job's own limit.
pub fn output_within(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> Result<std::process::Output, std::process::Output> {
    use std::io::Read;
    use std::process::Stdio;

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    // Drained from threads so a chatty child cannot block on a full pipe; collected with a
    // bound, since a grandchild may still hold a pipe open after the child is gone.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break (status, false);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().expect("reap the killed child"), true);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = std::process::Output {
        status,
        stdout: stdout
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_default(),
        stderr: stderr
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_default(),
    };
    if timed_out {
        Err(out)
    } else {
        Ok(out)
    }
}

/// The user this test runs as, for the `user` option of a Swift daemon's config (Swift's
/// daemons drop privileges to it at start, and its default, `swift`, need not exist).
pub fn current_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("run id -un");
    assert!(out.status.success(), "id -un failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a daemon of `bin` (`ringsmith-server`, from the calling test's
/// `env!("CARGO_BIN_EXE_ringsmith-server")`) one pass: `bin DAEMON -c CONF --once`.
/// Panics with its output when it fails; gives its stdout and stderr, in that order.
pub fn run_daemon_once(bin: &str, daemon: &str, conf: &std::path::Path) -> String {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg(daemon).arg("-c").arg(conf).arg("--once");
    let out = output_within(&mut cmd, std::time::Duration::from_secs(300)).unwrap_or_else(|out| {
        panic!(
            "{daemon} -c {} --once still running after 300 s; killed. Output:\n{}{}",
            conf.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{daemon} -c {} --once failed ({}):\n{text}",
        conf.display(),
        out.status
    );
    text
}

/// The last `lines` lines of every `*.log` file directly in `dir`, by name, each under a
/// header naming it: what a failed cluster test prints, since its logs live in a temporary
/// directory that goes with it.
pub fn log_tails(dir: &std::path::Path, lines: usize) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!("(no logs: cannot read {})\n", dir.display());
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        out.push_str(&format!(
            "==== {} (last {} lines)\n",
            path.display(),
            tail.len()
        ));
        for line in tail {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A TCP port on `ip` that nothing holds now and that no earlier call in this process
/// has handed out.
///
/// The kernel picks it (bind to port 0, then release), so another process could still
/// take it before the test's server binds; but two servers of one test can never be
/// given the same port. The kernel does not promise that: two binds to port 0 in a row
/// can return the same port once the first is released, and a cluster test whose
/// account server was given its object server's port met an object server that answered
/// its account PUT with 400.
pub fn free_port(ip: &str) -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("bind {ip}:0 for a free port: {e}"))
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no port on {ip} that this process has not already handed out in 1,000 tries");
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    #[test]
    fn output_within_returns_what_a_finished_child_printed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = super::output_within(&mut cmd, Duration::from_secs(30)).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn output_within_kills_a_child_past_its_limit() {
        let started = Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo before; exec sleep 30"]);
        let hung = super::output_within(&mut cmd, Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!hung.status.success());
        assert_eq!(hung.stdout, b"before\n");
    }

    #[test]
    fn log_tails_gives_the_end_of_each_log_by_name() {
        let dir = std::env::temp_dir().join(format!("testkit-log-tails-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("b-object.log"), long).unwrap();
        std::fs::write(dir.join("a-proxy.log"), "only\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a log\n").unwrap();
        let text = super::log_tails(&dir, 3);
        std::fs::remove_dir_all(&dir).unwrap();
        let a = format!(
            "==== {} (last 1 lines)\nonly\n",
            dir.join("a-proxy.log").display()
        );
        let b = format!(
            "==== {} (last 3 lines)\nline 48\nline 49\nline 50\n",
            dir.join("b-object.log").display()
        );
        assert_eq!(text, a + &b);
    }

    #[test]
    fn free_port_never_hands_out_a_port_twice() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..300 {
            let port = super::free_port("127.0.0.1");
            assert!(seen.insert(port), "port {port} handed out twice (call {i})");
        }
    }
}

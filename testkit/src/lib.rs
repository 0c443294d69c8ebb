//! Test support shared by the interop tests of every crate: the Swift 2.38.3 virtualenv
//! and a uniform way to ask its Python. A dev-dependency only; nothing here ships.

use std::path::PathBuf;

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
    let out = std::process::Command::new(bin)
        .arg(daemon)
        .arg("-c")
        .arg(conf)
        .arg("--once")
        .output()
        .unwrap_or_else(|e| panic!("run {bin} {daemon}: {e}"));
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

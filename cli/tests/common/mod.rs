//! Shared by the ring command's integration tests: run a program in a directory with a
//! bounded wait, and the paths of ours and Swift's.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn ringsmith() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringsmith"))
}

/// Runs `prog args…` in `dir` with `stdin` (closed when empty), waiting at most 120 s
/// (the child is killed past that and the test fails).
pub fn run_in(dir: &Path, prog: &Path, args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C.UTF-8");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", prog.display()));
    {
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin);
    }
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out_thread =
        std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err_thread =
        std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} {:?} did not finish within 120 s", prog.display(), args);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// `ringsmith ring args…` in `dir`.
pub fn ring(dir: &Path, args: &[&str]) -> Out {
    let mut full = vec!["ring"];
    full.extend_from_slice(args);
    run_in(dir, &ringsmith(), &full, b"", &[])
}

/// Every file under `dir` (relative path → bytes), to prove a failed command changed nothing.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

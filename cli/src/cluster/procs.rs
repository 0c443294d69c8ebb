//! The processes of a cluster: how each is started (its log, process group, namespace and
//! clock), the record `run/cluster.json` keeps of them, and how they are found again and
//! stopped without ever signalling a recycled pid.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{clock, memcached, netns, Netns};

/// One process of the cluster, as recorded in `run/cluster.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(super) struct Proc {
    pub(super) kind: String,
    pub(super) pid: u32,
    pub(super) addr: String,
    pub(super) conf: PathBuf,
    pub(super) log: PathBuf,
    /// The storage node it belongs to (none for the proxy).
    #[serde(default)]
    pub(super) node: Option<u32>,
    /// Seconds its wall clock runs ahead of (or, negative, behind) the host's: a clock
    /// fault (`cluster fault skew`), kept across `fault restart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) clock_offset: Option<i64>,
}

/// What to start: a [`Proc`] before it has a pid.
pub(super) struct Launch<'a> {
    pub(super) kind: &'a str,
    pub(super) conf: &'a Path,
    pub(super) addr: &'a str,
    pub(super) node: Option<u32>,
    pub(super) clock_offset: Option<i64>,
}

impl<'a> Launch<'a> {
    /// The same process again, as recorded.
    pub(super) fn again(p: &'a Proc) -> Launch<'a> {
        Launch {
            kind: &p.kind,
            conf: &p.conf,
            addr: &p.addr,
            node: p.node,
            clock_offset: p.clock_offset,
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct ClusterFile {
    pub(super) procs: Vec<Proc>,
    pub(super) auth_url: String,
    /// The binary the processes run, for `fault restart`.
    #[serde(default)]
    pub(super) server_bin: Option<PathBuf>,
    #[serde(default)]
    pub(super) netns: Option<Netns>,
}

pub(super) fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("run/cluster.json")
}

pub(super) fn read_cluster(dir: &Path) -> Result<Option<ClusterFile>, String> {
    let path = cluster_file(dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: not a cluster record: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

pub(super) fn write_cluster(dir: &Path, c: &ClusterFile) -> Result<(), String> {
    let path = cluster_file(dir);
    let text = serde_json::to_vec_pretty(c).expect("serializable");
    ringsmith::atomic::write_bytes_atomic(&path, 0o644, &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether `pid` is alive and is the process we started (same binary and config).
pub(super) fn is_ours(p: &Proc) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", p.pid)) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if p.kind == memcached::KIND {
        return memcached::is_ours(p, &args) && !is_zombie(p.pid);
    }
    let conf = p.conf.to_string_lossy();
    args.iter().any(|a| a.ends_with("ringsmith-server"))
        && args.iter().any(|a| *a == conf)
        && args.contains(&p.kind)
        && !is_zombie(p.pid)
}

/// Whether a process this `ringsmith` just spawned has already exited. Not [`is_ours`]:
/// for a moment after `spawn` returns, the child's `/proc/<pid>/cmdline` reads empty (the
/// parent is released as soon as exec installs the new memory map, before the kernel
/// sets the new arguments), and a healthy proxy was once declared dead for it. Our own
/// children are never reaped here, so an exited one stays a zombie.
pub(super) fn has_exited(p: &Proc) -> bool {
    is_zombie(p.pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true)
}

pub(super) fn answers(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// Starts `ringsmith-server <kind> -c <conf>` with its output in `DIR/log/`, in its
/// node's namespace if any, and with its clock off by `clock_offset` if set.
pub(super) fn spawn_proc(
    server_bin: &Path,
    dir: &Path,
    what: Launch,
    netns: Option<&str>,
) -> Result<Proc, String> {
    let stem = what
        .conf
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != "etc")
        .map(|n| format!("{n}-"))
        .unwrap_or_default();
    let log = dir.join(format!("log/{stem}{}.log", what.kind));
    // Appended to: a restarted process keeps the story of the one before it.
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(server_bin);
    cmd.arg(what.kind)
        .arg("-c")
        .arg(what.conf)
        .stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(|e| e.to_string())?)
        .stderr(logf);
    // Its own process group: a Ctrl-C in the terminal that ran `up` must not stop
    // the cluster.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    if let Some(offset) = what.clock_offset {
        clock::skew(&mut cmd, offset)?;
    }
    if let Some(ns) = netns {
        netns::enter(&mut cmd, ns)?;
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server_bin.display()))?;
    Ok(Proc {
        kind: what.kind.to_string(),
        pid: child.id(),
        addr: what.addr.to_string(),
        conf: what.conf.to_path_buf(),
        log,
        node: what.node,
        clock_offset: what.clock_offset,
    })
}

pub(super) fn log_tail(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

pub(super) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we verified is ours; no memory is shared.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// SIGTERM to every live process of ours, SIGKILL to those still there after 10 s.
/// Returns how many were stopped.
pub(super) fn stop_all(c: &ClusterFile) -> usize {
    let live: Vec<&Proc> = c.procs.iter().filter(|p| is_ours(p)).collect();
    for p in &live {
        signal(p.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && live.iter().any(|p| is_ours(p)) {
        reap();
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in live.iter().filter(|p| is_ours(p)) {
        signal(p.pid, libc::SIGKILL);
    }
    reap();
    live.len()
}

/// Collects exit statuses of our own children (only relevant when `up` itself stops
/// the cluster after a failed start).
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child; only reaps what is already dead.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// Undoes a failed `up`: its processes, namespaces and record. Says what it did.
pub(super) fn abandon(dir: &Path, record: &ClusterFile) -> String {
    stop_all(record);
    let leftovers = record
        .netns
        .as_ref()
        .map(Netns::teardown)
        .unwrap_or_default();
    let _ = std::fs::remove_file(cluster_file(dir));
    format!("stopped{}", leftover_note(&leftovers))
}

pub(super) fn leftover_note(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" (network cleanup failed: {})", errors.join("; "))
    }
}

pub(super) fn status(dir: &Path) -> Result<ExitCode, String> {
    let Some(c) = read_cluster(dir)? else {
        println!(
            "No cluster in {} (no {}).",
            dir.display(),
            cluster_file(dir).display()
        );
        return Ok(ExitCode::from(3));
    };
    println!("Auth URL: {}", c.auth_url);
    // A namespace address is only probed while its bridge exists: without it the
    // connection would follow the default route off this machine.
    let reachable = c.netns.as_ref().is_none_or(Netns::bridge_exists);
    println!("{:<10} {:>8}  {:<22} STATE", "KIND", "PID", "ADDRESS");
    let mut all_up = true;
    for p in &c.procs {
        // Daemons have no address: running is all they can be.
        let state = match (
            is_ours(p),
            p.addr.is_empty() || (reachable && answers(&p.addr)),
        ) {
            (true, true) => "up",
            (true, false) => "running, not answering",
            (false, _) => "stopped",
        };
        all_up &= state == "up";
        let clock = p
            .clock_offset
            .map(|s| format!(" (clock {s:+} s)"))
            .unwrap_or_default();
        println!("{:<10} {:>8}  {:<22} {state}{clock}", p.kind, p.pid, p.addr);
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) fn down(dir: &Path) -> Result<ExitCode, String> {
    let Some(c) = read_cluster(dir)? else {
        println!("No cluster in {} (nothing to stop).", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let n = stop_all(&c);
    let left: Vec<&Proc> = c.procs.iter().filter(|p| is_ours(p)).collect();
    // The network goes even when a process will not: namespaces and a bridge left behind
    // by every failed `down` add up. The record stays, so `down` can be run again for
    // the processes.
    let net_errors = c.netns.as_ref().map(Netns::teardown).unwrap_or_default();
    if !left.is_empty() {
        return Err(format!(
            "could not stop pids {:?}{}",
            left.iter().map(|p| p.pid).collect::<Vec<_>>(),
            leftover_note(&net_errors)
        ));
    }
    if !net_errors.is_empty() {
        return Err(format!(
            "processes stopped, but some network pieces remain:\n{}",
            net_errors.join("\n")
        ));
    }
    std::fs::remove_file(cluster_file(dir))
        .map_err(|e| format!("cannot remove cluster record: {e}"))?;
    println!(
        "Stopped {n} process{} of the cluster in {}.",
        if n == 1 { "" } else { "es" },
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

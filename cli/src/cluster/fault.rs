//! `ringsmith cluster fault`: one fault injected into, or healed on, one storage node or the
//! proxy of a running cluster: a cut link (`--netns` clusters), a hung host (SIGSTOP), a
//! power cut (SIGKILL), a wrong clock (see [`super::clock`]), and the way back (heal,
//! resume, restart, unskew).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use super::clock;
use super::procs::{
    answers, has_exited, is_ours, log_tail, read_cluster, signal, spawn_proc, write_cluster,
    ClusterFile, Launch, Proc,
};

#[derive(ClapArgs)]
pub struct FaultArgs {
    /// The cluster directory.
    #[arg(long, default_value = "ringsmith-cluster")]
    dir: PathBuf,
    /// The storage node (0-based, as in `etc/node<N>`).
    #[arg(long, required_unless_present = "proxy", conflicts_with = "proxy")]
    node: Option<u32>,
    /// The proxy instead of a storage node (kill, restart, hang, resume, skew, unskew).
    #[arg(long)]
    proxy: bool,
    /// partition: link down; heal: link up; hang: SIGSTOP its processes; resume: SIGCONT;
    /// kill: SIGKILL (a power cut of the host); restart: start what is not running again;
    /// skew: restart its processes with the wall clock off by --by seconds (needs
    /// libfaketime); unskew: restart them with the true clock.
    #[arg(value_enum)]
    action: FaultAction,
    /// For skew: seconds the clock runs ahead (negative: behind), e.g. 600 or -600.
    #[arg(long, allow_hyphen_values = true, required_if_eq("action", "skew"))]
    by: Option<i64>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FaultAction {
    Partition,
    Heal,
    Hang,
    Resume,
    Kill,
    Restart,
    Skew,
    Unskew,
}

/// `cluster fault`: one fault on, or off, for one node (or the proxy).
pub fn run(a: FaultArgs) -> Result<ExitCode, String> {
    let Some(mut c) = read_cluster(&a.dir)? else {
        return Err(format!("no cluster in {}", a.dir.display()));
    };
    let target = |p: &Proc| match a.node {
        Some(n) => p.node == Some(n),
        None => p.kind == "proxy",
    };
    let what = a
        .node
        .map_or("the proxy".to_string(), |n| format!("node {n}"));
    let live: Vec<&Proc> = c.procs.iter().filter(|p| target(p) && is_ours(p)).collect();
    let touched = match a.action {
        FaultAction::Partition | FaultAction::Heal => {
            let node = a.node.ok_or("partitions apply to storage nodes")?;
            let ns = c.netns.as_ref().ok_or(
                "partitions need a cluster started with --netns (nodes on 127.0.0.x share one network)",
            )?;
            ns.set_link(node, matches!(a.action, FaultAction::Heal))?;
            live.len()
        }
        FaultAction::Hang | FaultAction::Resume | FaultAction::Kill => {
            if live.is_empty() {
                return Err(format!("{what} has no running process"));
            }
            let sig = match a.action {
                FaultAction::Hang => libc::SIGSTOP,
                FaultAction::Resume => libc::SIGCONT,
                _ => libc::SIGKILL,
            };
            for p in &live {
                signal(p.pid, sig);
            }
            if matches!(a.action, FaultAction::Kill) {
                let deadline = Instant::now() + Duration::from_secs(10);
                while live.iter().any(|p| is_ours(p)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            live.len()
        }
        FaultAction::Restart => restart(&a.dir, &mut c, &target)?,
        FaultAction::Skew | FaultAction::Unskew => {
            let offset = match a.action {
                FaultAction::Skew => {
                    let by = a.by.ok_or("skew needs --by SECONDS")?;
                    clock::check_offset(by)?;
                    // Refused before anything is stopped, not after.
                    clock::libfaketime()?;
                    Some(by)
                }
                _ => None,
            };
            if live.is_empty() {
                return Err(format!("{what} has no running process"));
            }
            stop(&live);
            // Every process of the target, running or not: `restart` starts them all,
            // and a node's clock is one clock.
            for p in c.procs.iter_mut().filter(|p| target(p)) {
                p.clock_offset = offset;
            }
            write_cluster(&a.dir, &c)?;
            restart(&a.dir, &mut c, &target)?
        }
    };
    let clock_note = match (a.action, a.by) {
        (FaultAction::Skew, Some(by)) => format!(", clock {by:+} s"),
        _ => String::new(),
    };
    println!(
        "{what}: {:?} ({touched} process{}{clock_note})",
        a.action,
        if touched == 1 { "" } else { "es" }
    );
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (a clean shutdown: the servers finish what they are serving), SIGKILL past
/// 10 s; returns once none of them runs.
fn stop(live: &[&Proc]) {
    for p in live {
        signal(p.pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.iter().any(|p| is_ours(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in live.iter().filter(|p| is_ours(p)) {
        signal(p.pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.iter().any(|p| is_ours(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts again every process of the target that is not running, in the same namespace
/// and with the same config, and waits until the servers among them answer.
fn restart(
    dir: &Path,
    c: &mut ClusterFile,
    target: &dyn Fn(&Proc) -> bool,
) -> Result<usize, String> {
    let server_bin = c
        .server_bin
        .clone()
        .ok_or("this cluster was started by an older ringsmith; restart it with up")?;
    let mut started = Vec::new();
    for i in 0..c.procs.len() {
        let p = c.procs[i].clone();
        if !target(&p) || is_ours(&p) {
            continue;
        }
        let ns = match (&c.netns, p.node) {
            (Some(n), Some(node)) => n.node_namespace(node).map(str::to_string),
            (Some(n), None) => Some(n.proxy_namespace().to_string()),
            (None, _) => None,
        };
        let fresh = spawn_proc(&server_bin, dir, Launch::again(&p), ns.as_deref())?;
        c.procs[i] = fresh;
        write_cluster(dir, c)?;
        started.push(i);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in &started {
        let p = &c.procs[*i];
        while !p.addr.is_empty() && !answers(&p.addr) {
            if has_exited(p) || Instant::now() > deadline {
                return Err(format!(
                    "{} ({}) did not come back; its log ({}):\n{}",
                    p.kind,
                    p.addr,
                    p.log.display(),
                    log_tail(&p.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(started.len())
}

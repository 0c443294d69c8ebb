//! `ringsmith cluster fault`: one fault injected into, or healed on, one storage node or the
//! proxy of a running cluster: a cut link (`--netns` clusters), a hung host (SIGSTOP), a
//! power cut (SIGKILL), and the way back (heal, resume, restart).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use super::{
    answers, has_exited, is_ours, log_tail, read_cluster, signal, spawn_proc, write_cluster,
    ClusterFile, Proc,
};

#[derive(ClapArgs)]
pub struct FaultArgs {
    /// The cluster directory.
    #[arg(long, default_value = "ringsmith-cluster")]
    dir: PathBuf,
    /// The storage node (0-based, as in `etc/node<N>`).
    #[arg(long, required_unless_present = "proxy", conflicts_with = "proxy")]
    node: Option<u32>,
    /// The proxy instead of a storage node (kill and restart only).
    #[arg(long)]
    proxy: bool,
    /// partition: link down; heal: link up; hang: SIGSTOP its processes; resume: SIGCONT;
    /// kill: SIGKILL (a power cut of the host); restart: start what is not running again.
    #[arg(value_enum)]
    action: FaultAction,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FaultAction {
    Partition,
    Heal,
    Hang,
    Resume,
    Kill,
    Restart,
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
    };
    println!(
        "{what}: {:?} ({touched} process{})",
        a.action,
        if touched == 1 { "" } else { "es" }
    );
    Ok(ExitCode::SUCCESS)
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
        let fresh = spawn_proc(
            &server_bin,
            dir,
            &p.kind,
            &p.conf,
            &p.addr,
            p.node,
            ns.as_deref(),
        )?;
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

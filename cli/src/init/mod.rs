//! `ringsmith init <server>... <command>`: swift-init for `ringsmith-server`.
//!
//! The same server names (`object`, `object-server`, `object-replicator`, `object.1`,
//! the groups `all`, `main` and `rest`, globs such as `object-*`), the same commands,
//! options, messages, pid files and exit codes as Swift's `swift-init`, over the same
//! `/etc/swift` layout (see [`server`]). Two things differ on purpose:
//!
//! - `reload` (and `reload-seamless`, `force-reload`) of the HTTP servers is seamless:
//!   each server is sent SIGUSR1, starts a copy of itself that inherits its listening
//!   socket, and drains once the copy is ready, so no connection is refused or dropped.
//!   swift-init's `reload` stops the server and starts a new one, which leaves the port
//!   closed in between. The daemons are stopped and started, as in Swift.
//! - `start` waits until each process says it is serving (a readiness pipe), rather
//!   than until it closes its standard output; output goes to a log file per process
//!   under `--log-dir`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

mod server;
use server::{Dirs, Running, Server};

/// How long `start` waits for a process to say it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long swift-init watches a process that printed something at startup.
const WARNING_WAIT: Duration = Duration::from_secs(3);

const COMMANDS: &[(&str, &str)] = &[
    ("force-reload", "alias for reload"),
    ("kill", "stop a server (no error if not running)"),
    ("no-daemon", "start a server interactively"),
    ("no-wait", "spawn server and return immediately"),
    (
        "once",
        "start server and run one pass on supporting daemons",
    ),
    (
        "reload",
        "seamless reload of the HTTP servers (socket handoff); daemons are restarted",
    ),
    ("reload-seamless", "the same as reload"),
    ("restart", "stops then restarts server"),
    (
        "shutdown",
        "allow current requests to finish on supporting servers",
    ),
    ("start", "starts a server"),
    ("status", "display status of tracked pids for server"),
    ("stop", "stops a server"),
];

#[derive(ClapArgs, Clone)]
#[command(
    after_help = "COMMANDS:\n  force-reload, kill, no-daemon, no-wait, once, reload, reload-seamless,\n  restart, shutdown, start, status, stop\n\nSERVERS: proxy, account, container, object (the -server may be omitted), a daemon\n(object-replicator, ...), SERVER.N for SWIFT_DIR/SERVER-server/N.conf, or all, main, rest."
)]
pub struct Args {
    /// Servers then the command: `object-server proxy start`, `main reload`, `start all`.
    #[arg(required = true, num_args = 2.., value_name = "SERVER... COMMAND")]
    words: Vec<String>,
    /// Display verbose output.
    #[arg(short, long)]
    verbose: bool,
    /// Don't wait for the servers to start before returning.
    #[arg(short = 'w', long)]
    no_wait: bool,
    /// Only run one pass of the daemons.
    #[arg(short, long)]
    once: bool,
    /// Start the servers interactively (in the foreground, output here).
    #[arg(short = 'n', long)]
    no_daemon: bool,
    /// Send SIGHUP (finish current requests) to the HTTP servers on stop.
    #[arg(short, long)]
    graceful: bool,
    /// Send the command to the Nth config of each server only.
    #[arg(
        short = 'c',
        long = "config-num",
        value_name = "N",
        default_value_t = 0
    )]
    number: usize,
    /// Seconds to wait for processes to stop (and, on reload, to be replaced).
    #[arg(short = 'k', long, value_name = "N", default_value_t = 15)]
    kill_wait: u64,
    /// Directory of the pid files.
    #[arg(short = 'r', long, default_value = "/var/run/swift")]
    run_dir: PathBuf,
    /// Directory of the configs (swift-init always uses /etc/swift).
    #[arg(long, default_value = "/etc/swift")]
    swift_dir: PathBuf,
    /// Directory of each process's output (`object-server/1.log` and so on).
    #[arg(long, default_value = "/var/log/ringsmith")]
    log_dir: PathBuf,
    /// Non-zero exit when a config is missing (the default when every server is named).
    #[arg(long, overrides_with = "non_strict")]
    strict: bool,
    /// Zero exit even when a config is missing (the default for globs and groups).
    #[arg(long)]
    non_strict: bool,
    /// SIGKILL the processes still running after the kill wait.
    #[arg(long)]
    kill_after_timeout: bool,
    /// The ringsmith-server binary (default: next to this one, else on PATH).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let mut words = args.words.clone();
    let mut command = words.pop().unwrap_or_default();
    // "start main" as well as "main start", as swift-init allows.
    if !is_command(&command) && words.first().is_some_and(|w| is_command(w)) {
        words.push(command);
        command = words.remove(0);
    }
    if !is_command(&command) {
        eprintln!("ERROR: unknown command, {command}");
        eprintln!(
            "commands: {}",
            COMMANDS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
        );
        return ExitCode::from(1);
    }
    let (servers, default_strict) = match expand(&words) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    let server_bin = match crate::cluster::find_server_bin(args.server_bin.clone()) {
        Ok(p) => p,
        Err(e) if command == "status" || command == "stop" => {
            // Stopping and looking need no binary.
            let _ = e;
            PathBuf::from("ringsmith-server")
        }
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    let m = Manager {
        dirs: Dirs {
            swift_dir: args.swift_dir.clone(),
            run_dir: args.run_dir.clone(),
            log_dir: args.log_dir.clone(),
            server_bin,
        },
        strict: if args.strict {
            true
        } else if args.non_strict {
            false
        } else {
            default_strict
        },
        servers,
        args,
    };
    let status = match command.as_str() {
        "status" => m.status(),
        "start" => m.start(m.args.once, !m.args.no_wait, !m.args.no_daemon),
        "no-wait" => m.start(m.args.once, false, true),
        "no-daemon" => m.start(m.args.once, true, false),
        "once" => m.start(true, !m.args.no_wait, !m.args.no_daemon),
        "stop" => m.stop(m.args.graceful),
        "kill" => m.kill(),
        "shutdown" => m.stop(true),
        "restart" => m.stop(m.args.graceful) + m.start(m.args.once, true, true),
        _ => m.reload(),
    };
    if status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn is_command(w: &str) -> bool {
    COMMANDS.iter().any(|(c, _)| *c == w.replace('_', "-"))
}

/// Server words to servers; the bool is swift-init's default strictness (false when a
/// group or glob was used). Names Ringsmith has no implementation of are left out of
/// groups and refused when named.
fn expand(words: &[String]) -> Result<(Vec<Server>, bool), String> {
    let mut strict = true;
    let mut names: Vec<Server> = Vec::new();
    for w in words {
        let w = w.to_ascii_lowercase();
        let group: Option<Vec<&str>> = match w.as_str() {
            "all" => Some(server::ALL_SERVERS.to_vec()),
            "main" => Some(server::MAIN_SERVERS.to_vec()),
            "rest" => Some(
                server::ALL_SERVERS
                    .iter()
                    .copied()
                    .filter(|s| !server::MAIN_SERVERS.contains(s))
                    .collect(),
            ),
            g if g.contains('*') => Some(
                server::ALL_SERVERS
                    .iter()
                    .copied()
                    .filter(|s| glob_match(g, s))
                    .collect(),
            ),
            _ => None,
        };
        match group {
            Some(list) => {
                strict = false;
                names.extend(
                    list.into_iter()
                        .filter(|s| server::IMPLEMENTED.contains(s))
                        .map(Server::parse),
                );
            }
            None => {
                let s = Server::parse(&w);
                if !server::IMPLEMENTED.contains(&s.name.as_str()) {
                    return Err(if server::ALL_SERVERS.contains(&s.name.as_str()) {
                        format!("{} has no Ringsmith implementation yet", s.name)
                    } else {
                        format!("unknown server {w:?}")
                    });
                }
                names.push(s);
            }
        }
    }
    names.sort();
    names.dedup();
    Ok((names, strict))
}

/// `*` matches any run of characters (swift-init turns globs into such regexes).
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

struct Manager {
    dirs: Dirs,
    servers: Vec<Server>,
    strict: bool,
    args: Args,
}

impl Manager {
    fn running(&self, s: &Server) -> Running {
        s.running(&self.dirs, self.args.number, self.args.verbose)
    }

    fn status(&self) -> u32 {
        let mut status = 0;
        for s in &self.servers {
            let running = self.running(s);
            if running.is_empty() {
                if self.args.number > 0 {
                    if let Some(conf) = s.conf_files(&self.dirs, self.args.number).first() {
                        println!("{s} #{} not running ({})", self.args.number, conf.display());
                    }
                } else {
                    println!("No {s} running");
                }
                status += 1;
            }
            for (pid, pid_file) in running {
                println!(
                    "{s} running ({pid} - {})",
                    s.conf_for(&self.dirs, &pid_file).display()
                );
            }
        }
        status
    }

    fn start(&self, once: bool, wait: bool, daemon: bool) -> u32 {
        let mut status = 0;
        let mut spawned = Vec::new();
        for s in &self.servers {
            match self.launch(s, once, daemon) {
                Some(procs) if !procs.is_empty() => spawned.extend(procs),
                _ => status += 1,
            }
        }
        if !self.strict {
            status = 0;
        }
        if !daemon {
            for (_, _, mut p) in spawned {
                if !p.child.wait().is_ok_and(|s| s.success()) {
                    status += 1;
                }
            }
        } else if wait {
            for (s, conf, mut p) in spawned {
                let once = once && !s.is_main();
                let ok = if once {
                    p.child.wait().is_ok_and(|st| st.success())
                } else if p.wait_ready(START_TIMEOUT) {
                    true
                } else {
                    // Give a process that is merely slow to say so a moment, then judge.
                    let until = Instant::now() + WARNING_WAIT;
                    while Instant::now() < until && matches!(p.child.try_wait(), Ok(None)) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    matches!(p.child.try_wait(), Ok(None))
                };
                if !ok {
                    println!(
                        "{s} did not start ({}); its output ({}):\n{}",
                        conf.display(),
                        p.log_file.display(),
                        tail(&p.log_file)
                    );
                    status += 1;
                }
            }
        }
        status
    }

    /// Starts every config of `s` unless one is running; None when nothing started.
    fn launch(
        &self,
        s: &Server,
        once: bool,
        daemon: bool,
    ) -> Option<Vec<(Server, PathBuf, server::Spawned)>> {
        let confs = s.conf_files(&self.dirs, self.args.number);
        if confs.is_empty() {
            if self.args.number > 0 {
                println!(
                    "Unable to locate config number {} for {s}",
                    self.args.number
                );
            } else {
                println!("Unable to locate config for {s}");
            }
            return None;
        }
        let mut already = false;
        for (pid, pid_file) in self.running(s) {
            let conf = s.conf_for(&self.dirs, &pid_file);
            if confs.contains(&conf) {
                already = true;
                println!("{s} running ({pid} - {})", conf.display());
            } else if self.args.number == 0 {
                already = true;
                println!("{s} running ({pid} - {})", pid_file.display());
            }
        }
        if already {
            println!("{s} already started...");
            return None;
        }
        let once = once && !s.is_main();
        let mut out = Vec::new();
        for conf in confs {
            let msg = if once {
                "Running {s} once"
            } else {
                "Starting {s}"
            };
            println!("{}...({})", msg.replace("{s}", &s.name), conf.display());
            match s.spawn(&self.dirs, &conf, once, daemon) {
                Ok(p) => out.push((s.clone(), conf, p)),
                Err(e) => {
                    println!("{e}");
                    break;
                }
            }
        }
        Some(out)
    }

    /// Signals every running process (SIGTERM, SIGHUP when `graceful` for the HTTP
    /// servers) and watches them go for `--kill-wait` seconds.
    fn stop(&self, graceful: bool) -> u32 {
        let mut signalled: Vec<(Server, u32, PathBuf)> = Vec::new();
        for s in &self.servers {
            let running = self.running(s);
            if running.is_empty() {
                println!("No {s} running");
            }
            let sig = if graceful && s.is_main() {
                libc::SIGHUP
            } else {
                libc::SIGTERM
            };
            for (pid, pid_file) in running {
                println!("Signal {s}  pid: {pid}  signal: {sig}");
                signal(pid, sig);
                signalled.push((s.clone(), pid, pid_file));
            }
        }
        if signalled.is_empty() {
            // swift-init's exit code when there was nothing to stop.
            return 1;
        }
        if self.watch_exit(&mut signalled) {
            return 0;
        }
        let mut failed: Vec<&str> = signalled.iter().map(|(s, _, _)| s.name.as_str()).collect();
        failed.dedup();
        for name in failed {
            if self.args.kill_after_timeout {
                println!(
                    "Waited {} seconds for {name} to die; killing",
                    self.args.kill_wait
                );
                for (s, pid, _) in signalled.iter().filter(|(s, _, _)| s.name == name) {
                    println!("Signal {s}  pid: {pid}  signal: {}", libc::SIGKILL);
                    signal(*pid, libc::SIGKILL);
                }
            } else {
                println!(
                    "Waited {} seconds for {name} to die; giving up",
                    self.args.kill_wait
                );
            }
        }
        1
    }

    /// Waits up to the kill wait for the processes to exit, saying which did and
    /// removing their pid files; true when all did. Keeps the ones still running.
    fn watch_exit(&self, procs: &mut Vec<(Server, u32, PathBuf)>) -> bool {
        let deadline = Instant::now() + Duration::from_secs(self.args.kill_wait);
        loop {
            procs.retain(|(s, pid, pid_file)| {
                if server::is_our_process(*pid) {
                    return true;
                }
                println!("{s} ({pid}) appears to have stopped");
                // Only when it still names the process that stopped.
                if read_pid(pid_file) == Some(*pid) {
                    let _ = std::fs::remove_file(pid_file);
                }
                false
            });
            if procs.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            reap();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&self) -> u32 {
        let status = self.stop(self.args.graceful);
        if status != 0 && self.servers.iter().any(|s| !self.running(s).is_empty()) {
            return status;
        }
        0
    }

    /// HTTP servers: SIGUSR1, then wait for the pid file to name a new, live process.
    /// Daemons: stop, then start.
    fn reload(&self) -> u32 {
        let mut status = 0;
        let mut handoffs: Vec<(Server, u32, PathBuf)> = Vec::new();
        for s in self.servers.iter().filter(|s| s.is_main()) {
            let running = self.running(s);
            if running.is_empty() {
                // Nothing to hand over: start it, as swift-init's reload would.
                println!("No {s} running");
                status += self.with_servers(vec![s.clone()]).start(false, true, true);
                continue;
            }
            for (pid, pid_file) in running {
                println!("Signal {s}  pid: {pid}  signal: {}", libc::SIGUSR1);
                signal(pid, libc::SIGUSR1);
                handoffs.push((s.clone(), pid, pid_file));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(self.args.kill_wait.max(1));
        let mut replaced = Vec::new();
        for (s, old, pid_file) in handoffs {
            loop {
                match read_pid(&pid_file) {
                    Some(new) if new != old && server::is_our_process(new) => {
                        println!(
                            "{s} reloaded ({old} -> {new} - {})",
                            s.conf_for(&self.dirs, &pid_file).display()
                        );
                        replaced.push((s.clone(), old, PathBuf::new()));
                        break;
                    }
                    _ if Instant::now() >= deadline => {
                        println!(
                            "{s} ({old}) was not replaced within {} seconds; still running the old process (see {})",
                            self.args.kill_wait,
                            s.log_file_for(&self.dirs, &pid_file).display()
                        );
                        status += 1;
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        // The old processes drain their in-flight requests; say when they are gone.
        if !self.watch_exit(&mut replaced) {
            for (s, pid, _) in &replaced {
                println!("{s} ({pid}) is still finishing requests");
            }
        }
        let daemons: Vec<Server> = self
            .servers
            .iter()
            .filter(|s| !s.is_main())
            .cloned()
            .collect();
        if !daemons.is_empty() {
            let d = self.with_servers(daemons);
            status += d.stop(false);
            status += d.start(false, true, true);
        }
        status
    }

    fn with_servers(&self, servers: Vec<Server>) -> Manager {
        Manager {
            dirs: self.dirs.clone(),
            servers,
            strict: self.strict,
            args: self.args.clone(),
        }
    }
}

fn read_pid(pid_file: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid just checked to be a ringsmith-server process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Collects the exit status of children of this process that have ended (processes
/// `start` began in this same run, then stopped).
fn reap() {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with WNOHANG only reaps children that already exited.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            break;
        }
    }
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_globs_and_names() {
        let (s, strict) = expand(&["main".into()]).unwrap();
        assert!(!strict);
        assert_eq!(s.len(), 4);
        let (s, strict) = expand(&["object".into(), "proxy-server".into()]).unwrap();
        assert!(strict);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["object-server", "proxy-server"]);
        let (s, _) = expand(&["object-*".into()]).unwrap();
        assert!(s.iter().all(|s| s.name.starts_with("object-")));
        assert!(s.iter().any(|s| s.name == "object-replicator"));
        let (rest, _) = expand(&["rest".into()]).unwrap();
        assert!(rest.iter().all(|s| !s.is_main()));
        assert!(!rest.iter().any(|s| s.name == "account-reaper"));
        assert!(expand(&["account-reaper".into()]).is_err());
        assert!(expand(&["bogus".into()]).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("object-*", "object-updater"));
        assert!(glob_match("*-server", "proxy-server"));
        assert!(glob_match("*auditor*", "account-auditor"));
        assert!(!glob_match("object-*", "proxy-server"));
    }
}

//! One named server or daemon of `ringsmith init`: where its configs are, where its pid
//! files are, which of its processes are running, and starting one.
//!
//! The layout is swift-init's: `SWIFT_DIR/object-server.conf`, `object-server.conf.d/`,
//! `object-server/1.conf` (or `object-server/1.conf.d/`) are the object server's
//! configs and also those of the object daemons; each config has a pid file made by
//! swapping `SWIFT_DIR` for `RUN_DIR`, the `object-server` part for the server's name,
//! and `.conf` for `.pid`: `RUN_DIR/object-replicator/1.pid`.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every name swift-init knows, in its order.
pub const ALL_SERVERS: &[&str] = &[
    "account-auditor",
    "account-server",
    "container-auditor",
    "container-replicator",
    "container-reconciler",
    "container-server",
    "container-sharder",
    "container-sync",
    "container-updater",
    "object-auditor",
    "object-server",
    "object-expirer",
    "object-replicator",
    "object-reconstructor",
    "object-updater",
    "proxy-server",
    "account-replicator",
    "account-reaper",
];
/// The servers that answer HTTP; the rest are daemons.
pub const MAIN_SERVERS: &[&str] = &[
    "proxy-server",
    "account-server",
    "container-server",
    "object-server",
];
/// What `ringsmith-server` runs (Swift's other names have no Ringsmith version yet).
pub const IMPLEMENTED: &[&str] = ringsmith_server::kinds::SERVERS_AND_DAEMONS;

/// Where things are: swift-init's `/etc/swift` and `--run-dir`, plus where output goes.
#[derive(Clone)]
pub struct Dirs {
    pub swift_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    pub server_bin: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Server {
    /// `object-server`, `object-replicator`, ...
    pub name: String,
    /// `object`, `container`, `account` or `proxy`.
    pub kind: String,
    /// `1` for `object.1`: only `object-server/1.conf`.
    pub conf: Option<String>,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A running process of a server: its pid and the pid file naming it.
pub type Running = Vec<(u32, PathBuf)>;

impl Server {
    /// `object`, `object-server`, `object-replicator`, `object.1`.
    pub fn parse(spec: &str) -> Server {
        let spec = spec.to_ascii_lowercase();
        let (name, conf) = match spec.split_once('.') {
            Some((n, c)) => (n.to_string(), Some(c.to_string())),
            None => (spec, None),
        };
        let name = if name.contains('-') {
            name
        } else {
            format!("{name}-server")
        };
        let kind = name
            .rsplit_once('-')
            .map(|(k, _)| k)
            .unwrap_or(&name)
            .to_string();
        Server { name, kind, conf }
    }

    pub fn is_main(&self) -> bool {
        MAIN_SERVERS.contains(&self.name.as_str())
    }

    fn server_conf_name(&self) -> String {
        format!("{}-server", self.kind)
    }

    fn find_confs(&self, dirs: &Dirs, base: &str) -> Vec<PathBuf> {
        match &self.conf {
            Some(c) => search_tree(
                &dirs.swift_dir,
                base,
                false,
                &[format!("{c}.conf")],
                Some(&format!("{c}.conf.d")),
            ),
            None => search_tree(
                &dirs.swift_dir,
                base,
                true,
                &[".conf".to_string()],
                Some(".conf.d"),
            ),
        }
    }

    /// All configs of this server (`number` 1-based: only that one), as swift-init
    /// finds them. The expirer uses the object-server configs that have an
    /// `[object-expirer]` section, else its own `object-expirer.conf`.
    pub fn conf_files(&self, dirs: &Dirs, number: usize) -> Vec<PathBuf> {
        let found = if self.name == "object-expirer" {
            let with_section: Vec<PathBuf> = self
                .find_confs(dirs, "object-server")
                .into_iter()
                .filter(|c| {
                    ringsmith::swift::conf::Conf::load(c)
                        .map(|conf| conf.has_section("object-expirer"))
                        .unwrap_or(false)
                })
                .collect();
            if with_section.is_empty() {
                self.find_confs(dirs, "object-expirer")
            } else {
                with_section
            }
        } else {
            self.find_confs(dirs, &self.server_conf_name())
        };
        if number > 0 {
            found.into_iter().nth(number - 1).into_iter().collect()
        } else {
            found
        }
    }

    /// swift-init's pid file for a config.
    pub fn pid_file_for(&self, dirs: &Dirs, conf: &Path) -> PathBuf {
        let conf = conf.to_string_lossy();
        let swift = dirs.swift_dir.to_string_lossy();
        let swift = swift.trim_end_matches('/');
        let run = dirs.run_dir.to_string_lossy();
        let s = conf.replacen(swift, run.trim_end_matches('/'), 1);
        let s = s.replacen(&self.server_conf_name(), &self.name, 1);
        PathBuf::from(s.replacen(".conf", ".pid", 1))
    }

    /// The config a pid file stands for (the reverse of [`Server::pid_file_for`]).
    pub fn conf_for(&self, dirs: &Dirs, pid_file: &Path) -> PathBuf {
        let p = pid_file.to_string_lossy();
        let run = dirs.run_dir.to_string_lossy();
        let swift = dirs.swift_dir.to_string_lossy();
        let s = p.replacen(run.trim_end_matches('/'), swift.trim_end_matches('/'), 1);
        let s = s.replacen(&self.name, &self.server_conf_name(), 1);
        PathBuf::from(s.replacen(".pid", ".conf", 1))
    }

    /// The pid files in the run dir (only those of config `number` when it is set).
    pub fn pid_files(&self, dirs: &Dirs, number: usize) -> Vec<PathBuf> {
        let files = match &self.conf {
            Some(c) => search_tree(
                &dirs.run_dir,
                &self.name,
                true,
                &[format!("{c}.pid"), format!("{c}.pid.d")],
                None,
            ),
            None => search_tree(&dirs.run_dir, &self.name, true, &[String::new()], None),
        };
        if number == 0 {
            return files;
        }
        let confs = self.conf_files(dirs, number);
        files
            .into_iter()
            .filter(|p| confs.contains(&self.conf_for(dirs, p)))
            .collect()
    }

    /// The processes of this server that are alive; stale or foreign pid files are
    /// removed, as swift-init does (`verbose` says so).
    pub fn running(&self, dirs: &Dirs, number: usize, verbose: bool) -> Running {
        let mut out = Vec::new();
        for pid_file in self.pid_files(dirs, number) {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|p| *p > 0);
            let Some(pid) = pid else {
                println!("Removing pid file {} with invalid pid", pid_file.display());
                let _ = std::fs::remove_file(&pid_file);
                continue;
            };
            if is_our_process(pid) {
                out.push((pid, pid_file));
            } else {
                if verbose {
                    println!("Removing stale pid file {}", pid_file.display());
                }
                let _ = std::fs::remove_file(&pid_file);
            }
        }
        out
    }

    /// Where a process's output goes: the pid file's path under the log dir, `.log`.
    pub fn log_file_for(&self, dirs: &Dirs, pid_file: &Path) -> PathBuf {
        let rel = pid_file.strip_prefix(&dirs.run_dir).unwrap_or(pid_file);
        let rel = rel.to_string_lossy().replacen(".pid", ".log", 1);
        dirs.log_dir.join(rel)
    }

    /// Starts one process for `conf`; returns it with the pipe it reports readiness on.
    /// `daemon`: detached (own session, output to its log file); otherwise it shares
    /// this terminal.
    pub fn spawn(
        &self,
        dirs: &Dirs,
        conf: &Path,
        once: bool,
        daemon: bool,
    ) -> Result<Spawned, String> {
        use std::os::unix::process::CommandExt;
        let pid_file = self.pid_file_for(dirs, conf);
        let log_file = self.log_file_for(dirs, &pid_file);
        for dir in [pid_file.parent(), log_file.parent()].into_iter().flatten() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut cmd = Command::new(&dirs.server_bin);
        cmd.arg(&self.name)
            .arg(conf)
            .arg("--pid-file")
            .arg(&pid_file)
            .stdin(Stdio::null());
        if once {
            cmd.arg("--once");
        }
        let (ready_read, ready_write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let ready_fd = ready_write.as_raw_fd();
        cmd.env(
            ringsmith_server::common::handoff::READY_FD_ENV,
            ready_fd.to_string(),
        );
        if daemon {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_file)
                .map_err(|e| format!("cannot open {}: {e}", log_file.display()))?;
            cmd.stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log);
        }
        // SAFETY: only async-signal-safe calls (setsid, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if daemon {
                    // Its own session: closing this terminal must not stop it.
                    libc::setsid();
                }
                let flags = libc::fcntl(ready_fd, libc::F_GETFD);
                libc::fcntl(ready_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", dirs.server_bin.display()))?;
        drop(ready_write);
        // Written now, as swift-init does; the server rewrites it once it serves.
        ringsmith::atomic::write_bytes_atomic(
            &pid_file,
            0o644,
            format!("{}\n", child.id()).as_bytes(),
        )
        .map_err(|e| format!("cannot write {}: {e}", pid_file.display()))?;
        Ok(Spawned {
            child,
            ready: ready_read,
            log_file,
        })
    }
}

/// A process `spawn` started.
pub struct Spawned {
    pub child: std::process::Child,
    ready: std::io::PipeReader,
    pub log_file: PathBuf,
}

impl Spawned {
    /// Waits until the process says it is serving (true), or exits or stays silent
    /// for `timeout` (false).
    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let polled = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
        let mut said = String::new();
        if polled > 0 {
            let _ = self.ready.read_to_string(&mut said);
        }
        said.starts_with("READY")
    }
}

/// True when `pid` is a live (not zombie) `ringsmith-server` process: a pid file that
/// names anything else is stale, whatever now has that number.
pub fn is_our_process(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let ours = cmdline
        .split(|b| *b == 0)
        .next()
        .is_some_and(|argv0| argv0.ends_with(b"ringsmith-server"));
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true);
    ours && !zombie
}

/// swift's `search_tree`: the entries of `root` named `pattern` (or starting with it
/// when `prefix`); a file counts when it ends with one of `exts`; a directory is
/// walked for such files, except that a directory ending with `dir_ext` is itself a
/// config (a `.conf.d`), and the walk goes no deeper once it finds one. Sorted.
pub fn search_tree(
    root: &Path,
    pattern: &str,
    prefix: bool,
    exts: &[String],
    dir_ext: Option<&str>,
) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return found;
    };
    let ends_with_any = |name: &str| exts.iter().any(|e| name.ends_with(e.as_str()));
    for entry in rd.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let matches = if prefix {
            name.starts_with(pattern)
        } else {
            name == pattern
        };
        if !matches || name.starts_with('.') && !pattern.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, &ends_with_any, dir_ext, &mut found);
        } else if ends_with_any(&name) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Returns true when the walk should stop (a `dir_ext` directory was found).
fn walk(
    dir: &Path,
    keep: &dyn Fn(&str) -> bool,
    dir_ext: Option<&str>,
    found: &mut Vec<PathBuf>,
) -> bool {
    if dir_ext.is_some_and(|x| dir.to_string_lossy().ends_with(x)) {
        found.push(dir.to_path_buf());
        return true;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut subdirs = Vec::new();
    for entry in rd.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            subdirs.push((name, path));
        } else if keep(&name) {
            found.push(path);
        }
    }
    subdirs.sort();
    let conf_dirs: Vec<&PathBuf> = subdirs
        .iter()
        .filter(|(n, _)| dir_ext.is_some_and(|x| n.ends_with(x)))
        .map(|(_, p)| p)
        .collect();
    if !conf_dirs.is_empty() {
        found.extend(conf_dirs.into_iter().cloned());
        return true;
    }
    for (_, sub) in subdirs {
        if walk(&sub, keep, dir_ext, found) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> Dirs {
        Dirs {
            swift_dir: root.join("etc/swift"),
            run_dir: root.join("run/swift"),
            log_dir: root.join("log"),
            server_bin: PathBuf::from("ringsmith-server"),
        }
    }

    #[test]
    fn names_follow_swift_init() {
        let s = Server::parse("object");
        assert_eq!(
            (s.name.as_str(), s.kind.as_str(), s.conf),
            ("object-server", "object", None)
        );
        let s = Server::parse("object-replicator.2");
        assert_eq!(s.name, "object-replicator");
        assert_eq!(s.kind, "object");
        assert_eq!(s.conf.as_deref(), Some("2"));
        assert!(Server::parse("proxy").is_main());
        assert!(!Server::parse("container-updater").is_main());
    }

    #[test]
    fn configs_pid_files_and_back() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        let etc = &d.swift_dir;
        std::fs::create_dir_all(etc.join("object-server")).unwrap();
        std::fs::create_dir_all(etc.join("container-server.conf.d")).unwrap();
        std::fs::create_dir_all(etc.join("account-server/2.conf.d")).unwrap();
        for f in [
            "object-server/1.conf",
            "object-server/2.conf",
            "object-server/notes.txt",
            "container-server.conf.d/10.conf",
            "account-server/1.conf",
            "proxy-server.conf",
            "proxy-server.conf-sample",
        ] {
            std::fs::write(etc.join(f), "[DEFAULT]\n").unwrap();
        }
        let obj = Server::parse("object-replicator");
        assert_eq!(
            obj.conf_files(&d, 0),
            vec![
                etc.join("object-server/1.conf"),
                etc.join("object-server/2.conf")
            ]
        );
        assert_eq!(
            obj.conf_files(&d, 2),
            vec![etc.join("object-server/2.conf")]
        );
        assert!(obj.conf_files(&d, 3).is_empty());
        let pid = obj.pid_file_for(&d, &etc.join("object-server/2.conf"));
        assert_eq!(pid, d.run_dir.join("object-replicator/2.pid"));
        assert_eq!(obj.conf_for(&d, &pid), etc.join("object-server/2.conf"));
        // A .conf.d directory is one config.
        let c = Server::parse("container");
        assert_eq!(
            c.conf_files(&d, 0),
            vec![etc.join("container-server.conf.d")]
        );
        assert_eq!(
            c.pid_file_for(&d, &etc.join("container-server.conf.d")),
            d.run_dir.join("container-server.pid.d")
        );
        // The walk stops at the first .conf.d it meets (swift's search_tree).
        let a = Server::parse("account");
        assert_eq!(
            a.conf_files(&d, 0),
            vec![
                etc.join("account-server/1.conf"),
                etc.join("account-server/2.conf.d")
            ]
        );
        assert_eq!(
            Server::parse("object.1").conf_files(&d, 0),
            vec![etc.join("object-server/1.conf")]
        );
        assert_eq!(
            Server::parse("proxy").conf_files(&d, 0),
            vec![etc.join("proxy-server.conf")]
        );
    }
}

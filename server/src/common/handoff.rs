//! Seamless reload: a running server hands its listening socket to a fresh copy of
//! itself, waits until the copy is ready, then stops accepting and drains.
//!
//! On SIGUSR1 (Swift's "seamless reload" signal, what `ringsmith init reload` sends) a
//! server re-runs its own binary with the same arguments. The child inherits the
//! listening socket itself (one socket, two processes calling `accept` on it), so a
//! connection that the kernel has queued is never lost: it is accepted by whichever
//! process is still listening. That is why this uses a passed descriptor rather than a
//! second socket bound with `SO_REUSEPORT`: closing one of several `SO_REUSEPORT`
//! sockets resets the connections queued on it.
//!
//! The child reports readiness on a pipe once its configuration is loaded and its router
//! built; only then does the parent close its copy of the socket. A child that fails
//! (a broken config, say) closes the pipe without a word, and the parent keeps serving.
//!
//! Readiness also goes to systemd (`NOTIFY_SOCKET`, `READY=1` and `MAINPID=`) so that
//! `Type=notify` units follow the process that took over, and to `--pid-file`, which the
//! new process rewrites so that `ringsmith init` finds it.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Environment variable naming the inherited listening socket's descriptor.
pub const LISTEN_FD_ENV: &str = "RINGSMITH_LISTEN_FD";
/// Environment variable naming the pipe descriptor readiness is written to.
pub const READY_FD_ENV: &str = "RINGSMITH_READY_FD";
/// How long a replacement has to become ready before the reload is abandoned.
const REPLACEMENT_READY_TIMEOUT: Duration = Duration::from_secs(60);

static INHERITED_LISTENER: Mutex<Option<OwnedFd>> = Mutex::new(None);
static READY_PIPE: Mutex<Option<OwnedFd>> = Mutex::new(None);
static PID_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Takes the descriptors this process inherited (and removes their variables so that
/// nothing this process starts inherits them by mistake). Call first thing in `main`,
/// before any thread exists.
pub fn capture_inherited() {
    if let Some(fd) = take_fd_env(LISTEN_FD_ENV) {
        *INHERITED_LISTENER.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
    }
    if let Some(fd) = take_fd_env(READY_FD_ENV) {
        *READY_PIPE.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
    }
}

fn take_fd_env(var: &str) -> Option<OwnedFd> {
    let value = std::env::var(var).ok()?;
    std::env::remove_var(var);
    let fd: RawFd = value.trim().parse().ok().filter(|fd| *fd > 2)?;
    // Only adopt a descriptor that is really open.
    // SAFETY: fcntl(F_GETFD) on an arbitrary number only queries it.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    set_cloexec(fd, true);
    // SAFETY: the parent passed this descriptor to us alone; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_cloexec(fd: RawFd, on: bool) {
    // SAFETY: plain descriptor flag calls; async-signal-safe (also used after fork).
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            let flags = if on {
                flags | libc::FD_CLOEXEC
            } else {
                flags & !libc::FD_CLOEXEC
            };
            libc::fcntl(fd, libc::F_SETFD, flags);
        }
    }
}

/// Where this process writes its pid once it is ready (`--pid-file`).
pub fn set_pid_file(path: PathBuf) {
    let _ = PID_FILE.set(path);
}

/// The listening socket for `addr`: the one inherited from the process this one
/// replaces when it listens on `addr`, otherwise a newly bound one.
pub fn listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let inherited = INHERITED_LISTENER
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(fd) = inherited {
        let l = std::net::TcpListener::from(fd);
        match l.local_addr() {
            Ok(a) if a == addr => {
                tracing::info!(%addr, "listening on the socket of the process this one replaces");
                l.set_nonblocking(true)?;
                return Ok(l);
            }
            other => tracing::warn!(
                inherited = ?other.ok(), wanted = %addr,
                "the configured address changed; binding a new socket"
            ),
        }
    }
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Says this process is ready: writes the pid file, tells the process that started it
/// (on the readiness pipe) and systemd (`NOTIFY_SOCKET`).
pub fn notify_ready() {
    let pid = std::process::id();
    if let Some(path) = PID_FILE.get() {
        if let Err(e) =
            ringsmith::atomic::write_bytes_atomic(path, 0o644, format!("{pid}\n").as_bytes())
        {
            tracing::error!(pid_file = %path.display(), error = %e, "cannot write pid file");
        }
    }
    // systemd first: the process this one replaces exits once the pipe says ready,
    // and systemd must know the new main pid before it sees the old one go.
    sd_notify(&format!("READY=1\nMAINPID={pid}\n"));
    let pipe = READY_PIPE.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(fd) = pipe {
        let mut f = std::fs::File::from(fd);
        let _ = f.write_all(format!("READY {pid}\n").as_bytes());
    }
}

/// Sends `state` to systemd's notification socket, when there is one.
fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Starts a copy of this process (same binary, same arguments) that inherits
/// `listen_fd`, and waits until it says it is ready. Returns its pid. Blocking.
pub fn spawn_replacement(listen_fd: RawFd) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    // After a package upgrade the running binary is unlinked; reload means "run the
    // new one", which sits at the old path.
    let exe = match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(path) => PathBuf::from(path),
        None => exe,
    };
    let (mut ready_read, ready_write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let ready_fd = ready_write.as_raw_fd();
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(std::env::args_os().skip(1))
        .env(LISTEN_FD_ENV, listen_fd.to_string())
        .env(READY_FD_ENV, ready_fd.to_string())
        .stdin(std::process::Stdio::null());
    // SAFETY: the closure only calls fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            set_cloexec(listen_fd, false);
            set_cloexec(ready_fd, false);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    drop(ready_write);
    let pid = child.id();
    // Wait for "READY", or EOF (the child died), or the timeout.
    let mut pfd = libc::pollfd {
        fd: ready_read.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout_ms = REPLACEMENT_READY_TIMEOUT.as_millis() as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    let polled = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    let mut said = String::new();
    if polled > 0 {
        let _ = ready_read.read_to_string(&mut said);
    }
    if said.starts_with("READY") {
        return Ok(pid);
    }
    // SAFETY: signalling our own child, which has not been reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    if polled == 0 {
        Err(format!(
            "replacement {pid} not ready after {} s; stopped it ({status})",
            REPLACEMENT_READY_TIMEOUT.as_secs()
        ))
    } else {
        Err(format!("replacement {pid} failed to start ({status})"))
    }
}

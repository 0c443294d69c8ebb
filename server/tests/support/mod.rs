//! Shared by the integration tests: a node directory with `swift.conf`, configs, and
//! server processes that are always killed (on drop) and waited for with bounded time.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const HASH_PREFIX: &str = "rsprefix";
pub const HASH_SUFFIX: &str = "rssuffix";

pub use ringsmith_testkit::free_port;

pub fn write_swift_conf(dir: &Path) {
    std::fs::write(
        dir.join("swift.conf"),
        format!(
            "[swift-hash]\nswift_hash_path_prefix = {HASH_PREFIX}\nswift_hash_path_suffix = {HASH_SUFFIX}\n\n\
             [storage-policy:0]\nname = Policy-0\ndefault = yes\npolicy_type = replication\n\n[swift-constraints]\n"
        ),
    )
    .unwrap();
}

/// Writes `<kind>-server.conf` in `etc` for a server on ip:port over `devices`.
pub fn write_server_conf(
    etc: &Path,
    kind: &str,
    ip: &str,
    port: u16,
    devices: &Path,
    cache: &Path,
) -> PathBuf {
    let path = etc.join(format!("{kind}-server-{ip}.conf"));
    std::fs::write(
        &path,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = {ip}\nbind_port = {port}\nworkers = 1\n\
             swift_dir = {}\nrecon_cache_path = {}\nlog_level = WARNING\nfallocate_reserve = 0\nclient_timeout = 3\nsome_unknown_key = 1\n\n\
             [pipeline:main]\npipeline = healthcheck recon {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n\n\
             [filter:recon]\nuse = egg:swift#recon\nrecon_lock_path = {}\n\n[{kind}-replicator]\n[{kind}-auditor]\n",
            devices.display(),
            etc.display(),
            cache.display(),
            cache.display()
        ),
    )
    .unwrap();
    path
}

/// A child process killed and reaped on drop.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until `addr` accepts connections; panics with the log otherwise,
    /// and when what listens there is some other process than this one (or its children),
    /// naming it: a test talking to another server by mistake fails here, not later with a
    /// puzzling status.
    pub fn wait_listening(&mut self, addr: SocketAddr, limit: Duration) {
        let child = self
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        if let Err(e) = ringsmith_testkit::wait_listening(child, addr, limit) {
            panic!("{}: {e}:\n{}", self.name, self.log_text());
        }
    }

    /// Sends SIGTERM and waits (bounded) for exit; returns the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One raw HTTP/1.1 exchange for what clients cannot express (Expect: 100-continue).
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the end of a response head (`\r\n\r\n`).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!(
                "reading response head: {e}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn write_all(s: &mut TcpStream, b: &[u8]) {
    s.write_all(b).unwrap();
}

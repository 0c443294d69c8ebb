//! `cluster up --memcached`: a memcached for the proxy's `cache` filter, on 127.0.0.1
//! (inside the proxy's namespace with `--netns`), recorded by pid like every other
//! process so `cluster down` stops it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{netns, Proc};

/// The kind memcached is recorded under in `run/cluster.json`.
pub const KIND: &str = "memcached";

/// The memcached binary: on PATH, or Debian's place.
fn binary() -> Result<PathBuf, String> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("memcached"))
                .collect()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin/memcached")])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "--memcached needs memcached installed (Debian: apt-get install memcached)".to_string()
        })
}

/// A port nothing on 127.0.0.1 holds now and that is not `reserved` (the proxy's port,
/// chosen by the operator but not yet bound: the kernel may hand it out).
pub fn free_port(reserved: u16) -> Result<u16, String> {
    port_other_than(reserved, || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free port on 127.0.0.1 for memcached: {e}"))
    })
}

/// The first of (at most 100) `candidates` that is not `reserved`.
fn port_other_than(
    reserved: u16,
    mut candidates: impl FnMut() -> Result<u16, String>,
) -> Result<u16, String> {
    for _ in 0..100 {
        let port = candidates()?;
        if port != reserved {
            return Ok(port);
        }
    }
    Err(format!(
        "no free port on 127.0.0.1 for memcached other than the proxy's {reserved}"
    ))
}

/// Starts memcached on `127.0.0.1:port`, its output in `DIR/log/memcached.log`.
pub fn spawn(dir: &Path, port: u16, ns: Option<&str>) -> Result<Proc, String> {
    let bin = binary()?;
    let log = dir.join("log/memcached.log");
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(&bin);
    cmd.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "64",
    ]);
    // memcached refuses to run as root unless told which user to be.
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["-u", "root"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(|e| e.to_string())?)
        .stderr(logf);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    if let Some(ns) = ns {
        netns::enter(&mut cmd, ns)?;
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    Ok(Proc {
        kind: KIND.to_string(),
        pid: child.id(),
        addr: format!("127.0.0.1:{port}"),
        conf: PathBuf::new(),
        log,
        node: None,
        clock_offset: None,
    })
}

/// Whether a recorded memcached's pid is still that memcached (its port in its
/// command line).
pub fn is_ours(p: &Proc, args: &[String]) -> bool {
    let port = p.addr.rsplit(':').next().unwrap_or("");
    args.first().is_some_and(|a| a.ends_with("memcached")) && args.iter().any(|a| a == port)
}

#[cfg(test)]
mod tests {
    use super::{free_port, port_other_than};

    #[test]
    fn the_reserved_port_is_passed_over() {
        // The kernel's next port first, twice, as it may be after a release.
        let mut offered = [41_000, 41_000, 41_001].into_iter();
        let port = port_other_than(41_000, || Ok(offered.next().unwrap()));
        assert_eq!(port, Ok(41_001));
        assert_eq!(
            offered.next(),
            None,
            "no port drawn past the first usable one"
        );
    }

    #[test]
    fn only_the_reserved_port_on_offer_is_an_error() {
        let err = port_other_than(41_000, || Ok(41_000)).unwrap_err();
        assert!(err.contains("other than the proxy's 41000"), "{err}");
        let err = port_other_than(41_000, || Err("bind failed".into())).unwrap_err();
        assert_eq!(err, "bind failed");
    }

    #[test]
    fn free_port_never_returns_the_port_the_kernel_just_released() {
        for _ in 0..50 {
            let reserved = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            assert_ne!(free_port(reserved).unwrap(), reserved);
        }
    }
}

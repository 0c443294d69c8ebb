//! Whether the server a test started is the one answering its port.
//!
//! A port the test picked can be taken by another process before its server binds it; the
//! server then fails to start, the port answers anyway, and the test talks to a stranger
//! that fails it later with a puzzling status. So every wait for a started server to
//! listen also asks `/proc` which process holds the listening socket.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// Waits until `addr` accepts TCP connections (for at most `limit`), then checks with
/// [`check_listener`] that `child` (or one of its descendants) is what listens there.
///
/// `Err` says why not: `child` exited first, the wait ran out, or another process answers
/// (named, with its command line). Callers add the server's name and log.
pub fn wait_listening(child: &mut Child, addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return check_listener(addr, child.id());
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(format!(
                    "pid {} exited ({status}) before listening on {addr}",
                    child.id()
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for pid {}: {e}", child.id())),
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "pid {} did not listen on {addr} within {limit:?}",
                child.id()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that the TCP listener answering `addr` is held by `pid` or one of its
/// descendants (a server may hand its socket to worker processes).
///
/// Read from `/proc/net/tcp`, `/proc/net/tcp6` and `/proc/<pid>/fd`. When no listener for
/// `addr` is in those tables (another network namespace) there is nothing to tell, and
/// this is `Ok`; a listener held by no process this user can see is an `Err`.
pub fn check_listener(addr: SocketAddr, pid: u32) -> Result<(), String> {
    for inode in answering_sockets(addr) {
        let holders = holders_of(inode);
        if holders.iter().any(|&h| descends_from(h, pid)) {
            continue;
        }
        let named: Vec<String> = holders
            .iter()
            .map(|&h| format!("pid {h} ({})", cmdline(h)))
            .collect();
        let who = if named.is_empty() {
            "a process this user cannot see".to_string()
        } else {
            named.join(", ")
        };
        return Err(format!(
            "{addr} is answered by {who}, not by pid {pid} ({}) or its children",
            cmdline(pid)
        ));
    }
    Ok(())
}

/// The inodes of the listening sockets a connection to `addr` can reach: those bound to
/// `addr` itself if there are any (the kernel prefers them), else the wildcard ones on
/// its port.
fn answering_sockets(addr: SocketAddr) -> Vec<u64> {
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .map(|t| std::fs::read_to_string(t).unwrap_or_default())
        .collect();
    answering_sockets_in(&tables, addr)
}

/// [`answering_sockets`] in the text of `/proc/net/tcp`-style tables.
fn answering_sockets_in(tables: &[String], addr: SocketAddr) -> Vec<u64> {
    let port = format!("{:04X}", addr.port());
    // /proc prints each address as 32-bit words in host order.
    let words = |octets: &[u8]| -> String {
        octets
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    };
    let (exact, wildcard): (Vec<String>, Vec<String>) = match addr.ip() {
        IpAddr::V4(ip) => (
            vec![words(&ip.octets()), words(&ip.to_ipv6_mapped().octets())],
            vec![words(&[0; 4]), words(&[0; 16])],
        ),
        IpAddr::V6(ip) => (vec![words(&ip.octets())], vec![words(&[0; 16])]),
    };
    let mut exact_inodes = Vec::new();
    let mut wildcard_inodes = Vec::new();
    for line in tables.iter().flat_map(|t| t.lines().skip(1)) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Fields: sl, local address, remote address, state (0A: listening), ..., inode.
        let (Some(local), Some(&"0A"), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
            continue;
        };
        let (Some((ip, p)), Ok(inode)) = (local.split_once(':'), inode.parse::<u64>()) else {
            continue;
        };
        if p != port {
            continue;
        }
        if exact.iter().any(|e| e == ip) {
            exact_inodes.push(inode);
        } else if wildcard.iter().any(|w| w == ip) {
            wildcard_inodes.push(inode);
        }
    }
    if exact_inodes.is_empty() {
        wildcard_inodes
    } else {
        exact_inodes
    }
}

/// Every process with an open descriptor on socket `inode` that this user can see.
fn holders_of(inode: u64) -> Vec<u32> {
    let target = format!("socket:[{inode}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: u32 = p.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(p.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str())
                })
                .then_some(pid)
        })
        .collect()
}

/// Whether `pid` is `ancestor` or one of its descendants.
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    // Bounded: a pid recycled mid-walk cannot loop it forever.
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The parent is the second field after the command, which is in parentheses and
        // may itself hold spaces or parentheses.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        match parent {
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::process::Command;
    use std::time::Duration;

    /// The parent of this test process: this process, holding a listener, descends from it.
    fn parent_pid() -> u32 {
        std::os::unix::process::parent_id()
    }

    #[test]
    fn a_listener_held_by_the_process_or_its_descendant_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        super::check_listener(addr, std::process::id()).unwrap();
        super::check_listener(addr, parent_pid()).unwrap();
    }

    #[test]
    fn a_port_answered_by_another_process_names_it() {
        // The "server" never binds, while this test holds its port: the wait must not
        // take this process for it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let result = super::wait_listening(&mut sleeper, addr, Duration::from_secs(5));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        let err = result.expect_err("a port held by another process is not the server listening");
        assert!(
            err.contains(&format!("is answered by pid {} (", std::process::id()))
                && err.contains(&format!("not by pid {} (sleep 30)", sleeper.id())),
            "{err}"
        );
    }

    /// Lines as the kernel prints them (little-endian words), trimmed to the fields read.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11
   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12
   2: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 13
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 21
   1: 0000000000000000FFFF00000100007F:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 22
";

    #[test]
    #[cfg_attr(
        target_endian = "big",
        ignore = "the tables above are as a little-endian kernel prints them"
    )]
    fn the_sockets_answering_an_address_are_exact_ones_first_then_wildcards() {
        let tables = [TCP.to_string(), TCP6.to_string()];
        let at = |a: &str| super::answering_sockets_in(&tables, a.parse().unwrap());
        // 0.0.0.0:8080 answers any address on that port.
        assert_eq!(at("127.0.0.1:8080"), [11]);
        assert_eq!(at("127.0.0.5:8080"), [11]);
        // Only the listening socket (0A), not an established one, on 127.0.0.1:8081.
        assert_eq!(at("127.0.0.1:8081"), [12]);
        assert_eq!(at("127.0.0.2:8081"), Vec::<u64>::new());
        // [::]:8082 answers IPv4 too; [::ffff:127.0.0.1]:8083 only that address.
        assert_eq!(at("127.0.0.1:8082"), [21]);
        assert_eq!(at("[::1]:8082"), [21]);
        assert_eq!(at("127.0.0.1:8083"), [22]);
        assert_eq!(at("127.0.0.2:8083"), Vec::<u64>::new());
    }

    #[test]
    fn a_server_that_exits_or_never_listens_is_reported() {
        let port = crate::free_port("127.0.0.1");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut quits = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let err = super::wait_listening(&mut quits, addr, Duration::from_secs(30)).unwrap_err();
        assert!(
            err.contains("exited") && err.contains("before listening"),
            "{err}"
        );

        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let err =
            super::wait_listening(&mut sleeper, addr, Duration::from_millis(500)).unwrap_err();
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(err.contains("did not listen"), "{err}");
    }
}

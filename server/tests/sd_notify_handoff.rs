//! What a `Type=notify` systemd unit relies on: `ringsmith-server` sends `READY=1` and
//! its pid to `NOTIFY_SOCKET` once it serves, and after SIGUSR1 the process that took
//! over the socket sends its own pid (systemd's new main pid) while the old one exits
//! cleanly; `--pid-file` follows. The socket here is a plain datagram socket in a temp
//! dir standing in for systemd's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Term(u32);
impl Drop for Term {
    fn drop(&mut self) {
        // SAFETY: signalling a process this test started.
        unsafe {
            libc::kill(self.0 as libc::pid_t, libc::SIGTERM);
        }
    }
}

fn free_port() -> u16 {
    ringsmith_testkit::free_port("127.0.0.1")
}

fn mainpid(sock: &UnixDatagram) -> u32 {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("no notification within the timeout");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    msg.lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .unwrap_or_else(|| panic!("no MAINPID in {msg:?}"))
        .parse()
        .unwrap()
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(b"HEAD /d1/0/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 ")
}

fn read_pid(p: &Path) -> u32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[test]
fn ready_and_mainpid_reach_systemd_across_a_seamless_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    std::fs::create_dir_all(tmp.path().join("srv/d1")).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = notify-test\n",
    )
    .unwrap();
    let port = free_port();
    let conf = etc.join("account-server.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {}\n\n[pipeline:main]\npipeline = account-server\n\n[app:account-server]\nuse = egg:swift#account\n",
            tmp.path().join("srv").display(),
            etc.display()
        ),
    )
    .unwrap();
    let notify_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let pid_file = tmp.path().join("account-server.pid");

    let mut child = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"))
        .arg("account-server")
        .arg(&conf)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = child.id();
    let _first_guard = Term(first);
    assert_eq!(mainpid(&sock), first);
    assert_eq!(read_pid(&pid_file), first);
    assert!(answers(port));

    // SAFETY: signalling the child started above.
    unsafe {
        libc::kill(first as libc::pid_t, libc::SIGUSR1);
    }
    let second = mainpid(&sock);
    let _second_guard = Term(second);
    assert_ne!(second, first);
    assert_eq!(read_pid(&pid_file), second);
    // The old process drains and exits on its own, successfully.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the replaced process did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(answers(port), "the replacement does not serve the port");
}

//! scripts/build-deb.sh, then the package INSTALLED SYSTEM-WIDE on this machine with
//! `dpkg -i` (root needed), its binaries run from /usr/bin, and removed with `dpkg -r`.
//! It refuses to run when a `ringsmith` package is already installed, so it never
//! replaces one it did not put there.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn installed() -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "ringsmith"]))
        .1
        .contains("install ok installed")
}

fn swift_user_exists() -> bool {
    run(Command::new("getent").args(["passwd", "swift"])).0
}

/// Removes the package however the test ends, and the `swift` user and group if the
/// package created them (a real package leaves them; this machine is left as found).
struct Remove {
    created_user: bool,
}
impl Drop for Remove {
    fn drop(&mut self) {
        // Purge: no "config-files" record of the package is left behind either.
        let _ = Command::new("dpkg").args(["-P", "ringsmith"]).output();
        if self.created_user {
            let _ = Command::new("userdel").arg("swift").output();
            let _ = Command::new("groupdel").arg("swift").output();
        }
    }
}

#[test]
fn deb_package_installs_system_wide_runs_and_removes() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "installing the package system-wide needs root"
    );
    assert!(
        !installed(),
        "a ringsmith package is already installed on this machine; remove it first"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ringsmith")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (ok, out) = run(Command::new(repo.join("scripts/build-deb.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--out")
        .arg(tmp.path())
        .arg("--fast"));
    assert!(ok, "build-deb.sh:\n{out}");
    let deb = out
        .lines()
        .find(|l| l.trim().ends_with(".deb"))
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{out}");

    let _remove = Remove {
        created_user: !swift_user_exists(),
    };
    let (ok, out) = run(Command::new("dpkg").args(["-i", &deb]));
    assert!(ok, "dpkg -i:\n{out}");
    // The units' `User=swift` exists, and owns the directory its daemons' recon cache
    // goes to.
    assert!(
        swift_user_exists(),
        "the package did not create the swift user"
    );
    let (_, owner) = run(Command::new("stat").args(["-c", "%U:%G", "/var/cache/swift"]));
    assert_eq!(owner.trim(), "swift:swift", "/var/cache/swift owner");
    let unit =
        std::fs::read_to_string("/usr/lib/systemd/system/ringsmith-proxy-server.service").unwrap();
    assert!(unit.contains("User=swift"), "{unit}");
    let version = env!("CARGO_PKG_VERSION");
    let (ok, out) = run(Command::new("/usr/bin/ringsmith").arg("--version"));
    assert!(ok && out.trim() == format!("ringsmith {version}"), "{out}");
    let (ok, out) = run(Command::new("/usr/bin/ringsmith-server").arg("--version"));
    assert!(
        ok && out.trim() == format!("ringsmith-server {version}"),
        "{out}"
    );
    for f in [
        "/usr/share/man/man1/ringsmith.1.gz",
        "/usr/share/man/man1/ringsmith-init.1.gz",
        "/usr/share/man/man1/ringsmith-server.1.gz",
        "/usr/share/bash-completion/completions/ringsmith",
        "/usr/share/zsh/vendor-completions/_ringsmith",
        "/usr/share/fish/vendor_completions.d/ringsmith.fish",
        "/usr/lib/systemd/system/ringsmith-proxy-server.service",
        "/usr/lib/systemd/system/ringsmith-object-server@.service",
        "/usr/lib/systemd/system/ringsmith-object-replicator@.service",
        "/usr/lib/systemd/system/ringsmith.target",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/ringsmith").unwrap();
    assert!(
        bash.contains("init"),
        "bash completion lacks the init command"
    );
    // The installed ringsmith finds the installed ringsmith-server (for init).
    let etc = tmp.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("proxy-server.conf"), "[DEFAULT]\n").unwrap();
    let (ok, out) = run(Command::new("/usr/bin/ringsmith")
        .args(["init", "proxy", "status", "--swift-dir"])
        .arg(&etc)
        .arg("--run-dir")
        .arg(tmp.path().join("run")));
    assert!(!ok && out.contains("No proxy-server running"), "{out}");

    let (ok, out) = run(Command::new("dpkg").args(["-r", "ringsmith"]));
    assert!(ok, "dpkg -r:\n{out}");
    assert!(!Path::new("/usr/bin/ringsmith").exists());
    assert!(!Path::new("/usr/lib/systemd/system/ringsmith-proxy-server.service").exists());
    assert!(!installed());
    let (ok, out) = run(Command::new("dpkg").args(["-P", "ringsmith"]));
    assert!(ok, "dpkg -P:\n{out}");
    let (_, status) = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "ringsmith"]));
    assert!(!status.contains("config-files"), "{status}");
}

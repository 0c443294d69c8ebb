//! Interop: the real Swift 2.38.3 proxy (from the virtualenv) in front of Ringsmith's
//! object, container and account servers, rings built by Swift's `swift-ring-builder`,
//! driven by python-swiftclient's `swift` CLI; then Swift's own tools against our disks
//! (`swift-object-info`, `swift-container-info`) and the real `swift-recon` against our
//! nodes. Never skips: a missing virtualenv is a failure (`ringsmith_testkit`).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ringsmith_testkit::{swift_bin, swift_venv};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_ringsmith-server");

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    out
}

fn must(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn venv_cmd(name: &str, cwd: &Path) -> Command {
    let mut c = Command::new(swift_bin(name));
    let path = format!(
        "{}:{}",
        swift_venv().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("PATH", path).current_dir(cwd);
    c
}

struct Node {
    kind: &'static str,
    ip: &'static str,
    port: u16,
    device: &'static str,
}

fn build_ring(etc: &Path, name: &str, replicas: u32, nodes: &[&Node]) {
    let builder = format!("{name}.builder");
    must(venv_cmd("swift-ring-builder", etc).args([
        &builder,
        "create",
        "6",
        &replicas.to_string(),
        "1",
    ]));
    for n in nodes {
        must(venv_cmd("swift-ring-builder", etc).args([
            &builder,
            "add",
            &format!("r1z1-{}:{}/{}", n.ip, n.port, n.device),
            "100",
        ]));
    }
    // Exit status 1 is Swift's "warning" (e.g. balance); the ring file is what matters.
    let out = run(venv_cmd("swift-ring-builder", etc).args([&builder, "rebalance"]));
    assert!(
        etc.join(format!("{name}.ring.gz")).exists(),
        "rebalance of {name} wrote no ring: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fernet_key() -> String {
    use rand::RngCore;
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    // urlsafe base64 without a dependency: a tiny encoder.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in k.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_proxy_conf(etc: &Path, port: u16) -> PathBuf {
    let p = etc.join("proxy-server.conf");
    std::fs::write(
        &p,
        format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nswift_dir = {etc}\nlog_level = INFO\n\n\
             [pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats tempauth copy slo dlo proxy-logging proxy-server\n\n\
             [filter:tempauth]\nuse = egg:swift#tempauth\nfernet_key_k1 = {key}\nactive_fernet_key_id = k1\nuser_test_tester = testing .admin\n\n\
             [app:proxy-server]\nuse = egg:swift#proxy\nallow_account_management = true\naccount_autocreate = true\nnode_timeout = 5\n\n\
             [filter:catch_errors]\nuse = egg:swift#catch_errors\n[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\
             [filter:listing_formats]\nuse = egg:swift#listing_formats\n[filter:copy]\nuse = egg:swift#copy\n\
             [filter:slo]\nuse = egg:swift#slo\n[filter:dlo]\nuse = egg:swift#dlo\n",
            etc = etc.display(),
            key = fernet_key()
        ),
    )
    .unwrap();
    p
}

#[test]
fn swift_proxy_and_tools_work_against_ringsmith_storage_nodes() {
    swift_venv();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let etc = root.join("etc");
    let cache = root.join("cache");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    write_swift_conf(&etc);

    let nodes = [
        Node {
            kind: "object",
            ip: "127.0.0.2",
            port: free_port("127.0.0.2"),
            device: "d1",
        },
        Node {
            kind: "object",
            ip: "127.0.0.5",
            port: free_port("127.0.0.5"),
            device: "d2",
        },
        Node {
            kind: "container",
            ip: "127.0.0.3",
            port: free_port("127.0.0.3"),
            device: "d3",
        },
        Node {
            kind: "account",
            ip: "127.0.0.4",
            port: free_port("127.0.0.4"),
            device: "d4",
        },
    ];
    build_ring(&etc, "object", 2, &[&nodes[0], &nodes[1]]);
    build_ring(&etc, "container", 1, &[&nodes[2]]);
    build_ring(&etc, "account", 1, &[&nodes[3]]);

    let mut procs = Vec::new();
    let mut object_confs = Vec::new();
    for n in &nodes {
        let devices = root.join(format!("srv-{}", n.ip));
        std::fs::create_dir_all(devices.join(n.device)).unwrap();
        let conf = write_server_conf(&etc, n.kind, n.ip, n.port, &devices, &cache);
        if n.kind == "object" {
            object_confs.push(conf.clone());
        }
        let mut cmd = Command::new(BIN);
        cmd.arg(n.kind).arg("-c").arg(&conf);
        let mut p = Proc::spawn(
            &format!("ringsmith {} {}", n.kind, n.ip),
            cmd,
            root.join(format!("{}-{}.log", n.kind, n.ip)),
        );
        p.wait_listening(
            format!("{}:{}", n.ip, n.port).parse().unwrap(),
            Duration::from_secs(20),
        );
        procs.push(p);
    }
    let proxy_port = free_port("127.0.0.1");
    let proxy_conf = write_proxy_conf(&etc, proxy_port);
    let mut cmd = venv_cmd("swift-proxy-server", root);
    cmd.arg(&proxy_conf).arg("-v");
    let mut proxy = Proc::spawn("swift-proxy-server", cmd, root.join("proxy.log"));
    let proxy_addr: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    proxy.wait_listening(proxy_addr, Duration::from_secs(60));

    let logs = |procs: &Vec<Proc>, proxy: &Proc| {
        let mut s = format!("--- proxy log:\n{}\n", proxy.log_text());
        for p in procs {
            s.push_str(&format!("--- {} log:\n{}\n", p.name, p.log_text()));
        }
        s
    };
    let auth = format!("http://127.0.0.1:{proxy_port}/auth/v1.0");
    let swift = |args: &[&str]| -> Output {
        let mut c = venv_cmd("swift", root);
        c.args(["-A", &auth, "-U", "test:tester", "-K", "testing"])
            .args(args);
        run(&mut c)
    };
    let ok = |args: &[&str], procs: &Vec<Proc>, proxy: &Proc| -> String {
        let out = swift(args);
        assert!(
            out.status.success(),
            "swift {args:?} failed: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs(procs, proxy)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Upload a 3 MB object and a small one, with metadata.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("small.txt"), b"hello from swiftclient\n").unwrap();
    ok(&["post", "cont1"], &procs, &proxy);
    ok(
        &["upload", "cont1", "big.bin", "--object-name", "dir/big.bin"],
        &procs,
        &proxy,
    );
    ok(&["upload", "cont1", "small.txt"], &procs, &proxy);
    ok(
        &["post", "cont1", "small.txt", "-m", "color:blue"],
        &procs,
        &proxy,
    );

    let listing = ok(&["list", "cont1"], &procs, &proxy);
    assert_eq!(listing, "dir/big.bin\nsmall.txt\n");
    let listing = ok(&["list", "cont1", "--delimiter", "/"], &procs, &proxy);
    assert_eq!(listing, "dir/\nsmall.txt\n");
    assert_eq!(ok(&["list"], &procs, &proxy), "cont1\n");

    let stat = ok(&["stat", "cont1", "small.txt"], &procs, &proxy);
    assert!(stat.contains("Meta Color: blue"), "{stat}");
    assert!(stat.contains("Content Length: 23"), "{stat}");
    let stat = ok(&["stat", "cont1"], &procs, &proxy);
    assert!(stat.contains("Objects: 2"), "{stat}");
    assert!(
        stat.contains(&format!("Bytes: {}", 3_000_000 + 23)),
        "{stat}"
    );
    let stat = ok(&["stat"], &procs, &proxy);
    assert!(stat.contains("Containers: 1"), "{stat}");

    ok(
        &["download", "cont1", "dir/big.bin", "-o", "big.down"],
        &procs,
        &proxy,
    );
    assert!(
        std::fs::read(root.join("big.down")).unwrap() == big,
        "downloaded bytes differ"
    );

    // Both object replicas exist on our disks, readable by Swift's own tool.
    let part_dirs: Vec<PathBuf> = ["127.0.0.2/d1", "127.0.0.5/d2"]
        .iter()
        .map(|d| root.join(format!("srv-{d}")).join("objects"))
        .collect();
    let mut data_files = Vec::new();
    for p in &part_dirs {
        let found = find_files(p, ".data");
        assert_eq!(found.len(), 2, "{}: {found:?}", p.display());
        data_files.extend(found);
    }
    for f in &data_files {
        let out = must(
            venv_cmd("swift-object-info", root)
                .arg("--swift-dir")
                .arg(&etc)
                .arg(f),
        );
        assert!(
            out.contains("(valid)"),
            "swift-object-info {}:\n{out}",
            f.display()
        );
    }
    let dbs = find_files(&root.join("srv-127.0.0.3/d3/containers"), ".db");
    assert_eq!(dbs.len(), 1);
    let out = must(
        venv_cmd("swift-container-info", root)
            .arg("--swift-dir")
            .arg(&etc)
            .arg(&dbs[0]),
    );
    assert!(out.contains("Object Count: 2"), "{out}");

    // Delete everything through the proxy.
    ok(&["delete", "cont1", "dir/big.bin"], &procs, &proxy);
    assert_eq!(ok(&["list", "cont1"], &procs, &proxy), "small.txt\n");
    ok(&["delete", "cont1"], &procs, &proxy);
    assert_eq!(ok(&["list"], &procs, &proxy), "");
    let out = swift(&["stat", "cont1"]);
    assert!(!out.status.success(), "container still there after delete");

    // The real swift-recon against our nodes.
    let mut recon = venv_cmd("swift-recon", root);
    recon.arg("--swiftdir").arg(&etc).args([
        "object",
        "container",
        "account",
        "-d",
        "-u",
        "-q",
        "-l",
        "-r",
        "-T",
        "--sockstat",
        "--driveaudit",
        "--swift-versions",
        "--validate-servers",
    ]);
    let out = must(&mut recon);
    for want in [
        "Versions matched (2.38.3)",
        "Disk usage: space used:",
        "[quarantined_objects] low: 0",
        "[tcp_in_use]",
        "Validating server type 'object' on 2 hosts...\n2/2 hosts ok",
        "Validating server type 'container' on 1 hosts...\n1/1 hosts ok",
        "Validating server type 'account' on 1 hosts...\n1/1 hosts ok",
    ] {
        assert!(
            out.contains(want),
            "swift-recon output lacks {want:?}:\n{out}"
        );
    }
    assert!(!out.contains("Not mounted"), "{out}");
    assert!(!out.contains("Traceback"), "{out}");
    // Swift's recon-cron counts async_pendings on our disks into the cache we serve.
    for conf in &object_confs {
        must(venv_cmd("swift-recon-cron", root).arg(conf));
    }
    let mut recon = venv_cmd("swift-recon", root);
    recon.arg("--swiftdir").arg(&etc).args(["object", "-a"]);
    let out = must(&mut recon);
    assert!(out.contains("[async_pending] low: 0, high: 0, avg: 0.0, total: 0, Failed: 0.0%, no_result: 0, reported: 2"), "{out}");

    drop(proxy);
    drop(procs);
}

fn find_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

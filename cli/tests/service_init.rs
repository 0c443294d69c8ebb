//! `ringsmith init` (swift-init) over `/etc/swift`-style config trees: a three-node
//! cluster on 127.0.0.x started from the trees alone, used through the proxy, reloaded
//! under load with zero failed requests, checked with `status`, and stopped.
//!
//! The configs and rings come from `ringsmith cluster up --no-start`; each node then gets
//! its own tree in a temp dir, laid out the ways swift-init finds them: a per-process file
//! (`object-server/1.conf`), a `.conf.d/` directory (`account-server.conf.d/`, whose
//! second file overrides `swift_dir`), and a plain file (`container-server.conf`).

mod cluster_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_support::{free_base, free_port, header, http, ringsmith, server_bin, text, try_http};

struct Node {
    swift_dir: PathBuf,
    run_dir: PathBuf,
    log_dir: PathBuf,
}

impl Node {
    fn init(&self, args: &[&str]) -> (bool, String) {
        let o = ringsmith()
            .arg("init")
            .arg("--swift-dir")
            .arg(&self.swift_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .arg("--log-dir")
            .arg(&self.log_dir)
            .arg("--server-bin")
            .arg(server_bin())
            .args(args)
            .output()
            .unwrap();
        (o.status.success(), text(&o))
    }

    fn pid(&self, rel: &str) -> u32 {
        std::fs::read_to_string(self.run_dir.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// Stops every node however the test ends.
struct StopAll<'a>(&'a [Node]);
impl Drop for StopAll<'_> {
    fn drop(&mut self) {
        for n in self.0 {
            let _ = n.init(&["all", "stop", "-k", "10", "--kill-after-timeout"]);
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z'))
    })
}

/// Copies a generated config, pointing `swift_dir` at the node's own tree.
fn copy_conf(from: &Path, to: &Path, gen_etc: &Path, swift_dir: &Path) {
    let text = std::fs::read_to_string(from).unwrap();
    let text = text.replace(
        &format!("swift_dir = {}", gen_etc.display()),
        &format!("swift_dir = {}", swift_dir.display()),
    );
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, text).unwrap();
}

fn lay_out_nodes(tmp: &Path, proxy_port: u16, base: u16) -> Vec<Node> {
    let gen = tmp.join("gen");
    let up = ringsmith()
        .args([
            "cluster",
            "up",
            "--no-start",
            "--nodes",
            "3",
            "--part-power",
            "8",
        ])
        .arg("--dir")
        .arg(&gen)
        .args(["--proxy-port", &proxy_port.to_string()])
        .args(["--base-port", &base.to_string()])
        .arg("--server-bin")
        .arg(server_bin())
        .output()
        .unwrap();
    assert!(up.status.success(), "cluster up --no-start:\n{}", text(&up));
    let gen_etc = gen.join("etc");
    let mut nodes = Vec::new();
    for n in 0..3 {
        let root = tmp.join(format!("node{n}"));
        let etc = root.join("etc/swift");
        std::fs::create_dir_all(&etc).unwrap();
        for entry in std::fs::read_dir(&gen_etc).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name == "swift.conf" || name.ends_with(".ring.gz") {
                std::fs::copy(&p, etc.join(&name)).unwrap();
            }
        }
        let node_gen = gen_etc.join(format!("node{n}"));
        copy_conf(
            &node_gen.join("object-server.conf"),
            &etc.join("object-server/1.conf"),
            &gen_etc,
            &etc,
        );
        copy_conf(
            &node_gen.join("container-server.conf"),
            &etc.join("container-server.conf"),
            &gen_etc,
            &etc,
        );
        // The generated file unchanged, then an override: the later file wins.
        let account_d = etc.join("account-server.conf.d");
        std::fs::create_dir_all(&account_d).unwrap();
        std::fs::copy(
            node_gen.join("account-server.conf"),
            account_d.join("10-base.conf"),
        )
        .unwrap();
        std::fs::write(
            account_d.join("20-local.conf"),
            format!("[DEFAULT]\nswift_dir = {}\n", etc.display()),
        )
        .unwrap();
        if n == 0 {
            copy_conf(
                &gen_etc.join("proxy-server.conf"),
                &etc.join("proxy-server.conf"),
                &gen_etc,
                &etc,
            );
        }
        nodes.push(Node {
            swift_dir: etc,
            run_dir: root.join("run/swift"),
            log_dir: root.join("log"),
        });
    }
    // The nodes must not lean on the generated directory's configs or rings.
    std::fs::rename(&gen_etc, gen.join("etc.moved-away")).unwrap();
    nodes
}

fn auth(proxy: &str) -> (String, String) {
    let (status, head, _) = http(
        proxy,
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        b"",
    );
    assert_eq!(status, 200, "auth: {head}");
    let token = header(&head, "x-auth-token").unwrap().to_string();
    let url = header(&head, "x-storage-url").unwrap().to_string();
    let path = url
        .split_once("/v1/")
        .map(|(_, p)| format!("/v1/{p}"))
        .unwrap();
    (token, path)
}

#[test]
fn init_starts_reloads_without_dropping_requests_and_stops_a_three_node_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let proxy_port = free_port("127.0.0.1");
    let base = free_base();
    let nodes = lay_out_nodes(tmp.path(), proxy_port, base);
    let _stop = StopAll(&nodes);

    // Start each node from its tree alone.
    for (i, node) in nodes.iter().enumerate() {
        let (ok, out) = node.init(&["all", "start"]);
        assert!(ok, "node{i} all start:\n{out}");
        let etc = node.swift_dir.display();
        assert!(
            out.contains(&format!(
                "Starting object-server...({etc}/object-server/1.conf)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "Starting object-replicator...({etc}/object-server/1.conf)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "Starting account-server...({etc}/account-server.conf.d)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "Starting container-updater...({etc}/container-server.conf)"
            )),
            "{out}"
        );
        assert_eq!(out.contains("Starting proxy-server"), i == 0, "{out}");
        // Swift's pid file layout.
        for rel in [
            "object-server/1.pid",
            "object-replicator/1.pid",
            "account-server.pid.d",
            "container-server.pid",
        ] {
            assert!(alive(node.pid(rel)), "node{i} {rel}");
        }
    }
    // A second start refuses, with swift-init's words and exit code.
    let (ok, out) = nodes[1].init(&["object-server", "start"]);
    assert!(
        !ok && out.contains("object-server already started..."),
        "{out}"
    );

    let (ok, out) = nodes[0].init(&["main", "status"]);
    assert!(ok, "{out}");
    let proxy_pid = nodes[0].pid("proxy-server.pid");
    assert!(
        out.contains(&format!(
            "proxy-server running ({proxy_pid} - {}/proxy-server.conf)",
            nodes[0].swift_dir.display()
        )),
        "{out}"
    );

    // Use it.
    let proxy = format!("127.0.0.1:{proxy_port}");
    let (token, account) = auth(&proxy);
    let t = [("X-Auth-Token", token.as_str())];
    assert_eq!(http(&proxy, "PUT", &format!("{account}/c"), &t, b"").0, 201);
    assert_eq!(
        http(&proxy, "PUT", &format!("{account}/c/o"), &t, b"hello init").0,
        201
    );
    let (status, _, body) = http(&proxy, "GET", &format!("{account}/c/o"), &t, b"");
    assert_eq!((status, body.as_slice()), (200, &b"hello init"[..]));

    // Reload everything while clients keep writing and reading through the proxy.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
        let (proxy, token, account) = (proxy.clone(), token.clone(), account.clone());
        workers.push(std::thread::spawn(move || {
            let t = [("X-Auth-Token", token.as_str())];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("{account}/c/w{w}-{i}");
                let body = format!("body {w} {i}");
                let put = try_http(
                    &proxy,
                    "PUT",
                    &path,
                    &t,
                    body.as_bytes(),
                    Duration::from_secs(30),
                );
                let get = try_http(&proxy, "GET", &path, &t, b"", Duration::from_secs(30));
                match (put, get) {
                    (Ok((201, _, _)), Ok((200, _, b))) if b == body.as_bytes() => {
                        done.fetch_add(2, Ordering::Relaxed);
                    }
                    other => failures.lock().unwrap().push(format!("{path}: {other:?}")),
                }
                i += 1;
            }
        }));
    }
    let wait_for_requests = |n: usize| {
        let target = done.load(Ordering::Relaxed) + n;
        while done.load(Ordering::Relaxed) < target {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_requests(40);
    let old_object = nodes[1].pid("object-server/1.pid");
    let old_replicator = nodes[2].pid("object-replicator/1.pid");
    let (ok0, out0) = nodes[0].init(&["main", "reload"]);
    wait_for_requests(40);
    let (ok1, out1) = nodes[1].init(&["main", "reload"]);
    wait_for_requests(40);
    let (ok2, out2) = nodes[2].init(&["all", "reload"]);
    wait_for_requests(40);
    // Back to back: the proxy reloaded again and again under the same load.
    let mut repeated = Vec::new();
    for _ in 0..5 {
        repeated.push(nodes[0].init(&["proxy", "reload"]));
        wait_for_requests(10);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(ok0, "node0 reload:\n{out0}");
    assert!(ok1, "node1 reload:\n{out1}");
    assert!(ok2, "node2 reload:\n{out2}");
    for (round, (ok, out)) in repeated.iter().enumerate() {
        assert!(ok, "proxy reload round {round}:\n{out}");
    }
    let failures = failures.lock().unwrap();
    let total = done.load(Ordering::Relaxed);
    eprintln!(
        "{total} requests through eight reloads, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} requests failed during reload: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(total >= 160, "{total}");

    // New processes, named by the pid files; the old ones drained and exited.
    let new_proxy = nodes[0].pid("proxy-server.pid");
    assert_ne!(new_proxy, proxy_pid);
    assert!(
        out0.contains(&format!("proxy-server reloaded ({proxy_pid} -> ")),
        "{out0}"
    );
    assert_ne!(nodes[1].pid("object-server/1.pid"), old_object);
    assert_ne!(nodes[2].pid("object-replicator/1.pid"), old_replicator);
    for pid in [proxy_pid, old_object, old_replicator] {
        for _ in 0..100 {
            if !alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!alive(pid), "old process {pid} still running");
    }

    // A reload onto a broken config keeps the old process serving and says so.
    let proxy_conf = nodes[0].swift_dir.join("proxy-server.conf");
    let good = std::fs::read_to_string(&proxy_conf).unwrap();
    std::fs::write(
        &proxy_conf,
        good.replace("[DEFAULT]\n", "[DEFAULT]\nworker_threads = many\n"),
    )
    .unwrap();
    let (ok, out) = nodes[0].init(&["proxy", "reload", "-k", "5"]);
    assert!(!ok, "{out}");
    assert!(out.contains("was not replaced"), "{out}");
    assert_eq!(nodes[0].pid("proxy-server.pid"), new_proxy);
    assert_eq!(
        http(&proxy, "GET", &format!("{account}/c/o"), &t, b"").0,
        200
    );
    std::fs::write(&proxy_conf, good).unwrap();

    // -c N picks one config; status of every node says all is running.
    let (ok, out) = nodes[1].init(&["object-replicator", "status", "-c", "1"]);
    assert!(ok && out.contains("object-replicator running ("), "{out}");
    // (`all status` fails, as swift-init's does: no config has an object-expirer.)
    for (i, node) in nodes.iter().enumerate() {
        let (ok, out) = node.init(&["main", "object-*", "container-updater", "status"]);
        assert!(out.contains("No object-expirer running"), "{out}");
        assert!(!ok, "node{i} status:\n{out}");
        let (ok, out) = node.init(&[
            "account",
            "container",
            "object",
            "object-replicator",
            "container-updater",
            "status",
        ]);
        assert!(ok, "node{i} status:\n{out}");
    }

    // Stop: every process goes, pid files too, and status then fails.
    let mut pids = Vec::new();
    for node in &nodes {
        pids.push(node.pid("object-server/1.pid"));
        pids.push(node.pid("container-updater.pid"));
    }
    for (i, node) in nodes.iter().enumerate() {
        let (ok, out) = node.init(&["all", "stop"]);
        assert!(ok, "node{i} stop:\n{out}");
        assert!(out.contains("object-server ("), "{out}");
        assert!(out.contains(") appears to have stopped"), "{out}");
        let (ok, out) = node.init(&["main", "status"]);
        assert!(!ok, "{out}");
        assert!(out.contains("No object-server running"), "{out}");
        assert!(!node.run_dir.join("object-server/1.pid").exists());
    }
    for pid in pids {
        assert!(!alive(pid), "{pid} still running after stop");
    }
    let (ok, out) = nodes[0].init(&["proxy", "stop"]);
    assert!(!ok && out.contains("No proxy-server running"), "{out}");

    // `once`: one pass of a daemon, waited for; the HTTP servers are never "once".
    let (ok, out) = nodes[1].init(&["object-updater", "once"]);
    assert!(ok, "{out}");
    let etc = nodes[1].swift_dir.display();
    assert!(
        out.contains(&format!(
            "Running object-updater once...({etc}/object-server/1.conf)"
        )),
        "{out}"
    );
    let (ok, out) = nodes[1].init(&["object-updater", "status"]);
    assert!(!ok && out.contains("No object-updater running"), "{out}");

    // `no-daemon`: in the foreground until the server exits (here: SIGTERM).
    let n0 = &nodes[0];
    let mut fg = ringsmith()
        .arg("init")
        .arg("--swift-dir")
        .arg(&n0.swift_dir)
        .arg("--run-dir")
        .arg(&n0.run_dir)
        .arg("--server-bin")
        .arg(server_bin())
        .args(["proxy", "no-daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = n0.run_dir.join("proxy-server.pid");
    let mut served = false;
    for _ in 0..300 {
        if pid_file.exists()
            && try_http(
                &proxy,
                "GET",
                "/healthcheck",
                &[],
                b"",
                Duration::from_secs(5),
            )
            .is_ok()
        {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = n0.pid("proxy-server.pid");
    // SAFETY: the proxy this test started, named by its pid file.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let status = fg.wait().unwrap();
    assert!(served, "proxy no-daemon never answered");
    assert!(status.success(), "{status}");
}

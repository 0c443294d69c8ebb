//! A throwaway cluster for the proxy's integration tests: real Swift 2.38.3 account,
//! container and object servers (from the test virtualenv) on 127.0.0.x, rings built by
//! Swift's own `swift-ring-builder`, and Ringsmith's proxy in front, all under a temp dir.
//!
//! Every process started is killed when the [`Cluster`] drops, and every wait is bounded.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct StorageNode {
    pub ip: String,
    /// object, container, account
    pub ports: [u16; 3],
    /// Its object, container and account servers (in `ports` order), then any proxies
    /// started on it.
    pub children: Vec<Child>,
}

/// Whose storage servers run on the nodes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Storage {
    Swift,
    Ringsmith,
}

pub struct Cluster {
    pub storage: Storage,
    pub dir: tempfile::TempDir,
    pub nodes: Vec<StorageNode>,
    pub proxy: Option<Child>,
    pub proxy_port: u16,
    /// Start Swift's servers so that they read storage policies from this cluster's
    /// `swift.conf` (see [`swift_with_cluster_policies`]).
    pub cluster_policies: bool,
}

/// Runs one of the virtualenv's Swift scripts with `swift.conf` taken from `etc`:
/// Swift's servers read policies from `/etc/swift/swift.conf` whatever their
/// `swift_dir` (only the hash secrets follow it), so a wrapper points Swift at
/// `<etc>/swift.conf` and reloads the policies before the script's `main`.
pub fn swift_with_cluster_policies(script: &str, etc: &Path) -> Command {
    let mut c = Command::new(ringsmith_testkit::swift_venv().join("bin/python3"));
    c.arg("-c")
        .arg(
            "import sys, runpy\nimport swift.common.utils as u\n\
             u.SWIFT_CONF_FILE = sys.argv[1] + '/swift.conf'\n\
             from swift.common import storage_policy\n\
             storage_policy.reload_storage_policies()\n\
             script = sys.argv[2]\n\
             sys.argv = [script] + sys.argv[3:]\n\
             runpy.run_path(script, run_name='__main__')\n",
        )
        .arg(etc)
        .arg(ringsmith_testkit::swift_bin(script));
    c
}

pub use ringsmith_testkit::free_port;

/// Waits (60 s at most) until `child`, the server `what`, listens on `addr`; panics with
/// its log when it does not, or when another process answers there.
pub fn wait_listening(child: &mut Child, addr: &str, what: &str, log: &Path) {
    let sa: SocketAddr = addr.parse().unwrap();
    if let Err(e) = ringsmith_testkit::wait_listening(child, sa, Duration::from_secs(60)) {
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{what}: {e}; log:\n{tail}");
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub const USERS: &str = "user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2 .admin
";

impl Cluster {
    /// `n` storage nodes (one device each, one zone each) and 3-replica rings
    /// (or `n` replicas when fewer nodes).
    pub fn start(n: usize, proxy_extra: &str) -> Cluster {
        Self::start_with(Storage::Swift, n, proxy_extra)
    }

    pub fn start_with(storage: Storage, n: usize, proxy_extra: &str) -> Cluster {
        Self::start_in(storage, n, proxy_extra, tempfile::tempdir().unwrap())
    }

    /// [`Cluster::start_with`] with its configs, logs and devices under `dir`.
    pub fn start_in(
        storage: Storage,
        n: usize,
        proxy_extra: &str,
        dir: tempfile::TempDir,
    ) -> Cluster {
        let venv = ringsmith_testkit::swift_venv();
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(dir.path().join("log")).unwrap();
        std::fs::write(
            etc.join("swift.conf"),
            "[swift-hash]\nswift_hash_path_prefix = rsprefix\nswift_hash_path_suffix = rssuffix\n\n[storage-policy:0]\nname = gold\ndefault = yes\n",
        )
        .unwrap();
        let mut nodes = Vec::new();
        // Distinct loopback addresses per node, offset by pid so parallel test binaries
        // rarely share one (ports are free-picked anyway).
        let base = 20 + (std::process::id() % 200) as usize;
        for i in 0..n {
            let ip = format!("127.0.{}.{}", 1 + i, base);
            let ports = [free_port(&ip), free_port(&ip), free_port(&ip)];
            std::fs::create_dir_all(dir.path().join(format!("srv/node{i}/d{i}"))).unwrap();
            nodes.push(StorageNode {
                ip,
                ports,
                children: Vec::new(),
            });
        }
        let replicas = n.min(3);
        let builder = venv.join("bin/swift-ring-builder");
        for (k, kind) in ["object", "container", "account"].iter().enumerate() {
            let b = etc.join(format!("{kind}.builder"));
            run_ok(Command::new(&builder).arg(&b).args([
                "create",
                "8",
                &replicas.to_string(),
                "1",
            ]));
            for (i, node) in nodes.iter().enumerate() {
                run_ok(Command::new(&builder).arg(&b).args([
                    "add",
                    &format!("r1z{}-{}:{}/d{i}", i + 1, node.ip, node.ports[k]),
                    "100",
                ]));
            }
            run_ok(Command::new(&builder).arg(&b).arg("rebalance"));
        }
        let mut cluster = Cluster {
            storage,
            dir,
            nodes,
            proxy: None,
            proxy_port: 0,
            cluster_policies: false,
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        for i in 0..n {
            cluster.wait_node(i);
        }
        cluster.start_proxy(proxy_extra);
        cluster
    }

    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    pub fn start_node(&mut self, i: usize) {
        let venv = ringsmith_testkit::swift_venv();
        let root = self.dir.path().to_path_buf();
        let node = &mut self.nodes[i];
        for (k, kind) in ["object", "container", "account"].iter().enumerate() {
            let conf = root.join(format!("etc/{kind}-server-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "[DEFAULT]\ndevices = {root}/srv/node{i}\nmount_check = false\ndisable_fallocate = true\nbind_ip = {ip}\nbind_port = {port}\nworkers = 0\nswift_dir = {root}/etc\nlog_level = WARNING\n\n[pipeline:main]\npipeline = {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n\n[{kind}-replicator]\n[{kind}-updater]\n[{kind}-auditor]\n",
                    root = root.display(),
                    ip = node.ip,
                    port = node.ports[k]
                ),
            )
            .unwrap();
            let log = std::fs::File::create(root.join(format!("log/{kind}-{i}.log"))).unwrap();
            let mut cmd = match self.storage {
                Storage::Swift if self.cluster_policies => {
                    let mut c = swift_with_cluster_policies(
                        &format!("swift-{kind}-server"),
                        &root.join("etc"),
                    );
                    c.arg(&conf).arg("-v");
                    c
                }
                Storage::Swift => {
                    let mut c = Command::new(venv.join(format!("bin/swift-{kind}-server")));
                    c.arg(&conf).arg("-v");
                    c
                }
                Storage::Ringsmith => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"));
                    c.arg(kind).arg("-c").arg(&conf);
                    c
                }
            };
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start a Swift storage server");
            node.children.push(child);
        }
    }

    pub fn wait_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        for (k, kind) in ["object", "container", "account"].iter().enumerate() {
            wait_listening(
                &mut node.children[k],
                &format!("{}:{}", node.ip, node.ports[k]),
                &format!("Swift {kind} server {i}"),
                &self.dir.path().join(format!("log/{kind}-{i}.log")),
            );
        }
    }

    /// Kills every server of storage node `i` (SIGKILL: a crash, not a shutdown).
    pub fn kill_node(&mut self, i: usize) {
        for c in &mut self.nodes[i].children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.nodes[i].children.clear();
    }

    /// The proxy's config; `extra` is appended verbatim (it may reopen any section; lines
    /// before any header land in `[filter:tempauth]`).
    pub fn proxy_conf(&self, extra: &str) -> String {
        self.proxy_conf_on(self.proxy_port, extra)
    }

    pub fn proxy_conf_on(&self, port: u16, extra: &str) -> String {
        format!(
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {etc}\n\n[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats bulk tempurl tempauth formpost staticweb copy container-quotas account-quotas dlo versioned_writes symlink proxy-logging proxy-server\n\n{FILTERS}[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\nallow_account_management = true\nnode_timeout = 3\n\n[filter:tempauth]\nuse = egg:swift#tempauth\ntoken_secret = test-secret\n{USERS}\n{extra}\n",
            etc = self.etc().display(),
            FILTERS = SWIFT_SAMPLE_FILTERS,
        )
    }

    /// Another Ringsmith proxy on the same cluster (say, with other options); returns
    /// its port. Killed with the cluster.
    pub fn start_another_proxy(&mut self, name: &str, extra: &str) -> u16 {
        let port = free_port("127.0.0.1");
        let conf = self.etc().join(format!("{name}.conf"));
        std::fs::write(&conf, self.proxy_conf_on(port, extra)).unwrap();
        let logp = self.dir.path().join(format!("log/{name}.log"));
        let log = std::fs::File::create(&logp).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"))
            .args(["proxy", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ringsmith-server proxy");
        self.nodes[0].children.push(child);
        let child = self.nodes[0].children.last_mut().unwrap();
        wait_listening(child, &format!("127.0.0.1:{port}"), name, &logp);
        port
    }

    /// A proxy with a config of the test's own: `body` (pipeline and sections, the app's
    /// included) after a `[DEFAULT]` naming this cluster. Ringsmith's proxy, or with
    /// `swift` Swift's own from `swift_venv`. Returns its port; killed with the cluster.
    pub fn start_proxy_with_conf(&mut self, name: &str, swift: bool, body: &str) -> u16 {
        let port = free_port("127.0.0.1");
        let conf = self.etc().join(format!("{name}.conf"));
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\n\
                 swift_dir = {etc}\nlog_level = WARNING\n\n{body}",
                etc = self.etc().display()
            ),
        )
        .unwrap();
        let logp = self.dir.path().join(format!("log/{name}.log"));
        let log = std::fs::File::create(&logp).unwrap();
        let mut cmd = if swift {
            Command::new(ringsmith_testkit::swift_bin("swift-proxy-server"))
        } else {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"));
            c.args(["proxy", "-c"]);
            c
        };
        let child = cmd
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.nodes[0].children.push(child);
        let child = self.nodes[0].children.last_mut().unwrap();
        wait_listening(child, &format!("127.0.0.1:{port}"), name, &logp);
        port
    }

    pub fn start_proxy(&mut self, extra: &str) {
        self.proxy_port = free_port("127.0.0.1");
        let conf = self.etc().join("proxy-server.conf");
        std::fs::write(&conf, self.proxy_conf(extra)).unwrap();
        let logp = self.dir.path().join("log/proxy.log");
        let log = std::fs::File::create(&logp).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ringsmith-server"))
            .args(["proxy", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ringsmith-server proxy");
        let addr = format!("127.0.0.1:{}", self.proxy_port);
        wait_listening(self.proxy.insert(child), &addr, "proxy", &logp);
    }

    /// Starts Swift's own proxy (tempauth with Fernet tokens: there is no memcached) in
    /// front of the same storage nodes; returns its port. Killed with the cluster.
    pub fn start_swift_proxy(&mut self) -> u16 {
        self.start_swift_proxy_with(DEFAULT_SWIFT_FILTERS)
    }

    /// [`Cluster::start_swift_proxy`] with another pipeline (`filters`, the app left out;
    /// each filter loads the Swift middleware of its name, `-` read as `_`).
    pub fn start_swift_proxy_with(&mut self, filters: &str) -> u16 {
        self.start_swift_proxy_impl(filters, false, "", "")
    }

    /// [`Cluster::start_swift_proxy_with`] where `own` gives some filters' sections
    /// (`[filter:NAME]` with options) and may add others (`[app:proxy-server]` not).
    pub fn start_swift_proxy_with_sections(&mut self, filters: &str, own: &str) -> u16 {
        self.start_swift_proxy_impl(filters, false, own, "")
    }

    /// [`Cluster::start_swift_proxy_with`] with `app_options` (lines) added to its
    /// `[app:proxy-server]`.
    pub fn start_swift_proxy_with_app_options(&mut self, filters: &str, app_options: &str) -> u16 {
        self.start_swift_proxy_impl(filters, false, "", app_options)
    }

    /// [`Cluster::start_swift_proxy`] whose storage policies come from this cluster's
    /// `swift.conf` ([`swift_with_cluster_policies`]).
    pub fn start_swift_proxy_with_cluster_policies(&mut self) -> u16 {
        self.start_swift_proxy_impl(DEFAULT_SWIFT_FILTERS, true, "", "")
    }

    fn start_swift_proxy_impl(
        &mut self,
        filters: &str,
        cluster_policies: bool,
        own: &str,
        app_options: &str,
    ) -> u16 {
        let port = free_port("127.0.0.1");
        let conf = self.etc().join("swift-proxy-server.conf");
        let key: String = {
            // 32 bytes, urlsafe base64: what Fernet wants.
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let raw: Vec<u8> = (0..32u32)
                .map(|i| (i.wrapping_mul(97).wrapping_add(13)) as u8)
                .collect();
            let mut out = String::new();
            for chunk in raw.chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32)
                    << (8 * (3 - chunk.len()));
                for k in 0..(chunk.len() + 1) {
                    out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
                }
            }
            while !out.len().is_multiple_of(4) {
                out.push('=');
            }
            out
        };
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nswift_dir = {etc}\nlog_level = WARNING\n\n[pipeline:main]\npipeline = {filters} proxy-server\n\n[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\nallow_account_management = true\n{app_options}\n[filter:tempauth]\nuse = egg:swift#tempauth\nfernet_key_k1 = {key}\nactive_fernet_key_id = k1\n{USERS}\n{sections}",
                etc = self.etc().display(),
                sections = swift_filter_sections(filters, own),
            ),
        )
        .unwrap();
        let logp = self.dir.path().join("log/swift-proxy.log");
        let log = std::fs::File::create(&logp).unwrap();
        let mut cmd = if cluster_policies {
            swift_with_cluster_policies("swift-proxy-server", &self.etc())
        } else {
            Command::new(ringsmith_testkit::swift_bin("swift-proxy-server"))
        };
        let child = cmd
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start swift-proxy-server");
        self.nodes[0].children.push(child);
        let child = self.nodes[0].children.last_mut().unwrap();
        wait_listening(child, &format!("127.0.0.1:{port}"), "Swift proxy", &logp);
        port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    pub fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/proxy.log")).unwrap_or_default()
    }

    /// `swift -A <auth> -U <user> -K <key> <args>` from python-swiftclient.
    pub fn swift(&self, user: &str, key: &str, args: &[&str]) -> std::process::Output {
        Command::new(ringsmith_testkit::swift_bin("swift"))
            .args([
                "-A",
                &format!("{}/auth/v1.0", self.url()),
                "-U",
                user,
                "-K",
                key,
            ])
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run python-swiftclient")
    }

    /// [`Cluster::swift`] as `test:tester`, which must succeed; its standard output.
    pub fn swift_ok(&self, args: &[&str]) -> String {
        let out = self.swift("test:tester", "testing", args);
        assert!(
            out.status.success(),
            "swift {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The Swift proxy's default test pipeline (the app left out).
const DEFAULT_SWIFT_FILTERS: &str =
    "catch_errors gatekeeper proxy-logging listing_formats tempauth copy dlo proxy-logging";

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprint!(
                "{}",
                ringsmith_testkit::log_tails(&self.dir.path().join("log"), 40)
            );
        }
        if let Some(mut p) = self.proxy.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }
}

/// Gets a token with the auth protocol, returning (token, storage url).
pub async fn login(base: &str, user: &str, key: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .get(format!("{base}/auth/v1.0"))
        .header("x-auth-user", user)
        .header("x-auth-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {user}");
    let tok = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    let url = r.headers()["x-storage-url"].to_str().unwrap().to_string();
    (tok, url)
}

/// Where most proxy tests begin: `test:tester` logged in through `base` and `container`
/// created in its account. Gives a client whose requests time out after `timeout`, the
/// token, and the storage URL.
pub async fn tester_with_container(
    base: &str,
    container: &str,
    timeout: Duration,
) -> (reqwest::Client, String, String) {
    let http = reqwest::Client::builder().timeout(timeout).build().unwrap();
    let (token, url) = login(base, "test:tester", "testing").await;
    let r = http
        .put(format!("{url}/{container}"))
        .header("x-auth-token", &token)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "PUT {url}/{container}: {}",
        r.status()
    );
    (http, token, url)
}

/// `[filter:NAME]\nuse = egg:swift#NAME` for each filter but tempauth and those `own`
/// defines, once each; then `own`. (`cache` is Swift's `memcache`.)
fn swift_filter_sections(filters: &str, own: &str) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut out: String = filters
        .split_whitespace()
        .filter(|f| *f != "tempauth" && seen.insert(*f))
        .filter(|f| !own.contains(&format!("[filter:{f}]")))
        .map(|f| {
            let egg = match f {
                "cache" => "memcache".to_string(),
                other => other.replace('-', "_"),
            };
            format!("[filter:{f}]\nuse = egg:swift#{egg}\n")
        })
        .collect();
    out.push_str(own);
    out
}

/// `[filter:...]` sections for the middlewares of the test proxy's pipeline (tempauth's
/// comes last in the file, so a test's extra lines land in it).
pub const SWIFT_SAMPLE_FILTERS: &str = "[filter:catch_errors]\nuse = egg:swift#catch_errors\n\n\
[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
[filter:healthcheck]\nuse = egg:swift#healthcheck\n\n\
[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n\
[filter:listing_formats]\nuse = egg:swift#listing_formats\n\n\
[filter:bulk]\nuse = egg:swift#bulk\n\n\
[filter:tempurl]\nuse = egg:swift#tempurl\n\n\
[filter:formpost]\nuse = egg:swift#formpost\n\n\
[filter:staticweb]\nuse = egg:swift#staticweb\n\n\
[filter:copy]\nuse = egg:swift#copy\n\n\
[filter:dlo]\nuse = egg:swift#dlo\n\n\
[filter:container-quotas]\nuse = egg:swift#container_quotas\n\n\
[filter:account-quotas]\nuse = egg:swift#account_quotas\n\n\
[filter:symlink]\nuse = egg:swift#symlink\n\n\
[filter:versioned_writes]\nuse = egg:swift#versioned_writes\nallow_versioned_writes = true\n\n";

/// One request with a token, extra headers and a body, as the proxy tests send them.
pub async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> reqwest::Response {
    let mut rb = http
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
        .header("x-auth-token", token);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.body(body).send().await.unwrap()
}

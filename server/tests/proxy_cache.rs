//! The `cache` filter on a real memcached, through the real binary: two Ringsmith proxies
//! on one memcached share tempauth tokens and see each other's container changes at once
//! (a third proxy without memcached does not); Swift 2.38.3's proxy on the same memcached
//! accepts a Ringsmith token; a memcached killed mid-test slows nothing into a failure.
//! And ratelimit: 498s and sleeps, 497 for a blacklisted account, side by side with
//! Swift's proxy given the same options.

mod proxy_common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use proxy_common::{free_port, login, send, wait_listening, Cluster};
use reqwest::Client;

/// A memcached on 127.0.0.1, killed (by its pid) when dropped.
struct Memcached {
    child: Child,
    port: u16,
}

impl Memcached {
    fn start(dir: &std::path::Path) -> Memcached {
        let port = free_port("127.0.0.1");
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "root"]);
        }
        let logp = dir.join(format!("memcached-{port}.log"));
        let log = std::fs::File::create(&logp).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("memcached must be installed (scripts/test.sh installs it)");
        // Owned before the wait, so a failed start still kills it.
        let mut memcached = Memcached { child, port };
        let addr = memcached.addr();
        wait_listening(&mut memcached.child, &addr, "memcached", &logp);
        memcached
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The raw value memcached holds for Swift's key `key` (stored under its md5).
    fn raw_get(&self, key: &str) -> Option<String> {
        use md5::{Digest, Md5};
        let hashed = hex::encode(Md5::digest(key.as_bytes()));
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.write_all(format!("get {hashed}\r\n").as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with("END") {
            return None;
        }
        let mut value = String::new();
        r.read_line(&mut value).unwrap();
        Some(value.trim_end().to_string())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Our pipeline with Swift's sample places for `cache` and `ratelimit`, and
/// container info cached for ten minutes (so only invalidation can refresh it), and
/// Swift's default node timeout of 10 s rather than the harness's 3: the storage nodes
/// are Swift's Python servers, whose first container PUT (a new database and an account
/// update) has taken over 3 s on a loaded CI machine.
fn proxy_extra(memcache_servers: Option<&str>, ratelimit: &str) -> String {
    format!(
        "[pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging cache \
         listing_formats bulk tempurl ratelimit tempauth formpost staticweb copy dlo \
         versioned_writes symlink proxy-logging proxy-server\n\n\
         [filter:cache]\nuse = egg:swift#memcache\n{servers}\n\
         [filter:ratelimit]\nuse = egg:swift#ratelimit\n{ratelimit}\n\
         [app:proxy-server]\nrecheck_container_existence = 600\nrecheck_account_existence = 600\n\
         node_timeout = 10\n",
        servers = memcache_servers
            .map(|s| format!("memcache_servers = {s}\n"))
            .unwrap_or_default(),
    )
}

async fn preflight(http: &Client, url: &str, origin: &str) -> u16 {
    http.request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_share_tokens_and_info_through_memcached() {
    let dir = tempfile::tempdir().unwrap();
    let mc = Memcached::start(dir.path());
    let mut c = Cluster::start(2, &proxy_extra(Some(&mc.addr()), ""));
    // B signs with another secret: only the shared cache can make A's tokens good there.
    let b = c.start_another_proxy(
        "proxy-b",
        &format!(
            "token_secret = other-secret\n{}",
            proxy_extra(Some(&mc.addr()), "")
        ),
    );
    let lone = c.start_another_proxy("proxy-lone", &proxy_extra(None, ""));
    let a_url = c.url();
    let b_url = format!("http://127.0.0.1:{b}");
    let lone_url = format!("http://127.0.0.1:{lone}");
    let http = Client::new();

    // A token from A is Swift's kind, in memcached under Swift's keys, and good on B.
    let (token, storage) = login(&a_url, "test:tester", "testing").await;
    let hex = token
        .strip_prefix("AUTH_tk")
        .expect("a Swift memcache token");
    assert_eq!(hex.len(), 32, "{token}");
    assert_eq!(
        mc.raw_get("AUTH_/user/test:tester").as_deref(),
        Some(format!("\"{token}\"").as_str())
    );
    let cached = mc.raw_get(&format!("AUTH_/token/{token}")).unwrap();
    assert!(
        cached.contains("test:tester") && cached.contains("AUTH_test"),
        "{cached}"
    );
    let path = storage.strip_prefix(&a_url).unwrap().to_string();
    let r = send(&http, "HEAD", &format!("{b_url}{path}"), &token, &[], "").await;
    assert_eq!(r.status(), 204, "A's token on B");
    // The lone proxy (no memcached, its own secret) knows nothing of it.
    let r = send(&http, "HEAD", &format!("{lone_url}{path}"), &token, &[], "").await;
    assert_eq!(r.status(), 401, "A's token on a proxy without the cache");
    // Logging in again on B hands out the same live token, as Swift's tempauth does.
    let (again, _) = login(&b_url, "test:tester", "testing").await;
    assert_eq!(again, token);

    // Swift's own proxy on the same memcached (found through memcache.conf) accepts it.
    std::fs::write(
        c.etc().join("memcache.conf"),
        format!("[memcache]\nmemcache_servers = {}\n", mc.addr()),
    )
    .unwrap();
    let swift = c.start_swift_proxy_with(
        "catch_errors gatekeeper proxy-logging cache listing_formats tempauth copy dlo proxy-logging",
    );
    let r = send(
        &http,
        "HEAD",
        &format!("http://127.0.0.1:{swift}{path}"),
        &token,
        &[],
        "",
    )
    .await;
    // (A fresh Swift answers an auto-created account's HEAD 200 or 204; a bad token 401.)
    assert!(
        r.status().is_success(),
        "a Ringsmith token on Swift's proxy: {}",
        r.status()
    );

    // Container info: B and the lone proxy cache the container's CORS settings...
    let cont = format!("{path}/shared");
    let r = send(
        &http,
        "PUT",
        &format!("{a_url}{cont}"),
        &token,
        &[(
            "x-container-meta-access-control-allow-origin",
            "http://one.example",
        )],
        "",
    )
    .await;
    assert!(r.status().is_success());
    for base in [&b_url, &lone_url] {
        assert_eq!(
            preflight(&http, &format!("{base}{cont}"), "http://one.example").await,
            200
        );
    }
    assert!(mc
        .raw_get(&format!("container{cont}", cont = &cont[3..]))
        .is_some());
    // ... A changes them, which drops the shared entry: B sees the change at once, the
    // lone proxy keeps its own stale copy for its ten minutes.
    let r = send(
        &http,
        "POST",
        &format!("{a_url}{cont}"),
        &token,
        &[(
            "x-container-meta-access-control-allow-origin",
            "http://two.example",
        )],
        "",
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        preflight(&http, &format!("{b_url}{cont}"), "http://two.example").await,
        200
    );
    assert_eq!(
        preflight(&http, &format!("{b_url}{cont}"), "http://one.example").await,
        401
    );
    assert_eq!(
        preflight(&http, &format!("{lone_url}{cont}"), "http://two.example").await,
        401,
        "without the shared cache the old settings stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_memcached_never_fails_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut mc = Memcached::start(dir.path());
    let rl = "container_ratelimit_0 = 100\naccount_ratelimit = 100\n";
    // A hung memcached costs each cache call its io_timeout (then the server is error
    // limited and skipped).
    let servers = format!("{}\nio_timeout = 0.3\nconnect_timeout = 0.3", mc.addr());
    let c = Cluster::start(1, &proxy_extra(Some(&servers), rl));
    let http = Client::new();
    let (token, storage) = login(&c.url(), "test:tester", "testing").await;
    assert!(send(&http, "PUT", &format!("{storage}/c"), &token, &[], "")
        .await
        .status()
        .is_success());
    // Hung: connections are accepted by the kernel, nothing answers.
    // SAFETY: signalling the memcached this test started, by its pid.
    unsafe { libc::kill(mc.child.id() as libc::pid_t, libc::SIGSTOP) };
    let (hung_token, _) = login(&c.url(), "test:tester", "testing").await;
    for i in 0..6 {
        let obj = format!("{storage}/c/h{i}");
        let r = send(&http, "PUT", &obj, &hung_token, &[], "data").await;
        assert_eq!(r.status(), 201, "PUT {i} with memcached hung");
        let r = send(&http, "GET", &obj, &hung_token, &[], "").await;
        assert_eq!(r.status(), 200);
    }
    let log = c.proxy_log();
    assert!(log.contains("timed out"), "the timeouts are logged:\n{log}");
    assert!(
        log.contains("error limiting memcached"),
        "and the server skipped:\n{log}"
    );
    mc.kill();
    // Every kind of request that uses the cache: login (tokens), object writes
    // (ratelimit counters, container info), listings, CORS (container info).
    let (token, _) = login(&c.url(), "test:tester", "testing").await;
    for i in 0..15 {
        let obj = format!("{storage}/c/o{i}");
        let r = send(&http, "PUT", &obj, &token, &[], "data").await;
        assert_eq!(r.status(), 201, "PUT {i} with memcached gone");
        let r = send(&http, "GET", &obj, &token, &[], "").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "data");
    }
    let r = send(&http, "GET", &format!("{storage}/c"), &token, &[], "").await;
    assert_eq!(r.text().await.unwrap().lines().count(), 21);
    let r = send(&http, "PUT", &format!("{storage}/c2"), &token, &[], "").await;
    assert!(r.status().is_success());
    let log = c.proxy_log();
    assert!(log.contains("memcached"), "the failures are logged:\n{log}");
}

/// Sends one warm-up PUT (so the counter starts now), then `n` at once; the statuses.
async fn burst(http: &Client, base: &str, token: &str, n: usize) -> Vec<u16> {
    let r = send(http, "PUT", &format!("{base}/burst0"), token, &[], "").await;
    assert!(r.status().is_success(), "warm-up: {}", r.status());
    let mut tasks = Vec::new();
    for i in 1..=n {
        let (http, url, token) = (http.clone(), format!("{base}/burst{i}"), token.to_string());
        tasks.push(tokio::spawn(async move {
            send(&http, "PUT", &url, &token, &[], "")
                .await
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_answers_as_swift_does() {
    let dir = tempfile::tempdir().unwrap();
    let mc = Memcached::start(dir.path());
    // One container PUT per second per account; a wait of 1.5 s or more is refused.
    let rl =
        "account_ratelimit = 1\nmax_sleep_time_seconds = 1.5\naccount_blacklist = AUTH_admin\n";
    let mut c = Cluster::start(1, &proxy_extra(Some(&mc.addr()), rl));
    let swift = c.start_swift_proxy_with_sections(
        "catch_errors gatekeeper proxy-logging cache listing_formats ratelimit tempauth copy dlo proxy-logging",
        &format!(
            "[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = {}\n\
             [filter:ratelimit]\nuse = egg:swift#ratelimit\n{rl}",
            mc.addr()
        ),
    );
    let http = Client::new();
    let ours = c.url();
    let theirs = format!("http://127.0.0.1:{swift}");

    // /info says the same.
    let info = |base: String| {
        let http = http.clone();
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}/info"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["ratelimit"].clone()
        }
    };
    assert_eq!(info(ours.clone()).await, info(theirs.clone()).await);

    // Ours limits test's containers, Swift's test2's (the counters are per account and
    // shared through memcached, so each side gets its own).
    let (t1, s1) = login(&ours, "test:tester", "testing").await;
    let ours_statuses = burst(&http, &s1, &t1, 6).await;
    let (t2, s2) = login(&theirs, "test2:tester2", "testing2").await;
    let theirs_statuses = burst(&http, &s2, &t2, 6).await;
    eprintln!("burst of 6: ours {ours_statuses:?}, Swift's {theirs_statuses:?}");
    assert!(ours_statuses.contains(&498), "{ours_statuses:?}");
    assert_eq!(
        ours_statuses.iter().filter(|s| **s == 498).count(),
        theirs_statuses.iter().filter(|s| **s == 498).count(),
        "ours {ours_statuses:?}, Swift's {theirs_statuses:?}"
    );
    // The 498 itself.
    let mut found = None;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (http, url, token) = (http.clone(), format!("{s1}/more{i}"), t1.clone());
        tasks.push(tokio::spawn(async move {
            let r = send(&http, "PUT", &url, &token, &[], "").await;
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 498 {
            found = Some(body);
        }
    }
    assert_eq!(found.as_deref(), Some("Slow down"));

    // A blacklisted account: 497 with Swift's body, from both.
    for base in [&ours, &theirs] {
        let (t, s) = login(base, "admin:admin", "admin").await;
        let r = send(&http, "GET", &s, &t, &[], "").await;
        assert_eq!(r.status(), 497, "{base}");
        assert_eq!(r.text().await.unwrap(), "Your account has been blacklisted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_land_on_the_memcached_swift_would_ask() {
    let dir = tempfile::tempdir().unwrap();
    let mcs: Vec<Memcached> = (0..3).map(|_| Memcached::start(dir.path())).collect();
    let servers: Vec<String> = mcs.iter().map(Memcached::addr).collect();
    let c = Cluster::start(1, &proxy_extra(Some(&servers.join(", ")), ""));
    let http = Client::new();
    let (token, storage) = login(&c.url(), "test:tester", "testing").await;
    let mut keys = vec![
        "AUTH_/user/test:tester".to_string(),
        "account/AUTH_test".to_string(),
    ];
    for i in 0..12 {
        let url = format!("{storage}/placed{i}");
        assert!(send(&http, "PUT", &url, &token, &[], "")
            .await
            .status()
            .is_success());
        // A CORS preflight makes the proxy fetch (and cache) the container's info.
        preflight(&http, &url, "http://x.example").await;
        keys.push(format!("container/AUTH_test/placed{i}"));
    }
    // Every memcached got some of them.
    let mut per_server = vec![0; 3];
    for key in &keys {
        for (i, mc) in mcs.iter().enumerate() {
            if mc.raw_get(key).is_some() {
                per_server[i] += 1;
            }
        }
    }
    assert_eq!(
        per_server.iter().sum::<usize>(),
        keys.len(),
        "{per_server:?}"
    );
    assert!(
        per_server.iter().filter(|n| **n > 0).count() >= 2,
        "{per_server:?}"
    );
    // Swift's MemcacheRing allowed one try asks only the first server of a key: it
    // finds every value there, and reads it.
    let script = "import sys, json\n\
        from swift.common.memcached import MemcacheRing\n\
        from swift.common.utils import get_logger\n\
        servers, keys = sys.argv[1].split(','), sys.argv[2:]\n\
        ring = MemcacheRing(servers, tries=1, logger=get_logger({}, log_route='t'))\n\
        print(json.dumps([ring.get(k) for k in keys]))\n";
    let out = Command::new(ringsmith_testkit::swift_venv().join("bin/python3"))
        .arg("-c")
        .arg(script)
        .arg(servers.join(","))
        .args(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(values[0], serde_json::Value::from(token));
    assert!(
        values[1]["status"].as_u64().unwrap() / 100 == 2,
        "{}",
        values[1]
    );
    for (key, v) in keys.iter().zip(&values).skip(2) {
        assert_eq!(v["status"], 204, "{key}: {v}");
        assert_eq!(v["storage_policy"], "0", "{key}: {v}");
        // Every key Swift's own info dict has (its proxy reads them unguarded).
        assert_eq!(v["sharding_state"], "unsharded", "{key}: {v}");
        assert!(v["put_timestamp"].is_string(), "{key}: {v}");
    }
}

/// `n` concurrent requests of `method` to `urls(i)`, after one warm-up to `urls(0)`.
async fn burst_of(
    http: &Client,
    method: &'static str,
    token: &str,
    urls: impl Fn(usize) -> String,
    n: usize,
) -> Vec<u16> {
    let r = send(http, method, &urls(0), token, &[], "x").await;
    assert!(
        r.status().is_success(),
        "warm-up {method} {}: {}",
        urls(0),
        r.status()
    );
    let mut tasks = Vec::new();
    for i in 1..=n {
        let (http, url, token) = (http.clone(), urls(i), token.to_string());
        tasks.push(tokio::spawn(async move {
            send(&http, method, &url, &token, &[], "x")
                .await
                .status()
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_and_listing_rates_as_swift() {
    let dir = tempfile::tempdir().unwrap();
    let mc = Memcached::start(dir.path());
    // Containers of 3 objects or more: one object write and one listing per second.
    let rl = "container_ratelimit_3 = 1\ncontainer_listing_ratelimit_3 = 1\n\
              max_sleep_time_seconds = 1.5\naccount_whitelist = AUTH_test2\n";
    let mut c = Cluster::start_in(
        proxy_common::Storage::Swift,
        1,
        &proxy_extra(Some(&mc.addr()), rl),
        tempfile::Builder::new()
            .prefix("rlcluster")
            .tempdir()
            .unwrap(),
    );
    eprintln!("cluster in {}", c.dir.path().display());
    // The containers are filled through a proxy off the shared cache, so the limited
    // proxies first see them full.
    let filler = c.start_another_proxy("filler", &proxy_extra(None, ""));
    let swift = c.start_swift_proxy_with_sections(
        "catch_errors gatekeeper proxy-logging cache listing_formats ratelimit tempauth copy dlo proxy-logging",
        &format!(
            "[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = {}\n\
             [filter:ratelimit]\nuse = egg:swift#ratelimit\n{rl}",
            mc.addr()
        ),
    );
    let http = Client::new();
    let filler = format!("http://127.0.0.1:{filler}");
    for (user, key) in [("test:tester", "testing"), ("test2:tester2", "testing2")] {
        let (t, s) = login(&filler, user, key).await;
        for cont in ["ours", "theirs", "small"] {
            let n = if cont == "small" { 2 } else { 3 };
            assert!(send(&http, "PUT", &format!("{s}/{cont}"), &t, &[], "")
                .await
                .status()
                .is_success());
            for i in 0..n {
                let r = send(&http, "PUT", &format!("{s}/{cont}/seed{i}"), &t, &[], "x").await;
                assert_eq!(r.status(), 201);
            }
        }
    }
    let ours = c.url();
    let theirs = format!("http://127.0.0.1:{swift}");
    let (t_ours, s_ours) = login(&ours, "test:tester", "testing").await;
    let (t_theirs, s_theirs) = login(&theirs, "test:tester", "testing").await;

    // Object writes to a full container.
    let a = burst_of(&http, "PUT", &t_ours, |i| format!("{s_ours}/ours/w{i}"), 5).await;
    let b = burst_of(
        &http,
        "PUT",
        &t_theirs,
        |i| format!("{s_theirs}/theirs/w{i}"),
        5,
    )
    .await;
    eprintln!("object writes: ours {a:?}, Swift's {b:?}");
    assert!(a.contains(&498), "{a:?}");
    assert_eq!(
        a.iter().filter(|s| **s == 498).count(),
        b.iter().filter(|s| **s == 498).count(),
        "ours {a:?}, Swift's {b:?}"
    );
    // Listings of it.
    let a = burst_of(&http, "GET", &t_ours, |_| format!("{s_ours}/ours"), 5).await;
    let b = burst_of(&http, "GET", &t_theirs, |_| format!("{s_theirs}/theirs"), 5).await;
    eprintln!("listings: ours {a:?}, Swift's {b:?}");
    assert!(a.contains(&498), "{a:?}");
    assert_eq!(
        a.iter().filter(|s| **s == 498).count(),
        b.iter().filter(|s| **s == 498).count(),
        "ours {a:?}, Swift's {b:?}"
    );
    // A container below the smallest size is not limited; neither is a whitelisted
    // account.
    for base in [&ours, &theirs] {
        let (t, s) = login(base, "test:tester", "testing").await;
        let r = send(&http, "PUT", &format!("{s}/small/dbg"), &t, &[], "x").await;
        if !r.status().is_success() {
            // Swift's proxy once answered 500 here, reading info cached by ours.
            let d = c.dir.path().join("log");
            for f in std::fs::read_dir(&d).unwrap() {
                let f = f.unwrap().path();
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                eprintln!(
                    "==== {}\n{}",
                    f.display(),
                    &text[text.len().saturating_sub(3000)..]
                );
            }
            panic!("{} from {base}", r.status());
        }
        let a = burst_of(&http, "PUT", &t, |i| format!("{s}/small/x{i}"), 5).await;
        // The first writes fill it to the limited size; the count is cached, so none is
        // refused.
        assert!(!a.contains(&498), "{base}: small container {a:?}");
        let (t, s) = login(base, "test2:tester2", "testing2").await;
        let a = burst_of(&http, "PUT", &t, |i| format!("{s}/ours/y{i}"), 5).await;
        assert!(!a.contains(&498), "{base}: whitelisted account {a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratelimit_without_memcached_limits_with_the_local_cache() {
    // Swift would limit nothing here (no memcached); ours counts in-process.
    let rl = "account_ratelimit = 1\nmax_sleep_time_seconds = 1.5\n";
    let c = Cluster::start(1, &proxy_extra(None, rl));
    let http = Client::new();
    let (t, s) = login(&c.url(), "test:tester", "testing").await;
    let statuses = burst(&http, &s, &t, 6).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 498).count(),
        5,
        "{statuses:?}"
    );
}

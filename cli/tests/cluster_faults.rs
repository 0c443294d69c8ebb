//! Faults under load: a 4-node `cluster up --netns` (3 replicas, so partitions have
//! handoffs) keeps taking PUT, overwrite, GET and DELETE traffic from several clients while
//! faults are injected one at a time and then combined; afterwards Swift's promises are
//! checked (see `cluster_support/load.rs`).
//!
//! Faults: a partition (link down), a hung node (SIGSTOP), both at once on two nodes, a
//! storage node and then the proxy killed with SIGKILL and restarted; then wrong clocks
//! (libfaketime): a storage node 10 minutes ahead, which `ringsmith recon --time` must
//! name, and the proxy 10 minutes ahead and then behind, so that writes stamped by it win
//! over, or lose to (202, 409), the writes stamped by the true clock.
//! Per phase the test prints requests, errors and p99 latency (see BENCHMARKS.md).

mod cluster_support;

use std::time::Duration;

use cluster_support::load::{check_promises, Layout, Load};
use cluster_support::{Down, NetnsCluster};

/// `fault` on the proxy rather than a node.
const PROXY: u32 = u32::MAX;

#[test]
fn acknowledged_writes_survive_faults_under_load_and_replicas_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let _guard = Down(dir.clone());
    let cluster = NetnsCluster::start(
        &dir,
        &[
            "--nodes",
            "4",
            "--replicas",
            "3",
            "--part-power",
            "6",
            "--daemon-interval",
            "1",
        ],
    );
    let (proxy, token) = (cluster.proxy.clone(), cluster.token.clone());
    let (load, clients) = Load::start(&proxy, &token, 4);
    let fault =
        |node: u32, action: &str| cluster.fault(&dir, (node != PROXY).then_some(node), action);
    let phase = |name: &str, secs: u64| load.phase(name, secs);
    // Kills first: a restarted proxy starts with a clean error limiter, so the
    // network faults after it are measured on their own, not behind a node that the
    // limiter still skips for its 60 s (Swift's error_suppression_interval).
    phase("no fault", 6);
    fault(0, "kill");
    phase("node 0 killed (kill -9)", 8);
    fault(0, "restart");
    fault(PROXY, "kill");
    phase("proxy killed (kill -9)", 3);
    fault(PROXY, "restart");
    phase("node 0 and proxy restarted", 4);
    fault(3, "partition");
    phase("node 3 partitioned", 10);
    fault(3, "heal");
    fault(2, "hang");
    phase("node 2 hung (SIGSTOP)", 10);
    fault(2, "resume");
    fault(1, "partition");
    fault(3, "hang");
    phase("node 1 cut + node 3 hung", 10);
    fault(3, "resume");
    fault(1, "heal");
    phase("healed", 4);

    fault(2, "skew --by 600");
    assert_recon_time_names_node(&dir, &cluster, 2, 600.0);
    phase("node 2 clock +10 min", 6);
    fault(2, "unskew");
    fault(PROXY, "skew --by 600");
    assert_proxy_clock(&proxy, 600);
    phase("proxy clock +10 min", 6);
    // Back to the true clock: objects written in the last phase now carry timestamps in
    // the future, and overwrites of them lose (202) until the true clock catches up.
    fault(PROXY, "unskew");
    phase("proxy clock true again", 6);
    fault(PROXY, "skew --by -600");
    assert_proxy_clock(&proxy, -600);
    phase("proxy clock -10 min", 6);
    fault(PROXY, "unskew");
    phase("clocks healed", 3);
    let known = clients.stop(&load);
    let node_of_ip = |ip: &str| cluster.node_of_ip(ip);
    let layout = Layout {
        dir: &dir,
        nodes: 4,
        node_of_ip: &node_of_ip,
    };
    check_promises(&layout, &known, &proxy, &token, Duration::from_secs(150));
}

/// `ringsmith recon --time` against the cluster's rings reports node `node`'s object
/// server, and no other, as `offset` seconds off.
fn assert_recon_time_names_node(
    dir: &std::path::Path,
    cluster: &NetnsCluster,
    node: u32,
    offset: f64,
) {
    let out = cluster_support::ringsmith()
        .args(["recon", "--time", "--swiftdir"])
        .arg(dir.join("etc"))
        .output()
        .unwrap();
    let text = cluster_support::text(&out);
    let skewed: Vec<&str> = text.lines().filter(|l| l.starts_with("!! ")).collect();
    assert_eq!(skewed.len(), 1, "one skewed object server:\n{text}");
    let ip = skewed[0]
        .trim_start_matches("!! http://")
        .split(':')
        .next()
        .unwrap();
    assert_eq!(cluster.node_of_ip(ip), node, "{text}");
    let diff: f64 = skewed[0]
        .rsplit("differs by ")
        .next()
        .and_then(|t| t.trim_end_matches(" sec").parse().ok())
        .unwrap_or_else(|| panic!("no difference in {}", skewed[0]));
    assert!((diff - offset).abs() < 30.0, "{text}");
}

/// The proxy's `Date` header is `offset` seconds off the true clock.
fn assert_proxy_clock(proxy: &str, offset: i64) {
    let (_, head, _) = cluster_support::http(proxy, "GET", "/healthcheck", &[], b"");
    let date = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("date"))
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no Date header:\n{head}"));
    let theirs = httpdate::parse_http_date(&date).unwrap();
    let ours = std::time::SystemTime::now();
    let off = match theirs.duration_since(ours) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    assert!((off - offset).abs() < 30, "proxy Date {date}: {off} s off");
}

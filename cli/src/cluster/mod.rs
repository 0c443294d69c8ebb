//! `ringsmith cluster up|status|down`: a whole Swift-style cluster on one machine.
//!
//! `up` lays a cluster out under one directory, the way an operator would lay out a
//! SAIO by hand, so every file can be inspected and reused with Swift's own tools:
//!
//! ```text
//! DIR/etc/swift.conf                 [swift-hash] with a random suffix, [storage-policy:N]
//! DIR/etc/{account,container,object[-N]}.ring.gz   built with the core library's builder
//! DIR/etc/{account,container,object[-N]}.builder   their builders, for `ringsmith ring`
//! DIR/etc/proxy-server.conf          tempauth users, token secret
//! DIR/etc/node<i>/{object,container,account}-server.conf
//! DIR/srv/node<i>/d<j>               the devices (plain directories)
//! DIR/log/*.log                      each process's output
//! DIR/run/cluster.json               what was started: pid, kind, address, config
//! ```
//!
//! Storage node `i` listens on `127.0.0.<i+2>` (object, container and account servers on
//! base-port, +1, +2), each node its own zone, so rings place replicas on distinct
//! "servers" as in a real cluster; the proxy listens on `127.0.0.1`. `up` returns once
//! every process answers on its port (bounded wait), having printed the auth URL and the
//! test credentials. `down` stops exactly the processes listed in `cluster.json` — each
//! pid is checked against `/proc/<pid>/cmdline` first so a recycled pid is never signalled
//! — with SIGTERM, then SIGKILL after a grace period.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, Subcommand};
use rand::RngCore;
use ringsmith::builder::{NewDevice, RebalanceOptions, RingBuilder};

mod clock;
mod fault;
mod memcached;
mod netns;
mod procs;
use fault::FaultArgs;
use netns::Netns;
use procs::{
    abandon, answers, cluster_file, down, has_exited, is_ours, leftover_note, log_tail,
    read_cluster, spawn_proc, status, write_cluster, ClusterFile, Launch, Proc,
};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Build rings and configs, start a proxy and N storage nodes, wait until they answer.
    Up(UpArgs),
    /// Show whether each process of the cluster is alive and answering.
    Status(DirArg),
    /// Stop exactly the processes `up` started (and remove its network namespaces).
    Down(DirArg),
    /// Inject or heal a fault on one storage node: cut its network (`--netns` clusters),
    /// or hang its processes (SIGSTOP) as a stuck host would.
    Fault(FaultArgs),
}

#[derive(ClapArgs)]
struct DirArg {
    /// The cluster directory.
    #[arg(long, default_value = "ringsmith-cluster")]
    dir: PathBuf,
}

#[derive(ClapArgs)]
struct UpArgs {
    /// The cluster directory (created; must not hold a running cluster).
    #[arg(long, default_value = "ringsmith-cluster")]
    dir: PathBuf,
    /// Storage nodes (each on its own 127.0.0.x address and zone).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=250))]
    nodes: u32,
    /// Devices (directories) per storage node.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    disks: u32,
    /// Replicas per ring (default: 3, or fewer when there are fewer devices).
    #[arg(long)]
    replicas: Option<u32>,
    /// Storage policy names, comma-separated; the first is the default.
    #[arg(long, value_delimiter = ',', default_value = "gold")]
    policies: Vec<String>,
    /// Add an erasure-coded policy with K data and M parity fragments (`4+2`), named
    /// `ecK-M`, after the `--policies`; its ring has K+M replicas, so the cluster needs
    /// at least K+M devices (nodes x disks; one node per fragment is what survives M lost
    /// nodes).
    #[arg(long, value_name = "K+M", value_parser = parse_ec_shape)]
    ec_policy: Option<(u32, u32)>,
    /// The erasure code of `--ec-policy` (pyeclib's names).
    #[arg(long, default_value = "liberasurecode_rs_vand", requires = "ec_policy",
          value_parser = ["liberasurecode_rs_vand", "isa_l_rs_vand", "isa_l_rs_cauchy"])]
    ec_type: String,
    /// `ec_object_segment_size` of `--ec-policy` (Swift's default: 1 MiB).
    #[arg(long, requires = "ec_policy", value_parser = clap::value_parser!(u64).range(1..))]
    ec_segment_size: Option<u64>,
    /// Make the `--ec-policy` policy the default one (new containers use it).
    #[arg(long, requires = "ec_policy")]
    ec_default: bool,
    /// Partition power of every ring.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=20))]
    part_power: u32,
    /// The proxy's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    proxy_port: u16,
    /// First storage port; object, container, account servers use it, +1 and +2.
    #[arg(long, default_value_t = 6200)]
    base_port: u16,
    /// Single-process (PACO) mode: one node, one replica, and the proxy calls the object
    /// server in-process (see docs/paco.md).
    #[arg(long)]
    paco: bool,
    /// The `ringsmith-server` binary (default: next to this one, else on PATH).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Seconds to wait for every process to answer.
    #[arg(long, default_value_t = 30)]
    wait: u64,
    /// Do not start the consistency daemons (replicators, auditors, updaters, expirer).
    #[arg(long)]
    no_daemons: bool,
    /// Only write swift.conf, the rings, the configs and the devices; start nothing
    /// (for `ringsmith init`, or Swift's own tools, to run them).
    #[arg(long, conflicts_with_all = ["memcached", "netns"])]
    no_start: bool,
    /// Seconds between passes of the replicators and updaters (Swift's default: 30).
    #[arg(long)]
    daemon_interval: Option<f64>,
    /// Give each storage node and the proxy a network namespace of its own (root or
    /// CAP_NET_ADMIN needed); see `cluster fault` for partitions.
    #[arg(long)]
    netns: bool,
    /// Swift's `mount_check = true`: each device `DIR/srv/nodeN/dM` must already be a
    /// mount point, and a device that is unmounted later answers 507 (its data goes to
    /// handoffs) instead of filling the root filesystem.
    #[arg(long)]
    mount_check: bool,
    /// The object auditor's `files_per_second` (Swift's default: 20).
    #[arg(long)]
    audit_files_per_second: Option<f64>,
    /// Start a memcached on 127.0.0.1 and point the proxy's `cache` filter at it (tokens,
    /// account/container info and ratelimit counters then live there).
    #[arg(long)]
    memcached: bool,
}

/// The daemons `up` starts on every storage node (plus the expirer on the first).
const NODE_DAEMONS: [&str; 8] = [
    "object-replicator",
    "object-auditor",
    "object-updater",
    "container-replicator",
    "container-updater",
    "container-auditor",
    "account-replicator",
    "account-auditor",
];

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        ClusterCommand::Up(a) => up(a),
        ClusterCommand::Status(d) => status(&d.dir),
        ClusterCommand::Down(d) => down(&d.dir),
        ClusterCommand::Fault(f) => fault::run(f),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringsmith cluster: {e}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn find_server_bin(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("--server-bin {} does not exist", p.display()))
        };
    }
    if let Ok(me) = std::env::current_exe() {
        let sibling = me.with_file_name("ringsmith-server");
        if sibling.exists() {
            return Ok(sibling);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join("ringsmith-server");
        if p.exists() {
            return Ok(p);
        }
    }
    Err(
        "cannot find the ringsmith-server binary (next to ringsmith or on PATH); pass --server-bin"
            .into(),
    )
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a rebalanced builder's ring (Swift's v1 format, which every Swift release reads)
/// and the builder itself beside it (`object.builder` next to `object.ring.gz`), so an
/// operator can change the cluster's rings with `ringsmith ring` or swift-ring-builder.
fn write_ring(builder: &mut RingBuilder, path: &Path) -> Result<(), String> {
    builder
        .get_ring()
        .save(path, ringsmith::ring::FormatVersion::V1)
        .map_err(|e| e.to_string())?;
    builder.ensure_id();
    let builder_path = path.with_file_name(
        path.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ring.gz"))
            .map(|stem| format!("{stem}.builder"))
            .ok_or_else(|| format!("{} is not a .ring.gz path", path.display()))?,
    );
    builder
        .save(&builder_path)
        .map_err(|e| format!("cannot write {}: {e}", builder_path.display()))
}

struct Layout {
    nodes: u32,
    disks: u32,
    base_port: u16,
    netns: Option<Netns>,
}

impl Layout {
    fn ip(&self, node: u32) -> String {
        match &self.netns {
            Some(n) => n.node_ip(node),
            None => format!("127.0.0.{}", node + 2),
        }
    }
    fn proxy_ip(&self) -> String {
        match &self.netns {
            Some(n) => n.proxy_ip(),
            None => "127.0.0.1".into(),
        }
    }
    fn namespace(&self, node: Option<u32>) -> Option<&str> {
        let n = self.netns.as_ref()?;
        match node {
            Some(i) => n.node_namespace(i),
            None => Some(n.proxy_namespace()),
        }
    }
    fn port(&self, kind: usize) -> u16 {
        self.base_port + kind as u16
    }
}

/// `K+M` of `--ec-policy`: both at least 1 (what pyeclib accepts).
fn parse_ec_shape(v: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{v:?} is not K+M with K and M at least 1 (e.g. 4+2)");
    let (k, m) = v.split_once('+').ok_or_else(bad)?;
    let k: u32 = k.trim().parse().map_err(|_| bad())?;
    let m: u32 = m.trim().parse().map_err(|_| bad())?;
    if k == 0 || m == 0 || k + m > 64 {
        return Err(bad());
    }
    Ok((k, m))
}

const KINDS: [&str; 3] = ["object", "container", "account"];

fn build_ring(
    layout: &Layout,
    replicas: u32,
    part_power: u32,
    kind: usize,
    path: &Path,
) -> Result<(), String> {
    let mut b = RingBuilder::new(part_power, replicas as f64, 1).map_err(|e| e.to_string())?;
    for node in 0..layout.nodes {
        for disk in 0..layout.disks {
            let port = layout.port(kind) as u32;
            b.add_dev(NewDevice::new(
                1,
                node + 1,
                layout.ip(node),
                port,
                format!("d{disk}"),
                100.0,
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    b.rebalance(&RebalanceOptions {
        seed: Some(1),
        now_secs: None,
    })
    .map_err(|e| format!("rebalancing {}: {e}", path.display()))?;
    write_ring(&mut b, path)
}

fn up(mut a: UpArgs) -> Result<ExitCode, String> {
    if a.paco {
        a.nodes = 1;
        a.replicas = Some(1);
    }
    let devices = a.nodes * a.disks;
    let replicas = a.replicas.unwrap_or(3.min(devices));
    if replicas == 0 || replicas > devices {
        return Err(format!(
            "--replicas {replicas} needs between 1 and {devices} devices (nodes x disks)"
        ));
    }
    if a.policies.is_empty() || a.policies.iter().any(|p| p.trim().is_empty()) {
        return Err("--policies needs one or more non-empty names".into());
    }
    if let Some((k, m)) = a.ec_policy {
        if a.paco {
            return Err(
                "--ec-policy needs storage nodes of their own; it cannot be used with --paco"
                    .into(),
            );
        }
        if k + m > devices {
            return Err(format!(
                "--ec-policy {k}+{m} stores {} fragments of every object on distinct devices, \
                 but the cluster has only {devices} (nodes x disks); add --nodes or --disks",
                k + m
            ));
        }
    }
    let ec_name = a.ec_policy.map(|(k, m)| format!("ec{k}-{m}"));
    if ec_name
        .as_ref()
        .is_some_and(|n| a.policies.iter().any(|p| p.trim() == n))
    {
        return Err(format!(
            "--policies already names a policy {}",
            ec_name.unwrap_or_default()
        ));
    }
    if a.base_port.checked_add(2).is_none() {
        return Err("--base-port too high".into());
    }
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| format!("cannot create {}: {e}", a.dir.display()))?;
    let dir = a
        .dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", a.dir.display()))?;
    if let Some(existing) = read_cluster(&dir)? {
        if existing.procs.iter().any(is_ours) {
            return Err(format!(
                "a cluster is already running from {}; stop it with `ringsmith cluster down --dir {}`",
                dir.display(),
                dir.display()
            ));
        }
    }
    let server_bin = find_server_bin(a.server_bin.clone())?;
    if a.netns && a.nodes > netns::MAX_NODES {
        return Err(format!(
            "--netns supports at most {} nodes",
            netns::MAX_NODES
        ));
    }
    let layout = Layout {
        nodes: a.nodes,
        disks: a.disks,
        base_port: a.base_port,
        netns: a.netns.then(|| Netns::plan(a.nodes)),
    };
    // Refuse to start on ports someone else holds, before writing anything that runs.
    let mut wanted = vec![format!("{}:{}", layout.proxy_ip(), a.proxy_port)];
    for n in 0..a.nodes {
        for k in 0..3 {
            wanted.push(format!("{}:{}", layout.ip(n), layout.port(k)));
        }
    }
    // Namespace addresses are new: nothing can hold them, and before the bridge exists
    // a connection attempt would leave the machine, so they are not probed.
    if layout.netns.is_some() {
        wanted.clear();
    }
    if let Some(busy) = wanted.iter().find(|w| answers(w)) {
        return Err(format!(
            "{busy} is already in use; pick other ports with --proxy-port/--base-port"
        ));
    }

    // Checked before anything is written, so a refusal leaves nothing to clean up.
    if a.mount_check {
        let unmounted: Vec<String> = (0..a.nodes)
            .flat_map(|n| (0..a.disks).map(move |d| format!("srv/node{n}/d{d}")))
            .map(|rel| dir.join(rel))
            .filter(|p| !ringsmith_server::common::is_mount_point(p))
            .map(|p| p.display().to_string())
            .collect();
        if !unmounted.is_empty() {
            return Err(format!(
                "--mount-check: not a mount point: {}; mount each device there before `up`",
                unmounted.join(", ")
            ));
        }
    }

    let etc = dir.join("etc");
    for sub in ["etc", "log", "run", "cache"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("cannot create {sub}: {e}"))?;
    }
    // The record exists before anything that needs cleaning up does.
    let auth_url = format!("http://{}:{}/auth/v1.0", layout.proxy_ip(), a.proxy_port);
    let mut record = ClusterFile {
        procs: Vec::new(),
        auth_url: auth_url.clone(),
        server_bin: Some(server_bin.clone()),
        netns: layout.netns.clone(),
    };
    write_cluster(&dir, &record)?;
    if let Some(n) = &layout.netns {
        if let Err(e) = n.create() {
            let leftovers = n.teardown();
            let _ = std::fs::remove_file(cluster_file(&dir));
            return Err(format!("{e}{}", leftover_note(&leftovers)));
        }
    }
    // swift.conf: keep an existing hash suffix (re-running `up` must not orphan data).
    let swift_conf = etc.join("swift.conf");
    let (prefix, suffix) = match ringsmith::hash::HashConfig::load(&etc) {
        Ok(h) if !h.suffix.is_empty() => (
            String::from_utf8_lossy(&h.prefix).into_owned(),
            String::from_utf8_lossy(&h.suffix).into_owned(),
        ),
        _ => (String::new(), random_hex(16)),
    };
    let mut sc = format!(
        "[swift-hash]\nswift_hash_path_prefix = {prefix}\nswift_hash_path_suffix = {suffix}\n"
    );
    for (i, name) in a.policies.iter().enumerate() {
        let _ = write!(
            sc,
            "\n[storage-policy:{i}]\nname = {}\npolicy_type = replication\n{}",
            name.trim(),
            if i == 0 && !a.ec_default {
                "default = yes\n"
            } else {
                ""
            }
        );
    }
    if let (Some((k, m)), Some(name)) = (a.ec_policy, &ec_name) {
        let _ = write!(
            sc,
            "\n[storage-policy:{i}]\nname = {name}\npolicy_type = erasure_coding\nec_type = {ty}\n\
             ec_num_data_fragments = {k}\nec_num_parity_fragments = {m}\n{seg}{default}",
            i = a.policies.len(),
            ty = a.ec_type,
            seg = a
                .ec_segment_size
                .map(|s| format!("ec_object_segment_size = {s}\n"))
                .unwrap_or_default(),
            default = if a.ec_default { "default = yes\n" } else { "" },
        );
    }
    ringsmith::atomic::write_bytes_atomic(&swift_conf, 0o644, sc.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", swift_conf.display()))?;

    // Rings.
    build_ring(
        &layout,
        replicas,
        a.part_power,
        2,
        &etc.join("account.ring.gz"),
    )?;
    build_ring(
        &layout,
        replicas,
        a.part_power,
        1,
        &etc.join("container.ring.gz"),
    )?;
    for i in 0..a.policies.len() {
        let name = if i == 0 {
            "object.ring.gz".to_string()
        } else {
            format!("object-{i}.ring.gz")
        };
        build_ring(&layout, replicas, a.part_power, 0, &etc.join(name))?;
    }
    if let Some((k, m)) = a.ec_policy {
        // Fragment index = position among the primaries: exactly k+m replicas.
        let path = etc.join(format!("object-{}.ring.gz", a.policies.len()));
        build_ring(&layout, k + m, a.part_power, 0, &path)?;
    }

    // Storage configs and devices.
    let mut to_start: Vec<(String, PathBuf, String, Option<u32>)> = Vec::new();
    for n in 0..a.nodes {
        let node_dir = dir.join(format!("srv/node{n}"));
        for d in 0..a.disks {
            std::fs::create_dir_all(node_dir.join(format!("d{d}")))
                .map_err(|e| format!("cannot create device directory: {e}"))?;
        }
        std::fs::create_dir_all(etc.join(format!("node{n}"))).map_err(|e| e.to_string())?;
        for (k, kind) in KINDS.iter().enumerate() {
            let conf = etc.join(format!("node{n}/{kind}-server.conf"));
            let text = format!(
                "[DEFAULT]\ndevices = {devices}\nmount_check = {mount_check}\ndisable_fallocate = true\nbind_ip = {ip}\nbind_port = {port}\nworkers = 1\nswift_dir = {etc}\nrecon_cache_path = {cache}\nlog_level = INFO\n\n[pipeline:main]\npipeline = recon {kind}-server\n\n[app:{kind}-server]\nuse = egg:swift#{kind}\n\n[filter:recon]\nuse = egg:swift#recon\n\n[{kind}-replicator]\n{interval}\n[{kind}-updater]\n{interval}\n[{kind}-auditor]\n{audit_rate}",
                interval = a
                    .daemon_interval
                    .map(|s| format!("interval = {s}\n"))
                    .unwrap_or_default(),
                devices = node_dir.display(),
                mount_check = a.mount_check,
                audit_rate = a
                    .audit_files_per_second
                    .filter(|_| *kind == "object")
                    .map(|r| format!("files_per_second = {r}\n"))
                    .unwrap_or_default(),
                ip = layout.ip(n),
                port = layout.port(k),
                etc = etc.display(),
                cache = dir.join("cache").display(),
            );
            ringsmith::atomic::write_bytes_atomic(&conf, 0o644, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
            if !(a.paco && *kind == "object") {
                to_start.push((
                    kind.to_string(),
                    conf,
                    format!("{}:{}", layout.ip(n), layout.port(k)),
                    Some(n),
                ));
            }
        }
    }
    // memcached first, so the proxy's first requests find it.
    let mut cache_options = String::new();
    if a.memcached {
        let port = memcached::free_port(a.proxy_port)?;
        let proc = memcached::spawn(&dir, port, layout.namespace(None))?;
        cache_options = format!("memcache_servers = {}\n", proc.addr);
        record.procs.push(proc);
        write_cluster(&dir, &record)?;
    }
    let proxy_conf = etc.join("proxy-server.conf");
    let paco = if a.paco {
        format!(
            "object_in_process = true\nobject_server_conf = {}\n",
            etc.join("node0/object-server.conf").display()
        )
    } else {
        String::new()
    };
    let text = format!(
        "[DEFAULT]\nbind_ip = {ip}\nbind_port = {port}\nswift_dir = {etc}\nlog_level = INFO\n\n[pipeline:main]\npipeline = {pipeline}\n\n[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\nallow_account_management = true\nconcurrent_gets = true\n{paco}\n[filter:tempauth]\nuse = egg:swift#tempauth\ntoken_secret = {secret}\nreseller_prefix = AUTH, SERVICE\nSERVICE_require_group = service\nuser_admin_admin = admin .admin .reseller_admin\nuser_test_tester = testing .admin\nuser_test_tester2 = testing2 .admin\nuser_test_tester3 = testing3\nuser_test2_tester2 = testing2 .admin\nuser_test5_tester5 = testing5 service\n\n{filters}",
        ip = layout.proxy_ip(),
        port = a.proxy_port,
        etc = etc.display(),
        secret = random_hex(32),
        pipeline = PROXY_PIPELINE,
        filters = filter_sections(PROXY_PIPELINE, &cache_options),
    );
    ringsmith::atomic::write_bytes_atomic(&proxy_conf, 0o600, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", proxy_conf.display()))?;
    to_start.push((
        "proxy".into(),
        proxy_conf,
        format!("{}:{}", layout.proxy_ip(), a.proxy_port),
        None,
    ));

    if a.no_start {
        println!(
            "Configs, rings and devices written in {}; nothing started",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Start everything, recording each pid as soon as it exists so `down` can always
    // clean up, even after a failed `up`.
    for (kind, conf, addr, node) in &to_start {
        let ns = layout.namespace(*node);
        record.procs.push(spawn_proc(
            &server_bin,
            &dir,
            Launch {
                kind,
                conf,
                addr,
                node: *node,
                clock_offset: None,
            },
            ns,
        )?);
        write_cluster(&dir, &record)?;
    }

    // Wait (bounded) until every process answers; fail fast if one dies.
    let deadline = Instant::now() + Duration::from_secs(a.wait);
    let mut pending: Vec<&Proc> = record.procs.iter().collect();
    while !pending.is_empty() {
        if let Some(dead) = pending.iter().find(|p| has_exited(p)) {
            let tail = log_tail(&dead.log);
            let stopped = abandon(&dir, &record);
            return Err(format!(
                "{} ({}) exited during startup; cluster {stopped}. Its log ({}):\n{tail}",
                dead.kind,
                dead.addr,
                dead.log.display()
            ));
        }
        // A namespace's own loopback (its memcached) cannot be probed from here.
        let in_netns = layout.netns.is_some();
        pending.retain(|p| !(answers(&p.addr) || in_netns && p.kind == memcached::KIND));
        if Instant::now() > deadline {
            let names: Vec<String> = pending
                .iter()
                .map(|p| format!("{} {}", p.kind, p.addr))
                .collect();
            let stopped = abandon(&dir, &record);
            return Err(format!(
                "not answering after {} s: {}; cluster {stopped} (logs in {})",
                a.wait,
                names.join(", "),
                dir.join("log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // The consistency daemons, once the servers they talk to answer. No address: they
    // only serve logs and recon cache entries.
    if !a.no_daemons {
        for n in 0..a.nodes {
            let node_etc = etc.join(format!("node{n}"));
            let mut daemons: Vec<&str> = NODE_DAEMONS.to_vec();
            if n == 0 {
                daemons.push("object-expirer");
            }
            // Rebuilds this node's lost fragment archives of the EC policy.
            if a.ec_policy.is_some() {
                daemons.push("object-reconstructor");
            }
            for daemon in daemons {
                let server = daemon.split('-').next().unwrap_or("object");
                let conf = node_etc.join(format!("{server}-server.conf"));
                let ns = layout.namespace(Some(n));
                record.procs.push(spawn_proc(
                    &server_bin,
                    &dir,
                    Launch {
                        kind: daemon,
                        conf: &conf,
                        addr: "",
                        node: Some(n),
                        clock_offset: None,
                    },
                    ns,
                )?);
                write_cluster(&dir, &record)?;
            }
        }
    }

    println!(
        "Cluster up in {}: proxy {}:{}, {} storage node{} ({}{}), {} device{} each, {} replica{}, policies: {}{}",
        dir.display(),
        layout.proxy_ip(),
        a.proxy_port,
        a.nodes,
        if a.nodes == 1 { "" } else { "s" },
        layout.ip(0),
        if a.nodes > 1 { format!("-{}", layout.ip(a.nodes - 1)) } else { String::new() },
        a.disks,
        if a.disks == 1 { "" } else { "s" },
        replicas,
        if replicas == 1 { "" } else { "s" },
        a.policies
            .iter()
            .cloned()
            .chain(ec_name.iter().map(|n| format!("{n} (erasure-coded{})", if a.ec_default { ", default" } else { "" })))
            .collect::<Vec<_>>()
            .join(", "),
        if a.paco { " (single-process object path)" } else { "" }
    );
    if let Some(n) = &layout.netns {
        println!(
            "Namespaces:  {} (proxy), {} .. {} (nodes); bridge {} ({}.1)",
            n.proxy_namespace(),
            n.namespaces[1],
            n.namespaces[n.namespaces.len() - 1],
            n.bridge,
            n.prefix
        );
    }
    println!("Auth URL:    {auth_url}");
    println!("Credentials: test:tester / testing (.admin of AUTH_test)");
    println!("             test:tester3 / testing3 (plain user of AUTH_test)");
    println!("             test2:tester2 / testing2 (.admin of AUTH_test2)");
    println!("             admin:admin / admin (.reseller_admin)");
    println!("Try:         swift -A {auth_url} -U test:tester -K testing stat");
    println!(
        "Stop:        ringsmith cluster down --dir {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The proxy pipeline `cluster up` writes: Swift's sample pipeline, every middleware of it
/// that Ringsmith provides, in Swift's order.
pub const PROXY_PIPELINE: &str = "catch_errors gatekeeper healthcheck proxy-logging cache \
     listing_formats bulk tempurl ratelimit tempauth formpost staticweb copy container-quotas \
     account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server";

/// A `[filter:NAME]` section (`use = egg:swift#NAME`, dashes as underscores) for each
/// filter of `pipeline` but tempauth, which has its own; `cache` is Swift's memcache
/// middleware, with `cache_options` (its memcached, if any).
fn filter_sections(pipeline: &str, cache_options: &str) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::new();
    for name in pipeline.split_whitespace() {
        if name == "proxy-server" || name == "tempauth" || !seen.insert(name) {
            continue;
        }
        let egg = match name {
            "cache" => "memcache".to_string(),
            _ => name.replace('-', "_"),
        };
        // Offer what Swift's sample leaves commented out: this is a cluster to try things on.
        let options = match egg.as_str() {
            // Both styles, as Swift's SAIO config has them (symlink is in the pipeline).
            "versioned_writes" => "allow_versioned_writes = true\nallow_object_versioning = true\n",
            "memcache" => cache_options,
            _ => "",
        };
        out.push_str(&format!(
            "[filter:{name}]\nuse = egg:swift#{egg}\n{options}\n"
        ));
    }
    out
}

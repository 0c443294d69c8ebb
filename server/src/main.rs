//! `ringsmith-server <server-or-daemon> [-c] <conf>`: Swift's servers and daemons in one
//! binary. This file only dispatches on the kind; the servers live in the library.
//!
//! Kinds are Swift's names (`object-server`, `object-replicator`, ...; `object`,
//! `container`, `account` and `proxy` also name the servers). The config is a file or a
//! `*.conf.d/` directory, as `swift-init` passes them. With `--pid-file` the process
//! writes its pid there once it is serving; SIGUSR1 makes a server hand its listening
//! socket to a fresh copy of itself (see `common::handoff`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ringsmith::swift::conf::Conf;
use ringsmith_server::common::runner;
use ringsmith_server::kinds::DAEMONS;

#[derive(Parser)]
#[command(
    name = "ringsmith-server",
    version,
    about = "Swift-compatible servers and consistency daemons"
)]
struct Cli {
    /// What to run: object-server, container-server, account-server, proxy-server (or
    /// object, container, account, proxy), or a daemon name such as object-replicator.
    kind: String,
    /// The Swift-style configuration file or `*.conf.d/` directory (as swift-init
    /// passes it); the same as `-c`.
    #[arg(
        value_name = "CONF",
        required_unless_present = "conf",
        conflicts_with = "conf"
    )]
    conf_positional: Option<PathBuf>,
    /// The Swift-style configuration file or `*.conf.d/` directory.
    #[arg(short = 'c', long = "conf")]
    conf: Option<PathBuf>,
    /// Run a daemon's pass once and exit.
    #[arg(long)]
    once: bool,
    /// Write this process's pid to this file once it is serving (atomically; a
    /// replacement started by a seamless reload rewrites it with its own pid).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
}

/// Keys of `[DEFAULT]`/`[app:*-server]` the storage servers understand; others are
/// logged at debug level and ignored, so an existing Swift config loads unchanged.
const KNOWN_KEYS: &[&str] = &[
    "bind_ip",
    "bind_port",
    "devices",
    "mount_check",
    "workers",
    "swift_dir",
    "recon_cache_path",
    "log_level",
    "log_format",
    "user",
    "use",
    "node_timeout",
    "conn_timeout",
    "client_timeout",
    "container_update_timeout",
    "network_chunk_size",
    "disk_chunk_size",
    "reclaim_age",
    "replication_server",
    "allowed_headers",
    "fallocate_reserve",
    "auto_create_account_prefix",
    "graceful_shutdown_timeout",
    "max_clients",
];

fn main() -> ExitCode {
    // Before any thread exists: the socket and readiness pipe of a seamless reload.
    ringsmith_server::common::handoff::capture_inherited();
    let cli = Cli::parse();
    let Some(conf_path) = cli.conf.clone().or(cli.conf_positional.clone()) else {
        eprintln!("ringsmith-server: no configuration given");
        return ExitCode::from(2);
    };
    if let Some(p) = &cli.pid_file {
        ringsmith_server::common::handoff::set_pid_file(p.clone());
    }
    // Swift's server names: `object-server` is `object`.
    let kind = match cli.kind.strip_suffix("-server") {
        Some(k @ ("object" | "container" | "account" | "proxy")) => k.to_string(),
        _ => cli.kind.clone(),
    };
    if !matches!(kind.as_str(), "object" | "container" | "account" | "proxy")
        && !DAEMONS.contains(&kind.as_str())
    {
        eprintln!(
            "ringsmith-server: unknown server or daemon {kind:?} (expected proxy, object, container, account or one of {})",
            DAEMONS.join(", ")
        );
        return ExitCode::from(2);
    }
    let conf = match Conf::load(&conf_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringsmith-server: {e}");
            return ExitCode::from(2);
        }
    };
    match kind.as_str() {
        "proxy" => {
            let app = conf.section("app:proxy-server");
            runner::init_logging(
                &app.str_or("log_level", "INFO"),
                app.str_or("log_format", "text") == "json",
            );
            match ringsmith_server::proxy::run(&conf_path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ringsmith-server proxy: {e}");
                    ExitCode::from(2)
                }
            }
        }
        "object" | "container" | "account" => match run_storage(&kind, &conf) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringsmith-server {kind}: {e}");
                ExitCode::from(2)
            }
        },
        // A daemon: checked against DAEMONS above.
        daemon => match run_daemon(daemon, &conf, cli.once) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringsmith-server {daemon}: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_daemon(name: &str, conf: &Conf, once: bool) -> Result<(), String> {
    use ringsmith_server::daemons::{self, DaemonConf};
    use std::sync::Arc;
    let server = name.split('-').next().unwrap_or("object");
    let section = conf.section(name);
    runner::init_logging(
        &section.str_or("log_level", "INFO"),
        section.str_or("log_format", "text") == "json",
    );
    let default_port = match server {
        "object" => 6200,
        "container" => 6201,
        _ => 6202,
    };
    let dconf = DaemonConf::from_conf(conf, name, server, default_port)?;
    let interval = dconf.interval;
    if !once {
        ringsmith_server::common::handoff::notify_ready();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async move {
        match name {
            "object-replicator" => {
                let r = Arc::new(daemons::object_replicator::ObjectReplicator::new(dconf)?);
                daemons::run(name, once, interval, || r.run_pass()).await;
            }
            "object-reconstructor" => {
                let r = daemons::object_reconstructor::ObjectReconstructor::new(dconf)?;
                daemons::run(name, once, interval, || r.run_pass()).await;
            }
            "object-auditor" => {
                let a = Arc::new(daemons::object_auditor::ObjectAuditor::new(dconf)?);
                daemons::run(name, once, interval, || {
                    let a = a.clone();
                    async move {
                        let _ = tokio::task::spawn_blocking(move || a.run_pass()).await;
                    }
                })
                .await;
            }
            "object-updater" => {
                let u = daemons::object_updater::ObjectUpdater::new(dconf)?;
                daemons::run(name, once, interval, || u.run_pass()).await;
            }
            "object-expirer" => {
                let x = daemons::expirer::Expirer::new(dconf);
                daemons::run(name, once, interval, || x.run_pass()).await;
            }
            "container-updater" => {
                let u = daemons::container_updater::ContainerUpdater::new(dconf);
                daemons::run(name, once, interval, || u.run_pass()).await;
            }
            "container-auditor" | "account-auditor" => {
                let kind = if name.starts_with("container") {
                    "container"
                } else {
                    "account"
                };
                let a = Arc::new(daemons::db_auditor::DbAuditor::new(dconf, kind));
                daemons::run(name, once, interval, || {
                    let a = a.clone();
                    async move {
                        let _ = tokio::task::spawn_blocking(move || a.run_pass()).await;
                    }
                })
                .await;
            }
            _ => {
                let kind = if name.starts_with("container") {
                    "container"
                } else {
                    "account"
                };
                let r = Arc::new(daemons::db_replicator::DbReplicator::new(dconf, kind));
                daemons::run(name, once, interval, || r.run_pass()).await;
            }
        }
        Ok::<(), String>(())
    });
    // An auditor pass runs on a blocking thread that sleeps to keep its rate; dropping
    // the runtime would wait for the whole pass, and `stop` would find the daemon still
    // there. Every write a pass makes is atomic, so the process may leave it mid-way.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

fn run_storage(kind: &str, conf: &Conf) -> Result<(), String> {
    let app = conf.section(&format!("app:{kind}-server"));
    runner::init_logging(
        &app.str_or("log_level", "INFO"),
        app.str_or("log_format", "text") == "json",
    );
    for k in app.unknown_keys(KNOWN_KEYS) {
        tracing::debug!(key = k, "ignoring unknown config key");
    }
    let default_port = match kind {
        "object" => 6200,
        "container" => 6201,
        _ => 6202,
    };
    let ip = app.str_or("bind_ip", "0.0.0.0");
    let port: u16 = app
        .parse_or("bind_port", default_port)
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = format!("{ip}:{port}")
        .parse()
        .or_else(|_| format!("[{ip}]:{port}").parse())
        .map_err(|_| format!("{}: invalid bind_ip {ip:?}", conf.path.display()))?;
    let drain: f64 = app
        .parse_or("graceful_shutdown_timeout", 30.0)
        .map_err(|e| e.to_string())?;
    let client_timeout: f64 = app
        .parse_or("client_timeout", 60.0)
        .map_err(|e| e.to_string())?;
    if !(drain.is_finite() && drain >= 0.0 && client_timeout.is_finite() && client_timeout > 0.0) {
        return Err(format!(
            "{}: graceful_shutdown_timeout and client_timeout must be positive numbers of seconds",
            conf.path.display()
        ));
    }
    let max_connections =
        runner::connection_cap(&app).map_err(|e| format!("{}: {e}", conf.path.display()))?;
    let router = match kind {
        "object" => {
            let cfg = ringsmith_server::object::ObjectConfig::from_conf(conf)?;
            check_xattrs(&cfg.storage.devices.devices);
            ringsmith_server::object::object_router(ringsmith_server::object::ObjectState::new(cfg))
        }
        "container" => {
            let cfg = ringsmith_server::container::ContainerConfig::from_conf(conf)?;
            ringsmith_server::container::container_router(
                ringsmith_server::container::ContainerState::new(cfg),
            )
        }
        _ => {
            let cfg = ringsmith_server::account::AccountConfig::from_conf(conf)?;
            ringsmith_server::account::account_router(ringsmith_server::account::AccountState::new(
                cfg,
            ))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(runner::serve(
        &format!("{kind}-server"),
        addr,
        router,
        runner::ServeLimits {
            header_read_timeout: Duration::from_secs_f64(client_timeout),
            drain: Duration::from_secs_f64(drain),
            max_connections,
        },
    ))
    .map_err(|e| e.to_string())
}

/// Object metadata lives in xattrs: say so at startup when a device refuses them, or
/// holds too little of them per file for Swift's metadata limits.
fn check_xattrs(devices: &std::path::Path) {
    // Swift's default limits allow 4 KiB of user metadata; with header names and the
    // system metadata, an object's pickled metadata reaches about 6.5 KiB.
    const ENOUGH: usize = 8192;
    let Ok(rd) = std::fs::read_dir(devices) else {
        tracing::warn!(devices = %devices.display(), "devices directory is not readable");
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let probe = e
            .path()
            .join(format!(".xattr-probe-{}", std::process::id()));
        if std::fs::write(&probe, b"").is_err() {
            continue;
        }
        if let Err(err) = xattr::set(&probe, "user.swift.probe", b"1") {
            tracing::error!(device = %e.path().display(), error = %err,
                "filesystem refuses user xattrs: object writes to this device will fail with 507");
        }
        let _ = std::fs::remove_file(&probe);
        match ringsmith_server::object::diskfile::xattr_capacity(&e.path(), ENOUGH) {
            Ok(held) if held < ENOUGH => tracing::warn!(
                device = %e.path().display(),
                xattr_bytes_per_file = held,
                "this filesystem holds only about {held} bytes of object metadata per file: \
                 objects with more (Swift's limits allow about 6.5 KiB) get 507 here, as on \
                 Swift; Swift recommends XFS"
            ),
            _ => {}
        }
    }
}

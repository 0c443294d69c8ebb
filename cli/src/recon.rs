//! `ringsmith recon`: a `swift-recon`-compatible cluster health report.
//!
//! Same arguments (`ringsmith recon [account|container|object ...] [options]`), same
//! checks and the same text on stdout as `swift-recon`, built on `ringsmith::recon`. Two
//! additions make it usable from cron and CI: `--json` prints one document with every
//! host's raw answers and the summaries, and the exit status says whether the cluster is
//! healthy — 1 when a check fails (a host did not answer, ring or swift.conf md5 mismatch,
//! unmounted or failing drives, clock skew, mixed versions, wrong server type), with the
//! failing hosts listed on stderr; 2 when the command itself cannot run (bad arguments,
//! unreadable rings).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use ringsmith::recon::checks::{CheckContext, CheckKind, CheckReport, Failure};
use ringsmith::recon::client::{unix_now, Fetcher};
use ringsmith::recon::hosts::{self, HostFilter, HostsError, ServerType};
use ringsmith::recon::render::{render, RenderOptions, RULE};
use serde::Serialize;

#[derive(clap::Args, Debug, Default)]
#[command(
    about = "Cluster health from the recon endpoints (like swift-recon)",
    long_about = "Cluster health from the recon endpoints, compatible with swift-recon.\n\n\
        Hosts come from the rings in --swiftdir; <server_type> is account, container or object \
        (default object). Exits 0 when every check passes, 1 when one fails (the failing hosts \
        are listed on stderr), 2 on bad arguments or unreadable rings."
)]
pub struct Args {
    /// account|container|object (default object; several may be given).
    #[arg(value_name = "server_type")]
    pub server_types: Vec<String>,
    /// Print verbose info.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Suppress most connection related errors.
    #[arg(long)]
    pub suppress: bool,
    /// Get async stats.
    #[arg(short = 'a', long = "async")]
    pub async_check: bool,
    /// Get replication stats.
    #[arg(short = 'r', long)]
    pub replication: bool,
    /// Get reconstruction stats.
    #[arg(short = 'R', long)]
    pub reconstruction: bool,
    /// Get auditor stats.
    #[arg(long)]
    pub auditor: bool,
    /// Get updater stats.
    #[arg(long)]
    pub updater: bool,
    /// Get expirer stats.
    #[arg(long)]
    pub expirer: bool,
    /// Get sharding stats.
    #[arg(long)]
    pub sharding: bool,
    /// Check cluster for unmounted devices.
    #[arg(short = 'u', long)]
    pub unmounted: bool,
    /// Get disk usage stats.
    #[arg(short = 'd', long)]
    pub diskusage: bool,
    /// Use human readable suffix for disk usage stats.
    #[arg(long)]
    pub human_readable: bool,
    /// Get cluster load average stats.
    #[arg(short = 'l', long)]
    pub loadstats: bool,
    /// Get cluster quarantine stats.
    #[arg(short = 'q', long)]
    pub quarantined: bool,
    /// Validate servers on the ring.
    #[arg(long)]
    pub validate_servers: bool,
    /// Get md5sum of servers ring and compare to local copy.
    #[arg(long)]
    pub md5: bool,
    /// Get cluster socket usage stats.
    #[arg(long)]
    pub sockstat: bool,
    /// Get drive audit error stats.
    #[arg(long)]
    pub driveaudit: bool,
    /// Check time synchronization.
    #[arg(short = 'T', long)]
    pub time: bool,
    /// Maximal allowed time jitter.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub jitter: f64,
    /// Check swift versions.
    #[arg(long)]
    pub swift_versions: bool,
    /// Also show the top COUNT entries in rank order.
    #[arg(long, value_name = "COUNT", default_value_t = 0)]
    pub top: usize,
    /// Also show the lowest COUNT entries in rank order.
    #[arg(long, value_name = "COUNT", default_value_t = 0)]
    pub lowest: usize,
    /// Perform all checks. Equal to -arRudlqT --md5 --sockstat --auditor --updater
    /// --expirer --driveaudit --validate-servers --swift-versions
    #[arg(long)]
    pub all: bool,
    /// Only query servers in specified region.
    #[arg(long)]
    pub region: Option<u32>,
    /// Only query servers in specified zone.
    #[arg(short = 'z', long)]
    pub zone: Option<u32>,
    /// Time to wait for a response from a server.
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Directory of swift.conf and the rings.
    #[arg(long, default_value = "/etc/swift")]
    pub swiftdir: PathBuf,
    /// Only query object servers in specified storage policy (specified as name or index).
    #[arg(short = 'p', long)]
    pub policy: Option<String>,
    /// Print one JSON document (every host's answers and the summaries) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Most requests in flight at once (swift-recon uses 30).
    #[arg(long, default_value_t = 1000)]
    pub concurrency: usize,
}

impl Args {
    fn any_check(&self) -> bool {
        self.async_check
            || self.replication
            || self.reconstruction
            || self.auditor
            || self.updater
            || self.expirer
            || self.sharding
            || self.unmounted
            || self.diskusage
            || self.loadstats
            || self.quarantined
            || self.validate_servers
            || self.md5
            || self.sockstat
            || self.driveaudit
            || self.time
            || self.swift_versions
            || self.all
    }

    /// The checks asked for, in the order swift-recon runs them.
    fn checks(&self, t: ServerType) -> Vec<CheckKind> {
        if self.all {
            return CheckKind::all_for(t);
        }
        use CheckKind::*;
        let wanted = [
            (self.async_check, &[Async][..]),
            (self.unmounted, &[Unmounted]),
            (self.replication, &[Replication]),
            (self.auditor, &[Auditor]),
            (self.updater, &[Updater]),
            (self.expirer, &[Expirer]),
            (self.sharding, &[Sharding]),
            (self.reconstruction, &[Reconstruction]),
            (self.validate_servers, &[ValidateServers]),
            (self.loadstats, &[Load]),
            (self.diskusage, &[DiskUsage]),
            (self.md5, &[RingMd5, SwiftConfMd5]),
            (self.quarantined, &[Quarantined]),
            (self.sockstat, &[Sockstat]),
            (self.driveaudit, &[DriveAudit]),
            (self.time, &[Time]),
            (self.swift_versions, &[Versions]),
        ];
        wanted
            .into_iter()
            .filter(|(on, _)| *on)
            .flat_map(|(_, c)| c.iter().copied())
            .collect()
    }
}

/// The `--json` document.
#[derive(Serialize)]
struct JsonReport {
    swift_dir: PathBuf,
    timeout: f64,
    started: f64,
    server_types: Vec<JsonServerType>,
    failures: Vec<Failure>,
    healthy: bool,
}

#[derive(Serialize)]
struct JsonServerType {
    server_type: ServerType,
    hosts: Vec<String>,
    checks: Vec<CheckReport>,
    /// Checks that do not apply to this server type, with swift-recon's message.
    skipped: Vec<Skipped>,
}

#[derive(Serialize)]
struct Skipped {
    check: CheckKind,
    reason: &'static str,
}

fn print_help() {
    let mut cmd = crate::Cli::command();
    cmd.build();
    if let Some(sub) = cmd.find_subcommand_mut("recon") {
        let _ = sub.print_help();
    }
}

pub fn run(args: Args) -> ExitCode {
    if args.server_types.is_empty() && !args.any_check() {
        print_help();
        return ExitCode::SUCCESS;
    }
    let mut types: Vec<ServerType> = Vec::new();
    for t in &args.server_types {
        match ServerType::parse(t) {
            Some(t) if !types.contains(&t) => types.push(t),
            Some(_) => {}
            None => {
                eprintln!("Invalid Server Type: {t} (expected account, container or object)");
                return ExitCode::from(2);
            }
        }
    }
    if types.is_empty() {
        types.push(ServerType::Object);
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        eprintln!(
            "--timeout must be a positive number of seconds, not {}",
            args.timeout
        );
        return ExitCode::from(2);
    }
    // Discover every server type's hosts before asking anything: a bad ring or policy is
    // a usage error, reported before any output.
    let filter = HostFilter {
        region: args.region,
        zone: args.zone,
    };
    let mut plan = Vec::new();
    for &t in &types {
        match hosts::discover_hosts(&args.swiftdir, t, args.policy.as_deref(), &filter) {
            Ok(h) => plan.push((t, h)),
            Err(e @ HostsError::UnknownPolicy(_)) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("ringsmith recon: {e}");
                return ExitCode::from(2);
            }
        }
    }
    raise_fd_limit();
    let fetcher = match Fetcher::new(Duration::from_secs_f64(args.timeout), args.concurrency) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ringsmith recon: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringsmith recon: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = RenderOptions {
        verbose: args.verbose,
        suppress: args.suppress,
        human_readable: args.human_readable,
    };
    let text = !args.json;
    let mut doc = JsonReport {
        swift_dir: args.swiftdir.clone(),
        timeout: args.timeout,
        started: unix_now(),
        server_types: Vec::new(),
        failures: Vec::new(),
        healthy: true,
    };
    let mut out = std::io::stdout().lock();
    if text {
        say(&mut out, RULE);
    }
    for (t, hosts) in plan {
        if text {
            say(
                &mut out,
                &format!("--> Starting reconnaissance on {} hosts ({t})", hosts.len()),
            );
            say(&mut out, RULE);
        }
        let mut ctx = CheckContext {
            jitter: args.jitter,
            top: args.top,
            lowest: args.lowest,
            ..Default::default()
        };
        ctx.load_md5s(&args.swiftdir, t);
        let mut section = JsonServerType {
            server_type: t,
            hosts: hosts.iter().map(|h| h.netloc()).collect(),
            checks: Vec::new(),
            skipped: Vec::new(),
        };
        // Every check of this server type runs at once (a hung host costs one timeout,
        // not one per check); reports print in swift-recon's order.
        let checks = args.checks(t);
        let mut reports = runtime
            .block_on(fetcher.run_checks(&checks, t, &hosts, &ctx))
            .into_iter();
        for check in checks {
            if let Err(reason) = check.applies_to(t) {
                if text {
                    say(&mut out, reason);
                    say(&mut out, RULE);
                }
                section.skipped.push(Skipped { check, reason });
                continue;
            }
            let Some(report) = reports.next() else { break };
            if text {
                for line in render(&report, &opts, unix_now()) {
                    say(&mut out, &line);
                }
            }
            doc.failures.extend(report.failures.iter().cloned());
            section.checks.push(report);
        }
        doc.server_types.push(section);
    }
    doc.healthy = doc.failures.is_empty();
    if args.json {
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => say(&mut out, &s),
            Err(e) => {
                eprintln!("ringsmith recon: cannot encode the report: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if doc.failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "ringsmith recon: UNHEALTHY: {} problem(s) on {} host(s):",
        doc.failures.len(),
        failing_hosts(&doc.failures).len()
    );
    for f in &doc.failures {
        let host = f
            .host
            .as_ref()
            .map(|h| h.netloc())
            .unwrap_or_else(|| "cluster".into());
        eprintln!(
            "  {host} [{} {}]: {}",
            f.server_type,
            serde_json::to_value(f.check)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            f.problem
        );
    }
    ExitCode::from(1)
}

fn failing_hosts(failures: &[Failure]) -> std::collections::BTreeSet<String> {
    failures
        .iter()
        .map(|f| {
            f.host
                .as_ref()
                .map(|h| h.netloc())
                .unwrap_or_else(|| "cluster".into())
        })
        .collect()
}

/// Writes a line; a closed stdout (`| head`) ends the output quietly instead of panicking.
fn say(out: &mut impl std::io::Write, line: &str) {
    if writeln!(out, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// Fanning out to a thousand hosts needs a thousand sockets; lift the soft limit to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

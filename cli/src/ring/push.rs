//! `ringsmith ring push`: put new rings on every node that serves them, then check that each
//! storage server reports them.
//!
//! Operators distribute rings with rsync or scp and then run `swift-recon --md5` to see who
//! missed them. This does both in one step:
//!
//! 1. The rings are read (their devices say which hosts need them) and their md5 taken.
//! 2. The copy command runs once per host (a host is one device IP; all of that host's
//!    servers share its swift_dir), at most `--concurrency` at a time. It is a shell
//!    command template, so any transport the operator already uses fits: `{files}` becomes
//!    the ring paths, `{host}` the IP (bracketed if IPv6, as scp and rsync want it) and
//!    `{ip}` the bare IP, each shell-quoted.
//! 3. Every storage server in the rings (`ip:port`) is asked `GET /recon/ringmd5` until it
//!    reports, for each pushed ring, the md5 of the local copy, or until `--verify-timeout`.
//!    The servers read the file itself, so this proves the file landed where the server
//!    looks for it, not merely that the copy command exited 0.
//!
//! Exit status: 0 every server reports the pushed rings; 1 some host or server did not (each
//! is listed with the reason); 2 bad input (no ring, unreadable ring, bad option).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use ringsmith::recon::checks::md5_file;
use ringsmith::recon::client::Fetcher;
use ringsmith::recon::hosts::{ring_devices, Host};
use serde::Serialize;
use serde_json::Value;

const DEFAULT_COMMAND: &str = "rsync -a {files} {host}:/etc/swift/";

#[derive(Parser, Debug)]
#[command(
    name = "ringsmith ring push",
    about = "Copy rings to every node in them, then check through /recon/ringmd5 that every \
storage server reports them. Exit 0 all updated, 1 some nodes not (listed), 2 bad input.",
    after_help = "The copy command runs through `sh -c` once per host. Placeholders, each \
shell-quoted: {files} the ring files, {host} the IP (bracketed if IPv6), {ip} the bare IP. \
Examples: --command 'scp -q {files} root@{host}:/etc/swift/' or \
--command 'rsync -a {files} {host}::swift_server/'."
)]
struct PushArgs {
    /// Ring files to push (default: every *.ring.gz in --swift-dir).
    rings: Vec<PathBuf>,
    /// Where the rings are when none is named.
    #[arg(long, default_value = "/etc/swift")]
    swift_dir: PathBuf,
    /// The copy command, run once per host.
    #[arg(long, default_value = DEFAULT_COMMAND)]
    command: String,
    /// Print the copy commands and the servers that would be checked; run and ask nothing.
    #[arg(long)]
    dry_run: bool,
    /// Skip the copy; only check which servers report the local rings.
    #[arg(long)]
    verify_only: bool,
    /// How long to keep asking servers that do not report the rings yet, in seconds.
    #[arg(long, default_value_t = 30.0)]
    verify_timeout: f64,
    /// Timeout of one recon request, in seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Longest a copy command may run, in seconds, before it is killed.
    #[arg(long, default_value_t = 600.0)]
    copy_timeout: f64,
    /// Copies (and recon requests) in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

/// One ring being pushed.
#[derive(Debug, Serialize)]
struct PushedRing {
    name: String,
    path: PathBuf,
    md5: String,
}

/// What the copy to one host did.
#[derive(Debug, Serialize)]
struct CopyOutcome {
    ip: String,
    command: String,
    ok: bool,
    /// `None` when the command did not run to an exit (killed, could not start, dry run).
    exit_code: Option<i32>,
    /// Why it failed: the command's last stderr lines, or what stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// What one storage server reported last.
#[derive(Debug, Serialize)]
struct ServerOutcome {
    ip: String,
    port: u16,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    rings: Vec<PushedRing>,
    copies: Vec<CopyOutcome>,
    servers: Vec<ServerOutcome>,
    dry_run: bool,
    /// Every host copied and every server reports the pushed rings (false for a dry run).
    ok: bool,
}

/// Runs `ringsmith ring push ARGS…` and returns the exit status.
pub fn run(raw: &[String]) -> u8 {
    let args = match PushArgs::try_parse_from(
        std::iter::once("ringsmith ring push".to_string()).chain(raw.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match push(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            } else {
                print_report(&report, &args);
            }
            if report.ok || report.dry_run {
                0
            } else {
                1
            }
        }
        Err(message) => {
            if args.json {
                let body = serde_json::json!({ "error": message, "exit_code": 2 });
                println!("{}", serde_json::to_string_pretty(&body).expect("json"));
            } else {
                eprintln!("ringsmith ring push: {message}");
            }
            2
        }
    }
}

/// Bad input is an `Err` (exit 2); nodes that were not updated are in the report.
fn push(args: &PushArgs) -> Result<Report, String> {
    for (name, v) in [
        ("--verify-timeout", args.verify_timeout),
        ("--timeout", args.timeout),
        ("--copy-timeout", args.copy_timeout),
    ] {
        if !(v.is_finite() && v >= 0.0) || (name != "--verify-timeout" && v == 0.0) {
            return Err(format!(
                "{name} must be a positive number of seconds, not {v}"
            ));
        }
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let paths = ring_paths(args)?;
    let mut rings = Vec::new();
    let mut servers: BTreeSet<Host> = BTreeSet::new();
    for path in paths {
        let devices = ring_devices(&path).map_err(|e| e.to_string())?;
        let md5 = md5_file(&path).ok_or_else(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} is not a file name", path.display()))?;
        if rings.iter().any(|r: &PushedRing| r.name == name) {
            return Err(format!(
                "two rings named {name}: a server's swift_dir holds only one"
            ));
        }
        for d in &devices {
            let port = u16::try_from(d.port).map_err(|_| {
                format!(
                    "{}: device {} has port {}, not a TCP port",
                    path.display(),
                    d.id,
                    d.port
                )
            })?;
            servers.insert(Host::new(d.ip.clone(), port));
        }
        rings.push(PushedRing { name, path, md5 });
    }
    let servers: Vec<Host> = servers.into_iter().collect();
    // One copy per host, in the servers' (numeric) address order.
    let mut ips: Vec<String> = Vec::new();
    for s in &servers {
        if !ips.contains(&s.ip) {
            ips.push(s.ip.clone());
        }
    }
    let files: Vec<String> = rings
        .iter()
        .map(|r| shell_quote(&r.path.to_string_lossy()))
        .collect();
    let commands: Vec<(String, String)> = ips
        .iter()
        .map(|ip| (ip.clone(), expand(&args.command, &files.join(" "), ip)))
        .collect();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let copies = if args.dry_run || args.verify_only {
        commands
            .into_iter()
            .map(|(ip, command)| CopyOutcome {
                ip,
                command,
                ok: args.verify_only,
                exit_code: None,
                problem: None,
            })
            .collect()
    } else {
        runtime.block_on(copy_all(
            commands,
            args.concurrency,
            Duration::from_secs_f64(args.copy_timeout),
        ))
    };
    let servers = if args.dry_run {
        servers
            .into_iter()
            .map(|h| ServerOutcome {
                ip: h.ip,
                port: h.port,
                ok: false,
                problem: None,
            })
            .collect()
    } else {
        let fetcher = Fetcher::new(Duration::from_secs_f64(args.timeout), args.concurrency)?;
        let deadline = Instant::now() + Duration::from_secs_f64(args.verify_timeout);
        runtime.block_on(verify(&fetcher, &servers, &rings, deadline))
    };
    let ok = !args.dry_run && copies.iter().all(|c| c.ok) && servers.iter().all(|s| s.ok);
    Ok(Report {
        rings,
        copies,
        servers,
        dry_run: args.dry_run,
        ok,
    })
}

/// The named rings, or every `*.ring.gz` of `--swift-dir` in name order.
fn ring_paths(args: &PushArgs) -> Result<Vec<PathBuf>, String> {
    if !args.rings.is_empty() {
        for p in &args.rings {
            if !p.is_file() {
                return Err(format!("no ring file {}", p.display()));
            }
        }
        return Ok(args.rings.clone());
    }
    let dir = &args.swift_dir;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".ring.gz"))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!("no *.ring.gz in {}", dir.display()));
    }
    Ok(found)
}

/// Fills the placeholders of the copy command. `files` is already quoted.
fn expand(template: &str, files: &str, ip: &str) -> String {
    let bracketed = if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    template
        .replace("{files}", files)
        .replace("{host}", &shell_quote(&bracketed))
        .replace("{ip}", &shell_quote(ip))
}

/// Quotes a word for `sh` only when it needs it, so printed commands stay readable.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-[]".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

async fn copy_all(
    commands: Vec<(String, String)>,
    concurrency: usize,
    limit: Duration,
) -> Vec<CopyOutcome> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (ip, command)) in commands.into_iter().enumerate() {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, copy_one(ip, command, limit).await)
        });
    }
    let mut out: Vec<(usize, CopyOutcome)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(done) = joined {
            out.push(done);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, c)| c).collect()
}

async fn copy_one(ip: String, command: String, limit: Duration) -> CopyOutcome {
    let mut outcome = CopyOutcome {
        ip,
        command: command.clone(),
        ok: false,
        exit_code: None,
        problem: None,
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            outcome.problem = Some(format!("cannot run sh: {e}"));
            return outcome;
        }
    };
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => {
            outcome.problem = Some(format!("killed after {}s", limit.as_secs_f64()));
        }
        Ok(Err(e)) => outcome.problem = Some(format!("waiting for the command: {e}")),
        Ok(Ok(out)) => {
            outcome.exit_code = out.status.code();
            outcome.ok = out.status.success();
            if !outcome.ok {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                let status = match out.status.code() {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".to_string(),
                };
                outcome.problem = Some(if tail.is_empty() {
                    status
                } else {
                    format!("{status}: {}", tail.join(" / "))
                });
            }
        }
    }
    outcome
}

/// Asks every server until it reports all the pushed rings or the deadline passes, and
/// returns each server's last state.
async fn verify(
    fetcher: &Fetcher,
    servers: &[Host],
    rings: &[PushedRing],
    deadline: Instant,
) -> Vec<ServerOutcome> {
    let mut problems: Vec<Option<String>> = vec![Some("not asked".into()); servers.len()];
    loop {
        let waiting: Vec<usize> = (0..servers.len())
            .filter(|&i| problems[i].is_some())
            .collect();
        let hosts: Vec<Host> = waiting.iter().map(|&i| servers[i].clone()).collect();
        let answers = fetcher.fetch(&hosts, "ringmd5").await;
        for (i, answer) in waiting.into_iter().zip(answers) {
            problems[i] = match answer.result {
                Err(e) => Some(e.to_string()),
                Ok(body) => ring_problem(&body, rings),
            };
        }
        if problems.iter().all(Option::is_none) || Instant::now() >= deadline {
            break;
        }
        let pause = Duration::from_millis(500).min(deadline - Instant::now());
        tokio::time::sleep(pause).await;
    }
    servers
        .iter()
        .zip(problems)
        .map(|(h, problem)| ServerOutcome {
            ip: h.ip.clone(),
            port: h.port,
            ok: problem.is_none(),
            problem,
        })
        .collect()
}

/// Why a `/recon/ringmd5` answer does not show the pushed rings, or `None` if it does. The
/// answer maps the server's path of each ring to its md5; only the file name is compared,
/// as each node may keep its rings in its own swift_dir.
fn ring_problem(body: &Value, rings: &[PushedRing]) -> Option<String> {
    let Some(map) = body.as_object() else {
        return Some(format!("unexpected /recon/ringmd5 answer: {body}"));
    };
    let mut wrong = Vec::new();
    for ring in rings {
        let reported = map.iter().find(|(path, _)| {
            Path::new(path)
                .file_name()
                .is_some_and(|n| *n == *ring.name)
        });
        match reported {
            None => wrong.push(format!(
                "does not report {} (not in its swift_dir, or no policy for it in its swift.conf)",
                ring.name
            )),
            Some((_, Value::String(sum))) if *sum == ring.md5 => {}
            Some((_, sum)) => {
                let sum = sum.as_str().map(str::to_string).unwrap_or(sum.to_string());
                wrong.push(format!(
                    "{} has md5 {sum}, the pushed ring {}",
                    ring.name, ring.md5
                ))
            }
        }
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

fn print_report(report: &Report, args: &PushArgs) {
    let names: Vec<&str> = report.rings.iter().map(|r| r.name.as_str()).collect();
    let verb = if args.verify_only {
        "Checking"
    } else {
        "Pushing"
    };
    println!(
        "{verb} {} ring{} ({}) on {} host{}, {} server{}",
        names.len(),
        plural(names.len()),
        names.join(", "),
        report.copies.len(),
        plural(report.copies.len()),
        report.servers.len(),
        plural(report.servers.len()),
    );
    if report.dry_run {
        for c in &report.copies {
            println!("would run on {}: {}", c.ip, c.command);
        }
        for s in &report.servers {
            println!(
                "would check http://{}/recon/ringmd5",
                Host::new(s.ip.clone(), s.port).netloc()
            );
        }
        return;
    }
    if !args.verify_only {
        for c in &report.copies {
            match &c.problem {
                None => println!("{}: copied", c.ip),
                Some(p) => println!("{}: copy FAILED ({p}): {}", c.ip, c.command),
            }
        }
    }
    for s in &report.servers {
        let at = Host::new(s.ip.clone(), s.port).netloc();
        match &s.problem {
            None => println!("{at}: serves the pushed rings"),
            Some(p) => println!("{at}: NOT UPDATED: {p}"),
        }
    }
    let copied = report.copies.iter().filter(|c| c.ok).count();
    let serving = report.servers.iter().filter(|s| s.ok).count();
    if args.verify_only {
        println!(
            "{serving} of {} servers report the local rings.",
            report.servers.len()
        );
    } else {
        println!(
            "{copied} of {} hosts copied; {serving} of {} servers serve the pushed rings.",
            report.copies.len(),
            report.servers.len()
        );
    }
    let not_updated: Vec<String> = report
        .servers
        .iter()
        .filter(|s| !s.ok)
        .map(|s| Host::new(s.ip.clone(), s.port).netloc())
        .collect();
    if !not_updated.is_empty() {
        println!("Not updated: {}", not_updated.join(" "));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_quoted_for_the_shell() {
        let files = ["/etc/swift/object.ring.gz", "/tmp/my rings/o'1.ring.gz"]
            .map(shell_quote)
            .join(" ");
        assert_eq!(
            expand("scp {files} root@{host}:/etc/swift/ # {ip}", &files, "::1"),
            r"scp /etc/swift/object.ring.gz '/tmp/my rings/o'\''1.ring.gz' root@[::1]:/etc/swift/ # ::1"
        );
        assert_eq!(
            expand("x {host} {ip}", "", "127.0.0.2"),
            "x 127.0.0.2 127.0.0.2"
        );
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    fn ring(name: &str, md5: &str) -> PushedRing {
        PushedRing {
            name: name.into(),
            path: PathBuf::from(name),
            md5: md5.into(),
        }
    }

    #[test]
    fn a_server_must_report_every_pushed_ring_with_its_md5() {
        let rings = [ring("object.ring.gz", "aa"), ring("account.ring.gz", "bb")];
        let good = serde_json::json!({
            "/srv/node1/etc/object.ring.gz": "aa",
            "/srv/node1/etc/account.ring.gz": "bb",
            "/srv/node1/etc/container.ring.gz": "cc",
        });
        assert_eq!(ring_problem(&good, &rings), None);
        let stale = serde_json::json!({ "/etc/swift/object.ring.gz": "old", "/etc/swift/account.ring.gz": "bb" });
        assert_eq!(
            ring_problem(&stale, &rings).unwrap(),
            "object.ring.gz has md5 old, the pushed ring aa"
        );
        let missing = serde_json::json!({ "/etc/swift/object.ring.gz": "aa" });
        assert!(ring_problem(&missing, &rings)
            .unwrap()
            .starts_with("does not report account.ring.gz"));
        assert!(ring_problem(&serde_json::json!([1]), &rings)
            .unwrap()
            .starts_with("unexpected"));
    }
}

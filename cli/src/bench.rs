//! `ringsmith bench`: a load generator for a Swift API endpoint (Ringsmith's or Swift's),
//! so two clusters can be measured with the same client in one run.
//!
//! It authenticates with tempauth (v1.0), creates a container, then runs phases one after
//! the other: PUT `--objects` objects of `--size` bytes, GET them (checking each length),
//! HEAD them, GET the container listing `--listings` times, and DELETE them. Within a phase,
//! `--concurrency` workers take the next object from a shared counter, each on its own
//! kept-alive connection. Every request's latency is kept, so p50 and p99 are exact.
//!
//! The client's own CPU time is reported next to the wall time: when it approaches
//! `cores x wall`, the client, not the server, is what was measured. Point it only at
//! clusters you run (on this machine: loopback or the namespaces of `cluster up --netns`).

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// The auth URL (tempauth v1.0), e.g. http://127.0.0.1:8080/auth/v1.0.
    #[arg(short = 'A', long)]
    auth: String,
    /// The user, `account:user`.
    #[arg(short = 'U', long, default_value = "test:tester")]
    user: String,
    /// The key.
    #[arg(short = 'K', long, default_value = "testing")]
    key: String,
    /// The container the objects go to (created, and left empty afterwards).
    #[arg(long, default_value = "ringsmith-bench")]
    container: String,
    /// Objects per phase.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Bytes per object.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Requests in flight at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Container listings to GET after the HEAD phase.
    #[arg(long, default_value_t = 10)]
    listings: usize,
    /// Phases to run, in this order: put, get, head, list, delete.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "put,get,head,list,delete"
    )]
    phases: Vec<String>,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Print a JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// The figures of one phase.
#[derive(Serialize, Debug)]
pub struct PhaseReport {
    pub op: String,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU seconds this client spent during the phase.
    pub client_cpu_seconds: f64,
    /// The first error seen, for the operator to look at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Serialize, Debug)]
struct Report {
    endpoint: String,
    objects: usize,
    size: usize,
    concurrency: usize,
    cores: usize,
    phases: Vec<PhaseReport>,
}

const PHASES: [&str; 5] = ["put", "get", "head", "list", "delete"];

pub fn run(args: Args) -> ExitCode {
    if let Some(bad) = args.phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        eprintln!(
            "ringsmith bench: unknown phase {bad:?} (phases: {})",
            PHASES.join(", ")
        );
        return ExitCode::from(2);
    }
    if args.concurrency == 0 || !(args.timeout > 0.0 && args.timeout.is_finite()) {
        eprintln!("ringsmith bench: --concurrency and --timeout must be above 0");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ringsmith bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&args)) {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
            } else {
                print_table(&report);
            }
            if report.phases.iter().any(|p| p.errors > 0) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("ringsmith bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_table(r: &Report) {
    println!(
        "{} objects of {} bytes, concurrency {}, against {}",
        r.objects, r.size, r.concurrency, r.endpoint
    );
    println!(
        "{:<7}{:>9}{:>8}{:>11}{:>10}{:>10}{:>10}{:>12}",
        "op", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms", "client CPU"
    );
    for p in &r.phases {
        println!(
            "{:<7}{:>9}{:>8}{:>11.1}{:>10.2}{:>10.2}{:>10.2}{:>11.0}%",
            p.op.to_uppercase(),
            p.requests,
            p.errors,
            p.per_second,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            100.0 * p.client_cpu_seconds / p.seconds.max(1e-9) / r.cores as f64
        );
        if let Some(e) = &p.first_error {
            println!("       first error: {e}");
        }
    }
    println!(
        "(client CPU is a share of all {} cores: near 100% means the client was the limit)",
        r.cores
    );
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Session {
    client: reqwest::Client,
    storage_url: String,
    token: String,
}

async fn authenticate(args: &Args, client: &reqwest::Client) -> Result<Session, String> {
    let r = client
        .get(&args.auth)
        .header("X-Auth-User", &args.user)
        .header("X-Auth-Key", &args.key)
        .send()
        .await
        .map_err(|e| format!("auth request to {}: {e}", args.auth))?;
    if !r.status().is_success() {
        return Err(format!("auth answered {}", r.status()));
    }
    let get = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| format!("auth answer has no {name}"))
    };
    Ok(Session {
        storage_url: get("x-storage-url")?,
        token: get("x-auth-token")?,
        client: client.clone(),
    })
}

fn object_name(i: usize) -> String {
    format!("bench-{i:08}")
}

async fn bench(args: &Args) -> Result<Report, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let session = Arc::new(authenticate(args, &client).await?);
    let container_url = format!(
        "{}/{}",
        session.storage_url,
        ringsmith::swift::escape::quote(&args.container)
    );
    let r = session
        .client
        .put(&container_url)
        .header("X-Auth-Token", &session.token)
        .send()
        .await
        .map_err(|e| format!("PUT {container_url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("PUT {container_url} answered {}", r.status()));
    }
    let body = bytes::Bytes::from(
        (0..args.size)
            .map(|i| b"ringsmith bench "[i % 16])
            .collect::<Vec<u8>>(),
    );
    let mut phases = Vec::new();
    for phase in &args.phases {
        let count = if phase == "list" {
            args.listings
        } else {
            args.objects
        };
        let report = run_phase(
            phase,
            count,
            args.concurrency,
            session.clone(),
            Arc::new(container_url.clone()),
            body.clone(),
        )
        .await;
        phases.push(report);
    }
    Ok(Report {
        endpoint: session.storage_url.clone(),
        objects: args.objects,
        size: args.size,
        concurrency: args.concurrency,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        phases,
    })
}

/// One request of a phase: its status check and, for GET, the length check.
async fn one(
    phase: &str,
    i: usize,
    s: &Session,
    container_url: &str,
    body: &bytes::Bytes,
) -> Result<(), String> {
    let url = if phase == "list" {
        container_url.to_string()
    } else {
        format!("{container_url}/{}", object_name(i))
    };
    let req = match phase {
        "put" => s.client.put(&url).body(body.clone()),
        "get" | "list" => s.client.get(&url),
        "head" => s.client.head(&url),
        _ => s.client.delete(&url),
    };
    let r = req
        .header("X-Auth-Token", &s.token)
        .send()
        .await
        .map_err(|e| format!("{} {url}: {e}", phase.to_uppercase()))?;
    let status = r.status();
    let got = r.bytes().await.map_err(|e| format!("reading {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{} {url}: {status}", phase.to_uppercase()));
    }
    if phase == "get" && got.len() != body.len() {
        return Err(format!(
            "GET {url}: {} bytes, expected {}",
            got.len(),
            body.len()
        ));
    }
    Ok(())
}

async fn run_phase(
    phase: &str,
    count: usize,
    concurrency: usize,
    session: Arc<Session>,
    container_url: Arc<String>,
    body: bytes::Bytes,
) -> PhaseReport {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count.max(1)) {
        let (next, session, container_url, body) = (
            next.clone(),
            session.clone(),
            container_url.clone(),
            body.clone(),
        );
        let phase = phase.to_string();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                let outcome = one(&phase, i, &session, &container_url, &body).await;
                latencies.push(t.elapsed());
                if let Err(e) = outcome {
                    errors.push(e);
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::with_capacity(count);
    let mut errors = Vec::new();
    while let Some(done) = workers.join_next().await {
        if let Ok((l, e)) = done {
            latencies.extend(l);
            errors.extend(e);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    summarize(
        phase,
        latencies,
        errors,
        seconds,
        cpu_seconds() - cpu_before,
    )
}

/// The exact percentiles of a phase's latencies (nearest rank).
pub fn summarize(
    phase: &str,
    mut latencies: Vec<Duration>,
    errors: Vec<String>,
    seconds: f64,
    cpu: f64,
) -> PhaseReport {
    latencies.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let rank = |q: f64| {
        let n = latencies.len();
        if n == 0 {
            return None;
        }
        let idx = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        latencies.get(idx)
    };
    PhaseReport {
        op: phase.to_string(),
        requests: latencies.len(),
        errors: errors.len(),
        seconds,
        per_second: latencies.len() as f64 / seconds.max(1e-9),
        p50_ms: ms(rank(0.50)),
        p99_ms: ms(rank(0.99)),
        max_ms: ms(latencies.last()),
        client_cpu_seconds: cpu,
        first_error: errors.into_iter().next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let lat: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let r = summarize("get", lat, vec!["x".into()], 2.0, 0.5);
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(r.per_second, 50.0);
        assert_eq!(r.errors, 1);
        let empty = summarize("put", vec![], vec![], 1.0, 0.0);
        assert_eq!((empty.requests, empty.p99_ms), (0, 0.0));
    }
}

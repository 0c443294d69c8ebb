//! `ringsmith dispersion populate | report`: Swift's `swift-dispersion-populate` and
//! `swift-dispersion-report`. Populate places one container per container partition and one
//! object per object partition (up to `dispersion_coverage` percent); report lists them through
//! the proxy, then asks every primary node of each sampled partition directly (HEAD) whether it
//! holds its copy. Same config file, names, output lines, `--dump-json` and exit codes as Swift.

mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use ringsmith::ring::Ring;
use ringsmith::swift::conf::Section;
use ringsmith::swift::escape::quote;
use ringsmith::swift::{Conf, Policy, SwiftConf};

const DEFAULT_CONF: &str = "/etc/swift/dispersion.conf";

#[derive(Parser)]
pub struct Args {
    #[command(subcommand)]
    command: DispersionCommand,
}

#[derive(Subcommand)]
enum DispersionCommand {
    /// Create the sample containers and objects (like swift-dispersion-populate).
    Populate(PopulateArgs),
    /// Report how many copies of the samples are where the rings say (like swift-dispersion-report).
    Report(report::ReportArgs),
}

#[derive(Parser)]
pub struct PopulateArgs {
    /// The dispersion config file.
    #[arg(default_value = DEFAULT_CONF)]
    conf_file: PathBuf,
    /// Only run container population.
    #[arg(long)]
    container_only: bool,
    /// Only run object population.
    #[arg(long)]
    object_only: bool,
    /// Container suffix start value.
    #[arg(long, default_value_t = 0)]
    container_suffix_start: u64,
    /// Object suffix start value.
    #[arg(long, default_value_t = 0)]
    object_suffix_start: u64,
    /// Storage policy name (default: the default policy).
    #[arg(short = 'P', long)]
    policy_name: Option<String>,
    /// No overlap of partitions if running populate more than once: samples already in
    /// the cluster keep their partitions, and new ones go to partitions not yet sampled,
    /// raising the coverage by `dispersion_coverage` each run.
    #[arg(long)]
    no_overlap: bool,
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        DispersionCommand::Populate(a) => populate(a),
        DispersionCommand::Report(a) => report::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Swift ends with `exit(message)`: the message on stderr, status 1.
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The `[dispersion]` settings both commands share.
pub(crate) struct Settings {
    pub section: Section,
    pub swift_dir: PathBuf,
    pub retries: u32,
    pub concurrency: usize,
}

impl Settings {
    pub fn load(path: &Path) -> Result<Settings, String> {
        let unreadable = || format!("Unable to read config file: {}", path.display());
        if !path.is_file() {
            return Err(unreadable());
        }
        let conf = Conf::load(path)
            .map_err(|e| format!("{unreadable}: {e}", unreadable = unreadable()))?;
        let section = conf
            .require_section("dispersion")
            .map_err(|e| e.to_string())?;
        let swift_dir = PathBuf::from(section.str_or("swift_dir", "/etc/swift"));
        let retries = section
            .parse_or("retries", 5u32)
            .map_err(|e| e.to_string())?;
        let concurrency = section
            .parse_or("concurrency", 25usize)
            .map_err(|e| e.to_string())?
            .max(1);
        Ok(Settings {
            section,
            swift_dir,
            retries,
            concurrency,
        })
    }

    pub fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        self.section
            .bool_or(key, default)
            .map_err(|e| e.to_string())
    }

    pub fn required(&self, key: &str) -> Result<String, String> {
        self.section
            .get(key)
            .map(str::to_string)
            .ok_or_else(|| format!("[dispersion] {key} is required"))
    }

    /// swift.conf of `swift_dir` and the chosen (or default) policy.
    pub fn policy(&self, name: Option<&str>) -> Result<(SwiftConf, Policy), String> {
        let swift = SwiftConf::load(&self.swift_dir).map_err(|e| e.to_string())?;
        let policy = match name {
            None => swift.policies.default_policy().clone(),
            Some(n) => swift
                .policies
                .by_name(n)
                .cloned()
                .ok_or_else(|| format!("Unable to find policy: {n}"))?,
        };
        Ok((swift, policy))
    }

    pub fn ring(&self, swift: &SwiftConf, name: &str) -> Result<Ring, String> {
        let path = self.swift_dir.join(format!("{name}.ring.gz"));
        Ring::load(&path, swift.hash.clone()).map_err(|e| e.to_string())
    }
}

/// A v1 session with the proxy (tempauth / swauth style `auth_url`).
pub(crate) struct Session {
    pub client: reqwest::Client,
    pub storage_url: String,
    pub token: String,
    pub account: String,
    pub retries: u32,
}

impl Session {
    pub async fn auth(settings: &Settings) -> Result<Session, String> {
        let auth_url = settings.required("auth_url")?;
        let user = settings.required("auth_user")?;
        let key = settings.required("auth_key")?;
        let version = settings.section.str_or("auth_version", "1.0");
        if !matches!(version.as_str(), "1" | "1.0") {
            return Err(format!(
                "auth_version {version} is not supported (only 1.0)"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(&auth_url)
            .header("X-Auth-User", &user)
            .header("X-Auth-Key", &key)
            .send()
            .await
            .map_err(|e| format!("Auth GET failed: {auth_url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("Auth GET failed: {auth_url} {}", resp.status()));
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| format!("Auth GET {auth_url}: no {name} in the response"))
        };
        let storage_url = header("x-storage-url")?;
        let token = header("x-auth-token")?;
        let account = storage_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Session {
            client,
            storage_url,
            token,
            account,
            retries: settings.retries,
        })
    }

    /// One request through the proxy, retried like Swift's SimpleClient on errors and 5xx,
    /// backing off 1 s, 2 s, 4 s... up to 5 s. Returns the response and the attempts made.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(reqwest::Response, u32), String> {
        let url = format!("{}{}", self.storage_url, path);
        let mut backoff = 1.0f64;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut req = self
                .client
                .request(method.clone(), &url)
                .header("X-Auth-Token", &self.token);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let failure = match req.send().await {
                Ok(r) if r.status().is_success() => return Ok((r, attempts)),
                Ok(r) if r.status().is_server_error() => format!("{method} {url} {}", r.status()),
                Ok(r) => return Err(format!("{method} {url} {}", r.status())),
                Err(e) => format!("{method} {url}: {e}"),
            };
            if attempts > self.retries {
                return Err(failure);
            }
            tokio::time::sleep(Duration::from_secs_f64(backoff)).await;
            backoff = (backoff * 2.0).min(5.0);
        }
    }

    /// Every name in a listing (account when `container` is None), following markers.
    pub async fn list(
        &self,
        container: Option<&str>,
        prefix: &str,
    ) -> Result<Option<Vec<String>>, String> {
        let base = match container {
            Some(c) => format!("/{}", quote(c)),
            None => String::new(),
        };
        let mut names: Vec<String> = Vec::new();
        loop {
            let mut path = format!("{base}?format=json&prefix={}", quote(prefix));
            if let Some(last) = names.last() {
                path.push_str(&format!("&marker={}", quote(last.as_str())));
            }
            let resp = match self.request(reqwest::Method::GET, &path, &[], None).await {
                Ok((r, _)) => r,
                Err(e) if e.ends_with("404 Not Found") => return Ok(None),
                Err(e) => return Err(e),
            };
            let text = resp.text().await.map_err(|e| e.to_string())?;
            let page: Vec<serde_json::Value> = if text.is_empty() {
                Vec::new()
            } else {
                serde_json::from_str(&text).map_err(|e| format!("listing {path}: {e}"))?
            };
            if page.is_empty() {
                return Ok(Some(names));
            }
            for item in page {
                if let Some(n) = item.get("name").and_then(|n| n.as_str()) {
                    names.push(n.to_string());
                }
            }
        }
    }
}

/// Swift's `get_time_units`: seconds, minutes, hours or days.
pub(crate) fn time_units(secs: f64) -> (f64, &'static str) {
    let mut value = secs;
    for (unit, next) in [("s", 60.0), ("m", 60.0), ("h", 24.0)] {
        if value < next {
            return (value, unit);
        }
        value /= next;
    }
    (value, "d")
}

fn populate(args: PopulateArgs) -> Result<(), String> {
    let settings = Settings::load(&args.conf_file)?;
    let (swift, policy) = settings.policy(args.policy_name.as_deref())?;
    println!("Using storage policy: {} ", policy.name());
    let coverage: f64 = settings
        .section
        .parse_or("dispersion_coverage", 1.0)
        .map_err(|e| e.to_string())?;
    let containers = settings.flag("container_populate", true)? && !args.object_only;
    let objects = settings.flag("object_populate", true)? && !args.container_only;
    if !(containers || objects) {
        return Err("Neither container or object populate is set to run".into());
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let session = std::sync::Arc::new(Session::auth(&settings).await?);
        let policy_header = vec![("X-Storage-Policy", policy.name().to_string())];
        if containers {
            let ring = settings.ring(&swift, "container")?;
            let mut taken = Vec::new();
            if args.no_overlap {
                // Only this policy's sample containers: `dispersion_<index>_<n>` (Swift
                // lists the prefix without the last `_`, which also takes policy 1's
                // partitions for policy 10's samples).
                let prefix = format!("dispersion_{}_", policy.index);
                for name in session.list(None, &prefix).await?.unwrap_or_default() {
                    taken.extend(ring.get_part(&session.account, Some(&name), None).ok());
                }
            }
            let names = sample_names(coverage, ring.partition_count(), &taken, |n| {
                let name = format!("dispersion_{}_{n}", policy.index);
                let part = ring.get_part(&session.account, Some(&name), None).unwrap_or(u32::MAX);
                (part, name)
            });
            let begun = Instant::now();
            let mut jobs = Vec::new();
            for (suffix, name) in &names {
                if *suffix >= args.container_suffix_start {
                    jobs.push((format!("/{}", quote(name)), policy_header.clone(), None));
                }
            }
            let retries = put_all(&session, jobs, settings.concurrency).await?;
            let (e, unit) = time_units(begun.elapsed().as_secs_f64());
            println!(
                "\r\x1B[KCreated {} containers for dispersion reporting, {}{unit}, {retries} retries",
                names.len(),
                e.round()
            );
            if args.no_overlap {
                print_coverage("container", &taken, &names, ring.partition_count(), |name| {
                    ring.get_part(&session.account, Some(name), None).ok()
                });
            }
        }
        if objects {
            let container = format!("dispersion_objects_{}", policy.index);
            put_all(&session, vec![(format!("/{}", quote(&container)), policy_header.clone(), None)], 1).await?;
            let ring = settings.ring(&swift, &policy.ring_name())?;
            let mut taken = Vec::new();
            if args.no_overlap {
                let existing = session.list(Some(&container), "dispersion_").await?;
                for name in existing.unwrap_or_default() {
                    taken.extend(ring.get_part(&session.account, Some(&container), Some(&name)).ok());
                }
            }
            let names = sample_names(coverage, ring.partition_count(), &taken, |n| {
                let name = format!("dispersion_{n}");
                let part = ring.get_part(&session.account, Some(&container), Some(&name)).unwrap_or(u32::MAX);
                (part, name)
            });
            let begun = Instant::now();
            let mut jobs = Vec::new();
            for (suffix, name) in &names {
                if *suffix >= args.object_suffix_start {
                    let path = format!("/{}/{}", quote(&container), quote(name));
                    let headers = vec![("X-Object-Meta-Dispersion", name.clone())];
                    jobs.push((path, headers, Some(name.as_bytes().to_vec())));
                }
            }
            let retries = put_all(&session, jobs, settings.concurrency).await?;
            let (e, unit) = time_units(begun.elapsed().as_secs_f64());
            println!(
                "\r\x1B[KCreated {} objects for dispersion reporting, {}{unit}, {retries} retries",
                names.len(),
                e.round()
            );
            if args.no_overlap {
                print_coverage("object", &taken, &names, ring.partition_count(), |name| {
                    ring.get_part(&session.account, Some(&container), Some(name)).ok()
                });
            }
        }
        Ok(())
    })
}

/// `--no-overlap`'s line: the share of partitions sampled now, old samples and new.
fn print_coverage(
    kind: &str,
    taken_before: &[u32],
    names: &[(u64, String)],
    partitions: usize,
    part_of: impl Fn(&str) -> Option<u32>,
) {
    let mut covered = vec![false; partitions];
    let parts = taken_before
        .iter()
        .copied()
        .chain(names.iter().filter_map(|(_, n)| part_of(n)));
    for p in parts {
        if let Some(slot) = covered.get_mut(p as usize) {
            *slot = true;
        }
    }
    let count = covered.iter().filter(|&&c| c).count();
    println!(
        "\r\x1B[KTotal {kind} coverage is now {:.2}%.",
        count as f64 / partitions.max(1) as f64 * 100.0
    );
}

/// Names `name_for(0)`, `name_for(1)`... keeping only those that land on a partition not yet
/// taken (`taken_before`: partitions that already hold a sample, with `--no-overlap`),
/// until `coverage` percent of the partitions are taken (Swift's loop, float and all).
fn sample_names(
    coverage: f64,
    partitions: usize,
    taken_before: &[u32],
    name_for: impl Fn(u64) -> (u32, String),
) -> Vec<(u64, String)> {
    let mut need = coverage / 100.0 * partitions as f64;
    let mut taken = vec![false; partitions];
    let mut left = partitions;
    for &p in taken_before {
        if let Some(slot) = taken.get_mut(p as usize) {
            if !*slot {
                *slot = true;
                left -= 1;
            }
        }
    }
    let mut names = Vec::new();
    let mut suffix = 0u64;
    while need >= 1.0 && left > 0 {
        let (part, name) = name_for(suffix);
        if let Some(slot) = taken.get_mut(part as usize) {
            if !*slot {
                *slot = true;
                left -= 1;
                need -= 1.0;
                names.push((suffix, name));
            }
        }
        suffix += 1;
    }
    names
}

type PutJob = (String, Vec<(&'static str, String)>, Option<Vec<u8>>);

/// PUTs every job, `concurrency` at a time; the first failure stops populate, as in Swift
/// ("Gave up due to error(s).").
async fn put_all(
    session: &std::sync::Arc<Session>,
    jobs: Vec<PutJob>,
    concurrency: usize,
) -> Result<u32, String> {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for (path, headers, body) in jobs {
        let session = session.clone();
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        set.spawn(async move {
            let _permit = permit;
            let headers: Vec<(&str, String)> = headers;
            let body = Some(body.unwrap_or_default());
            session
                .request(reqwest::Method::PUT, &path, &headers, body)
                .await
                .map(|(_, attempts)| attempts - 1)
        });
    }
    let mut retries = 0;
    while let Some(done) = set.join_next().await {
        match done.map_err(|e| e.to_string())? {
            Ok(r) => retries += r,
            Err(e) => return Err(format!("ERROR: {e}\nGave up due to error(s).")),
        }
    }
    Ok(retries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_take_each_partition_once_up_to_the_coverage() {
        // Names 0..: partitions 0,0,1,2,1,3 → suffixes 0, 2, 3 cover 3 of 4 at 75%.
        let parts = [0u32, 0, 1, 2, 1, 3];
        let names = sample_names(75.0, 4, &[], |n| (parts[n as usize], format!("d_{n}")));
        assert_eq!(
            names.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        // Below one partition's worth nothing is made, as in Swift.
        assert!(sample_names(1.0, 64, &[], |n| (n as u32, String::new())).is_empty());
        // `--no-overlap`: partitions already sampled are skipped, and 50% more are taken.
        let names = sample_names(50.0, 4, &[0, 1], |n| (parts[n as usize], format!("d_{n}")));
        assert_eq!(
            names.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![3, 5]
        );
    }

    #[test]
    fn time_units_step_like_swift() {
        assert_eq!(time_units(5.0), (5.0, "s"));
        assert_eq!(time_units(120.0), (2.0, "m"));
        assert_eq!(time_units(7200.0), (2.0, "h"));
    }
}

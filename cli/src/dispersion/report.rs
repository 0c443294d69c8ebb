//! `ringsmith dispersion report`: list the samples through the proxy, then HEAD each primary
//! node of every sampled partition directly, counting the copies found.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ringsmith::device::Device;
use ringsmith::ring::Ring;
use ringsmith::swift::escape::quote;
use serde_json::{json, Map, Value};

use super::{time_units, Session, Settings, DEFAULT_CONF};

#[derive(Parser)]
pub struct ReportArgs {
    /// The dispersion config file.
    #[arg(default_value = DEFAULT_CONF)]
    conf_file: PathBuf,
    /// Dump the dispersion report in JSON format.
    #[arg(short = 'j', long)]
    dump_json: bool,
    /// Print 404s to standard error.
    #[arg(short, long)]
    debug: bool,
    /// Print missing partitions to standard error.
    #[arg(short, long)]
    partitions: bool,
    /// Only run the container report.
    #[arg(long)]
    container_only: bool,
    /// Only run the object report.
    #[arg(long)]
    object_only: bool,
    /// Storage policy name (default: the default policy).
    #[arg(short = 'P', long)]
    policy_name: Option<String>,
}

/// What one kind of sample (containers or objects) is, for the shared report loop.
struct Kind {
    singular: &'static str,
    plural: &'static str,
    label: &'static str,
    /// Swift drops the "missing 0 copies" count from the container report only.
    drop_complete: bool,
}

pub fn run(args: ReportArgs) -> Result<(), String> {
    let settings = Settings::load(&args.conf_file)?;
    let (swift, policy) = settings.policy(args.policy_name.as_deref())?;
    let json_output = args.dump_json || settings.flag("dump_json", false)?;
    if !json_output {
        println!("Using storage policy: {} ", policy.name());
    }
    let container_report = settings.flag("container_report", true)? && !args.object_only;
    let object_report = settings.flag("object_report", true)? && !args.container_only;
    if !(container_report || object_report) {
        return Err("Neither container or object report is set to run".into());
    }
    let partitions = args.partitions || settings.flag("partitions", false)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let output = runtime.block_on(async {
        let session = Arc::new(Session::auth(&settings).await?);
        let mut output = Map::new();
        let opts = Opts {
            json: json_output,
            partitions,
            debug: args.debug,
            concurrency: settings.concurrency,
        };
        if container_report {
            let ring = settings.ring(&swift, "container")?;
            let listed = session
                .list(None, &format!("dispersion_{}", policy.index))
                .await?
                .unwrap_or_default();
            let samples = listed
                .into_iter()
                .map(|c| {
                    let part = ring
                        .get_part(&session.account, Some(&c), None)
                        .map_err(|e| e.to_string())?;
                    Ok((
                        part,
                        format!("/{}/{}", quote(&session.account), quote(&c)),
                        None,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let kind = Kind {
                singular: "container",
                plural: "containers",
                label: "Container",
                drop_complete: true,
            };
            output.insert(
                "container".into(),
                one_report(&session, &ring, samples, &kind, &opts).await,
            );
        }
        if object_report {
            let ring = settings.ring(&swift, &policy.ring_name())?;
            let container = format!("dispersion_objects_{}", policy.index);
            let listed = session
                .list(Some(&container), "dispersion_")
                .await?
                .unwrap_or_default();
            let samples = listed
                .into_iter()
                .map(|o| {
                    let part = ring
                        .get_part(&session.account, Some(&container), Some(&o))
                        .map_err(|e| e.to_string())?;
                    let path = format!(
                        "/{}/{}/{}",
                        quote(&session.account),
                        quote(&container),
                        quote(&o)
                    );
                    Ok((part, path, Some(policy.index)))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let kind = Kind {
                singular: "object",
                plural: "objects",
                label: "Object",
                drop_complete: false,
            };
            output.insert(
                "object".into(),
                one_report(&session, &ring, samples, &kind, &opts).await,
            );
        }
        Ok::<_, String>(output)
    })?;
    if json_output {
        println!("{}", Value::Object(output));
    }
    Ok(())
}

struct Opts {
    json: bool,
    partitions: bool,
    debug: bool,
    concurrency: usize,
}

/// One report over (partition, backend path, policy index) samples; the JSON value
/// (null when there was nothing to query, as in Swift).
async fn one_report(
    session: &Arc<Session>,
    ring: &Ring,
    samples: Vec<(u32, String, Option<u32>)>,
    kind: &Kind,
    opts: &Opts,
) -> Value {
    let listed = samples.len();
    if listed == 0 {
        eprintln!(
            "No {} to query. Has swift-dispersion-populate been run?",
            kind.plural
        );
        return Value::Null;
    }
    let begun = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.concurrency));
    let mut set = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut expected = 0usize;
    for (part, path, policy_index) in samples {
        if !seen.insert(part) {
            continue;
        }
        let nodes: Vec<Device> = ring.get_part_nodes(part).iter().cloned().collect();
        expected += nodes.len();
        let session = session.clone();
        let permit = limit.clone().acquire_owned().await.expect("semaphore open");
        let (partitions, debug, label) = (opts.partitions, opts.debug, kind.label);
        set.spawn(async move {
            let _permit = permit;
            let mut found = 0;
            let mut retries = 0;
            for node in &nodes {
                if let Some(r) = head(&session, node, part, &path, policy_index, debug).await {
                    found += 1;
                    retries += r;
                }
            }
            let missing = nodes.len() - found;
            if partitions && missing > 0 {
                eprintln!(
                    "# {label} partition {part} missing {missing} cop{}",
                    if missing == 1 { "y" } else { "ies" }
                );
            }
            (found, missing, retries)
        });
    }
    let mut found = 0;
    let mut retries = 0;
    // Ordered by missing count so the lines come out the same from run to run.
    let mut missing_counts: BTreeMap<usize, usize> = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (f, m, r) = done.expect("dispersion task");
        found += f;
        retries += r;
        *missing_counts.entry(m).or_default() += 1;
    }
    if kind.drop_complete {
        missing_counts.remove(&0);
    }
    let distinct = seen.len();
    let pct = 100.0 * found as f64 / expected as f64;
    if !opts.json {
        let (e, unit) = time_units(begun.elapsed().as_secs_f64());
        println!(
            "\r\x1B[KQueried {listed} {} for dispersion reporting, {}{unit}, {retries} retries",
            kind.plural,
            e.round()
        );
        if listed > distinct {
            println!("There were {} overlapping partitions", listed - distinct);
        }
        for (missing, parts) in &missing_counts {
            println!("{}", missing_line(*parts, *missing, ring.replica_count()));
        }
        println!(
            "{pct:.2}% of {} copies found ({found} of {expected})",
            kind.singular
        );
        println!(
            "Sample represents {:.2}% of the {} partition space",
            100.0 * distinct as f64 / ring.partition_count() as f64,
            kind.singular
        );
        return Value::Null;
    }
    let mut result = Map::new();
    result.insert("retries".into(), json!(retries));
    result.insert("overlapping".into(), json!(listed - distinct));
    result.insert("pct_found".into(), json!(pct));
    result.insert("copies_found".into(), json!(found));
    result.insert("copies_expected".into(), json!(expected));
    for (missing, parts) in &missing_counts {
        result.insert(format!("missing_{missing}"), json!(parts));
    }
    Value::Object(result)
}

/// HEAD one copy on its node, retrying connection errors and 5xx (not 507) like Swift's
/// direct_client.retry. Some(retries used) when the copy is there.
async fn head(
    session: &Session,
    node: &Device,
    part: u32,
    path: &str,
    policy: Option<u32>,
    debug: bool,
) -> Option<u32> {
    let host = if node.ip.contains(':') {
        format!("[{}]", node.ip)
    } else {
        node.ip.clone()
    };
    let url = format!(
        "http://{host}:{}/{}/{part}{path}",
        node.port,
        quote(&node.device)
    );
    let who = format!("{}:{}/{}", node.ip, node.port, node.device);
    let mut backoff = 1.0f64;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut req = session.client.head(&url).timeout(Duration::from_secs(15));
        if let Some(p) = policy {
            req = req.header("X-Backend-Storage-Policy-Index", p.to_string());
        }
        let error = match req.send().await {
            Ok(r) if r.status().is_success() => return Some(attempts - 1),
            Ok(r) if r.status().as_u16() == 404 => {
                if debug {
                    eprintln!("ERROR: {who} returned a 404");
                }
                return None;
            }
            Ok(r) if r.status().as_u16() == 507 => {
                eprintln!(
                    "ERROR: {who} is unmounted -- This will cause replicas designated for that device \
                     to be considered missing until resolved or the ring is updated."
                );
                return None;
            }
            Ok(r) if r.status().is_server_error() => format!("{} from {who}", r.status()),
            Ok(r) => {
                eprintln!("ERROR: {who}: Giving up on /{part}{path}: {}", r.status());
                return None;
            }
            Err(e) => format!("{e}"),
        };
        eprintln!("ERROR: {who}: {error}");
        if attempts > session.retries {
            eprintln!("ERROR: {who}: Giving up on /{part}{path}: {error}");
            return None;
        }
        tokio::time::sleep(Duration::from_secs_f64(backoff)).await;
        backoff = (backoff * 2.0).min(5.0);
    }
}

/// Swift's `missing_string`: "! There were 3 partitions missing 2 copies." and so on.
fn missing_line(parts: usize, missing: usize, replicas: f64) -> String {
    let (mut alarm, mut count) = ("", missing.to_string());
    if missing as f64 == replicas {
        alarm = "!!! ";
        count = "all".into();
    } else if replicas - missing as f64 == 1.0 {
        alarm = "! ";
    }
    let (verb, noun) = if parts > 1 {
        ("were", "partitions")
    } else {
        ("was", "partition")
    };
    let copies = if missing == 1 { "copy" } else { "copies" };
    format!("{alarm}There {verb} {parts} {noun} missing {count} {copies}.")
}

#[cfg(test)]
mod tests {
    use super::missing_line;

    #[test]
    fn missing_lines_read_like_swift() {
        assert_eq!(
            missing_line(1, 1, 3.0),
            "There was 1 partition missing 1 copy."
        );
        assert_eq!(
            missing_line(5, 2, 3.0),
            "! There were 5 partitions missing 2 copies."
        );
        assert_eq!(
            missing_line(2, 3, 3.0),
            "!!! There were 2 partitions missing all copies."
        );
        assert_eq!(
            missing_line(64, 0, 3.0),
            "There were 64 partitions missing 0 copies."
        );
    }
}

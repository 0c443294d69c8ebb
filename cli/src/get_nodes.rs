//! `ringsmith get-nodes`: where an account, container or object lives — the same report
//! as `swift-get-nodes`, line for line, or the same facts as JSON with `--json`.
//!
//! Usage mirrors Swift's: `get-nodes [-a] <ring.gz> <account> [<container> [<object>]]`,
//! `get-nodes [-a] <ring.gz> -p <partition>`, `get-nodes [-a] -P <policy> <account> ...` (the
//! policy's object ring; account and container rings for shorter paths), or the path as one
//! argument (`a/c/o`).
//! Without `--all` the report lists as many handoffs as there are primaries. The hash
//! prefix and suffix come from `<swift-dir>/swift.conf` (`--swift-dir`, else `$SWIFT_DIR`,
//! else `/etc/swift`); a partition lookup (`-p`) does not need them.
//!
//! The text follows Swift's `print_item_locations` exactly (tabs, blank lines, the
//! `WARNING:` lines when the ring's name does not match the kind of path, the object
//! data directory `objects-N` and the policy-index header for `object-N` rings), except
//! that a partition-only report does not put Swift's bogus `/None` path into its curl
//! commands (see docs/differences.md).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ringsmith::device::Device;
use ringsmith::hash::{swift_dir, HashConfig};
use ringsmith::ring::format::device_json;
use ringsmith::ring::Ring;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// `[<ring.gz>] <account> [<container> [<object>]]`: the ring file (e.g.
    /// /etc/swift/object.ring.gz, unless -P names a policy) and the path, which may also be
    /// one `account/container/object` argument.
    #[arg(num_args = 0..=4, value_name = "ARG")]
    pub args: Vec<String>,
    /// Use the ring of this storage policy (name or alias from swift.conf) instead of a
    /// ring file; account and container paths use the account and container rings.
    #[arg(short = 'P', long = "policy-name")]
    pub policy_name: Option<String>,
    /// Show the nodes of this partition instead of looking a path up.
    #[arg(short = 'p', long)]
    pub partition: Option<u32>,
    /// Show all handoff nodes (default: as many as there are primaries).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Directory holding swift.conf (default: $SWIFT_DIR, else /etc/swift).
    #[arg(short = 'd', long)]
    pub swift_dir: Option<PathBuf>,
    /// The path arguments are URL-quoted (%XX); unquote them first.
    #[arg(short = 'Q', long)]
    pub quoted: bool,
    /// Print JSON instead of Swift's text report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    match report(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("ringsmith get-nodes: {msg}");
            ExitCode::from(1)
        }
    }
}

/// What is being looked up.
struct Target {
    account: Option<String>,
    container: Option<String>,
    object: Option<String>,
}

/// Which ring to read, and what Swift derives from how it was chosen.
struct Source {
    ring: PathBuf,
    /// The ring's name (`object-1`); `None` for the account/container ring a policy
    /// lookup falls back to (Swift then prints no name warnings).
    ring_name: Option<String>,
    policy_index: Option<u32>,
}

fn resolve(args: &Args) -> Result<(Source, Target), String> {
    let mut rest = args.args.clone();
    let mut ring_file = None;
    // As in Swift: with -P no argument is a ring file; otherwise the first one is if it
    // ends in .ring.gz.
    if args.policy_name.is_none() && rest.first().is_some_and(|a| a.ends_with(".ring.gz")) {
        ring_file = Some(PathBuf::from(rest.remove(0)));
    }
    if rest.len() > 3 {
        return Err(
            "invalid arguments: expected [<ring.gz>] <account> [<container> [<object>]]".into(),
        );
    }
    let target = parse_target(rest, args)?;
    let source = match (ring_file, &args.policy_name) {
        (Some(ring), _) => Source {
            ring_name: Some(ring_name(&ring)),
            ring,
            policy_index: None,
        },
        (None, Some(name)) => {
            let dir = swift_dir(args.swift_dir.as_deref());
            let index = policy_index_by_name(&dir, name)?;
            let ring_in = |n: &str| dir.join(format!("{n}.ring.gz"));
            if target.object.is_some() || args.partition.is_some() {
                let n = if index == 0 {
                    "object".to_string()
                } else {
                    format!("object-{index}")
                };
                Source {
                    ring: ring_in(&n),
                    ring_name: Some(n),
                    policy_index: Some(index),
                }
            } else {
                let kind = if target.container.is_some() {
                    "container"
                } else {
                    "account"
                };
                Source {
                    ring: ring_in(kind),
                    ring_name: None,
                    policy_index: None,
                }
            }
        }
        (None, None) => return Err("need a <ring.gz> or -P <policy name>".into()),
    };
    Ok((source, target))
}

/// The index of the storage policy called `name` (or with that alias), as Swift's
/// `POLICIES.get_by_name` finds it in `<swift_dir>/swift.conf`: case-insensitive, and a
/// cluster without `[storage-policy:N]` sections has policy 0 named `Policy-0`.
fn policy_index_by_name(swift_dir: &std::path::Path, name: &str) -> Result<u32, String> {
    let path = swift_dir.join("swift.conf");
    let conf = ringsmith::swift::Conf::load(&path).map_err(|e| e.to_string())?;
    let policies = ringsmith::swift::Policies::from_conf(&conf).map_err(|e| e.to_string())?;
    policies
        .by_name(name)
        .map(|p| p.index)
        .ok_or_else(|| format!("no policy named {name:?} in {}", path.display()))
}

fn parse_target(args_rest: Vec<String>, args: &Args) -> Result<Target, String> {
    let mut parts: Vec<String> = if args.quoted {
        args_rest.iter().map(|p| unquote(p)).collect()
    } else {
        args_rest
    };
    if parts.len() == 1 {
        let whole = parts.remove(0);
        parts = whole
            .trim_matches('/')
            .splitn(3, '/')
            .map(str::to_string)
            .collect();
    }
    let mut it = parts.into_iter().map(|s| Some(s).filter(|s| !s.is_empty()));
    let t = Target {
        account: it.next().flatten(),
        container: it.next().flatten(),
        object: it.next().flatten(),
    };
    if (t.container.is_some() || t.object.is_some()) && t.account.is_none() {
        return Err("no account specified".into());
    }
    if t.object.is_some() && t.container.is_none() {
        return Err("no container specified".into());
    }
    if t.account.is_none() && args.partition.is_none() {
        return Err(
            "no target specified: give <account> [<container> [<object>]] or -p <partition>".into(),
        );
    }
    Ok(t)
}

fn report(args: &Args) -> Result<String, String> {
    let (source, target) = resolve(args)?;
    let by_path = target.account.is_some() && args.partition.is_none();
    let hash = if by_path {
        let dir = swift_dir(args.swift_dir.as_deref());
        HashConfig::load(&dir).map_err(|e| e.to_string())?
    } else {
        HashConfig::default()
    };
    let ring = Ring::load(&source.ring, hash).map_err(|e| e.to_string())?;
    let ring_name = source.ring_name.clone().unwrap_or_default();
    let named = source.ring_name.is_some();

    let part = match args.partition {
        Some(p) if (p as usize) < ring.partition_count() => p,
        Some(p) => {
            return Err(format!(
                "partition {p} is out of range: {} has {} partitions",
                source.ring.display(),
                ring.partition_count()
            ))
        }
        None => ring
            .get_part(
                target.account.as_deref().unwrap_or_default(),
                target.container.as_deref(),
                target.object.as_deref(),
            )
            .map_err(|e| e.to_string())?,
    };
    let path_hash = by_path.then(|| {
        ring.hash_config()
            .hash_path(
                target.account.as_deref().unwrap_or_default(),
                target.container.as_deref(),
                target.object.as_deref(),
            )
            .expect("the target was validated above")
    });
    let primaries: Vec<&Device> = ring.get_part_nodes(part).iter().collect();
    let handoffs: Vec<&Device> = if args.all {
        ring.get_more_nodes(part).collect()
    } else {
        ring.get_more_nodes(part).take(primaries.len()).collect()
    };

    // The data directory and policy index, as Swift derives them from the ring's name.
    let object_policy = ring_name
        .starts_with("object")
        .then(|| ring_name.rsplit_once('-'))
        .flatten()
        .and_then(|(_, n)| n.parse::<u32>().ok());
    let mut warnings = Vec::new();
    let mut policy_index = source.policy_index;
    let mut datadir = if ring_name.starts_with("object") && ring_name.contains('-') {
        format!(
            "objects-{}",
            ring_name.split_once('-').map(|x| x.1).unwrap_or("")
        )
    } else {
        format!("{ring_name}s")
    };
    if target.account.is_some() && target.container.is_some() && target.object.is_some() {
        datadir = "objects".into();
        if let Some(n) = object_policy {
            policy_index = Some(n);
            datadir = format!("objects-{n}");
        }
    } else if target.account.is_some() && target.container.is_some() {
        datadir = "containers".into();
        if named && ring_name != "container" {
            warnings.push("WARNING: account/container specified but ring not named \"container\"");
        }
    } else if target.account.is_some() {
        datadir = "accounts".into();
        if named && ring_name != "account" {
            warnings.push("WARNING: account specified but ring not named \"account\"");
        }
    }

    if args.json {
        let node = |d: &Device, key: &str, i: usize| {
            let mut v = device_json(d);
            v[key] = json!(i);
            v
        };
        let out = json!({
            "ring": source.ring.display().to_string(),
            "account": target.account,
            "container": target.container,
            "object": target.object,
            "partition": part,
            "hash": path_hash,
            "datadir": datadir,
            "policy_index": policy_index,
            "primaries": primaries.iter().enumerate().map(|(i, d)| node(d, "index", i)).collect::<Vec<Value>>(),
            "handoffs": handoffs.iter().enumerate().map(|(i, d)| node(d, "handoff_index", i)).collect::<Vec<Value>>(),
        });
        return Ok(serde_json::to_string_pretty(&out).expect("JSON of plain values") + "\n");
    }

    let mut o = String::new();
    for w in warnings {
        writeln!(o, "{w}").unwrap();
    }
    if let Some(a) = &target.account {
        writeln!(o, "\nAccount  \t{}", quote(a)).unwrap();
    }
    if let Some(c) = &target.container {
        writeln!(o, "Container\t{}", quote(c)).unwrap();
    }
    if let Some(ob) = &target.object {
        writeln!(o, "Object   \t{}\n\n", quote(ob)).unwrap();
    }
    writeln!(o, "Partition\t{part}").unwrap();
    writeln!(o, "Hash     \t{}\n", path_hash.as_deref().unwrap_or("None")).unwrap();
    for d in &primaries {
        writeln!(o, "Server:Port Device\t{}:{} {}", d.ip, d.port, d.device).unwrap();
    }
    for d in &handoffs {
        writeln!(
            o,
            "Server:Port Device\t{}:{} {}\t [Handoff]",
            d.ip, d.port, d.device
        )
        .unwrap();
    }
    writeln!(o, "\n").unwrap();
    let target_path = match (&target.account, &target.container, &target.object) {
        (Some(a), Some(c), Some(ob)) if by_path => Some(format!("{a}/{c}/{ob}")),
        (Some(a), Some(c), None) if by_path => Some(format!("{a}/{c}")),
        (Some(a), None, None) if by_path => Some(a.clone()),
        _ => None,
    };
    let curl = |d: &Device| {
        let mut cmd = format!(
            "curl -g -I -XHEAD \"http://{}:{}/{}/{part}",
            bracket_ipv6(&d.ip),
            d.port,
            d.device
        );
        if let Some(t) = &target_path {
            write!(cmd, "/{}", quote(t)).unwrap();
        }
        cmd.push('"');
        if let Some(n) = policy_index {
            write!(cmd, " -H \"X-Backend-Storage-Policy-Index: {n}\"").unwrap();
        }
        cmd.push_str(" --path-as-is");
        cmd
    };
    for d in &primaries {
        writeln!(o, "{}", curl(d)).unwrap();
    }
    for d in &handoffs {
        writeln!(o, "{} # [Handoff]", curl(d)).unwrap();
    }
    writeln!(o, "\n\nUse your own device location of servers:").unwrap();
    writeln!(o, "such as \"export DEVICE=/srv/node\"").unwrap();
    let location = match &path_hash {
        Some(h) => format!("{datadir}/{part}/{}/{h}", &h[h.len() - 3..]),
        None => format!("{datadir}/{part}"),
    };
    for d in &primaries {
        writeln!(
            o,
            "ssh {} \"ls -lah ${{DEVICE:-/srv/node*}}/{}/{location}\"",
            d.ip, d.device
        )
        .unwrap();
    }
    for d in &handoffs {
        writeln!(
            o,
            "ssh {} \"ls -lah ${{DEVICE:-/srv/node*}}/{}/{location}\" # [Handoff]",
            d.ip, d.device
        )
        .unwrap();
    }
    writeln!(
        o,
        "\nnote: `/srv/node*` is used as default value of `devices`, the real value is set in the config file on each storage node."
    )
    .unwrap();
    Ok(o)
}

/// `object-1` for `/etc/swift/object-1.ring.gz` (Swift strips `.ring.gz`).
fn ring_name(path: &std::path::Path) -> String {
    let base = path
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    match base.strip_suffix(".ring.gz") {
        Some(n) => n.to_string(),
        None => base.strip_suffix(".gz").unwrap_or(&base).to_string(),
    }
}

pub(crate) fn bracket_ipv6(ip: &str) -> String {
    if ip
        .split('%')
        .next()
        .unwrap_or(ip)
        .parse::<std::net::Ipv6Addr>()
        .is_ok()
    {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

use ringsmith::swift::escape::{quote, unquote};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_names() {
        assert_eq!(
            ring_name("/etc/swift/object-1.ring.gz".as_ref()),
            "object-1"
        );
        assert_eq!(ring_name("x.gz".as_ref()), "x");
    }
}

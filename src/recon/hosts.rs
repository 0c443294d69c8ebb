//! Which servers to ask: host discovery from the rings of a swift dir.
//!
//! `swift-recon` asks every distinct `(ip, port)` that appears in a device of the rings of
//! the chosen server type: `account.ring.gz`, `container.ring.gz`, or for objects the ring
//! of every storage policy named in `swift.conf` (`object.ring.gz` for policy 0,
//! `object-N.ring.gz` for policy N), narrowed by `--policy` (name, alias or index),
//! `--region` and `--zone`. A host with many disks is therefore asked once.
//!
//! Recon needs only the device list of a ring, never its partition table, so
//! [`ring_devices`] inflates a `ring.gz` just far enough to read the device JSON (the first
//! section of both formats): on a large ring that skips tens of megabytes of assignments.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::device::Device;
use crate::swift::policy::{Policies, Policy};

/// A storage server as recon sees it: one `ip:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Host {
    pub ip: String,
    pub port: u16,
}

impl Ord for Host {
    /// Addresses in numeric order (127.0.0.2 before 127.0.0.10), names after them.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |h: &Host| {
            let ip = h.ip.trim_start_matches('[').trim_end_matches(']');
            let parsed = ip.parse::<std::net::IpAddr>().ok();
            (parsed.is_none(), parsed)
        };
        key(self)
            .cmp(&key(other))
            .then_with(|| self.ip.cmp(&other.ip))
            .then_with(|| self.port.cmp(&other.port))
    }
}

impl PartialOrd for Host {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Host {
    pub fn new(ip: impl Into<String>, port: u16) -> Self {
        Host {
            ip: ip.into(),
            port,
        }
    }

    /// `ip:port`, IPv6 addresses in brackets (what `urlparse(url).netloc` prints).
    pub fn netloc(&self) -> String {
        if self.ip.contains(':') && !self.ip.starts_with('[') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }

    /// `http://ip:port/recon/<check>`.
    pub fn recon_url(&self, check: &str) -> String {
        format!("http://{}/recon/{}", self.netloc(), check)
    }

    /// `http://ip:port/`, the URL `--validate-servers` sends OPTIONS to.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.netloc())
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.netloc())
    }
}

/// The three kinds of storage server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerType {
    Account,
    Container,
    Object,
}

impl ServerType {
    pub const ALL: [ServerType; 3] = [
        ServerType::Account,
        ServerType::Container,
        ServerType::Object,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerType::Account => "account",
            ServerType::Container => "container",
            ServerType::Object => "object",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ServerType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a ring file: {reason}")]
    BadRing { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    BadConf { path: PathBuf, reason: String },
    #[error("Invalid Storage Policy: {0}")]
    UnknownPolicy(String),
}

/// Which ring names serve a server type (`--policy` narrows the object rings).
pub fn ring_names(
    swift_dir: &Path,
    server_type: ServerType,
    policy: Option<&str>,
) -> Result<Vec<String>, HostsError> {
    if server_type != ServerType::Object {
        return Ok(vec![server_type.as_str().to_string()]);
    }
    let path = swift_dir.join("swift.conf");
    let policies = Policies::load(swift_dir).map_err(|e| HostsError::BadConf {
        path,
        reason: e.to_string(),
    })?;
    let names: Vec<String> = match policy.filter(|w| !w.is_empty()) {
        None => policies.iter().map(Policy::ring_name).collect(),
        Some(wanted) => policies
            .by_name_or_index(wanted)
            .map(Policy::ring_name)
            .into_iter()
            .collect(),
    };
    if names.is_empty() {
        return Err(HostsError::UnknownPolicy(policy.unwrap_or("").to_string()));
    }
    Ok(names)
}

/// `--region` / `--zone`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFilter {
    pub region: Option<u32>,
    pub zone: Option<u32>,
}

impl HostFilter {
    pub fn accepts(&self, d: &Device) -> bool {
        self.region.is_none_or(|r| d.region == r) && self.zone.is_none_or(|z| d.zone == z)
    }
}

/// The distinct hosts of a set of devices, sorted (so every report lists them in the same
/// order, unlike `swift-recon`'s set order).
pub fn hosts_of<'a>(devs: impl IntoIterator<Item = &'a Device>, filter: &HostFilter) -> Vec<Host> {
    let set: BTreeSet<Host> = devs
        .into_iter()
        .filter(|d| filter.accepts(d))
        .filter_map(|d| Some(Host::new(d.ip.clone(), u16::try_from(d.port).ok()?)))
        .collect();
    set.into_iter().collect()
}

/// The hosts `swift-recon` would ask for one server type.
pub fn discover_hosts(
    swift_dir: &Path,
    server_type: ServerType,
    policy: Option<&str>,
    filter: &HostFilter,
) -> Result<Vec<Host>, HostsError> {
    let mut devs = Vec::new();
    for name in ring_names(swift_dir, server_type, policy)? {
        let path = swift_dir.join(format!("{name}.ring.gz"));
        devs.extend(ring_devices(&path)?);
    }
    Ok(hosts_of(&devs, filter))
}

/// The devices of a `ring.gz` (v1 or v2), holes dropped, read without the partition table.
///
/// Both formats start, after the `R1NG` magic and a big-endian u16 version, with JSON:
/// v1 has a u32 length and one object holding `devs`; v2 has sections, each a u64 length
/// and JSON, the metadata section first and then the device list.
pub fn ring_devices(path: &Path) -> Result<Vec<Device>, HostsError> {
    let file = std::fs::File::open(path).map_err(|source| HostsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| HostsError::BadRing {
        path: path.to_path_buf(),
        reason,
    };
    let mut z = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let mut head = [0u8; 6];
    z.read_exact(&mut head)
        .map_err(|e| bad(format!("cannot read the header: {e}")))?;
    if &head[..4] != b"R1NG" {
        return Err(bad("bad magic (expected R1NG)".into()));
    }
    let version = u16::from_be_bytes([head[4], head[5]]);
    let devs = match version {
        1 => {
            let len = read_be(&mut z, 4).map_err(|e| bad(format!("truncated header: {e}")))?;
            let meta = read_json(&mut z, len).map_err(bad)?;
            meta.get("devs").cloned().unwrap_or_default()
        }
        2 => {
            let len = read_be(&mut z, 8).map_err(|e| bad(format!("truncated section: {e}")))?;
            let _metadata = read_json(&mut z, len).map_err(bad)?;
            let len = read_be(&mut z, 8).map_err(|e| bad(format!("truncated section: {e}")))?;
            read_json(&mut z, len).map_err(bad)?
        }
        v => return Err(bad(format!("unsupported ring format version {v}"))),
    };
    let list = devs
        .as_array()
        .ok_or_else(|| bad("the device list is not a JSON list".into()))?;
    list.iter()
        .filter(|d| !d.is_null())
        .map(|d| {
            serde_json::from_value::<Device>(d.clone())
                .map_err(|e| bad(format!("bad device {d}: {e}")))
        })
        .collect()
}

/// A big-endian unsigned integer of `width` bytes.
fn read_be(r: &mut impl Read, width: usize) -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf[8 - width..])?;
    Ok(u64::from_be_bytes(buf))
}

/// `len` bytes of JSON. The device JSON is small next to the table, but the length is
/// bounded so a corrupt one cannot make us allocate gigabytes.
fn read_json(r: &mut impl Read, len: u64) -> Result<serde_json::Value, String> {
    const MAX_JSON: u64 = 1 << 30;
    if len > MAX_JSON {
        return Err(format!("implausible JSON length {len}"));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)
        .map_err(|e| format!("truncated JSON: {e}"))?;
    serde_json::from_slice(&buf).map_err(|e| format!("bad JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ring_names_follow_the_policies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("swift.conf"),
            "[swift-hash]\nswift_hash_path_suffix = x\n\n[storage-policy:0]\nname = gold\n\
             default = yes\n\n[storage-policy:2]\nname = ec\naliases = fast, cheap\n",
        )
        .unwrap();
        let names = |p: Option<&str>| ring_names(dir.path(), ServerType::Object, p);
        assert_eq!(names(None).unwrap(), vec!["object", "object-2"]);
        // Swift's get_by_name_or_index: an index, or a name in any case.
        assert_eq!(names(Some("CHEAP")).unwrap(), vec!["object-2"]);
        assert_eq!(names(Some("2")).unwrap(), vec!["object-2"]);
        assert_eq!(names(Some("0")).unwrap(), vec!["object"]);
        assert!(matches!(
            names(Some("7")),
            Err(HostsError::UnknownPolicy(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            ring_names(empty.path(), ServerType::Object, None).unwrap(),
            vec!["object"]
        );
    }

    #[test]
    fn hosts_are_distinct_filtered_and_sorted() {
        let dev = |ip: &str, port: u32, region: u32, zone: u32| Device {
            id: 0,
            region,
            zone,
            ip: ip.into(),
            port,
            replication_ip: ip.into(),
            replication_port: port,
            device: "d1".into(),
            weight: 1.0,
            meta: String::new(),
            extra: Default::default(),
        };
        let devs = vec![
            dev("127.0.0.2", 6200, 1, 2),
            dev("127.0.0.1", 6200, 1, 1),
            dev("127.0.0.1", 6200, 1, 1),
            dev("127.0.0.1", 6210, 2, 1),
        ];
        let all = hosts_of(&devs, &HostFilter::default());
        assert_eq!(
            all.iter().map(Host::netloc).collect::<Vec<_>>(),
            ["127.0.0.1:6200", "127.0.0.1:6210", "127.0.0.2:6200"]
        );
        let z1 = hosts_of(
            &devs,
            &HostFilter {
                region: Some(1),
                zone: Some(1),
            },
        );
        assert_eq!(z1, vec![Host::new("127.0.0.1", 6200)]);
        assert_eq!(
            Host::new("::1", 6200).recon_url("load"),
            "http://[::1]:6200/recon/load"
        );
    }

    #[test]
    fn device_list_agrees_with_the_full_ring_loader_on_swift_made_rings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rings");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if !path.to_string_lossy().ends_with(".ring.gz") {
                continue;
            }
            let full = crate::ring::RingData::load(&path).unwrap();
            let want: Vec<Device> = full.devs.into_iter().flatten().collect();
            assert_eq!(ring_devices(&path).unwrap(), want, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 2, "no ring fixtures in {}", dir.display());
    }

    #[test]
    fn bad_ring_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("object.ring.gz");
        std::fs::write(&p, b"not gzip").unwrap();
        let e = ring_devices(&p).unwrap_err().to_string();
        assert!(e.contains("object.ring.gz") && e.contains("header"), "{e}");
        let missing = ring_devices(&dir.path().join("nope.ring.gz"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope.ring.gz"), "{missing}");
    }
}

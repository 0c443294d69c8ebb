//! A storage device as Swift's rings describe it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One device (a disk) of a ring. Field names and meanings are Swift's.
///
/// `extra` keeps any key Swift's dicts carry that Ringsmith does not model, so that a
/// builder or ring read from Swift is written back with nothing lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: u32,
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u32,
    pub replication_ip: String,
    pub replication_port: u32,
    pub device: String,
    pub weight: f64,
    pub meta: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A failure domain, from widest to narrowest. Swift's tiers are tuples
/// `(region,)`, `(region, zone)`, `(region, zone, ip)` and `(region, zone, ip, id)`;
/// the server tier is the IP alone (several ports on one IP are one server).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Region(u32),
    Zone(u32, u32),
    Server(u32, u32, String),
    Device(u32, u32, String, u32),
}

impl Tier {
    /// 1 for a region up to 4 for a device, as `len(tier)` in Swift.
    pub fn depth(&self) -> usize {
        match self {
            Tier::Region(..) => 1,
            Tier::Zone(..) => 2,
            Tier::Server(..) => 3,
            Tier::Device(..) => 4,
        }
    }
}

impl Device {
    /// The four tiers this device belongs to, widest first.
    pub fn tiers(&self) -> [Tier; 4] {
        [
            Tier::Region(self.region),
            Tier::Zone(self.region, self.zone),
            Tier::Server(self.region, self.zone, self.ip.clone()),
            Tier::Device(self.region, self.zone, self.ip.clone(), self.id),
        ]
    }

    /// Swift's one-line description, e.g. `d0r1z1-10.0.0.1:6200R10.0.0.1:6200/sda_""`.
    pub fn describe(&self) -> String {
        format!(
            "d{}r{}z{}-{}:{}R{}:{}/{}_\"{}\"",
            self.id,
            self.region,
            self.zone,
            bracket_ipv6(&self.ip),
            self.port,
            bracket_ipv6(&self.replication_ip),
            self.replication_port,
            self.device,
            self.meta
        )
    }
}

/// Swift prints IPv6 addresses in brackets wherever an address is followed by a port.
pub fn bracket_ipv6(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

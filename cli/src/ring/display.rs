//! The reports: the default view, the `search` table, the dispersion report and the view of
//! a bare ring file — as text laid out column for column like swift-ring-builder's (people
//! and scripts read those), or as the JSON documents described in `docs/json.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use ringsmith::builder::syntax::is_valid_ipv6;
use ringsmith::builder::RingBuilder;
use ringsmith::device::{bracket_ipv6, Device};
use ringsmith::ring::{RingData, NONE_DEV};

use super::pyfmt::timedelta;
use super::ring_io;
use super::{now_secs, CmdResult, Ctx, Fail, EXIT_SUCCESS};

pub use ringsmith::builder::MAX_BALANCE;

/// Swift's text for a ring whose devices all have zero weight (or were all removed).
pub const EMPTY_RING: &str = "There are no devices in this ring, or all devices have been deleted";

/// One device in a JSON report.
#[derive(Serialize)]
pub struct DeviceJson {
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
    pub partitions: u64,
    pub balance: f64,
    pub marked_for_removal: bool,
}

fn total_weight(builder: &RingBuilder) -> f64 {
    builder.devs.iter().flatten().map(|d| d.dev.weight).sum()
}

/// Balance per device id, or `None` when the ring has no weight at all (Swift's EmptyRingError).
pub fn balances(builder: &RingBuilder) -> Option<BTreeMap<u32, f64>> {
    if total_weight(builder) <= 0.0 {
        return None;
    }
    Some(builder.balance_per_dev().into_iter().collect())
}

fn device_json(builder: &RingBuilder, id: u32, balance: f64) -> Option<DeviceJson> {
    let bd = builder.devs.get(id as usize)?.as_ref()?;
    let d = &bd.dev;
    Some(DeviceJson {
        id: d.id,
        region: d.region,
        zone: d.zone,
        ip: d.ip.clone(),
        port: d.port,
        replication_ip: d.replication_ip.clone(),
        replication_port: d.replication_port,
        device: d.device.clone(),
        weight: d.weight,
        meta: d.meta.clone(),
        partitions: bd.parts,
        balance,
        marked_for_removal: builder.remove_devs.contains(&id),
    })
}

/// How the ring file next to the builder compares with what the builder would write.
#[derive(Clone, Debug, PartialEq)]
pub enum RingFileStatus {
    Missing,
    UpToDate,
    Obsolete,
    Invalid(String),
}

impl RingFileStatus {
    fn json_name(&self) -> &'static str {
        match self {
            RingFileStatus::Missing => "missing",
            RingFileStatus::UpToDate => "up-to-date",
            RingFileStatus::Obsolete => "obsolete",
            RingFileStatus::Invalid(_) => "invalid",
        }
    }
}

/// Whether two rings hold the same data; the id width is an encoding detail.
pub fn same_ring(a: &RingData, b: &RingData) -> bool {
    let mut b = b.clone();
    b.dev_id_bytes = a.dev_id_bytes;
    *a == b
}

pub fn ring_file_status(ctx: &Ctx, builder: &RingBuilder) -> RingFileStatus {
    if !ctx.ring_file.exists() {
        return RingFileStatus::Missing;
    }
    match ring_io::load_ring(&ctx.ring_file) {
        Err(e) => RingFileStatus::Invalid(e),
        Ok(loaded) => {
            if same_ring(&builder.get_ring(), &loaded.data) {
                RingFileStatus::UpToDate
            } else {
                RingFileStatus::Obsolete
            }
        }
    }
}

/// The device table of the default view, widths computed as Swift computes them.
pub fn device_table(devices: &[(&Device, u64, f64, &str)]) -> (String, Vec<String>) {
    let mut ip_w = 10;
    let mut port_w = 4;
    let mut rip_w = 14;
    let mut rport_w = 4;
    let mut weight_w = 6;
    let (mut ip6, mut rip6) = (false, false);
    for (d, ..) in devices {
        ip6 |= is_valid_ipv6(&d.ip);
        rip6 |= is_valid_ipv6(&d.replication_ip);
        ip_w = ip_w.max(d.ip.len());
        rip_w = rip_w.max(d.replication_ip.len());
        port_w = port_w.max(d.port.to_string().len());
        rport_w = rport_w.max(d.replication_port.to_string().len());
        weight_w = weight_w.max(format!("{:6.2}", d.weight).len());
    }
    if ip6 {
        ip_w += 2;
    }
    if rip6 {
        rip_w += 2;
    }
    let header = format!(
        "Devices:{:>5} {:>6} {:>4} {:>ip_w$}:{:<port_w$} {:>rip_w$}:{:<rport_w$} {:>5} {:>weight_w$} {:>10} {:>7} {:>5} {}",
        "id", "region", "zone", "ip address", "port", "replication ip", "port", "name", "weight",
        "partitions", "balance", "flags", "meta"
    );
    let rows = devices
        .iter()
        .map(|(d, parts, balance, flags)| {
            format!(
                "{:>13} {:>6} {:>4} {:>ip_w$}:{:<port_w$} {:>rip_w$}:{:<rport_w$} {:>5} {:>weight_w$.2} {:>10} {:>7.2} {:>5} {}",
                d.id,
                d.region,
                d.zone,
                bracket_ipv6(&d.ip),
                d.port,
                bracket_ipv6(&d.replication_ip),
                d.replication_port,
                d.device,
                d.weight,
                parts,
                balance,
                flags,
                d.meta
            )
        })
        .collect();
    (header, rows)
}

/// The default command: the builder's parameters and its device table.
pub fn show_builder(ctx: &mut Ctx) -> CmdResult {
    let builder = ctx.builder.as_ref().expect("builder loaded");
    let now = now_secs();
    let regions: BTreeSet<u32> = builder
        .devs
        .iter()
        .flatten()
        .map(|d| d.dev.region)
        .collect();
    let zones: BTreeSet<(u32, u32)> = builder
        .devs
        .iter()
        .flatten()
        .map(|d| (d.dev.region, d.dev.zone))
        .collect();
    let dev_count = builder.devs.iter().flatten().count();
    let balances = balances(builder);
    let balance = if balances.is_some() {
        builder.get_balance()
    } else {
        0.0
    };
    let status = ring_file_status(ctx, builder);
    let seconds_left = builder.min_part_seconds_left(now);
    let parts = 1u64 << builder.part_power;

    let mut devs: Vec<&Device> = builder.devs.iter().flatten().map(|d| &d.dev).collect();
    devs.sort_by(|a, b| {
        (a.region, a.zone, &a.ip, &a.device).cmp(&(b.region, b.zone, &b.ip, &b.device))
    });

    if ctx.json {
        let devices: Vec<DeviceJson> = devs
            .iter()
            .filter_map(|d| {
                let bal = balances
                    .as_ref()
                    .and_then(|b| b.get(&d.id).copied())
                    .unwrap_or(0.0);
                device_json(builder, d.id, bal)
            })
            .collect();
        let doc = serde_json::json!({
            "builder_file": ctx.builder_name(),
            "ring_file": ctx.ring_name(),
            "ring_file_status": status.json_name(),
            "build_version": builder.version,
            "id": builder.id,
            "part_power": builder.part_power,
            "next_part_power": builder.next_part_power,
            "partitions": parts,
            "replicas": builder.replicas,
            "region_count": regions.len(),
            "zone_count": zones.len(),
            "device_count": dev_count,
            "dev_id_bytes": builder.dev_id_bytes,
            "balance": balance,
            "dispersion": builder.dispersion,
            "min_part_hours": builder.min_part_hours,
            "min_part_seconds_left": seconds_left,
            "overload": builder.overload,
            "empty_ring": balances.is_none(),
            "devices": devices,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(EXIT_SUCCESS);
    }

    println!(
        "{}, build version {}, id {}",
        ctx.builder_name(),
        builder.version,
        builder.id.as_deref().unwrap_or("(not assigned)")
    );
    let dispersion_trailer = builder
        .dispersion
        .map(|d| format!(", {d:.2} dispersion"))
        .unwrap_or_default();
    println!(
        "{} partitions, {:.6} replicas, {} regions, {} zones, {} devices, {}-byte IDs, {:.2} balance{}",
        parts,
        builder.replicas,
        regions.len(),
        zones.len(),
        dev_count,
        builder.dev_id_bytes,
        balance,
        dispersion_trailer
    );
    println!(
        "The minimum number of hours before a partition can be reassigned is {} ({} remaining)",
        builder.min_part_hours,
        timedelta(seconds_left)
    );
    println!(
        "The overload factor is {:.2}% ({:.6})",
        builder.overload * 100.0,
        builder.overload
    );
    let ring = ctx.ring_name();
    match &status {
        RingFileStatus::Missing => {
            println!("Ring file {ring} not found, probably it hasn't been written yet")
        }
        RingFileStatus::UpToDate => println!("Ring file {ring} is up-to-date"),
        RingFileStatus::Obsolete => println!("Ring file {ring} is obsolete"),
        RingFileStatus::Invalid(e) => println!("Ring file {ring} is invalid: {e}"),
    }
    let rows: Vec<(&Device, u64, f64, &str)> = devs
        .iter()
        .map(|d| {
            let parts = builder.devs[d.id as usize]
                .as_ref()
                .map(|b| b.parts)
                .unwrap_or(0);
            let bal = balances
                .as_ref()
                .and_then(|b| b.get(&d.id).copied())
                .unwrap_or(0.0);
            let flags = if builder.remove_devs.contains(&d.id) {
                "DEL"
            } else {
                ""
            };
            (*d, parts, bal, flags)
        })
        .collect();
    let (header, lines) = device_table(&rows);
    println!("{header}");
    for line in lines {
        println!("{line}");
    }
    if let Some(next) = builder.next_part_power {
        if next == builder.part_power + 1 {
            println!(
                "\nPreparing increase of partition power ({} -> {})",
                builder.part_power, next
            );
            println!(
                "Run \"swift-object-relinker relink\" on all nodes before moving on to increase_partition_power."
            );
        }
        if next == builder.part_power {
            // Swift prints part_power and next_part_power here, which are equal at this stage;
            // the old power is what an operator wants to see.
            println!("\nIncreased partition power ({} -> {})", next - 1, next);
            if status != RingFileStatus::UpToDate {
                println!("First run \"ringsmith ring <builderfile> write_ring\" now and copy the updated .ring.gz file to all nodes.");
            }
            println!("Run \"swift-object-relinker cleanup\" on all nodes before moving on to finish_increase_partition_power.");
        }
    }
    if balances.is_none() {
        println!("{EMPTY_RING}");
    }
    Ok(EXIT_SUCCESS)
}

/// Balance of one device as the `search` command computes it.
fn search_balance(parts: u64, weight: f64, weighted_parts: f64) -> f64 {
    if weight == 0.0 {
        if parts > 0 {
            MAX_BALANCE
        } else {
            0.0
        }
    } else {
        100.0 * parts as f64 / (weight * weighted_parts) - 100.0
    }
}

/// The `search` table (or JSON list) for the given device ids.
pub fn show_search(ctx: &Ctx, ids: &[u32]) -> CmdResult {
    let builder = ctx.builder.as_ref().expect("builder loaded");
    let total = total_weight(builder);
    let parts = (1u64 << builder.part_power) as f64;
    // Swift divides by the total weight unguarded; an all-zero ring shows balance 0 here.
    let weighted_parts = if total > 0.0 {
        parts * builder.replicas / total
    } else {
        0.0
    };
    let mut rows = Vec::new();
    for &id in ids {
        let Some(bd) = builder.devs.get(id as usize).and_then(|d| d.as_ref()) else {
            continue;
        };
        let balance = search_balance(bd.parts, bd.dev.weight, weighted_parts);
        rows.push((bd, balance));
    }
    if ctx.json {
        let devices: Vec<DeviceJson> = rows
            .iter()
            .filter_map(|(bd, bal)| device_json(builder, bd.dev.id, *bal))
            .collect();
        let doc = serde_json::json!({ "devices": devices });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(EXIT_SUCCESS);
    }
    println!("Devices:    id  region  zone      ip address  port  replication ip  replication port      name weight partitions balance meta");
    for (bd, balance) in rows {
        let d = &bd.dev;
        println!(
            "         {:>5} {:>7} {:>5} {:>15} {:>5} {:>15} {:>17} {:>9} {:>6.2} {:>10} {:>7.2} {}",
            d.id,
            d.region,
            d.zone,
            d.ip,
            d.port,
            d.replication_ip,
            d.replication_port,
            d.device,
            d.weight,
            bd.parts,
            balance,
            d.meta
        );
    }
    Ok(EXIT_SUCCESS)
}

/// `ringsmith ring <file.ring.gz>` with no builder: the ring's parameters and devices.
pub fn show_ring_file(ctx: &Ctx) -> CmdResult {
    let loaded = ring_io::load_ring(&ctx.ring_file)
        .map_err(|e| Fail::new(format!("Ring file {} is invalid: {e}", ctx.ring_name())))?;
    let ring = &loaded.data;
    let parts = 1u64 << (32 - ring.part_shift);
    let mut assigned: BTreeMap<u32, u64> = BTreeMap::new();
    for row in &ring.replica2part2dev {
        for &dev in row {
            if dev != NONE_DEV {
                *assigned.entry(dev).or_default() += 1;
            }
        }
    }
    let slots: u64 = ring.replica2part2dev.iter().map(|r| r.len() as u64).sum();
    let replicas = slots as f64 / parts as f64;
    let devs: Vec<&Device> = ring.devs.iter().flatten().collect();
    let total: f64 = devs.iter().map(|d| d.weight).sum();
    let balance_of = |d: &Device| {
        let have = assigned.get(&d.id).copied().unwrap_or(0);
        if total <= 0.0 {
            return 0.0;
        }
        let want = slots as f64 * d.weight / total;
        if want == 0.0 {
            if have > 0 {
                MAX_BALANCE
            } else {
                0.0
            }
        } else {
            100.0 * have as f64 / want - 100.0
        }
    };
    let balance = devs
        .iter()
        .map(|d| balance_of(d).abs())
        .fold(0.0f64, f64::max);
    let regions: BTreeSet<u32> = devs.iter().map(|d| d.region).collect();
    let zones: BTreeSet<(u32, u32)> = devs.iter().map(|d| (d.region, d.zone)).collect();
    let mut sorted = devs.clone();
    sorted.sort_by(|a, b| {
        (a.region, a.zone, &a.ip, &a.device).cmp(&(b.region, b.zone, &b.ip, &b.device))
    });
    if ctx.json {
        let devices: Vec<serde_json::Value> = sorted
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id, "region": d.region, "zone": d.zone, "ip": d.ip, "port": d.port,
                    "replication_ip": d.replication_ip, "replication_port": d.replication_port,
                    "device": d.device, "weight": d.weight, "meta": d.meta,
                    "partitions": assigned.get(&d.id).copied().unwrap_or(0),
                    "balance": balance_of(d),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "ring_file": ctx.ring_name(),
            "format_version": loaded.format_version,
            "build_version": ring.version,
            "part_power": 32 - ring.part_shift,
            "next_part_power": ring.next_part_power,
            "partitions": parts,
            "replicas": replicas,
            "region_count": regions.len(),
            "zone_count": zones.len(),
            "device_count": devs.len(),
            "dev_id_bytes": ring.dev_id_bytes,
            "balance": balance,
            "devices": devices,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(EXIT_SUCCESS);
    }
    println!(
        "{}, build version {}, ring format version {} (no builder file {})",
        ctx.ring_name(),
        ring.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(none)".into()),
        loaded.format_version,
        ctx.builder_name()
    );
    println!(
        "{} partitions, {:.6} replicas, {} regions, {} zones, {} devices, {}-byte IDs, {:.2} balance",
        parts,
        replicas,
        regions.len(),
        zones.len(),
        devs.len(),
        ring.dev_id_bytes,
        balance
    );
    let rows: Vec<(&Device, u64, f64, &str)> = sorted
        .iter()
        .map(|d| {
            (
                *d,
                assigned.get(&d.id).copied().unwrap_or(0),
                balance_of(d),
                "",
            )
        })
        .collect();
    let (header, lines) = device_table(&rows);
    println!("{header}");
    for line in lines {
        println!("{line}");
    }
    Ok(EXIT_SUCCESS)
}

//! The commands of `ringsmith ring`, one function each, in swift-ring-builder's order of
//! checks so that the same mistake gets the same message and exit code.
//!
//! Every command that changes the builder applies all its changes in memory first and saves
//! only when they all succeeded; the saves are atomic (temp file, fsync, rename). So a command
//! that exits 2 — bad syntax, no matching device, an answer other than `y` — leaves the builder
//! and the ring exactly as they were.

use std::io::{BufRead, Write};

use ringsmith::builder::syntax::{
    parse_add_value, parse_change_value, parse_py_float, parse_py_int, parse_search_value,
    validate_and_normalize_address, validate_device_name, SyntaxError,
};
use ringsmith::builder::{DevInfoChange, DeviceFilter, NewDevice, RebalanceOptions, RingBuilder};

use super::display::{self, MAX_BALANCE};
use super::optparse::{self, Kind, Parsed, Spec};
use super::progress::Spinner;
use super::pyfmt::{float_repr, timedelta};
use super::ring_io::{self, DEFAULT_FORMAT_VERSION};
use super::usage::{command_usage, SEARCH_VALUE};
use super::{now_secs, CmdResult, Ctx, Fail, EXIT_ERROR, EXIT_SUCCESS, EXIT_WARNING};

/// Runs `command` (Swift's `getattr(Commands, command, Commands.unknown)`).
pub fn dispatch(command: &str, ctx: &mut Ctx) -> CmdResult {
    match command {
        "default" => display::show_builder(ctx),
        "create" => create(ctx),
        "add" => add(ctx),
        "search" => search(ctx),
        "list_parts" => list_parts(ctx),
        "set_weight" => set_weight(ctx),
        "set_region" => set_region_or_zone(ctx, Place::Region),
        "set_zone" => set_region_or_zone(ctx, Place::Zone),
        "set_info" => set_info(ctx),
        "remove" => remove(ctx),
        "rebalance" => rebalance(ctx),
        "dispersion" => dispersion(ctx),
        "validate" => validate(ctx),
        "write_ring" => write_ring(ctx),
        "write_builder" => write_builder(ctx),
        "version" => version(ctx),
        "pretend_min_part_hours_passed" => pretend_min_part_hours_passed(ctx),
        "set_min_part_hours" => set_min_part_hours(ctx),
        "set_replicas" => set_replicas(ctx),
        "set_overload" => set_overload(ctx),
        "prepare_increase_partition_power" => prepare_increase_partition_power(ctx),
        "increase_partition_power" => increase_partition_power(ctx),
        "cancel_increase_partition_power" => cancel_increase_partition_power(ctx),
        "finish_increase_partition_power" => finish_increase_partition_power(ctx),
        other => Err(Fail::new(format!("Unknown command: {other}"))),
    }
}

fn usage_fail(command: &str) -> Fail {
    Fail::new(command_usage(command))
}

fn usage_with_search_help(command: &str) -> Fail {
    Fail::new(format!("{}\n\n{}", command_usage(command), SEARCH_VALUE))
}

fn syntax(e: SyntaxError) -> Fail {
    Fail::new(e.0)
}

fn builder_error(e: impl std::fmt::Display) -> Fail {
    Fail::new(e.to_string())
}

/// An optparse usage error: `Usage: …` and `<prog>: error: …` on stderr, exit 2.
fn optparse_fail(e: optparse::UsageError) -> Fail {
    Fail::stderr(format!(
        "Usage: ringsmith ring [options]\n\nringsmith ring: error: {}",
        e.0
    ))
}

/// The device selectors and change options every device command accepts.
const DEVICE_OPTIONS: &[Spec] = &[
    Spec::new(Some('u'), "--id", Kind::Int),
    Spec::new(Some('r'), "--region", Kind::Int),
    Spec::new(Some('z'), "--zone", Kind::Int),
    Spec::new(Some('i'), "--ip", Kind::Str),
    Spec::new(Some('p'), "--port", Kind::Int),
    Spec::new(Some('j'), "--replication-ip", Kind::Str),
    Spec::new(Some('q'), "--replication-port", Kind::Int),
    Spec::new(Some('d'), "--device", Kind::Str),
    Spec::new(Some('w'), "--weight", Kind::Float),
    Spec::new(Some('m'), "--meta", Kind::Str),
    Spec::new(Some('I'), "--change-ip", Kind::Str),
    Spec::new(Some('P'), "--change-port", Kind::Int),
    Spec::new(Some('J'), "--change-replication-ip", Kind::Str),
    Spec::new(Some('Q'), "--change-replication-port", Kind::Int),
    Spec::new(Some('D'), "--change-device", Kind::Str),
    Spec::new(Some('M'), "--change-meta", Kind::Str),
    Spec::new(Some('y'), "--yes", Kind::Flag),
];

/// Parsed device options plus Swift's "new format" test: any selector given (zero-valued
/// ids, regions, zones and weights count; an empty ip, port 0 or empty meta do not).
struct DeviceArgs {
    opts: Parsed,
    new_format: bool,
}

impl DeviceArgs {
    fn parse(argv: &[String]) -> Result<DeviceArgs, Fail> {
        let opts = optparse::parse(DEVICE_OPTIONS, argv).map_err(optparse_fail)?;
        let truthy_str = |k: &str| opts.str(k).is_some_and(|s| !s.is_empty());
        let truthy_int = |k: &str| opts.int(k).is_some_and(|v| v != 0);
        let new_format = opts.int("id").is_some()
            || opts.int("region").is_some()
            || opts.int("zone").is_some()
            || truthy_str("ip")
            || truthy_int("port")
            || truthy_str("replication_ip")
            || truthy_int("replication_port")
            || truthy_str("device")
            || opts.float("weight").is_some()
            || truthy_str("meta");
        Ok(DeviceArgs { opts, new_format })
    }

    fn args(&self) -> &[String] {
        &self.opts.args
    }

    fn yes(&self) -> bool {
        self.opts.flag("yes")
    }

    /// An integer option as the unsigned value the builder stores.
    fn uint(&self, dest: &str, shown: &str) -> Result<Option<u32>, Fail> {
        match self.opts.int(dest) {
            None => Ok(None),
            Some(v) => u32::try_from(v).map(Some).map_err(|_| {
                optparse_fail(optparse::UsageError(format!(
                    "option {shown}: invalid integer value: '{v}'"
                )))
            }),
        }
    }

    /// The filter the selector options describe.
    fn filter(&self) -> Result<DeviceFilter, Fail> {
        let addr = |k: &str| -> Result<Option<String>, Fail> {
            match self.opts.str(k) {
                Some(s) if !s.is_empty() => {
                    validate_and_normalize_address(s).map(Some).map_err(syntax)
                }
                _ => Ok(None),
            }
        };
        Ok(DeviceFilter {
            id: self.uint("id", "-u")?,
            region: self.uint("region", "-r")?,
            zone: self.uint("zone", "-z")?,
            ip: addr("ip")?,
            port: self.uint("port", "-p")?,
            replication_ip: addr("replication_ip")?,
            replication_port: self.uint("replication_port", "-q")?,
            device: self.opts.str("device").map(str::to_string),
            meta: self
                .opts
                .str("meta")
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            weight: self.opts.float("weight"),
        })
    }

    /// The `--change-*` options as a set_info change (empty values change nothing).
    fn change(&self) -> Result<DevInfoChange, Fail> {
        let non_empty = |k: &str| self.opts.str(k).filter(|s| !s.is_empty());
        let addr = |k: &str| -> Result<Option<String>, Fail> {
            non_empty(k)
                .map(|s| validate_and_normalize_address(s).map_err(syntax))
                .transpose()
        };
        Ok(DevInfoChange {
            ip: addr("change_ip")?,
            port: self.uint("change_port", "-P")?.filter(|p| *p != 0),
            replication_ip: addr("change_replication_ip")?,
            replication_port: self
                .uint("change_replication_port", "-Q")?
                .filter(|p| *p != 0),
            device: non_empty("change_device").map(str::to_string),
            meta: non_empty("change_meta").map(str::to_string),
        })
    }
}

fn describe(builder: &RingBuilder, id: u32) -> String {
    builder
        .dev(id)
        .map(|d| d.dev.describe())
        .unwrap_or_else(|| format!("d{id}"))
}

/// Swift's `check_devs`: refuse an empty match; ask before touching several devices.
fn confirm_devices(
    builder: &RingBuilder,
    ids: &[u32],
    question: &str,
    yes: bool,
    abort_msg: &str,
) -> Result<(), Fail> {
    if ids.is_empty() {
        return Err(Fail::new(
            "Search value matched 0 devices.\nThe on-disk ring builder is unchanged.",
        ));
    }
    if ids.len() > 1 {
        println!("Matched more than one device:");
        for id in ids {
            println!("    {}", describe(builder, *id));
        }
        if !yes {
            print!("{question}");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let read = std::io::stdin().lock().read_line(&mut answer).unwrap_or(0);
            let answer = answer.strip_suffix('\n').unwrap_or(&answer);
            if read == 0 || answer != "y" {
                return Err(Fail::new(abort_msg));
            }
        }
    }
    Ok(())
}

fn create(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 6 {
        return Err(usage_fail("create"));
    }
    if ctx.builder.is_some() {
        // Swift silently replaces an existing builder here; that loses the ring's history.
        return Err(Fail::new(format!(
            "Cowardly refusing to overwrite existing Ring Builder file: {}",
            ctx.builder_name()
        )));
    }
    let part_power = parse_py_int(&ctx.argv[3]).map_err(syntax)?;
    let replicas = parse_py_float(&ctx.argv[4]).map_err(syntax)?;
    let min_part_hours = parse_py_int(&ctx.argv[5]).map_err(syntax)?;
    let builder = RingBuilder::new(part_power, replicas, min_part_hours).map_err(builder_error)?;
    ctx.builder = Some(builder);
    ctx.backup_builder(now_secs())?;
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn add(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 5 {
        return Err(usage_fail("add"));
    }
    if ctx.builder().next_part_power.is_some() {
        return Err(Fail::new(
            "Partition power increase in progress. You need \nto finish the increase first before adding devices.",
        ));
    }
    let unchanged =
        |msg: String| Fail::new(format!("{msg}\nThe on-disk ring builder is unchanged."));
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    let mut new_devs: Vec<NewDevice> = Vec::new();
    if !dargs.args().is_empty() {
        if dargs.new_format || !dargs.args().len().is_multiple_of(2) {
            return Err(usage_fail("add"));
        }
        for pair in dargs.args().chunks(2) {
            let (devstr, weightstr) = (&pair[0], &pair[1]);
            let parsed = parse_add_value(devstr).map_err(|e| unchanged(e.0))?;
            if parsed.region.is_none() {
                eprintln!("WARNING: No region specified for {devstr}. Defaulting to region 1.\n");
            }
            let weight = parse_py_float(weightstr).map_err(|e| unchanged(e.0))?;
            if weight < 0.0 {
                return Err(unchanged(format!("Invalid weight value: {devstr}")));
            }
            new_devs.push(parsed.into_new_device(weight));
        }
    } else {
        for (dest, short, long) in [
            ("region", "-r", "--region"),
            ("zone", "-z", "--zone"),
            ("ip", "-i", "--ip"),
            ("port", "-p", "--port"),
            ("device", "-d", "--device"),
            ("weight", "-w", "--weight"),
        ] {
            if !dargs.opts.values.contains_key(dest) {
                return Err(unchanged(format!(
                    "Required argument {short}/{long} not specified."
                )));
            }
        }
        let ip = validate_and_normalize_address(dargs.opts.str("ip").unwrap_or(""))
            .map_err(|e| unchanged(e.0))?;
        let rip_text = dargs
            .opts
            .str("replication_ip")
            .filter(|s| !s.is_empty())
            .unwrap_or(dargs.opts.str("ip").unwrap_or(""));
        let replication_ip =
            validate_and_normalize_address(rip_text).map_err(|e| unchanged(e.0))?;
        let device = dargs.opts.str("device").unwrap_or("").to_string();
        if !validate_device_name(&device) {
            return Err(unchanged("Invalid device name".into()));
        }
        let port = dargs.uint("port", "-p")?.unwrap_or(0);
        let weight = dargs.opts.float("weight").unwrap_or(0.0);
        if weight < 0.0 {
            return Err(unchanged(format!("Invalid weight value: {weight}")));
        }
        new_devs.push(NewDevice {
            id: None,
            region: dargs.uint("region", "-r")?.unwrap_or(0),
            zone: dargs.uint("zone", "-z")?.unwrap_or(0),
            ip,
            port,
            replication_ip: Some(replication_ip),
            replication_port: Some(
                dargs
                    .uint("replication_port", "-q")?
                    .filter(|p| *p != 0)
                    .unwrap_or(port),
            ),
            device,
            weight,
            meta: dargs.opts.str("meta").unwrap_or("").to_string(),
        });
    }
    let builder = ctx.builder();
    for new_dev in new_devs {
        if let Some(existing) = builder.devs.iter().flatten().find(|d| {
            d.dev.ip == new_dev.ip && d.dev.port == new_dev.port && d.dev.device == new_dev.device
        }) {
            return Err(Fail::new(format!(
                "Device {} already uses {}:{}/{}.\nThe on-disk ring builder is unchanged.\n",
                existing.dev.id, existing.dev.ip, existing.dev.port, existing.dev.device
            )));
        }
        let weight = new_dev.weight;
        let id = builder
            .add_dev(new_dev)
            .map_err(|e| unchanged(e.to_string()))?;
        println!(
            "Device {} with {} weight got id {}",
            describe(builder, id),
            float_repr(weight),
            id
        );
    }
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

/// The devices a search-style command selects: one or more search values, or the options —
/// never both (Swift prints the command's usage then).
fn select_devices(
    ctx: &mut Ctx,
    command: &str,
    dargs: &DeviceArgs,
    allow_many_values: bool,
) -> Result<Vec<u32>, Fail> {
    let builder = ctx.builder();
    if !dargs.args().is_empty() {
        if dargs.new_format || (!allow_many_values && dargs.args().len() != 1) {
            return Err(usage_fail(command));
        }
        let mut ids = Vec::new();
        for value in dargs.args() {
            let filter = parse_search_value(value).map_err(syntax)?;
            ids.extend(builder.search_devs(&filter));
        }
        Ok(ids)
    } else {
        let filter = dargs.filter()?;
        Ok(builder.search_devs(&filter))
    }
}

fn search(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 4 {
        return Err(usage_with_search_help("search"));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    let ids = select_devices(ctx, "search", &dargs, false)?;
    if ids.is_empty() {
        if ctx.json {
            println!("{{\n  \"devices\": []\n}}");
        } else {
            println!("No matching devices found");
        }
        return Ok(EXIT_ERROR);
    }
    display::show_search(ctx, &ids)
}

fn list_parts(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 4 {
        return Err(usage_with_search_help("list_parts"));
    }
    if ctx.builder().replica2part2dev.is_none() {
        return Err(not_rebalanced(ctx));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    let ids = select_devices(ctx, "list_parts", &dargs, true)?;
    if ids.is_empty() {
        return Err(Fail::new("No matching devices found"));
    }
    let rows = ctx.builder().list_parts(&ids);
    if rows.is_empty() {
        return Err(Fail::new("No matching devices found"));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = writeln!(out, "Partition   Matches");
    for (part, count) in rows {
        let _ = writeln!(out, "{part:>9}   {count:>7}");
    }
    Ok(EXIT_SUCCESS)
}

fn not_rebalanced(ctx: &Ctx) -> Fail {
    Fail::new(format!(
        "Specified builder file \"{}\" is not rebalanced yet. Please rebalance first.",
        ctx.builder_name()
    ))
}

/// `(search value, new value)` pairs, or the options plus one new value.
fn selections_with_values(
    ctx: &mut Ctx,
    command: &str,
    dargs: &DeviceArgs,
) -> Result<Vec<(Vec<u32>, String)>, Fail> {
    let builder = ctx.builder();
    if !dargs.new_format {
        if !dargs.args().len().is_multiple_of(2) {
            return Err(usage_fail(command));
        }
        dargs
            .args()
            .chunks(2)
            .map(|pair| {
                let filter = parse_search_value(&pair[0]).map_err(syntax)?;
                Ok((builder.search_devs(&filter), pair[1].clone()))
            })
            .collect()
    } else {
        if dargs.args().len() != 1 {
            return Err(usage_fail(command));
        }
        let filter = dargs.filter()?;
        Ok(vec![(
            builder.search_devs(&filter),
            dargs.args()[0].clone(),
        )])
    }
}

fn set_weight(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 5 {
        return Err(usage_with_search_help("set_weight"));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    for (ids, value) in selections_with_values(ctx, "set_weight", &dargs)? {
        let weight = parse_py_float(&value).map_err(syntax)?;
        let builder = ctx.builder();
        let question = format!(
            "Are you sure you want to update the weight for these {} devices? (y/N) ",
            ids.len()
        );
        confirm_devices(
            builder,
            &ids,
            &question,
            dargs.yes(),
            "Aborting device modifications",
        )?;
        for id in ids {
            builder.set_dev_weight(id, weight).map_err(builder_error)?;
            println!(
                "{} weight set to {}",
                describe(builder, id),
                float_repr(weight)
            );
        }
    }
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

#[derive(Clone, Copy)]
enum Place {
    Region,
    Zone,
}

fn set_region_or_zone(ctx: &mut Ctx, place: Place) -> CmdResult {
    let (command, what) = match place {
        Place::Region => ("set_region", "region"),
        Place::Zone => ("set_zone", "zone"),
    };
    if ctx.argv.len() < 5 {
        return Err(usage_with_search_help(command));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    for (ids, value) in selections_with_values(ctx, command, &dargs)? {
        let n = parse_py_int(&value).map_err(syntax)?;
        let builder = ctx.builder();
        let question = format!(
            "Are you sure you want to update the {what} for these {} devices? (y/N) ",
            ids.len()
        );
        confirm_devices(
            builder,
            &ids,
            &question,
            dargs.yes(),
            "Aborting device modifications",
        )?;
        for id in ids {
            match place {
                Place::Region => builder.set_dev_region(id, n),
                Place::Zone => builder.set_dev_zone(id, n),
            }
            .map_err(builder_error)?;
            println!("{} {what} set to {n}", describe(builder, id));
        }
    }
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn set_info(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 5 {
        return Err(usage_with_search_help("set_info"));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    let mut work: Vec<(Vec<u32>, DevInfoChange)> = Vec::new();
    if !dargs.new_format {
        if !dargs.args().len().is_multiple_of(2) {
            return Err(usage_fail("search"));
        }
        let first_change = dargs.args().get(1).cloned().unwrap_or_default();
        for pair in dargs.args().chunks(2) {
            let filter = parse_search_value(&pair[0]).map_err(syntax)?;
            let change = parse_change_value(&pair[1], &first_change).map_err(syntax)?;
            work.push((ctx.builder().search_devs(&filter), change));
        }
    } else {
        let filter = dargs.filter()?;
        let change = dargs.change()?;
        work.push((ctx.builder().search_devs(&filter), change));
    }
    for (ids, change) in work {
        let builder = ctx.builder();
        let question = format!(
            "Are you sure you want to update the info for these {} devices? (y/N) ",
            ids.len()
        );
        confirm_devices(
            builder,
            &ids,
            &question,
            dargs.yes(),
            "Aborting device modifications",
        )?;
        for id in ids {
            let Some(current) = builder.dev(id).map(|d| d.dev.clone()) else {
                continue;
            };
            let ip = change.ip.clone().unwrap_or(current.ip.clone());
            let port = change.port.unwrap_or(current.port);
            let device = change.device.clone().unwrap_or(current.device.clone());
            if let Some(other) = builder.devs.iter().flatten().find(|d| {
                d.dev.id != id && d.dev.ip == ip && d.dev.port == port && d.dev.device == device
            }) {
                return Err(Fail::new(format!(
                    "Device {} already uses {}:{}/{}.",
                    other.dev.id, other.dev.ip, other.dev.port, other.dev.device
                )));
            }
            builder
                .set_dev_info(id, change.clone())
                .map_err(builder_error)?;
            println!(
                "Device {} is now {}",
                current.describe(),
                describe(builder, id)
            );
        }
    }
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn remove(ctx: &mut Ctx) -> CmdResult {
    if ctx.argv.len() < 4 {
        return Err(usage_with_search_help("remove"));
    }
    if ctx.builder().next_part_power.is_some() {
        return Err(Fail::new(
            "Partition power increase in progress. You need \nto finish the increase first before removing devices.",
        ));
    }
    let dargs = DeviceArgs::parse(&ctx.rest())?;
    let ids = select_devices(ctx, "remove", &dargs, true)?;
    let builder = ctx.builder();
    let question = format!(
        "Are you sure you want to remove these {} devices? (y/N) ",
        ids.len()
    );
    confirm_devices(
        builder,
        &ids,
        &question,
        dargs.yes(),
        "Aborting device removals",
    )?;
    for id in ids {
        let shown = describe(builder, id);
        if let Err(e) = builder.remove_dev(id) {
            return Err(Fail::new(format!(
                "{rule}\nAn error occurred while removing device with id {id}\n\
                 This usually means that you attempted to remove\n\
                 the last device in a ring. If this is the case,\n\
                 consider creating a new ring instead.\n\
                 The on-disk ring builder is unchanged.\n\
                 Original exception message: {e}\n{rule}",
                rule = "-".repeat(79)
            )));
        }
        println!("{shown} marked for removal and will be removed next rebalance.");
    }
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

const FORMAT_CHOICES: &[&str] = &["1", "2"];

const FORMAT_BANNER: &str = "Defaulting to --format-version=1. This ensures the ring\n\
written will be readable by older versions of Swift.\n\
In a future release, the default will change to\n\
--format-version=2\n";

fn validation_box(message: &str) -> Fail {
    let rule = "-".repeat(79);
    Fail::new(format!(
        "{rule}\nAn error has occurred during ring validation. Common\n\
         causes of failure are rings that are empty or do not\n\
         have enough devices to accommodate the replica count.\n\
         Original exception message:\n {message}\n{rule}"
    ))
}

/// Swift's CLI seeds are strings; numeric ones are used as numbers, any other text is
/// hashed to a number so that the same text always gives the same ring.
pub fn seed_from_text(text: &str) -> u64 {
    if let Ok(n) = text.trim().parse::<u64>() {
        return n;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The warnings a finished rebalance ends with, and its exit status.
fn rebalance_notes(
    dispersion: f64,
    balance: f64,
    overload: f64,
    min_part_hours: u32,
) -> (Vec<String>, u8) {
    let rule = "-".repeat(79);
    if dispersion > 0.0 {
        (
            vec![format!(
                "{rule}\nNOTE: Dispersion of {dispersion:.6} indicates some parts are not\n      optimally dispersed.\n\n      You may want to adjust some device weights, increase\n      the overload or review the dispersion report.\n{rule}"
            )],
            EXIT_WARNING,
        )
    } else if balance > 5.0 && balance / 100.0 > overload {
        (
            vec![format!(
                "{rule}\nNOTE: Balance of {balance:.2} indicates you should push this \n      ring, wait at least {min_part_hours} hours, and rebalance/repush.\n{rule}"
            )],
            EXIT_WARNING,
        )
    } else {
        (Vec::new(), EXIT_SUCCESS)
    }
}

fn rebalance(ctx: &mut Ctx) -> CmdResult {
    const SPECS: &[Spec] = &[
        Spec::new(Some('f'), "--force", Kind::Flag),
        Spec::new(Some('s'), "--seed", Kind::Str),
        Spec::new(Some('d'), "--debug", Kind::Flag),
        Spec::new(None, "--format-version", Kind::Choice(FORMAT_CHOICES)),
    ];
    let opts = optparse::parse(SPECS, &ctx.rest()).map_err(optparse_fail)?;
    let json = ctx.json;
    let format_version = match opts.str("format_version") {
        Some(v) => v.parse::<u8>().expect("choice"),
        None => {
            if !json {
                println!("{FORMAT_BANNER}");
            }
            DEFAULT_FORMAT_VERSION
        }
    };
    let seed_text = opts
        .str("seed")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| opts.args.first().cloned());
    let seed = seed_text.as_deref().map(seed_from_text);
    let force = opts.flag("force");
    let debug = opts.flag("debug");

    if ctx.builder().next_part_power.is_some() {
        return Err(Fail::new(
            "Partition power increase in progress.\nYou need to finish the increase first before rebalancing.",
        ));
    }
    let now = now_secs();
    let rb_opts = RebalanceOptions {
        seed,
        now_secs: Some(now),
    };
    if ctx.dry_run {
        return super::plan::dry_run(ctx, &rb_opts, format_version);
    }

    let builder = ctx.builder();
    let devs_changed = builder.devs_changed;
    let min_part_seconds_left = builder.min_part_seconds_left(now);
    let last_balance = if display::balances(builder).is_some() {
        builder.get_balance()
    } else {
        0.0
    };
    let last_dispersion = builder.dispersion;
    let spinner = Spinner::start("rebalancing");
    let outcome = builder.rebalance(&rb_opts);
    drop(spinner);
    let outcome = outcome.map_err(|e| validation_box(&e.to_string()))?;
    if debug && !json {
        for line in &outcome.unmet {
            println!("DEBUG: {line}");
        }
    }
    let parts = 1u64 << builder.part_power;
    let (balance, dispersion) = (outcome.balance, outcome.dispersion);
    let mut report = serde_json::json!({
        "dry_run": false,
        "changed_parts": outcome.changed_parts,
        "changed_percent": 100.0 * outcome.changed_parts as f64 / parts as f64,
        "balance": balance,
        "balance_before": last_balance,
        "dispersion": dispersion,
        "dispersion_before": last_dispersion,
        "removed_devices": outcome.removed_devs,
        "finished": outcome.finished,
        "unmet": outcome.unmet,
        "format_version": format_version,
    });
    let emit_json = |report: &mut serde_json::Value, saved: bool, code: u8, message: &str| {
        report["saved"] = saved.into();
        report["exit_code"] = code.into();
        report["message"] = message.into();
        println!("{}", serde_json::to_string_pretty(report).expect("json"));
    };

    if !(outcome.changed_parts > 0 || force || outcome.removed_devs > 0) {
        let why = if min_part_seconds_left > 0 {
            format!(
                "The time between rebalances must be at least min_part_hours: {} hours ({} remaining)",
                builder.min_part_hours,
                timedelta(builder.min_part_seconds_left(now_secs()))
            )
        } else {
            "There is no need to do so at this time".to_string()
        };
        if json {
            emit_json(
                &mut report,
                false,
                EXIT_WARNING,
                &format!("No partitions could be reassigned. {why}"),
            );
        } else {
            println!("No partitions could be reassigned.\n{why}");
        }
        return Ok(EXIT_WARNING);
    }
    let balance_changed = (last_balance - balance).abs() >= 1.0
        || (last_balance == MAX_BALANCE && balance == MAX_BALANCE);
    let dispersion_changed = match last_dispersion {
        None => true,
        Some(d) => (d - dispersion).abs() >= 1.0,
    };
    if !force && !devs_changed && !balance_changed && !dispersion_changed {
        let msg = "Cowardly refusing to save rebalance as it did not change at least 1%.";
        if json {
            emit_json(&mut report, false, EXIT_WARNING, msg);
        } else {
            println!("{msg}");
        }
        return Ok(EXIT_WARNING);
    }
    builder
        .validate(false)
        .map_err(|e| validation_box(&e.to_string()))?;
    let summary = format!(
        "Reassigned {} ({:.2}%) partitions. Balance is now {:.2}.  Dispersion is now {:.2}",
        outcome.changed_parts,
        100.0 * outcome.changed_parts as f64 / parts as f64,
        balance,
        dispersion
    );
    let (notes, status) = rebalance_notes(
        dispersion,
        balance,
        builder.overload,
        builder.min_part_hours,
    );

    // Ring first: a ring that cannot be written (a v1 ring with 4-byte ids) stops the command
    // before anything is on disk.
    let ring = builder.get_ring();
    let ts = now_secs();
    let ring_backup = ringsmith::builder::file::backup_path(&ctx.ring_file, ts);
    ring_io::save_ring(&ring, &ring_backup, format_version).map_err(Fail::new)?;
    ctx.backup_builder(ts)?;
    ring_io::save_ring(&ring, &ctx.ring_file, format_version).map_err(Fail::new)?;
    ctx.save_builder()?;

    if json {
        emit_json(&mut report, true, status, &summary);
    } else {
        println!("{summary}");
        for note in notes {
            println!("{note}");
        }
    }
    Ok(status)
}

fn dispersion(ctx: &mut Ctx) -> CmdResult {
    if ctx.builder().replica2part2dev.is_none() {
        return Err(not_rebalanced(ctx));
    }
    const SPECS: &[Spec] = &[
        Spec::new(None, "--recalculate", Kind::Flag),
        Spec::new(Some('v'), "--verbose", Kind::Flag),
    ];
    let opts = optparse::parse(SPECS, &ctx.rest()).map_err(optparse_fail)?;
    let filter = match opts.args.first() {
        // Python's re.match anchors at the start of the tier name only.
        Some(f) => Some(
            regex_lite::Regex::new(&format!("^(?:{f})"))
                .map_err(|e| Fail::new(format!("Invalid dispersion filter {f:?}: {e}")))?,
        ),
        None => None,
    };
    super::dispersion::report(
        ctx,
        filter.as_ref(),
        opts.flag("verbose"),
        opts.flag("recalculate"),
    )
}

fn validate(ctx: &mut Ctx) -> CmdResult {
    let json = ctx.json;
    match ctx.builder().validate(json) {
        Ok(stats) => {
            if json {
                let (dev_usage, worst) = stats
                    .map(|(u, w)| (Some(u), Some(w)))
                    .unwrap_or((None, None));
                let doc = serde_json::json!({
                    "valid": true,
                    "error": null,
                    "worst_balance": worst,
                    "partitions_per_device": dev_usage,
                });
                println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
            }
            Ok(EXIT_SUCCESS)
        }
        Err(e) => {
            if json {
                let doc = serde_json::json!({ "valid": false, "error": e.to_string() });
                println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
                return Ok(EXIT_ERROR);
            }
            Err(builder_error(e))
        }
    }
}

fn write_ring(ctx: &mut Ctx) -> CmdResult {
    const SPECS: &[Spec] = &[
        Spec::new(None, "--format-version", Kind::Choice(FORMAT_CHOICES)),
        Spec::new(None, "--dev-id-bytes", Kind::Choice(&["2", "4"])),
    ];
    let opts = optparse::parse(SPECS, &ctx.rest()).map_err(optparse_fail)?;
    let format_version = match opts.str("format_version") {
        Some(v) => v.parse::<u8>().expect("choice"),
        None => {
            println!("{FORMAT_BANNER}");
            DEFAULT_FORMAT_VERSION
        }
    };
    let builder = ctx.builder();
    if builder.devs.is_empty() {
        return Err(Fail::new("Unable to write empty ring."));
    }
    let mut ring = builder.get_ring();
    if let Some(bytes) = opts.str("dev_id_bytes") {
        let bytes: u8 = bytes.parse().expect("choice");
        let max_id = builder.devs.len().saturating_sub(1);
        if bytes == 2 && max_id >= 0xFFFF {
            return Err(Fail::new(format!(
                "Device id {max_id} does not fit in 2 bytes; use --dev-id-bytes 4"
            )));
        }
        ring.dev_id_bytes = bytes;
    }
    if ring.replica2part2dev.is_empty() && ring.devs.iter().any(|d| d.is_some()) {
        eprintln!("WARNING: Writing a ring with no partition assignments but with devices; did you forget to run \"rebalance\"?");
    }
    let backup = ringsmith::builder::file::backup_path(&ctx.ring_file, now_secs());
    ring_io::save_ring(&ring, &backup, format_version).map_err(Fail::new)?;
    ring_io::save_ring(&ring, &ctx.ring_file, format_version).map_err(Fail::new)?;
    Ok(EXIT_SUCCESS)
}

fn write_builder(ctx: &mut Ctx) -> CmdResult {
    if ctx.builder_file.exists() {
        return Err(Fail::new(format!(
            "Cowardly refusing to overwrite existing Ring Builder file: {}",
            ctx.builder_name()
        )));
    }
    let min_part_hours = match ctx.argv.get(3) {
        Some(text) => parse_py_int(text).map_err(syntax)?,
        None => {
            eprintln!(
                "WARNING: default min_part_hours may not match the value in the lost builder.\n"
            );
            24
        }
    };
    let loaded = ring_io::load_ring(&ctx.ring_file)
        .map_err(|e| Fail::new(format!("Unable to read ring file {}: {e}", ctx.ring_name())))?;
    ctx.builder = Some(RingBuilder::from_ring(&loaded.data, min_part_hours));
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn version(ctx: &mut Ctx) -> CmdResult {
    let loaded = ring_io::load_ring(&ctx.ring_file)
        .map_err(|e| Fail::new(format!("Unable to read ring file {}: {e}", ctx.ring_name())))?;
    let build = loaded
        .data
        .version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "None".into());
    println!(
        "{}: Serialization version: {} ({}-byte IDs), build version: {}",
        ctx.ring_name(),
        loaded.format_version,
        loaded.data.dev_id_bytes,
        build
    );
    Ok(EXIT_SUCCESS)
}

fn pretend_min_part_hours_passed(ctx: &mut Ctx) -> CmdResult {
    ctx.builder().pretend_min_part_hours_passed();
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn set_min_part_hours(ctx: &mut Ctx) -> CmdResult {
    let Some(text) = ctx.argv.get(3).cloned() else {
        return Err(usage_fail("set_min_part_hours"));
    };
    let hours = parse_py_int(&text).map_err(syntax)?;
    ctx.builder().set_min_part_hours(hours);
    println!(
        "The minimum number of hours before a partition can be reassigned is now set to {text}"
    );
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn set_replicas(ctx: &mut Ctx) -> CmdResult {
    let Some(text) = ctx.argv.get(3).cloned() else {
        return Err(usage_fail("set_replicas"));
    };
    let Ok(replicas) = parse_py_float(&text) else {
        return Err(Fail::new(format!(
            "{}\n\"{text}\" is not a valid number.",
            command_usage("set_replicas")
        )));
    };
    if replicas < 1.0 {
        return Err(Fail::new("Replica count must be at least 1."));
    }
    let builder = ctx.builder();
    builder.set_replicas(replicas).map_err(builder_error)?;
    println!("The replica count is now {:.6}.", builder.replicas);
    println!("The change will take effect after the next rebalance.");
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn set_overload(ctx: &mut Ctx) -> CmdResult {
    let Some(text) = ctx.argv.get(3).cloned() else {
        return Err(usage_fail("set_overload"));
    };
    let percent = text.ends_with('%');
    let number = text.trim_end_matches('%');
    let Ok(mut overload) = parse_py_float(number) else {
        return Err(Fail::new(format!(
            "{}\n{} is not a valid number.",
            command_usage("set_overload"),
            ringsmith::builder::syntax::py_repr(number)
        )));
    };
    if percent {
        overload *= 0.01;
    }
    if overload < 0.0 {
        return Err(Fail::new("Overload must be non-negative."));
    }
    let status = if overload > 1.0 && !percent {
        println!("!?! Warning overload is greater than 100% !?!");
        EXIT_WARNING
    } else {
        EXIT_SUCCESS
    };
    let builder = ctx.builder();
    builder.set_overload(overload).map_err(builder_error)?;
    println!(
        "The overload factor is now {:.2}% ({:.6})",
        builder.overload * 100.0,
        builder.overload
    );
    println!("The change will take effect after the next rebalance.");
    ctx.save_builder()?;
    Ok(status)
}

fn prepare_increase_partition_power(ctx: &mut Ctx) -> CmdResult {
    let name = ctx
        .builder_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("object") {
        return Err(Fail::new(
            "Partition power increase is only supported for object rings.",
        ));
    }
    if !ctx.builder().prepare_increase_partition_power() {
        return Err(Fail::new(
            "Ring is already prepared for partition power increase.",
        ));
    }
    ctx.save_builder()?;
    let next = ctx.builder().next_part_power.unwrap_or_default();
    println!("The next partition power is now {next}.");
    println!("The change will take effect after the next write_ring.");
    println!("Ensure your proxy-servers, object-replicators and ");
    println!("reconstructors are using the changed rings and relink ");
    println!("(using swift-object-relinker) your existing data");
    println!("before the partition power increase");
    Ok(EXIT_SUCCESS)
}

fn increase_partition_power(ctx: &mut Ctx) -> CmdResult {
    if !ctx.builder().increase_partition_power() {
        return Err(Fail::new(
            "Ring partition power cannot be increased. Either the ring\nwas not prepared yet, or this operation has already run.",
        ));
    }
    println!("The partition power is now {}.", ctx.builder().part_power);
    println!("The change will take effect after the next write_ring.");
    // As Swift's CLI does: age the move records to now so min_part_hours counts from here.
    ctx.builder().update_last_part_moves(now_secs());
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

fn cancel_increase_partition_power(ctx: &mut Ctx) -> CmdResult {
    if !ctx.builder().cancel_increase_partition_power() {
        return Err(Fail::new(
            "Ring partition power increase cannot be canceled.",
        ));
    }
    ctx.save_builder()?;
    let next = ctx
        .builder()
        .next_part_power
        .unwrap_or(ctx.builder().part_power);
    println!("The next partition power is now {next}.");
    println!("The change will take effect after the next write_ring.");
    println!("Ensure your object-servers are using the changed rings and");
    println!("cleanup (using swift-object-relinker) the hard links");
    Ok(EXIT_SUCCESS)
}

fn finish_increase_partition_power(ctx: &mut Ctx) -> CmdResult {
    if !ctx.builder().finish_increase_partition_power() {
        return Err(Fail::new(
            "Ring partition power increase cannot be finished.",
        ));
    }
    println!("The change will take effect after the next write_ring.");
    ctx.save_builder()?;
    Ok(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_seeds_are_stable_numbers() {
        assert_eq!(seed_from_text("42"), 42);
        assert_eq!(seed_from_text("abc"), seed_from_text("abc"));
        assert_ne!(seed_from_text("abc"), seed_from_text("abd"));
    }

    #[test]
    fn notes_and_status_follow_swift() {
        assert_eq!(rebalance_notes(0.0, 1.14, 0.0, 1).1, EXIT_SUCCESS);
        let (notes, code) = rebalance_notes(0.0, 85.77, 0.0, 1);
        assert_eq!(code, EXIT_WARNING);
        assert!(notes[0].contains("NOTE: Balance of 85.77 indicates you should push this \n      ring, wait at least 1 hours"));
        assert_eq!(rebalance_notes(0.0, 85.77, 1.0, 1).1, EXIT_SUCCESS);
        assert_eq!(rebalance_notes(14.285714, 1.38, 0.0, 1).1, EXIT_WARNING);
    }
}

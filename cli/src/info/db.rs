//! `ringsmith container-info` and `ringsmith account-info`: Swift's `swift-container-info`
//! and `swift-account-info` on an account or container database.
//!
//! The database is opened read-only and only read: unlike Swift's broker, a `.pending`
//! file beside it is not merged first (see docs/differences.md).

use std::fmt::Write as _;

use ringsmith::swift::timestamp::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;

use super::{has_prefix, py_title, ring_locations, Parsed, SwiftDir, Tool};
use crate::ring::optparse::{Kind as OptKind, Spec};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Account,
    Container,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Container => "container",
        }
    }
}

const CONTAINER_SPECS: &[Spec] = &[
    Spec::new(Some('h'), "--help", OptKind::Flag),
    Spec::new(Some('d'), "--swift-dir", OptKind::Str),
    Spec::new(None, "--drop-prefixes", OptKind::Flag),
    Spec::new(Some('v'), "--verbose", OptKind::Flag),
    Spec::new(Some('s'), "--sync", OptKind::Flag),
];

const ACCOUNT_SPECS: &[Spec] = &[
    Spec::new(Some('h'), "--help", OptKind::Flag),
    Spec::new(Some('d'), "--swift-dir", OptKind::Str),
    Spec::new(None, "--drop-prefixes", OptKind::Flag),
    Spec::new(Some('s'), "--sync", OptKind::Flag),
];

const CONTAINER_TOOL: Tool = Tool {
    prog: "ringsmith container-info",
    file_word: "CONTAINER_DB_FILE",
    specs: CONTAINER_SPECS,
    help_lines: "  -h, --help            show this help message and exit
  -d SWIFT_DIR, --swift-dir=SWIFT_DIR
                        Pass location of swift directory
  --drop-prefixes       When outputting metadata, drop the per-section common
                        prefixes
  -v, --verbose         Show all shard ranges. By default, only the number of
                        shard ranges is displayed if there are many shards.
  -s, --sync            Output the contents of the incoming/outging sync
                        tables
",
};

const ACCOUNT_TOOL: Tool = Tool {
    prog: "ringsmith account-info",
    file_word: "ACCOUNT_DB_FILE",
    specs: ACCOUNT_SPECS,
    help_lines: "  -h, --help            show this help message and exit
  -d SWIFT_DIR, --swift-dir=SWIFT_DIR
                        Pass location of swift directory
  --drop-prefixes       When outputting metadata, drop the per-section common
                        prefixes
  -s, --sync            Output the contents of the incoming/outging sync
                        tables
",
};

struct Opts {
    drop_prefixes: bool,
    verbose: bool,
    sync: bool,
}

pub fn main(kind: Kind, argv: &[String]) -> u8 {
    let tool = match kind {
        Kind::Account => &ACCOUNT_TOOL,
        Kind::Container => &CONTAINER_TOOL,
    };
    let opts = match tool.parse(argv) {
        Parsed::Run(p) => p,
        Parsed::Exit(code) => return code,
    };
    let sd = SwiftDir::load(opts.str("swift_dir").unwrap_or("/etc/swift"));
    let flags = Opts {
        drop_prefixes: opts.flag("drop_prefixes"),
        verbose: opts.flag("verbose"),
        sync: opts.flag("sync"),
    };
    let mut out = String::new();
    let code = match print_info(&mut out, kind, &opts.args[0], &sd, &flags) {
        Ok(()) => 0,
        Err(Failure::Shown) => 1,
        Err(Failure::Sql(e)) => {
            let mut title = kind.name().to_string();
            title[..1].make_ascii_uppercase();
            writeln!(out, "{title} info failed: {e}").unwrap();
            1
        }
    };
    print!("{out}");
    code
}

enum Failure {
    /// The message is already in the output.
    Shown,
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

/// A text or number column as Python's `%s` shows it.
fn col(row: &rusqlite::Row, name: &str) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(name)? {
        ValueRef::Null => "None".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => ringsmith::pyjson::float_repr(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    })
}

fn ts_line(value: &str) -> String {
    let iso = Timestamp::parse(value)
        .map(|t| t.isoformat())
        .unwrap_or_else(|_| "?".into());
    format!("{iso} ({value})")
}

fn print_info(
    out: &mut String,
    kind: Kind,
    file: &str,
    sd: &SwiftDir,
    opts: &Opts,
) -> Result<(), Failure> {
    if !super::exists(file) || !file.ends_with(".db") {
        out.push_str("DB file doesn't exist\n");
        return Err(Failure::Shown);
    }
    let shown_file = if file.starts_with('/') || file.starts_with("./") {
        file.to_string()
    } else {
        format!("./{file}")
    };
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (table, columns) = match kind {
        Kind::Account => (
            "account_stat",
            "account, created_at, put_timestamp, delete_timestamp, status_changed_at, \
             container_count, object_count, bytes_used, hash, id",
        ),
        Kind::Container => (
            "container_stat",
            "account, container, created_at, put_timestamp, delete_timestamp, \
             status_changed_at, object_count, bytes_used, reported_put_timestamp, \
             reported_delete_timestamp, reported_object_count, reported_bytes_used, hash, \
             id, x_container_sync_point1, x_container_sync_point2, storage_policy_index",
        ),
    };
    let query = format!("SELECT {columns}, metadata FROM {table}");
    let info: Vec<(String, String)> = match conn.query_row(&query, [], |row| {
        let mut v = Vec::new();
        for name in columns.split(',').map(str::trim) {
            v.push((name.to_string(), col(row, name)?));
        }
        v.push(("metadata".into(), col(row, "metadata")?));
        Ok(v)
    }) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("no such table") => {
            writeln!(
                out,
                "Does not appear to be a DB of type \"{}\": {shown_file}",
                kind.name()
            )
            .unwrap();
            return Err(Failure::Shown);
        }
        Err(e) => return Err(e.into()),
    };
    let get = |k: &str| {
        info.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let metadata: serde_json::Map<String, Value> = match get("metadata").as_str() {
        "" | "None" => serde_json::Map::new(),
        text => serde_json::from_str(text).unwrap_or_default(),
    };
    let account = get("account");
    let container = (kind == Kind::Container).then(|| get("container"));
    let count = match kind {
        Kind::Account => get("container_count"),
        Kind::Container => get("object_count"),
    };
    let ts = |k: &str| Timestamp::parse(&get(k)).unwrap_or_default();
    let deleted =
        matches!(count.as_str(), "None" | "" | "0") && ts("delete_timestamp") > ts("put_timestamp");

    match &container {
        Some(c) => writeln!(
            out,
            "Path: /{account}/{c}\n  Account: {account}\n  Container: {c}"
        ),
        None => writeln!(out, "Path: /{account}\n  Account: {account}"),
    }
    .unwrap();
    writeln!(out, "  Deleted: {}", if deleted { "True" } else { "False" }).unwrap();
    let path_hash = sd
        .hash_config()
        .hash_path(&account, container.as_deref(), None)
        .unwrap_or_default();
    let label = if container.is_some() {
        "Container"
    } else {
        "Account"
    };
    writeln!(out, "  {label} Hash: {path_hash}").unwrap();
    writeln!(out, "Metadata:").unwrap();
    for (title, key) in [
        ("Created at", "created_at"),
        ("Put Timestamp", "put_timestamp"),
        ("Delete Timestamp", "delete_timestamp"),
        ("Status Timestamp", "status_changed_at"),
    ] {
        writeln!(out, "  {title}: {}", ts_line(&get(key))).unwrap();
    }
    if kind == Kind::Account {
        writeln!(out, "  Container Count: {}", get("container_count")).unwrap();
    }
    writeln!(out, "  Object Count: {}", get("object_count")).unwrap();
    writeln!(out, "  Bytes Used: {}", get("bytes_used")).unwrap();
    if kind == Kind::Container {
        let idx = get("storage_policy_index");
        let name = idx
            .parse::<u32>()
            .ok()
            .and_then(|i| sd.policies.get(i))
            .map(|p| p.name().to_string())
            .unwrap_or_else(|| "Unknown".into());
        writeln!(out, "  Storage Policy: {name} ({idx})").unwrap();
        writeln!(
            out,
            "  Reported Put Timestamp: {}",
            ts_line(&get("reported_put_timestamp"))
        )
        .unwrap();
        writeln!(
            out,
            "  Reported Delete Timestamp: {}",
            ts_line(&get("reported_delete_timestamp"))
        )
        .unwrap();
        writeln!(
            out,
            "  Reported Object Count: {}",
            get("reported_object_count")
        )
        .unwrap();
        writeln!(out, "  Reported Bytes Used: {}", get("reported_bytes_used")).unwrap();
    }
    writeln!(out, "  Chexor: {}", get("hash")).unwrap();
    writeln!(out, "  UUID: {}", get("id")).unwrap();
    let info_prefix = format!("x_{}_", kind.name());
    for (k, v) in &info {
        if k.to_lowercase().starts_with(&info_prefix) {
            writeln!(out, "  {}: {v}", py_title(&k.replace('_', "-"))).unwrap();
        }
    }
    print_metadata(out, kind, &metadata, opts.drop_prefixes);

    if kind == Kind::Container {
        let path = format!("{account}/{}", container.as_deref().unwrap_or_default());
        let root = [
            "X-Container-Sysmeta-Shard-Quoted-Root",
            "X-Container-Sysmeta-Shard-Root",
        ]
        .iter()
        .find_map(|k| meta_value(&metadata, k).filter(|v| !v.is_empty()));
        let is_root = root.map(|r| unquote_root(&r) == path).unwrap_or(true);
        writeln!(out, "Sharding Metadata:").unwrap();
        writeln!(out, "  Type: {}", if is_root { "root" } else { "shard" }).unwrap();
        writeln!(out, "  State: unsharded").unwrap();
        print_shard_ranges(out, &conn, &path, opts.verbose)?;
    }
    if opts.sync {
        for incoming in [true, false] {
            print_syncs(out, &conn, incoming)?;
        }
    }
    let datadir = format!("{}s", kind.name());
    if let Some(ring) = sd.ring(kind.name()) {
        out.push_str(&ring_locations(
            &ring,
            &datadir,
            &account,
            container.as_deref(),
            None,
            None,
        ));
    }
    Ok(())
}

/// The value of a metadata item (`[value, timestamp]` in the `metadata` column).
fn meta_value(metadata: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    metadata
        .get(key)
        .and_then(|v| v.get(0))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn unquote_root(r: &str) -> String {
    percent_decode(r)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn print_metadata(
    out: &mut String,
    kind: Kind,
    metadata: &serde_json::Map<String, Value>,
    drop_prefixes: bool,
) {
    let user_prefix = format!("x-{}-meta-", kind.name());
    let sys_prefix = format!("x-{}-sysmeta-", kind.name());
    let mut user = Vec::new();
    let mut sys = Vec::new();
    for (key, item) in metadata {
        let value = match item.get(0) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        if has_prefix(key, &user_prefix) {
            let k = if drop_prefixes {
                &key[user_prefix.len()..]
            } else {
                key
            };
            user.push((k.to_string(), value));
        } else if has_prefix(key, &sys_prefix) {
            let k = if drop_prefixes {
                &key[sys_prefix.len()..]
            } else {
                key
            };
            sys.push((k.to_string(), value));
        } else {
            writeln!(out, "  {}: {value}", py_title(&key.replace('_', "-"))).unwrap();
        }
    }
    for (items, title, none) in [
        (
            &sys,
            "  System Metadata:",
            "No system metadata found in db file",
        ),
        (
            &user,
            "  User Metadata:",
            "No user metadata found in db file",
        ),
    ] {
        if items.is_empty() {
            writeln!(out, "{none}").unwrap();
        } else {
            writeln!(out, "{title}").unwrap();
            for (k, v) in items {
                writeln!(out, "    {k}: {v}").unwrap();
            }
        }
    }
}

fn state_text(state: i64) -> &'static str {
    match state {
        10 => "found",
        20 => "created",
        30 => "cleaved",
        40 => "active",
        50 => "shrinking",
        60 => "shrunk",
        70 => "sharding",
        80 => "sharded",
        _ => "unknown",
    }
}

/// The container's shard ranges other than its own, when the database has any.
fn print_shard_ranges(
    out: &mut String,
    conn: &Connection,
    own_path: &str,
    verbose: bool,
) -> Result<(), Failure> {
    let has_table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='shard_range'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_table.is_none() {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT name, lower, upper, object_count, bytes_used, state, timestamp, \
         meta_timestamp FROM shard_range WHERE deleted = 0 AND name != ?",
    )?;
    type Range = (String, String, String, i64, i64, i64, String, String);
    let ranges: Vec<Range> = stmt
        .query_map([own_path], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    if ranges.is_empty() {
        return Ok(());
    }
    // Swift's order: by upper then lower bound, where an empty upper bound is the end of
    // the namespace and an empty lower bound its start.
    let mut ranges = ranges;
    ranges.sort_by(|a, b| {
        (a.2.is_empty(), &a.2, !a.1.is_empty(), &a.1).cmp(&(
            b.2.is_empty(),
            &b.2,
            !b.1.is_empty(),
            &b.1,
        ))
    });
    writeln!(out, "Shard Ranges ({}):", ranges.len()).unwrap();
    let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
    for r in &ranges {
        *counts.entry(r.5).or_default() += 1;
    }
    writeln!(out, "  States:").unwrap();
    for (state, n) in counts {
        writeln!(out, "    {:>9}: {n}", state_text(state)).unwrap();
    }
    if verbose {
        for (name, lower, upper, objects, bytes, state, ts, meta_ts) in &ranges {
            writeln!(out, "  Name: {name}").unwrap();
            writeln!(
                out,
                "    lower: {}, upper: {}",
                ringsmith::builder::syntax::py_repr(lower),
                ringsmith::builder::syntax::py_repr(upper)
            )
            .unwrap();
            writeln!(
                out,
                "    Object Count: {objects}, Bytes Used: {bytes}, State: {} ({state})",
                state_text(*state)
            )
            .unwrap();
            writeln!(out, "    Created at: {}", ts_line(ts)).unwrap();
            writeln!(out, "    Meta Timestamp: {}", ts_line(meta_ts)).unwrap();
        }
    } else {
        writeln!(out, "(Use -v/--verbose to show more Shard Ranges details)").unwrap();
    }
    Ok(())
}

fn print_syncs(out: &mut String, conn: &Connection, incoming: bool) -> Result<(), Failure> {
    let table = if incoming {
        "incoming_sync"
    } else {
        "outgoing_sync"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT remote_id, sync_point, updated_at FROM {table}"
    ))?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| {
            Ok((
                col(r, "remote_id")?,
                col(r, "sync_point")?,
                col(r, "updated_at")?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let width = |f: &dyn Fn(&(String, String, String)) -> usize, title: &str| {
        rows.iter().map(f).chain([title.len()]).max().unwrap_or(0)
    };
    let sp = width(&|r| r.1.chars().count(), "Sync Point");
    let rid = width(&|r| r.0.chars().count(), "Remote ID");
    writeln!(
        out,
        "{} Syncs:",
        if incoming { "Incoming" } else { "Outgoing" }
    )
    .unwrap();
    writeln!(
        out,
        "  {:<sp$}\t{:<rid$}\tUpdated At",
        "Sync Point", "Remote ID"
    )
    .unwrap();
    for (remote, point, updated) in rows {
        writeln!(out, "  {point:<sp$}\t{remote:<rid$}\t{}", ts_line(&updated)).unwrap();
    }
    Ok(())
}

//! Swift's `.builder` file: reading and writing it exactly as Swift 2.38.3 does.
//!
//! # Format
//!
//! `swift-ring-builder` saves `pickle.dump(builder.to_dict(), f, protocol=2)`: a dict with
//! eighteen keys (see [`TO_DICT_KEYS`]), the replica table as a list of `array('H')` (or
//! `array('I')` once device ids need four bytes), `_last_part_moves` as an `array('B')` —
//! or a plain list after a partition power increase — and `_remove_devs` holding *the same*
//! dict objects as `devs` (the pickle memo makes them one object; Swift reads the live
//! `parts` of a device being drained through that list).
//!
//! Loading accepts what `RingBuilder.load` accepts: the dict, or the pickled `RingBuilder`
//! instance very old versions wrote (its state dict uses the attribute names, `_id` for
//! `id`); dicts missing the keys `copy_from` reads with defaults (`next_part_power`,
//! `overload`, `_dispersion_graph`, `dispersion`, `id`); devices without `meta`, `region`
//! or replication address (back-filled as Swift does); ints where Swift usually has floats
//! and the other way round; `None` for `_last_part_moves` and its epoch (`write_builder`).
//! Anything Swift could load but Ringsmith's model could not hold safely (a table naming
//! a device that does not exist, a table or move list of the wrong length) is refused with
//! a message naming the file and the key, rather than loaded into a builder that would
//! fail later.
//!
//! Saving writes the dict in `to_dict()` order through the pickle writer, with the device
//! dicts of `_remove_devs` written once and fetched by memo, and replaces the file
//! atomically (Swift writes it in place; see `docs/differences.md`). A device's keys that
//! Ringsmith does not model are carried in [`Device::extra`] and written back.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{BuilderDevice, RingBuilder, NONE_DEV};
use crate::device::{Device, Tier};
use crate::pickle::{self, Value};
use crate::ring::RingData;

/// The keys of Swift's `RingBuilder.to_dict()`, in its order.
pub const TO_DICT_KEYS: [&str; 18] = [
    "part_power",
    "next_part_power",
    "replicas",
    "min_part_hours",
    "parts",
    "devs",
    "devs_changed",
    "dev_id_bytes",
    "version",
    "overload",
    "_replica2part2dev",
    "_last_part_moves_epoch",
    "_last_part_moves",
    "_last_part_gather_start",
    "_dispersion_graph",
    "dispersion",
    "_remove_devs",
    "id",
];

/// Device dict keys in the order Swift's CLI `add` creates them.
const DEV_KEYS: [&str; 12] = [
    "region",
    "zone",
    "ip",
    "port",
    "device",
    "replication_ip",
    "replication_port",
    "meta",
    "weight",
    "id",
    "parts",
    "parts_wanted",
];

/// Why a `.builder` file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BuilderFileError {
    #[error("Ring Builder file does not exist: {}", .path.display())]
    NotFound { path: PathBuf },
    #[error("Ring Builder file cannot be accessed: {}", .path.display())]
    PermissionDenied { path: PathBuf },
    #[error("cannot read Ring Builder file {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("Ring Builder file is invalid: {}: {reason}{}", display_path(.path), if *.composite { " (it appears to be a composite ring builder file?)" } else { "" })]
    Invalid {
        /// None when the bytes did not come from a file.
        path: Option<PathBuf>,
        reason: String,
        /// The file is JSON composite ring metadata (`swift-ring-composer`), not a builder.
        composite: bool,
    },
}

fn display_path(p: &Option<PathBuf>) -> String {
    match p {
        Some(p) => p.display().to_string(),
        None => "<bytes>".to_string(),
    }
}

/// `<dir of builder>/backups/<now_secs>.<builder file name>`, where swift-ring-builder keeps
/// a copy of every builder it saves.
pub fn backup_path(builder_path: &Path, now_secs: u64) -> PathBuf {
    let dir = match builder_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = builder_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join("backups").join(format!("{now_secs}.{name}"))
}

/// Where writing `path` really writes: the final target of a chain of symlinks (relative
/// links resolve against their own directory), or `path` itself.
fn resolve_symlinks(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // A loop of links cannot be followed; 40 is the kernel's own limit.
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                }
            }
            Err(_) => break,
        }
    }
    p
}

/// Largest device id a table of `bytes`-wide ids can hold (the all-ones value means "none").
fn none_dev_id(bytes: u8) -> u64 {
    if bytes >= 4 {
        u32::MAX as u64
    } else {
        u16::MAX as u64
    }
}

/// Swift's `calc_dev_id_bytes(max_dev_id)`.
fn calc_dev_id_bytes(max_dev_id: u64) -> u8 {
    if max_dev_id < none_dev_id(2) {
        2
    } else {
        4
    }
}

fn typecode_bytes(tc: char) -> Option<u8> {
    match tc {
        'B' | 'b' => Some(1),
        'H' | 'h' => Some(2),
        'I' | 'i' => Some(4),
        'L' | 'l' | 'Q' | 'q' => Some(8),
        _ => None,
    }
}

struct Ctx {
    path: Option<PathBuf>,
    input_len: usize,
}

impl Ctx {
    fn invalid(&self, reason: impl Into<String>) -> BuilderFileError {
        BuilderFileError::Invalid {
            path: self.path.clone(),
            reason: reason.into(),
            composite: false,
        }
    }
}

/// A key-value view of the builder's state, whichever shape the file has.
struct State<'a> {
    entries: &'a [(Value, Value)],
    /// The legacy instance shape names the id `_id`.
    instance: bool,
}

impl<'a> State<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        let key = if self.instance && key == "id" {
            "_id"
        } else {
            key
        };
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl RingBuilder {
    /// Loads a `.builder` file written by Swift (any version `RingBuilder.load` accepts)
    /// or by Ringsmith.
    pub fn load(path: impl AsRef<Path>) -> Result<RingBuilder, BuilderFileError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BuilderFileError::NotFound {
                path: path.to_path_buf(),
            },
            io::ErrorKind::PermissionDenied => BuilderFileError::PermissionDenied {
                path: path.to_path_buf(),
            },
            _ => BuilderFileError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let ctx = Ctx {
            path: Some(path.to_path_buf()),
            input_len: bytes.len(),
        };
        let value = Self::unpickle(&bytes, &ctx)?;
        // The file's bytes are not needed any more; a big builder is tens of MB.
        drop(bytes);
        Self::from_value(&value, &ctx)
    }

    /// Loads a builder from the bytes of a `.builder` file.
    pub fn from_pickle_bytes(bytes: &[u8]) -> Result<RingBuilder, BuilderFileError> {
        let ctx = Ctx {
            path: None,
            input_len: bytes.len(),
        };
        Self::from_value(&Self::unpickle(bytes, &ctx)?, &ctx)
    }

    fn unpickle(bytes: &[u8], ctx: &Ctx) -> Result<Value, BuilderFileError> {
        match pickle::loads(bytes) {
            Ok(v) => Ok(v),
            Err(e) => {
                let composite = looks_like_composite(bytes);
                let reason = if bytes.is_empty() {
                    "the file is empty".to_string()
                } else {
                    e.to_string()
                };
                Err(BuilderFileError::Invalid {
                    path: ctx.path.clone(),
                    reason,
                    composite,
                })
            }
        }
    }

    fn from_value(value: &Value, ctx: &Ctx) -> Result<RingBuilder, BuilderFileError> {
        let state = match value.deref_shared() {
            Value::Dict(entries) => State {
                entries,
                instance: false,
            },
            Value::Object(o) => match o.state.as_ref().map(|s| s.deref_shared()) {
                Some(Value::Dict(entries)) => State {
                    entries,
                    instance: true,
                },
                _ => {
                    return Err(ctx.invalid(format!(
                        "a pickled {}.{} without a state dict, not a ring builder",
                        o.module, o.name
                    )))
                }
            },
            other => {
                return Err(ctx.invalid(format!(
                    "the pickle holds a {}, not a ring builder dict",
                    other.type_name()
                )))
            }
        };
        from_state(ctx, &state)
    }

    /// The `.builder` file contents: Swift's `pickle.dumps(to_dict(), protocol=2)`.
    pub fn to_pickle_bytes(&self) -> Vec<u8> {
        pickle::dumps(&self.to_pickle_value())
    }

    /// Swift's `to_dict()` as a pickle value (device dicts pending removal are shared
    /// between `devs` and `_remove_devs`).
    pub fn to_pickle_value(&self) -> Value {
        let devs: Vec<Value> = self
            .devs
            .iter()
            .map(|d| match d {
                None => Value::None,
                Some(d) => {
                    let v = dev_to_value(d);
                    if self.remove_devs.contains(&d.dev.id) {
                        Value::shared(v)
                    } else {
                        v
                    }
                }
            })
            .collect();
        let remove_devs: Vec<Value> = self
            .remove_devs
            .iter()
            .filter_map(|&id| {
                let v = devs.get(id as usize)?;
                // Always a Shared made above, so it is written as a memo fetch.
                (!v.is_none()).then(|| v.clone())
            })
            .collect();
        debug_assert_eq!(
            remove_devs.len(),
            self.remove_devs.len(),
            "every device pending removal is still in devs"
        );
        let parts = 1u64 << self.part_power;
        let has_table = self
            .replica2part2dev
            .as_ref()
            .is_some_and(|t| !t.is_empty());
        // Swift's dev_id_bytes property: the table's item size, or what the device count needs.
        let dev_id_bytes = if has_table {
            self.dev_id_bytes
        } else {
            calc_dev_id_bytes(self.devs.len().saturating_sub(1) as u64)
        };
        let table = match &self.replica2part2dev {
            None => Value::None,
            Some(rows) => {
                let (tc, none) = if self.dev_id_bytes >= 4 {
                    ('I', u32::MAX as u64)
                } else {
                    ('H', u16::MAX as u64)
                };
                Value::List(
                    rows.iter()
                        .map(|row| Value::Array {
                            typecode: tc,
                            items: row
                                .iter()
                                .map(|&d| if d == NONE_DEV { none } else { d as u64 })
                                .collect(),
                        })
                        .collect(),
                )
            }
        };
        let moves: Vec<u64> = self.last_part_moves.iter().map(|&m| m as u64).collect();
        let last_part_moves = if self.last_part_moves_is_list {
            Value::List(moves.into_iter().map(|m| Value::Int(m as i64)).collect())
        } else {
            Value::Array {
                typecode: 'B',
                items: moves,
            }
        };
        let graph = Value::Dict(
            self.dispersion_graph
                .iter()
                .map(|(tier, counts)| {
                    (
                        tier_to_value(tier),
                        Value::List(counts.iter().map(|&c| int(c)).collect()),
                    )
                })
                .collect(),
        );
        let values = [
            int(self.part_power as u64),
            opt_int(self.next_part_power.map(u64::from)),
            Value::Float(self.replicas),
            int(self.min_part_hours as u64),
            int(parts),
            Value::List(devs),
            Value::Bool(self.devs_changed),
            int(dev_id_bytes as u64),
            int(self.version),
            Value::Float(self.overload),
            table,
            int(self.last_part_moves_epoch),
            last_part_moves,
            int(self.last_part_gather_start),
            graph,
            self.dispersion.map(Value::Float).unwrap_or(Value::None),
            Value::List(remove_devs),
            self.id.clone().map(Value::Str).unwrap_or(Value::None),
        ];
        Value::Dict(
            TO_DICT_KEYS
                .iter()
                .zip(values)
                .map(|(k, v)| (Value::Str(k.to_string()), v))
                .collect(),
        )
    }

    /// Writes the `.builder` file atomically (a crash leaves the old file or the new one).
    /// Assigns nothing: call [`RingBuilder::ensure_id`] first, as Swift's `save` does.
    ///
    /// What Swift's in-place write keeps, this keeps too: a symlinked builder is written
    /// through the link (the link stays), and an existing file keeps its mode, owner and
    /// group (a new one gets 0644).
    pub fn save(&self, path: impl AsRef<Path>) -> io::Result<()> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let path = path.as_ref();
        let target = resolve_symlinks(path);
        let existing = std::fs::metadata(&target).ok();
        let mode = existing
            .as_ref()
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        let owner = existing.as_ref().map(|m| (m.uid(), m.gid()));
        let bytes = self.to_pickle_bytes();
        crate::atomic::write_file_atomic(&target, mode, |f| {
            use std::io::Write;
            if let Some((uid, gid)) = owner {
                // Only root can give a file away; anyone else writes files they own.
                let _ = std::os::unix::fs::fchown(&*f, Some(uid), Some(gid));
            }
            f.write_all(&bytes)
        })
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write Ring Builder file {}: {e}", path.display()),
            )
        })
    }

    /// Saves a copy as `backups/<now_secs>.<name>` beside `path` (creating `backups/`),
    /// then the builder itself, as swift-ring-builder does on every change. Returns the
    /// backup's path.
    pub fn save_with_backup(&self, path: impl AsRef<Path>, now_secs: u64) -> io::Result<PathBuf> {
        let path = path.as_ref();
        let backup = backup_path(path, now_secs);
        if let Some(dir) = backup.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create backup directory {}: {e}", dir.display()),
                )
            })?;
        }
        self.save(&backup)?;
        self.save(path)?;
        Ok(backup)
    }

    /// Gives the builder its persistent id (a uuid4 as 32 hex digits) if it has none.
    /// Returns true when it assigned one, so a caller knows the builder must be saved.
    pub fn ensure_id(&mut self) -> bool {
        if self.id.is_some() {
            return false;
        }
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        self.id = Some(hex::encode(b));
        true
    }

    /// Swift's `get_ring()`: the ring servers load, with holes kept and the builder-only
    /// device keys (`parts`, `parts_wanted`) dropped.
    pub fn get_ring(&self) -> RingData {
        let devs = self
            .devs
            .iter()
            .map(|d| d.as_ref().map(|d| d.dev.clone()))
            .collect();
        let has_table = self
            .replica2part2dev
            .as_ref()
            .is_some_and(|t| !t.is_empty());
        RingData {
            devs,
            replica2part2dev: if has_table {
                self.replica2part2dev.clone().unwrap_or_default()
            } else {
                Vec::new()
            },
            part_shift: 32 - self.part_power,
            next_part_power: if has_table {
                self.next_part_power
            } else {
                None
            },
            version: Some(self.version),
            dev_id_bytes: if has_table {
                self.dev_id_bytes
            } else {
                calc_dev_id_bytes(self.devs.len().saturating_sub(1) as u64)
            },
        }
    }

    /// Recreates a builder from a ring (swift-ring-builder `write_builder`): every device's
    /// `parts` counted from the table, no move history, min_part_hours as given. Unlike
    /// Swift it keeps the ring's `next_part_power` (see `docs/differences.md`). A ring with
    /// no table gives a builder that was never rebalanced, with one replica.
    pub fn from_ring(ring: &RingData, min_part_hours: u32) -> RingBuilder {
        let part_power = 32u32.saturating_sub(ring.part_shift);
        let parts = ring.replica2part2dev.first().map(|r| r.len()).unwrap_or(0);
        let replicas = match ring.replica2part2dev.len() {
            0 => 1.0,
            n => (n - 1) as f64 + ring.replica2part2dev[n - 1].len() as f64 / parts.max(1) as f64,
        };
        let mut devs: Vec<Option<BuilderDevice>> = ring
            .devs
            .iter()
            .map(|d| {
                d.as_ref().map(|d| BuilderDevice {
                    dev: d.clone(),
                    parts: 0,
                    // Swift's write_builder gives every device `parts_wanted: 0`.
                    parts_wanted: Some(0.0),
                })
            })
            .collect();
        for row in &ring.replica2part2dev {
            for &id in row {
                if let Some(Some(d)) = devs.get_mut(id as usize) {
                    d.parts += 1;
                }
            }
        }
        let table = (!ring.replica2part2dev.is_empty()).then(|| ring.replica2part2dev.clone());
        RingBuilder {
            part_power,
            next_part_power: ring.next_part_power,
            replicas,
            min_part_hours,
            devs,
            devs_changed: false,
            version: ring.version.unwrap_or(0),
            overload: 0.0,
            replica2part2dev: table,
            dev_id_bytes: ring.dev_id_bytes,
            last_part_moves_epoch: 0,
            last_part_moves: vec![0; 1usize << part_power.min(32)],
            last_part_moves_is_list: false,
            last_part_gather_start: 0,
            dispersion_graph: BTreeMap::new(),
            dispersion: None,
            remove_devs: Vec::new(),
            id: None,
        }
    }
}

fn int(v: u64) -> Value {
    Value::from_u64(v)
}

fn opt_int(v: Option<u64>) -> Value {
    v.map(int).unwrap_or(Value::None)
}

/// Python writes whole numbers of a float field as whatever type it holds; Ringsmith keeps
/// `parts_wanted` an int when it is whole (Swift's usual type) and a float otherwise.
fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Int(f as i64)
    } else {
        Value::Float(f)
    }
}

fn dev_to_value(d: &BuilderDevice) -> Value {
    let dev = &d.dev;
    let mut entries = vec![
        (s("region"), Value::Int(dev.region as i64)),
        (s("zone"), Value::Int(dev.zone as i64)),
        (s("ip"), Value::Str(dev.ip.clone())),
        (s("port"), Value::Int(dev.port as i64)),
        (s("device"), Value::Str(dev.device.clone())),
        (s("replication_ip"), Value::Str(dev.replication_ip.clone())),
        (
            s("replication_port"),
            Value::Int(dev.replication_port as i64),
        ),
        (s("meta"), Value::Str(dev.meta.clone())),
        (s("weight"), Value::Float(dev.weight)),
        (s("id"), Value::Int(dev.id as i64)),
        (s("parts"), int(d.parts)),
    ];
    if let Some(wanted) = d.parts_wanted {
        entries.push((s("parts_wanted"), num(wanted)));
    }
    for (k, v) in &dev.extra {
        entries.push((s(k), json_to_value(v)));
    }
    Value::Dict(entries)
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn tier_to_value(t: &Tier) -> Value {
    let i = |x: u32| Value::Int(x as i64);
    Value::Tuple(match t {
        Tier::Region(r) => vec![i(*r)],
        Tier::Zone(r, z) => vec![i(*r), i(*z)],
        Tier::Server(r, z, ip) => vec![i(*r), i(*z), s(ip)],
        Tier::Device(r, z, ip, id) => vec![i(*r), i(*z), s(ip), i(*id)],
    })
}

fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::None,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(x) => Value::Str(x.clone()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => {
            Value::Dict(o.iter().map(|(k, v)| (s(k), json_to_value(v))).collect())
        }
    }
}

/// Extra device keys are kept as JSON (the device model's representation); tuples become
/// lists and bytes become text, which is as close as JSON gets.
fn value_to_json(v: &Value) -> serde_json::Value {
    match v.deref_shared() {
        Value::None => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(x) => serde_json::Value::String(x.clone()),
        Value::Bytes(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(items) | Value::Tuple(items) => {
            serde_json::Value::Array(items.iter().map(value_to_json).collect())
        }
        Value::Dict(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k.as_str() {
                        Some(x) => x.to_string(),
                        None => format!("{:?}", value_to_json(k)),
                    };
                    (key, value_to_json(v))
                })
                .collect(),
        ),
        Value::Array { items, .. } => {
            serde_json::Value::Array(items.iter().map(|&x| serde_json::Value::from(x)).collect())
        }
        other => serde_json::Value::String(format!("{other:?}")),
    }
}

fn looks_like_composite(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(o)) => {
            o.contains_key("components") && o.contains_key("component_builder_files")
        }
        _ => false,
    }
}

fn describe(v: &Value) -> String {
    let v = v.deref_shared();
    match v {
        Value::Str(x) => format!("{:?}", x),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::None => "None".into(),
        other => format!("a {}", other.type_name()),
    }
}

fn req<'a>(ctx: &Ctx, st: &State<'a>, key: &str) -> Result<&'a Value, BuilderFileError> {
    st.get(key)
        .ok_or_else(|| ctx.invalid(format!("missing key '{key}' (not a ring builder?)")))
}

fn get_u64(ctx: &Ctx, what: &str, v: &Value) -> Result<u64, BuilderFileError> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.deref_shared() {
        Value::Bool(b) => Ok(*b as u64),
        // Python tolerates whole floats in int fields; so does Ringsmith.
        Value::Float(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19 => Ok(*f as u64),
        other => Err(ctx.invalid(format!(
            "{what} must be a non-negative int, not {}",
            describe(other)
        ))),
    }
}

fn get_u32(ctx: &Ctx, what: &str, v: &Value) -> Result<u32, BuilderFileError> {
    let n = get_u64(ctx, what, v)?;
    u32::try_from(n).map_err(|_| ctx.invalid(format!("{what} {n} is too large")))
}

fn get_f64(ctx: &Ctx, what: &str, v: &Value) -> Result<f64, BuilderFileError> {
    v.as_f64()
        .ok_or_else(|| ctx.invalid(format!("{what} must be a number, not {}", describe(v))))
}

fn get_str(ctx: &Ctx, what: &str, v: &Value) -> Result<String, BuilderFileError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| ctx.invalid(format!("{what} must be a str, not {}", describe(v))))
}

fn get_bool(ctx: &Ctx, what: &str, v: &Value) -> Result<bool, BuilderFileError> {
    v.as_bool()
        .ok_or_else(|| ctx.invalid(format!("{what} must be a bool, not {}", describe(v))))
}

/// A list of ints from a list, a tuple or an array (borrowed from an array: the tables
/// are the bulk of a builder and are not copied twice).
fn int_items<'v>(
    ctx: &Ctx,
    what: &str,
    v: &'v Value,
) -> Result<(Option<char>, std::borrow::Cow<'v, [u64]>), BuilderFileError> {
    match v.deref_shared() {
        Value::Array { typecode, items } => {
            Ok((Some(*typecode), std::borrow::Cow::Borrowed(items)))
        }
        Value::List(items) | Value::Tuple(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                out.push(get_u64(ctx, &format!("{what}[{i}]"), it)?);
            }
            Ok((None, std::borrow::Cow::Owned(out)))
        }
        other => Err(ctx.invalid(format!(
            "{what} must be an array or a list, not {}",
            describe(other)
        ))),
    }
}

fn dev_from_value(ctx: &Ctx, index: usize, v: &Value) -> Result<BuilderDevice, BuilderFileError> {
    let Some(entries) = v.as_dict() else {
        return Err(ctx.invalid(format!(
            "devs[{index}] must be a dict or None, not {}",
            describe(v)
        )));
    };
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    };
    let what = |k: &str| format!("devs[{index}]['{k}']");
    let need =
        |k: &str| get(k).ok_or_else(|| ctx.invalid(format!("devs[{index}] has no '{k}' key")));
    let id = get_u32(ctx, &what("id"), need("id")?)?;
    if id as usize != index {
        return Err(ctx.invalid(format!(
            "devs[{index}] has id {id}: a device's id must be its index in devs"
        )));
    }
    let ip = get_str(ctx, &what("ip"), need("ip")?)?;
    let port = get_u32(ctx, &what("port"), need("port")?)?;
    let replication_ip = match get("replication_ip") {
        Some(v) => get_str(ctx, &what("replication_ip"), v)?,
        None => ip.clone(),
    };
    let replication_port = match get("replication_port") {
        Some(v) => get_u32(ctx, &what("replication_port"), v)?,
        None => port,
    };
    let mut extra = BTreeMap::new();
    for (k, v) in entries {
        let Some(k) = k.as_str() else {
            return Err(ctx.invalid(format!("devs[{index}] has a non-str key {}", describe(k))));
        };
        if !DEV_KEYS.contains(&k) {
            extra.insert(k.to_string(), value_to_json(v));
        }
    }
    let dev = Device {
        id,
        region: match get("region") {
            Some(v) => get_u32(ctx, &what("region"), v)?,
            None => 1,
        },
        zone: get_u32(ctx, &what("zone"), need("zone")?)?,
        ip,
        port,
        replication_ip,
        replication_port,
        device: get_str(ctx, &what("device"), need("device")?)?,
        weight: get_f64(ctx, &what("weight"), need("weight")?)?,
        meta: match get("meta") {
            Some(v) => get_str(ctx, &what("meta"), v)?,
            None => String::new(),
        },
        extra,
    };
    Ok(BuilderDevice {
        dev,
        parts: match get("parts") {
            Some(v) => get_u64(ctx, &what("parts"), v)?,
            None => 0,
        },
        parts_wanted: match get("parts_wanted") {
            Some(v) => Some(get_f64(ctx, &what("parts_wanted"), v)?),
            None => None,
        },
    })
}

fn tier_from_value(ctx: &Ctx, v: &Value) -> Result<Tier, BuilderFileError> {
    let bad = || ctx.invalid(format!("_dispersion_graph has a bad tier key {v:?}"));
    let items = match v.deref_shared() {
        Value::Tuple(items) | Value::List(items) => items,
        _ => return Err(bad()),
    };
    let n = |i: usize| -> Result<u32, BuilderFileError> {
        items[i]
            .as_i64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(bad)
    };
    let ip = |i: usize| items[i].as_str().map(str::to_string).ok_or_else(bad);
    Ok(match items.len() {
        1 => Tier::Region(n(0)?),
        2 => Tier::Zone(n(0)?, n(1)?),
        3 => Tier::Server(n(0)?, n(1)?, ip(2)?),
        4 => Tier::Device(n(0)?, n(1)?, ip(2)?, n(3)?),
        _ => return Err(bad()),
    })
}

fn from_state(ctx: &Ctx, st: &State) -> Result<RingBuilder, BuilderFileError> {
    let part_power = get_u32(ctx, "part_power", req(ctx, st, "part_power")?)?;
    if part_power > 32 {
        return Err(ctx.invalid(format!("part_power must be at most 32 (was {part_power})")));
    }
    let parts = get_u64(ctx, "parts", req(ctx, st, "parts")?)?;
    if parts != 1u64 << part_power {
        return Err(ctx.invalid(format!(
            "parts is {parts} but part_power {part_power} means {}",
            1u64 << part_power
        )));
    }
    let next_part_power = match st.get("next_part_power") {
        Some(v) if !v.is_none() => Some(get_u32(ctx, "next_part_power", v)?),
        _ => None,
    };
    let replicas = get_f64(ctx, "replicas", req(ctx, st, "replicas")?)?;
    if !(replicas >= 1.0 && replicas.is_finite()) {
        return Err(ctx.invalid(format!("replicas must be at least 1 (was {replicas:.6})")));
    }
    let min_part_hours = get_u32(ctx, "min_part_hours", req(ctx, st, "min_part_hours")?)?;
    let devs_value = req(ctx, st, "devs")?;
    let Some(dev_items) = devs_value.as_seq() else {
        return Err(ctx.invalid(format!("devs must be a list, not {}", describe(devs_value))));
    };
    let mut devs = Vec::with_capacity(dev_items.len());
    for (i, d) in dev_items.iter().enumerate() {
        devs.push(if d.is_none() {
            None
        } else {
            Some(dev_from_value(ctx, i, d)?)
        });
    }
    let devs_changed = get_bool(ctx, "devs_changed", req(ctx, st, "devs_changed")?)?;
    let version = get_u64(ctx, "version", req(ctx, st, "version")?)?;
    let overload = match st.get("overload") {
        Some(v) => get_f64(ctx, "overload", v)?,
        None => 0.0,
    };

    let table_value = req(ctx, st, "_replica2part2dev")?;
    let (replica2part2dev, dev_id_bytes) = if table_value.is_none() {
        (None, calc_dev_id_bytes(devs.len().saturating_sub(1) as u64))
    } else {
        let Some(rows) = table_value.as_seq() else {
            return Err(ctx.invalid(format!(
                "_replica2part2dev must be a list of arrays, not {}",
                describe(table_value)
            )));
        };
        let mut table = Vec::with_capacity(rows.len());
        let mut width = None;
        for (r, row) in rows.iter().enumerate() {
            let what = format!("_replica2part2dev[{r}]");
            let (tc, items) = int_items(ctx, &what, row)?;
            let row_width = match tc {
                Some(tc) => typecode_bytes(tc)
                    .filter(|&b| b == 2 || b == 4)
                    .ok_or_else(|| {
                        ctx.invalid(format!("{what} is an array('{tc}'), not 'H' or 'I'"))
                    })?,
                // Lists (very old builders): as wide as the largest id needs.
                None => calc_dev_id_bytes(
                    items
                        .iter()
                        .copied()
                        .filter(|&x| x != none_dev_id(2) && x != none_dev_id(4))
                        .max()
                        .unwrap_or(0),
                ),
            };
            let width = *width.get_or_insert(row_width);
            if items.len() as u64 > parts {
                return Err(ctx.invalid(format!(
                    "{what} has {} entries for {parts} partitions",
                    items.len()
                )));
            }
            let none = none_dev_id(width);
            let mut out = Vec::with_capacity(items.len());
            for (p, &id) in items.iter().enumerate() {
                if id == none {
                    out.push(NONE_DEV);
                    continue;
                }
                match devs.get(id as usize) {
                    Some(Some(_)) => out.push(id as u32),
                    _ => {
                        return Err(ctx.invalid(format!(
                            "{what}[{p}] assigns partition {p} to device {id}, which does not exist"
                        )))
                    }
                }
            }
            table.push(out);
        }
        let width = width.unwrap_or_else(|| calc_dev_id_bytes(devs.len().saturating_sub(1) as u64));
        (Some(table), width)
    };

    let epoch = match req(ctx, st, "_last_part_moves_epoch")? {
        v if v.is_none() => 0,
        v => get_u64(ctx, "_last_part_moves_epoch", v)?,
    };
    let moves_value = req(ctx, st, "_last_part_moves")?;
    let (last_part_moves, last_part_moves_is_list) = if moves_value.is_none() {
        // A zeroed move list as long as the partition count: refuse a tiny hostile file
        // that claims 2^32 partitions (a real one carries a table at least that long).
        let cap = (ctx.input_len as u64).saturating_mul(16).max(1 << 24);
        if parts > cap {
            return Err(ctx.invalid(format!(
                "_last_part_moves is None and part_power {part_power} would need {parts} entries; \
                 the file is too small to be such a builder"
            )));
        }
        (vec![0u8; parts as usize], false)
    } else {
        let (tc, items) = int_items(ctx, "_last_part_moves", moves_value)?;
        if items.len() as u64 != parts {
            return Err(ctx.invalid(format!(
                "_last_part_moves has {} entries for {parts} partitions",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len());
        for (p, &m) in items.iter().enumerate() {
            out.push(u8::try_from(m).map_err(|_| {
                ctx.invalid(format!("_last_part_moves[{p}] is {m}, more than 255"))
            })?);
        }
        (out, tc.is_none())
    };
    let last_part_gather_start = get_u64(
        ctx,
        "_last_part_gather_start",
        req(ctx, st, "_last_part_gather_start")?,
    )?;

    let mut dispersion_graph = BTreeMap::new();
    if let Some(g) = st.get("_dispersion_graph") {
        if !g.is_none() {
            let Some(entries) = g.as_dict() else {
                return Err(ctx.invalid(format!(
                    "_dispersion_graph must be a dict, not {}",
                    describe(g)
                )));
            };
            for (k, v) in entries {
                let tier = tier_from_value(ctx, k)?;
                let (_, counts) = int_items(ctx, "_dispersion_graph value", v)?;
                dispersion_graph.insert(tier, counts.into_owned());
            }
        }
    }
    let dispersion = match st.get("dispersion") {
        Some(v) if !v.is_none() => Some(get_f64(ctx, "dispersion", v)?),
        _ => None,
    };

    let rm_value = req(ctx, st, "_remove_devs")?;
    let Some(rm_items) = rm_value.as_seq() else {
        return Err(ctx.invalid(format!(
            "_remove_devs must be a list, not {}",
            describe(rm_value)
        )));
    };
    let mut remove_devs = Vec::with_capacity(rm_items.len());
    for (i, d) in rm_items.iter().enumerate() {
        let id = d
            .get("id")
            .ok_or_else(|| ctx.invalid(format!("_remove_devs[{i}] is not a device dict")))?;
        let id = get_u32(ctx, &format!("_remove_devs[{i}]['id']"), id)?;
        if !matches!(devs.get(id as usize), Some(Some(_))) {
            return Err(ctx.invalid(format!(
                "_remove_devs[{i}] is device {id}, which is not in devs"
            )));
        }
        remove_devs.push(id);
    }
    let id = match st.get("id") {
        Some(v) if !v.is_none() => Some(get_str(ctx, "id", v)?),
        _ => None,
    };

    Ok(RingBuilder {
        part_power,
        next_part_power,
        replicas,
        min_part_hours,
        devs,
        devs_changed,
        version,
        overload,
        replica2part2dev,
        dev_id_bytes,
        last_part_moves_epoch: epoch,
        last_part_moves,
        last_part_moves_is_list,
        last_part_gather_start,
        dispersion_graph,
        dispersion,
        remove_devs,
        id,
    })
}

#[cfg(test)]
mod tests;

//! `ring.gz` on disk: Swift's formats v1 and v2, read and written byte-compatibly.
//!
//! Both formats are one gzip member whose payload starts with the magic `R1NG` and a
//! big-endian u16 format version. Swift writes the magic as an uncompressed ("stored")
//! deflate block followed by a full flush, so `file(1)` can recognise a ring, and uses a
//! fixed gzip mtime (1300507380) so that the same ring always gives the same bytes.
//!
//! * **v1**: after the magic, a big-endian u32 length and a JSON header (`byteorder`,
//!   `devs`, `part_shift`, `replica_count` = number of table rows, optional `version` and
//!   `next_part_power`), then the rows of the replica -> partition -> device table as u16
//!   in the byte order the header declares. Every row has `2**part_power` entries except
//!   the last, which is shorter for fractional replica counts. v1 cannot hold 4-byte ids.
//! * **v2**: named sections (`swift/ring/metadata`, `swift/ring/devices`,
//!   `swift/ring/assignments`), each a big-endian u64 length plus data and each starting
//!   at a deflate full-flush boundary so a reader can seek to it; then an index (JSON:
//!   section -> compressed and uncompressed start/end offsets plus a sha256 of the
//!   section) and a fixed 31-byte tail that tells where the index starts. The table is
//!   stored big-endian with 2- or 4-byte entries.
//!
//! **Reading** inflates the whole member once (checking gzip's CRC32 and size, so a
//! truncated or bit-flipped file is caught even where the ring layout would still parse),
//! then parses the payload. v2 sections are located through the uncompressed offsets the
//! tail and index record, and each section's length and hash are checked. Nothing is
//! allocated on the word of a header: buffers grow only with data actually decompressed,
//! and the total is capped at [`MAX_UNCOMPRESSED`].
//!
//! **Writing** builds the gzip member by hand around flate2's raw deflate (level 9): the
//! header (FNAME = the file's basename minus `.gz`, as Python's `gzip` module writes it),
//! the magic as a stored block, full flushes between sections — only when something was
//! written since the last flush, because a redundant flush adds an empty block and would
//! move the tail — and the tail's stored blocks. Rings are saved atomically with mode
//! 0644. Compressed bytes differ from Swift's (a different deflate implementation); the
//! decompressed payload is byte-identical.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use md5::Md5;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use super::{RingData, NONE_DEV};
use crate::device::Device;
use crate::pyjson;

/// The gzip mtime Swift writes into every ring (keeps saves deterministic).
pub const RING_GZIP_MTIME: u32 = 1_300_507_380;

/// Upper bound on the decompressed size of a ring file we agree to read (1 GiB). A
/// 2^22-partition, 6-replica ring with 4-byte ids is about 100 MiB.
pub const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Sections of a v2 ring, in the order Swift writes them.
pub const SECTION_METADATA: &str = "swift/ring/metadata";
pub const SECTION_DEVICES: &str = "swift/ring/devices";
pub const SECTION_ASSIGNMENTS: &str = "swift/ring/assignments";

/// A ring file could not be read or written. Always names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct RingError {
    pub path: PathBuf,
    pub problem: RingProblem,
}

/// What was wrong with a ring file.
#[derive(Debug, thiserror::Error)]
pub enum RingProblem {
    #[error("cannot read the file: {0}")]
    Read(std::io::Error),
    #[error("cannot write the file: {0}")]
    Write(std::io::Error),
    #[error("not a gzip file (a ring.gz starts with 1f 8b 08)")]
    NotGzip,
    #[error("corrupt gzip data: {0}")]
    Gzip(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("bad ring magic {0:?} (expected \"R1NG\")")]
    BadMagic(String),
    #[error("unsupported ring format version {0} (rings have version 1 or 2)")]
    UnsupportedVersion(u16),
    #[error("bad ring header: {0}")]
    BadHeader(String),
    #[error("v2 section {section}: {detail}")]
    BadSection { section: String, detail: String },
    #[error("v2 section {section}: hash mismatch: data hashes to {found}, index says {expected}")]
    HashMismatch {
        section: String,
        expected: String,
        found: String,
    },
    #[error("bad device table: {0}")]
    BadTable(String),
    #[error("bad device list: {0}")]
    BadDevices(String),
    #[error("ring format v1 only supports 2-byte device ids; write format v2")]
    V1NeedsTwoByteIds,
    #[error("cannot write: {0}")]
    Unwritable(String),
}

impl RingProblem {
    pub fn at(self, path: &Path) -> RingError {
        RingError {
            path: path.to_path_buf(),
            problem: self,
        }
    }
}

/// The on-disk format of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatVersion {
    V1,
    V2,
}

impl FormatVersion {
    pub fn number(self) -> u16 {
        match self {
            FormatVersion::V1 => 1,
            FormatVersion::V2 => 2,
        }
    }

    pub fn from_number(n: u16) -> Option<Self> {
        match n {
            1 => Some(FormatVersion::V1),
            2 => Some(FormatVersion::V2),
            _ => None,
        }
    }
}

/// A ring as read from disk, with what the file said about itself.
#[derive(Clone, Debug)]
pub struct LoadedRing {
    pub data: RingData,
    pub format: FormatVersion,
    /// Size of the file on disk.
    pub size: u64,
    /// Size of the decompressed payload.
    pub raw_size: u64,
}

impl RingData {
    /// Reads a `ring.gz` of either format (Swift's `RingData.load`).
    pub fn load(path: &Path) -> Result<RingData, RingError> {
        Ok(load_ring_file(path)?.data)
    }

    /// Writes this ring to `path` atomically (temp file, fsync, rename; mode 0644).
    pub fn save(&self, path: &Path, format: FormatVersion) -> Result<(), RingError> {
        let name = gzip_fname(path);
        let bytes = self.to_gz_bytes(format, &name).map_err(|p| p.at(path))?;
        crate::atomic::write_bytes_atomic(path, 0o644, &bytes)
            .map_err(|e| RingProblem::Write(e).at(path))
    }

    /// The complete `ring.gz` file content; `gz_name` goes into the gzip FNAME field.
    pub fn to_gz_bytes(
        &self,
        format: FormatVersion,
        gz_name: &[u8],
    ) -> Result<Vec<u8>, RingProblem> {
        self.check_writable()?;
        let mut w = GzRingWriter::new(gz_name);
        w.write_stored(&[b'R', b'1', b'N', b'G', 0, format.number() as u8]);
        match format {
            FormatVersion::V1 => self.serialize_v1(&mut w)?,
            FormatVersion::V2 => self.serialize_v2(&mut w)?,
        }
        Ok(w.finish(format))
    }

    /// Swift's `calc_replica_count`: whole rows plus the fraction of the last one.
    pub fn replica_count(&self) -> f64 {
        let rows = &self.replica2part2dev;
        match (rows.first(), rows.last()) {
            (Some(first), Some(last)) if !first.is_empty() => {
                (rows.len() - 1) as f64 + last.len() as f64 / first.len() as f64
            }
            _ => 0.0,
        }
    }

    pub fn part_power(&self) -> u32 {
        32 - self.part_shift
    }

    /// The payload of a v1 file, after the magic.
    fn serialize_v1(&self, w: &mut GzRingWriter) -> Result<(), RingProblem> {
        if self.dev_id_bytes != 2 {
            return Err(RingProblem::V1NeedsTwoByteIds);
        }
        let mut header = Map::new();
        header.insert("byteorder".into(), Value::from("little"));
        header.insert("devs".into(), devices_json(&self.devs));
        header.insert("part_shift".into(), Value::from(self.part_shift));
        header.insert(
            "replica_count".into(),
            Value::from(self.replica2part2dev.len()),
        );
        if let Some(v) = self.version {
            header.insert("version".into(), Value::from(v));
        }
        if let Some(n) = self.next_part_power {
            header.insert("next_part_power".into(), Value::from(n));
        }
        let json = pyjson::dumps(&Value::Object(header));
        let len = u32::try_from(json.len())
            .map_err(|_| RingProblem::Unwritable("v1 header JSON exceeds 4 GiB".into()))?;
        w.write(&len.to_be_bytes());
        w.write(json.as_bytes());
        let mut buf = Vec::new();
        for row in &self.replica2part2dev {
            buf.clear();
            buf.reserve(row.len() * 2);
            for &id in row {
                buf.extend_from_slice(&(disk_id_u16(id)).to_le_bytes());
            }
            w.write(&buf);
        }
        Ok(())
    }

    fn serialize_v2(&self, w: &mut GzRingWriter) -> Result<(), RingProblem> {
        let mut meta = Map::new();
        meta.insert("dev_id_bytes".into(), Value::from(self.dev_id_bytes));
        meta.insert("part_shift".into(), Value::from(self.part_shift));
        meta.insert(
            "replica_count".into(),
            if self.replica2part2dev.is_empty() {
                Value::from(0)
            } else {
                float_value(self.replica_count())
            },
        );
        meta.insert(
            "version".into(),
            self.version.map(Value::from).unwrap_or(Value::Null),
        );
        if let Some(n) = self.next_part_power {
            meta.insert("next_part_power".into(), Value::from(n));
        }
        let mut index = Map::new();

        let meta_json = pyjson::dumps(&Value::Object(meta));
        w.section(SECTION_METADATA, &mut index, |w| {
            w.write_blob(meta_json.as_bytes())
        });
        let devs_json = pyjson::dumps(&devices_json(&self.devs));
        w.section(SECTION_DEVICES, &mut index, |w| {
            w.write_blob(devs_json.as_bytes())
        });

        let width = usize::from(self.dev_id_bytes);
        let entries: usize = self.replica2part2dev.iter().map(Vec::len).sum();
        w.section(SECTION_ASSIGNMENTS, &mut index, |w| {
            w.write(&((entries * width) as u64).to_be_bytes());
            let mut buf = Vec::new();
            for row in &self.replica2part2dev {
                buf.clear();
                buf.reserve(row.len() * width);
                if width == 2 {
                    for &id in row {
                        buf.extend_from_slice(&disk_id_u16(id).to_be_bytes());
                    }
                } else {
                    for &id in row {
                        buf.extend_from_slice(&id.to_be_bytes());
                    }
                }
                w.write(&buf);
            }
        });

        // The index, then (uncompressed) where it starts, as Swift's RingWriter does.
        w.flush();
        let index_uncompressed_start = w.uncompressed_len;
        let index_compressed_start = w.out.len() as u64;
        let index_json = pyjson::dumps(&Value::Object(index));
        w.write_blob(index_json.as_bytes());
        w.write_stored(&index_uncompressed_start.to_be_bytes());
        w.write_stored(&index_compressed_start.to_be_bytes());
        Ok(())
    }

    /// Refuses rings that would be written wrong rather than written badly.
    fn check_writable(&self) -> Result<(), RingProblem> {
        if self.part_shift > 32 {
            return Err(RingProblem::Unwritable(format!(
                "part_shift {} is above 32",
                self.part_shift
            )));
        }
        if self.dev_id_bytes != 2 && self.dev_id_bytes != 4 {
            return Err(RingProblem::Unwritable(format!(
                "dev_id_bytes must be 2 or 4, not {}",
                self.dev_id_bytes
            )));
        }
        let parts = 1u64 << (32 - self.part_shift);
        let rows = &self.replica2part2dev;
        for (r, row) in rows.iter().enumerate() {
            let last = r + 1 == rows.len();
            if row.len() as u64 > parts || (!last && row.len() as u64 != parts) {
                return Err(RingProblem::Unwritable(format!(
                    "replica {r} has {} partitions; expected {parts}{}",
                    row.len(),
                    if last { " or fewer" } else { "" }
                )));
            }
            if self.dev_id_bytes == 2 {
                if let Some(p) = row.iter().position(|&id| id != NONE_DEV && id >= 0xFFFF) {
                    return Err(RingProblem::Unwritable(format!(
                        "device id {} (replica {r}, partition {p}) does not fit in 2 bytes; use dev_id_bytes 4",
                        row[p]
                    )));
                }
            }
        }
        Ok(())
    }
}

fn disk_id_u16(id: u32) -> u16 {
    if id == NONE_DEV {
        0xFFFF
    } else {
        id as u16
    }
}

fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The gzip FNAME Python writes: the basename minus `.gz`, if it is Latin-1.
pub fn gzip_fname(path: &Path) -> Vec<u8> {
    let Some(base) = path.file_name().and_then(|b| b.to_str()) else {
        return Vec::new();
    };
    let mut bytes = Vec::with_capacity(base.len());
    for c in base.chars() {
        if (c as u32) > 0xFF {
            return Vec::new();
        }
        bytes.push(c as u32 as u8);
    }
    if bytes.ends_with(b".gz") {
        bytes.truncate(bytes.len() - 3);
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Devices <-> JSON

const DEVICE_KEYS: [&str; 10] = [
    "id",
    "region",
    "zone",
    "ip",
    "port",
    "replication_ip",
    "replication_port",
    "device",
    "weight",
    "meta",
];

/// The JSON Swift stores for one device.
pub fn device_json(dev: &Device) -> Value {
    let mut m = Map::new();
    for (k, v) in &dev.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), Value::from(dev.id));
    m.insert("region".into(), Value::from(dev.region));
    m.insert("zone".into(), Value::from(dev.zone));
    m.insert("ip".into(), Value::from(dev.ip.clone()));
    m.insert("port".into(), Value::from(dev.port));
    m.insert(
        "replication_ip".into(),
        Value::from(dev.replication_ip.clone()),
    );
    m.insert("replication_port".into(), Value::from(dev.replication_port));
    m.insert("device".into(), Value::from(dev.device.clone()));
    m.insert("weight".into(), float_value(dev.weight));
    m.insert("meta".into(), Value::from(dev.meta.clone()));
    Value::Object(m)
}

/// The device list with `null` for holes.
pub fn devices_json(devs: &[Option<Device>]) -> Value {
    Value::Array(
        devs.iter()
            .map(|d| d.as_ref().map(device_json).unwrap_or(Value::Null))
            .collect(),
    )
}

/// Parses one device dict the way Swift's `RingData` accepts it: `replication_ip` and
/// `replication_port` default to `ip` and `port` (`normalize_devices`), `region` to 1 and
/// `meta` to "" (as the builder back-fills them); unknown keys are kept.
pub fn device_from_json(v: &Value, slot: usize) -> Result<Device, String> {
    let m = v
        .as_object()
        .ok_or_else(|| format!("device {slot} is not an object or null"))?;
    let uint = |key: &str, default: Option<u32>| -> Result<u32, String> {
        match m.get(key) {
            None if default.is_some() => Ok(default.unwrap()),
            None => Err(format!("device {slot} has no {key:?}")),
            Some(x) => x
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("device {slot}: {key:?} is {x}, not an integer 0..2^32")),
        }
    };
    let string = |key: &str, default: Option<&str>| -> Result<String, String> {
        match m.get(key) {
            None if default.is_some() => Ok(default.unwrap().to_string()),
            None => Err(format!("device {slot} has no {key:?}")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(x) => Err(format!("device {slot}: {key:?} is {x}, not a string")),
        }
    };
    let id = uint("id", None)?;
    let ip = string("ip", None)?;
    let port = uint("port", None)?;
    let weight = match m.get("weight") {
        None => 0.0,
        Some(x) => x
            .as_f64()
            .ok_or_else(|| format!("device {slot}: \"weight\" is {x}, not a number"))?,
    };
    let extra = m
        .iter()
        .filter(|(k, _)| !DEVICE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Device {
        id,
        region: uint("region", Some(1))?,
        zone: uint("zone", None)?,
        replication_ip: string("replication_ip", Some(&ip))?,
        replication_port: uint("replication_port", Some(port))?,
        ip,
        port,
        device: string("device", None)?,
        weight,
        meta: string("meta", Some(""))?,
        extra,
    })
}

fn devices_from_json(v: &Value) -> Result<Vec<Option<Device>>, RingProblem> {
    let list = v
        .as_array()
        .ok_or_else(|| RingProblem::BadDevices("\"devs\" is not a list".into()))?;
    list.iter()
        .enumerate()
        .map(|(slot, d)| match d {
            Value::Null => Ok(None),
            d => device_from_json(d, slot)
                .map(Some)
                .map_err(RingProblem::BadDevices),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Reading

/// Reads and parses a ring file.
pub fn load_ring_file(path: &Path) -> Result<LoadedRing, RingError> {
    let bytes = std::fs::read(path).map_err(|e| RingProblem::Read(e).at(path))?;
    parse_ring_bytes(&bytes).map_err(|p| p.at(path))
}

/// Parses the content of a ring file (any source).
pub fn parse_ring_bytes(bytes: &[u8]) -> Result<LoadedRing, RingProblem> {
    let payload = inflate_gzip(bytes)?;
    let format = check_magic(&payload)?;
    let data = match format {
        FormatVersion::V1 => parse_v1(&payload)?,
        FormatVersion::V2 => parse_v2(&payload)?,
    };
    Ok(LoadedRing {
        data,
        format,
        size: bytes.len() as u64,
        raw_size: payload.len() as u64,
    })
}

/// Inflates the first gzip member, checking its CRC and length. On a decode error the
/// magic is still checked first, so "not a ring at all" wins over "damaged ring".
fn inflate_gzip(bytes: &[u8]) -> Result<Vec<u8>, RingProblem> {
    if bytes.len() < 3 || bytes[0] != 0x1f || bytes[1] != 0x8b || bytes[2] != 8 {
        if bytes.len() < 3 && (bytes.is_empty() || bytes[0] == 0x1f) {
            return Err(RingProblem::Truncated(format!(
                "the file is {} bytes long",
                bytes.len()
            )));
        }
        return Err(RingProblem::NotGzip);
    }
    // ISIZE (the last 4 bytes) is only a hint for the first allocation, bounded by what
    // deflate can physically expand to.
    let hint = if bytes.len() >= 18 {
        let isize = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as u64;
        isize.min(bytes.len() as u64 * 1032).min(MAX_UNCOMPRESSED)
    } else {
        0
    };
    let mut out = Vec::with_capacity(hint as usize);
    let mut decoder = flate2::read::GzDecoder::new(bytes).take(MAX_UNCOMPRESSED + 1);
    let result = decoder.read_to_end(&mut out);
    if out.len() as u64 > MAX_UNCOMPRESSED {
        return Err(RingProblem::BadHeader(format!(
            "decompresses to more than {MAX_UNCOMPRESSED} bytes (the limit for a ring)"
        )));
    }
    if let Err(e) = result {
        if out.len() >= 6 {
            check_magic(&out)?;
        }
        let msg = e.to_string();
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            RingProblem::Truncated(format!(
                "the gzip stream ends early ({} bytes decompressed)",
                out.len()
            ))
        } else {
            RingProblem::Gzip(msg)
        });
    }
    Ok(out)
}

fn check_magic(payload: &[u8]) -> Result<FormatVersion, RingProblem> {
    if payload.len() < 6 && b"R1NG".starts_with(&payload[..payload.len().min(4)]) {
        return Err(RingProblem::Truncated(format!(
            "only {} bytes of ring data",
            payload.len()
        )));
    }
    if payload.len() < 4 || &payload[..4] != b"R1NG" {
        return Err(RingProblem::BadMagic(
            String::from_utf8_lossy(&payload[..payload.len().min(4)]).into_owned(),
        ));
    }
    if payload.len() < 6 {
        return Err(RingProblem::Truncated(
            "no format version after the magic".into(),
        ));
    }
    let version = u16::from_be_bytes([payload[4], payload[5]]);
    FormatVersion::from_number(version).ok_or(RingProblem::UnsupportedVersion(version))
}

/// A cursor over the payload whose reads fail with "truncated" instead of panicking.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], RingProblem> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(RingProblem::Truncated(format!(
                "{what} needs {n} bytes at offset {}, only {left} left",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
}

fn header_uint(h: &Map<String, Value>, key: &str) -> Result<Option<u64>, RingProblem> {
    match h.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RingProblem::BadHeader(format!("{key:?} is {v}, not a non-negative integer"))
        }),
    }
}

fn part_shift_of(h: &Map<String, Value>) -> Result<u32, RingProblem> {
    match header_uint(h, "part_shift")? {
        None => Err(RingProblem::BadHeader("no \"part_shift\"".into())),
        Some(s) if s > 32 => Err(RingProblem::BadHeader(format!(
            "\"part_shift\" is {s}; it must be 0..=32"
        ))),
        Some(s) => Ok(s as u32),
    }
}

fn optional_u32(h: &Map<String, Value>, key: &str) -> Result<Option<u32>, RingProblem> {
    header_uint(h, key)?
        .map(|n| {
            u32::try_from(n)
                .map_err(|_| RingProblem::BadHeader(format!("{key:?} {n} is too large")))
        })
        .transpose()
}

fn parse_json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, RingProblem> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RingProblem::BadHeader(format!(
            "{what} is not a JSON object"
        ))),
        Err(e) => Err(RingProblem::BadHeader(format!(
            "{what} is not valid JSON: {e}"
        ))),
    }
}

fn parse_v1(payload: &[u8]) -> Result<RingData, RingProblem> {
    let mut c = Cursor {
        buf: payload,
        pos: 6,
    };
    let len = u32::from_be_bytes(c.take(4, "the header length")?.try_into().unwrap());
    let header = parse_json_object(c.take(len.into(), "the JSON header")?, "the JSON header")?;
    let part_shift = part_shift_of(&header)?;
    let rows = header_uint(&header, "replica_count")?
        .ok_or_else(|| RingProblem::BadHeader("no integer \"replica_count\"".into()))?;
    let big_endian = match header.get("byteorder") {
        None => cfg!(target_endian = "big"),
        Some(Value::String(s)) if s == "little" => false,
        Some(Value::String(s)) if s == "big" => true,
        Some(v) => {
            return Err(RingProblem::BadHeader(format!(
                "\"byteorder\" is {v}; expected \"little\" or \"big\""
            )))
        }
    };
    let devs = devices_from_json(header.get("devs").unwrap_or(&Value::Null))?;
    let parts = 1u64 << (32 - part_shift);
    let mut table = Vec::new();
    for r in 0..rows {
        let left = (payload.len() - c.pos) as u64;
        let want = 2 * parts;
        let is_last = r + 1 == rows;
        if left < want && !is_last {
            return Err(RingProblem::Truncated(format!(
                "replica {r} of {rows} has {} of {parts} partitions",
                left / 2
            )));
        }
        let bytes = c.take(want.min(left), "a table row")?;
        if bytes.len() % 2 != 0 {
            return Err(RingProblem::Truncated(format!(
                "replica {r} ends in the middle of an entry"
            )));
        }
        let row: Vec<u32> = bytes
            .chunks_exact(2)
            .map(|b| {
                let v = if big_endian {
                    u16::from_be_bytes([b[0], b[1]])
                } else {
                    u16::from_le_bytes([b[0], b[1]])
                };
                if v == 0xFFFF {
                    NONE_DEV
                } else {
                    v.into()
                }
            })
            .collect();
        if row.is_empty() {
            return Err(RingProblem::Truncated(format!(
                "replica {r} of {rows} has no partitions"
            )));
        }
        table.push(row);
    }
    Ok(RingData {
        devs,
        replica2part2dev: table,
        part_shift,
        next_part_power: optional_u32(&header, "next_part_power")?,
        version: header_uint(&header, "version")?,
        dev_id_bytes: 2,
    })
}

/// One entry of a v2 index: `[compressed_start, uncompressed_start, compressed_end,
/// uncompressed_end, checksum_method, checksum_hex]`.
struct IndexEntry {
    uncompressed_start: u64,
    uncompressed_end: Option<u64>,
    method: String,
    digest: String,
}

fn parse_v2(payload: &[u8]) -> Result<RingData, RingProblem> {
    if payload.len() < 6 + 16 {
        return Err(RingProblem::Truncated(
            "no room for the v2 index tail".into(),
        ));
    }
    let tail = &payload[payload.len() - 16..];
    let index_start = u64::from_be_bytes(tail[..8].try_into().unwrap());
    let index_end_limit = (payload.len() - 16) as u64;
    if index_start < 6 || index_start >= index_end_limit {
        return Err(RingProblem::BadHeader(format!(
            "the tail says the index starts at {index_start}, outside the data (6..{index_end_limit})"
        )));
    }
    let mut c = Cursor {
        buf: &payload[..index_end_limit as usize],
        pos: index_start as usize,
    };
    let len = u64::from_be_bytes(c.take(8, "the index length")?.try_into().unwrap());
    let index_json = c.take(len, "the index")?;
    let index_map = parse_json_object(index_json, "the v2 index")?;
    let mut index = std::collections::HashMap::new();
    for (name, entry) in &index_map {
        let bad = |d: &str| RingProblem::BadSection {
            section: name.clone(),
            detail: d.to_string(),
        };
        let fields = entry
            .as_array()
            .filter(|a| a.len() == 6)
            .ok_or_else(|| bad("index entry is not a list of 6 values"))?;
        let uncompressed_start = fields[1]
            .as_u64()
            .ok_or_else(|| bad("uncompressed start is not an integer"))?;
        let uncompressed_end = match &fields[3] {
            Value::Null => None,
            v => Some(
                v.as_u64()
                    .ok_or_else(|| bad("uncompressed end is not an integer"))?,
            ),
        };
        let method = fields[4]
            .as_str()
            .ok_or_else(|| bad("checksum method is not a string"))?;
        let digest = fields[5]
            .as_str()
            .ok_or_else(|| bad("checksum is not a string"))?;
        index.insert(
            name.clone(),
            IndexEntry {
                uncompressed_start,
                uncompressed_end,
                method: method.to_string(),
                digest: digest.to_string(),
            },
        );
    }
    let section = |name: &str| -> Result<&[u8], RingProblem> {
        let e = index.get(name).ok_or_else(|| RingProblem::BadSection {
            section: name.into(),
            detail: "missing from the index".into(),
        })?;
        read_section(payload, name, e)
    };
    let meta = parse_json_object(section(SECTION_METADATA)?, "the metadata section")?;
    let part_shift = part_shift_of(&meta)?;
    let dev_id_bytes = match header_uint(&meta, "dev_id_bytes")? {
        Some(2) => 2u8,
        Some(4) => 4u8,
        other => {
            return Err(RingProblem::BadHeader(format!(
                "\"dev_id_bytes\" is {other:?}; Swift supports 2 or 4"
            )))
        }
    };
    let devs_value: Value = serde_json::from_slice(section(SECTION_DEVICES)?)
        .map_err(|e| RingProblem::BadDevices(format!("not valid JSON: {e}")))?;
    let devs = devices_from_json(&devs_value)?;
    let assignments = section(SECTION_ASSIGNMENTS)?;
    let width = usize::from(dev_id_bytes);
    if assignments.len() % width != 0 {
        return Err(RingProblem::BadTable(format!(
            "{} bytes of assignments is not a whole number of {width}-byte ids",
            assignments.len()
        )));
    }
    let parts = 1u64 << (32 - part_shift);
    let row_bytes = (parts * width as u64).min(usize::MAX as u64) as usize;
    let table = assignments
        .chunks(row_bytes)
        .map(|row| {
            if width == 2 {
                row.chunks_exact(2)
                    .map(|b| match u16::from_be_bytes([b[0], b[1]]) {
                        0xFFFF => NONE_DEV,
                        v => v.into(),
                    })
                    .collect()
            } else {
                row.chunks_exact(4)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
                    .collect()
            }
        })
        .collect();
    Ok(RingData {
        devs,
        replica2part2dev: table,
        part_shift,
        next_part_power: optional_u32(&meta, "next_part_power")?,
        version: header_uint(&meta, "version")?,
        dev_id_bytes,
    })
}

/// A section's data, after checking its length prefix against the index and its hash.
fn read_section<'a>(
    payload: &'a [u8],
    name: &str,
    e: &IndexEntry,
) -> Result<&'a [u8], RingProblem> {
    let bad = |d: String| RingProblem::BadSection {
        section: name.to_string(),
        detail: d,
    };
    let start = e.uncompressed_start;
    if start.saturating_add(8) > payload.len() as u64 {
        return Err(bad(format!(
            "starts at {start}, beyond the {} bytes of data",
            payload.len()
        )));
    }
    let start = start as usize;
    let prefix = &payload[start..start + 8];
    let len = u64::from_be_bytes(prefix.try_into().unwrap());
    if let Some(end) = e.uncompressed_end {
        if Some(end) != (start as u64 + 8).checked_add(len) {
            return Err(bad(format!(
                "inconsistent size: the index says {} bytes, the section says {}",
                end.saturating_sub(start as u64),
                len.saturating_add(8)
            )));
        }
    }
    let data_end = (start as u64 + 8).saturating_add(len);
    if data_end > payload.len() as u64 {
        return Err(RingProblem::Truncated(format!(
            "section {name} claims {len} bytes, only {} present",
            payload.len() - start - 8
        )));
    }
    let data = &payload[start + 8..data_end as usize];
    let found = match e.method.as_str() {
        "sha256" => hex::encode(
            Sha256::new()
                .chain_update(prefix)
                .chain_update(data)
                .finalize(),
        ),
        "sha512" => hex::encode(
            Sha512::new()
                .chain_update(prefix)
                .chain_update(data)
                .finalize(),
        ),
        "md5" => hex::encode(
            Md5::new()
                .chain_update(prefix)
                .chain_update(data)
                .finalize(),
        ),
        other => return Err(bad(format!("unsupported checksum method {other:?}"))),
    };
    if !e.digest.is_empty() && found != e.digest {
        return Err(RingProblem::HashMismatch {
            section: name.to_string(),
            expected: e.digest.clone(),
            found,
        });
    }
    Ok(data)
}

// ---------------------------------------------------------------------------------------
// Writing

/// Builds one gzip member the way Swift's `RingWriter` lays it out.
struct GzRingWriter {
    out: Vec<u8>,
    deflate: Compress,
    crc: Crc,
    uncompressed_len: u64,
    /// Bytes went into the deflater since its last full flush.
    dirty: bool,
    /// The checksum of the v2 section being written, if any.
    section_hash: Option<Sha256>,
}

impl GzRingWriter {
    fn new(fname: &[u8]) -> Self {
        let mut out = Vec::with_capacity(1 << 16);
        let flags = if fname.is_empty() { 0 } else { 0x08 };
        out.extend_from_slice(&[0x1f, 0x8b, 0x08, flags]);
        out.extend_from_slice(&RING_GZIP_MTIME.to_le_bytes());
        out.extend_from_slice(&[2, 255]); // XFL = best compression, OS = unknown
        if !fname.is_empty() {
            out.extend(fname.iter().copied().filter(|&b| b != 0));
            out.push(0);
        }
        GzRingWriter {
            out,
            deflate: Compress::new(Compression::best(), false),
            crc: Crc::new(),
            uncompressed_len: 0,
            dirty: false,
            section_hash: None,
        }
    }

    fn run_deflate(&mut self, mut input: &[u8], flush: FlushCompress) {
        loop {
            if self.out.capacity() - self.out.len() < 1 << 15 {
                self.out.reserve(input.len() / 2 + (1 << 16));
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut self.out, flush)
                .expect("deflate of in-memory data cannot fail");
            input = &input[(self.deflate.total_in() - before) as usize..];
            let room_left = self.out.len() < self.out.capacity();
            if input.is_empty() && (room_left || status == Status::StreamEnd) {
                break;
            }
        }
    }

    fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.crc.update(data);
        if let Some(h) = &mut self.section_hash {
            h.update(data);
        }
        self.uncompressed_len += data.len() as u64;
        self.dirty = true;
        self.run_deflate(data, FlushCompress::None);
    }

    fn write_blob(&mut self, data: &[u8]) {
        self.write(&(data.len() as u64).to_be_bytes());
        self.write(data);
    }

    /// A full flush, only if something was written since the last one.
    fn flush(&mut self) {
        if self.dirty {
            self.run_deflate(&[], FlushCompress::Full);
            self.dirty = false;
        }
    }

    /// `data` as a stored (level 0) block followed by the full-flush marker, as zlib
    /// emits it at level 0. Used for the magic and for the v2 tail offsets.
    fn write_stored(&mut self, data: &[u8]) {
        self.flush();
        debug_assert!(data.len() < 0xFFFF);
        let len = data.len() as u16;
        self.out.push(0x00);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(&(!len).to_le_bytes());
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        self.crc.update(data);
        self.uncompressed_len += data.len() as u64;
    }

    /// Runs `body` as a named v2 section and records its index entry.
    fn section(
        &mut self,
        name: &str,
        index: &mut Map<String, Value>,
        body: impl FnOnce(&mut Self),
    ) {
        self.flush();
        let compressed_start = self.out.len() as u64;
        let uncompressed_start = self.uncompressed_len;
        self.section_hash = Some(Sha256::new());
        body(self);
        self.flush();
        let digest = self.section_hash.take().expect("set above").finalize();
        index.insert(
            name.to_string(),
            Value::Array(vec![
                Value::from(compressed_start),
                Value::from(uncompressed_start),
                Value::from(self.out.len() as u64),
                Value::from(self.uncompressed_len),
                Value::from("sha256"),
                Value::from(hex::encode(digest)),
            ]),
        );
    }

    /// Ends the member: the final block, CRC32 and ISIZE.
    fn finish(mut self, format: FormatVersion) -> Vec<u8> {
        match format {
            // v1: zlib's Z_FINISH at level 9 ends the deflate stream.
            FormatVersion::V1 => self.run_deflate(&[], FlushCompress::Finish),
            // v2: the tail was written at level 0; finishing that empty stream is a final
            // empty stored block.
            FormatVersion::V2 => {
                self.flush();
                self.out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
            }
        }
        let crc = self.crc.sum();
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
            .extend_from_slice(&(self.uncompressed_len as u32).to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/rings")
            .join(name)
    }

    fn load(name: &str) -> LoadedRing {
        load_ring_file(&fixture(name)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn inflate(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(payload: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(payload).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn swift_v1_and_v2_fixtures_hold_the_same_ring() {
        for name in ["basic", "frac", "npp", "uni"] {
            let v1 = load(&format!("{name}.v1.ring.gz"));
            let v2 = load(&format!("{name}.v2.ring.gz"));
            assert_eq!(v1.format, FormatVersion::V1);
            assert_eq!(v2.format, FormatVersion::V2);
            assert_eq!(v1.data, v2.data, "{name}");
        }
    }

    #[test]
    fn fractional_replicas_and_holes() {
        let r = load("frac.v1.ring.gz").data;
        assert_eq!(r.replica_count(), 3.5);
        assert_eq!(r.part_power(), 10);
        let lens: Vec<usize> = r.replica2part2dev.iter().map(Vec::len).collect();
        assert_eq!(lens, [1024, 1024, 1024, 512]);
        let holes: Vec<usize> = (0..r.devs.len()).filter(|&i| r.devs[i].is_none()).collect();
        assert_eq!(holes, [4, 9, 10]);
        for row in &r.replica2part2dev {
            assert!(row.iter().all(|&id| r.devs[id as usize].is_some()));
        }
    }

    #[test]
    fn four_byte_ids_and_next_part_power() {
        let w = load("wide.v2.ring.gz").data;
        assert_eq!(w.dev_id_bytes, 4);
        assert_eq!(w.devs.len(), 70001);
        assert!(w.replica2part2dev.iter().flatten().any(|&id| id == 70000));
        let n = load("npp.v2.ring.gz").data;
        assert_eq!(n.next_part_power, Some(10));
        assert_eq!(n.part_shift, 23);
        assert_eq!(load("npp.v1.ring.gz").data.next_part_power, Some(10));
    }

    #[test]
    fn unicode_devices() {
        let u = load("uni.v2.ring.gz").data;
        let d0 = u.devs[0].as_ref().unwrap();
        assert_eq!(d0.device, "disque-é");
        assert_eq!(d0.meta, "réplica \"1\" \\ 😀");
        assert_eq!(u.devs[2].as_ref().unwrap().weight, 1e-05);
    }

    #[test]
    fn v1_payload_is_byte_identical_to_swifts() {
        for name in ["basic", "frac", "npp", "uni"] {
            let path = fixture(&format!("{name}.v1.ring.gz"));
            let swift = std::fs::read(&path).unwrap();
            let ring = parse_ring_bytes(&swift).unwrap().data;
            let ours = ring
                .to_gz_bytes(FormatVersion::V1, &gzip_fname(&path))
                .unwrap();
            assert_eq!(inflate(&ours), inflate(&swift), "{name}");
            // gzip header: magic, flags, mtime, xfl, os and FNAME as Python writes them
            let fname_end = 10 + gzip_fname(&path).len() + 1;
            assert_eq!(ours[..fname_end], swift[..fname_end], "{name}");
        }
    }

    #[test]
    fn v2_sections_are_byte_identical_to_swifts() {
        for name in ["basic", "frac", "npp", "uni", "wide"] {
            let path = fixture(&format!("{name}.v2.ring.gz"));
            let swift = std::fs::read(&path).unwrap();
            let ring = parse_ring_bytes(&swift).unwrap().data;
            let ours = ring
                .to_gz_bytes(FormatVersion::V2, &gzip_fname(&path))
                .unwrap();
            let (a, b) = (inflate(&ours), inflate(&swift));
            // Everything up to the index is identical; the index differs only in the
            // compressed offsets (another deflate implementation).
            let index_at = |p: &[u8]| {
                u64::from_be_bytes(p[p.len() - 16..p.len() - 8].try_into().unwrap()) as usize
            };
            assert_eq!(index_at(&a), index_at(&b), "{name}");
            assert_eq!(a[..index_at(&a)], b[..index_at(&b)], "{name}");
            assert_eq!(parse_ring_bytes(&ours).unwrap().data, ring);
            // the fixed 31-byte tail Swift seeks to
            let tail = &ours[ours.len() - 31..];
            assert_eq!(tail[..5], [0x00, 0x08, 0x00, 0xf7, 0xff]);
            assert_eq!(tail[13..23], [0, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff]);
        }
    }

    #[test]
    fn writing_is_deterministic_and_round_trips() {
        let ring = load("frac.v2.ring.gz").data;
        for f in [FormatVersion::V1, FormatVersion::V2] {
            let a = ring.to_gz_bytes(f, b"x.ring").unwrap();
            let b = ring.to_gz_bytes(f, b"x.ring").unwrap();
            assert_eq!(a, b);
            let back = parse_ring_bytes(&a).unwrap();
            assert_eq!(back.format, f);
            assert_eq!(back.data, ring);
        }
    }

    #[test]
    fn v1_refuses_four_byte_ids() {
        let ring = load("wide.v2.ring.gz").data;
        let err = ring.to_gz_bytes(FormatVersion::V1, b"").unwrap_err();
        assert!(matches!(err, RingProblem::V1NeedsTwoByteIds), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("object.ring.gz");
        let e = ring.save(&p, FormatVersion::V1).unwrap_err();
        assert!(e.to_string().contains("object.ring.gz") && e.to_string().contains("2-byte"));
        assert!(!p.exists());
    }

    #[test]
    fn two_byte_table_refuses_large_ids() {
        let mut ring = load("basic.v1.ring.gz").data;
        ring.replica2part2dev[0][3] = 70000;
        let err = ring.to_gz_bytes(FormatVersion::V2, b"").unwrap_err();
        assert!(err.to_string().contains("70000"), "{err}");
    }

    #[test]
    fn save_is_atomic_with_mode_0644() {
        use std::os::unix::fs::PermissionsExt;
        let ring = load("basic.v1.ring.gz").data;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("object.ring.gz");
        ring.save(&p, FormatVersion::V2).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[10..22], b"object.ring\0");
        assert_eq!(RingData::load(&p).unwrap(), ring);
    }

    fn problem(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.ring.gz");
        std::fs::write(&p, bytes).unwrap();
        let e = RingData::load(&p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", p.display())), "{msg}");
        msg
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let good = std::fs::read(fixture("frac.v2.ring.gz")).unwrap();
        let good_v1 = std::fs::read(fixture("frac.v1.ring.gz")).unwrap();
        assert!(problem(b"").contains("truncated"));
        assert!(problem(b"hello world").contains("not a gzip file"));
        for cut in [20, 40, good.len() / 2, good.len() - 9] {
            let m = problem(&good[..cut]);
            assert!(
                m.contains("truncated") || m.contains("corrupt"),
                "{cut}: {m}"
            );
        }
        let m = problem(&good_v1[..good_v1.len() - 100]);
        assert!(m.contains("truncated") || m.contains("corrupt"), "{m}");
        let mut garbled = good.clone();
        for b in &mut garbled[200..260] {
            *b ^= 0x5a;
        }
        let m = problem(&garbled);
        assert!(m.contains("corrupt") || m.contains("truncated"), "{m}");
        assert!(problem(&gzip(b"NOTARINGFILE")).contains("bad ring magic \"NOTA\""));
        assert!(problem(&gzip(b"R1NG\x00\x03rest")).contains("unsupported ring format version 3"));
        assert!(problem(&gzip(b"R1N")).contains("truncated"));
        assert!(problem(&gzip(b"R1NG\x00\x01\x00\x00\x10\x00{}")).contains("truncated"));
    }

    #[test]
    fn bad_v2_section_hash_is_named() {
        let good = std::fs::read(fixture("basic.v2.ring.gz")).unwrap();
        let mut payload = inflate(&good);
        // flip one byte inside the devices JSON (a digit of a port number)
        let at = payload.windows(4).position(|w| w == b"6200").unwrap();
        payload[at] = b'7';
        let m = problem(&gzip(&payload));
        assert!(
            m.contains("swift/ring/devices") && m.contains("hash mismatch"),
            "{m}"
        );
    }

    #[test]
    fn absurd_lengths_are_refused_without_allocating() {
        // v1 header claiming a 4 GiB JSON blob
        let m = problem(&gzip(b"R1NG\x00\x01\xff\xff\xff\xff{"));
        assert!(m.contains("truncated"), "{m}");
        // v1 header with part_shift 0 (2^32 partitions) and 1000 replicas, no table
        let json =
            br#"{"byteorder": "little", "devs": [], "part_shift": 0, "replica_count": 1000}"#;
        let mut p = b"R1NG\x00\x01".to_vec();
        p.extend_from_slice(&(json.len() as u32).to_be_bytes());
        p.extend_from_slice(json);
        p.extend_from_slice(&[0, 0, 1, 0]);
        let m = problem(&gzip(&p));
        assert!(m.contains("truncated") && m.contains("replica 0"), "{m}");
        // part_shift out of range
        let json = br#"{"devs": [], "part_shift": 33, "replica_count": 1}"#;
        let mut p = b"R1NG\x00\x01".to_vec();
        p.extend_from_slice(&(json.len() as u32).to_be_bytes());
        p.extend_from_slice(json);
        assert!(problem(&gzip(&p)).contains("part_shift"));
        // v2 tail pointing far beyond the data
        let mut p = b"R1NG\x00\x02".to_vec();
        p.extend_from_slice(&u64::MAX.to_be_bytes());
        p.extend_from_slice(&7u64.to_be_bytes());
        assert!(problem(&gzip(&p)).contains("index"));
    }
}

/// "Error or success, never a panic" for arbitrary and mutated ring files, and for the
/// lookups on whatever loads.
#[cfg(test)]
mod fuzz {
    use super::tests::fixture;
    use super::*;
    use crate::hash::HashConfig;
    use crate::ring::Ring;
    use proptest::prelude::*;
    use std::io::Write;

    const SOURCES: [&str; 5] = [
        "basic.v1.ring.gz",
        "basic.v2.ring.gz",
        "frac.v1.ring.gz",
        "uni.v2.ring.gz",
        "npp.v2.ring.gz",
    ];

    fn sources() -> Vec<(Vec<u8>, Vec<u8>)> {
        SOURCES
            .iter()
            .map(|n| {
                let file = std::fs::read(fixture(n)).unwrap();
                let mut payload = Vec::new();
                flate2::read::GzDecoder::new(&file[..])
                    .read_to_end(&mut payload)
                    .unwrap();
                (file, payload)
            })
            .collect()
    }

    fn gzip(payload: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(payload).unwrap();
        e.finish().unwrap()
    }

    #[derive(Clone, Debug)]
    enum Mutation {
        Truncate(prop::sample::Index),
        Flip(prop::sample::Index, u8),
        Set(prop::sample::Index, u8),
        Insert(prop::sample::Index, Vec<u8>),
        Remove(prop::sample::Index, prop::sample::Index),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            any::<prop::sample::Index>().prop_map(Mutation::Truncate),
            (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
            (
                any::<prop::sample::Index>(),
                prop::collection::vec(any::<u8>(), 1..16)
            )
                .prop_map(|(i, v)| Mutation::Insert(i, v)),
            (any::<prop::sample::Index>(), any::<prop::sample::Index>())
                .prop_map(|(i, j)| Mutation::Remove(i, j)),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
        if bytes.is_empty() {
            return;
        }
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Flip(i, x) => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Set(i, x) => {
                let i = i.index(bytes.len());
                bytes[i] = *x;
            }
            Mutation::Insert(i, v) => {
                let i = i.index(bytes.len());
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Remove(i, j) => {
                let (a, b) = (i.index(bytes.len()), j.index(bytes.len()));
                bytes.drain(a.min(b)..a.max(b));
            }
        }
    }

    /// Parses, and exercises the lookups on anything that parses.
    fn exercise(bytes: &[u8]) {
        if let Ok(loaded) = parse_ring_bytes(bytes) {
            if let Ok(ring) = Ring::from_data(loaded.data, HashConfig::new("", "endcap")) {
                let parts = ring.partition_count() as u32;
                for part in [0, parts / 2, parts.saturating_sub(1), parts] {
                    let _ = ring.get_part_nodes(part).len();
                    let _ = ring.get_more_nodes(part).count();
                }
                let _ = ring.get_nodes("a", Some("c"), Some("o"));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            exercise(&bytes);
            // with a valid gzip wrapper and a ring magic, to reach the parsers
            for magic in [&b"R1NG\x00\x01"[..], b"R1NG\x00\x02"] {
                let mut payload = magic.to_vec();
                payload.extend_from_slice(&bytes);
                exercise(&gzip(&payload));
            }
        }

        #[test]
        fn mutated_files_never_panic(
            src in 0..SOURCES.len(),
            muts in prop::collection::vec(mutation(), 1..4),
        ) {
            let (file, _) = &sources()[src];
            let mut bytes = file.clone();
            for m in &muts {
                apply(&mut bytes, m);
            }
            exercise(&bytes);
        }

        // Mutating the decompressed payload and re-gzipping gets past the CRC and
        // exercises the JSON, section, index and table parsing.
        #[test]
        fn mutated_payloads_never_panic(
            src in 0..SOURCES.len(),
            muts in prop::collection::vec(mutation(), 1..4),
        ) {
            let (_, payload) = &sources()[src];
            let mut bytes = payload.clone();
            for m in &muts {
                apply(&mut bytes, m);
            }
            exercise(&gzip(&bytes));
        }
    }
}

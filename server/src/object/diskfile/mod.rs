//! One object on disk, in Swift's layout:
//! `<dev>/objects[-N]/<part>/<suffix>/<hash>/<timestamp>.data|.ts|.meta`.
//!
//! The state of an object is decided by the file names in its hash directory, never by
//! their contents: the newest `.data` or `.ts` wins (a tombstone newer than the data
//! means deleted), and a `.meta` newer than the data carries the POSTed metadata.
//! Everything older is obsolete and removed after each write (`cleanup`), so a reader
//! sees either the old complete object or the new complete one.
//!
//! A write goes to a temporary file under `<dev>/tmp[-N]`, is fsynced with its metadata
//! set as xattrs, and renamed into the hash directory; the directory is fsynced too. A
//! crash leaves at worst a stray temp file, never a partial `.data`.
//!
//! * [`metadata`]: the xattr metadata, in Swift's pickle format;
//! * [`writer`]: the temp file a PUT, POST or DELETE fills and renames into place;
//! * [`hashes`]: suffix hashes, what `REPLICATE` answers and replicators compare.

pub mod ec;
pub mod ec_hashes;
pub mod hashes;
pub mod metadata;
pub mod stale_temp;
pub mod writer;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::common::{unique_hex, Timestamp};

pub use metadata::{
    decode_metadata, encode_metadata, read_metadata, write_metadata, xattr_capacity, DiskError,
    Metadata, METADATA_CHECKSUM_KEY, METADATA_KEY,
};
pub use writer::TempWriter;

/// A file in a hash directory, by kind and timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnDiskFile {
    pub name: String,
    pub timestamp: Timestamp,
    pub kind: FileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Data,
    Tombstone,
    Meta,
}

/// Parses `<ts>.data`, `<ts>.ts`, `<ts>[{+|-}<ctype delta hex>].meta` (Swift's
/// `encode_timestamps`: the delta carries its sign, `+0` included); other names are junk.
pub fn parse_file_name(name: &str) -> Option<OnDiskFile> {
    let (stem, kind) = if let Some(s) = name.strip_suffix(".data") {
        (s, FileKind::Data)
    } else if let Some(s) = name.strip_suffix(".ts") {
        (s, FileKind::Tombstone)
    } else if let Some(s) = name.strip_suffix(".meta") {
        (s.split(['+', '-']).next().unwrap_or(s), FileKind::Meta)
    } else {
        return None;
    };
    // `.data` names carry no `-` part in replication policies; EC's `#frag` we don't own.
    let timestamp = Timestamp::parse(stem).ok()?;
    Some(OnDiskFile {
        name: name.to_string(),
        timestamp,
        kind,
    })
}

/// The files of a hash directory that decide the object's state.
#[derive(Clone, Debug, Default)]
pub struct OnDiskState {
    pub data: Option<OnDiskFile>,
    pub tombstone: Option<OnDiskFile>,
    pub meta: Option<OnDiskFile>,
    /// Files made obsolete by newer ones.
    pub obsolete: Vec<OnDiskFile>,
    /// The fragment archives of an erasure-coded hash directory.
    pub ec: Option<ec::EcFiles>,
}

/// The timestamp a file name starts with (`<ts>.data`, `<ts>#1#d.data`, `<ts>-x.meta`).
fn name_timestamp(name: &str) -> Option<Timestamp> {
    let end = name.find(['#', '-']).or_else(|| name.rfind('.'))?;
    Timestamp::parse(&name[..end]).ok()
}

impl OnDiskState {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> OnDiskState {
        let names: Vec<&str> = names.into_iter().collect();
        if ec::looks_like_ec(names.iter().copied()) {
            return OnDiskState::from_ec(ec::EcFiles::from_names(names.iter().copied()));
        }
        let mut files: Vec<OnDiskFile> = names.into_iter().filter_map(parse_file_name).collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.timestamp));
        let mut st = OnDiskState::default();
        for f in files {
            match f.kind {
                FileKind::Data | FileKind::Tombstone
                    if st.data.is_none() && st.tombstone.is_none() =>
                {
                    if f.kind == FileKind::Data {
                        st.data = Some(f);
                    } else {
                        st.tombstone = Some(f);
                    }
                }
                FileKind::Meta
                    if st.data.is_none() && st.tombstone.is_none() && st.meta.is_none() =>
                {
                    // A .meta newer than the data; kept only if a .data turns up below.
                    st.meta = Some(f);
                }
                _ => st.obsolete.push(f),
            }
        }
        if st.data.is_none() {
            if let Some(m) = st.meta.take() {
                st.obsolete.push(m);
            }
        }
        st
    }

    /// The state of an erasure-coded hash directory: `data` is the durable fragment a
    /// plain read serves; non-durable newer fragments stay in `ec` (and on disk).
    fn from_ec(files: ec::EcFiles) -> OnDiskState {
        let file = |name: &str, kind: FileKind| OnDiskFile {
            name: name.to_string(),
            timestamp: name_timestamp(name).unwrap_or_default(),
            kind,
        };
        let data = files
            .choose(None, None)
            .map(|(n, _, _)| file(&n, FileKind::Data));
        OnDiskState {
            data,
            tombstone: files
                .tombstone
                .as_ref()
                .map(|(n, _)| file(n, FileKind::Tombstone)),
            meta: files.meta.as_ref().map(|(n, _)| file(n, FileKind::Meta)),
            obsolete: files
                .obsolete
                .iter()
                .map(|n| file(n, FileKind::Data))
                .collect(),
            ec: Some(files),
        }
    }

    pub fn read_dir(dir: &Path) -> io::Result<OnDiskState> {
        let mut names = Vec::new();
        match fs::read_dir(dir) {
            Ok(rd) => {
                for e in rd {
                    names.push(e?.file_name().to_string_lossy().into_owned());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(OnDiskState::from_names(names.iter().map(String::as_str)))
    }

    /// The files to feed to the suffix hash, in Swift's order: meta, tombstone, data.
    pub fn hash_inputs(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(m) = &self.meta {
            v.push(format!("{}.meta", m.timestamp.internal()));
        }
        if let Some(t) = &self.tombstone {
            v.push(format!("{}.ts", t.timestamp.internal()));
        }
        if let Some(d) = &self.data {
            v.push(format!("{}.data", d.timestamp.internal()));
        }
        v
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.tombstone.is_none()
            && self.ec.as_ref().is_none_or(|e| e.frag_sets.is_empty())
    }
}

/// Removes obsolete files (and tombstones older than `reclaim_before`); removes the hash
/// directory when nothing is left. Returns the state that remains.
pub fn cleanup(dir: &Path, reclaim_before: Option<Timestamp>) -> io::Result<OnDiskState> {
    let mut st = OnDiskState::read_dir(dir)?;
    for f in st.obsolete.drain(..) {
        let _ = fs::remove_file(dir.join(&f.name));
    }
    if let (Some(t), Some(limit)) = (&st.tombstone, reclaim_before) {
        if t.timestamp < limit {
            let _ = fs::remove_file(dir.join(&t.name));
            st.tombstone = None;
        }
    }
    if st.is_empty() {
        // Only succeeds when empty; a concurrent writer's file keeps it.
        let _ = fs::remove_dir(dir);
    }
    Ok(st)
}

/// `mkdir -p` that reports how many directories it created (Swift's `makedirs_count`).
pub fn create_dirs_counted(dir: &Path) -> io::Result<usize> {
    if dir.is_dir() {
        return Ok(0);
    }
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    let mut created = 0;
    for m in missing.iter().rev() {
        match fs::create_dir(m) {
            Ok(()) => created += 1,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Opens the current `.data` of a hash directory with its merged metadata (data
/// metadata overlaid by the newer `.meta`, as Swift's `DiskFile.open` does).
pub struct OpenObject {
    pub file: fs::File,
    pub data_path: PathBuf,
    pub metadata: Metadata,
    pub data_timestamp: Timestamp,
    pub meta_timestamp: Option<Timestamp>,
    pub size: u64,
    /// The whole body, when the caller asked for small objects to be read up front
    /// (one trip to the blocking pool instead of two).
    pub small_body: Option<Vec<u8>>,
    /// For a fragment archive: what Swift's EC backend headers report.
    pub ec: Option<EcOpen>,
}

/// What a read of a fragment archive reports besides the archive itself.
#[derive(Clone, Debug)]
pub struct EcOpen {
    pub frag_index: u32,
    pub durable_timestamp: Option<Timestamp>,
    /// `X-Backend-Fragments`.
    pub fragments: Option<String>,
}

/// How a read picks among the fragment archives of an EC hash directory.
#[derive(Clone, Debug, Default)]
pub struct FragmentSelection {
    /// `X-Backend-Fragment-Preferences`, when sent.
    pub prefs: Option<Vec<ec::FragPreference>>,
    /// `X-Backend-Ec-Frag-Index`, when sent.
    pub frag_index: Option<u32>,
}

pub enum Lookup {
    Found(OpenObject),
    /// Deleted, with the tombstone's timestamp.
    Deleted(Timestamp),
    NotFound,
}

/// Keys of the `.data` metadata that a POST never replaces.
fn is_data_only_key(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    l == "content-length"
        || l == "etag"
        || l == "name"
        || l.starts_with("x-object-sysmeta-")
        || l == "x-timestamp"
        || l == "content-type"
        || l == "content-type-timestamp"
        || l == "x-static-large-object"
}

/// Opens the object in `dir`; with `read_up_to`, bodies of at most that many bytes are
/// read into memory at once.
pub fn open(dir: &Path, read_up_to: Option<u64>) -> Result<Lookup, DiskError> {
    open_selecting(dir, read_up_to, &FragmentSelection::default())
}

/// [`open`], choosing among fragment archives by `select` in an EC hash directory.
pub fn open_selecting(
    dir: &Path,
    read_up_to: Option<u64>,
    select: &FragmentSelection,
) -> Result<Lookup, DiskError> {
    let mut st = OnDiskState::read_dir(dir)?;
    let mut ec_open = None;
    if let Some(files) = &st.ec {
        let chosen = files.choose(select.prefs.as_deref(), select.frag_index);
        // A preferred non-durable fragment is served even over an older tombstone.
        st.data = chosen.as_ref().map(|(name, ts, _)| OnDiskFile {
            name: name.clone(),
            timestamp: *ts,
            kind: FileKind::Data,
        });
        if let Some((_, ts, fi)) = &chosen {
            if st.tombstone.as_ref().is_some_and(|t| t.timestamp < *ts) {
                st.tombstone = None;
            }
            if st.meta.as_ref().is_some_and(|m| m.timestamp <= *ts) {
                st.meta = None;
            }
            ec_open = Some(EcOpen {
                frag_index: *fi,
                durable_timestamp: files.durable_timestamp,
                fragments: files.fragments_header(),
            });
        }
    }
    if let Some(t) = st.tombstone {
        return Ok(Lookup::Deleted(t.timestamp));
    }
    let Some(data) = st.data else {
        return Ok(Lookup::NotFound);
    };
    let data_path = dir.join(&data.name);
    let file = match fs::File::open(&data_path) {
        Ok(f) => f,
        // Raced with a newer write's cleanup: the caller may retry; report not found.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::NotFound),
        Err(e) => return Err(e.into()),
    };
    let mut metadata = read_metadata(&file, &data_path)?;
    let size = file.metadata()?.len();
    let mut meta_timestamp = None;
    if let Some(m) = &st.meta {
        let meta_path = dir.join(&m.name);
        if let Ok(mf) = fs::File::open(&meta_path) {
            let mut merged = read_metadata(&mf, &meta_path)?;
            // The .meta replaces user metadata and transient sysmeta; what only a PUT can
            // set (size, etag, sysmeta, ...) stays from the .data.
            let meta_has_ctype = merged.contains_key("Content-Type");
            for (k, v) in std::mem::take(&mut metadata) {
                let l = k.to_ascii_lowercase();
                let keep_from_meta = l == "x-timestamp"
                    || (meta_has_ctype && (l == "content-type" || l == "content-type-timestamp"));
                if is_data_only_key(&k) && !keep_from_meta {
                    merged.insert(k, v);
                }
            }
            metadata = merged;
            meta_timestamp = Some(m.timestamp);
        }
    }
    let small_body = match read_up_to {
        Some(limit) if size <= limit => {
            use std::io::Read;
            let mut buf = Vec::with_capacity(size as usize);
            (&file).read_to_end(&mut buf)?;
            Some(buf)
        }
        _ => None,
    };
    Ok(Lookup::Found(OpenObject {
        file,
        data_path,
        metadata,
        data_timestamp: data.timestamp,
        meta_timestamp,
        size,
        small_body,
        ec: ec_open,
    }))
}

/// Moves a corrupt hash directory to `<dev>/quarantined/objects[-N]/<hash>[-<n>]`.
///
/// Nothing is created unless the hash directory is still there: a read that failed
/// because its device was unmounted must not make directories on whatever filesystem
/// is underneath.
pub fn quarantine(device_path: &Path, objects_dir: &str, hash_dir: &Path) -> io::Result<PathBuf> {
    fs::symlink_metadata(hash_dir)?;
    let qdir = device_path.join("quarantined").join(objects_dir);
    fs::create_dir_all(&qdir)?;
    let name = hash_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut dest = qdir.join(&name);
    if dest.exists() {
        dest = qdir.join(format!("{name}-{}", unique_hex()));
    }
    fs::rename(hash_dir, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_old_files_are_obsolete() {
        let st = OnDiskState::from_names([
            "0000000001.00000.data",
            "0000000002.00000.meta",
            "0000000003.00000.data",
            "0000000004.00000.meta",
            "junk.txt",
        ]);
        assert_eq!(st.data.as_ref().unwrap().name, "0000000003.00000.data");
        assert_eq!(st.meta.as_ref().unwrap().name, "0000000004.00000.meta");
        assert_eq!(st.obsolete.len(), 2);
        assert_eq!(
            st.hash_inputs(),
            vec!["0000000004.00000.meta", "0000000003.00000.data"]
        );

        let st = OnDiskState::from_names(["0000000001.00000.data", "0000000002.00000.ts"]);
        assert!(st.data.is_none());
        assert_eq!(st.tombstone.unwrap().name, "0000000002.00000.ts");

        // Swift names a `.meta` that carries a content type with the signed delta.
        let st = OnDiskState::from_names(["0000000001.00000.data", "0000000002.00000+0.meta"]);
        assert_eq!(
            st.meta.as_ref().unwrap().timestamp.internal(),
            "0000000002.00000"
        );
        let st = OnDiskState::from_names(["0000000002.00000.meta", "0000000003.00000.ts"]);
        assert!(st.meta.is_none());
        assert_eq!(st.obsolete.len(), 1);
    }

    #[test]
    fn metadata_round_trips_through_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = fs::File::create(&p).unwrap();
        let mut m = Metadata::new();
        m.insert("X-Timestamp".into(), "0000000001.00000".into());
        m.insert("name".into(), "/a/c/ö".into());
        m.insert("X-Object-Meta-Big".into(), "x".repeat(200));
        match write_metadata(&f, &p, &m) {
            Ok(()) => {}
            Err(DiskError::XattrNotSupported(_)) => panic!("tempdir filesystem lacks xattrs"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(read_metadata(&f, &p).unwrap(), m);
    }
}

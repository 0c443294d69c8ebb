//! Object metadata as Swift stores it: a protocol-2 pickle of a `{bytes: bytes}` dict
//! split over `user.swift.metadata`, `user.swift.metadata1`, … (64 KiB each) with the
//! md5 of the whole pickle in `user.swift.metadata_checksum`, exactly as Swift's
//! `write_metadata`, so `swift-object-info` and Swift's daemons read our disks and we
//! read theirs.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use ringsmith::pickle::Value;

pub const METADATA_KEY: &str = "user.swift.metadata";
pub const METADATA_CHECKSUM_KEY: &str = "user.swift.metadata_checksum";
const XATTR_CHUNK: usize = 65536;

/// Object metadata as Swift keeps it: header name → value.
pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("filesystem does not support xattrs: {0}")]
    XattrNotSupported(String),
    #[error("no space left on device: {0}")]
    NoSpace(String),
    /// Setting the metadata xattrs failed for space: the device is full, or (ext4, about
    /// 4 KiB per file) the filesystem cannot hold that much metadata on one file.
    #[error(
        "cannot store {bytes} bytes of object metadata in the xattrs of {path}: no space \
         (the device is full, or its filesystem caps a file's xattrs, as ext4 does near 4 KiB; \
         Swift recommends XFS)"
    )]
    MetadataTooLarge { path: String, bytes: usize },
    #[error("bad metadata in {path}: {reason}")]
    BadMetadata { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl DiskError {
    /// ENOSPC/EDQUOT and unsupported xattrs are a 507 for the client, as in Swift, and
    /// so is ENODEV: a device unmounted under a running write.
    pub fn is_insufficient_storage(&self) -> bool {
        match self {
            DiskError::XattrNotSupported(_)
            | DiskError::NoSpace(_)
            | DiskError::MetadataTooLarge { .. } => true,
            DiskError::Io(e) => matches!(
                e.raw_os_error(),
                Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::ENODEV)
            ),
            DiskError::BadMetadata { .. } => false,
        }
    }
}

/// `writing`: the size of the metadata being set, if this was a write.
fn classify_xattr_error(e: io::Error, path: &Path, writing: Option<usize>) -> DiskError {
    let path_text = path.display().to_string();
    match (e.raw_os_error(), writing) {
        (Some(libc::ENOTSUP), _) => DiskError::XattrNotSupported(path_text),
        (Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::E2BIG), Some(bytes)) => {
            DiskError::MetadataTooLarge {
                path: path_text,
                bytes,
            }
        }
        (Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::E2BIG), None) => {
            DiskError::NoSpace(path_text)
        }
        _ => DiskError::Io(e),
    }
}

/// How many bytes of metadata xattrs (in chunks of Swift's size) the filesystem of `dir`
/// holds on one file, up to `want`: a file is made there and removed. ext4 holds about
/// 3.5 KiB, XFS and tmpfs far more.
pub fn xattr_capacity(dir: &Path, want: usize) -> io::Result<usize> {
    use xattr::FileExt;
    let probe = dir.join(format!(".xattr-capacity-{}", std::process::id()));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    let _ = fs::remove_file(&probe);
    let chunk = [b'x'; 254];
    let mut stored = 0;
    for i in 0..want.div_ceil(chunk.len()) {
        match file.set_xattr(format!("{METADATA_KEY}{i}"), &chunk) {
            Ok(()) => stored += chunk.len(),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::E2BIG)) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(stored.min(want))
}

/// The pickle Swift stores: a dict of UTF-8 bytes to UTF-8 bytes.
pub fn encode_metadata(meta: &Metadata) -> Vec<u8> {
    let dict = meta
        .iter()
        .map(|(k, v)| {
            (
                Value::Bytes(k.as_bytes().to_vec()),
                Value::Bytes(v.as_bytes().to_vec()),
            )
        })
        .collect();
    ringsmith::pickle::dumps(&Value::Dict(dict))
}

fn value_text(v: &Value) -> Option<String> {
    match v.deref_shared() {
        Value::Str(s) => Some(s.clone()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Reads the pickled metadata Swift or Ringsmith wrote (str or bytes keys and values).
pub fn decode_metadata(pickle: &[u8]) -> Result<Metadata, String> {
    let v = ringsmith::pickle::loads(pickle).map_err(|e| e.to_string())?;
    let Value::Dict(items) = v.deref_shared().clone() else {
        return Err("metadata is not a dict".into());
    };
    let mut out = Metadata::new();
    for (k, v) in items {
        let (Some(k), Some(v)) = (value_text(&k), value_text(&v)) else {
            return Err("metadata holds a non-string key or value".into());
        };
        out.insert(k, v);
    }
    Ok(out)
}

pub fn write_metadata(file: &fs::File, path: &Path, meta: &Metadata) -> Result<(), DiskError> {
    use xattr::FileExt;
    let pickle = encode_metadata(meta);
    let checksum = hex::encode(Md5::digest(&pickle));
    for (i, chunk) in pickle.chunks(XATTR_CHUNK).enumerate() {
        let key = if i == 0 {
            METADATA_KEY.to_string()
        } else {
            format!("{METADATA_KEY}{i}")
        };
        file.set_xattr(&key, chunk)
            .map_err(|e| classify_xattr_error(e, path, Some(pickle.len())))?;
    }
    file.set_xattr(METADATA_CHECKSUM_KEY, checksum.as_bytes())
        .map_err(|e| classify_xattr_error(e, path, Some(pickle.len())))?;
    Ok(())
}

pub fn read_metadata(file: &fs::File, path: &Path) -> Result<Metadata, DiskError> {
    use xattr::FileExt;
    let bad = |reason: String| DiskError::BadMetadata {
        path: path.to_path_buf(),
        reason,
    };
    let mut pickle = Vec::new();
    let mut i = 0usize;
    loop {
        let key = if i == 0 {
            METADATA_KEY.to_string()
        } else {
            format!("{METADATA_KEY}{i}")
        };
        match file.get_xattr(&key) {
            Ok(Some(v)) => pickle.extend_from_slice(&v),
            Ok(None) => break,
            Err(e) => return Err(classify_xattr_error(e, path, None)),
        }
        i += 1;
    }
    if pickle.is_empty() {
        return Err(bad("no metadata".into()));
    }
    if let Ok(Some(sum)) = file.get_xattr(METADATA_CHECKSUM_KEY) {
        let want = String::from_utf8_lossy(&sum).to_string();
        let got = hex::encode(Md5::digest(&pickle));
        if want != got {
            return Err(bad(format!("metadata checksum {got} != stored {want}")));
        }
    }
    decode_metadata(&pickle).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata past what the filesystem's xattrs hold on one file is a 507 (insufficient
    /// storage) that says so; metadata that fits round-trips. Which of the two a given
    /// size is depends on the filesystem, so the capacity is measured first.
    #[test]
    fn metadata_beyond_the_filesystems_xattrs_is_insufficient_storage() {
        let dir = tempfile::tempdir().unwrap();
        let held = xattr_capacity(dir.path(), 64 * 1024).unwrap();
        assert!(held >= 254, "user xattrs work in {}", dir.path().display());
        let mut meta = Metadata::new();
        for i in 0..90 {
            meta.insert(format!("X-Object-Meta-K{i:02}"), "v".repeat(45));
        }
        let size = encode_metadata(&meta).len();
        let path = dir.path().join("o.data");
        let file = fs::File::create(&path).unwrap();
        match write_metadata(&file, &path, &meta) {
            Ok(()) => {
                assert!(held >= size, "{size} bytes stored, but only {held} fit");
                assert_eq!(read_metadata(&file, &path).unwrap(), meta);
            }
            Err(e) => {
                assert!(
                    held < size + 64,
                    "refused {size} bytes, though {held} fit: {e}"
                );
                assert!(e.is_insufficient_storage(), "{e}");
                assert!(e.to_string().contains(&format!("{size} bytes")), "{e}");
            }
        }
    }
}

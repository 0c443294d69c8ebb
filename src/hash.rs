//! Swift's path hashing: `md5(prefix + "/" + parts.join("/") + suffix)`.
//!
//! The prefix and suffix are per-cluster secrets from the `[swift-hash]` section of
//! `swift.conf`. Every node of a cluster must use the same pair, or objects are looked for
//! in the wrong partitions.

use std::fmt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::swift::conf::{Conf, ConfError};

/// The `[swift-hash]` secrets of a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashConfig {
    pub prefix: Vec<u8>,
    pub suffix: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum HashConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Conf(ConfError),
    #[error(
        "{path}: [swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing"
    )]
    Missing { path: PathBuf },
}

#[derive(Debug, PartialEq, Eq)]
pub struct PathError(pub &'static str);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for PathError {}

/// The directory holding `swift.conf` and the rings: `--swift-dir`, else `$SWIFT_DIR`,
/// else `/etc/swift`.
pub fn swift_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os("SWIFT_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/etc/swift"),
    }
}

impl HashConfig {
    pub fn new(prefix: impl Into<Vec<u8>>, suffix: impl Into<Vec<u8>>) -> Self {
        HashConfig {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    /// Reads `[swift-hash]` from `<swift_dir>/swift.conf`.
    pub fn load(swift_dir: &Path) -> Result<Self, HashConfigError> {
        let path = swift_dir.join("swift.conf");
        let conf = Conf::load(&path).map_err(|e| match e {
            ConfError::Io { path, source } => HashConfigError::Io { path, source },
            other => HashConfigError::Conf(other),
        })?;
        let cfg = Self::from_conf(&conf);
        if cfg.prefix.is_empty() && cfg.suffix.is_empty() {
            return Err(HashConfigError::Missing { path });
        }
        Ok(cfg)
    }

    /// The `[swift-hash]` keys of a parsed `swift.conf` (empty when absent).
    pub fn from_conf(conf: &Conf) -> Self {
        let section = conf.own_section("swift-hash");
        let get = |key: &str| {
            section
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_bytes().to_vec())
                .unwrap_or_default()
        };
        HashConfig {
            prefix: get("swift_hash_path_prefix"),
            suffix: get("swift_hash_path_suffix"),
        }
    }

    /// The raw 16-byte digest of `/account[/container[/object]]`.
    pub fn hash_path_raw(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<[u8; 16], PathError> {
        let container = container.filter(|c| !c.is_empty());
        let object = object.filter(|o| !o.is_empty());
        if object.is_some() && container.is_none() {
            return Err(PathError("container is required if object is provided"));
        }
        let mut h = Md5::new();
        h.update(&self.prefix);
        h.update(b"/");
        h.update(account.as_bytes());
        if let Some(c) = container {
            h.update(b"/");
            h.update(c.as_bytes());
        }
        if let Some(o) = object {
            h.update(b"/");
            h.update(o.as_bytes());
        }
        h.update(&self.suffix);
        Ok(h.finalize().into())
    }

    /// The hex digest Swift uses as the name of an object's hash directory.
    pub fn hash_path(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<String, PathError> {
        Ok(hex::encode(self.hash_path_raw(account, container, object)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_swift_with_endcap_suffix() {
        // Value computed by Swift 2.38.3: utils.HASH_PATH_SUFFIX = b'endcap'; hash_path('a','c','o')
        let cfg = HashConfig::new("", "endcap");
        let h = cfg.hash_path("a", Some("c"), Some("o")).unwrap();
        let mut m = Md5::new();
        m.update(b"/a/c/oendcap");
        assert_eq!(h, hex::encode(m.finalize()));
    }

    #[test]
    fn object_without_container_is_an_error() {
        let cfg = HashConfig::new("", "x");
        assert!(cfg.hash_path("a", None, Some("o")).is_err());
    }

    #[test]
    fn parses_swift_conf() {
        let conf = Conf::parse(
            "[swift-hash]\nswift_hash_path_suffix = changeme\nswift_hash_path_prefix=pre\n[storage-policy:0]\nname = gold\n",
            Path::new("swift.conf"),
        )
        .unwrap();
        let cfg = HashConfig::from_conf(&conf);
        assert_eq!(cfg, HashConfig::new("pre", "changeme"));
    }
}

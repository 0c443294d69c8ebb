//! Swift's protocol layer: every Swift concept that the proxy, the storage servers, the
//! daemons, the CLI, recon and the dashboard share, each in one place.
//!
//! ```text
//!   swift.conf ──► SwiftConf ─┬─ HashConfig   ([swift-hash], crate::hash)
//!                             ├─ Policies     ([storage-policy:N], policy)
//!                             └─ Constraints  ([swift-constraints], constraints)
//!   *.conf     ──► conf::Conf (paste.deploy INI: [DEFAULT], `set key = value`)
//!   X-Timestamp ─► timestamp::Timestamp, HTTP dates
//!   paths      ──► escape::quote / unquote, XML listing escapes
//! ```
//!
//! Where copies of these used to disagree, Swift 2.38.3's behaviour is the rule; each such
//! case has a test next to the code.

pub mod conf;
pub mod constraints;
pub mod escape;
pub mod header;
pub mod policy;
pub mod timestamp;

use std::path::{Path, PathBuf};

pub use conf::{Conf, ConfError};
pub use constraints::{Constraints, MetaTarget};
pub use policy::{Policies, Policy, PolicyType};
pub use timestamp::Timestamp;

use crate::hash::HashConfig;

/// Swift's version string: the servers speak Swift 2.38.3's protocol, report it in
/// `/recon/version`, and `swift-recon --swift-versions` compares it.
pub const SWIFT_VERSION: &str = "2.38.3";

/// A cluster's `swift.conf`, parsed and validated once.
#[derive(Clone, Debug)]
pub struct SwiftConf {
    pub path: PathBuf,
    pub hash: HashConfig,
    pub policies: Policies,
    pub constraints: Constraints,
}

impl SwiftConf {
    /// Reads `<swift_dir>/swift.conf`. The hash secrets are required, as every server
    /// of Swift requires them; policies and constraints default as in Swift.
    pub fn load(swift_dir: &Path) -> Result<SwiftConf, ConfError> {
        let path = swift_dir.join("swift.conf");
        let conf = Conf::load(&path)?;
        let hash = HashConfig::from_conf(&conf);
        if hash.prefix.is_empty() && hash.suffix.is_empty() {
            return Err(ConfError::Invalid {
                path,
                message: "[swift-hash]: both swift_hash_path_suffix and \
                          swift_hash_path_prefix are missing"
                    .into(),
            });
        }
        Self::from_conf(&conf, hash)
    }

    fn from_conf(conf: &Conf, hash: HashConfig) -> Result<SwiftConf, ConfError> {
        Ok(SwiftConf {
            path: conf.path.clone(),
            hash,
            policies: Policies::from_conf(conf)?,
            constraints: Constraints::from_conf(conf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_all_three_parts_and_requires_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swift.conf");
        std::fs::write(
            &path,
            "[swift-hash]\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\n\
             [swift-constraints]\nmax_file_size = 10\n",
        )
        .unwrap();
        let c = SwiftConf::load(dir.path()).unwrap();
        assert_eq!(c.hash.suffix, b"s");
        assert_eq!(c.policies.default_policy().name(), "gold");
        assert_eq!(c.constraints.max_file_size, 10);

        std::fs::write(&path, "[storage-policy:0]\nname = gold\n").unwrap();
        let e = SwiftConf::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("swift_hash_path_suffix"), "{e}");
        let e = SwiftConf::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}

//! Helpers shared by the interop tests of every crate (not part of the public API).

use std::path::PathBuf;

/// The virtualenv holding the real Swift 2.38.3 (see `scripts/swift-venv.sh`).
///
/// Interop tests never skip: when the virtualenv is missing this panics with the command
/// that creates it.
pub fn swift_venv() -> PathBuf {
    let venv = match std::env::var_os("RINGSMITH_SWIFT_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("ringsmith/swift-venv")
        }
    };
    assert!(
        venv.join("bin/python").exists() && venv.join("bin/swift-ring-builder").exists(),
        "the Swift 2.38.3 virtualenv is missing at {}; run scripts/swift-venv.sh (scripts/test.sh does)",
        venv.display()
    );
    venv
}

/// `<venv>/bin/<name>`.
pub fn swift_bin(name: &str) -> PathBuf {
    swift_venv().join("bin").join(name)
}

//! Reading and writing `ring.gz` for the ring command, through the ring module's own
//! functions (one place to adapt if their signatures change).

use std::path::Path;

use ringsmith::ring::RingData;

/// swift-ring-builder 2.38 still writes format 1 unless told otherwise.
pub const DEFAULT_FORMAT_VERSION: u8 = 1;

/// A ring file and the serialization version it was stored with.
pub struct LoadedRing {
    pub data: RingData,
    pub format_version: u8,
}

/// Loads a ring file; the error names what is wrong with it.
pub fn load_ring(path: &Path) -> Result<LoadedRing, String> {
    let (data, format_version) =
        ringsmith::ring::format::load_ring_file(path).map_err(|e| e.to_string())?;
    Ok(LoadedRing {
        data,
        format_version,
    })
}

/// Writes a ring file atomically in the given serialization version.
pub fn save_ring(ring: &RingData, path: &Path, format_version: u8) -> Result<(), String> {
    ringsmith::ring::format::save_ring_file(ring, path, format_version).map_err(|e| format!("{e}"))
}

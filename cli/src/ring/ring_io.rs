//! Reading and writing `ring.gz` for the ring command, through the ring module's own
//! functions (one place to adapt if their signatures change).

use std::path::Path;

use ringsmith::ring::format::{load_ring_file, FormatVersion};
use ringsmith::ring::RingData;

/// swift-ring-builder 2.38 still writes format 1 unless told otherwise.
pub const DEFAULT_FORMAT_VERSION: u8 = 1;

/// A ring file and the serialization version it was stored with.
pub struct LoadedRing {
    pub data: RingData,
    pub format_version: u8,
}

/// Loads a ring file; the error names the file and what is wrong with it.
pub fn load_ring(path: &Path) -> Result<LoadedRing, String> {
    let loaded = load_ring_file(path).map_err(|e| e.to_string())?;
    Ok(LoadedRing {
        data: loaded.data,
        format_version: loaded.format.number() as u8,
    })
}

/// Writes a ring file atomically in the given serialization version (1 or 2).
pub fn save_ring(ring: &RingData, path: &Path, format_version: u8) -> Result<(), String> {
    let format = FormatVersion::from_number(u16::from(format_version))
        .ok_or_else(|| format!("unsupported ring format version {format_version}"))?;
    ring.save(path, format).map_err(|e| e.to_string())
}

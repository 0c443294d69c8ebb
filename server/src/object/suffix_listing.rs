//! `REPLICATE /<dev>/<part>/<suffix>` with `X-Ringsmith-List-Suffix: yes`: what the
//! suffix holds, as JSON `{hash: {"name": "/a/c/o", "files": [file names]}}`.
//!
//! A deliberate Ringsmith addition (docs/differences.md): Swift's reconstructor pushes
//! fragments to its partners with SSYNC, so it never needs to ask what they hold. A
//! rebuilding node that *pulls* (a wiped disk has nothing to push from) must learn the
//! object names behind a differing suffix; the names are in each hash directory's
//! `.data`/`.ts` metadata, which only the owning server can read.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::diskfile::metadata::read_metadata;

/// Lists the hash directories of `suffix_dir` with their object name and file names.
/// Directories whose metadata cannot be read (mid-write, corrupt) are left out: the
/// auditor deals with those, and a partial answer only delays a rebuild.
pub fn list_suffix(suffix_dir: &Path) -> std::io::Result<Value> {
    let mut out = Map::new();
    let entries = match std::fs::read_dir(suffix_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::Object(out)),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let hash = entry.file_name().to_string_lossy().into_owned();
        if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let mut files: Vec<String> = std::fs::read_dir(entry.path())?
            .flatten()
            .map(|f| f.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let name = files
            .iter()
            .rev()
            .filter(|f| f.ends_with(".data") || f.ends_with(".ts"))
            .find_map(|f| {
                let path = entry.path().join(f);
                let file = std::fs::File::open(&path).ok()?;
                read_metadata(&file, &path).ok()?.get("name").cloned()
            });
        if let Some(name) = name {
            out.insert(hash, json!({"name": name, "files": files}));
        }
    }
    Ok(Value::Object(out))
}

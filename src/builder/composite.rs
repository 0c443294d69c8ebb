//! Composite rings: several component builders stitched into one ring, with the JSON
//! metadata file `swift-ring-composer` keeps beside it (Swift 2.38's `composite_builder`).
//!
//! The rules are Swift's, checked in Swift's order so that the first problem reported is the
//! one Swift reports: at least two components; every builder has an id; on a re-compose,
//! the same builders in the same order, none older, at least one newer (unless forced);
//! then the same part power, whole replica counts, no pending device changes, no region and
//! no ip/port/device in two components. The composite table is the components' tables one
//! after the other, device ids shifted by the number of device slots before them, so the
//! primary node order (an EC fragment's index) is fixed by the component order.
//!
//! Errors are the text of the exception Swift raises; the CLI adds Swift's framing.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use super::{BuilderFileError, RingBuilder};
use crate::ring::{RingData, NONE_DEV};

/// The contents of a composite builder file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompositeBuilder {
    /// Bumped by every successful compose.
    pub version: u64,
    /// One `{"version", "replicas", "id"}` object per component, in ring order, kept as
    /// read so that `show` prints what the file holds.
    pub components: Vec<Value>,
    /// Absolute paths of the component builder files, in the same order.
    pub builder_files: Vec<String>,
}

const INVALID: &str = "File does not contain valid composite ring data";

impl CompositeBuilder {
    /// Reads a composite builder file. The error is Python's text for the failure:
    /// `[Errno 2] No such file or directory: 'x'` or the invalid-data message.
    pub fn load(path: &Path) -> Result<CompositeBuilder, String> {
        let bytes = std::fs::read(path).map_err(|e| python_io_error(&e, path))?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID.to_string())?;
        let meta: Value = serde_json::from_str(&text).map_err(|_| INVALID.to_string())?;
        Self::from_json(&meta).ok_or_else(|| INVALID.to_string())
    }

    fn from_json(meta: &Value) -> Option<CompositeBuilder> {
        let files = meta.get("component_builder_files")?.as_object()?;
        let components = meta.get("components")?.as_array()?.clone();
        let mut builder_files = Vec::with_capacity(components.len());
        for comp in &components {
            // Swift only needs the id to find the file; the other two keys are used by
            // every later compose, so a component without them is refused here.
            let id = comp.get("id")?.as_str()?;
            comp.get("version")?.as_u64()?;
            comp.get("replicas")?.as_f64()?;
            builder_files.push(abspath(files.get(id)?.as_str()?));
        }
        let version = meta.get("version")?.as_u64()?;
        Some(CompositeBuilder {
            version,
            components,
            builder_files,
        })
    }

    /// Swift's `to_dict()`: what `show` prints.
    pub fn to_dict(&self) -> Value {
        let mut files = Map::new();
        for (comp, file) in self.components.iter().zip(&self.builder_files) {
            let id = comp.get("id").and_then(Value::as_str).unwrap_or_default();
            files.insert(id.to_string(), Value::from(file.clone()));
        }
        let mut m = Map::new();
        m.insert("components".into(), Value::Array(self.components.clone()));
        m.insert("component_builder_files".into(), Value::Object(files));
        m.insert("version".into(), Value::from(self.version));
        Value::Object(m)
    }

    /// The file's bytes as Swift's `json.dump` writes them: keys in insertion order
    /// (components, component_builder_files, version, saved_path, serialization_version).
    pub fn to_file_text(&self, saved_path: &str) -> String {
        let mut out = String::from("{\"components\": [");
        for (i, comp) in self.components.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_ordered(&mut out, comp, &["version", "replicas", "id"]);
        }
        out.push_str("], \"component_builder_files\": {");
        for (i, (comp, file)) in self.components.iter().zip(&self.builder_files).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let id = comp.get("id").and_then(Value::as_str).unwrap_or_default();
            crate::pyjson::write_str(&mut out, id);
            out.push_str(": ");
            crate::pyjson::write_str(&mut out, file);
        }
        out.push_str(&format!(
            "}}, \"version\": {}, \"saved_path\": ",
            self.version
        ));
        crate::pyjson::write_str(&mut out, saved_path);
        out.push_str(", \"serialization_version\": 1}");
        out
    }

    /// Writes the metadata atomically, recording where it was saved.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        if self.components.is_empty() || self.builder_files.is_empty() {
            return Err("No composed ring to save.".into());
        }
        let saved_path = abspath(&path.to_string_lossy());
        let text = self.to_file_text(&saved_path);
        crate::atomic::write_bytes_atomic(path, 0o644, text.as_bytes())
            .map_err(|e| python_io_error(&e, path))
    }

    /// Loads the component builders (the stored list when `builder_files` is empty), checks
    /// them against each other and against the previous composition, and returns the
    /// composite ring. On success `self` describes the new composition.
    pub fn compose(
        &mut self,
        builder_files: &[String],
        force: bool,
        require_modified: bool,
    ) -> Result<RingData, String> {
        let files: Vec<String> = if builder_files.is_empty() {
            self.builder_files.clone()
        } else {
            builder_files.to_vec()
        };
        if files.len() < 2 {
            return Err("Two or more component builders are required.".into());
        }
        let mut builders = Vec::with_capacity(files.len());
        for f in &files {
            builders.push(load_component(f)?);
        }
        check_builder_ids(&builders)?;
        let new_components: Vec<Value> = builders.iter().map(component_meta).collect();
        if !self.components.is_empty() && !self.builder_files.is_empty() && !force {
            let modified = check_against_existing(&self.components, &new_components)?;
            if require_modified && !modified {
                return Err(
                    "None of the component builders has been modified since the \
                            existing composite ring was built."
                        .into(),
                );
            }
        }
        pre_validate(&builders)?;
        let ring = make_composite_ring(&builders);
        self.builder_files = files.iter().map(|f| abspath(f)).collect();
        self.version += 1;
        self.components = new_components;
        Ok(ring)
    }
}

fn load_component(path: &str) -> Result<RingBuilder, String> {
    RingBuilder::load(path).map_err(|e| match e {
        // Swift reports any unpickling failure without the reason.
        BuilderFileError::Invalid { .. } => format!("Ring Builder file is invalid: {path}"),
        other => other.to_string(),
    })
}

fn component_meta(b: &RingBuilder) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), Value::from(b.version));
    m.insert("replicas".into(), float(b.replicas));
    m.insert("id".into(), Value::from(b.id.clone().unwrap_or_default()));
    Value::Object(m)
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn check_builder_ids(builders: &[RingBuilder]) -> Result<(), String> {
    let mut errors = Vec::new();
    // Ids in first-seen order, as Python's dict keeps them.
    let mut seen: Vec<(&str, Vec<String>)> = Vec::new();
    for (i, b) in builders.iter().enumerate() {
        match &b.id {
            None => errors.push(format!(
                "Problem with builder at index {i}: id attribute has not been initialised by \
                 calling save()"
            )),
            Some(id) => match seen.iter_mut().find(|(k, _)| k == id) {
                Some((_, idx)) => idx.push(i.to_string()),
                None => seen.push((id, vec![i.to_string()])),
            },
        }
    }
    for (id, idx) in seen {
        if idx.len() > 1 {
            errors.push(format!(
                "Builder id {} used at indexes {}",
                py_str_repr(id),
                idx.join(", ")
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// True when any component is newer than recorded; an error when the list differs.
fn check_against_existing(old: &[Value], new: &[Value]) -> Result<bool, String> {
    let mut errors = Vec::new();
    let mut newer = false;
    for (i, old_c) in old.iter().enumerate() {
        let Some(new_c) = new.get(i) else {
            errors.push(format!("Missing builder at index {i}"));
            continue;
        };
        let mismatch = ["replicas", "id"].into_iter().find_map(|key| {
            let (a, b) = (&old_c[key], &new_c[key]);
            let same = match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) if key == "replicas" => x == y,
                _ => a == b,
            };
            (!same).then(|| {
                format!(
                    "Attribute mismatch for {key}: {} != {}",
                    py_repr(a),
                    py_repr(b)
                )
            })
        });
        let (old_v, new_v) = (
            old_c["version"].as_u64().unwrap_or(0),
            new_c["version"].as_u64().unwrap_or(0),
        );
        let problem = mismatch.or_else(|| {
            (new_v < old_v).then(|| format!("Older builder version: {new_v} < {old_v}"))
        });
        match problem {
            Some(p) => errors.push(format!("Invalid builder change at index {i}: {p}")),
            None => newer |= old_v < new_v,
        }
    }
    for (j, extra) in new.iter().enumerate().skip(old.len()) {
        errors.push(format!(
            "Unexpected extra builder at index {j}: {}",
            py_repr_ordered(extra, &["version", "replicas", "id"])
        ));
    }
    if errors.is_empty() {
        Ok(newer)
    } else {
        Err(errors.join("\n"))
    }
}

fn pre_validate(builders: &[RingBuilder]) -> Result<(), String> {
    let mut by_power: Vec<(u32, Vec<usize>)> = Vec::new();
    for (i, b) in builders.iter().enumerate() {
        match by_power.iter_mut().find(|(p, _)| *p == b.part_power) {
            Some((_, idx)) => idx.push(i),
            None => by_power.push((b.part_power, vec![i])),
        }
    }
    if by_power.len() > 1 {
        let variations: Vec<String> = by_power
            .iter()
            .map(|(p, idx)| {
                let idx: Vec<String> = idx.iter().map(usize::to_string).collect();
                format!("part_power={p} found at indexes [{}]", idx.join(", "))
            })
            .collect();
        return Err(format!(
            "All builders must have same value for 'part_power'.\n{}",
            variations.join("\n  ")
        ));
    }
    let mut errors = Vec::new();
    for (i, b) in builders.iter().enumerate() {
        if b.replicas.fract() != 0.0 {
            errors.push(format!(
                "Non integer replica count {} found at index {i}",
                crate::pyjson::float_repr(b.replicas)
            ));
        }
        if b.devs_changed {
            errors.push(format!(
                "Builder needs rebalance to apply changes at index {i}"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(format!("Problem with builders.\n{}", errors.join("\n  ")));
    }
    let regions: Vec<Vec<u32>> = builders
        .iter()
        .map(|b| b.devs.iter().flatten().map(|d| d.dev.region).collect())
        .collect();
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            if a.iter().any(|r| b.contains(r)) {
                return Err("Same region found in different rings".into());
            }
        }
    }
    let mut seen: Vec<Vec<(&str, u32, &str)>> = Vec::new();
    for (i, b) in builders.iter().enumerate() {
        let mut mine = Vec::new();
        for d in b.devs.iter().flatten() {
            let key = (d.dev.ip.as_str(), d.dev.port, d.dev.device.as_str());
            if let Some(j) = seen.iter().position(|devs| devs.contains(&key)) {
                return Err(format!(
                    "Duplicate ip/port/device combination {}/{}/{} found in builders at \
                     indexes {j} and {i}",
                    key.0, key.1, key.2
                ));
            }
            mine.push(key);
        }
        seen.push(mine);
    }
    Ok(())
}

/// The components' tables and devices one after the other, ids shifted. The devices keep
/// the builder's `parts` and `parts_wanted` keys, as Swift's composite ring does.
fn make_composite_ring(builders: &[RingBuilder]) -> RingData {
    let total: usize = builders.iter().map(|b| b.devs.len()).sum();
    let dev_id_bytes = if (total as u64) < 0xFFFF { 2 } else { 4 };
    let mut table = Vec::new();
    let mut devs = Vec::with_capacity(total);
    let mut offset = 0u32;
    for b in builders {
        for row in b.replica2part2dev.iter().flatten() {
            table.push(
                row.iter()
                    .map(|&d| if d == NONE_DEV { d } else { d + offset })
                    .collect(),
            );
        }
        for slot in &b.devs {
            devs.push(slot.as_ref().map(|d| {
                let mut dev = d.dev.clone();
                dev.id += offset;
                dev.extra.insert("parts".into(), Value::from(d.parts));
                if let Some(wanted) = d.parts_wanted {
                    let wanted = if wanted.fract() == 0.0 {
                        Value::from(wanted as i64)
                    } else {
                        float(wanted)
                    };
                    dev.extra.insert("parts_wanted".into(), wanted);
                }
                dev
            }));
        }
        offset += b.devs.len() as u32;
    }
    RingData {
        devs,
        replica2part2dev: table,
        part_shift: 32 - builders[0].part_power,
        next_part_power: None,
        version: None,
        dev_id_bytes,
    }
}

fn write_ordered(out: &mut String, obj: &Value, order: &[&str]) {
    let Some(map) = obj.as_object() else {
        crate::pyjson::write_value(out, obj);
        return;
    };
    out.push('{');
    let keys = order
        .iter()
        .map(|k| k.to_string())
        .filter(|k| map.contains_key(k))
        .chain(map.keys().filter(|k| !order.contains(&k.as_str())).cloned());
    for (i, k) in keys.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        crate::pyjson::write_str(out, &k);
        out.push_str(": ");
        crate::pyjson::write_value(out, &map[&k]);
    }
    out.push('}');
}

/// Python's `repr` of a JSON value (strings quoted as Python quotes them).
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_str_repr(s),
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => crate::pyjson::float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => py_repr_ordered(other, &[]),
    }
}

fn py_repr_ordered(v: &Value, order: &[&str]) -> String {
    match v {
        Value::Object(map) => {
            let keys: Vec<&String> = order
                .iter()
                .filter_map(|k| map.get_key_value(*k).map(|(k, _)| k))
                .chain(map.keys().filter(|k| !order.contains(&k.as_str())))
                .collect();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}: {}", py_str_repr(k), py_repr(&map[k])))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        other => py_repr(other),
    }
}

use super::syntax::py_repr as py_str_repr;

/// Python's text for an `OSError` on `path`: `[Errno 2] No such file or directory: 'x'`.
pub fn python_io_error(e: &std::io::Error, path: &Path) -> String {
    let text = e.to_string();
    let reason = text.split(" (os error").next().unwrap_or(&text);
    match e.raw_os_error() {
        Some(n) => format!(
            "[Errno {n}] {reason}: {}",
            py_str_repr(&path.to_string_lossy())
        ),
        None => reason.to_string(),
    }
}

/// Python's `os.path.abspath`: joined to the working directory and normalised lexically
/// (`.` and `..` resolved without following symlinks).
pub fn abspath(p: &str) -> String {
    let path = Path::new(p);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_text_keeps_python_key_order() {
        let c = CompositeBuilder {
            version: 2,
            components: vec![serde_json::json!({"id": "aa", "replicas": 1.0, "version": 3})],
            builder_files: vec!["/x/a.builder".into()],
        };
        assert_eq!(
            c.to_file_text("/x/c.composite"),
            "{\"components\": [{\"version\": 3, \"replicas\": 1.0, \"id\": \"aa\"}], \
             \"component_builder_files\": {\"aa\": \"/x/a.builder\"}, \"version\": 2, \
             \"saved_path\": \"/x/c.composite\", \"serialization_version\": 1}"
        );
    }

    #[test]
    fn changed_components_are_refused_in_swifts_words() {
        let old = vec![serde_json::json!({"version": 3, "replicas": 1.0, "id": "a"})];
        let older = vec![
            serde_json::json!({"version": 2, "replicas": 2.0, "id": "a"}),
            serde_json::json!({"version": 1, "replicas": 1.0, "id": "b"}),
        ];
        assert_eq!(
            check_against_existing(&old, &older).unwrap_err(),
            "Invalid builder change at index 0: Attribute mismatch for replicas: 1.0 != 2.0\n\
             Unexpected extra builder at index 1: {'version': 1, 'replicas': 1.0, 'id': 'b'}"
        );
        let newer = vec![serde_json::json!({"version": 4, "replicas": 1.0, "id": "a"})];
        assert!(check_against_existing(&old, &newer).unwrap());
        assert!(!check_against_existing(&old, &old).unwrap());
    }

    #[test]
    fn abspath_normalises_like_python() {
        assert_eq!(abspath("/a/./b/../c"), "/a/c");
        assert_eq!(abspath("/"), "/");
    }

    #[test]
    fn bad_files_are_invalid_data() {
        assert!(CompositeBuilder::from_json(&serde_json::json!({"components": []})).is_none());
        let ok = serde_json::json!({"components": [], "component_builder_files": {}, "version": 0});
        assert!(CompositeBuilder::from_json(&ok).is_some());
    }
}

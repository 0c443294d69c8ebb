//! SLO manifests: the client's format (`path`, `etag`, `size_bytes`, `range`, `data`),
//! checked as Swift checks it on `?multipart-manifest=put`, and the stored format
//! (`name`, `hash`, `bytes`, `content_type`, `last_modified`, `range`, `sub_slo`, `data`)
//! that GET reads back.

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// One entry of a client's manifest after the syntax checks.
#[derive(Clone, Debug)]
pub enum InputSegment {
    Object {
        path: String,
        etag: Option<String>,
        size_bytes: Option<u64>,
        /// The `range` as given, already known to be one syntactically valid range.
        range: Option<SegRange>,
    },
    /// Inline bytes (`data`, base64 in the manifest).
    Data(Vec<u8>),
}

/// One `bytes=` range of a segment, unresolved (as swob keeps it until it knows a size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegRange {
    pub start: Option<u64>,
    pub end: Option<u64>,
}

impl SegRange {
    /// swob's `Range('bytes=' + text)`: `None` when the syntax is invalid; one entry per
    /// comma-separated range otherwise.
    pub fn parse_all(text: &str) -> Option<Vec<SegRange>> {
        let text: String = text.chars().filter(|c| *c != ' ').collect();
        let mut out = Vec::new();
        for part in text.split(',') {
            let (a, b) = part.split_once('-')?;
            let start = if a.is_empty() {
                None
            } else {
                Some(parse_int(a)?)
            };
            let end = if b.is_empty() {
                start?;
                None
            } else {
                if !b.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let e: u64 = b.parse().ok()?;
                if start.is_some_and(|s| e < s) {
                    return None;
                }
                Some(e)
            };
            out.push(SegRange { start, end });
        }
        Some(out)
    }

    /// swob's `ranges_for_length` for this one range: the inclusive byte span, or `None`
    /// when it cannot be satisfied.
    pub fn resolve(&self, length: u64) -> Option<(u64, u64)> {
        if length == 0 {
            return None;
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) => (s < length).then(|| (s, e.min(length - 1))),
            (Some(s), None) => (s < length).then(|| (s, length - 1)),
            (None, Some(n)) => (n > 0).then(|| (length.saturating_sub(n), length - 1)),
            (None, None) => None,
        }
    }
}

/// Python's `int()` of a range bound: optional sign, digits.
fn parse_int(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Python's `int()` of a `size_bytes` (an integer, or a string of one).
fn size_bytes_of(v: &Value) -> Result<Option<i64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().map(Some).ok_or(()),
        Value::String(s) => s.trim().parse::<i64>().map(Some).map_err(|_| ()),
        Value::Bool(b) => Ok(Some(*b as i64)),
        _ => Err(()),
    }
}

/// Python's `repr()` of a key name, as Swift's messages show it.
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\'', "\\'"))
    }
}

/// Swift's `parse_and_validate_input`: the manifest's segments, or the 400 body listing
/// every problem (one line per index).
pub fn parse_input(
    body: &[u8],
    account_path: &str,
    req_path: &str,
) -> Result<Vec<InputSegment>, String> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| "Manifest must be valid JSON.\n".to_string())?;
    let Value::Array(items) = parsed else {
        return Err("Manifest must be a list.\n".into());
    };
    let mut errors: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let last = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        let Value::Object(seg) = item else {
            errors.push(format!("Index {i}: not a JSON object"));
            continue;
        };
        let kind = if seg.contains_key("data") {
            "data"
        } else if seg.contains_key("path") {
            "path"
        } else {
            errors.push(format!(
                "Index {i}: expected keys to include one of {} or {}",
                py_repr("data"),
                py_repr("path")
            ));
            continue;
        };
        let allowed: &[&str] = if kind == "data" {
            &["data"]
        } else {
            &["path", "range", "etag", "size_bytes"]
        };
        let mut extra: Vec<&String> = seg
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        if !extra.is_empty() {
            extra.sort();
            let names: Vec<String> = extra.iter().map(|k| py_json_string(k)).collect();
            errors.push(format!("Index {i}: extraneous keys {}", names.join(", ")));
            continue;
        }
        if kind == "data" {
            let decoded = seg["data"]
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
            match decoded {
                None => errors.push(format!("Index {i}: data must be valid base64")),
                Some(d) if d.is_empty() => errors.push(format!(
                    "Index {i}: too small; each segment must be at least 1 byte."
                )),
                Some(d) => out.push(InputSegment::Data(d)),
            }
            continue;
        }
        let Some(path) = seg["path"].as_str() else {
            errors.push(format!("Index {i}: \"path\" must be a string"));
            continue;
        };
        let etag = match seg.get("etag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!(
                    "Index {i}: \"etag\" must be a string or null (if provided)"
                ));
                continue;
            }
        };
        if !path.trim_matches('/').contains('/') {
            errors.push(format!(
                "Index {i}: path does not refer to an object. Path must be of the form \
                 /container/object."
            ));
            continue;
        }
        let size = match seg.get("size_bytes").map(size_bytes_of) {
            None => None,
            Some(Err(())) => {
                errors.push(format!("Index {i}: invalid size_bytes"));
                continue;
            }
            Some(Ok(s)) => s,
        };
        if size.is_some_and(|s| s < 1) && i != last {
            errors.push(format!(
                "Index {i}: too small; each segment must be at least 1 byte."
            ));
            continue;
        }
        let seg_path = format!(
            "{account_path}/{}",
            ringsmith::swift::escape::quote(path.trim_start_matches('/'))
        );
        if seg_path == req_path {
            errors.push(format!(
                "Index {i}: manifest must not include itself as a segment"
            ));
            continue;
        }
        let mut range = None;
        let range_text = match seg.get("range") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!("Index {i}: invalid range"));
                continue;
            }
        };
        if let Some(text) = range_text {
            let Some(ranges) = SegRange::parse_all(&text) else {
                errors.push(format!("Index {i}: invalid range"));
                continue;
            };
            if ranges.len() > 1 {
                errors.push(format!("Index {i}: multiple ranges (only one allowed)"));
                continue;
            }
            if let Some(s) = size {
                if ranges[0].resolve(s.max(0) as u64).is_none() {
                    errors.push(format!("Index {i}: unsatisfiable range"));
                    continue;
                }
            }
            range = Some(ranges[0]);
        }
        out.push(InputSegment::Object {
            path: path.to_string(),
            etag,
            size_bytes: size.map(|s| s.max(0) as u64),
            range,
        });
    }
    if !items.is_empty() && items.iter().all(|v| v.get("data").is_some()) {
        errors.push("Inline data segments require at least one object-backed segment.".into());
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.iter().map(|e| format!("{e}\n")).collect())
    }
}

/// A segment of a stored manifest, as GET and DELETE read it.
#[derive(Clone, Debug)]
pub enum Stored {
    Object {
        /// `/container/object`, unquoted.
        name: String,
        hash: String,
        bytes: u64,
        /// Inclusive, already resolved against the segment's size at PUT.
        range: Option<(u64, u64)>,
        sub_slo: bool,
    },
    Data(Vec<u8>),
}

impl Stored {
    /// How many bytes this segment contributes to the large object.
    pub fn length(&self) -> u64 {
        match self {
            Stored::Data(d) => d.len() as u64,
            Stored::Object {
                range: Some((a, b)),
                ..
            } => b - a + 1,
            Stored::Object { bytes, .. } => *bytes,
        }
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => ringsmith::swift::conf::is_true(s),
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// A stored manifest's segments (Swift's `_annotate_segments`: a sub-SLO's size is the
/// `swift_bytes` of its content type when that is there).
pub fn parse_stored(body: &[u8]) -> Result<Vec<Stored>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Value::Array(items) = v else {
        return Err("not a list".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(d) = item.get("data").and_then(Value::as_str) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|e| e.to_string())?;
            out.push(Stored::Data(raw));
            continue;
        }
        let name = item["name"].as_str().ok_or("segment without a name")?;
        let mut bytes = match &item["bytes"] {
            Value::Number(n) => n.as_u64().unwrap_or(0),
            Value::String(s) => s.parse().unwrap_or(0),
            _ => 0,
        };
        let sub_slo = truthy(item.get("sub_slo"));
        if sub_slo {
            if let Some(sb) = item["content_type"]
                .as_str()
                .and_then(|ct| {
                    ct.split(';')
                        .find_map(|p| p.trim().strip_prefix("swift_bytes="))
                })
                .and_then(|n| n.parse().ok())
            {
                bytes = sb;
            }
        }
        let range = match item.get("range").and_then(Value::as_str) {
            Some(r) => {
                let (a, b) = r.split_once('-').ok_or("bad range")?;
                Some((
                    a.parse().map_err(|_| "bad range")?,
                    b.parse().map_err(|_| "bad range")?,
                ))
            }
            None => None,
        };
        out.push(Stored::Object {
            name: name.to_string(),
            hash: item["hash"].as_str().unwrap_or("").to_string(),
            bytes,
            range,
            sub_slo,
        });
    }
    Ok(out)
}

/// The SLO's ETag: the MD5 of its segments' ETags (`etag:range;` for ranged ones, the MD5
/// of the bytes for inline data).
pub fn slo_etag(parts: &[(String, Option<String>)]) -> String {
    let mut h = Md5::new();
    for (hash, range) in parts {
        match range {
            Some(r) => h.update(format!("{hash}:{r};").as_bytes()),
            None => h.update(hash.as_bytes()),
        }
    }
    hex::encode(h.finalize())
}

/// The ETag contribution of one stored segment.
pub fn etag_part(seg: &Stored) -> (String, Option<String>) {
    match seg {
        Stored::Data(d) => (hex::encode(Md5::digest(d)), None),
        Stored::Object { hash, range, .. } => {
            (hash.clone(), range.map(|(a, b)| format!("{a}-{b}")))
        }
    }
}

/// `?multipart-manifest=get&format=raw`: the stored manifest back in the client's
/// format, keys sorted, as `json.dumps(..., sort_keys=True)`.
pub fn to_raw_format(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Value::Array(items) = v else {
        return Err("not a list".into());
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(mut seg) = item else {
            out.push(item);
            continue;
        };
        if !seg.contains_key("data") {
            seg.remove("content_type");
            seg.remove("last_modified");
            seg.remove("sub_slo");
            let name = seg.remove("name").unwrap_or(Value::Null);
            let bytes = seg.remove("bytes").unwrap_or(Value::Null);
            let hash = seg.remove("hash").unwrap_or(Value::Null);
            seg.insert("path".into(), name);
            seg.insert("size_bytes".into(), bytes);
            seg.insert("etag".into(), hash);
        }
        out.push(Value::Object(seg));
    }
    Ok(py_dumps(&Value::Array(out), true).into_bytes())
}

/// Python's `json.dumps` (default separators, ASCII only), optionally with sorted keys:
/// what Swift stores and returns, byte for byte.
pub fn py_dumps(v: &Value, sort_keys: bool) -> String {
    let mut s = String::new();
    write_py(v, sort_keys, &mut s);
    s
}

fn write_py(v: &Value, sort_keys: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&py_json_string(s)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py(x, sort_keys, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            if sort_keys {
                keys.sort();
            }
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_json_string(k));
                out.push_str(": ");
                write_py(&m[k], sort_keys, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal as Python writes it with `ensure_ascii=True`.
pub fn py_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The stored form of one checked object segment.
pub fn stored_entry(
    name: &str,
    bytes: u64,
    hash: &str,
    content_type: &str,
    last_modified: &str,
    range: Option<&str>,
    sub_slo: bool,
) -> Value {
    let mut m = Map::new();
    m.insert(
        "name".into(),
        Value::String(format!("/{}", name.trim_start_matches('/'))),
    );
    m.insert("bytes".into(), Value::from(bytes));
    m.insert("hash".into(), Value::String(hash.to_string()));
    m.insert(
        "content_type".into(),
        Value::String(content_type.to_string()),
    );
    m.insert(
        "last_modified".into(),
        Value::String(last_modified.to_string()),
    );
    if let Some(r) = range {
        m.insert("range".into(), Value::String(r.to_string()));
    }
    if sub_slo {
        m.insert("sub_slo".into(), Value::Bool(true));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(body: &str) -> String {
        parse_input(body.as_bytes(), "/v1/AUTH_t", "/v1/AUTH_t/c/m").unwrap_err()
    }

    #[test]
    fn bad_manifests_get_swifts_messages() {
        assert_eq!(errs("nope"), "Manifest must be valid JSON.\n");
        assert_eq!(errs("{}"), "Manifest must be a list.\n");
        assert_eq!(
            errs(r#"[1, {"x": 1}, {"path": "/c/o", "foo": 1, "bar": 2}, {"path": "c"}]"#),
            "Index 0: not a JSON object\n\
             Index 1: expected keys to include one of 'data' or 'path'\n\
             Index 2: extraneous keys \"bar\", \"foo\"\n\
             Index 3: path does not refer to an object. Path must be of the form /container/object.\n"
        );
        assert_eq!(
            errs(
                r#"[{"path": "/c/o", "range": "x"}, {"path": "/c/o", "range": "1-2,4-5"},
                     {"path": "/c/o", "size_bytes": 3, "range": "5-"}, {"path": "/c/m"},
                     {"path": "/c/o", "size_bytes": 0}, {"path": "/c/o", "size_bytes": "a"}]"#
            ),
            "Index 0: invalid range\nIndex 1: multiple ranges (only one allowed)\n\
             Index 2: unsatisfiable range\n\
             Index 3: manifest must not include itself as a segment\n\
             Index 4: too small; each segment must be at least 1 byte.\n\
             Index 5: invalid size_bytes\n"
        );
        assert_eq!(
            errs(r#"[{"data": "YQ=="}]"#),
            "Inline data segments require at least one object-backed segment.\n"
        );
        assert_eq!(
            errs(r#"[{"data": "!!"}, {"path": "/c/o"}]"#),
            "Index 0: data must be valid base64\n"
        );
    }

    #[test]
    fn segment_ranges_resolve_like_swob() {
        let r = |t: &str| SegRange::parse_all(t).unwrap()[0];
        assert_eq!(r("1-2").resolve(10), Some((1, 2)));
        assert_eq!(r("5-").resolve(10), Some((5, 9)));
        assert_eq!(r("-3").resolve(10), Some((7, 9)));
        assert_eq!(r("8-100").resolve(10), Some((8, 9)));
        assert_eq!(r("10-").resolve(10), None);
        assert!(SegRange::parse_all("3-1").is_none() && SegRange::parse_all("-").is_none());
    }

    #[test]
    fn python_json_and_raw_format() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": ["é", true, null]}"#).unwrap();
        assert_eq!(
            py_dumps(&v, false),
            r#"{"b": 1, "a": ["\u00e9", true, null]}"#
        );
        assert_eq!(
            py_dumps(&v, true),
            r#"{"a": ["\u00e9", true, null], "b": 1}"#
        );
        let stored = br#"[{"name": "/c/o", "bytes": 3, "hash": "h", "content_type": "t",
                          "last_modified": "x", "range": "0-1", "sub_slo": true}, {"data": "YQ=="}]"#;
        assert_eq!(
            String::from_utf8(to_raw_format(stored).unwrap()).unwrap(),
            r#"[{"etag": "h", "path": "/c/o", "range": "0-1", "size_bytes": 3}, {"data": "YQ=="}]"#
        );
        let segs = parse_stored(stored).unwrap();
        assert_eq!(segs[0].length(), 2);
        assert_eq!(segs[1].length(), 1);
    }
}

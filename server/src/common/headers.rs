//! Header helpers: typed reads of the `X-*` headers the backend protocol uses, Swift's
//! `check_metadata`, and the title-casing Swift applies to stored header names.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::Constraints;
use super::Timestamp;

/// A header's value as UTF-8 text, if present and valid.
/// A header's value as text: UTF-8, not only ASCII (Swift keeps any bytes a client sends).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// `X-Timestamp` (or another timestamp header), parsed. `Ok(None)` when absent.
pub fn timestamp(headers: &HeaderMap, name: &str) -> Result<Option<Timestamp>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| format!("Invalid {name} header"))?;
            Timestamp::parse(s).map(Some).map_err(|_| {
                format!("X-Timestamp should be a UNIX timestamp float value; was {s:?}")
            })
        }
    }
}

/// Swift stores header names title-cased (`x-object-meta-color` → `X-Object-Meta-Color`).
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Swift's `check_metadata` for `X-<target>-Meta-*` headers: a 400 message when one of
/// the `[swift-constraints]` limits is exceeded.
pub fn check_metadata(
    headers: &HeaderMap,
    target: &str,
    limits: &Constraints,
) -> Result<(), String> {
    let prefix = format!("x-{target}-meta-");
    let mut count = 0usize;
    let mut size = 0usize;
    for (name, value) in headers {
        let name = name.as_str();
        let Some(key) = name.strip_prefix(&prefix) else {
            continue;
        };
        let value = std::str::from_utf8(value.as_bytes())
            .map_err(|_| "Metadata must be valid UTF-8".to_string())?;
        if key.is_empty() {
            return Err("Metadata name cannot be empty".into());
        }
        count += 1;
        size += key.len() + value.len();
        if key.len() > limits.max_meta_name_length {
            return Err(format!(
                "Metadata name too long: {}{}",
                title_case(&prefix),
                key
            ));
        }
        if value.len() > limits.max_meta_value_length {
            return Err(format!(
                "Metadata value longer than {}: {}{}",
                limits.max_meta_value_length,
                title_case(&prefix),
                key
            ));
        }
        if count > limits.max_meta_count {
            return Err(format!(
                "Too many metadata items; max {}",
                limits.max_meta_count
            ));
        }
        if size > limits.max_meta_overall_size {
            return Err(format!(
                "Total metadata too large; max {}",
                limits.max_meta_overall_size
            ));
        }
    }
    Ok(())
}

/// Inserts a header from owned strings, skipping values that are not valid header text
/// (stored metadata is UTF-8, which `HeaderValue` accepts as opaque bytes).
pub fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        headers.insert(n, v);
    }
}

/// An ETag list header (`If-Match`, `If-None-Match`): the unquoted tags, `*` kept as is.
pub fn etag_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|t| t.trim())
        .map(|t| t.strip_prefix("W/").unwrap_or(t))
        .map(|t| t.trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_like_swift() {
        assert_eq!(title_case("x-object-meta-color"), "X-Object-Meta-Color");
        assert_eq!(title_case("CONTENT-TYPE"), "Content-Type");
    }

    #[test]
    fn metadata_limits() {
        let limits = Constraints::default();
        let mut h = HeaderMap::new();
        h.insert("x-object-meta-a", HeaderValue::from_static("b"));
        assert!(check_metadata(&h, "object", &limits).is_ok());
        h.insert(
            "x-object-meta-long",
            HeaderValue::from_str(&"v".repeat(257)).unwrap(),
        );
        let e = check_metadata(&h, "object", &limits).unwrap_err();
        assert!(e.contains("longer than 256"), "{e}");
        let mut h = HeaderMap::new();
        let name = format!("x-container-meta-{}", "n".repeat(129));
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("v"),
        );
        assert!(check_metadata(&h, "container", &limits)
            .unwrap_err()
            .contains("name too long"));
    }

    #[test]
    fn etag_lists() {
        assert_eq!(etag_list("\"a\", W/\"b\",*"), vec!["a", "b", "*"]);
    }
}

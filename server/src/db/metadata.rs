//! The `metadata` column of accounts and containers: JSON of
//! `{"X-Container-Meta-Color": ["blue", "<timestamp>"]}`, merged newest-wins item by
//! item, with Swift's limits applied to the merged whole.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::common::headers::title_case;
use crate::common::Timestamp;

/// The `metadata` column: `{"X-Container-Meta-Color": ["blue", "<timestamp>"]}`.
pub fn parse_metadata(text: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Merges new metadata items: an item replaces the stored one only when newer.
pub fn merge_metadata(
    stored: &mut Map<String, Value>,
    updates: &[(String, String)],
    ts: Timestamp,
) {
    for (k, v) in updates {
        let newer = match stored
            .get(k)
            .and_then(|e| e.get(1))
            .and_then(|t| t.as_str())
        {
            Some(old) => Timestamp::parse(old).map(|o| ts > o).unwrap_or(true),
            None => true,
        };
        if newer {
            stored.insert(
                k.clone(),
                Value::Array(vec![Value::String(v.clone()), Value::String(ts.internal())]),
            );
        }
    }
}

/// Swift's limits on the user metadata an account or container holds once a write is
/// merged in (its `validate_metadata`): the request alone may be within the limits while
/// the merged whole is not.
#[derive(Clone, Copy, Debug)]
pub struct MetaLimits {
    /// `x-account-meta-` or `x-container-meta-`.
    pub prefix: &'static str,
    pub max_count: usize,
    pub max_overall_size: usize,
}

/// A metadata write the merged result of which breaks [`MetaLimits`]; it is not stored.
#[derive(Debug)]
pub struct MetadataTooLarge(pub String);

impl std::fmt::Display for MetadataTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetadataTooLarge {}

/// Checks merged metadata against `limits` (live user items only: name after the prefix
/// plus value count towards the size).
pub fn check_merged_metadata(
    stored: &Map<String, Value>,
    limits: &MetaLimits,
) -> Result<(), MetadataTooLarge> {
    let (mut count, mut size) = (0usize, 0usize);
    for (k, v) in stored {
        let Some(value) = v.get(0).and_then(|x| x.as_str()) else {
            continue;
        };
        if value.is_empty() || !k.to_ascii_lowercase().starts_with(limits.prefix) {
            continue;
        }
        count += 1;
        size += k.len() - limits.prefix.len() + value.len();
    }
    if count > limits.max_count {
        return Err(MetadataTooLarge("Too many metadata items".into()));
    }
    if size > limits.max_overall_size {
        return Err(MetadataTooLarge("Total metadata too large".into()));
    }
    Ok(())
}

/// The 400 for a rusqlite error that carries [`MetadataTooLarge`], if it is one.
pub fn metadata_too_large(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::UserFunctionError(inner) => inner
            .downcast_ref::<MetadataTooLarge>()
            .map(|m| m.0.clone()),
        _ => None,
    }
}

/// Live metadata items (an empty value means deleted).
pub fn live_metadata(stored: &Map<String, Value>) -> Vec<(String, String)> {
    stored
        .iter()
        .filter_map(|(k, v)| {
            let val = v.get(0)?.as_str()?;
            (!val.is_empty()).then(|| (k.clone(), val.to_string()))
        })
        .collect()
}

/// The metadata items of a request that an account or container stores:
/// `X-<target>-Meta-*`, `X-<target>-Sysmeta-*`, and the headers in `save`, title-cased.
pub fn metadata_items(headers: &HeaderMap, target: &str, save: &[&str]) -> Vec<(String, String)> {
    let meta = format!("x-{target}-meta-");
    let sys = format!("x-{target}-sysmeta-");
    let mut out = Vec::new();
    for (name, value) in headers {
        let n = name.as_str();
        if n.starts_with(&meta) || n.starts_with(&sys) || save.contains(&n) {
            if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
                out.push((title_case(n), v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_metadata_limits() {
        let limits = MetaLimits {
            prefix: "x-container-meta-",
            max_count: 2,
            max_overall_size: 10,
        };
        let mut md = Map::new();
        let ts = Timestamp::parse("1").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-A".into(), "12345".into())],
            ts,
        );
        merge_metadata(&mut md, &[("X-Container-Meta-B".into(), "123".into())], ts);
        assert!(check_merged_metadata(&md, &limits).is_ok());
        let mut over = md.clone();
        merge_metadata(&mut over, &[("X-Container-Meta-C".into(), "1".into())], ts);
        assert_eq!(
            check_merged_metadata(&over, &limits).unwrap_err().0,
            "Too many metadata items"
        );
        // Size counts the name after the prefix plus the value: "a12345" + "b1234" = 11.
        let ts2 = Timestamp::parse("2").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-B".into(), "1234".into())],
            ts2,
        );
        assert_eq!(
            check_merged_metadata(&md, &limits).unwrap_err().0,
            "Total metadata too large"
        );
        // Deleted items (empty values) do not count; other headers do not either.
        let ts3 = Timestamp::parse("3").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-B".into(), String::new())],
            ts3,
        );
        merge_metadata(&mut md, &[("X-Container-Read".into(), "x".repeat(50))], ts3);
        assert!(check_merged_metadata(&md, &limits).is_ok());
    }
}

//! Header helpers: typed reads of the `X-*` headers the backend protocol uses, Swift's
//! `check_metadata`, and the title-casing Swift applies to stored header names.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use ringsmith::swift::MetaTarget;

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

pub use ringsmith::swift::header::title_case;

/// Swift's `check_metadata` over a request's headers: a 400 message when one of the
/// `[swift-constraints]` limits is exceeded.
pub fn check_metadata(
    headers: &HeaderMap,
    target: MetaTarget,
    limits: &Constraints,
) -> Result<(), String> {
    limits.check_metadata(
        target,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
    )
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

/// One replica a server must tell about a change: a container replica after an object
/// write, an account replica after a container PUT or DELETE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateTarget {
    pub host: String,
    pub partition: String,
    pub device: String,
}

/// Pairs the proxy's `X-*-Host` with `X-*-Device` (comma lists) under `X-*-Partition`; `Err` when the lists differ in length (a 400).
pub fn update_targets(
    hosts: Option<&str>,
    partition: Option<&str>,
    devices: Option<&str>,
) -> Result<Vec<UpdateTarget>, String> {
    let split = |s: Option<&str>| -> Vec<String> {
        s.map(|v| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    let hosts = split(hosts);
    let devices = split(devices);
    if hosts.len() != devices.len() {
        return Err(format!(
            "X-Container-Host and X-Container-Device headers do not match ({} hosts, {} devices)",
            hosts.len(),
            devices.len()
        ));
    }
    if hosts.is_empty() {
        return Ok(vec![]);
    }
    let partition = partition
        .map(str::trim)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| "Missing or invalid container partition".to_string())?;
    Ok(hosts
        .into_iter()
        .zip(devices)
        .map(|(host, device)| UpdateTarget {
            host,
            partition: partition.to_string(),
            device,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_pair_hosts_and_devices() {
        let t = update_targets(Some("127.0.0.1:1, 127.0.0.2:1"), Some("7"), Some("d1,d2")).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].device, "d2");
        assert!(update_targets(Some("h:1,h:2"), Some("7"), Some("d1")).is_err());
        assert!(update_targets(None, None, None).unwrap().is_empty());
        assert!(update_targets(Some("h:1"), Some("x"), Some("d")).is_err());
    }

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
        assert!(check_metadata(&h, MetaTarget::Object, &limits).is_ok());
        h.insert(
            "x-object-meta-long",
            HeaderValue::from_str(&"v".repeat(257)).unwrap(),
        );
        let e = check_metadata(&h, MetaTarget::Object, &limits).unwrap_err();
        assert!(e.contains("longer than 256"), "{e}");
        let mut h = HeaderMap::new();
        let name = format!("x-container-meta-{}", "n".repeat(129));
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("v"),
        );
        assert!(check_metadata(&h, MetaTarget::Container, &limits)
            .unwrap_err()
            .contains("name too long"));
    }

    #[test]
    fn etag_lists() {
        assert_eq!(etag_list("\"a\", W/\"b\",*"), vec!["a", "b", "*"]);
    }
}

//! The API limits of `[swift-constraints]` in `swift.conf`, and Swift's
//! `check_metadata` over them.
//!
//! The proxy enforces them and publishes them in `/info`; the storage servers enforce the
//! name lengths, listing limits and metadata checks again, as Swift's do. The header-count
//! and header-size limits are also what every HTTP layer (server and client) must accept:
//! a backend answer that carries 90 metadata items is legal and must reach the client.

use serde::Serialize;

use super::conf::{Conf, ConfError};
use super::header::title_case;

/// Swift's `constraints.py` values, defaults overridden by `[swift-constraints]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Constraints {
    pub max_file_size: u64,
    pub max_meta_name_length: usize,
    pub max_meta_value_length: usize,
    pub max_meta_count: usize,
    pub max_meta_overall_size: usize,
    pub max_header_size: usize,
    pub max_request_line: usize,
    pub max_object_name_length: usize,
    pub container_listing_limit: usize,
    pub account_listing_limit: usize,
    pub max_account_name_length: usize,
    pub max_container_name_length: usize,
    pub valid_api_versions: Vec<String>,
    pub extra_header_count: usize,
    pub auto_create_account_prefix: String,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_file_size: 5_368_709_122,
            max_meta_name_length: 128,
            max_meta_value_length: 256,
            max_meta_count: 90,
            max_meta_overall_size: 4096,
            max_header_size: 8192,
            max_request_line: 8192,
            max_object_name_length: 1024,
            container_listing_limit: 10_000,
            account_listing_limit: 10_000,
            max_account_name_length: 256,
            max_container_name_length: 256,
            valid_api_versions: vec!["v1".into(), "v1.0".into()],
            extra_header_count: 0,
            auto_create_account_prefix: ".".into(),
        }
    }
}

/// Which kind of item a metadata header belongs to (`X-<kind>-Meta-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaTarget {
    Account,
    Container,
    Object,
}

impl MetaTarget {
    fn prefix(self) -> &'static str {
        match self {
            MetaTarget::Account => "x-account-meta-",
            MetaTarget::Container => "x-container-meta-",
            MetaTarget::Object => "x-object-meta-",
        }
    }
}

impl Constraints {
    /// Reads `[swift-constraints]` of a parsed `swift.conf`; a value that is not a number
    /// is an error naming the key, as Swift lets `int()` fail at start.
    pub fn from_conf(conf: &Conf) -> Result<Constraints, ConfError> {
        let d = Constraints::default();
        if !conf.has_section("swift-constraints") {
            return Ok(d);
        }
        let s = conf.section("swift-constraints");
        Ok(Constraints {
            max_file_size: s.parse_or("max_file_size", d.max_file_size)?,
            max_meta_name_length: s.parse_or("max_meta_name_length", d.max_meta_name_length)?,
            max_meta_value_length: s.parse_or("max_meta_value_length", d.max_meta_value_length)?,
            max_meta_count: s.parse_or("max_meta_count", d.max_meta_count)?,
            max_meta_overall_size: s.parse_or("max_meta_overall_size", d.max_meta_overall_size)?,
            max_header_size: s.parse_or("max_header_size", d.max_header_size)?,
            max_request_line: s.parse_or("max_request_line", d.max_request_line)?,
            max_object_name_length: s
                .parse_or("max_object_name_length", d.max_object_name_length)?,
            container_listing_limit: s
                .parse_or("container_listing_limit", d.container_listing_limit)?,
            account_listing_limit: s.parse_or("account_listing_limit", d.account_listing_limit)?,
            max_account_name_length: s
                .parse_or("max_account_name_length", d.max_account_name_length)?,
            max_container_name_length: s
                .parse_or("max_container_name_length", d.max_container_name_length)?,
            valid_api_versions: match s.get("valid_api_versions") {
                Some(v) => super::conf::list_from_csv(v),
                None => d.valid_api_versions,
            },
            extra_header_count: s.parse_or("extra_header_count", d.extra_header_count)?,
            auto_create_account_prefix: s
                .str_or("auto_create_account_prefix", &d.auto_create_account_prefix),
        })
    }

    /// Swift's `MAX_HEADER_COUNT`: the metadata items plus room for the protocol's own
    /// headers. Every HTTP parser on a request's path must accept this many.
    pub fn max_header_count(&self) -> usize {
        self.max_meta_count + 36 + self.extra_header_count
    }

    /// Swift's `check_metadata`: the `X-<target>-Meta-*` headers of a write, or the body
    /// of Swift's 400 answer. `headers` are (name, raw value) pairs.
    pub fn check_metadata<'a>(
        &self,
        target: MetaTarget,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), String> {
        let prefix = target.prefix();
        let (mut count, mut size) = (0usize, 0usize);
        for (name, value) in headers {
            if value.len() > self.max_header_size {
                let shown: String = name.chars().take(self.max_meta_name_length).collect();
                return Err(format!("Header value too long: {}", title_case(&shown)));
            }
            let is_meta = name.len() >= prefix.len()
                && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
            if !is_meta {
                continue;
            }
            let key = &name[prefix.len()..];
            if key.is_empty() {
                return Err("Metadata name cannot be empty".into());
            }
            // Account and container metadata lives in SQLite as text: Swift insists on
            // UTF-8 without NUL there; object metadata is opaque bytes.
            if matches!(target, MetaTarget::Account | MetaTarget::Container)
                && (!is_clean_utf8(key.as_bytes()) || !is_clean_utf8(value))
            {
                return Err("Metadata must be valid UTF-8".into());
            }
            count += 1;
            size += key.len() + value.len();
            // Swift's messages show the header as swob presents it: title-cased.
            if key.len() > self.max_meta_name_length {
                return Err(format!("Metadata name too long: {}", title_case(name)));
            }
            if value.len() > self.max_meta_value_length {
                return Err(format!(
                    "Metadata value longer than {}: {}",
                    self.max_meta_value_length,
                    title_case(name)
                ));
            }
            if count > self.max_meta_count {
                return Err(format!(
                    "Too many metadata items; max {}",
                    self.max_meta_count
                ));
            }
            if size > self.max_meta_overall_size {
                return Err(format!(
                    "Total metadata too large; max {}",
                    self.max_meta_overall_size
                ));
            }
        }
        Ok(())
    }
}

/// Swift's `check_utf8`: valid UTF-8 with no NUL.
pub fn is_clean_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(target: MetaTarget, headers: &[(&str, &[u8])]) -> Result<(), String> {
        Constraints::default().check_metadata(target, headers.iter().copied())
    }

    #[test]
    fn limits_at_the_edge_and_one_past() {
        let name_ok = "n".repeat(128);
        let name_long = "n".repeat(129);
        let h_ok = format!("X-Object-Meta-{name_ok}");
        let h_long = format!("X-Object-Meta-{name_long}");
        assert!(check(MetaTarget::Object, &[(&h_ok, b"v")]).is_ok());
        let e = check(MetaTarget::Object, &[(&h_long, b"v")]).unwrap_err();
        assert_eq!(
            e,
            format!(
                "Metadata name too long: X-Object-Meta-{}",
                "N".to_string() + &name_long[1..]
            )
        );

        let v_ok = vec![b'v'; 256];
        let v_long = vec![b'v'; 257];
        assert!(check(MetaTarget::Object, &[("X-Object-Meta-A", &v_ok)]).is_ok());
        let e = check(MetaTarget::Object, &[("x-object-meta-a", &v_long)]).unwrap_err();
        assert_eq!(e, "Metadata value longer than 256: X-Object-Meta-A");

        let names: Vec<String> = (0..91).map(|i| format!("x-object-meta-k{i}")).collect();
        let at: Vec<(&str, &[u8])> = names[..90]
            .iter()
            .map(|n| (n.as_str(), &b"v"[..]))
            .collect();
        assert!(check(MetaTarget::Object, &at).is_ok());
        let past: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"v"[..])).collect();
        assert_eq!(
            check(MetaTarget::Object, &past).unwrap_err(),
            "Too many metadata items; max 90"
        );

        // 4096 bytes of key + value in all is allowed, 4097 is not.
        let big = vec![b'x'; 256];
        let keys: Vec<String> = (0..16)
            .map(|i| format!("x-container-meta-{i:02}"))
            .collect();
        let mut hs: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), &big[..254])).collect();
        assert!(check(MetaTarget::Container, &hs).is_ok()); // 16 * (2 + 254) = 4096
        let tail = "x-container-meta-z";
        hs.push((tail, b""));
        let e = check(MetaTarget::Container, &hs).unwrap_err();
        assert_eq!(e, "Total metadata too large; max 4096");
    }

    #[test]
    fn header_too_long_and_empty_name() {
        let long = vec![b'v'; 8193];
        let e = check(MetaTarget::Object, &[("x-foo", &long)]).unwrap_err();
        assert_eq!(e, "Header value too long: X-Foo");
        let e = check(MetaTarget::Account, &[("X-Account-Meta-", b"v")]).unwrap_err();
        assert_eq!(e, "Metadata name cannot be empty");
    }

    /// One of the old copies checked UTF-8 for objects too, another never: Swift checks it
    /// for accounts and containers only.
    #[test]
    fn utf8_is_required_for_account_and_container_metadata_only() {
        let bad: &[u8] = b"\xff\xfe";
        for t in [MetaTarget::Account, MetaTarget::Container] {
            let prefix = t.prefix();
            let name = format!("{prefix}k");
            assert_eq!(
                check(t, &[(&name, bad)]).unwrap_err(),
                "Metadata must be valid UTF-8"
            );
            assert!(check(t, &[(&name, b"a\0b")]).is_err());
        }
        assert!(check(MetaTarget::Object, &[("x-object-meta-k", bad)]).is_ok());
    }

    #[test]
    fn overrides_from_swift_conf() {
        let conf = Conf::parse(
            "[swift-constraints]\nmax_meta_count = 5\nvalid_api_versions = v1, v2\n",
            Path::new("swift.conf"),
        )
        .unwrap();
        let c = Constraints::from_conf(&conf).unwrap();
        assert_eq!(c.max_meta_count, 5);
        assert_eq!(c.max_header_count(), 41);
        assert_eq!(c.valid_api_versions, vec!["v1", "v2"]);
        let bad = Conf::parse(
            "[swift-constraints]\nmax_file_size = big\n",
            Path::new("s.conf"),
        )
        .unwrap();
        let e = Constraints::from_conf(&bad).unwrap_err().to_string();
        assert!(e.contains("max_file_size") && e.contains("big"), "{e}");
    }
}

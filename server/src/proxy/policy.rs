//! Storage policies and API constraints, both from `swift.conf`.
//!
//! Policies are the `[storage-policy:N]` sections: index N is what travels to the
//! backends as `X-Backend-Storage-Policy-Index` and picks the ring `object.ring.gz`
//! (N = 0) or `object-N.ring.gz`. Clients name policies (or an alias) in
//! `X-Storage-Policy` when they create a container. Unlike Swift 2.38, which loads the
//! policies from `/etc/swift/swift.conf` at import time whatever `swift_dir` says, these
//! come from the configured `swift_dir` (see docs/differences.md).
//!
//! Constraints are Swift's defaults, overridable in `[swift-constraints]`; they are
//! enforced by the proxy and published by `/info`.

use std::path::Path;

use crate::conf::{Conf, ConfError};

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub index: u32,
    pub name: String,
    pub aliases: Vec<String>,
    pub default: bool,
    pub deprecated: bool,
    pub policy_type: String,
}

#[derive(Clone, Debug)]
pub struct Policies {
    pub list: Vec<Policy>,
}

impl Policies {
    pub fn load(swift_dir: &Path) -> Result<Policies, ConfError> {
        let path = swift_dir.join("swift.conf");
        let conf = Conf::load(&path)?;
        Self::from_conf(&conf)
    }

    pub fn from_conf(conf: &Conf) -> Result<Policies, ConfError> {
        let mut list = Vec::new();
        for name in conf.section_names() {
            let Some(idx) = name.strip_prefix("storage-policy:") else {
                continue;
            };
            let sec = conf.section(name);
            let index: u32 = idx.trim().parse().map_err(|_| ConfError::Value {
                path: conf.path.clone(),
                section: name.to_string(),
                key: "index".into(),
                message: format!("policy index {idx:?} is not a non-negative integer"),
            })?;
            let pname = sec.str_or("name", &format!("Policy-{index}"));
            let mut aliases = vec![pname.clone()];
            if let Some(a) = sec.get("aliases") {
                for alias in a.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    if !aliases.iter().any(|x| x.eq_ignore_ascii_case(alias)) {
                        aliases.push(alias.to_string());
                    }
                }
            }
            let policy_type = sec.str_or("policy_type", "replication");
            if policy_type != "replication" {
                return Err(ConfError::Value {
                    path: conf.path.clone(),
                    section: name.to_string(),
                    key: "policy_type".into(),
                    message: format!("policy type {policy_type:?} is not supported by the Ringsmith proxy (replication only)"),
                });
            }
            list.push(Policy {
                index,
                name: pname,
                aliases,
                default: sec.bool_or("default", false)?,
                deprecated: sec.bool_or("deprecated", false)?,
                policy_type,
            });
        }
        list.sort_by_key(|p| p.index);
        if list.is_empty() {
            // Swift's implicit single policy.
            list.push(Policy {
                index: 0,
                name: "Policy-0".into(),
                aliases: vec!["Policy-0".into()],
                default: true,
                deprecated: false,
                policy_type: "replication".into(),
            });
        }
        if !list.iter().any(|p| p.default) {
            if list.len() == 1 || list[0].index == 0 {
                list[0].default = true;
            } else {
                return Err(ConfError::Value {
                    path: conf.path.clone(),
                    section: "storage-policy".into(),
                    key: "default".into(),
                    message: "no policy is marked default = yes".into(),
                });
            }
        }
        Ok(Policies { list })
    }

    pub fn default_policy(&self) -> &Policy {
        self.list
            .iter()
            .find(|p| p.default)
            .unwrap_or(&self.list[0])
    }

    pub fn by_name(&self, name: &str) -> Option<&Policy> {
        self.list.iter().find(|p| {
            p.aliases
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name.trim()))
        })
    }

    pub fn by_index(&self, index: u32) -> Option<&Policy> {
        self.list.iter().find(|p| p.index == index)
    }

    pub fn ring_name(index: u32) -> String {
        if index == 0 {
            "object".into()
        } else {
            format!("object-{index}")
        }
    }
}

/// Swift's `constraints.py` values.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Constraints {
    pub max_file_size: u64,
    pub max_meta_name_length: usize,
    pub max_meta_value_length: usize,
    pub max_meta_count: usize,
    pub max_meta_overall_size: usize,
    pub max_header_size: usize,
    pub max_object_name_length: usize,
    pub container_listing_limit: usize,
    pub account_listing_limit: usize,
    pub max_account_name_length: usize,
    pub max_container_name_length: usize,
    pub extra_header_count: usize,
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
            max_object_name_length: 1024,
            container_listing_limit: 10_000,
            account_listing_limit: 10_000,
            max_account_name_length: 256,
            max_container_name_length: 256,
            extra_header_count: 0,
        }
    }
}

impl Constraints {
    pub fn from_conf(conf: &Conf) -> Result<Constraints, ConfError> {
        let s = conf.section("swift-constraints");
        let d = Constraints::default();
        Ok(Constraints {
            max_file_size: s.parse_or("max_file_size", d.max_file_size)?,
            max_meta_name_length: s.parse_or("max_meta_name_length", d.max_meta_name_length)?,
            max_meta_value_length: s.parse_or("max_meta_value_length", d.max_meta_value_length)?,
            max_meta_count: s.parse_or("max_meta_count", d.max_meta_count)?,
            max_meta_overall_size: s.parse_or("max_meta_overall_size", d.max_meta_overall_size)?,
            max_header_size: s.parse_or("max_header_size", d.max_header_size)?,
            max_object_name_length: s
                .parse_or("max_object_name_length", d.max_object_name_length)?,
            container_listing_limit: s
                .parse_or("container_listing_limit", d.container_listing_limit)?,
            account_listing_limit: s.parse_or("account_listing_limit", d.account_listing_limit)?,
            max_account_name_length: s
                .parse_or("max_account_name_length", d.max_account_name_length)?,
            max_container_name_length: s
                .parse_or("max_container_name_length", d.max_container_name_length)?,
            extra_header_count: s.parse_or("extra_header_count", d.extra_header_count)?,
        })
    }

    /// `check_metadata`: the `X-<type>-Meta-*` headers of a write, or a 400 message.
    pub fn check_metadata<'a>(
        &self,
        target: &str,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), String> {
        let prefix = format!("x-{target}-meta-");
        let (mut count, mut size) = (0usize, 0usize);
        for (name, value) in headers {
            if value.len() > self.max_header_size {
                return Err(format!("Header value too long: {name}"));
            }
            let lower = name.to_ascii_lowercase();
            let Some(key) = lower.strip_prefix(&prefix) else {
                continue;
            };
            if key.is_empty() {
                return Err("Metadata name cannot be empty".into());
            }
            count += 1;
            size += key.len() + value.len();
            if key.len() > self.max_meta_name_length {
                return Err(format!("Metadata name too long: {prefix}{key}"));
            }
            if value.len() > self.max_meta_value_length {
                return Err(format!(
                    "Metadata value longer than {}: {prefix}{key}",
                    self.max_meta_value_length
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_from_swift_conf() {
        let conf = Conf::parse(
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:1]\nname = silver\naliases = ag, cheap\n",
            Path::new("swift.conf"),
        )
        .unwrap();
        let p = Policies::from_conf(&conf).unwrap();
        assert_eq!(p.default_policy().name, "gold");
        assert_eq!(p.by_name("CHEAP").unwrap().index, 1);
        assert!(p.by_name("bronze").is_none());
        assert_eq!(Policies::ring_name(1), "object-1");
    }

    #[test]
    fn metadata_limits() {
        let c = Constraints::default();
        let long = "v".repeat(257);
        let hs = [("X-Object-Meta-Color", long.as_bytes())];
        let err = c
            .check_metadata("object", hs.iter().map(|(k, v)| (*k, *v)))
            .unwrap_err();
        assert!(err.contains("longer than 256"), "{err}");
        let ok = [("X-Object-Meta-Color", &b"blue"[..])];
        assert!(c
            .check_metadata("object", ok.iter().map(|(k, v)| (*k, *v)))
            .is_ok());
    }
}

//! Storage policies from `swift.conf` (`[storage-policy:N]` sections).
//!
//! Policy 0 always exists: when `swift.conf` declares no policy it is `Policy-0`, as in
//! Swift. The policy index picks the object data directory (`objects` for 0,
//! `objects-N` otherwise) and the ring (`object.ring.gz`, `object-N.ring.gz`).

use crate::conf::{Conf, ConfError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub index: u32,
    pub name: String,
    pub aliases: Vec<String>,
    pub is_default: bool,
    pub deprecated: bool,
    pub policy_type: String,
}

impl Policy {
    /// `objects`, `objects-1`, … and likewise for `async_pending`, `tmp`, `quarantined/objects`.
    pub fn dir(&self, base: &str) -> String {
        if self.index == 0 {
            base.to_string()
        } else {
            format!("{base}-{}", self.index)
        }
    }

    pub fn ring_name(&self) -> String {
        self.dir("object")
    }
}

#[derive(Clone, Debug)]
pub struct Policies {
    pub policies: Vec<Policy>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            policies: vec![Policy {
                index: 0,
                name: "Policy-0".into(),
                aliases: vec![],
                is_default: true,
                deprecated: false,
                policy_type: "replication".into(),
            }],
        }
    }
}

impl Policies {
    pub fn from_swift_conf(conf: &Conf) -> Result<Policies, ConfError> {
        let mut policies = Vec::new();
        for section in conf.section_names() {
            let Some(idx) = section.strip_prefix("storage-policy:") else {
                continue;
            };
            let index: u32 = idx.trim().parse().map_err(|_| ConfError::Value {
                path: conf.path.clone(),
                section: section.to_string(),
                key: "index".into(),
                message: format!("invalid storage policy index {idx:?}"),
            })?;
            let s = conf.section(section);
            let name = s
                .get("name")
                .map(str::to_string)
                .unwrap_or_else(|| format!("Policy-{index}"));
            policies.push(Policy {
                index,
                aliases: s
                    .get("aliases")
                    .map(|a| {
                        a.split(',')
                            .map(|x| x.trim().to_string())
                            .filter(|x| !x.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
                name,
                is_default: s.bool_or("default", false)?,
                deprecated: s.bool_or("deprecated", false)?,
                policy_type: s.str_or("policy_type", "replication"),
            });
        }
        if policies.is_empty() {
            return Ok(Policies::default());
        }
        if !policies.iter().any(|p| p.index == 0) {
            policies.push(Policy {
                index: 0,
                name: "Policy-0".into(),
                aliases: vec![],
                is_default: false,
                deprecated: false,
                policy_type: "replication".into(),
            });
        }
        policies.sort_by_key(|p| p.index);
        if !policies.iter().any(|p| p.is_default) {
            // Swift makes the only policy, or policy 0, the default.
            policies[0].is_default = true;
        }
        Ok(Policies { policies })
    }

    pub fn get(&self, index: u32) -> Option<&Policy> {
        self.policies.iter().find(|p| p.index == index)
    }

    pub fn default_policy(&self) -> &Policy {
        self.policies
            .iter()
            .find(|p| p.is_default)
            .unwrap_or(&self.policies[0])
    }

    /// The policy named by `X-Backend-Storage-Policy-Index`, policy 0 when absent; the
    /// error is Swift's 503 message.
    pub fn from_header(&self, value: Option<&str>) -> Result<&Policy, String> {
        match value {
            None => self
                .get(0)
                .ok_or_else(|| "No policy with index 0".to_string()),
            Some(v) => {
                let idx: u32 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("No policy with index {v}"))?;
                self.get(idx)
                    .ok_or_else(|| format!("No policy with index {v}"))
            }
        }
    }

    /// The name of a policy index, `Policy-N` for an unknown one.
    pub fn name_of(&self, index: u32) -> String {
        self.get(index)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("Policy-{index}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_policies() {
        let c = Conf::parse(
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:2]\nname = silver\naliases = s, ag\n",
            Path::new("swift.conf"),
        )
        .unwrap();
        let p = Policies::from_swift_conf(&c).unwrap();
        assert_eq!(p.default_policy().name, "gold");
        assert_eq!(p.get(2).unwrap().dir("objects"), "objects-2");
        assert_eq!(p.get(2).unwrap().aliases, vec!["s", "ag"]);
        assert!(p.from_header(Some("5")).is_err());
        assert_eq!(p.from_header(None).unwrap().index, 0);
        let empty = Policies::from_swift_conf(&Conf::default()).unwrap();
        assert_eq!(empty.name_of(0), "Policy-0");
    }
}

//! Storage policies: the `[storage-policy:N]` sections of `swift.conf`.
//!
//! Index N travels to the backends as `X-Backend-Storage-Policy-Index`, picks the ring
//! (`object.ring.gz` for 0, `object-N.ring.gz` otherwise) and the data directories
//! (`objects`, `objects-N`). Clients name a policy, or one of its aliases, in
//! `X-Storage-Policy` when they create a container.
//!
//! The collection is validated as Swift's `StoragePolicyCollection` is, so a `swift.conf`
//! that Swift refuses is refused here too, with Swift's reason:
//! - no section at all means Swift's implicit `Policy-0`, the default;
//! - any other set must include index 0, have unique indexes and (case-insensitively)
//!   unique names, and exactly one default unless there is only one policy;
//! - names are required, made of letters, digits and `-`, and `Policy-0` belongs to
//!   index 0; a deprecated policy cannot be the default, and not all may be deprecated;
//! - an option Swift does not know in a policy section is an error.
//!
//! Erasure-coded policies carry their `ec_*` parameters, validated as Swift does, with
//! the `ec_type`s Ringsmith implements named in the error for any other.

use std::path::Path;

use super::conf::{is_false, is_true, Conf, ConfError};

/// Swift's name for the implicit policy 0.
pub const LEGACY_POLICY_NAME: &str = "Policy-0";

/// The erasure-code backends Ringsmith implements (the pyeclib names).
pub const SUPPORTED_EC_TYPES: [&str; 3] =
    ["liberasurecode_rs_vand", "isa_l_rs_vand", "isa_l_rs_cauchy"];

/// Swift's default `ec_object_segment_size`.
pub const DEFAULT_EC_SEGMENT_SIZE: u64 = 1_048_576;

/// Parameters of an erasure-coded policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcParams {
    pub ec_type: String,
    pub ndata: u32,
    pub nparity: u32,
    pub segment_size: u64,
    pub duplication_factor: u32,
}

impl EcParams {
    /// Fragments per object, duplicates included: the ring's replica count.
    pub fn fragments(&self) -> u32 {
        (self.ndata + self.nparity) * self.duplication_factor
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyType {
    Replication,
    ErasureCoding(EcParams),
}

impl PolicyType {
    /// The `policy_type` value of `swift.conf`.
    pub fn name(&self) -> &'static str {
        match self {
            PolicyType::Replication => "replication",
            PolicyType::ErasureCoding(_) => "erasure_coding",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub index: u32,
    /// Swift's `alias_list`: the primary name first, then the aliases.
    pub aliases: Vec<String>,
    pub is_default: bool,
    pub deprecated: bool,
    pub policy_type: PolicyType,
}

impl Policy {
    /// The implicit policy of a `swift.conf` without policy sections.
    pub fn legacy() -> Policy {
        Policy {
            index: 0,
            aliases: vec![LEGACY_POLICY_NAME.into()],
            is_default: true,
            deprecated: false,
            policy_type: PolicyType::Replication,
        }
    }

    pub fn name(&self) -> &str {
        &self.aliases[0]
    }

    /// `objects`, `objects-1`, … and likewise for `async_pending`, `tmp`, `object`.
    pub fn dir(&self, base: &str) -> String {
        policy_string(base, self.index)
    }

    /// `object` or `object-N`: the ring's file stem.
    pub fn ring_name(&self) -> String {
        policy_string("object", self.index)
    }

    pub fn is_replication(&self) -> bool {
        self.policy_type == PolicyType::Replication
    }

    /// Swift's ring validation hook (`ECStoragePolicy.validate_ring_data`), run whenever
    /// a server loads or reloads this policy's object ring: an erasure-coded policy needs
    /// exactly `(k + m) * ec_duplication_factor` replicas, because the index of a node in
    /// the primary list is the fragment index it stores. Replicated policies accept any
    /// count. `replica_count` is the ring's (possibly fractional) count; the error is
    /// Swift's `RingLoadError` message.
    pub fn validate_ring_replicas(&self, replica_count: f64) -> Result<(), String> {
        let PolicyType::ErasureCoding(ec) = &self.policy_type else {
            return Ok(());
        };
        let required = ec.fragments();
        if replica_count == f64::from(required) {
            return Ok(());
        }
        // Swift formats the count with `%s`: a float (`5.0`, `6.5`), or the int 0 of an
        // empty ring.
        let got = if replica_count == 0.0 {
            "0".to_string()
        } else {
            crate::pyjson::py_float_repr(replica_count)
        };
        Err(format!(
            "EC ring for policy {} needs to be configured with exactly {required} replicas. Got {got}.",
            self.name()
        ))
    }

    /// Is `name` (case-insensitively) one of this policy's names?
    pub fn has_name(&self, name: &str) -> bool {
        self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// Swift's `get_policy_string`: `base` for index 0, `base-N` otherwise.
pub fn policy_string(base: &str, index: u32) -> String {
    if index == 0 {
        base.to_string()
    } else {
        format!("{base}-{index}")
    }
}

/// A validated set of policies, sorted by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies {
    list: Vec<Policy>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            list: vec![Policy::legacy()],
        }
    }
}

/// Why a `swift.conf` has no valid policy set; the text is Swift's reason.
#[derive(Debug, thiserror::Error)]
#[error("Invalid Storage Policy Configuration in {path} ({reason})")]
pub struct PolicyError {
    pub path: String,
    pub reason: String,
}

const COMMON_OPTIONS: [&str; 6] = [
    "name",
    "aliases",
    "policy_type",
    "default",
    "deprecated",
    "diskfile_module",
];
const EC_OPTIONS: [&str; 5] = [
    "ec_type",
    "ec_num_data_fragments",
    "ec_num_parity_fragments",
    "ec_object_segment_size",
    "ec_duplication_factor",
];

impl Policies {
    /// Reads the policies of `<swift_dir>/swift.conf`; a missing file means the legacy
    /// policy, as in Swift.
    pub fn load(swift_dir: &Path) -> Result<Policies, ConfError> {
        let path = swift_dir.join("swift.conf");
        if !path.exists() {
            return Ok(Policies::default());
        }
        Policies::from_conf(&Conf::load(&path)?)
    }

    pub fn from_conf(conf: &Conf) -> Result<Policies, ConfError> {
        Self::parse(conf).map_err(|reason| ConfError::Invalid {
            path: conf.path.clone(),
            message: format!("Invalid Storage Policy Configuration ({reason})"),
        })
    }

    fn parse(conf: &Conf) -> Result<Policies, String> {
        let mut list: Vec<Policy> = Vec::new();
        for section_name in conf.section_names() {
            let Some(idx) = section_name.strip_prefix("storage-policy:") else {
                continue;
            };
            let policy = parse_policy(idx, &conf.own_section(section_name))?;
            if let Some(other) = list.iter().find(|p| p.index == policy.index) {
                return Err(format!(
                    "Duplicate index {} conflicts with {}",
                    policy.index,
                    other.name()
                ));
            }
            for name in &policy.aliases {
                if let Some(other) = list.iter().find(|p| p.has_name(name)) {
                    return Err(format!(
                        "Duplicate name {name} conflicts with {}",
                        other.name()
                    ));
                }
            }
            if policy.is_default {
                if let Some(other) = list.iter().find(|p| p.is_default) {
                    return Err(format!(
                        "Duplicate default {} conflicts with {}",
                        policy.name(),
                        other.name()
                    ));
                }
            }
            list.push(policy);
        }
        if list.is_empty() {
            return Ok(Policies::default());
        }
        if !list.iter().any(|p| p.index == 0) {
            return Err(
                "You must specify a storage policy section for policy index 0 in \
                        order to define multiple policies"
                    .into(),
            );
        }
        if list.iter().all(|p| p.deprecated) {
            return Err("Unable to find policy that's not deprecated!".into());
        }
        list.sort_by_key(|p| p.index);
        if !list.iter().any(|p| p.is_default) {
            if list.len() > 1 {
                return Err("Unable to find default policy".into());
            }
            list[0].is_default = true;
        }
        Ok(Policies { list })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.list.iter()
    }

    pub fn get(&self, index: u32) -> Option<&Policy> {
        self.list.iter().find(|p| p.index == index)
    }

    /// By name or alias, case-insensitively, as Swift's `get_by_name`.
    pub fn by_name(&self, name: &str) -> Option<&Policy> {
        self.list.iter().find(|p| p.has_name(name.trim()))
    }

    /// Swift's `get_by_name_or_index`: a string of digits is an index, else a name.
    pub fn by_name_or_index(&self, wanted: &str) -> Option<&Policy> {
        if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(p) = wanted.parse().ok().and_then(|i| self.get(i)) {
                return Some(p);
            }
        }
        self.by_name(wanted)
    }

    pub fn default_policy(&self) -> &Policy {
        self.list
            .iter()
            .find(|p| p.is_default)
            .expect("validated: one policy is the default")
    }

    /// The policy named by `X-Backend-Storage-Policy-Index`, policy 0 when absent; the
    /// error is Swift's 503 message.
    pub fn from_header(&self, value: Option<&str>) -> Result<&Policy, String> {
        let unknown = |v: &str| format!("No policy with index {v}");
        match value {
            None => self.get(0).ok_or_else(|| unknown("0")),
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .and_then(|i| self.get(i))
                .ok_or_else(|| unknown(v)),
        }
    }

    /// The name of a policy index, `Policy-N` for an unknown one.
    pub fn name_of(&self, index: u32) -> String {
        self.get(index)
            .map(|p| p.name().to_string())
            .unwrap_or_else(|| format!("Policy-{index}"))
    }
}

fn parse_policy(idx: &str, options: &[(String, String)]) -> Result<Policy, String> {
    let index: u32 = idx
        .trim()
        .parse()
        .map_err(|_| format!("Invalid index, for index {idx:?}"))?;
    let get = |key: &str| {
        options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let policy_type = get("policy_type").unwrap_or("replication");
    let is_ec = match policy_type {
        "replication" => false,
        "erasure_coding" => true,
        other => return Err(format!("Invalid type, for index {other:?}")),
    };
    for (key, _) in options {
        let known =
            COMMON_OPTIONS.contains(&key.as_str()) || (is_ec && EC_OPTIONS.contains(&key.as_str()));
        if !known {
            return Err(format!(
                "Invalid option {key:?} in storage-policy section, for index {index}"
            ));
        }
    }
    let name = get("name").unwrap_or("");
    let mut aliases: Vec<String> = Vec::new();
    for alias in std::iter::once(name).chain(
        get("aliases")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != name),
    ) {
        validate_name(alias, index, &aliases)?;
        aliases.push(alias.to_string());
    }
    let flag = |key: &str| -> Result<bool, String> {
        match get(key) {
            None => Ok(false),
            Some(v) if is_true(v) => Ok(true),
            Some(v) if is_false(v) || v.trim().is_empty() => Ok(false),
            // Swift's config_true_value: anything not true is false.
            Some(_) => Ok(false),
        }
    };
    let (is_default, deprecated) = (flag("default")?, flag("deprecated")?);
    if is_default && deprecated {
        return Err(format!(
            "Deprecated policy can not be default.  Invalid config, for index {index}"
        ));
    }
    let policy_type = if is_ec {
        PolicyType::ErasureCoding(parse_ec(index, &aliases[0], deprecated, &get)?)
    } else {
        PolicyType::Replication
    };
    Ok(Policy {
        index,
        aliases,
        is_default,
        deprecated,
        policy_type,
    })
}

fn validate_name(name: &str, index: u32, taken: &[String]) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("Invalid name '', for index {index}"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "Names are used as HTTP headers, and can not reliably contain any characters \
             not in letters, digits and '-'. Invalid name {name:?}, for index {index}"
        ));
    }
    if name.eq_ignore_ascii_case(LEGACY_POLICY_NAME) && index != 0 {
        return Err(format!(
            "The name {LEGACY_POLICY_NAME} is reserved for policy index 0. Invalid name \
             {name:?}, for index {index}"
        ));
    }
    if taken.iter().any(|t| t.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "The name {name} is already assigned to this policy., for index {index}"
        ));
    }
    Ok(())
}

fn parse_ec<'a>(
    index: u32,
    name: &str,
    deprecated: bool,
    get: &impl Fn(&str) -> Option<&'a str>,
) -> Result<EcParams, String> {
    let ec_type = get("ec_type").ok_or("Missing ec_type")?.trim().to_string();
    if !SUPPORTED_EC_TYPES.contains(&ec_type.as_str()) {
        return Err(format!(
            "Wrong ec_type {ec_type} for policy {name}, should be one of \"{}\"",
            SUPPORTED_EC_TYPES.join(", ")
        ));
    }
    let positive = |key: &str, label: &str, default: Option<u64>| -> Result<u64, String> {
        let raw = get(key);
        match raw.map(|v| v.trim().parse::<u64>()) {
            Some(Ok(v)) if v > 0 => Ok(v),
            None if default.is_some() => Ok(default.unwrap_or_default()),
            _ => Err(format!(
                "Invalid {label} {:?}, for index {index}",
                raw.unwrap_or("None")
            )),
        }
    };
    let ndata = positive("ec_num_data_fragments", "ec_num_data_fragments", None)?;
    let nparity = positive("ec_num_parity_fragments", "ec_num_parity_fragments", None)?;
    let segment_size = positive(
        "ec_object_segment_size",
        "ec_object_segment_size",
        Some(DEFAULT_EC_SEGMENT_SIZE),
    )?;
    let duplication_factor = positive("ec_duplication_factor", "ec_duplication_factor", Some(1))?;
    if ec_type == "isa_l_rs_vand" && nparity >= 5 && !deprecated {
        return Err(format!(
            "Storage policy {name} uses an EC configuration known to harm data durability. \
             This policy MUST be deprecated."
        ));
    }
    let small = |v: u64, key: &str| {
        u32::try_from(v).map_err(|_| format!("Invalid {key} {v}, for index {index}"))
    };
    Ok(EcParams {
        ec_type,
        ndata: small(ndata, "ec_num_data_fragments")?,
        nparity: small(nparity, "ec_num_parity_fragments")?,
        segment_size,
        duplication_factor: small(duplication_factor, "ec_duplication_factor")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policies, String> {
        Conf::parse(text, Path::new("swift.conf"))
            .map_err(|e| e.to_string())
            .and_then(|c| Policies::from_conf(&c).map_err(|e| e.to_string()))
    }

    #[test]
    fn names_aliases_and_default() {
        let p = parse(
            "[swift-hash]\nswift_hash_path_suffix = x\n[storage-policy:0]\nname = gold\n\
             default = yes\n[storage-policy:2]\nname = silver\naliases = s, ag\n",
        )
        .unwrap();
        assert_eq!(p.default_policy().name(), "gold");
        assert_eq!(p.get(2).unwrap().dir("objects"), "objects-2");
        assert_eq!(p.get(2).unwrap().aliases, vec!["silver", "s", "ag"]);
        assert_eq!(p.by_name("AG").unwrap().index, 2);
        assert_eq!(p.by_name_or_index("2").unwrap().name(), "silver");
        assert!(p.from_header(Some("5")).is_err());
        assert_eq!(p.from_header(None).unwrap().index, 0);
        assert_eq!(p.name_of(7), "Policy-7");
    }

    #[test]
    fn no_sections_is_the_legacy_policy() {
        let p = parse("[swift-hash]\nswift_hash_path_suffix = x\n").unwrap();
        assert_eq!(p.iter().count(), 1);
        assert_eq!(p.default_policy().name(), "Policy-0");
        assert_eq!(p.default_policy().ring_name(), "object");
    }

    #[test]
    fn a_single_policy_is_the_default() {
        let p = parse("[storage-policy:0]\nname = only\n").unwrap();
        assert!(p.get(0).unwrap().is_default);
    }

    /// Where the old copies disagreed (one refused, one invented a policy 0), Swift
    /// refuses: policies without index 0 are an error.
    #[test]
    fn policies_without_index_zero_are_refused_as_in_swift() {
        let e =
            parse("[storage-policy:1]\nname = a\ndefault = yes\n[storage-policy:2]\nname = b\n")
                .unwrap_err();
        assert!(e.contains("policy index 0"), "{e}");
        let e = parse("[storage-policy:1]\nname = a\n[storage-policy:2]\nname = b\n").unwrap_err();
        assert!(e.contains("policy index 0"), "{e}");
    }

    #[test]
    fn swift_refusals() {
        for (conf, needle) in [
            (
                "[storage-policy:0]\nname = a\n[storage-policy:1]\nname = b\n",
                "Unable to find default policy",
            ),
            (
                "[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = A\n",
                "Duplicate name",
            ),
            ("[storage-policy:0]\n", "Invalid name ''"),
            ("[storage-policy:0]\nname = a b\n", "Invalid name"),
            (
                "[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = policy-0\n",
                "reserved for policy index 0",
            ),
            ("[storage-policy:x]\nname = a\n", "Invalid index"),
            ("[storage-policy:0]\nname = a\ncolour = red\n", "Invalid option"),
            (
                "[storage-policy:0]\nname = a\ndefault = yes\ndeprecated = yes\n",
                "Deprecated policy can not be default",
            ),
            (
                "[storage-policy:0]\nname = a\ndeprecated = yes\n",
                "not deprecated",
            ),
            (
                "[storage-policy:0]\nname = a\npolicy_type = mirrored\n",
                "Invalid type",
            ),
            (
                "[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = b\ndefault = yes\n",
                "Duplicate default",
            ),
        ] {
            let e = parse(conf).unwrap_err();
            assert!(e.contains(needle), "{conf:?}: {e}");
            assert!(e.contains("swift.conf"), "{e}");
        }
    }

    #[test]
    fn ec_rings_need_exactly_k_plus_m_times_duplication_replicas() {
        let conf = "[storage-policy:0]\nname = gold\ndefault = yes\n\
                    [storage-policy:1]\nname = ec42\npolicy_type = erasure_coding\n\
                    ec_type = isa_l_rs_cauchy\nec_num_data_fragments = 4\n\
                    ec_num_parity_fragments = 2\nec_duplication_factor = 2\n";
        let policies = parse(conf).unwrap();
        let ec = policies.get(1).unwrap();
        assert_eq!(ec.validate_ring_replicas(12.0), Ok(()));
        for (count, got) in [(6.0, "6.0"), (12.5, "12.5"), (13.0, "13.0"), (0.0, "0")] {
            assert_eq!(
                ec.validate_ring_replicas(count),
                Err(format!(
                    "EC ring for policy ec42 needs to be configured with exactly 12 replicas. Got {got}."
                ))
            );
        }
        // Replicated policies take any replica count.
        assert_eq!(policies.get(0).unwrap().validate_ring_replicas(2.5), Ok(()));
    }

    #[test]
    fn erasure_coding_policies_are_validated() {
        let base = "[storage-policy:0]\nname = rep\ndefault = yes\n[storage-policy:1]\nname = ec\npolicy_type = erasure_coding\n";
        let p = parse(&format!(
            "{base}ec_type = isa_l_rs_cauchy\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n"
        ))
        .unwrap();
        let PolicyType::ErasureCoding(ec) = &p.get(1).unwrap().policy_type else {
            panic!("not EC");
        };
        assert_eq!((ec.ndata, ec.nparity, ec.fragments()), (4, 2, 6));
        assert_eq!(ec.segment_size, DEFAULT_EC_SEGMENT_SIZE);
        for (extra, needle) in [
            ("", "Missing ec_type"),
            (
                "ec_type = jerasure_rs_vand\nec_num_data_fragments = 4\nec_num_parity_fragments = 2\n",
                "Wrong ec_type jerasure_rs_vand",
            ),
            (
                "ec_type = isa_l_rs_vand\nec_num_data_fragments = 0\nec_num_parity_fragments = 2\n",
                "Invalid ec_num_data_fragments",
            ),
            (
                "ec_type = isa_l_rs_vand\nec_num_data_fragments = 4\n",
                "Invalid ec_num_parity_fragments",
            ),
            (
                "ec_type = isa_l_rs_vand\nec_num_data_fragments = 10\nec_num_parity_fragments = 5\n",
                "MUST be deprecated",
            ),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
    }
}

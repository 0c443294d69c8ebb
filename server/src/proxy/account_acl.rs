//! tempauth's account ACLs: `X-Account-Access-Control`, a JSON object naming the users
//! and groups that get `admin` (owner rights), `read-write` (containers and objects, and
//! reading the account) or `read-only` (reading) access to an account. Owners set it; it
//! is stored as the account's sysmeta `X-Account-Sysmeta-Core-Access-Control` and shown
//! back to owners only.

use super::auth::Decision;

/// The header clients use.
pub const HEADER: &str = "x-account-access-control";
/// Where the account server keeps it.
pub const SYSMETA: &str = "x-account-sysmeta-core-access-control";

const KEYS: [&str; 3] = ["admin", "read-write", "read-only"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountAcls {
    pub admin: Vec<String>,
    pub read_write: Vec<String>,
    pub read_only: Vec<String>,
}

/// Swift's checks on a client's header; the error names the problem as Swift does.
pub fn validate(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(value)
    else {
        return Err(format!("Syntax error in input ({value:?})"));
    };
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "Key {} not recognized",
                serde_json::Value::from(key.as_str())
            ));
        }
    }
    for key in KEYS {
        let Some(v) = map.get(key) else { continue };
        let Some(list) = v.as_array() else {
            return Err(format!("Value for key \"{key}\" must be a list"));
        };
        if list.iter().any(|g| !g.is_string()) {
            return Err(format!("Elements of \"{key}\" list must be strings"));
        }
    }
    Ok(())
}

/// The 400 body Swift gives for an invalid header.
pub fn error_body(problem: &str, input: &str) -> String {
    format!("X-Account-Access-Control invalid: {problem}\n\nInput: {input}\n")
}

impl AccountAcls {
    /// The stored ACLs, or `None` when there are none (or they do not parse).
    pub fn parse(stored: &str) -> Option<AccountAcls> {
        let serde_json::Value::Object(map) = serde_json::from_str(stored).ok()? else {
            return None;
        };
        let list = |k: &str| -> Vec<String> {
            map.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let acls = AccountAcls {
            admin: list("admin"),
            read_write: list("read-write"),
            read_only: list("read-only"),
        };
        (!(acls.admin.is_empty() && acls.read_write.is_empty() && acls.read_only.is_empty()))
            .then_some(acls)
    }

    /// tempauth's last step: admin is an owner; read-write may do anything below the
    /// account and read it; read-only may read.
    pub fn decide(&self, groups: &[String], method: &str, below_account: bool) -> Decision {
        let has = |list: &[String]| groups.iter().any(|g| list.contains(g));
        let reading = matches!(method, "GET" | "HEAD");
        let read_write = has(&self.read_write) && (below_account || reading);
        let read_only = has(&self.read_only) && reading;
        if has(&self.admin) {
            Decision::Owner
        } else if read_write || read_only {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }
}

/// The stored value as owners see it: Swift's compact, key-sorted JSON.
pub fn display(stored: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(stored).ok()?;
    // Keys sorted, as Swift's `sort_keys=True` (serde_json here keeps insertion order).
    let serde_json::Value::Object(map) = v else {
        return serde_json::to_string(&v).ok();
    };
    // Cleared ACLs (`{}`) are not shown at all.
    if map.is_empty() {
        return None;
    }
    let sorted: std::collections::BTreeMap<String, serde_json::Value> = map.into_iter().collect();
    serde_json::to_string(&sorted).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_tempauth() {
        assert!(validate(r#"{"admin":["a:b"],"read-only":[]}"#).is_ok());
        assert!(validate("").is_ok());
        assert_eq!(
            validate("nope").unwrap_err(),
            "Syntax error in input (\"nope\")"
        );
        assert_eq!(
            validate(r#"{"admin":["a"],"boss":["b"]}"#).unwrap_err(),
            "Key \"boss\" not recognized"
        );
        assert_eq!(
            validate(r#"{"admin":"a"}"#).unwrap_err(),
            "Value for key \"admin\" must be a list"
        );
        assert_eq!(
            validate(r#"{"read-only":[1]}"#).unwrap_err(),
            "Elements of \"read-only\" list must be strings"
        );
    }

    #[test]
    fn decisions_follow_the_levels() {
        let acls = AccountAcls::parse(
            r#"{"admin":["test2:admin"],"read-write":["test2:rw"],"read-only":["test2:ro"]}"#,
        )
        .unwrap();
        let g = |u: &str| vec![u.to_string(), "test2".to_string()];
        assert_eq!(
            acls.decide(&g("test2:admin"), "DELETE", true),
            Decision::Owner
        );
        assert_eq!(acls.decide(&g("test2:rw"), "PUT", true), Decision::Allowed);
        assert_eq!(acls.decide(&g("test2:rw"), "POST", false), Decision::Denied);
        assert_eq!(acls.decide(&g("test2:rw"), "GET", false), Decision::Allowed);
        assert_eq!(acls.decide(&g("test2:ro"), "GET", true), Decision::Allowed);
        assert_eq!(acls.decide(&g("test2:ro"), "PUT", true), Decision::Denied);
        assert_eq!(
            acls.decide(&g("test2:other"), "GET", true),
            Decision::Denied
        );
        assert!(AccountAcls::parse(r#"{"admin":[]}"#).is_none());
        assert_eq!(display("{}"), None);
        assert_eq!(
            display(r#"{"read-only": ["x"], "admin": ["y"]}"#).unwrap(),
            r#"{"admin":["y"],"read-only":["x"]}"#
        );
    }
}

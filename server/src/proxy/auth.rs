//! tempauth: users from the proxy config, stateless signed tokens, and authorization
//! against account ownership and container ACLs.
//!
//! Swift's tempauth keeps tokens in memcache (or, without it, in Fernet-encrypted
//! tokens). Ringsmith's tokens are stateless and signed: `AUTH_tk` + hex of
//! `expiry\naccount\nuser` + an HMAC-SHA256 over that payload *and the user's current key*.
//! Any proxy holding the same `token_secret` validates any other's tokens (no shared cache
//! to run), tokens survive proxy restarts, and changing a user's key or deleting the user
//! revokes every token issued to them. The groups are looked up from the config at each
//! request, so removing `.admin` takes effect at once. Clients treat tokens as opaque, so
//! the format is ours to choose.
//!
//! Users are `user_<account>_<user> = <key> [group...] [storage_url]`
//! (and the base64 form `user64_<b64 account>_<b64 user>`), exactly as in Swift.
//! A user's groups are `account:user`, `account`, its configured groups, and — for
//! `.admin` users — the account's storage name under every reseller prefix (`AUTH_<account>`,
//! `SERVICE_<account>`), which is what makes it the owner. Authorization follows tempauth's
//! `authorize`: reseller admins everywhere, owners on their account (except account
//! PUT/DELETE; under a prefix with a `require_group`, only when a service token brought that
//! group), then the container ACL's referrers and groups.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::Sha256;

use ringsmith::swift::conf::{ConfError, Section};

#[derive(Clone, Debug)]
pub struct User {
    pub account: String,
    pub user: String,
    pub key: String,
    pub groups: Vec<String>,
    pub storage_url: Option<String>,
}

#[derive(Clone)]
pub struct TempAuth {
    /// The first of `reseller_prefixes`: tokens and storage URLs carry it.
    pub reseller_prefix: String,
    /// Every prefix of the accounts this tempauth answers for (`reseller_prefix = AUTH,
    /// SERVICE`), each with a trailing `_` unless empty.
    pub reseller_prefixes: Vec<String>,
    /// `<PREFIX>_require_group` (or `require_group` for all): an account owner of that
    /// prefix must also hold this group, typically through an `X-Service-Token`.
    require_groups: HashMap<String, String>,
    pub token_life: u64,
    users: HashMap<String, User>,
    secret: Vec<u8>,
}

/// Who a request is from, once its token checked out.
#[derive(Clone, Debug)]
pub struct Identity {
    pub account: String,
    pub user: String,
    /// tempauth's group list (REMOTE_USER).
    pub groups: Vec<String>,
}

impl Identity {
    pub fn is_reseller_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ".reseller_admin")
    }
}

/// Decodes the base64 of tempauth's `user64_<account>_<user>` keys, which Swift writes
/// with the `=` padding stripped (and decodes leniently, as `b64decode` does).
fn b64_decode(s: &str) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = base64::Engine::decode(&LENIENT, s.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Swift's `config_read_reseller_options` for the prefix list: comma-separated, `''`
/// for the empty prefix, a `_` appended, duplicates dropped; none at all means `''`.
pub fn reseller_prefixes(option: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in option.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p = match p {
            "''" => String::new(),
            p if p.ends_with('_') => p.to_string(),
            p => format!("{p}_"),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

impl TempAuth {
    /// Reads `[filter:tempauth]`. `token_secret` signs tokens; without it a random
    /// secret is drawn, so tokens die with the process (fine for one proxy, wrong for
    /// several behind a balancer — `cluster up` always writes one).
    pub fn from_section(sec: &Section) -> Result<TempAuth, ConfError> {
        let reseller_prefixes = reseller_prefixes(&sec.str_or("reseller_prefix", "AUTH"));
        let reseller_prefix = reseller_prefixes[0].clone();
        let require_groups = reseller_prefixes
            .iter()
            .filter_map(|p| {
                let own = sec.get(&format!(
                    "{}require_group",
                    if p.is_empty() { "''" } else { p }
                ));
                let group = own.or_else(|| sec.get("require_group"))?.trim().to_string();
                (!group.is_empty()).then(|| (p.clone(), group))
            })
            .collect();
        let token_life = sec.parse_or("token_life", 86400u64)?;
        let mut users = HashMap::new();
        for (key, value) in &sec.values {
            let (account, user) = if let Some(rest) = key.strip_prefix("user64_") {
                let Some((a, u)) = rest.split_once('_') else {
                    continue;
                };
                match (b64_decode(a), b64_decode(u)) {
                    (Some(a), Some(u)) => (a, u),
                    _ => {
                        return Err(ConfError::Value {
                            path: sec.path.clone(),
                            section: sec.name.clone(),
                            key: key.clone(),
                            message: "invalid base64 account or user".into(),
                        })
                    }
                }
            } else if let Some(rest) = key.strip_prefix("user_") {
                let Some((a, u)) = rest.split_once('_') else {
                    continue;
                };
                (a.to_string(), u.to_string())
            } else {
                continue;
            };
            let mut words = value.split_whitespace();
            let Some(pass) = words.next() else {
                return Err(ConfError::Value {
                    path: sec.path.clone(),
                    section: sec.name.clone(),
                    key: key.clone(),
                    message: "a user line needs a key".into(),
                });
            };
            // As Swift reads it: the last word is a storage URL if it looks like one
            // (`://` or `$HOST`); every other word is a group (`.admin`, `service`...).
            let mut groups: Vec<String> = words.map(str::to_string).collect();
            let storage_url = groups
                .last()
                .filter(|w| w.contains("://") || w.contains("$HOST"))
                .cloned();
            if storage_url.is_some() {
                groups.pop();
            }
            users.insert(
                format!("{account}:{user}"),
                User {
                    account,
                    user,
                    key: pass.to_string(),
                    groups,
                    storage_url,
                },
            );
        }
        let secret = match sec.get("token_secret") {
            Some(s) if !s.trim().is_empty() => s.trim().as_bytes().to_vec(),
            _ => {
                use rand::RngCore;
                let mut s = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut s);
                s
            }
        };
        Ok(TempAuth {
            reseller_prefix,
            reseller_prefixes,
            require_groups,
            token_life,
            users,
            secret,
        })
    }

    /// The reseller prefix `account` falls under: the first non-empty one it starts
    /// with, else the empty prefix if configured; `None` if this tempauth does not answer
    /// for it.
    pub fn account_prefix(&self, account: &str) -> Option<&str> {
        reseller_prefix_of(&self.reseller_prefixes, account)
    }

    pub fn account_name(&self, account: &str) -> String {
        format!("{}{}", self.reseller_prefix, account)
    }

    pub fn user(&self, account_user: &str) -> Option<&User> {
        self.users.get(account_user)
    }

    /// Checks `account:user` + key; on success returns a token valid for `token_life`.
    pub fn login(&self, account_user: &str, key: &str) -> Option<(String, u64, &User)> {
        let user = self.users.get(account_user)?;
        if !constant_time_eq(user.key.as_bytes(), key.as_bytes()) {
            return None;
        }
        let expires = now_secs() + self.token_life;
        Some((self.sign(user, expires), expires, user))
    }

    pub fn sign(&self, user: &User, expires: u64) -> String {
        let payload = format!("{expires}\n{}\n{}", user.account, user.user);
        let mac = hmac_sha256(
            &self.secret,
            &[payload.as_bytes(), b"\0", user.key.as_bytes()],
        );
        format!(
            "{}tk{}{}",
            self.reseller_prefix,
            hex::encode(payload.as_bytes()),
            hex::encode(&mac[..16])
        )
    }

    /// The identity behind a token, or `None` if it is forged, expired or revoked.
    pub fn validate(&self, token: &str) -> Option<Identity> {
        let body = token
            .strip_prefix(&self.reseller_prefix)?
            .strip_prefix("tk")?;
        if body.len() < 32 || body.len() > 4096 || !body.is_ascii() {
            return None;
        }
        let (payload_hex, mac_hex) = body.split_at(body.len() - 32);
        let payload = String::from_utf8(hex::decode(payload_hex).ok()?).ok()?;
        let mac = hex::decode(mac_hex).ok()?;
        let mut it = payload.splitn(3, '\n');
        let expires: u64 = it.next()?.parse().ok()?;
        let account = it.next()?;
        let user_name = it.next()?;
        let user = self.users.get(&format!("{account}:{user_name}"))?;
        let want = hmac_sha256(
            &self.secret,
            &[payload.as_bytes(), b"\0", user.key.as_bytes()],
        );
        if !constant_time_eq(&want[..16], &mac) || expires <= now_secs() {
            return None;
        }
        Some(self.identity(user))
    }

    pub fn identity(&self, user: &User) -> Identity {
        let mut groups = vec![
            format!("{}:{}", user.account, user.user),
            user.account.clone(),
        ];
        let mut admin = false;
        for g in &user.groups {
            if g == ".admin" {
                admin = true;
            } else {
                groups.push(g.clone());
            }
        }
        if admin {
            // An admin owns its account under every prefix (AUTH_test and SERVICE_test).
            for prefix in self.reseller_prefixes.iter().filter(|p| !p.is_empty()) {
                groups.push(format!("{prefix}{}", user.account));
            }
            let own = self.account_name(&user.account);
            if !groups.contains(&own) {
                groups.push(own);
            }
        }
        Identity {
            account: user.account.clone(),
            user: user.user.clone(),
            groups,
        }
    }
}

/// A parsed `X-Container-Read`/`X-Container-Write` value: referrer rules and groups.
#[derive(Debug, Default, PartialEq)]
pub struct Acl {
    pub referrers: Vec<String>,
    pub groups: Vec<String>,
}

/// Swift's `parse_acl` (v1 syntax): comma-separated; `.r:<host>`/`.referrer:` rules,
/// `.rlistings`, and plain group names (`account`, `account:user`).
pub fn parse_acl(value: Option<&str>) -> Acl {
    let mut acl = Acl::default();
    for item in value.unwrap_or("").split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        if let Some((kind, rest)) = item.split_once(':') {
            let k = kind.trim();
            if matches!(k, ".r" | ".ref" | ".referer" | ".referrer") {
                let rest = rest.trim();
                acl.referrers.push(rest.to_string());
                continue;
            }
        }
        acl.groups.push(item.to_string());
    }
    acl
}

/// Python's `repr()` of a string, as Swift's ACL errors quote the offending item.
fn py_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Swift's `clean_acl`, which tempauth applies to `X-Container-Read`/`-Write` before they
/// are stored: items trimmed and empty ones dropped, referrer designators (`.r`, `.ref`,
/// `.referer`, `.referrer`) normalised to `.r:`, a leading `*` of a domain dropped; an
/// error naming the item for a referrer in a write ACL, a referrer without a host, or an
/// unknown `.designator`.
pub fn clean_acl(name: &str, value: &str) -> Result<String, String> {
    let mut values = Vec::new();
    for raw in value.split(',') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Some((first, second)) = raw.split_once(':') else {
            values.push(raw.to_string());
            continue;
        };
        let (first, mut second) = (first.trim(), second.trim());
        if first.is_empty() || !first.starts_with('.') {
            values.push(raw.to_string());
        } else if matches!(first, ".r" | ".ref" | ".referer" | ".referrer") {
            if name.contains("write") {
                return Err(format!(
                    "Referrers not allowed in write ACL: {}",
                    py_repr(raw)
                ));
            }
            let negate = second.starts_with('-');
            if negate {
                second = second[1..].trim();
            }
            // Swift drops one leading `*` of a domain, so `**.` is stored as `*.`, which
            // its own clean_acl then refuses when a client sends the stored ACL back;
            // dropping all of them keeps a cleaned ACL clean.
            while second != "*" && second.starts_with('*') {
                second = second[1..].trim();
            }
            if second.is_empty() || second == "." {
                return Err(format!(
                    "No host/domain value after referrer designation in ACL: {}",
                    py_repr(raw)
                ));
            }
            values.push(format!(".r:{}{second}", if negate { "-" } else { "" }));
        } else {
            return Err(format!(
                "Unknown designator {} in ACL: {}",
                py_repr(first),
                py_repr(raw)
            ));
        }
    }
    Ok(values.join(","))
}

/// The host a `Referer` names, as Swift reads it (`urlparse(referer).hostname or
/// 'unknown'`): lower-cased, without user info, port or IPv6 brackets.
pub fn referrer_host(referer: Option<&str>) -> String {
    let r = referer.unwrap_or("");
    let after_scheme = match r.find(':') {
        Some(i)
            if r.as_bytes()[0].is_ascii_alphabetic()
                && r[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            &r[i + 1..]
        }
        _ => r,
    };
    let host = after_scheme
        .strip_prefix("//")
        .map(|net| {
            let netloc = net.split(['/', '?', '#']).next().unwrap_or("");
            let hostport = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
            match hostport.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => hostport.split(':').next().unwrap_or(""),
            }
            .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if host.is_empty() {
        "unknown".to_string()
    } else {
        host
    }
}

/// Swift's `referrer_allowed`: the last rule that matches the referrer's host decides;
/// `*` matches any host, `.domain` any host ending in it, `-rule` denies. A request
/// without a usable referrer has the host `unknown`, so an empty rule matches nothing.
pub fn referrer_allowed(referer: Option<&str>, referrers: &[String]) -> bool {
    if referrers.is_empty() {
        return false;
    }
    let host = referrer_host(referer);
    let mut allow = false;
    for mhost in referrers {
        let matches = |m: &str| m == host || (m.starts_with('.') && host.ends_with(m));
        match mhost.strip_prefix('-') {
            Some(m) => {
                if matches(m) {
                    allow = false;
                }
            }
            None => {
                if mhost == "*" || matches(mhost) {
                    allow = true;
                }
            }
        }
    }
    allow
}

/// The outcome of tempauth's `authorize`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Decision {
    /// Allowed, as the account's owner (may see and set ACLs).
    Owner,
    /// Allowed by an ACL.
    Allowed,
    Denied,
}

pub struct AuthzRequest<'a> {
    pub method: &'a str,
    pub account: &'a str,
    pub container: Option<&'a str>,
    pub object: Option<&'a str>,
    pub referer: Option<&'a str>,
    /// The container's read or write ACL, whichever the method needs.
    pub acl: Option<&'a str>,
}

pub fn authorize(auth: &TempAuth, identity: Option<&Identity>, req: &AuthzRequest<'_>) -> Decision {
    let Some(prefix) = auth.account_prefix(req.account) else {
        return Decision::Denied;
    };
    let groups: &[String] = identity.map(|i| i.groups.as_slice()).unwrap_or(&[]);
    let dot_account = req.account[prefix.len()..].starts_with('.');
    let bare_prefix = auth.reseller_prefixes.iter().any(|p| p == req.account);
    if groups.iter().any(|g| g == ".reseller_admin") && !bare_prefix && !dot_account {
        return Decision::Owner;
    }
    if groups.iter().any(|g| g == ".reseller_reader")
        && !bare_prefix
        && !dot_account
        && matches!(req.method, "GET" | "HEAD")
    {
        return Decision::Allowed;
    }
    if groups.iter().any(|g| g == req.account)
        && (!matches!(req.method, "PUT" | "DELETE") || req.container.is_some())
    {
        // An account whose prefix requires a group is owned only with that group too
        // (SERVICE_ accounts: the user's token plus a service's `X-Service-Token`).
        match auth.require_groups.get(prefix) {
            Some(required) if !groups.contains(required) => {}
            _ => return Decision::Owner,
        }
    }
    if req.method == "OPTIONS" {
        return Decision::Allowed;
    }
    let acl = parse_acl(req.acl);
    if referrer_allowed(req.referer, &acl.referrers)
        && (req.object.is_some() || acl.groups.iter().any(|g| g == ".rlistings"))
    {
        return Decision::Allowed;
    }
    if groups.iter().any(|g| acl.groups.contains(g)) {
        return Decision::Allowed;
    }
    Decision::Denied
}

/// Which of an auth filter's reseller prefixes `account` falls under, as Swift's tempauth
/// and keystoneauth both decide it: the first non-empty prefix it starts with, else the
/// empty prefix when one is configured.
pub fn reseller_prefix_of<'a>(prefixes: &'a [String], account: &str) -> Option<&'a str> {
    prefixes
        .iter()
        .filter(|p| !p.is_empty())
        .find(|p| account.starts_with(p.as_str()))
        .or_else(|| prefixes.iter().find(|p| p.is_empty()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringsmith::swift::conf::Conf;
    use std::path::Path;

    fn tempauth() -> TempAuth {
        let conf = Conf::parse(
            "[filter:tempauth]\nuser_test_tester = testing .admin\nuser_test_tester3 = testing3\nuser_test2_tester2 = testing2 .admin\nuser_admin_admin = admin .admin .reseller_admin\ntoken_secret = s3cret\n",
            Path::new("proxy.conf"),
        )
        .unwrap();
        TempAuth::from_section(&conf.section("filter:tempauth")).unwrap()
    }

    fn req<'a>(
        method: &'a str,
        account: &'a str,
        c: Option<&'a str>,
        acl: Option<&'a str>,
    ) -> AuthzRequest<'a> {
        AuthzRequest {
            method,
            account,
            container: c,
            object: None,
            referer: None,
            acl,
        }
    }

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let a = tempauth();
        let (tok, _, _) = a.login("test:tester", "testing").unwrap();
        assert!(tok.starts_with("AUTH_tk"));
        let id = a.validate(&tok).unwrap();
        assert!(id.groups.contains(&"AUTH_test".to_string()));
        assert!(a.login("test:tester", "wrong").is_none());
        // Claiming another account in the payload breaks the signature.
        let forged = tok.replacen(&hex::encode("test"), &hex::encode("tst2"), 1);
        assert!(a.validate(&forged).is_none());
        // Expired.
        let u = a.user("test:tester").unwrap().clone();
        assert!(a.validate(&a.sign(&u, now_secs() - 1)).is_none());
        // A different secret (another cluster) does not validate.
        let mut other = a.clone();
        other.secret = b"other".to_vec();
        assert!(other.validate(&tok).is_none());
    }

    #[test]
    fn ownership_and_acls() {
        let a = tempauth();
        let owner = a.identity(a.user("test:tester").unwrap());
        let plain = a.identity(a.user("test:tester3").unwrap());
        let other = a.identity(a.user("test2:tester2").unwrap());
        let reseller = a.identity(a.user("admin:admin").unwrap());
        let r = req("GET", "AUTH_test", Some("c"), None);
        assert_eq!(authorize(&a, Some(&owner), &r), Decision::Owner);
        assert_eq!(authorize(&a, Some(&plain), &r), Decision::Denied);
        assert_eq!(authorize(&a, Some(&other), &r), Decision::Denied);
        assert_eq!(authorize(&a, Some(&reseller), &r), Decision::Owner);
        assert_eq!(authorize(&a, None, &r), Decision::Denied);
        let r = req("GET", "AUTH_test", Some("c"), Some("test2:tester2"));
        assert_eq!(authorize(&a, Some(&other), &r), Decision::Allowed);
        let r = req("GET", "AUTH_test", Some("c"), Some(".r:*"));
        assert_eq!(
            authorize(&a, None, &r),
            Decision::Denied,
            "listing needs .rlistings"
        );
        let r = req("GET", "AUTH_test", Some("c"), Some(".r:*,.rlistings"));
        assert_eq!(authorize(&a, None, &r), Decision::Allowed);
        // Owners may not PUT/DELETE the account itself.
        let r = req("PUT", "AUTH_test", None, None);
        assert_eq!(authorize(&a, Some(&owner), &r), Decision::Denied);
    }

    #[test]
    fn referrers() {
        // `*.example.com` is stored as `.example.com` (clean_acl on write), then matches.
        let cleaned = clean_acl("x-container-read", ".r:*.example.com").unwrap();
        assert_eq!(cleaned, ".r:.example.com");
        let acl = parse_acl(Some(&cleaned));
        assert!(referrer_allowed(
            Some("http://blah.example.com/x"),
            &acl.referrers
        ));
        assert!(referrer_allowed(
            Some("http://www.example.com/x"),
            &[".example.com".into()]
        ));
        assert!(!referrer_allowed(
            Some("http://evil.com/"),
            &[".example.com".into()]
        ));
        assert!(!referrer_allowed(
            Some("http://bad.example.com/"),
            &["*".into(), "-bad.example.com".into()]
        ));
        // As Swift: a bare domain is not its own `.domain`, an empty rule matches no
        // referrer (a missing one is `unknown`), and hosts are read as urlparse reads them.
        assert!(!referrer_allowed(
            Some("http://example.com/"),
            &[".example.com".into()]
        ));
        assert!(!referrer_allowed(None, &["".into()]));
        assert!(!referrer_allowed(Some("no-scheme"), &["".into()]));
        assert!(referrer_allowed(None, &["unknown".into()]));
        assert_eq!(
            referrer_host(Some("HTTP://u:p@WWW.Example.com:8080/x?y")),
            "www.example.com"
        );
        assert_eq!(referrer_host(Some("http://[::1]:80/")), "::1");
        assert_eq!(referrer_host(Some("//host/p")), "host");
        assert_eq!(referrer_host(Some("http:///p")), "unknown");
    }

    #[test]
    fn acls_cleaned_as_swift_cleans_them() {
        let read = |v: &str| clean_acl("x-container-read", v);
        assert_eq!(
            read(" .ref:*.example.com , ,a:b,.rlistings").unwrap(),
            ".r:.example.com,a:b,.rlistings"
        );
        assert_eq!(read(".r:-bad.com").unwrap(), ".r:-bad.com");
        assert_eq!(read(".r:*").unwrap(), ".r:*");
        assert_eq!(
            read(".r:").unwrap_err(),
            "No host/domain value after referrer designation in ACL: '.r:'"
        );
        assert_eq!(
            read(".x:y").unwrap_err(),
            "Unknown designator '.x' in ACL: '.x:y'"
        );
        assert_eq!(
            clean_acl("x-container-write", ".r:*").unwrap_err(),
            "Referrers not allowed in write ACL: '.r:*'"
        );
    }

    /// Found by the `listing_and_acl` fuzz target: Swift stores `.r:-**.` as `.r:-*.`,
    /// which it then refuses when a client sends the stored ACL back.
    #[test]
    fn a_cleaned_acl_cleans_to_itself() {
        let read = |v: &str| clean_acl("x-container-read", v);
        assert!(read(".r:-**.").is_err());
        assert_eq!(read(".r:**.example.com").unwrap(), ".r:.example.com");
        assert_eq!(read(".r:**").unwrap(), ".r:*");
        for acl in [".r:**.example.com,.rlistings", ".r:-* *.a", "a:b,.r:--x"] {
            let once = read(acl).unwrap();
            assert_eq!(read(&once).unwrap(), once, "{acl}");
        }
    }

    use proptest::prelude::*;

    fn anonymous_get(acl: &str, referer: Option<&str>, object: bool) -> Decision {
        let a = tempauth();
        authorize(
            &a,
            None,
            &AuthzRequest {
                method: "GET",
                account: "AUTH_test",
                container: Some("c"),
                object: object.then_some("o"),
                referer,
                acl: Some(acl),
            },
        )
    }

    proptest! {
        // Any ACL text and referrer: an answer, never a panic.
        #[test]
        fn acl_parsing_never_panics(acl in ".{0,120}", referer in ".{0,60}") {
            let parsed = parse_acl(Some(&acl));
            let _ = referrer_allowed(Some(&referer), &parsed.referrers);
            let _ = referrer_host(Some(&referer));
            let _ = anonymous_get(&acl, Some(&referer), true);
            let _ = crate::proxy::account_acl::validate(&acl);
            let _ = crate::proxy::account_acl::AccountAcls::parse(&acl);
            // What cleaning keeps is clean: cleaning it again changes nothing.
            if let Ok(clean) = clean_acl("x-container-read", &acl) {
                prop_assert_eq!(clean_acl("x-container-read", &clean), Ok(clean.clone()));
            }
        }

        // Without a referrer, an anonymous caller gets in only through a rule that names
        // every host (`*`) or the `unknown` host, and a listing only with `.rlistings`.
        #[test]
        fn anonymous_access_needs_a_real_referrer_rule(
            acl in "([ ,.:*rlistngefu-]|\\.r:|\\.rlistings|unknown|[a-z]{1,3}){0,12}",
        ) {
            let parsed = parse_acl(Some(&acl));
            let opens_to_all = parsed
                .referrers
                .iter()
                .any(|r| r == "*" || r == "unknown");
            if anonymous_get(&acl, None, true) != Decision::Denied {
                prop_assert!(opens_to_all, "{acl:?} let an anonymous GET in");
            }
            if anonymous_get(&acl, None, false) != Decision::Denied {
                prop_assert!(opens_to_all && parsed.groups.iter().any(|g| g == ".rlistings"));
            }
        }

        // A user who is not the owner gets in only when the ACL names one of their groups
        // exactly, however the rest of the ACL is mangled.
        #[test]
        fn users_need_their_own_group_named(acl in "[ ,:a-z0-9.*-]{0,40}") {
            let a = tempauth();
            let user = a.identity(a.user("test2:tester2").unwrap());
            let d = authorize(
                &a,
                Some(&user),
                &AuthzRequest {
                    method: "PUT",
                    account: "AUTH_test",
                    container: Some("c"),
                    object: Some("o"),
                    referer: None,
                    acl: Some(&acl),
                },
            );
            if d != Decision::Denied {
                let parsed = parse_acl(Some(&acl));
                prop_assert!(user.groups.iter().any(|g| parsed.groups.contains(g)), "{acl:?}");
            }
        }

        // Account ACLs: only valid JSON naming the user's group grants anything.
        #[test]
        fn account_acls_grant_only_named_groups(text in "[{}\\[\\]\",:a-z0-9 -]{0,60}") {
            if let Some(acls) = crate::proxy::account_acl::AccountAcls::parse(&text) {
                let groups = vec!["test2:tester2".to_string(), "test2".to_string()];
                if acls.decide(&groups, "GET", true) != Decision::Denied {
                    let named = acls.admin.iter().chain(&acls.read_write).chain(&acls.read_only);
                    prop_assert!(named.into_iter().any(|g| groups.contains(g)));
                }
            }
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_and_user64_decodes_unpadded() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(b64_decode("dGVzdA").as_deref(), Some("test"));
        assert_eq!(b64_decode("dGVzdA==").as_deref(), Some("test"));
        assert_eq!(b64_decode("not base64!"), None);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn service_accounts_need_the_users_and_the_services_tokens() {
        let conf = Conf::parse(
            "[filter:tempauth]\nreseller_prefix = AUTH, SERVICE\nSERVICE_require_group = service\n\
             user_test_tester = testing .admin\nuser_test5_tester5 = testing5 service\n\
             user_x_y = k .admin http://127.0.0.1:1/v1/AUTH_x\ntoken_secret = s\n",
            Path::new("proxy.conf"),
        )
        .unwrap();
        let auth = TempAuth::from_section(&conf.section("filter:tempauth")).unwrap();
        assert_eq!(auth.reseller_prefixes, ["AUTH_", "SERVICE_"]);
        assert_eq!(auth.reseller_prefix, "AUTH_");
        let user = auth.identity(auth.user("test:tester").unwrap());
        assert!(user.groups.contains(&"AUTH_test".to_string()));
        assert!(user.groups.contains(&"SERVICE_test".to_string()));
        let service = auth.identity(auth.user("test5:tester5").unwrap());
        assert!(
            service.groups.contains(&"service".to_string()),
            "a plain word is a group"
        );
        let url_user = auth.user("x:y").unwrap();
        assert_eq!(
            url_user.storage_url.as_deref(),
            Some("http://127.0.0.1:1/v1/AUTH_x")
        );
        assert_eq!(url_user.groups, [".admin"]);

        let get = |account| AuthzRequest {
            method: "GET",
            account,
            container: Some("c"),
            object: None,
            referer: None,
            acl: None,
        };
        assert_eq!(
            authorize(&auth, Some(&user), &get("AUTH_test")),
            Decision::Owner
        );
        assert_eq!(
            authorize(&auth, Some(&user), &get("SERVICE_test")),
            Decision::Denied
        );
        let mut both = user.clone();
        both.groups.extend(service.groups.clone());
        assert_eq!(
            authorize(&auth, Some(&both), &get("SERVICE_test")),
            Decision::Owner
        );
        assert_eq!(
            authorize(&auth, Some(&service), &get("SERVICE_test")),
            Decision::Denied
        );
        assert_eq!(
            authorize(&auth, Some(&both), &get("OTHER_test")),
            Decision::Denied
        );
    }

    #[test]
    fn reseller_prefixes_read_as_swift_reads_them() {
        assert_eq!(reseller_prefixes("AUTH"), ["AUTH_"]);
        assert_eq!(
            reseller_prefixes(" AUTH_, SERVICE ,AUTH"),
            ["AUTH_", "SERVICE_"]
        );
        assert_eq!(reseller_prefixes("'', AUTH"), ["", "AUTH_"]);
        assert_eq!(reseller_prefixes(" , "), [""]);
    }
}

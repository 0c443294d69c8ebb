//! Swift's `keystoneauth` (`use = egg:swift#keystoneauth`): authorization for callers whose
//! identity `authtoken` confirmed. A Keystone project owns the account `<reseller_prefix>
//! <project id>` (`AUTH_<project id>`) when the caller's token carries one of the
//! `operator_roles` (by default `admin` and `swiftoperator`; with `service_roles`, only
//! together with a service token carrying one of those); the `reseller_admin_role` owns
//! every account. Container ACLs name `<project>:<user>` (ids, `*`, and names when every
//! domain involved is `default_domain_id`) or bare roles, and referrer rules (`.r:*`)
//! that also let anonymous callers in.
//!
//! Like Swift, the account's Keystone domain is remembered in its sysmeta
//! (`X-Account-Sysmeta-Project-Domain-Id`) when the account is created or posted to by
//! its project, so that names in ACLs of accounts from other domains are not trusted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method};
use ringsmith::swift::conf::{ConfError, Section};

use super::authtoken::KeystoneTokens;
use crate::proxy::auth::{
    parse_acl, referrer_allowed, reseller_prefixes, AuthzRequest, Decision, Identity,
};
use crate::proxy::env::{ApiPath, Authorize, AuthorizeOverride, Authorizer, RemoteUser};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, Proxy};

const DOMAIN_SYSMETA: &str = "x-account-sysmeta-project-domain-id";
const DOMAIN_HEADER: &str = "x-account-project-domain-id";
/// What the account's domain is recorded as when a token of another project created it.
const UNKNOWN_DOMAIN: &str = "_unknown";

/// The role lists that apply to the accounts of one reseller prefix, lower-cased.
#[derive(Clone, Debug, PartialEq)]
struct PrefixRules {
    operator_roles: Vec<String>,
    service_roles: Vec<String>,
    project_reader_roles: Vec<String>,
}

#[derive(Debug)]
pub struct KeystoneConf {
    reseller_prefixes: Vec<String>,
    rules: HashMap<String, PrefixRules>,
    reseller_admin_role: String,
    system_reader_roles: HashSet<String>,
    allow_overrides: bool,
    default_domain_id: String,
    allow_names_in_acls: bool,
}

/// A role list option: lower-cased, comma-separated, as Swift reads it (an empty value
/// leaves the default).
fn roles_option(section: &Section, key: &str) -> Option<Vec<String>> {
    let v = section.get(key).filter(|v| !v.is_empty())?;
    Some(
        v.to_lowercase()
            .split(',')
            .map(|r| r.trim().to_string())
            .collect(),
    )
}

impl KeystoneConf {
    pub fn from_section(s: &Section) -> Result<KeystoneConf, ConfError> {
        let reseller_prefixes = reseller_prefixes(&s.str_or("reseller_prefix", "AUTH"));
        let mut rules = HashMap::new();
        for prefix in &reseller_prefixes {
            let name = if prefix.is_empty() { "''" } else { prefix };
            let read = |option: &str, default: &[&str]| {
                roles_option(s, &format!("{name}{option}"))
                    .or_else(|| roles_option(s, option))
                    .unwrap_or_else(|| default.iter().map(|r| r.to_string()).collect())
            };
            rules.insert(
                prefix.clone(),
                PrefixRules {
                    operator_roles: read("operator_roles", &["admin", "swiftoperator"]),
                    service_roles: read("service_roles", &[]),
                    project_reader_roles: read("project_reader_roles", &[]),
                },
            );
        }
        if s.bool_or("is_admin", false)? {
            tracing::warn!("keystoneauth: the 'is_admin' option is no longer supported; remove it");
        }
        Ok(KeystoneConf {
            reseller_prefixes,
            rules,
            reseller_admin_role: s
                .str_or("reseller_admin_role", "ResellerAdmin")
                .to_lowercase(),
            system_reader_roles: s
                .str_or("system_reader_roles", "")
                .split(',')
                .map(|r| r.trim().to_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
            allow_overrides: s.bool_or("allow_overrides", true)?,
            default_domain_id: s.str_or("default_domain_id", "default"),
            allow_names_in_acls: s.bool_or("allow_names_in_acls", true)?,
        })
    }

    fn account_matches_project(&self, account: &str, project_id: Option<&str>) -> bool {
        let Some(project_id) = project_id else {
            return false;
        };
        self.reseller_prefixes
            .iter()
            .any(|p| account.strip_prefix(p.as_str()) == Some(project_id))
    }

    fn account_prefix(&self, account: &str) -> Option<&str> {
        crate::proxy::auth::reseller_prefix_of(&self.reseller_prefixes, account)
    }

    /// Whether the caller's domains let names in ACLs count (the account's own domain is
    /// checked separately).
    fn names_possible(&self, id: &KeystoneIdentity) -> bool {
        let default = |d: &Option<String>| d.as_ref().is_none_or(|d| *d == self.default_domain_id);
        self.allow_names_in_acls && default(&id.user_domain_id) && default(&id.project_domain_id)
    }
}

/// The caller as `authtoken` confirmed it (Swift's `keystone.identity`).
#[derive(Clone, Debug, Default)]
pub struct KeystoneIdentity {
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    /// As the token lists them (case kept).
    pub roles: Vec<String>,
    pub service_roles: Vec<String>,
    /// Known only from a v3 token.
    pub user_domain_id: Option<String>,
    pub project_domain_id: Option<String>,
}

fn csv(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// Swift's `_keystone_identity`: only a confirmed user token (and, if one came, a
/// confirmed service token) makes an identity.
fn keystone_identity(h: &HeaderMap, from_v3: bool) -> Option<KeystoneIdentity> {
    if header(h, "x-identity-status") != Some("Confirmed")
        || !matches!(
            header(h, "x-service-identity-status"),
            None | Some("Confirmed")
        )
    {
        return None;
    }
    let get = |name: &str| header(h, name).map(str::to_string);
    Some(KeystoneIdentity {
        user_id: get("x-user-id"),
        user_name: get("x-user-name"),
        project_id: get("x-project-id").or_else(|| get("x-tenant-id")),
        project_name: get("x-project-name").or_else(|| get("x-tenant-name")),
        roles: csv(header(h, "x-roles")),
        service_roles: csv(header(h, "x-service-roles")),
        user_domain_id: get("x-user-domain-id").filter(|_| from_v3),
        project_domain_id: get("x-project-domain-id").filter(|_| from_v3),
    })
}

/// What an account's sysmeta says of its project's domain: whether it exists, and the
/// recorded domain id.
#[derive(Clone, Debug)]
struct AccountDomain {
    account: String,
    exists: bool,
    domain_id: Option<String>,
}

/// One request's authorizer: the configuration, the caller, and what was looked up for it.
struct KeystoneAuthorizer {
    conf: Arc<KeystoneConf>,
    identity: Option<KeystoneIdentity>,
    account_domain: Option<AccountDomain>,
}

impl KeystoneAuthorizer {
    /// Swift's `_is_name_allowed_in_acl`.
    fn names_allowed(&self, id: &KeystoneIdentity, account: &str) -> bool {
        if !self.conf.names_possible(id) {
            return false;
        }
        if self
            .conf
            .account_matches_project(account, id.project_id.as_deref())
        {
            return true;
        }
        // Another project's account: only one known to be of the default domain (or
        // of no recorded domain, as accounts made before domains were recorded).
        self.account_domain.as_ref().is_some_and(|d| {
            d.account == account
                && d.exists
                && d.domain_id
                    .as_ref()
                    .is_none_or(|dom| *dom == self.conf.default_domain_id)
        })
    }

    /// Referrer ACLs: `Some(true)` lets the request in, `Some(false)` means a referrer
    /// matched where only a listing right would do, `None` that no referrer matched.
    fn referrer_decision(
        req: &AuthzRequest<'_>,
        referrers: &[String],
        groups: &[String],
    ) -> Option<bool> {
        if referrer_allowed(req.referer, referrers) {
            return Some(req.object.is_some() || groups.iter().any(|g| g == ".rlistings"));
        }
        None
    }

    fn anonymous(&self, req: &AuthzRequest<'_>) -> Decision {
        if req.method == "OPTIONS" {
            return Decision::Allowed;
        }
        if self.conf.account_prefix(req.account).is_none() {
            return Decision::Denied;
        }
        let acl = parse_acl(req.acl);
        match Self::referrer_decision(req, &acl.referrers, &acl.groups) {
            Some(true) => Decision::Allowed,
            _ => Decision::Denied,
        }
    }

    /// Swift's `KeystoneAuth.authorize`, step by step.
    fn confirmed(&self, id: &KeystoneIdentity, req: &AuthzRequest<'_>) -> Decision {
        if req.method == "OPTIONS" {
            return Decision::Allowed;
        }
        let roles: Vec<String> = id.roles.iter().map(|r| r.to_lowercase()).collect();
        let service_roles: Vec<String> =
            id.service_roles.iter().map(|r| r.to_lowercase()).collect();
        if roles.contains(&self.conf.reseller_admin_role) {
            return Decision::Owner;
        }
        if matches!(req.method, "GET" | "HEAD")
            && roles
                .iter()
                .any(|r| self.conf.system_reader_roles.contains(r))
        {
            return Decision::Allowed;
        }
        if req.container.is_none() && req.object.is_none() && req.method == "DELETE" {
            return Decision::Denied;
        }
        let acl = parse_acl(req.acl);
        if !acl.groups.is_empty() {
            let names = self.names_allowed(id, req.account);
            let mut projects = vec![id.project_id.as_deref(), Some("*")];
            let mut users = vec![id.user_id.as_deref(), Some("*")];
            if names {
                projects.push(id.project_name.as_deref());
                users.push(id.user_name.as_deref());
            }
            let named = projects.iter().any(|p| {
                users.iter().any(|u| {
                    // Swift formats a missing id as `None`; such an entry is as unlikely
                    // to be meant here as there.
                    let entry = format!("{}:{}", p.unwrap_or("None"), u.unwrap_or("None"));
                    acl.groups.contains(&entry)
                })
            });
            if named {
                return Decision::Allowed;
            }
        }
        let by_referrer = Self::referrer_decision(req, &acl.referrers, &acl.groups);
        if by_referrer == Some(true) {
            return Decision::Allowed;
        }
        if !self
            .conf
            .account_matches_project(req.account, id.project_id.as_deref())
        {
            return Decision::Denied;
        }
        let prefix = self.conf.account_prefix(req.account).unwrap_or("");
        let Some(rules) = self.conf.rules.get(prefix) else {
            return Decision::Denied;
        };
        let operator = roles.iter().any(|r| rules.operator_roles.contains(r));
        let service = service_roles
            .iter()
            .any(|r| rules.service_roles.contains(r));
        if operator && (rules.service_roles.is_empty() || service) {
            return Decision::Owner;
        }
        if matches!(req.method, "GET" | "HEAD")
            && roles.iter().any(|r| rules.project_reader_roles.contains(r))
        {
            return Decision::Allowed;
        }
        if by_referrer.is_some() {
            return Decision::Denied;
        }
        if roles
            .iter()
            .any(|r| acl.groups.iter().any(|g| g.to_lowercase() == *r))
        {
            return Decision::Allowed;
        }
        Decision::Denied
    }
}

impl Authorizer for KeystoneAuthorizer {
    fn authorize(&self, _identity: Option<&Identity>, req: &AuthzRequest<'_>) -> Decision {
        match &self.identity {
            Some(id) => self.confirmed(id, req),
            None => self.anonymous(req),
        }
    }

    fn honours_account_acls(&self) -> bool {
        false
    }
}

pub struct KeystoneAuth {
    next: App,
    conf: Arc<KeystoneConf>,
    proxy: Arc<Proxy>,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    Ok(Arc::new(KeystoneAuth {
        next,
        conf: Arc::new(KeystoneConf::from_section(&ctx.section)?),
        proxy: ctx.proxy.clone(),
    }))
}

impl KeystoneAuth {
    async fn account_domain(&self, account: &str) -> AccountDomain {
        let info = self.proxy.account_info(account).await;
        AccountDomain {
            account: account.to_string(),
            exists: (200..300).contains(&info.status),
            domain_id: info.sysmeta.get("project-domain-id").cloned(),
        }
    }

    /// Swift's `_set_project_domain_id`: the project's domain, recorded when its account
    /// is created (a container PUT may create it) or posted to.
    fn project_domain_to_record(
        &self,
        id: &KeystoneIdentity,
        method: &Method,
        path: &ApiPath,
        known: &AccountDomain,
    ) -> Option<String> {
        let account_level =
            path.container.is_none() && matches!(*method, Method::PUT | Method::POST);
        let container_put =
            path.object.is_none() && path.container.is_some() && *method == Method::PUT;
        if !(account_level || container_put) {
            return None;
        }
        let own = self
            .conf
            .account_matches_project(&path.account, id.project_id.as_deref());
        let token_domain = if own {
            id.project_domain_id.clone()
        } else {
            None
        };
        if !known.exists {
            return if own {
                token_domain
            } else {
                Some(UNKNOWN_DOMAIN.to_string())
            };
        }
        match known.domain_id.as_deref() {
            None if token_domain.as_deref() == Some(self.conf.default_domain_id.as_str()) => {
                token_domain
            }
            Some(UNKNOWN_DOMAIN) if own => Some(token_domain.unwrap_or_default()),
            recorded => {
                if own && recorded != token_domain.as_deref() {
                    tracing::warn!(
                        "keystoneauth: inconsistent project domain id: {token_domain:?} in \
                         token vs {recorded:?} in account metadata"
                    );
                }
                None
            }
        }
    }
}

impl Handler for KeystoneAuth {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let from_v3 = req.extensions().get::<KeystoneTokens>().is_some();
            let identity = keystone_identity(req.headers(), from_v3);
            if self.conf.allow_overrides && req.extensions().get::<AuthorizeOverride>().is_some() {
                return self.next.call(req).await;
            }
            let mut account_domain = None;
            if let (Some(id), Some(path)) = (&identity, ApiPath::parse(req.uri().path())) {
                let own = self
                    .conf
                    .account_matches_project(&path.account, id.project_id.as_deref());
                let writes_account = path.object.is_none()
                    && match path.container {
                        None => matches!(*req.method(), Method::PUT | Method::POST),
                        Some(_) => *req.method() == Method::PUT,
                    }
                    && !req.headers().contains_key(DOMAIN_SYSMETA);
                let may_name = path.container.is_some() && !own && self.conf.names_possible(id);
                if writes_account || may_name {
                    let known = self.account_domain(&path.account).await;
                    if writes_account {
                        let method = req.method().clone();
                        if let Some(domain) =
                            self.project_domain_to_record(id, &method, &path, &known)
                        {
                            if let Ok(v) = HeaderValue::from_str(&domain) {
                                req.headers_mut().insert(DOMAIN_SYSMETA, v);
                            }
                        }
                    }
                    account_domain = Some(known);
                }
            }
            if let Some(id) = &identity {
                let reseller = id
                    .roles
                    .iter()
                    .any(|r| r.to_lowercase() == self.conf.reseller_admin_role);
                req.extensions_mut().insert(RemoteUser(Identity {
                    account: id.project_id.clone().unwrap_or_default(),
                    user: id
                        .user_id
                        .clone()
                        .or_else(|| id.user_name.clone())
                        .unwrap_or_default(),
                    // account_quotas and the like ask whether this is a reseller request.
                    groups: if reseller {
                        vec![".reseller_admin".to_string()]
                    } else {
                        Vec::new()
                    },
                }));
            }
            req.extensions_mut()
                .insert(Authorize(Arc::new(KeystoneAuthorizer {
                    conf: self.conf.clone(),
                    identity,
                    account_domain,
                }) as Arc<dyn Authorizer>));
            let mut resp = self.next.call(req).await;
            if let Some(domain) = resp.headers().get(DOMAIN_SYSMETA).cloned() {
                resp.headers_mut().insert(DOMAIN_HEADER, domain);
            }
            resp
        })
    }
}

#[cfg(test)]
#[path = "keystoneauth_tests.rs"]
mod tests;

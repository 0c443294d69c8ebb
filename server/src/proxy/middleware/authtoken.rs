//! keystonemiddleware's `auth_token` as a layer of the stack (`[filter:authtoken]` with
//! `paste.filter_factory = keystonemiddleware.auth_token:filter_factory`): it checks the
//! request's `X-Auth-Token` (and `X-Service-Token`) with Keystone and passes on who the
//! caller is in the identity headers (`X-Identity-Status`, `X-User-Id`, `X-Project-Id`,
//! `X-Roles`, ... and `X-Service-*` for the service token), which `keystoneauth` reads.
//! Whatever identity headers the client sent are dropped first, so none can be forged.
//!
//! A request without a valid token is refused here with 401 and
//! `WWW-Authenticate: Keystone uri="..."`, unless `delay_auth_decision` is set: then it
//! goes on marked `X-Identity-Status: Invalid`, and the authorization middleware decides
//! (anonymous access through a container's referrer ACL, tempurl, formpost). Any 401 from
//! below gets the Keystone `WWW-Authenticate` too.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use ringsmith::swift::conf::{ConfError, Section};

use super::keystone_client::{Invalid, KeystoneClient, ServiceCredentials, TokenInfo};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, status_text};

/// The user's and the service's validated tokens, for `keystoneauth` (Swift's
/// `keystone.token_info`, whose presence tells it that the identity came from v3).
#[derive(Clone, Debug)]
pub struct KeystoneTokens {
    pub user: Option<Arc<TokenInfo>>,
    pub service: Option<Arc<TokenInfo>>,
}

pub struct AuthToken {
    next: App,
    keystone: KeystoneClient,
    www_authenticate: HeaderValue,
    delay_auth_decision: bool,
    include_service_catalog: bool,
    service_token_roles: Vec<String>,
    service_token_roles_required: bool,
}

/// The headers each principal gets: `{}` is `""` for the user's token and `-Service` for
/// the service token.
const PER_PRINCIPAL: [&str; 11] = [
    "X{}-Domain-Id",
    "X{}-Domain-Name",
    "X{}-Project-Id",
    "X{}-Project-Name",
    "X{}-Project-Domain-Id",
    "X{}-Project-Domain-Name",
    "X{}-User-Id",
    "X{}-User-Name",
    "X{}-User-Domain-Id",
    "X{}-User-Domain-Name",
    "X{}-Roles",
];

/// keystonemiddleware's deprecated names, copied from their current counterparts.
const DEPRECATED: [(&str, &str); 5] = [
    ("x-role", "x-roles"),
    ("x-user", "x-user-name"),
    ("x-tenant-id", "x-project-id"),
    ("x-tenant-name", "x-project-name"),
    ("x-tenant", "x-project-name"),
];

/// Every header this layer sets, which a client must not set itself.
fn identity_headers() -> Vec<String> {
    let mut all = vec![
        "x-service-catalog".to_string(),
        "x-identity-status".to_string(),
        "x-service-identity-status".to_string(),
        "x-is-admin-project".to_string(),
        "openstack-system-scope".to_string(),
    ];
    all.extend(DEPRECATED.iter().map(|(old, _)| old.to_string()));
    for prefix in ["", "-Service"] {
        all.extend(
            PER_PRINCIPAL
                .iter()
                .map(|t| t.replace("{}", prefix).to_ascii_lowercase()),
        );
    }
    all
}

/// How many of a request's headers this layer set: Swift counts a request's headers
/// against `MAX_HEADER_COUNT` as the client sent them, before any middleware.
pub fn identity_header_count(h: &HeaderMap) -> usize {
    if !h.contains_key("x-identity-status") {
        return 0;
    }
    identity_headers()
        .iter()
        .filter(|name| h.contains_key(name.as_str()))
        .count()
}

fn opt(section: &Section, key: &str) -> Option<String> {
    section
        .get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn list(section: &Section, key: &str, default: &[&str]) -> Vec<String> {
    match section.get(key) {
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let s = &ctx.section;
    let auth_type = s.str_or("auth_type", "password");
    if auth_type.trim() != "password" {
        return Err(ctx.bad_option(
            "auth_type",
            format!("{auth_type:?}: Ringsmith's authtoken authenticates with `password` only"),
        ));
    }
    let Some(auth_url) = opt(s, "auth_url") else {
        return Err(ctx.bad_option("auth_url", "missing: Keystone's address is needed"));
    };
    if !auth_url.starts_with("http://") && !auth_url.starts_with("https://") {
        return Err(ctx.bad_option("auth_url", format!("{auth_url:?} is no http(s) URL")));
    }
    let credentials = ServiceCredentials {
        username: opt(s, "username"),
        user_id: opt(s, "user_id"),
        password: s.str_or("password", ""),
        user_domain_id: opt(s, "user_domain_id"),
        user_domain_name: opt(s, "user_domain_name"),
        project_name: opt(s, "project_name"),
        project_id: opt(s, "project_id"),
        project_domain_id: opt(s, "project_domain_id"),
        project_domain_name: opt(s, "project_domain_name"),
    };
    if credentials.username.is_none() && credentials.user_id.is_none() {
        return Err(ctx.bad_option(
            "username",
            "missing: the proxy validates tokens as a service user (username or user_id)",
        ));
    }
    let connect_timeout = match opt(s, "http_connect_timeout") {
        Some(_) => Some(Duration::from_secs(
            s.parse_or("http_connect_timeout", 0u64)?,
        )),
        None => None,
    };
    let include_service_catalog = s.bool_or("include_service_catalog", true)?;
    let keystone = KeystoneClient::new(
        &auth_url,
        credentials,
        connect_timeout,
        s.parse_or("http_request_max_retries", 3u32)?,
        include_service_catalog,
        Duration::from_secs(s.parse_or("token_cache_time", 300u64)?),
    )
    .map_err(|e| ctx.bad_option("auth_url", e))?;
    let www = opt(s, "www_authenticate_uri")
        .or_else(|| opt(s, "auth_uri"))
        .unwrap_or_else(|| keystone.identity_url().to_string());
    let www_authenticate = HeaderValue::from_str(&format!("Keystone uri=\"{www}\""))
        .map_err(|_| ctx.bad_option("www_authenticate_uri", "not a valid header value"))?;
    Ok(Arc::new(AuthToken {
        next,
        keystone,
        www_authenticate,
        delay_auth_decision: s.bool_or("delay_auth_decision", false)?,
        include_service_catalog,
        service_token_roles: list(s, "service_token_roles", &["service"]),
        service_token_roles_required: s.bool_or("service_token_roles_required", true)?,
    }))
}

fn put(h: &mut HeaderMap, name: &str, value: Option<&str>) {
    let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
        return;
    };
    // Names may be any UTF-8: keep its bytes, as Swift keeps them in the environ.
    match value.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
        Some(v) => {
            h.insert(name, v);
        }
        None => {
            h.remove(name);
        }
    }
}

fn set_principal(h: &mut HeaderMap, prefix: &str, t: &TokenInfo) {
    let roles = t.roles.join(",");
    let values = [
        t.domain_id.as_deref(),
        t.domain_name.as_deref(),
        t.project_id.as_deref(),
        t.project_name.as_deref(),
        t.project_domain_id.as_deref(),
        t.project_domain_name.as_deref(),
        t.user_id.as_deref(),
        t.user_name.as_deref(),
        t.user_domain_id.as_deref(),
        t.user_domain_name.as_deref(),
        Some(roles.as_str()),
    ];
    for (template, value) in PER_PRINCIPAL.iter().zip(values) {
        put(h, &template.replace("{}", prefix), value);
    }
    put(h, "openstack-system-scope", t.system_scope.as_deref());
}

fn status(valid: bool) -> HeaderValue {
    HeaderValue::from_static(if valid { "Confirmed" } else { "Invalid" })
}

impl AuthToken {
    /// keystonemiddleware's answer when it refuses a request itself.
    fn unauthorized(&self) -> Response {
        let body = serde_json::json!({"error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }});
        let mut r = Response::new(axum::body::Body::from(body.to_string()));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        let h = r.headers_mut();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        h.insert("www-authenticate", self.www_authenticate.clone());
        r
    }

    /// A token's validation; an unreachable Keystone is a 503 unless the decision is
    /// delayed, where it makes the token invalid.
    async fn check(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<Option<Arc<TokenInfo>>, Response> {
        match self.keystone.validate(token, allow_expired).await {
            Ok(info) => Ok(Some(info)),
            Err(Invalid::Token) => Ok(None),
            Err(Invalid::Service(why)) => {
                tracing::error!("authtoken: unable to validate token: {why}");
                if self.delay_auth_decision {
                    Ok(None)
                } else {
                    Err(status_text(StatusCode::SERVICE_UNAVAILABLE))
                }
            }
        }
    }

    async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<(HeaderMap, KeystoneTokens), Response> {
        let mut add = HeaderMap::new();
        let mut tokens = KeystoneTokens {
            user: None,
            service: None,
        };
        let service_token = header(headers, "x-service-token").map(str::to_string);
        let mut allow_expired = false;
        if let Some(st) = service_token.as_deref() {
            let valid = match self.check(st, false).await? {
                Some(info) => {
                    let has_role = info
                        .roles
                        .iter()
                        .any(|r| self.service_token_roles.contains(r));
                    allow_expired = has_role;
                    let ok = has_role || !self.service_token_roles_required;
                    if ok {
                        tokens.service = Some(info);
                    }
                    ok
                }
                None => false,
            };
            add.insert("x-service-identity-status", status(valid));
        }
        let user_token = header(headers, "x-auth-token")
            .or_else(|| header(headers, "x-storage-token"))
            .map(str::to_string);
        if let Some(ut) = user_token.as_deref() {
            tokens.user = self.check(ut, allow_expired).await?;
        }
        let user_valid = tokens.user.is_some();
        add.insert("x-identity-status", status(user_valid));
        let service_ok = service_token.is_none() || tokens.service.is_some();
        let authenticated = user_valid && service_ok;
        if !authenticated && !self.delay_auth_decision {
            return Err(self.unauthorized());
        }
        if let Some(user) = &tokens.user {
            set_principal(&mut add, "", user);
            put(
                &mut add,
                "x-is-admin-project",
                Some(if user.is_admin_project {
                    "True"
                } else {
                    "False"
                }),
            );
            for (old, new) in DEPRECATED {
                if let Some(v) = add.get(new).cloned() {
                    add.insert(old, v);
                }
            }
            if self.include_service_catalog {
                let catalog = user.catalog.as_ref().map(|c| c.to_string());
                put(&mut add, "x-service-catalog", catalog.as_deref());
            }
        }
        if let Some(service) = &tokens.service {
            set_principal(&mut add, "-Service", service);
        }
        Ok((add, tokens))
    }
}

impl Handler for AuthToken {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let h = req.headers_mut();
            for name in identity_headers() {
                h.remove(name.as_str());
            }
            // The request (whose body is not Sync) stays out of the await.
            let headers = req.headers().clone();
            let (add, tokens) = match self.authenticate(&headers).await {
                Ok(found) => found,
                Err(refused) => return refused,
            };
            let h = req.headers_mut();
            for (name, value) in add.iter() {
                h.insert(name.clone(), value.clone());
            }
            if tokens.user.is_some() || tokens.service.is_some() {
                req.extensions_mut().insert(tokens);
            }
            let mut resp = self.next.call(req).await;
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .append("www-authenticate", self.www_authenticate.clone());
            }
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identity_header_is_dropped_from_the_client() {
        let all = identity_headers();
        for h in [
            "x-identity-status",
            "x-service-identity-status",
            "x-user-id",
            "x-project-id",
            "x-roles",
            "x-service-roles",
            "x-service-project-id",
            "x-user-domain-id",
            "x-project-domain-id",
            "x-tenant-id",
            "x-role",
            "x-is-admin-project",
        ] {
            assert!(all.iter().any(|a| a == h), "{h}");
        }
    }

    #[test]
    fn principal_headers_carry_every_field_and_drop_absent_ones() {
        let t = TokenInfo {
            user_id: Some("u".into()),
            user_name: Some("ünïcode".into()),
            project_id: Some("p".into()),
            roles: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-service-domain-id", HeaderValue::from_static("stale"));
        set_principal(&mut h, "-Service", &t);
        assert_eq!(h["x-service-user-id"], "u");
        assert_eq!(h["x-service-user-name"].as_bytes(), "ünïcode".as_bytes());
        assert_eq!(h["x-service-roles"], "a,b");
        assert!(!h.contains_key("x-service-domain-id"));
        assert!(!h.contains_key("x-user-id"));
        assert_eq!(
            identity_header_count(&h),
            0,
            "counted only once authtoken ran"
        );
        h.insert("x-identity-status", HeaderValue::from_static("Confirmed"));
        h.insert("x-object-meta-a", HeaderValue::from_static("1"));
        assert_eq!(identity_header_count(&h), 5);
    }
}

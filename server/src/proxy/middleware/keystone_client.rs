//! What `authtoken` asks Keystone, over its v3 API: a token of the proxy's own service user
//! (`POST /v3/auth/tokens` with a password, kept until it is about to expire), and the
//! validation of each user token (`GET /v3/auth/tokens` with `X-Subject-Token`), whose
//! answers are kept until they expire or `token_cache_time` runs out, whichever is first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Validated tokens kept at most; past that the expired ones are dropped, then all.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// A service token is renewed this long before Keystone says it expires.
const SERVICE_TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// How the proxy authenticates itself: keystoneauth1's `password` plugin options.
#[derive(Clone, Debug, Default)]
pub struct ServiceCredentials {
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: String,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
}

impl ServiceCredentials {
    /// The body of the password authentication request.
    fn auth_body(&self) -> Value {
        let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
            (Some(id), _) => Some(json!({"id": id})),
            (None, Some(name)) => Some(json!({"name": name})),
            (None, None) => None,
        };
        let mut user = json!({"password": self.password});
        if let Some(id) = &self.user_id {
            user["id"] = json!(id);
        } else if let Some(name) = &self.username {
            user["name"] = json!(name);
            if let Some(d) = domain(&self.user_domain_id, &self.user_domain_name) {
                user["domain"] = d;
            }
        }
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
        if let Some(id) = &self.project_id {
            auth["scope"] = json!({"project": {"id": id}});
        } else if let Some(name) = &self.project_name {
            let mut project = json!({"name": name});
            if let Some(d) = domain(&self.project_domain_id, &self.project_domain_name) {
                project["domain"] = d;
            }
            auth["scope"] = json!({"project": project});
        }
        json!({ "auth": auth })
    }
}

/// One principal's part of a validated token, as keystonemiddleware puts it in headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenInfo {
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    /// Set for a domain-scoped token.
    pub domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub roles: Vec<String>,
    /// `all` for a system-scoped token.
    pub system_scope: Option<String>,
    pub is_admin_project: bool,
    /// Seconds since the epoch.
    pub expires_at: f64,
    /// The catalog as keystonemiddleware passes it on (`X-Service-Catalog`): per service,
    /// its endpoints grouped by region as `publicURL`/`internalURL`/`adminURL`.
    pub catalog: Option<Value>,
}

impl TokenInfo {
    /// Reads Keystone's `{"token": {...}}` answer; `None` when it is not one.
    pub fn from_v3(body: &Value) -> Option<TokenInfo> {
        let token = body.get("token")?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let user = token.get("user")?;
        let project = token.get("project");
        let domain = token.get("domain");
        let roles = token
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|r| s(r.get("name"))).collect())
            .unwrap_or_default();
        let system_scope = token
            .get("system")
            .and_then(|sys| sys.get("all"))
            .and_then(Value::as_bool)
            .filter(|all| *all)
            .map(|_| "all".to_string());
        Some(TokenInfo {
            user_id: s(user.get("id")),
            user_name: s(user.get("name")),
            user_domain_id: s(user.pointer("/domain/id")),
            user_domain_name: s(user.pointer("/domain/name")),
            project_id: project.and_then(|p| s(p.get("id"))),
            project_name: project.and_then(|p| s(p.get("name"))),
            project_domain_id: project.and_then(|p| s(p.pointer("/domain/id"))),
            project_domain_name: project.and_then(|p| s(p.pointer("/domain/name"))),
            domain_id: domain.and_then(|d| s(d.get("id"))),
            domain_name: domain.and_then(|d| s(d.get("name"))),
            roles,
            system_scope,
            // Keystone says so only when an admin project is configured; absent means
            // every project counts as one, as keystoneauth1 reads it.
            is_admin_project: token
                .get("is_admin_project")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            expires_at: parse_iso8601(token.get("expires_at")?.as_str()?)?,
            catalog: token.get("catalog").map(normalize_catalog),
        })
    }

    pub fn expired(&self) -> bool {
        self.expires_at <= now_f64()
    }
}

/// keystonemiddleware's v3 catalog as it passes it on: `[{type, name, endpoints:
/// [{region, publicURL, internalURL, adminURL}]}]`, endpoints merged per region.
fn normalize_catalog(catalog: &Value) -> Value {
    let services = catalog.as_array().cloned().unwrap_or_default();
    let out: Vec<Value> = services
        .iter()
        .map(|svc| {
            let mut entry = serde_json::Map::new();
            entry.insert(
                "type".into(),
                svc.get("type").cloned().unwrap_or(Value::Null),
            );
            if let Some(name) = svc.get("name") {
                entry.insert("name".into(), name.clone());
            }
            let mut regions: Vec<(Option<String>, serde_json::Map<String, Value>)> = Vec::new();
            for ep in svc
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let region = ep.get("region").and_then(Value::as_str).map(str::to_string);
                let at = match regions.iter().position(|(r, _)| *r == region) {
                    Some(i) => i,
                    None => {
                        let mut m = serde_json::Map::new();
                        if let Some(r) = region.as_ref().filter(|r| !r.is_empty()) {
                            m.insert("region".into(), json!(r));
                        }
                        regions.push((region, m));
                        regions.len() - 1
                    }
                };
                if let (Some(iface), Some(url)) = (
                    ep.get("interface").and_then(Value::as_str),
                    ep.get("url").cloned(),
                ) {
                    regions[at]
                        .1
                        .insert(format!("{}URL", iface.to_lowercase()), url);
                }
            }
            entry.insert(
                "endpoints".into(),
                Value::Array(regions.into_iter().map(|(_, m)| Value::Object(m)).collect()),
            );
            Value::Object(entry)
        })
        .collect();
    Value::Array(out)
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Keystone's `expires_at` (`2026-01-02T03:04:05.000000Z`, or with a `+HH:MM` offset) as
/// seconds since the epoch.
pub fn parse_iso8601(text: &str) -> Option<f64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (
            c,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let mut c = clock.splitn(3, ':');
    let hour: u32 = c.next()?.parse().ok()?;
    let minute: u32 = c.next()?.parse().ok()?;
    let seconds: f64 = c.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 - offset;
    Some(secs as f64 + seconds)
}

/// Why a token could not be validated.
#[derive(Debug, PartialEq)]
pub enum Invalid {
    /// Keystone says it is no (longer a) valid token.
    Token,
    /// Keystone could not be asked, or refused the proxy's own credentials
    /// (keystonemiddleware's `ServiceError`: 503, or an invalid token with
    /// `delay_auth_decision`).
    Service(String),
}

/// A token's SHA-256: the cache holds no tokens themselves.
type TokenDigest = [u8; 32];

/// Keystone's v3 API as the proxy's service user, and the cache of validated tokens.
pub struct KeystoneClient {
    /// `.../v3`, without a trailing slash.
    identity_url: String,
    credentials: ServiceCredentials,
    http: reqwest::Client,
    max_retries: u32,
    include_catalog: bool,
    cache_time: Duration,
    service_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    cache: Mutex<HashMap<TokenDigest, (Arc<TokenInfo>, Instant)>>,
}

/// `http://host:5000`, `http://host:5000/` and `http://host:5000/v3` all name the v3 API.
pub fn identity_v3_url(auth_url: &str) -> String {
    let base = auth_url.trim().trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_string()
    } else if let Some(root) = base.strip_suffix("/v2.0") {
        format!("{root}/v3")
    } else {
        format!("{base}/v3")
    }
}

impl KeystoneClient {
    pub fn new(
        auth_url: &str,
        credentials: ServiceCredentials,
        connect_timeout: Option<Duration>,
        max_retries: u32,
        include_catalog: bool,
        cache_time: Duration,
    ) -> Result<KeystoneClient, String> {
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(t) = connect_timeout {
            http = http.connect_timeout(t);
        }
        Ok(KeystoneClient {
            identity_url: identity_v3_url(auth_url),
            credentials,
            http: http.build().map_err(|e| e.to_string())?,
            max_retries,
            include_catalog,
            cache_time,
            service_token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn identity_url(&self) -> &str {
        &self.identity_url
    }

    /// Sends a request, again on connection failures (`http_request_max_retries`).
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, Invalid> {
        let mut attempt = 0;
        loop {
            let Some(this) = rb.try_clone() else {
                return Err(Invalid::Service("request cannot be retried".into()));
            };
            match this.send().await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_connect() && attempt < self.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                Err(e) => return Err(Invalid::Service(format!("keystone unreachable: {e}"))),
            }
        }
    }

    /// The proxy's own token, from the cache or a new password authentication.
    async fn service_token(&self, renew: bool) -> Result<String, Invalid> {
        let mut held = self.service_token.lock().await;
        if let Some((token, until)) = held.as_ref() {
            if !renew && Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let r = self
            .send(
                self.http
                    .post(format!("{}/auth/tokens?nocatalog", self.identity_url))
                    .header("content-type", "application/json")
                    .body(self.credentials.auth_body().to_string()),
            )
            .await?;
        let status = r.status();
        let token = r
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Value = r.json().await.map_err(|e| {
            Invalid::Service(format!("keystone's answer to the service login: {e}"))
        })?;
        let (true, Some(token)) = (status.is_success(), token) else {
            return Err(Invalid::Service(format!(
                "the service user cannot log in to keystone: {status}"
            )));
        };
        let lifetime = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(parse_iso8601)
            .map(|e| Duration::from_secs_f64((e - now_f64()).max(0.0)))
            .unwrap_or(Duration::ZERO);
        let until = Instant::now() + lifetime.saturating_sub(SERVICE_TOKEN_MARGIN);
        *held = Some((token.clone(), until));
        Ok(token)
    }

    fn cache_key(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    fn cached(&self, key: &TokenDigest) -> Option<Arc<TokenInfo>> {
        let mut cache = self.cache.lock().expect("token cache");
        match cache.get(key) {
            Some((info, until)) if Instant::now() < *until => Some(info.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: TokenDigest, info: Arc<TokenInfo>) {
        let mut cache = self.cache.lock().expect("token cache");
        let now = Instant::now();
        if cache.len() >= TOKEN_CACHE_CAPACITY {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= TOKEN_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key, (info, now + self.cache_time));
    }

    /// What Keystone says of `token`; an expired token is invalid unless `allow_expired`
    /// (which only a service token with a service role earns).
    pub async fn validate(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<Arc<TokenInfo>, Invalid> {
        let token = token.trim();
        let key = Self::cache_key(token);
        let info = match self.cached(&key) {
            Some(info) => info,
            None => {
                let info = Arc::new(self.fetch(token, allow_expired).await?);
                self.remember(key, info.clone());
                info
            }
        };
        if !allow_expired && info.expired() {
            return Err(Invalid::Token);
        }
        Ok(info)
    }

    async fn fetch(&self, token: &str, allow_expired: bool) -> Result<TokenInfo, Invalid> {
        let mut query = Vec::new();
        if !self.include_catalog {
            query.push("nocatalog");
        }
        if allow_expired {
            query.push("allow_expired=1");
        }
        let url = if query.is_empty() {
            format!("{}/auth/tokens", self.identity_url)
        } else {
            format!("{}/auth/tokens?{}", self.identity_url, query.join("&"))
        };
        let Ok(subject) = reqwest::header::HeaderValue::from_str(token) else {
            return Err(Invalid::Token);
        };
        let mut renew = false;
        for _ in 0..2 {
            let service = self.service_token(renew).await?;
            let r = self
                .send(
                    self.http
                        .get(&url)
                        .header("x-auth-token", service)
                        .header("x-subject-token", subject.clone()),
                )
                .await?;
            match r.status().as_u16() {
                200 => {
                    let body: Value = r.json().await.map_err(|_| Invalid::Token)?;
                    return TokenInfo::from_v3(&body).ok_or(Invalid::Token);
                }
                // Keystone answers 404 for a token it does not know or that was revoked.
                404 => return Err(Invalid::Token),
                // The service token itself expired or was revoked: log in again, once.
                401 if !renew => renew = true,
                s => {
                    return Err(Invalid::Service(format!(
                        "keystone answered {s} to a token validation"
                    )))
                }
            }
        }
        Err(Invalid::Service(
            "keystone refuses the service user's new token".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_times_read_as_keystone_writes_them() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_iso8601("2026-11-29T18:40:28.000000Z"),
            Some(1_795_977_628.0)
        );
        assert_eq!(parse_iso8601("2000-03-01T00:00:00.5Z"), Some(951_868_800.5));
        assert_eq!(
            parse_iso8601("2026-11-29T20:40:28+02:00"),
            parse_iso8601("2026-11-29T18:40:28Z")
        );
        assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn auth_urls_name_the_v3_api() {
        assert_eq!(identity_v3_url("http://k:5000"), "http://k:5000/v3");
        assert_eq!(identity_v3_url("http://k:5000/v3/"), "http://k:5000/v3");
        assert_eq!(
            identity_v3_url("http://k/identity/v2.0"),
            "http://k/identity/v3"
        );
    }

    #[test]
    fn a_v3_token_reads_into_headers_fields() {
        let body = json!({"token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "proj", "domain": {"id": "d9", "name": "Other"}},
            "roles": [{"id": "r1", "name": "swiftoperator"}, {"id": "r2", "name": "reader"}],
            "catalog": [{"type": "object-store", "name": "swift", "endpoints": [
                {"interface": "public", "region": "R1", "url": "http://p"},
                {"interface": "internal", "region": "R1", "url": "http://i"}]}]
        }});
        let t = TokenInfo::from_v3(&body).unwrap();
        assert_eq!(t.user_id.as_deref(), Some("u1"));
        assert_eq!(t.project_domain_id.as_deref(), Some("d9"));
        assert_eq!(t.roles, ["swiftoperator", "reader"]);
        assert!(t.is_admin_project && !t.expired());
        assert_eq!(
            t.catalog.unwrap(),
            json!([{"type": "object-store", "name": "swift", "endpoints": [
                {"region": "R1", "publicURL": "http://p", "internalURL": "http://i"}]}])
        );
        assert!(TokenInfo::from_v3(&json!({"token": {"user": {}}})).is_none());
    }

    #[test]
    fn the_service_login_names_user_and_project_with_their_domains() {
        let c = ServiceCredentials {
            username: Some("swift".into()),
            password: "pw".into(),
            user_domain_id: Some("default".into()),
            project_name: Some("service".into()),
            project_domain_name: Some("Default".into()),
            ..Default::default()
        };
        assert_eq!(
            c.auth_body(),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "swift", "password": "pw", "domain": {"id": "default"}}}},
                "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}})
        );
    }
}

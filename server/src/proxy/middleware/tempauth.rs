//! tempauth as a layer of the stack: it answers the auth endpoints (`/auth/v1.0` and
//! friends) with tokens, turns a request's `X-Auth-Token` into the caller's identity
//! ([`RemoteUser`]), and leaves its authorizer ([`Authorize`]) for the app to call once
//! it knows the target's ACLs. Users, tokens and the authorization rules themselves are in
//! [`crate::proxy::auth`].
//!
//! With a shared cache (the `cache` filter on memcached) tokens are Swift's: `AUTH_tk` and
//! a random hex, stored as `AUTH_/token/<token>` → `[expires, "groups"]` and
//! `AUTH_/user/<account:user>` → token, so every proxy on that memcached (Swift's too)
//! accepts them. Without one, and whenever memcached cannot store a new token, tokens are
//! the stateless signed kind [`TempAuth::sign`] makes.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use ringsmith::swift::conf::ConfError;

use crate::proxy::auth::{self, AuthzRequest, Decision, Identity, TempAuth};
use crate::proxy::backend::set;
use crate::proxy::env::{ApiPath, Authorize, AuthorizeOverride, Authorizer, RemoteUser};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{empty, header, quote, status_text, text};

pub struct TempAuthLayer {
    next: App,
    auth: Arc<TempAuth>,
    auth_prefix: String,
    /// Whether a middleware's [`AuthorizeOverride`] is honoured (Swift's `allow_overrides`).
    allow_overrides: bool,
    /// For its cache (Swift's `swift.cache`), which the `cache` filter may point at
    /// memcached after this layer is built.
    proxy: Arc<crate::proxy::Proxy>,
}

impl Authorizer for TempAuth {
    fn authorize(&self, identity: Option<&Identity>, req: &AuthzRequest<'_>) -> Decision {
        auth::authorize(self, identity, req)
    }
    fn honours_account_acls(&self) -> bool {
        true
    }
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let auth = Arc::new(TempAuth::from_section(&ctx.section)?);
    let mut auth_prefix = ctx.section.str_or("auth_prefix", "/auth/");
    if !auth_prefix.starts_with('/') {
        auth_prefix.insert(0, '/');
    }
    if !auth_prefix.ends_with('/') {
        auth_prefix.push('/');
    }
    let allow_overrides = ctx.section.bool_or("allow_overrides", true)?;
    ctx.info
        .register("tempauth", serde_json::json!({"account_acls": true}));
    Ok(Arc::new(TempAuthLayer {
        next,
        auth,
        auth_prefix,
        allow_overrides,
        proxy: ctx.proxy.clone(),
    }))
}

impl TempAuthLayer {
    fn is_auth_endpoint(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(&self.auth_prefix) else {
            return false;
        };
        rest == "v1.0"
            || rest == "v1.0/"
            || rest == "auth"
            || (rest.starts_with("v1/") && rest.ends_with("/auth"))
    }

    /// The token's cache key (Swift's `<reseller_prefix>/token/<token>`).
    fn token_key(&self, token: &str) -> String {
        format!("{}/token/{token}", self.auth.reseller_prefix)
    }

    /// Swift's group string for a user: account, account:user, its groups, and for
    /// `.admin` the account's name in place of `.admin`.
    fn swift_groups(&self, user: &auth::User) -> String {
        let mut groups = vec![
            user.account.clone(),
            format!("{}:{}", user.account, user.user),
        ];
        groups.extend(user.groups.iter().filter(|g| *g != ".admin").cloned());
        if user.groups.iter().any(|g| g == ".admin") {
            groups.push(self.auth.account_name(&user.account));
        }
        groups.join(",")
    }

    /// A token from the shared cache: the user's live one when its groups are unchanged,
    /// else a new one. `None` when the cache cannot store it.
    async fn cached_token(&self, user: &auth::User) -> Option<(String, u64)> {
        let cache = self.proxy.cache();
        let groups = self.swift_groups(user);
        let user_key = format!(
            "{}/user/{}:{}",
            self.auth.reseller_prefix, user.account, user.user
        );
        let now = auth::now_secs() as f64;
        if let Some(candidate) = cache.get(&user_key).await {
            if let Some(candidate) = candidate.as_str() {
                if let Some((expires, old)) = cache
                    .get(&self.token_key(candidate))
                    .await
                    .as_ref()
                    .and_then(cached_auth_data)
                {
                    let same = |a: &str, b: &str| {
                        let mut a: Vec<&str> = a.split(',').collect();
                        let mut b: Vec<&str> = b.split(',').collect();
                        a.sort();
                        a.dedup();
                        b.sort();
                        b.dedup();
                        a == b
                    };
                    if expires > now && same(&old, &groups) {
                        return Some((candidate.to_string(), expires as u64));
                    }
                }
            }
        }
        let token = format!(
            "{}tk{}",
            self.auth.reseller_prefix,
            hex::encode(rand::random::<[u8; 16]>())
        );
        let expires = auth::now_secs() + self.auth.token_life;
        let data = serde_json::json!([expires as f64, groups]);
        let ttl = self.auth.token_life;
        cache.set(&self.token_key(&token), &data, ttl).await.ok()?;
        cache
            .set(&user_key, &serde_json::Value::from(token.clone()), ttl)
            .await
            .ok()?;
        Some((token, expires))
    }

    /// The identity behind a token: a signed one, or one in the shared cache.
    async fn identity_of(&self, token: &str) -> Option<Identity> {
        if let Some(identity) = self.auth.validate(token) {
            return Some(identity);
        }
        let cache = self.proxy.cache();
        if !cache.is_shared() || !token.starts_with(&format!("{}tk", self.auth.reseller_prefix)) {
            return None;
        }
        let (expires, groups) = cache
            .get(&self.token_key(token))
            .await
            .as_ref()
            .and_then(cached_auth_data)?;
        if expires < auth::now_secs() as f64 {
            return None;
        }
        let groups: Vec<String> = groups.split(',').map(str::to_string).collect();
        let (account, user) = groups.iter().find_map(|g| g.split_once(':'))?;
        Some(Identity {
            account: account.to_string(),
            user: user.to_string(),
            groups: groups.clone(),
        })
    }

    /// `GET /auth/v1.0` with `X-Auth-User`/`X-Auth-Key`: a token and the storage URL.
    async fn get_token(&self, h: &axum::http::HeaderMap, path: &str) -> Response {
        let user = header(h, "x-auth-user").or_else(|| header(h, "x-storage-user"));
        let key = header(h, "x-auth-key").or_else(|| header(h, "x-storage-pass"));
        let (Some(user), Some(key)) = (user, key) else {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        };
        let realm = user.split(':').next().unwrap_or("unknown").to_string();
        // `/auth/v1/<act>/auth` must name the same account as the user.
        if let Some(act) = path
            .strip_prefix(&self.auth_prefix)
            .and_then(|r| r.strip_prefix("v1/"))
            .and_then(|r| r.strip_suffix("/auth"))
        {
            if act != realm {
                return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            }
        }
        let Some((signed, signed_expires, u)) = self.auth.login(user, key) else {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            set(
                r.headers_mut(),
                "www-authenticate",
                &format!("Swift realm=\"{realm}\""),
            );
            return r;
        };
        let (token, expires) = match self.proxy.cache().is_shared() {
            true => self
                .cached_token(u)
                .await
                .unwrap_or((signed, signed_expires)),
            false => (signed, signed_expires),
        };
        let url = u.storage_url.clone().unwrap_or_else(|| {
            let host = header(h, "host").unwrap_or("127.0.0.1");
            format!("http://{host}/v1/{}", self.auth.account_name(&u.account))
        });
        let mut r = empty(StatusCode::OK);
        let hm = r.headers_mut();
        set(hm, "x-auth-token", &token);
        set(hm, "x-storage-token", &token);
        set(
            hm,
            "x-auth-token-expires",
            &expires.saturating_sub(auth::now_secs()).to_string(),
        );
        set(hm, "x-storage-url", &url);
        set(hm, "content-length", "0");
        r
    }
}

impl Handler for TempAuthLayer {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            if self.allow_overrides && req.extensions().get::<AuthorizeOverride>().is_some() {
                return self.next.call(req).await;
            }
            if self.is_auth_endpoint(req.uri().path()) {
                // The request (whose body is not Sync) stays out of the await.
                let (headers, path) = (req.headers().clone(), req.uri().path().to_string());
                return self.get_token(&headers, &path).await;
            }
            let token = header(req.headers(), "x-auth-token")
                .or_else(|| header(req.headers(), "x-storage-token"))
                .map(str::to_string);
            if let Some(token) = token {
                match self.identity_of(&token).await {
                    Some(mut identity) => {
                        // A service's token adds its groups (Swift's `X-Service-Token`);
                        // one that does not check out adds nothing and refuses nothing.
                        let service = header(req.headers(), "x-service-token").map(str::to_string);
                        if let Some(service) = service {
                            if let Some(s) = self.identity_of(&service).await {
                                identity.groups.extend(s.groups);
                            }
                        }
                        req.extensions_mut().insert(RemoteUser(identity));
                    }
                    None => {
                        let realm = ApiPath::parse(req.uri().path())
                            .map(|p| p.account)
                            .unwrap_or_else(|| "unknown".into());
                        let mut r = status_text(StatusCode::UNAUTHORIZED);
                        set(
                            r.headers_mut(),
                            "www-authenticate",
                            &format!("Swift realm=\"{}\"", quote(&realm)),
                        );
                        return r;
                    }
                }
            }
            req.extensions_mut()
                .insert(Authorize(self.auth.clone() as Arc<dyn Authorizer>));
            self.next.call(req).await
        })
    }
}

/// `[expires, "groups"]` as tempauth caches it.
fn cached_auth_data(v: &serde_json::Value) -> Option<(f64, String)> {
    let pair = v.as_array()?;
    match pair.as_slice() {
        [expires, groups] => Some((expires.as_f64()?, groups.as_str()?.to_string())),
        _ => None,
    }
}

//! tempauth as a layer of the stack: it answers the auth endpoints (`/auth/v1.0` and
//! friends) with tokens, turns a request's `X-Auth-Token` into the caller's identity
//! ([`RemoteUser`]), and leaves its authorizer ([`Authorize`]) for the app to call once
//! it knows the target's ACLs. Users, tokens and the authorization rules themselves are in
//! [`crate::proxy::auth`].

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

    /// `GET /auth/v1.0` with `X-Auth-User`/`X-Auth-Key`: a token and the storage URL.
    fn get_token(&self, req: &Request) -> Response {
        let h = req.headers();
        let user = header(h, "x-auth-user").or_else(|| header(h, "x-storage-user"));
        let key = header(h, "x-auth-key").or_else(|| header(h, "x-storage-pass"));
        let (Some(user), Some(key)) = (user, key) else {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        };
        let realm = user.split(':').next().unwrap_or("unknown").to_string();
        // `/auth/v1/<act>/auth` must name the same account as the user.
        if let Some(act) = req
            .uri()
            .path()
            .strip_prefix(&self.auth_prefix)
            .and_then(|r| r.strip_prefix("v1/"))
            .and_then(|r| r.strip_suffix("/auth"))
        {
            if act != realm {
                return text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            }
        }
        let Some((token, expires, u)) = self.auth.login(user, key) else {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            set(
                r.headers_mut(),
                "www-authenticate",
                &format!("Swift realm=\"{realm}\""),
            );
            return r;
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
                return self.get_token(&req);
            }
            let token = header(req.headers(), "x-auth-token")
                .or_else(|| header(req.headers(), "x-storage-token"))
                .map(str::to_string);
            if let Some(token) = token {
                match self.auth.validate(&token) {
                    Some(identity) => {
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

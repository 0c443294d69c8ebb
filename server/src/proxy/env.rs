//! What travels with a request through the stack besides its method, path and headers:
//! Swift keeps these in the WSGI environ (`swift.trans_id`, `REMOTE_USER`,
//! `swift.authorize`, `swift.source`); here they are typed request extensions.
//!
//! A middleware's subrequest ([`Caller::subrequest`]) carries the transaction id and the caller's
//! identity and authorizer, so what it reads or writes on the user's behalf is checked
//! with the user's rights, as Swift's `make_subrequest` does.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::auth::{AuthzRequest, Decision, Identity};

/// Swift's `swift.trans_id`, set by `catch_errors`.
#[derive(Clone, Debug)]
pub struct TransId(pub String);

/// Who the request is from (Swift's `REMOTE_USER`), set by the auth middleware.
#[derive(Clone, Debug)]
pub struct RemoteUser(pub Identity);

/// An auth middleware's decision for one request against what the app knows of the
/// target (its container's ACL).
pub trait Authorizer: Send + Sync {
    fn authorize(&self, identity: Option<&Identity>, req: &AuthzRequest<'_>) -> Decision;
    /// Whether a user it denies may still be let in by the account's
    /// `X-Account-Access-Control` (tempauth's account ACLs).
    fn honours_account_acls(&self) -> bool;
}

/// Swift's `swift.authorize`: absent means every request is allowed (no auth middleware,
/// or a subrequest a middleware makes on its own authority).
#[derive(Clone)]
pub struct Authorize(pub Arc<dyn Authorizer>);

/// Swift's `swift.authorize_override`: a middleware above the auth middleware (tempurl)
/// has decided this request's authorization itself, so the auth middleware (if its
/// `allow_overrides` is on, the default) leaves the request alone.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizeOverride;

/// The client's address (Swift's `REMOTE_ADDR`), if the request came over a connection.
pub fn client_addr(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Swift's `swift.source`: which middleware made a subrequest (for the access log).
#[derive(Clone, Copy, Debug)]
pub struct SwiftSource(pub &'static str);

/// Swift's `swift.content_type_overridden`: a middleware (SLO) wrote the Content-Type of
/// this PUT itself, so its `swift_bytes` parameter is allowed through. Never inherited.
#[derive(Clone, Copy, Debug)]
pub struct ContentTypeOverridden;

/// What a middleware's subrequests inherit from the request that caused them: its
/// transaction, its caller's identity and authorizer, and the few headers Swift's
/// `make_env` carries over (the token itself, so a subrequest made above the auth
/// middleware is authenticated as the caller; the referer, for referrer ACLs).
#[derive(Clone)]
pub struct Caller {
    extensions: axum::http::Extensions,
    headers: HeaderMap,
}

const INHERITED_HEADERS: [&str; 7] = [
    "x-auth-token",
    "user-agent",
    "referer",
    "origin",
    "access-control-request-method",
    "x-user-id",
    "x-project-id",
];

impl Caller {
    pub fn of(parts: &axum::http::request::Parts) -> Caller {
        Caller::from(&parts.extensions, &parts.headers)
    }

    pub fn from(extensions: &axum::http::Extensions, headers: &HeaderMap) -> Caller {
        let mut inherited = HeaderMap::new();
        for name in INHERITED_HEADERS {
            if let Some(v) = headers.get(name) {
                inherited.insert(name, v.clone());
            }
        }
        if let Some(v) = headers
            .get("x-storage-token")
            .filter(|_| !inherited.contains_key("x-auth-token"))
        {
            inherited.insert("x-auth-token", v.clone());
        }
        Caller {
            extensions: extensions.clone(),
            headers: inherited,
        }
    }

    /// A subrequest to the rest of the stack on this caller's behalf. `path` is the quoted
    /// path with its query, as a client would send it; `headers` add to the inherited ones.
    pub fn subrequest(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Body,
        source: &'static str,
    ) -> Request {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = path
            .parse()
            .unwrap_or_else(|_| axum::http::Uri::from_static("/"));
        let mut all = self.headers.clone();
        for (k, v) in headers {
            if let Some(k) = k {
                all.insert(k, v);
            }
        }
        *req.headers_mut() = all;
        let ext = req.extensions_mut();
        for_each_inherited(&self.extensions, ext);
        ext.insert(SwiftSource(source));
        req
    }

    /// The same subrequest without the caller's authorizer: the middleware vouches for it
    /// (Swift's `make_pre_authed_request`).
    pub fn pre_authed(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Body,
        source: &'static str,
    ) -> Request {
        let mut req = self.subrequest(method, path, headers, body, source);
        req.extensions_mut().remove::<Authorize>();
        req.headers_mut().remove("x-auth-token");
        req
    }
}

fn for_each_inherited(from: &axum::http::Extensions, to: &mut axum::http::Extensions) {
    if let Some(t) = from.get::<TransId>() {
        to.insert(t.clone());
    }
    if let Some(u) = from.get::<RemoteUser>() {
        to.insert(u.clone());
    }
    if let Some(a) = from.get::<Authorize>() {
        to.insert(a.clone());
    }
    if let Some(o) = from.get::<AuthorizeOverride>() {
        to.insert(*o);
    }
}

/// The caller's authorizer's decision on `path` with the container ACL `acl`, as the app
/// will make it (no authorizer: allowed). Middlewares that act on the caller's behalf
/// before the app sees the request ask this first.
pub fn authorize_now(
    parts: &axum::http::request::Parts,
    path: &ApiPath,
    acl: Option<&str>,
) -> Decision {
    let Some(Authorize(authorizer)) = parts.extensions.get::<Authorize>() else {
        return Decision::Allowed;
    };
    authorizer.authorize(
        parts.extensions.get::<RemoteUser>().map(|u| &u.0),
        &AuthzRequest {
            method: parts.method.as_str(),
            account: &path.account,
            container: path.container.as_deref(),
            object: path.object.as_deref(),
            referer: parts.headers.get("referer").and_then(|v| v.to_str().ok()),
            acl,
        },
    )
}

/// Swift's answer to a denied request: 403 for a known caller, 401 for an anonymous one.
pub fn denied_response(parts: &axum::http::request::Parts) -> axum::response::Response {
    if parts.extensions.get::<RemoteUser>().is_some() {
        super::status_text(axum::http::StatusCode::FORBIDDEN)
    } else {
        super::status_text(axum::http::StatusCode::UNAUTHORIZED)
    }
}

/// A request path split as Swift's `split_path(path, 1, 4, True)` reads an API path:
/// version, account, container, object, percent-decoded. `None` for anything else
/// (auth and info endpoints, undecodable names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiPath {
    pub version: String,
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
}

impl ApiPath {
    pub fn parse(raw_path: &str) -> Option<ApiPath> {
        let rest = raw_path.strip_prefix('/')?;
        let mut segs = rest.splitn(4, '/');
        let version = segs.next()?.to_string();
        if version != "v1" && version != "v1.0" {
            return None;
        }
        let decode = |s: &str| -> Option<String> {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|d| d.into_owned())
        };
        let account = decode(segs.next()?)?;
        if account.is_empty() {
            return None;
        }
        let container = match segs.next() {
            Some(c) => Some(decode(c)?),
            None => None,
        };
        let object = match segs.next() {
            Some(o) => Some(decode(o)?),
            None => None,
        };
        Some(ApiPath {
            version,
            account,
            container: container.filter(|c| !c.is_empty()),
            object: object.filter(|o| !o.is_empty()),
        })
    }

    /// The quoted path of this account/container/object, as a client would send it.
    pub fn to_path(&self) -> String {
        use ringsmith::swift::escape::quote;
        let mut p = format!("/{}/{}", self.version, quote(&self.account));
        if let Some(c) = &self.container {
            p.push('/');
            p.push_str(&quote(c));
            if let Some(o) = &self.object {
                p.push('/');
                p.push_str(&quote(o));
            }
        }
        p
    }
}

/// A query parameter's value, `+` and percent escapes decoded.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    for pair in query?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            return Some(
                percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned(),
            );
        }
    }
    None
}

/// Whether the query names `key` at all (`?multipart-manifest`, `?bulk-delete`).
pub fn has_param(query: Option<&str>, key: &str) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_split_and_round_trip() {
        let p = ApiPath::parse("/v1/AUTH_test/c%20x/o/with/slashes").unwrap();
        assert_eq!(p.account, "AUTH_test");
        assert_eq!(p.container.as_deref(), Some("c x"));
        assert_eq!(p.object.as_deref(), Some("o/with/slashes"));
        assert_eq!(p.to_path(), "/v1/AUTH_test/c%20x/o/with/slashes");
        assert_eq!(ApiPath::parse("/info"), None);
        assert_eq!(ApiPath::parse("/v2/a"), None);
        assert_eq!(ApiPath::parse("/v1/"), None);
        let c = ApiPath::parse("/v1/a/c/").unwrap();
        assert_eq!((c.container.as_deref(), c.object), (Some("c"), None));
    }

    #[test]
    fn query_params_decode() {
        let q = Some("a=1&multipart-manifest=get&p=x%2Fy+z&flag");
        assert_eq!(query_param(q, "p").as_deref(), Some("x/y z"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert!(has_param(q, "multipart-manifest") && !has_param(q, "b"));
    }
}

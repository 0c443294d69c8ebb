//! tempurl: temporary URLs. A URL carrying `temp_url_sig` and `temp_url_expires` (and
//! optionally `temp_url_prefix`, `temp_url_ip_range`, `filename`, `inline`) is allowed
//! without a token when the signature is the HMAC, under one of the account's or the
//! container's `Temp-URL-Key`s, of the method, the expiry and the object's path (or
//! `prefix:` and the path up to the prefix, for prefix URLs; with `ip=<range>` first for
//! IP-bound URLs). HEAD is also allowed by a GET, PUT or POST signature.
//!
//! What a valid tempurl grants is exactly its object (or the objects under its prefix)
//! and its method, on the caller's side; below, the request carries an authorizer that
//! allows only the key's account (account key) or container (container key), so the
//! middlewares that read on the request's behalf (large-object segments, symlink
//! targets) stay inside it, as in Swift. The auth middleware is told to stand aside
//! ([`AuthorizeOverride`]), the caller has no identity (so nothing owner-only is shown),
//! and the query is reduced to the tempurl's own parameters. Uploads may not point at
//! other data (`X-Object-Manifest`, `X-Symlink-Target`, `X-Copy-From`: 400). Anything
//! wrong — signature, expiry, path, method, address, a missing key — is the same
//! `401 Temp URL invalid`, which says nothing of whether the object exists.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use ringsmith::swift::conf::ConfError;
use ringsmith::swift::escape::{quote, quote_with, unquote_bytes};

use crate::proxy::auth::{AuthzRequest, Decision, Identity};
use crate::proxy::backend::set;
use crate::proxy::env::{client_addr, Authorize, AuthorizeOverride, Authorizer, RemoteUser};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::signature::{self, parse_qs, Digest, IpRange};
use crate::proxy::{empty, text, Proxy};

const DEFAULT_METHODS: &str = "GET HEAD PUT POST DELETE";
const DEFAULT_INCOMING_REMOVE: &str = "x-timestamp x-open-expired";
const DEFAULT_OUTGOING_REMOVE: &str = "x-object-meta-*";
const DEFAULT_OUTGOING_ALLOW: &str = "x-object-meta-public-*";
/// Headers that would make an upload point at data the tempurl does not grant.
const DISALLOWED_INCOMING: [&str; 3] = ["x-object-manifest", "x-symlink-target", "x-copy-from"];

/// A list of header names, each exact or (ending in `*`) a prefix; case-insensitive.
#[derive(Clone, Debug, Default)]
pub struct HeaderRules {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl HeaderRules {
    pub fn parse(option: &str) -> HeaderRules {
        let mut rules = HeaderRules::default();
        for word in option.split_whitespace() {
            // `_` and `-` are one character to WSGI, where Swift compares them.
            let w = word.to_ascii_lowercase().replace('_', "-");
            match w.strip_suffix('*') {
                Some(p) => rules.prefixes.push(p.to_string()),
                None => rules.exact.push(w),
            }
        }
        rules
    }

    fn matches(&self, name: &str) -> bool {
        self.exact.iter().any(|e| e == name) || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

/// Removes the headers `remove` names unless `allow` names them too.
fn clean_headers(headers: &mut HeaderMap, remove: &HeaderRules, allow: &HeaderRules) {
    let doomed: Vec<_> = headers
        .keys()
        .filter(|k| {
            let n = k.as_str().replace('_', "-");
            !allow.matches(&n) && remove.matches(&n)
        })
        .cloned()
        .collect();
    for k in doomed {
        headers.remove(k);
    }
}

pub struct TempUrl {
    next: App,
    proxy: Arc<Proxy>,
    methods: Vec<String>,
    digests: BTreeSet<Digest>,
    incoming_remove: HeaderRules,
    incoming_allow: HeaderRules,
    outgoing_remove: HeaderRules,
    outgoing_allow: HeaderRules,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let s = &ctx.section;
    let words = |key: &str, default: &str| -> Vec<String> {
        s.str_or(key, default)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let methods = words("methods", DEFAULT_METHODS);
    let incoming_remove = words("incoming_remove_headers", DEFAULT_INCOMING_REMOVE);
    let incoming_allow = words("incoming_allow_headers", "");
    let outgoing_remove = words("outgoing_remove_headers", DEFAULT_OUTGOING_REMOVE);
    let outgoing_allow = words("outgoing_allow_headers", DEFAULT_OUTGOING_ALLOW);
    let (digests, _) = signature::allowed_digests(s.get("allowed_digests"))
        .map_err(|e| ctx.bad_option("allowed_digests", e))?;
    let mut info = serde_json::json!({
        "methods": methods,
        "incoming_remove_headers": incoming_remove,
        "incoming_allow_headers": incoming_allow,
        "outgoing_remove_headers": outgoing_remove,
        "outgoing_allow_headers": outgoing_allow,
        "allowed_digests": digests.iter().map(|d| d.name()).collect::<Vec<_>>(),
    });
    let deprecated: Vec<&str> = digests
        .iter()
        .filter(|d| d.is_deprecated())
        .map(|d| d.name())
        .collect();
    if !deprecated.is_empty() {
        info["deprecated_digests"] = serde_json::json!(deprecated);
    }
    ctx.info.register("tempurl", info);
    Ok(Arc::new(TempUrl {
        next,
        proxy: ctx.proxy.clone(),
        methods,
        digests,
        incoming_remove: HeaderRules::parse(&incoming_remove.join(" ")),
        incoming_allow: HeaderRules::parse(&incoming_allow.join(" ")),
        outgoing_remove: HeaderRules::parse(&outgoing_remove.join(" ")),
        outgoing_allow: HeaderRules::parse(&outgoing_allow.join(" ")),
    }))
}

/// Which key signed the URL, and so what the request may reach below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Account,
    Container,
}

/// The authorizer a valid tempurl leaves on its request: the key's account, or its
/// container, and nothing else (Swift's `authorize_same_account`/`_container`).
pub struct TempUrlGrant {
    pub account: String,
    /// `Some` for a container key.
    pub container: Option<String>,
}

impl Authorizer for TempUrlGrant {
    fn authorize(&self, _identity: Option<&Identity>, req: &AuthzRequest<'_>) -> Decision {
        let same_container = match &self.container {
            None => true,
            Some(c) => req.container == Some(c.as_str()),
        };
        if req.account == self.account && same_container {
            Decision::Allowed
        } else {
            Decision::Denied
        }
    }
    fn honours_account_acls(&self) -> bool {
        false
    }
}

/// A tempurl's parameters, as Swift's `get_temp_url_info` reads them.
#[derive(Debug, Default, Clone)]
pub struct TempUrlParams {
    pub sig: Option<String>,
    pub expires: Option<String>,
    pub prefix: Option<String>,
    pub filename: Option<String>,
    pub inline: bool,
    pub ip_range: Option<String>,
}

impl TempUrlParams {
    pub fn from_query(query: &str) -> TempUrlParams {
        let q = parse_qs(query);
        let get = |k: &str| signature::first(&q, k).map(str::to_string);
        TempUrlParams {
            sig: get("temp_url_sig"),
            expires: get("temp_url_expires"),
            prefix: get("temp_url_prefix"),
            filename: get("filename"),
            inline: signature::first(&q, "inline").is_some(),
            ip_range: get("temp_url_ip_range"),
        }
    }
}

/// What a tempurl request names: `(account, container, object)`, decoded; the object is
/// empty for a container root (allowed only when `container_root`).
pub fn path_parts(raw_path: &str, container_root: bool) -> Option<(String, String, String)> {
    let path = String::from_utf8(unquote_bytes(raw_path)).ok()?;
    let segs: Vec<&str> = path.splitn(5, '/').collect();
    let (ver, acc, con) = match segs.as_slice() {
        ["", v, a, c, ..] => (*v, *a, *c),
        _ => return None,
    };
    if ver != "v1" || acc.is_empty() || con.is_empty() {
        return None;
    }
    let obj = segs.get(4).copied();
    match obj {
        Some(o) if !o.trim_matches('/').is_empty() => {
            Some((acc.to_string(), con.to_string(), o.to_string()))
        }
        _ if container_root => Some((
            acc.to_string(),
            con.to_string(),
            obj.unwrap_or("").to_string(),
        )),
        _ => None,
    }
}

/// The message a tempurl's HMAC signs (Swift's `get_hmac`).
pub fn hmac_message(method: &str, expires: u64, path: &str, ip_range: Option<&str>) -> String {
    match ip_range {
        Some(ip) => format!("ip={ip}\n{method}\n{expires}\n{path}"),
        None => format!("{method}\n{expires}\n{path}"),
    }
}

/// Swift's `Content-Disposition` value for `filename`: quoted for the old parameter and
/// RFC 5987-encoded for `filename*`.
fn disposition(kind: &str, filename: &str) -> String {
    format!(
        "{kind}; filename=\"{}\"; filename*=UTF-8''{}",
        quote_with(filename, b" /"),
        quote(filename)
    )
}

/// The query a granted tempurl request goes on with: its own parameters only.
fn tempurl_query(params: &TempUrlParams, client_hex: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("temp_url_sig", client_hex);
    q.append_pair("temp_url_expires", params.expires.as_deref().unwrap_or(""));
    if let Some(p) = &params.prefix {
        q.append_pair("temp_url_prefix", p);
    }
    if let Some(f) = params.filename.as_deref().filter(|f| !f.is_empty()) {
        q.append_pair("filename", f);
    }
    if params.inline {
        q.append_pair("inline", "");
    }
    q.finish()
}

fn invalid(method: &Method, raw_path: &str) -> Response {
    let mut r = if method == Method::HEAD {
        empty(StatusCode::UNAUTHORIZED)
    } else {
        text(
            StatusCode::UNAUTHORIZED,
            "401 Unauthorized: Temp URL invalid\n",
        )
    };
    set(
        r.headers_mut(),
        "www-authenticate",
        &crate::proxy::www_authenticate(raw_path),
    );
    r
}

/// `X-Object-Manifest` as Swift names a WSGI header in its 400 body.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The account's and the container's `Temp-URL-Key`s (tempurl's and formpost's), each
/// with its scope.
pub async fn temp_url_keys(
    proxy: &Arc<Proxy>,
    account: &str,
    container: &str,
) -> Vec<(String, Scope)> {
    let mut keys = Vec::new();
    let ai = proxy.account_info(account).await;
    for k in ["temp-url-key", "temp-url-key-2"] {
        if let Some(v) = ai.meta.get(k) {
            keys.push((v.clone(), Scope::Account));
        }
    }
    let ci = proxy.container_info(account, container).await;
    for k in ["temp-url-key", "temp-url-key-2"] {
        if let Some(v) = ci.meta.get(k) {
            keys.push((v.clone(), Scope::Container));
        }
    }
    keys
}

impl TempUrl {
    async fn handle(&self, mut req: Request, params: TempUrlParams) -> Response {
        let method = req.method().clone();
        let raw_path = req.uri().path().to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let expires = params
            .expires
            .as_deref()
            .map(|e| signature::normalize_expires(e, now))
            .unwrap_or(0);
        let Some(client_sig) = params.sig.as_deref().filter(|s| !s.is_empty()) else {
            return invalid(&method, &raw_path);
        };
        if expires == 0 {
            return invalid(&method, &raw_path);
        }
        let Some((algo, client_hex)) = signature::parse_signature(client_sig) else {
            return invalid(&method, &raw_path);
        };
        let Some(digest) = Digest::from_name(&algo).filter(|d| self.digests.contains(d)) else {
            return invalid(&method, &raw_path);
        };
        if !self.methods.iter().any(|m| m == method.as_str()) {
            return invalid(&method, &raw_path);
        }
        let container_root =
            matches!(method, Method::GET | Method::HEAD) && params.prefix.as_deref() == Some("");
        let Some((account, container, object)) = path_parts(&raw_path, container_root) else {
            return invalid(&method, &raw_path);
        };
        let ip_range = params.ip_range.as_deref().filter(|r| !r.is_empty());
        if let Some(range) = ip_range {
            let allowed = match (client_addr(req.extensions()), IpRange::parse(range)) {
                (Some(ip), Some(net)) => net.contains(ip),
                _ => false,
            };
            if !allowed {
                return invalid(&method, &raw_path);
            }
        }
        let keys = temp_url_keys(&self.proxy, &account, &container).await;
        if keys.is_empty() {
            return invalid(&method, &raw_path);
        }
        let signed_path = match &params.prefix {
            None => format!("/v1/{account}/{container}/{object}"),
            Some(prefix) if object.starts_with(prefix.as_str()) => {
                format!("prefix:/v1/{account}/{container}/{prefix}")
            }
            Some(_) => return invalid(&method, &raw_path),
        };
        let signed_methods: &[&str] = if method == Method::HEAD {
            &["HEAD", "GET", "POST", "PUT"]
        } else {
            &[method.as_str()]
        };
        // Every candidate is computed and compared, so the time taken says nothing about
        // which key or method came closest.
        let mut scope = None;
        for m in signed_methods {
            let message = hmac_message(m, expires, &signed_path, ip_range);
            for (key, key_scope) in &keys {
                let want = digest.hmac_hex(key.as_bytes(), message.as_bytes());
                if signature::constant_time_eq(&want, &client_hex) && scope.is_none() {
                    scope = Some(key_scope.clone());
                }
            }
        }
        let Some(scope) = scope else {
            return invalid(&method, &raw_path);
        };

        if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
            if let Some(h) = req
                .headers()
                .keys()
                .find(|k| DISALLOWED_INCOMING.contains(&k.as_str()))
            {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The header '{}' is not allowed in this tempurl",
                        title_case(h.as_str())
                    ),
                );
            }
        }
        clean_headers(
            req.headers_mut(),
            &self.incoming_remove,
            &self.incoming_allow,
        );

        let ext = req.extensions_mut();
        ext.remove::<RemoteUser>();
        ext.insert(Authorize(Arc::new(TempUrlGrant {
            account: account.clone(),
            container: (scope == Scope::Container).then(|| container.clone()),
        })));
        ext.insert(AuthorizeOverride);
        // Only the tempurl's own parameters go on (Swift rewrites the query string).
        let query = tempurl_query(&params, &client_hex);
        if let Ok(uri) = format!("{raw_path}?{query}").parse() {
            *req.uri_mut() = uri;
        }
        let mut resp = self.next.call(req).await;
        clean_headers(
            resp.headers_mut(),
            &self.outgoing_remove,
            &self.outgoing_allow,
        );
        if matches!(method, Method::GET | Method::HEAD) && resp.status().is_success() {
            let generated_by_staticweb = resp
                .headers()
                .get("x-backend-content-generator")
                .is_some_and(|v| v.as_bytes() == b"staticweb");
            if !generated_by_staticweb && object.is_empty() {
                // The container root is allowed only for staticweb's pages.
                return invalid(&method, &raw_path);
            }
            let inline = params.inline || generated_by_staticweb;
            let filename = params.filename.as_deref().filter(|f| !f.is_empty());
            let existing = resp.headers_mut().remove("content-disposition");
            let value = match (inline, filename, existing) {
                (true, Some(f), _) => disposition("inline", f).into_bytes(),
                (true, None, _) => b"inline".to_vec(),
                (false, Some(f), _) => disposition("attachment", f).into_bytes(),
                (false, None, Some(e)) => e.as_bytes().to_vec(),
                (false, None, None) => {
                    let decoded = String::from_utf8_lossy(&unquote_bytes(&raw_path)).into_owned();
                    let name = decoded
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or("");
                    disposition("attachment", name).into_bytes()
                }
            };
            let value: Vec<u8> = String::from_utf8_lossy(&value)
                .replace('\n', "%0A")
                .into_bytes();
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                resp.headers_mut().insert("content-disposition", v);
            }
            let expiry = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires);
            set(
                resp.headers_mut(),
                "expires",
                &httpdate::fmt_http_date(expiry),
            );
        }
        resp
    }
}

impl Handler for TempUrl {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            if req.method() == Method::OPTIONS {
                return self.next.call(req).await;
            }
            let params = TempUrlParams::from_query(req.uri().query().unwrap_or(""));
            if params.sig.is_none() && params.expires.is_none() {
                return self.next.call(req).await;
            }
            self.handle(req, params).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_as_swift_splits_them() {
        assert_eq!(
            path_parts("/v1/AUTH_a/c/o%20x/y", false),
            Some(("AUTH_a".into(), "c".into(), "o x/y".into()))
        );
        assert_eq!(path_parts("/v1/AUTH_a/c", false), None);
        assert_eq!(path_parts("/v1/AUTH_a/c/", false), None);
        assert_eq!(path_parts("/v1/AUTH_a/c//", false), None);
        assert_eq!(path_parts("/v1.0/AUTH_a/c/o", false), None);
        assert_eq!(path_parts("/v1//c/o", false), None);
        assert_eq!(
            path_parts("/v1/AUTH_a/c", true),
            Some(("AUTH_a".into(), "c".into(), "".into()))
        );
        assert_eq!(
            path_parts("/v1/AUTH_a/c/", true),
            Some(("AUTH_a".into(), "c".into(), "".into()))
        );
        assert_eq!(path_parts("/v1/AUTH_a/c/%ff", false), None, "not UTF-8");
    }

    #[test]
    fn header_rules_prefixes_and_exceptions() {
        let mut h = HeaderMap::new();
        for n in [
            "x-object-meta-secret",
            "x-object-meta-public-x",
            "content-type",
        ] {
            h.insert(
                axum::http::HeaderName::from_static(n),
                HeaderValue::from_static("v"),
            );
        }
        clean_headers(
            &mut h,
            &HeaderRules::parse(DEFAULT_OUTGOING_REMOVE),
            &HeaderRules::parse(DEFAULT_OUTGOING_ALLOW),
        );
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-object-meta-public-x"]);
    }

    #[test]
    fn dispositions_quote_as_swift() {
        assert_eq!(
            disposition("attachment", "a b/ü.txt"),
            "attachment; filename=\"a b/%C3%BC.txt\"; filename*=UTF-8''a%20b/%C3%BC.txt"
        );
        assert_eq!(title_case("x-object-manifest"), "X-Object-Manifest");
    }

    #[test]
    fn grants_reach_only_their_scope() {
        let req = |account: &'static str, container: Option<&'static str>| AuthzRequest {
            method: "GET",
            account,
            container,
            object: Some("o"),
            referer: None,
            acl: None,
        };
        let acct = TempUrlGrant {
            account: "AUTH_a".into(),
            container: None,
        };
        assert_eq!(
            acct.authorize(None, &req("AUTH_a", Some("x"))),
            Decision::Allowed
        );
        assert_eq!(
            acct.authorize(None, &req("AUTH_b", Some("x"))),
            Decision::Denied
        );
        let cont = TempUrlGrant {
            account: "AUTH_a".into(),
            container: Some("c".into()),
        };
        assert_eq!(
            cont.authorize(None, &req("AUTH_a", Some("c"))),
            Decision::Allowed
        );
        assert_eq!(
            cont.authorize(None, &req("AUTH_a", Some("c2"))),
            Decision::Denied
        );
        assert_eq!(cont.authorize(None, &req("AUTH_a", None)), Decision::Denied);
        assert_eq!(
            cont.authorize(None, &req("AUTH_b", Some("c"))),
            Decision::Denied
        );
        assert!(!cont.honours_account_acls());
    }

    proptest! {
        // Random query strings and paths: parsing never panics, and a signature that was
        // not computed with the key never matches what the key computes.
        #[test]
        fn malformed_tempurls_never_panic_nor_match(
            query in "[a-z_=&%0-9A-F:+/.-]{0,120}",
            path in "(/v1(/[a-zA-Z%0-9_]{0,6}){0,5})|.{0,40}",
        ) {
            let p = TempUrlParams::from_query(&query);
            let parts = path_parts(&path, true);
            if let (Some(sig), Some((a, c, o))) = (p.sig.as_deref(), parts) {
                if let Some((algo, hexsig)) = signature::parse_signature(sig) {
                    if let Some(d) = Digest::from_name(&algo) {
                        let msg = hmac_message("GET", 4_000_000_000, &format!("/v1/{a}/{c}/{o}"), None);
                        let want = d.hmac_hex(b"the real key", msg.as_bytes());
                        prop_assert!(!signature::constant_time_eq(&want, &hexsig));
                    }
                }
            }
        }
    }
}

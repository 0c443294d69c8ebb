//! symlink: objects that point at other objects.
//!
//! `PUT` with `X-Symlink-Target: <container>/<object>` (and optionally
//! `X-Symlink-Target-Account`) and an empty body makes a symlink: the target is kept in
//! object sysmeta, and the container listing learns it through the container-update
//! etag override, so listings show `symlink_path`. With `X-Symlink-Target-Etag` the link
//! is *static*: the target must exist with that ETag when the link is made (its size is
//! recorded too), and a later GET fails with 409 if the target has changed since.
//!
//! `GET`/`HEAD` of a symlink is answered by its target (read with the caller's rights,
//! through the rest of the stack, so a link to a large-object manifest reads as the
//! large object), with `Content-Location` naming the target; chains are followed up to
//! `symloop_max` links, and a loop ends in 409. `?symlink=get` returns the link itself
//! with its `X-Symlink-Target*` headers. A `POST` to a symlink updates the link's own
//! metadata and answers 307 pointing at the target, as Swift does.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::{is_true, ConfError};

use crate::proxy::backend::{header_value, set};
use crate::proxy::env::{query_param, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, quote, status_text, text};

const TARGET: &str = "x-symlink-target";
const TARGET_ACCOUNT: &str = "x-symlink-target-account";
const TARGET_ETAG: &str = "x-symlink-target-etag";
const TARGET_BYTES: &str = "x-symlink-target-bytes";
const SYS_TARGET: &str = "x-object-sysmeta-symlink-target";
const SYS_TARGET_ACCOUNT: &str = "x-object-sysmeta-symlink-target-account";
const SYS_TARGET_ETAG: &str = "x-object-sysmeta-symlink-target-etag";
const SYS_TARGET_BYTES: &str = "x-object-sysmeta-symlink-target-bytes";
const SYMLOOP_EXTEND: &str = "x-object-sysmeta-symloop-extend";
const ALLOW_RESERVED_SYSMETA: &str = "x-object-sysmeta-allow-reserved-names";
const ALLOW_RESERVED_BACKEND: &str = "x-backend-allow-reserved-names";
const ETAG_OVERRIDE: &str = "x-object-sysmeta-container-update-override-etag";
const MD5_OF_EMPTY: &str = "d41d8cd98f00b204e9800998ecf8427e";

pub struct Symlink {
    next: App,
    symloop_max: u32,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let symloop_max: i64 = ctx.section.parse_or("symloop_max", 2i64)?;
    if symloop_max < 1 {
        return Err(ctx.bad_option(
            "symloop_max",
            format!("must be at least 1, not {symloop_max}"),
        ));
    }
    let symloop_max = symloop_max.min(u32::MAX as i64) as u32;
    ctx.info.register(
        "symlink",
        serde_json::json!({"symloop_max": symloop_max, "static_links": true}),
    );
    Ok(Arc::new(Symlink { next, symloop_max }))
}

fn conflict(body: String, location: Option<&str>) -> Response {
    let mut r = text(StatusCode::CONFLICT, body);
    set(r.headers_mut(), "content-type", "text/plain");
    if let Some(l) = location {
        set(r.headers_mut(), "content-location", l);
    }
    r
}

fn plain(status: StatusCode, body: &str) -> Response {
    let mut r = text(status, body.to_string());
    set(r.headers_mut(), "content-type", "text/plain");
    r
}

fn etag_of(h: &HeaderMap) -> Option<String> {
    header(h, "etag").map(|e| e.trim_matches('"').to_string())
}

/// How to walk a chain of links.
struct Walk<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    /// The client's query, for the first hop only.
    query: Option<&'a str>,
    /// Follow only static links (checking a new static link's target).
    static_only: bool,
    /// The request may name the reserved namespace (a middleware's own PUT, say object
    /// versioning's): so may the first hop, which is still made with the caller's rights.
    allow_reserved: bool,
    /// The ETag the previous (static) link promised.
    want_etag: Option<String>,
}

impl Symlink {
    /// GET/HEAD: follow links from `path` until an object that is not one.
    /// `want_etag`: the ETag the previous (static) link promised.
    async fn follow(&self, caller: &Caller, walk: Walk<'_>, first: ApiPath) -> Response {
        let Walk {
            method,
            headers,
            query,
            static_only,
            allow_reserved,
            mut want_etag,
        } = walk;
        let mut path = first;
        let mut hops = 0u32;
        let mut last_target: Option<String> = None;
        // A link whose sysmeta allows reserved names was made by a middleware (object
        // versioning) that had authorized its maker; its target is read on its authority.
        let mut into_reserved = false;
        loop {
            let uri = match (query, hops, &last_target) {
                (Some(q), 0, None) => format!("{}?{q}", path.to_path()),
                _ => path.to_path(),
            };
            let hop = if into_reserved {
                let mut h = headers.clone();
                set(&mut h, ALLOW_RESERVED_BACKEND, "true");
                caller.pre_authed(method.clone(), &uri, h, Body::empty(), "SYM")
            } else {
                let mut h = headers.clone();
                if allow_reserved && last_target.is_none() {
                    set(&mut h, ALLOW_RESERVED_BACKEND, "true");
                }
                caller.subrequest(method.clone(), &uri, h, Body::empty(), "SYM")
            };
            let mut resp = self.next.call(hop).await;
            if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && headers.contains_key("range") {
                // A link has no bytes of its own: see whether this is one before answering.
                let mut whole = headers.clone();
                whole.remove("range");
                let probe = if into_reserved {
                    set(&mut whole, ALLOW_RESERVED_BACKEND, "true");
                    caller.pre_authed(Method::HEAD, &path.to_path(), whole, Body::empty(), "SYM")
                } else {
                    caller.subrequest(Method::HEAD, &path.to_path(), whole, Body::empty(), "SYM")
                };
                let probe = self.next.call(probe).await;
                if probe.headers().contains_key(SYS_TARGET) {
                    resp = probe;
                }
            }
            let rh = resp.headers();
            let target = header(rh, SYS_TARGET).map(str::to_string);
            let link_etag = header(rh, SYS_TARGET_ETAG).map(str::to_string);
            let Some(target) = target.filter(|_| !static_only || link_etag.is_some()) else {
                let found = etag_of(resp.headers());
                if let (Some(found), Some(want)) = (&found, &want_etag) {
                    // Whatever the answer (a 412 to an If-Match carries the ETag too):
                    // a static link to changed data is a conflict, as in Swift.
                    if found != want {
                        return conflict(
                            // Python's %r of the two strings.
                            format!("Object Etag '{found}' does not match X-Symlink-Target-Etag header '{want}'"),
                            last_target.as_deref(),
                        );
                    }
                }
                if let Some(l) = &last_target {
                    set(resp.headers_mut(), "content-location", l);
                }
                return resp;
            };
            let found = link_etag.clone().or_else(|| etag_of(rh));
            if let (Some(want), Some(found)) = (&want_etag, &found) {
                if want != found {
                    return conflict(
                        "X-Symlink-Target-Etag headers do not match".into(),
                        last_target.as_deref(),
                    );
                }
            }
            if hops >= self.symloop_max {
                return conflict(
                    format!(
                        "Too many levels of symbolic links, maximum allowed is {}",
                        self.symloop_max
                    ),
                    None,
                );
            }
            let account = header(rh, SYS_TARGET_ACCOUNT)
                .map(|a| percent_decode_str(a).decode_utf8_lossy().into_owned())
                .unwrap_or_else(|| path.account.clone());
            if !header(rh, SYMLOOP_EXTEND).is_some_and(is_true) {
                hops += 1;
            }
            into_reserved = header(rh, ALLOW_RESERVED_SYSMETA).is_some_and(is_true);
            let decoded = percent_decode_str(&target).decode_utf8_lossy().into_owned();
            let Some((c, o)) = decoded.split_once('/') else {
                return status_text(StatusCode::CONFLICT);
            };
            path = ApiPath {
                version: path.version.clone(),
                account,
                container: Some(c.to_string()),
                object: Some(o.to_string()),
            };
            last_target = Some(path.to_path());
            want_etag = link_etag;
        }
    }

    async fn put(&self, req: Request, path: ApiPath) -> Response {
        let (mut parts, body) = req.into_parts();
        let has_body = match header(&parts.headers, "content-length") {
            Some(v) => v.trim() != "0",
            None => body
                .collect()
                .await
                .map(|b| !b.to_bytes().is_empty())
                .unwrap_or(true),
        };
        if has_body {
            return plain(
                StatusCode::BAD_REQUEST,
                "Symlink requests require a zero byte body",
            );
        }
        let h = &mut parts.headers;
        let raw_target = header(h, TARGET).unwrap_or("").to_string();
        let form = "X-Symlink-Target header must be of the form <container name>/<object name>";
        let decoded = percent_decode_str(&raw_target)
            .decode_utf8_lossy()
            .into_owned();
        let Some((tc, to)) = decoded
            .split_once('/')
            .filter(|(c, o)| !decoded.starts_with('/') && !c.is_empty() && !o.is_empty())
        else {
            return plain(StatusCode::PRECONDITION_FAILED, form);
        };
        let (tc, to) = (tc.to_string(), to.to_string());
        set(h, TARGET, &quote(&format!("{tc}/{to}")));
        let account = match header(h, TARGET_ACCOUNT).map(str::to_string) {
            Some(a) => {
                let a = percent_decode_str(&a).decode_utf8_lossy().into_owned();
                if a.is_empty() || a.contains('/') {
                    return plain(
                        StatusCode::PRECONDITION_FAILED,
                        "Account name cannot contain slashes",
                    );
                }
                set(h, TARGET_ACCOUNT, &quote(&a));
                a
            }
            None => path.account.clone(),
        };
        if (account.as_str(), Some(tc.as_str()), Some(to.as_str()))
            == (
                path.account.as_str(),
                path.container.as_deref(),
                path.object.as_deref(),
            )
        {
            return plain(StatusCode::BAD_REQUEST, "Symlink cannot target itself");
        }
        let etag = header(h, TARGET_ETAG).map(|e| e.trim_matches('"').to_string());
        if etag
            .as_deref()
            .is_some_and(|e| e.contains([';', '"', '\\']))
        {
            return plain(StatusCode::BAD_REQUEST, "Bad X-Symlink-Target-Etag format");
        }
        if etag.is_none() && header(h, "content-type").is_none() {
            set(h, "content-type", "application/symlink");
        }
        let target_path = ApiPath {
            version: path.version.clone(),
            account: account.clone(),
            container: Some(tc),
            object: Some(to),
        };
        if let Some(etag) = &etag {
            let caller = Caller::of(&parts);
            let resp = self
                .follow(
                    &caller,
                    Walk {
                        method: &Method::HEAD,
                        headers: &HeaderMap::new(),
                        query: None,
                        static_only: true,
                        allow_reserved: header(&parts.headers, ALLOW_RESERVED_BACKEND)
                            .is_some_and(is_true),
                        want_etag: Some(etag.clone()),
                    },
                    target_path.clone(),
                )
                .await;
            if resp.status() == StatusCode::NOT_FOUND {
                return conflict(
                    "X-Symlink-Target does not exist".into(),
                    Some(&target_path.to_path()),
                );
            }
            if resp.status() == StatusCode::CONFLICT {
                // The walk's own conflict, with its explanation.
                return resp;
            }
            if !resp.status().is_success() {
                return status_text(resp.status());
            }
            let rh = resp.headers();
            let h = &mut parts.headers;
            if let Some(v) = header(rh, ETAG_OVERRIDE) {
                if !h.contains_key(ETAG_OVERRIDE) {
                    let params = v
                        .split_once(';')
                        .map(|(_, p)| format!(";{p}"))
                        .unwrap_or_default();
                    set(h, ETAG_OVERRIDE, &format!("{MD5_OF_EMPTY}{params}"));
                }
            }
            if let Some(slo) = header(rh, "x-object-sysmeta-slo-etag") {
                if !h.contains_key(ETAG_OVERRIDE) {
                    set(h, ETAG_OVERRIDE, &format!("{MD5_OF_EMPTY}; slo_etag={slo}"));
                }
            }
            let bytes = header(rh, "x-object-sysmeta-slo-size")
                .or_else(|| header(rh, "content-length"))
                .unwrap_or("0")
                .to_string();
            set(h, SYS_TARGET_BYTES, &bytes);
            set(h, SYS_TARGET_ETAG, etag);
            if header(h, "content-type").is_none() {
                if let Some(ct) = header(rh, "content-type").map(str::to_string) {
                    set(h, "content-type", &ct);
                }
            }
        }
        let h = &mut parts.headers;
        for (user, sys) in [(TARGET, SYS_TARGET), (TARGET_ACCOUNT, SYS_TARGET_ACCOUNT)] {
            if let Some(v) = h.remove(user) {
                h.insert(HeaderName::from_static(sys), v);
            }
        }
        h.remove(TARGET_ETAG);
        h.remove(TARGET_BYTES);
        let mut override_parts = vec![
            header(h, ETAG_OVERRIDE).unwrap_or(MD5_OF_EMPTY).to_string(),
            format!("symlink_target={}", header(h, SYS_TARGET).unwrap_or("")),
        ];
        if let Some(a) = header(h, SYS_TARGET_ACCOUNT) {
            override_parts.push(format!("symlink_target_account={a}"));
        }
        if let Some(e) = header(h, SYS_TARGET_ETAG) {
            override_parts.push(format!("symlink_target_etag={e}"));
            override_parts.push(format!(
                "symlink_target_bytes={}",
                header(h, SYS_TARGET_BYTES).unwrap_or("0")
            ));
        }
        set(h, ETAG_OVERRIDE, &override_parts.join("; "));
        set(h, "content-length", "0");
        self.next
            .call(Request::from_parts(parts, Body::empty()))
            .await
    }

    async fn post(&self, req: Request, path: ApiPath) -> Response {
        if req.headers().contains_key(TARGET) {
            return plain(
                StatusCode::BAD_REQUEST,
                "A PUT request is required to set a symlink target",
            );
        }
        let resp = self.next.call(req).await;
        if !resp.status().is_success() {
            return resp;
        }
        let rh = resp.headers();
        let Some(target) = header(rh, SYS_TARGET) else {
            return resp;
        };
        let account = header(rh, SYS_TARGET_ACCOUNT)
            .map(str::to_string)
            .unwrap_or_else(|| quote(&path.account));
        let mut r = text(
            StatusCode::TEMPORARY_REDIRECT,
            "The requested POST was applied to a symlink. POST directly to the target to apply requested metadata.",
        );
        let out = r.headers_mut();
        set(
            out,
            "location",
            &format!("/{}/{account}/{target}", path.version),
        );
        if let Some(e) = header(rh, SYS_TARGET_ETAG) {
            set(out, TARGET_ETAG, e);
        }
        for (k, v) in rh {
            if k.as_str().starts_with("x-object-sysmeta-") {
                out.insert(k.clone(), v.clone());
            }
        }
        r
    }

    /// Listing entries of symlinks get `symlink_path` (and the static link's etag and
    /// size) from the parameters the etag override left on their `hash`.
    async fn listing(&self, req: Request, path: ApiPath) -> Response {
        let resp = self.next.call(req).await;
        if resp.status() != StatusCode::OK
            || !header(resp.headers(), "content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let Ok(raw) = http_body_util::Limited::new(body, 64 << 20).collect().await else {
            return status_text(StatusCode::SERVICE_UNAVAILABLE);
        };
        let raw = raw.to_bytes();
        if !super::listing_mentions(&raw, "symlink_target") {
            // No symlink in this page: the listing goes on as it came, unparsed.
            return Response::from_parts(parts, Body::from(raw));
        }
        let Ok(mut listing) = serde_json::from_slice::<Vec<serde_json::Value>>(&raw) else {
            return Response::from_parts(parts, Body::from(raw));
        };
        for entry in listing.iter_mut() {
            let Some(hash) = entry
                .get("hash")
                .and_then(|h| h.as_str())
                .map(str::to_string)
            else {
                continue;
            };
            let mut pieces = hash.split(';').map(str::trim);
            let mut kept = pieces.next().unwrap_or("").to_string();
            let mut target = None;
            let mut account = path.account.clone();
            for param in pieces {
                let (k, v) = param.split_once('=').unwrap_or((param, ""));
                match k {
                    "symlink_target" => target = Some(v.to_string()),
                    "symlink_target_account" => account = v.to_string(),
                    "symlink_target_etag" => entry["symlink_etag"] = v.into(),
                    "symlink_target_bytes" => {
                        entry["symlink_bytes"] = v
                            .parse::<u64>()
                            .map(Into::into)
                            .unwrap_or(serde_json::Value::Null)
                    }
                    _ => kept.push_str(&format!("; {param}")),
                }
            }
            entry["hash"] = kept.into();
            if let Some(t) = target {
                entry["symlink_path"] = format!("/{}/{account}/{t}", path.version).into();
            }
        }
        let out = serde_json::to_vec(&listing).unwrap_or_default();
        set(&mut parts.headers, "content-length", &out.len().to_string());
        Response::from_parts(parts, Body::from(out))
    }
}

impl Handler for Symlink {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()).filter(|p| p.container.is_some())
            else {
                return self.next.call(req).await;
            };
            let method = req.method().clone();
            if path.object.is_none() {
                return if method == Method::GET {
                    self.listing(req, path).await
                } else {
                    self.next.call(req).await
                };
            }
            match method {
                Method::GET | Method::HEAD => {
                    let query = req.uri().query().map(str::to_string);
                    if query_param(query.as_deref(), "symlink").as_deref() == Some("get") {
                        let mut resp = self.next.call(req).await;
                        let h = resp.headers_mut();
                        for (user, sys) in [
                            (TARGET, SYS_TARGET),
                            (TARGET_ACCOUNT, SYS_TARGET_ACCOUNT),
                            (TARGET_ETAG, SYS_TARGET_ETAG),
                            (TARGET_BYTES, SYS_TARGET_BYTES),
                        ] {
                            if let Some(v) = header(h, sys).map(header_value) {
                                h.insert(HeaderName::from_static(user), v);
                            }
                        }
                        return resp;
                    }
                    let (parts, _) = req.into_parts();
                    let caller = Caller::from(&parts.extensions, &HeaderMap::new());
                    let walk = Walk {
                        method: &method,
                        headers: &parts.headers,
                        query: query.as_deref(),
                        static_only: false,
                        allow_reserved: false,
                        want_etag: None,
                    };
                    self.follow(&caller, walk, path).await
                }
                Method::PUT if req.headers().contains_key(TARGET) => self.put(req, path).await,
                Method::POST => self.post(req, path).await,
                _ => self.next.call(req).await,
            }
        })
    }
}

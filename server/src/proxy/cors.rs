//! CORS as Swift's proxy does it: preflight `OPTIONS` answered from the container's
//! `X-Container-Meta-Access-Control-*` metadata, and the `Access-Control-*` headers added
//! to actual requests from an allowed origin (strict mode: other origins get none).
//! The proxy's own options join in as Swift's do: `cors_allow_origin` adds origins every
//! container allows, `cors_expose_headers` adds headers every answer exposes, and
//! `strict_cors_mode = false` decorates actual requests from any origin.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::backend::set;
use super::empty;

/// The container's CORS settings (its metadata).
#[derive(Clone, Debug, Default)]
pub struct Cors {
    pub allow_origin: Option<String>,
    pub max_age: Option<String>,
    pub expose_headers: Option<String>,
}

impl Cors {
    pub fn from_container_headers(h: &HeaderMap) -> Cors {
        let get = |k: &str| super::header(h, k).map(str::to_string);
        Cors {
            allow_origin: get("x-container-meta-access-control-allow-origin"),
            max_age: get("x-container-meta-access-control-max-age"),
            expose_headers: get("x-container-meta-access-control-expose-headers"),
        }
    }

    /// Swift's `is_origin_allowed`: the origin (or `*`) is listed by the container
    /// (space-separated) or by the proxy's `cors_allow_origin`.
    pub fn allows(&self, origin: &str, proxy: &CorsOptions) -> bool {
        let container = self
            .allow_origin
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .map(str::trim)
            .filter(|o| !o.is_empty());
        let operator = proxy.allow_origin.iter().map(String::as_str);
        container.chain(operator).any(|o| o == origin || o == "*")
    }

    fn is_wildcard(&self) -> bool {
        self.allow_origin.as_deref().map(str::trim) == Some("*")
    }
}

/// The proxy app's CORS options (`[app:proxy-server]`).
#[derive(Clone, Debug)]
pub struct CorsOptions {
    /// `cors_allow_origin`: comma-separated origins allowed on every container.
    pub allow_origin: Vec<String>,
    /// `cors_expose_headers`: comma-separated headers exposed on every answer.
    pub expose_headers: Vec<String>,
    /// `strict_cors_mode` (default true): actual requests from an origin that is not
    /// allowed get no CORS headers. When false they get them anyway (the browser then
    /// decides), as Swift's non-strict mode does.
    pub strict: bool,
}

impl Default for CorsOptions {
    fn default() -> Self {
        CorsOptions {
            allow_origin: Vec::new(),
            expose_headers: Vec::new(),
            strict: true,
        }
    }
}

impl CorsOptions {
    pub fn from_section(
        app: &ringsmith::swift::conf::Section,
    ) -> Result<Self, ringsmith::swift::conf::ConfError> {
        let list = |k: &str| -> Vec<String> {
            app.get(k)
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        Ok(CorsOptions {
            allow_origin: list("cors_allow_origin"),
            expose_headers: list("cors_expose_headers"),
            strict: app.bool_or("strict_cors_mode", true)?,
        })
    }
}

/// The methods the proxy app's controllers allow (an object's `COPY` is the copy
/// middleware's, added to a successful answer only, as Swift's copy middleware does).
pub fn allowed_methods() -> &'static str {
    "HEAD, GET, PUT, POST, DELETE, OPTIONS"
}

/// Swift's `OPTIONS`: 200 with `Allow` when there is no `Origin` (or no container to ask);
/// 401 for an origin the container does not allow or a method that is not allowed; else
/// 200 with the preflight headers.
pub fn preflight(
    headers: &HeaderMap,
    object: bool,
    cors: Option<&Cors>,
    proxy: &CorsOptions,
) -> Response {
    let mut r = app_preflight(headers, cors, proxy);
    if object && r.status().is_success() {
        for name in ["allow", "access-control-allow-methods"] {
            if let Some(v) = r.headers().get(name).and_then(|v| v.to_str().ok()) {
                let with_copy = format!("{v}, COPY");
                set(r.headers_mut(), name, &with_copy);
            }
        }
    }
    r
}

/// The proxy app's own `OPTIONS` answer (before the copy middleware's addition).
fn app_preflight(headers: &HeaderMap, cors: Option<&Cors>, proxy: &CorsOptions) -> Response {
    let allow = allowed_methods();
    let mut r = empty(StatusCode::OK);
    set(r.headers_mut(), "allow", allow);
    let Some(origin) = super::header(headers, "origin").filter(|o| !o.is_empty()) else {
        return r;
    };
    let Some(cors) = cors else {
        return r;
    };
    let method_ok = super::header(headers, "access-control-request-method")
        .is_some_and(|m| allow.split(", ").any(|a| a == m));
    if !cors.allows(origin, proxy) || !method_ok {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let h = r.headers_mut();
    if cors.is_wildcard() {
        set(h, "access-control-allow-origin", "*");
    } else {
        set(h, "access-control-allow-origin", origin);
        set(h, "vary", "Origin");
    }
    if let Some(age) = &cors.max_age {
        set(h, "access-control-max-age", age);
    }
    set(h, "access-control-allow-methods", allow);
    let requested: Vec<&str> = super::header(headers, "access-control-request-headers")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !requested.is_empty() {
        set(h, "access-control-allow-headers", &requested.join(", "));
        let vary = match h.get("vary").and_then(|v| v.to_str().ok()) {
            Some(v) => format!("{v}, Access-Control-Request-Headers"),
            None => "Access-Control-Request-Headers".to_string(),
        };
        set(h, "vary", &vary);
    }
    r
}

/// The `Access-Control-*` headers of an actual request from `origin` (strict mode: none
/// for an origin neither the container nor the proxy allows).
pub fn decorate(resp: &mut Response, origin: &str, cors: &Cors, proxy: &CorsOptions) {
    if proxy.strict && !cors.allows(origin, proxy) {
        return;
    }
    let h = resp.headers_mut();
    if !h.contains_key("access-control-expose-headers") {
        let mut expose: Vec<String> = [
            "cache-control",
            "content-language",
            "content-type",
            "expires",
            "last-modified",
            "pragma",
            "etag",
            "x-timestamp",
            "x-trans-id",
            "x-openstack-request-id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expose.extend(proxy.expose_headers.iter().cloned());
        for name in h.keys() {
            let n = name.as_str();
            if n.starts_with("x-container-meta-") || n.starts_with("x-object-meta-") {
                expose.push(n.to_string());
            }
        }
        if let Some(extra) = &cors.expose_headers {
            expose.extend(
                extra
                    .split(' ')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty()),
            );
        }
        let mut seen = std::collections::HashSet::new();
        expose.retain(|e| seen.insert(e.clone()));
        set(h, "access-control-expose-headers", &expose.join(", "));
    }
    if !h.contains_key("access-control-allow-origin") {
        if cors.is_wildcard() {
            set(h, "access-control-allow-origin", "*");
        } else {
            set(h, "access-control-allow-origin", origin);
            let vary = match h.get("vary").and_then(|v| v.to_str().ok()) {
                Some(v) => format!("{v}, Origin"),
                None => "Origin".to_string(),
            };
            set(h, "vary", &vary);
        }
    }
}

/// Whether CORS applies to this method's answers (Swift decorates these handlers).
pub fn applies_to(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::POST | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn req(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn preflight_follows_swift() {
        let star = Cors {
            allow_origin: Some("*".into()),
            ..Cors::default()
        };
        // No Origin: a plain OPTIONS.
        assert_eq!(
            preflight(&req(&[]), true, Some(&star), &CorsOptions::default()).status(),
            200
        );
        // Origin without a requested method: refused.
        let r = preflight(
            &req(&[("origin", "http://m.com")]),
            true,
            Some(&star),
            &CorsOptions::default(),
        );
        assert_eq!(r.status(), 401);
        let r = preflight(
            &req(&[
                ("origin", "http://m.com"),
                ("access-control-request-method", "GET"),
            ]),
            true,
            Some(&star),
            &CorsOptions::default(),
        );
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert!(!r.headers().contains_key("access-control-expose-headers"));
        let secret = Cors {
            allow_origin: Some("http://secret.com".into()),
            ..Cors::default()
        };
        let r = preflight(
            &req(&[
                ("origin", "http://m.com"),
                ("access-control-request-method", "GET"),
            ]),
            true,
            Some(&secret),
            &CorsOptions::default(),
        );
        assert_eq!(r.status(), 401);
    }

    #[test]
    fn actual_requests_get_headers_only_for_allowed_origins() {
        let secret = Cors {
            allow_origin: Some("http://secret.com".into()),
            ..Cors::default()
        };
        let mut r = empty(StatusCode::OK);
        set(r.headers_mut(), "x-object-meta-color", "red");
        decorate(&mut r, "http://m.com", &secret, &CorsOptions::default());
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        decorate(
            &mut r,
            "http://secret.com",
            &secret,
            &CorsOptions::default(),
        );
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "http://secret.com"
        );
        let expose = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(expose.split(", ").any(|h| h == "x-object-meta-color"));
    }

    #[test]
    fn proxy_options_join_the_containers() {
        let none = Cors::default();
        let operator = CorsOptions {
            allow_origin: vec!["http://op.com".into()],
            expose_headers: vec!["X-Custom".into()],
            strict: true,
        };
        assert!(none.allows("http://op.com", &operator));
        assert!(!none.allows("http://m.com", &operator));
        let ok = req(&[
            ("origin", "http://op.com"),
            ("access-control-request-method", "PUT"),
        ]);
        let r = preflight(&ok, true, Some(&none), &operator);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "http://op.com");
        let mut r = empty(StatusCode::OK);
        decorate(&mut r, "http://op.com", &none, &operator);
        let expose = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(expose.split(", ").any(|h| h == "X-Custom"), "{expose}");
        // Strict: an unknown origin gets nothing; lax: it gets its own origin back.
        let mut r = empty(StatusCode::OK);
        decorate(&mut r, "http://m.com", &none, &operator);
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        let lax = CorsOptions {
            strict: false,
            ..operator
        };
        let mut r = empty(StatusCode::OK);
        decorate(&mut r, "http://m.com", &none, &lax);
        assert_eq!(r.headers()["access-control-allow-origin"], "http://m.com");
        assert_eq!(r.headers()["vary"], "Origin");
        // Preflight is never lax.
        let m = req(&[
            ("origin", "http://m.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert_eq!(preflight(&m, true, Some(&none), &lax).status(), 401);
    }
}

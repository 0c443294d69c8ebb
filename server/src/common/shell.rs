//! The storage-server shell: what the object, container and account servers do the same
//! way around their own handlers.
//!
//! ```text
//!  request ─► /recon/* ? ─► recon                       (any method, as Swift's middleware)
//!          ─► OPTIONS   ─► 200, Allow from the methods the server serves
//!          ─► path not UTF-8 or with NUL ─► 412
//!          ─► method not served ─► 405
//!          ─► the server's handler (with the decoded path)
//!  every answer ─► one access-log event (method, path, status, ms)
//! ```
//!
//! The handlers use the request checks below, in the order Swift's servers apply them:
//! [`storage_path`] (400/412), [`DeviceSettings::require`](super::DeviceSettings::require)
//! (507), [`required_timestamp`] (400), and [`blocking`] for disk and SQLite work.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::Router;

use super::config::StorageConfig;
use super::headers as h;
use super::path::{decode_path, parse_storage_path, PathError, StoragePath};
use super::{empty, plain, Timestamp, SWIFT_VERSION};
use crate::recon::{ReconState, ServerKind};

/// An HTTP answer of a storage server.
pub type Resp = Response<Body>;

/// What tells one storage server from another to the shell.
pub struct Shell {
    /// `object-server`, `container-server` or `account-server`: the log target and the
    /// `Server` header of OPTIONS.
    pub name: &'static str,
    /// The methods the server serves besides OPTIONS.
    pub methods: Vec<&'static str>,
    pub recon: ReconState,
}

impl Shell {
    /// The shell of a `kind` server serving `methods`, with recon over `storage`'s
    /// devices, policies and recon cache.
    pub fn new(
        name: &'static str,
        kind: ServerKind,
        methods: Vec<&'static str>,
        storage: &StorageConfig,
    ) -> Shell {
        Shell {
            name,
            methods,
            recon: ReconState::new(
                kind,
                storage.devices.devices.clone(),
                storage.swift_dir.clone(),
                storage.recon_cache_path.clone(),
                storage.policies.clone(),
            ),
        }
    }

    /// The `Allow` header: every served method and OPTIONS, sorted as Swift lists them.
    fn allow(&self) -> String {
        let mut all: Vec<&str> = self.methods.iter().copied().chain(["OPTIONS"]).collect();
        all.sort_unstable();
        all.dedup();
        all.join(", ")
    }

    /// A router that answers recon, OPTIONS, bad paths and unserved methods, and hands
    /// the rest to `handler` with the percent-decoded path.
    pub fn router<H, F>(self, handler: H) -> Router
    where
        H: Fn(Request, String) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Resp> + Send + 'static,
    {
        let shell = Arc::new(self);
        Router::new().fallback(move |req: Request| {
            let shell = shell.clone();
            let handler = handler.clone();
            async move {
                let started = std::time::Instant::now();
                let method = req.method().clone();
                let raw_path = req.uri().path().to_string();
                let resp = if raw_path.starts_with("/recon/") {
                    shell.recon.handle(&raw_path).await
                } else {
                    match shell.check(&req) {
                        Ok(path) => handler(req, path).await,
                        Err(r) => r,
                    }
                };
                tracing::info!(
                    server = shell.name,
                    method = %method,
                    path = %raw_path,
                    status = resp.status().as_u16(),
                    ms = started.elapsed().as_secs_f64() * 1000.0,
                    "request"
                );
                resp
            }
        })
    }

    /// OPTIONS, the path's encoding and the method: the decoded path, or the answer.
    fn check(&self, req: &Request) -> Result<String, Resp> {
        if req.method() == Method::OPTIONS {
            let mut r = empty(StatusCode::OK);
            if let Ok(v) = HeaderValue::from_str(&self.allow()) {
                r.headers_mut().insert("allow", v);
            }
            h::insert(
                r.headers_mut(),
                "server",
                &format!("{}/{SWIFT_VERSION}", self.name),
            );
            return Err(r);
        }
        let path = decode_path(req.uri().path()).map_err(|_| bad_encoding())?;
        if !self.methods.contains(&req.method().as_str()) {
            return Err(plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
        }
        Ok(path)
    }
}

fn bad_encoding() -> Resp {
    plain(
        StatusCode::PRECONDITION_FAILED,
        "Invalid UTF8 or contains NULL",
    )
}

/// `/<device>/<partition>[/...]` with `min` to `max` segments; 400 or 412 otherwise.
pub fn storage_path(path: &str, min: usize, max: usize) -> Result<StoragePath, Resp> {
    parse_storage_path(path, min, max).map_err(|e| match e {
        PathError::Invalid(m) => plain(StatusCode::BAD_REQUEST, m),
        PathError::BadEncoding => bad_encoding(),
    })
}

/// The `X-Timestamp` every write carries; 400 when missing or unreadable.
pub fn required_timestamp(headers: &HeaderMap) -> Result<Timestamp, Resp> {
    match h::timestamp(headers, "x-timestamp") {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(plain(StatusCode::BAD_REQUEST, "Missing X-Timestamp header")),
        Err(m) => Err(plain(StatusCode::BAD_REQUEST, m)),
    }
}

/// Runs disk or SQLite work on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking storage task panicked")
}

/// Swift's `is_true` over a header: absent or any other value is false.
pub fn header_is_true(headers: &HeaderMap, name: &str) -> bool {
    h::get(headers, name).is_some_and(ringsmith::swift::conf::is_true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(methods: Vec<&'static str>) -> Shell {
        Shell {
            name: "test-server",
            methods,
            recon: ReconState::new(
                ServerKind::Object,
                "/nonexistent".into(),
                "/nonexistent".into(),
                "/nonexistent".into(),
                ringsmith::swift::policy::Policies::default(),
            ),
        }
    }

    #[test]
    fn allow_lists_options_and_sorts_like_swift() {
        assert_eq!(
            shell(vec!["PUT", "REPLICATE", "GET", "HEAD", "POST", "DELETE"]).allow(),
            "DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE"
        );
    }

    #[test]
    fn checks_come_in_swifts_order() {
        let s = shell(vec!["GET"]);
        let req = |m: &str, p: &str| {
            Request::builder()
                .method(m)
                .uri(p)
                .body(Body::empty())
                .unwrap()
        };
        // A bad path is refused before the method is looked at.
        assert_eq!(
            s.check(&req("PATCH", "/sda/1/%FF")).unwrap_err().status(),
            412
        );
        assert_eq!(
            s.check(&req("PATCH", "/sda/1/a")).unwrap_err().status(),
            405
        );
        let r = s.check(&req("OPTIONS", "/sda/1/%FF")).unwrap_err();
        assert_eq!(r.headers()["allow"], "GET, OPTIONS");
        assert_eq!(s.check(&req("GET", "/sda/1/a%20b")).unwrap(), "/sda/1/a b");
    }
}

//! container_quotas: a container's owner caps it with `X-Container-Meta-Quota-Bytes`
//! and `X-Container-Meta-Quota-Count`; an object PUT that would take the container past
//! either is refused with `413 Upload exceeds quota.`. A caller who may not write there
//! at all is told that instead, so the quota of someone else's container is not revealed.
//! The counts are the proxy's cached container info, as in Swift: a quota is a soft limit
//! that concurrent uploads can overshoot by what lands within the cache's lifetime.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use ringsmith::swift::conf::ConfError;

use crate::proxy::auth::Decision;
use crate::proxy::env::{authorize_now, ApiPath};
use crate::proxy::middleware::object_versioning::versions_location;
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, text, Proxy};

pub struct ContainerQuotas {
    next: App,
    proxy: Arc<Proxy>,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    ctx.info.register("container_quotas", serde_json::json!({}));
    Ok(Arc::new(ContainerQuotas {
        next,
        proxy: ctx.proxy.clone(),
    }))
}

/// A quota value as Swift reads one: only all-digit values count.
pub fn quota_value(v: Option<&str>) -> Option<u64> {
    v.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
}

/// The answer for an upload past a quota: the caller's authorization first (401/403 for
/// one who may not write here anyway, which the app gives), else 413 with `body`.
pub fn over_quota(
    req: &Parts,
    path: &ApiPath,
    write_acl: Option<&str>,
    body: &str,
) -> Option<Response> {
    if authorize_now(req, path, write_acl) == Decision::Denied {
        return None;
    }
    Some(text(StatusCode::PAYLOAD_TOO_LARGE, body.to_string()))
}

impl Handler for ContainerQuotas {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()).filter(|p| p.container.is_some())
            else {
                return self.next.call(req).await;
            };
            let method = req.method().clone();
            if path.object.is_none() && matches!(method, Method::PUT | Method::POST) {
                for (name, what) in [
                    ("x-container-meta-quota-bytes", "bytes"),
                    ("x-container-meta-quota-count", "count"),
                ] {
                    match header(req.headers(), name) {
                        Some(v) if !v.is_empty() && !v.bytes().all(|b| b.is_ascii_digit()) => {
                            return text(StatusCode::BAD_REQUEST, format!("Invalid {what} quota."));
                        }
                        _ => {}
                    }
                }
            } else if path.object.is_some() && method == Method::PUT {
                let (parts, body) = req.into_parts();
                let container = path.container.as_deref().unwrap_or_default();
                let info = self.proxy.container_info(&path.account, container).await;
                if info.status / 100 == 2 {
                    let length: u64 = header(&parts.headers, "content-length")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let bytes_quota = quota_value(info.meta.get("quota-bytes").map(String::as_str));
                    // A versioned container's bytes include its versions', as its HEAD
                    // shows them (object_versioning) and as Swift's quota counts them. The
                    // versions container's count is read fresh: every write moves it, and
                    // no request on the primary container refreshes its cached copy.
                    let mut bytes_used = info.bytes_used;
                    if let (Some(_), Some(versions)) = (bytes_quota, versions_location(&info)) {
                        let kept = self
                            .proxy
                            .container_info_now(&path.account, &versions)
                            .await;
                        if kept.status / 100 == 2 {
                            bytes_used = bytes_used.saturating_add(kept.bytes_used);
                        }
                    }
                    let over_bytes =
                        bytes_quota.is_some_and(|q| q < bytes_used.saturating_add(length));
                    let over_count = quota_value(info.meta.get("quota-count").map(String::as_str))
                        .is_some_and(|q| q < info.object_count.saturating_add(1));
                    if over_bytes || over_count {
                        if let Some(r) = over_quota(
                            &parts,
                            &path,
                            info.write_acl.as_deref(),
                            "Upload exceeds quota.",
                        ) {
                            return r;
                        }
                    }
                }
                return self.next.call(Request::from_parts(parts, body)).await;
            }
            self.next.call(req).await
        })
    }
}

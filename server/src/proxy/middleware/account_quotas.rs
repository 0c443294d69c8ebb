//! account_quotas: a reseller admin caps an account with `X-Account-Quota-Bytes` and
//! `X-Account-Quota-Count` (and per storage policy, `X-Account-Quota-Bytes-Policy-<name>`
//! and `X-Account-Quota-Count-Policy-<name>`); the legacy `X-Account-Meta-Quota-Bytes`
//! still works. Quotas are kept as account sysmeta, so only a reseller admin can set or
//! remove them (anyone else gets 403), and shown back under their client names. An object
//! PUT that would take the account (or its share of a policy) past a quota is refused with
//! 413; one from a caller who may not write there at all is left to the app to refuse.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use ringsmith::swift::conf::ConfError;
use ringsmith::swift::Policies;

use crate::proxy::env::{ApiPath, RemoteUser};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, status_text, Proxy};

use super::container_quotas::{over_quota, quota_value};

pub struct AccountQuotas {
    next: App,
    proxy: Arc<Proxy>,
    policies: Policies,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    ctx.info.register("account_quotas", serde_json::json!({}));
    Ok(Arc::new(AccountQuotas {
        next,
        proxy: ctx.proxy.clone(),
        policies: ctx.swift.policies.clone(),
    }))
}

/// Client quota headers → sysmeta, for one kind (`Quota-Bytes` or `Quota-Count`).
/// `Err` is Swift's answer: 400 for a non-numeric value from a reseller, 403 for anyone
/// else trying to set one.
fn translate(
    h: &mut HeaderMap,
    kind: &str,
    policies: &Policies,
    reseller: bool,
) -> Result<(), StatusCode> {
    let kind_lc = kind.to_ascii_lowercase();
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    let whole = format!("x-account-{kind_lc}");
    let mut value = header(h, &whole).map(str::to_string);
    if header(h, &format!("x-remove-account-{kind_lc}")).is_some_and(|v| !v.is_empty()) {
        value = Some(String::new());
    }
    wanted.push((format!("x-account-sysmeta-{kind_lc}"), value));
    for p in policies.iter() {
        let tail = format!("account-{kind_lc}-policy-{}", p.name().to_ascii_lowercase());
        let value = if header(h, &format!("x-remove-{tail}")).is_some_and(|v| !v.is_empty()) {
            Some(String::new())
        } else {
            h.remove(format!("x-{tail}").as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        wanted.push((
            format!("x-account-sysmeta-{kind_lc}-policy-{}", p.index),
            value,
        ));
    }
    if !reseller {
        return if wanted.iter().any(|(_, v)| v.is_some()) {
            Err(StatusCode::FORBIDDEN)
        } else {
            Ok(())
        };
    }
    if wanted.iter().any(|(_, v)| {
        v.as_deref()
            .is_some_and(|v| !v.is_empty() && !v.bytes().all(|b| b.is_ascii_digit()))
    }) {
        return Err(StatusCode::BAD_REQUEST);
    }
    for (name, value) in wanted {
        if let (Some(v), Ok(n)) = (value, HeaderName::from_bytes(name.as_bytes())) {
            h.insert(
                n,
                HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("")),
            );
        }
    }
    Ok(())
}

impl AccountQuotas {
    async fn object_put(&self, req: &Parts, path: &ApiPath) -> Option<axum::response::Response> {
        let length: u64 = header(&req.headers, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let account = self.proxy.account_info(&path.account).await;
        if account.status / 100 != 2 {
            return None;
        }
        let container = self
            .proxy
            .container_info(&path.account, path.container.as_deref().unwrap_or_default())
            .await;
        let write_acl = container.write_acl.as_deref();
        let bytes_quota = quota_value(account.sysmeta.get("quota-bytes").map(String::as_str))
            .or_else(|| quota_value(account.meta.get("quota-bytes").map(String::as_str)));
        if bytes_quota.is_some_and(|q| q < account.bytes_used.saturating_add(length)) {
            return over_quota(req, path, write_acl, "Upload exceeds quota.");
        }
        if quota_value(account.sysmeta.get("quota-count").map(String::as_str))
            .is_some_and(|q| q < account.object_count.saturating_add(1))
        {
            return over_quota(req, path, write_acl, "Upload exceeds quota.");
        }
        if container.status / 100 != 2 {
            return None;
        }
        let idx = container.policy_index;
        let (pbytes, pcount) = account.policy_stats.get(&idx).copied().unwrap_or((0, 0));
        let policy_quota = |kind: &str| {
            quota_value(
                account
                    .sysmeta
                    .get(&format!("{kind}-policy-{idx}"))
                    .map(String::as_str),
            )
        };
        if policy_quota("quota-bytes").is_some_and(|q| q < pbytes.saturating_add(length))
            || policy_quota("quota-count").is_some_and(|q| q < pcount.saturating_add(1))
        {
            return over_quota(req, path, write_acl, "Upload exceeds policy quota.");
        }
        None
    }
}

impl Handler for AccountQuotas {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let Some(path) = ApiPath::parse(req.uri().path()) else {
                return self.next.call(req).await;
            };
            let reseller = req
                .extensions()
                .get::<RemoteUser>()
                .is_some_and(|u| u.0.is_reseller_admin());
            if path.container.is_none() {
                if matches!(*req.method(), Method::POST | Method::PUT) {
                    let h = req.headers_mut();
                    for legacy in [
                        "x-account-meta-quota-bytes",
                        "x-remove-account-meta-quota-bytes",
                    ] {
                        let modern = legacy.replace("-meta-", "-");
                        if let Some(v) = h.get(legacy).cloned() {
                            if header(h, &modern).is_none_or(|m| m.is_empty()) {
                                if let Ok(n) = HeaderName::from_bytes(modern.as_bytes()) {
                                    h.insert(n, v);
                                }
                            }
                        }
                    }
                    for kind in ["Quota-Bytes", "Quota-Count"] {
                        if let Err(status) = translate(h, kind, &self.policies, reseller) {
                            return status_text(status);
                        }
                    }
                }
                let mut resp = self.next.call(req).await;
                let h = resp.headers_mut();
                for kind in ["quota-bytes", "quota-count"] {
                    if let Some(v) =
                        header(h, &format!("x-account-sysmeta-{kind}")).map(str::to_string)
                    {
                        if !v.is_empty() {
                            set_dynamic(h, &format!("x-account-{kind}"), &v);
                        }
                    }
                    for p in self.policies.iter() {
                        let key = format!("x-account-sysmeta-{kind}-policy-{}", p.index);
                        if let Some(v) = header(h, &key)
                            .map(str::to_string)
                            .filter(|v| !v.is_empty())
                        {
                            set_dynamic(h, &format!("x-account-{kind}-policy-{}", p.name()), &v);
                        }
                    }
                }
                return resp;
            }
            if req.method() == Method::PUT && path.object.is_some() && !reseller {
                let (parts, body) = req.into_parts();
                if let Some(r) = self.object_put(&parts, &path).await {
                    return r;
                }
                return self.next.call(Request::from_parts(parts, body)).await;
            }
            self.next.call(req).await
        })
    }
}

fn set_dynamic(h: &mut HeaderMap, name: &str, value: &str) {
    if let Ok(n) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
        h.insert(n, crate::proxy::backend::header_value(value));
    }
}

//! catch_errors: the outermost layer. It names the transaction (`X-Trans-Id`, with the
//! client's `X-Trans-Id-Extra` appended), turns a panic anywhere below into a 500 instead
//! of a dropped connection, and finishes every answer the way Swift's do: the
//! transaction id headers, a default content type, `WWW-Authenticate` on a 401, and the
//! client's `Connection: keep-alive` echoed.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use futures_util::FutureExt;
use ringsmith::swift::conf::ConfError;

use crate::proxy::backend::set;
use crate::proxy::env::TransId;
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{status_text, www_authenticate, SWIFT_DEFAULT_CONTENT_TYPE};

pub struct CatchErrors {
    next: App,
    trans_id_suffix: String,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    Ok(Arc::new(CatchErrors {
        next,
        trans_id_suffix: ctx.section.str_or("trans_id_suffix", ""),
    }))
}

/// Swift's transaction id: `tx`, 21 random hex digits, `-`, the time in 10 hex digits,
/// then the configured suffix.
pub fn new_trans_id(suffix: &str) -> String {
    use rand::Rng;
    let r: u128 = rand::thread_rng().gen();
    format!(
        "tx{:021x}-{:010x}{}",
        r & ((1u128 << 84) - 1),
        crate::proxy::auth::now_secs(),
        suffix
    )
}

impl Handler for CatchErrors {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let trans_id = req
                .headers()
                .get("x-trans-id-extra")
                .and_then(|v| v.to_str().ok())
                .filter(|s| {
                    s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
                .map(|extra| format!("{}-{}", new_trans_id(&self.trans_id_suffix), extra))
                .unwrap_or_else(|| new_trans_id(&self.trans_id_suffix));
            req.extensions_mut().insert(TransId(trans_id.clone()));
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let keep_alive = req
                .headers()
                .get("connection")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"keep-alive"));
            let below = std::panic::AssertUnwindSafe(self.next.call(req));
            let mut resp = match below.catch_unwind().await {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(trans_id = %trans_id, method = %method, path = %path,
                        "handler panicked; answering 500");
                    status_text(StatusCode::INTERNAL_SERVER_ERROR)
                }
            };
            let status = resp.status();
            let h = resp.headers_mut();
            if status == StatusCode::UNAUTHORIZED && !h.contains_key("www-authenticate") {
                set(h, "www-authenticate", &www_authenticate(&path));
            }
            if keep_alive {
                set(h, "connection", "keep-alive");
            }
            if !h.contains_key("content-type") {
                set(h, "content-type", SWIFT_DEFAULT_CONTENT_TYPE);
            }
            set(h, "x-trans-id", &trans_id);
            set(h, "x-openstack-request-id", &trans_id);
            resp
        })
    }
}

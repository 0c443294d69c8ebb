//! proxy_logging: one structured access-log line per request, and one per subrequest a
//! middleware makes (tagged with its `swift.source`), as Swift logs them. Swift's
//! pipelines hold two instances, first and next to last: the first logs what clients
//! asked, the second what middlewares asked; a request is logged once whichever sees it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use ringsmith::swift::conf::ConfError;

use crate::proxy::env::{SwiftSource, TransId};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};

pub struct ProxyLogging {
    next: App,
    log_name: String,
}

/// Marks a request already logged by an outer instance.
#[derive(Clone, Copy)]
struct Logged;

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let log_name = ctx
        .section
        .get("access_log_name")
        .or_else(|| ctx.section.get("log_name"))
        .unwrap_or("proxy-server")
        .to_string();
    Ok(Arc::new(ProxyLogging { next, log_name }))
}

impl Handler for ProxyLogging {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            if req.extensions().get::<Logged>().is_some() {
                return self.next.call(req).await;
            }
            req.extensions_mut().insert(Logged);
            let started = Instant::now();
            let method = req.method().clone();
            let path = req.uri().to_string();
            let source = req.extensions().get::<SwiftSource>().map(|s| s.0);
            let client = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let trans_id = req.extensions().get::<TransId>().map(|t| t.0.clone());
            let resp = self.next.call(req).await;
            tracing::info!(
                target: "proxy.access",
                log_name = %self.log_name,
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                ms = started.elapsed().as_secs_f64() * 1000.0,
                trans_id = trans_id.as_deref().unwrap_or("-"),
                source = source.unwrap_or("-"),
                client = client.as_deref().unwrap_or("-"),
            );
            resp
        })
    }
}

//! gatekeeper: the line between clients and the cluster's internal headers. Requests lose
//! any `X-Backend-*` header and system metadata (`X-{Account,Container,Object}-Sysmeta-*`,
//! `X-Object-Transient-Sysmeta-*`) a client tried to send; answers lose them on the way
//! out. Everything below the gatekeeper may use them freely: middlewares keep their state
//! in sysmeta, and the proxy app passes it to and from the storage servers.
//! A client's `X-Timestamp` is kept only as `X-Backend-Inbound-X-Timestamp`.
//! With `allow_reserved_names_header = true` (Swift's option, off by default), a client's
//! `X-Allow-Reserved-Names` becomes `X-Backend-Allow-Reserved-Names`: an operator's way
//! into the reserved namespace.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use ringsmith::swift::conf::ConfError;

use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};

pub struct Gatekeeper {
    next: App,
    shunt_x_timestamp: bool,
    allow_reserved_names_header: bool,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    Ok(Arc::new(Gatekeeper {
        next,
        shunt_x_timestamp: ctx.section.bool_or("shunt_inbound_x_timestamp", true)?,
        allow_reserved_names_header: ctx.section.bool_or("allow_reserved_names_header", false)?,
    }))
}

/// Headers only the cluster may set.
pub fn is_internal(name: &str) -> bool {
    name.starts_with("x-backend-")
        || name.starts_with("x-object-sysmeta-")
        || name.starts_with("x-container-sysmeta-")
        || name.starts_with("x-account-sysmeta-")
        || name.starts_with("x-object-transient-sysmeta-")
}

fn strip_internal(headers: &mut HeaderMap) {
    let internal: Vec<_> = headers
        .keys()
        .filter(|k| is_internal(k.as_str()))
        .cloned()
        .collect();
    for k in internal {
        headers.remove(k);
    }
}

impl Handler for Gatekeeper {
    fn call(&self, mut req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let h = req.headers_mut();
            strip_internal(h);
            if let Some(v) = h.remove("x-allow-reserved-names") {
                if self.allow_reserved_names_header {
                    h.insert("x-backend-allow-reserved-names", v);
                }
            }
            if let Some(ts) = h.remove("x-timestamp") {
                if self.shunt_x_timestamp {
                    h.insert("x-backend-inbound-x-timestamp", ts);
                }
            }
            let mut resp = self.next.call(req).await;
            strip_internal(resp.headers_mut());
            resp
        })
    }
}

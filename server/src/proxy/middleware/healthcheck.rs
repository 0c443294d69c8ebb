//! healthcheck: `GET /healthcheck` answers `200 OK` without touching the cluster, for load
//! balancers; `503 DISABLED BY FILE` while the file named by `disable_path` exists, so an
//! operator can drain a proxy before maintenance.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use ringsmith::swift::conf::ConfError;

use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{empty, text};

pub struct Healthcheck {
    next: App,
    disable_path: Option<PathBuf>,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let disable_path = ctx
        .section
        .get("disable_path")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    Ok(Arc::new(Healthcheck { next, disable_path }))
}

impl Handler for Healthcheck {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            if req.uri().path() != "/healthcheck" {
                return self.next.call(req).await;
            }
            let disabled = self.disable_path.as_ref().is_some_and(|p| p.exists());
            let (status, body) = if disabled {
                (StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY FILE")
            } else {
                (StatusCode::OK, "OK")
            };
            if req.method() == Method::HEAD {
                let mut r = empty(status);
                crate::proxy::backend::set(
                    r.headers_mut(),
                    "content-length",
                    &body.len().to_string(),
                );
                return r;
            }
            let mut r = text(status, body);
            crate::proxy::backend::set(r.headers_mut(), "content-type", "text/plain");
            r
        })
    }
}

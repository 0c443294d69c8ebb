//! bulk: Swift's bulk operations on an account.
//!
//! Bulk delete (`POST` or `DELETE` with `?bulk-delete`): the body lists objects and
//! containers of the account, one quoted `container[/object]` per line; each is deleted
//! by a subrequest through the rest of the stack, so with the caller's rights, and one
//! 200 answer reports how many went, how many were not there, and which failed and why,
//! as text, JSON or XML per `Accept`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;
use ringsmith::swift::conf::ConfError;

use crate::proxy::backend::set;
use crate::proxy::env::{has_param, ApiPath, Caller};
use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};
use crate::proxy::{header, quote, text};

pub struct Bulk {
    next: App,
    max_deletes_per_request: usize,
    max_failed_deletes: usize,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    let max_deletes_per_request = ctx
        .section
        .parse_or("max_deletes_per_request", 10000usize)?;
    let max_failed_deletes = ctx.section.parse_or("max_failed_deletes", 1000usize)?;
    ctx.info.register(
        "bulk_delete",
        serde_json::json!({
            "max_deletes_per_request": max_deletes_per_request,
            "max_failed_deletes": max_failed_deletes,
        }),
    );
    Ok(Arc::new(Bulk {
        next,
        max_deletes_per_request,
        max_failed_deletes,
    }))
}

impl Handler for Bulk {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        Box::pin(async move {
            let is_bulk_delete = matches!(*req.method(), Method::POST | Method::DELETE)
                && has_param(req.uri().query(), "bulk-delete");
            match ApiPath::parse(req.uri().path()) {
                Some(path) if is_bulk_delete && path.object.is_none() => {
                    self.bulk_delete(req, path).await
                }
                _ => self.next.call(req).await,
            }
        })
    }
}

impl Bulk {
    async fn bulk_delete(&self, req: Request, path: ApiPath) -> Response {
        let (parts, body) = req.into_parts();
        let caller = Caller::of(&parts);
        // Swift's limit per line is 1024 + container; a bound on the whole body.
        let max_body = self.max_deletes_per_request.saturating_mul(2048).max(2048);
        let Ok(raw) = http_body_util::Limited::new(body, max_body).collect().await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large");
        };
        let raw = raw.to_bytes();
        let listing = String::from_utf8_lossy(&raw).into_owned();
        let lines: Vec<&str> = listing
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.len() > self.max_deletes_per_request {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Maximum Bulk Deletes: {} per request",
                    self.max_deletes_per_request
                ),
            );
        }
        let (mut deleted, mut not_found) = (0usize, 0usize);
        let mut errors: Vec<(String, String)> = Vec::new();
        for line in lines {
            if errors.len() >= self.max_failed_deletes {
                break;
            }
            let name = percent_decode_str(line).decode_utf8_lossy().into_owned();
            let trimmed = name.trim_start_matches('/');
            let (container, object) = match trimmed.split_once('/') {
                Some((c, o)) if !o.is_empty() => (c.to_string(), Some(o.to_string())),
                Some((c, _)) => (c.to_string(), None),
                None => (trimmed.to_string(), None),
            };
            if container.is_empty() {
                errors.push((line.to_string(), "400 Bad Request".into()));
                continue;
            }
            let target = ApiPath {
                version: path.version.clone(),
                account: path.account.clone(),
                container: Some(container),
                object,
            };
            let mut h = HeaderMap::new();
            set(&mut h, "content-length", "0");
            let resp = self
                .next
                .call(caller.subrequest(Method::DELETE, &target.to_path(), h, Body::empty(), "BD"))
                .await;
            match resp.status() {
                s if s.is_success() => deleted += 1,
                StatusCode::NOT_FOUND => not_found += 1,
                s => errors.push((
                    format!("/{}", quote(trimmed)),
                    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or("")),
                )),
            }
        }
        let status = if errors.is_empty() {
            "200 OK"
        } else if errors.iter().any(|(_, s)| s.starts_with('5')) {
            "502 Bad Gateway"
        } else {
            "400 Bad Request"
        };
        render(
            header(&parts.headers, "accept").unwrap_or(""),
            deleted,
            not_found,
            status,
            &errors,
        )
    }
}

fn render(
    accept: &str,
    deleted: usize,
    not_found: usize,
    status: &str,
    errors: &[(String, String)],
) -> Response {
    let accept = accept.to_ascii_lowercase();
    let (ctype, body) = if accept.contains("application/json") {
        let doc = serde_json::json!({
            "Number Deleted": deleted,
            "Number Not Found": not_found,
            "Response Body": "",
            "Response Status": status,
            "Errors": errors.iter().map(|(n, s)| vec![n.clone(), s.clone()]).collect::<Vec<_>>(),
        });
        ("application/json", doc.to_string())
    } else if accept.contains("application/xml") || accept.contains("text/xml") {
        let mut errs = String::new();
        for (n, s) in errors {
            errs.push_str(&format!(
                "<object><name>{}</name><status>{}</status></object>\n",
                ringsmith::swift::escape::xml_text(n),
                ringsmith::swift::escape::xml_text(s)
            ));
        }
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<delete>\n<number_deleted>{deleted}</number_deleted>\n<number_not_found>{not_found}</number_not_found>\n<response_body></response_body>\n<response_status>{status}</response_status>\n<errors>\n{errs}</errors>\n</delete>\n"
            ),
        )
    } else {
        let mut errs = String::new();
        for (n, s) in errors {
            errs.push_str(&format!("{n}, {s}\n"));
        }
        (
            "text/plain",
            format!(
                "Number Deleted: {deleted}\nNumber Not Found: {not_found}\nResponse Body: \nResponse Status: {status}\nErrors:\n{errs}"
            ),
        )
    };
    let mut r = Response::new(Body::from(body));
    set(r.headers_mut(), "content-type", ctype);
    r
}

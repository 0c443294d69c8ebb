//! Swift's proxy middlewares, one module each, and the registry the pipeline builder
//! loads them from by their `egg:swift#NAME`.

pub mod account_quotas;
pub mod authtoken;
pub mod bulk;
pub mod catch_errors;
pub mod container_quotas;
pub mod copy;
pub mod dlo;
pub mod formpost;
pub mod gatekeeper;
pub mod healthcheck;
pub mod keystone_client;
pub mod keystoneauth;
pub mod listing_formats;
pub mod object_versioning;
pub mod proxy_logging;
pub mod ratelimit;
pub mod slo;
pub mod staticweb;
pub mod symlink;
pub mod tempauth;
pub mod tempurl;
pub mod versioned_writes;

use axum::http::{HeaderMap, StatusCode};

use super::pipeline::Middleware;

/// swob's conditional response for a large object whose ETag (and Last-Modified) the
/// middleware computed: `If-Match`, `If-None-Match`, `If-Modified-Since`,
/// `If-Unmodified-Since`, in swob's order. `None` when the body should be sent.
pub fn conditional_status(
    request: &HeaderMap,
    etag: &str,
    last_modified: Option<&str>,
) -> Option<StatusCode> {
    use ringsmith::swift::timestamp::parse_http_date;
    let matches = |v: &str| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
            .any(|t| t == "*" || t == etag)
    };
    let lm = last_modified.and_then(parse_http_date);
    if let Some(im) = super::header(request, "if-match") {
        if !matches(im) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(inm) = super::header(request, "if-none-match") {
        if matches(inm) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if let (Some(ims), Some(lm)) = (
        super::header(request, "if-modified-since").and_then(parse_http_date),
        lm,
    ) {
        if lm <= ims {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    if let (Some(ius), Some(lm)) = (
        super::header(request, "if-unmodified-since").and_then(parse_http_date),
        lm,
    ) {
        if lm > ius {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    None
}

/// Every middleware Ringsmith provides.
/// Whether a backend's JSON listing holds `marker` anywhere. Container servers (ours and
/// Swift's) never escape ASCII letters in their JSON, so a page without these bytes has no
/// row that a middleware keyed on them would change, and it need not be parsed: a listing
/// of 10,000 rows costs milliseconds to parse and write again.
pub(crate) fn listing_mentions(raw: &[u8], marker: &str) -> bool {
    memchr::memmem::find(raw, marker.as_bytes()).is_some()
}

pub fn registry() -> Vec<Middleware> {
    vec![
        Middleware {
            egg: "catch_errors",
            build: catch_errors::build,
        },
        Middleware {
            egg: "gatekeeper",
            build: gatekeeper::build,
        },
        Middleware {
            egg: "healthcheck",
            build: healthcheck::build,
        },
        Middleware {
            egg: "proxy_logging",
            build: proxy_logging::build,
        },
        Middleware {
            egg: "listing_formats",
            build: listing_formats::build,
        },
        Middleware {
            egg: "memcache",
            build: crate::proxy::cache::build,
        },
        Middleware {
            egg: "ratelimit",
            build: ratelimit::build,
        },
        Middleware {
            egg: "tempauth",
            build: tempauth::build,
        },
        Middleware {
            egg: "authtoken",
            build: authtoken::build,
        },
        Middleware {
            egg: "keystoneauth",
            build: keystoneauth::build,
        },
        Middleware {
            egg: "tempurl",
            build: tempurl::build,
        },
        Middleware {
            egg: "formpost",
            build: formpost::build,
        },
        Middleware {
            egg: "staticweb",
            build: staticweb::build,
        },
        Middleware {
            egg: "bulk",
            build: bulk::build,
        },
        Middleware {
            egg: "copy",
            build: copy::build,
        },
        Middleware {
            egg: "slo",
            build: slo::build,
        },
        Middleware {
            egg: "dlo",
            build: dlo::build,
        },
        Middleware {
            egg: "container_quotas",
            build: container_quotas::build,
        },
        Middleware {
            egg: "account_quotas",
            build: account_quotas::build,
        },
        Middleware {
            egg: "symlink",
            build: symlink::build,
        },
        Middleware {
            egg: "versioned_writes",
            build: versioned_writes::build,
        },
    ]
}

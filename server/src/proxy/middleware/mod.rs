//! Swift's proxy middlewares, one module each, and the registry the pipeline builder
//! loads them from by their `egg:swift#NAME`.

pub mod account_quotas;
pub mod bulk;
pub mod catch_errors;
pub mod container_quotas;
pub mod copy;
pub mod dlo;
pub mod formpost;
pub mod gatekeeper;
pub mod healthcheck;
pub mod listing_formats;
pub mod proxy_logging;
pub mod staticweb;
pub mod symlink;
pub mod tempauth;
pub mod tempurl;
pub mod versioned_writes;

use super::pipeline::Middleware;

/// Every middleware Ringsmith provides.
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
            egg: "tempauth",
            build: tempauth::build,
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

//! versioned_writes: Swift requires it in every proxy pipeline. With
//! `allow_versioned_writes` and `allow_object_versioning` unset (Swift's defaults) it
//! lets every request through unchanged, which is what Swift's does for containers that
//! never had versioning configured through it. Ringsmith does not keep object versions
//! yet, so a proxy configured to offer them refuses to start rather than accept
//! `X-Versions-Location` and silently lose the old versions.

use std::sync::Arc;

use axum::extract::Request;
use ringsmith::swift::conf::ConfError;

use crate::proxy::pipeline::{App, FilterContext, Handler, ResponseFuture};

pub struct VersionedWrites {
    next: App,
}

pub fn build(ctx: &FilterContext<'_>, next: App) -> Result<App, ConfError> {
    for option in ["allow_versioned_writes", "allow_object_versioning"] {
        if ctx.section.bool_or(option, false)? {
            return Err(ctx.bad_option(
                option,
                "object versioning is not available in Ringsmith yet; set it to false",
            ));
        }
    }
    Ok(Arc::new(VersionedWrites { next }))
}

impl Handler for VersionedWrites {
    fn call(&self, req: Request) -> ResponseFuture<'_> {
        self.next.call(req)
    }
}

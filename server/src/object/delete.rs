//! `DELETE /<dev>/<part>/<a>/<c>/<o>`: a tombstone (`.ts`) newer than what is on disk,
//! with `X-If-Delete-At` for the expirer, then the container update.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use super::diskfile::{Lookup, Metadata};
use super::request::{container_targets, disk_error, is_expired, with_backend_ts, ObjectRequest};
use super::update;
use super::ObjectState;
use crate::common::headers as h;
use crate::common::shell::{required_timestamp, Resp};
use crate::common::{empty, plain, Timestamp};

pub(super) async fn delete(
    state: &Arc<ObjectState>,
    or: ObjectRequest,
    headers: &HeaderMap,
) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let container_targets = match container_targets(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let existing = match or.lookup(None).await {
        Ok(l) => l,
        Err(e) => return disk_error(&or.path.device, e),
    };
    let (orig_ts, existed, stored_delete_at, ctype) = match &existing {
        Lookup::Found(o) => (
            Some(
                o.data_timestamp
                    .max(o.meta_timestamp.unwrap_or(o.data_timestamp)),
            ),
            !is_expired(&o.metadata, headers),
            o.metadata.get("X-Delete-At").cloned(),
            o.metadata.get("Content-Type").cloned(),
        ),
        Lookup::Deleted(t) => (Some(*t), false, None, None),
        Lookup::NotFound => (None, false, None, None),
    };
    drop(existing);
    if let Some(want) = h::get(headers, "x-if-delete-at") {
        // Swift's order: an unreadable value is 400, then a missing object 404, a newer
        // one 409, and a different expiry 412.
        let Ok(want) = Timestamp::parse(want.trim()) else {
            return plain(StatusCode::BAD_REQUEST, "Bad X-If-Delete-At header value");
        };
        match orig_ts {
            None => return plain(StatusCode::NOT_FOUND, ""),
            Some(orig) if orig >= req_ts => {
                return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig)
            }
            _ => {}
        }
        let stored = stored_delete_at
            .as_deref()
            .and_then(|s| Timestamp::parse(s.trim()).ok());
        if stored != Some(want) {
            return plain(StatusCode::PRECONDITION_FAILED, "X-If-Delete-At mismatch");
        }
    }
    if let Some(orig) = orig_ts {
        if orig >= req_ts {
            return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
        }
    }
    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    meta.insert("name".into(), or.name());
    if let Err(r) = or
        .commit(or.writer(), Vec::new(), meta, ".ts", req_ts)
        .await
    {
        return r;
    }
    let cheaders = vec![("X-Timestamp".to_string(), req_ts.internal())];
    update::container_updates(
        state,
        &or,
        headers,
        "DELETE",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    let status = if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    };
    let mut r = empty(status);
    h::insert(
        r.headers_mut(),
        "x-backend-timestamp",
        &orig_ts.unwrap_or(req_ts).max(req_ts).internal(),
    );
    if let Some(ct) = ctype {
        h::insert(r.headers_mut(), "x-backend-content-type", &ct);
    }
    r
}

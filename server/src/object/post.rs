//! `POST /<dev>/<part>/<a>/<c>/<o>`: new metadata (and content type) in a `.meta` file
//! next to the data, then the container update.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use ringsmith::swift::MetaTarget;

use super::diskfile::{self, Lookup, Metadata};
use super::request::{
    container_targets, delete_at_header, disk_error, is_expired, user_metadata, with_backend_ts,
    ObjectRequest,
};
use super::update;
use super::ObjectState;
use crate::common::headers::{self as h, check_metadata};
use crate::common::shell::{required_timestamp, Resp};
use crate::common::{empty, plain};

pub(super) async fn post(state: &Arc<ObjectState>, or: ObjectRequest, headers: &HeaderMap) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(m) = check_metadata(headers, MetaTarget::Object, &state.cfg.storage.constraints) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let delete_at = match delete_at_header(headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let container_targets = match container_targets(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let found = match or.lookup(None).await {
        Ok(Lookup::Found(o)) => o,
        Ok(Lookup::Deleted(t)) => return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), t),
        Ok(Lookup::NotFound) => return plain(StatusCode::NOT_FOUND, ""),
        Err(e) => return disk_error(&or.path.device, e),
    };
    if is_expired(&found.metadata, headers) {
        return plain(StatusCode::NOT_FOUND, "");
    }
    let orig = found
        .meta_timestamp
        .unwrap_or(found.data_timestamp)
        .max(found.data_timestamp);
    if orig >= req_ts {
        return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
    }
    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    // Swift's disk writer names every file it writes; Swift's readers quarantine a
    // `.meta` without `name` ("missing name metadata").
    meta.insert("name".into(), or.name());
    user_metadata(state, headers, &mut meta, false);
    meta.remove("X-Delete-At");
    if let Some(d) = delete_at {
        meta.insert("X-Delete-At".into(), d.to_string());
    }
    let new_ctype = h::get(headers, "content-type").map(str::to_string);
    if let Some(ct) = &new_ctype {
        meta.insert("Content-Type".into(), ct.clone());
        // A replicated POST carries the content type's own (older) time.
        let ctype_ts = h::get(headers, "content-type-timestamp")
            .and_then(|t| crate::common::Timestamp::parse(t.trim()).ok())
            .unwrap_or(req_ts);
        meta.insert("Content-Type-Timestamp".into(), ctype_ts.internal());
    } else if let (Some(ct), Some(ct_ts)) = (
        found.metadata.get("Content-Type"),
        found.metadata.get("Content-Type-Timestamp"),
    ) {
        // A content type an earlier POST set lives in the .meta this one replaces.
        meta.insert("Content-Type".into(), ct.clone());
        meta.insert("Content-Type-Timestamp".into(), ct_ts.clone());
    }
    if let Err(r) = or
        .commit(or.writer(), Vec::new(), meta, ".meta", req_ts)
        .await
    {
        return r;
    }
    let old_delete_at = found.metadata.get("X-Delete-At").cloned();
    // A content type set by a POST keeps the data file's `swift_bytes` (an SLO's size)
    // in the container row, as Swift's object server keeps it.
    let ctype_from_meta =
        new_ctype.is_some() || found.metadata.contains_key("Content-Type-Timestamp");
    let current_ctype = new_ctype
        .clone()
        .or_else(|| found.metadata.get("Content-Type").cloned())
        .unwrap_or_default();
    let listed_ctype = if ctype_from_meta {
        let datafile_ctype = diskfile::read_metadata(&found.file, &found.data_path)
            .ok()
            .and_then(|m| m.get("Content-Type").cloned())
            .unwrap_or_default();
        match datafile_ctype
            .split(';')
            .find_map(|p| p.trim().strip_prefix("swift_bytes="))
        {
            Some(n) => format!("{current_ctype};swift_bytes={n}"),
            None => current_ctype,
        }
    } else {
        current_ctype
    };
    let mut cheaders = vec![
        ("X-Size".to_string(), found.size.to_string()),
        ("X-Content-Type".to_string(), listed_ctype),
        ("X-Timestamp".to_string(), found.data_timestamp.internal()),
        (
            "X-Etag".to_string(),
            found.metadata.get("ETag").cloned().unwrap_or_default(),
        ),
        ("X-Meta-Timestamp".to_string(), req_ts.internal()),
    ];
    if new_ctype.is_some() {
        cheaders.push(("X-Content-Type-Timestamp".into(), req_ts.internal()));
    }
    // The overrides the PUT stored (an SLO's ETag with its slo_etag) apply again.
    let mut stored_overrides = HeaderMap::new();
    for (k, v) in &found.metadata {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("x-object-sysmeta-container-update-override-") {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(lower.as_bytes()),
                axum::http::HeaderValue::from_str(v),
            ) {
                stored_overrides.insert(name, value);
            }
        }
    }
    super::put::apply_overrides(&stored_overrides, &mut cheaders);
    let ctype_reply = found
        .metadata
        .get("Content-Type")
        .cloned()
        .unwrap_or_default();
    let sysmeta: Vec<(String, String)> = found
        .metadata
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-object-sysmeta-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    drop(found);
    update::container_updates(
        state,
        &or,
        headers,
        "PUT",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    update::delete_at_updates(state, &or, headers, delete_at, old_delete_at, req_ts).await;
    let mut r = empty(StatusCode::ACCEPTED);
    h::insert(r.headers_mut(), "x-backend-content-type", &ctype_reply);
    for (k, v) in sysmeta {
        h::insert(r.headers_mut(), &k, &v);
    }
    r
}

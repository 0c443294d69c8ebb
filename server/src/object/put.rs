//! `PUT /<dev>/<part>/<a>/<c>/<o>`: every check that needs no body first (so an early
//! refusal reaches a proxy waiting on `100 Continue`), then the body streamed to a temp
//! file in bounded chunks with its md5, the commit, and the container update.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use ringsmith::swift::MetaTarget;

use super::diskfile::{Lookup, Metadata};
use super::request::{
    container_targets, delete_at_header, disk_error, is_expired, user_metadata, with_backend_ts,
    ObjectRequest,
};
use super::update;
use super::ObjectState;
use crate::common::headers::{self as h, check_metadata, etag_list};
use crate::common::shell::{required_timestamp, Resp};
use crate::common::{empty, insufficient_storage, plain};

/// Body bytes buffered before a write trip to the blocking pool.
const WRITE_BUFFER: usize = 256 * 1024;

pub(super) async fn put(state: &Arc<ObjectState>, or: ObjectRequest, req: Request) -> Resp {
    let headers = req.headers().clone();
    let req_ts = match required_timestamp(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let limits = &state.cfg.storage.constraints;
    if or.object.len() > limits.max_object_name_length {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "Object name length of {} longer than {}",
                or.object.len(),
                limits.max_object_name_length
            ),
        );
    }
    let chunked = h::get(&headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let content_length: Option<u64> = match h::get(&headers, "content-length") {
        Some(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
        },
        None => None,
    };
    if content_length.is_none() && !chunked {
        return plain(StatusCode::LENGTH_REQUIRED, "Missing Content-Length");
    }
    if content_length.is_some_and(|n| n > limits.max_file_size) {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
    }
    let content_type = match h::get(&headers, "content-type") {
        None => return plain(StatusCode::BAD_REQUEST, "No content type"),
        Some(ct) if ct.trim().is_empty() || ct.contains('\n') => {
            return plain(StatusCode::BAD_REQUEST, "Invalid Content-Type")
        }
        Some(ct) => ct.to_string(),
    };
    if let Err(m) = check_metadata(&headers, MetaTarget::Object, limits) {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let delete_at = match delete_at_header(&headers) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let container_targets = match container_targets(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let expected_etag = h::get(&headers, "etag").map(|e| e.trim_matches('"').to_ascii_lowercase());

    // Pre-checks against what is on disk, before the body is polled (100-continue).
    let existing = match or.lookup(None).await {
        Ok(l) => l,
        Err(e) => return disk_error(&or.path.device, e),
    };
    let (orig_ts, orig_exists, orig_delete_at) = match &existing {
        Lookup::Found(o) => (
            Some(o.data_timestamp),
            !is_expired(&o.metadata, &headers),
            o.metadata.get("X-Delete-At").cloned(),
        ),
        Lookup::Deleted(t) => (Some(*t), false, None),
        Lookup::NotFound => (None, false, None),
    };
    if let Some(orig) = orig_ts {
        if orig >= req_ts {
            return with_backend_ts(plain(StatusCode::CONFLICT, "Conflict"), orig);
        }
    }
    if let (Some(inm), Lookup::Found(o)) = (h::get(&headers, "if-none-match"), &existing) {
        let tags = etag_list(inm);
        let etag = o.metadata.get("ETag").cloned().unwrap_or_default();
        if orig_exists && tags.iter().any(|t| t == "*" || *t == etag) {
            return plain(StatusCode::PRECONDITION_FAILED, "Precondition Failed");
        }
    }
    drop(existing);
    if state
        .cfg
        .storage
        .devices
        .is_full(&or.device_path, content_length.unwrap_or(0))
    {
        return insufficient_storage(&or.path.device);
    }

    // Stream the body to a temp file.
    let mut writer = or.writer();
    let mut stream = req.into_body().into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut md5 = Md5::new();
    let mut received: u64 = 0;
    loop {
        let next = tokio::time::timeout(state.cfg.client_timeout, stream.next()).await;
        let chunk: Bytes = match next {
            Err(_) => {
                writer.abort().await;
                return plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout");
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                writer.abort().await;
                tracing::warn!(error = %e, path = %or.name(), "client disconnected during PUT");
                return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
            }
            Ok(Some(Ok(c))) => c,
        };
        received += chunk.len() as u64;
        if received > limits.max_file_size || content_length.is_some_and(|n| received > n) {
            writer.abort().await;
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
        }
        md5.update(&chunk);
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= WRITE_BUFFER {
            let data = std::mem::take(&mut buffer);
            if let Err(e) = writer.write(data).await {
                writer.abort().await;
                return disk_error(&or.path.device, e.into());
            }
        }
    }
    if content_length.is_some_and(|n| received < n) {
        writer.abort().await;
        return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
    }
    let etag = hex::encode(md5.finalize());
    if expected_etag.as_deref().is_some_and(|e| e != etag) {
        writer.abort().await;
        return plain(StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity");
    }

    let mut meta = Metadata::new();
    meta.insert("X-Timestamp".into(), req_ts.internal());
    meta.insert("Content-Type".into(), content_type.clone());
    meta.insert("Content-Length".into(), received.to_string());
    meta.insert("ETag".into(), etag.clone());
    meta.insert("name".into(), or.name());
    user_metadata(state, &headers, &mut meta, true);
    if let Some(d) = delete_at {
        meta.insert("X-Delete-At".into(), d.to_string());
    }
    if let Err(r) = or.commit(writer, buffer, meta, ".data", req_ts).await {
        return r;
    }

    // Container update (and the expirer queue), then the answer.
    let mut cheaders = vec![
        ("X-Size".to_string(), received.to_string()),
        ("X-Content-Type".to_string(), content_type),
        ("X-Timestamp".to_string(), req_ts.internal()),
        ("X-Etag".to_string(), etag.clone()),
    ];
    apply_overrides(&headers, &mut cheaders);
    update::container_updates(
        state,
        &or,
        &headers,
        "PUT",
        cheaders,
        container_targets,
        req_ts,
    )
    .await;
    update::delete_at_updates(state, &or, &headers, delete_at, orig_delete_at, req_ts).await;
    let _ = orig_exists;
    let mut r = empty(StatusCode::CREATED);
    h::insert(r.headers_mut(), "etag", &format!("\"{etag}\""));
    r
}

/// `X-Backend-Container-Update-Override-*` replaces what the container is told.
pub(super) fn apply_overrides(headers: &HeaderMap, cheaders: &mut [(String, String)]) {
    for (name, value) in headers {
        let Some(k) = name
            .as_str()
            .strip_prefix("x-backend-container-update-override-")
            .or_else(|| {
                name.as_str()
                    .strip_prefix("x-object-sysmeta-container-update-override-")
            })
        else {
            continue;
        };
        let key = format!("x-{k}");
        if let (Some(slot), Ok(v)) = (
            cheaders
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&key)),
            value.to_str(),
        ) {
            slot.1 = v.to_string();
        }
    }
}

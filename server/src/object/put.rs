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
use super::mime::{part_header, MimeError, MimeReader};
use super::request::{
    container_targets, delete_at_header, disk_error, is_expired, user_metadata, with_backend_ts,
    ObjectRequest,
};
use super::update;
use super::ObjectState;
use crate::common::continue_io::RawConnection;
use crate::common::headers::title_case;
use crate::common::headers::{self as h, check_metadata, etag_list};
use crate::common::shell::{required_timestamp, Resp};
use crate::common::{empty, insufficient_storage, plain};
use ringsmith::swift::conf::is_true;

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

    // Swift's proxy sends EC fragment archives as a MIME document: the archive, a
    // footer of metadata, and (multiphase) a commit after its quorum of 100 Continues.
    let multiphase = h::get(&headers, "x-backend-obj-multiphase-commit").is_some_and(is_true);
    let multipart =
        multiphase || h::get(&headers, "x-backend-obj-metadata-footer").is_some_and(is_true);
    let expected_size = content_length.or_else(|| {
        h::get(&headers, "x-backend-obj-content-length").and_then(|v| v.trim().parse().ok())
    });
    let raw_connection = req.extensions().get::<RawConnection>().cloned();
    let stream = req.into_body().into_data_stream();
    let mut body = if multipart {
        let Some(boundary) = h::get(&headers, "x-backend-obj-multipart-mime-boundary") else {
            return plain(StatusCode::BAD_REQUEST, "no MIME boundary");
        };
        let mut reader = MimeReader::new(stream, boundary, state.cfg.client_timeout);
        match reader.next_part().await {
            Ok(Some(_)) => {}
            Ok(None) => return plain(StatusCode::BAD_REQUEST, "MIME body has no object part"),
            Err(e) => return mime_error(e),
        }
        Body::Mime(reader)
    } else {
        Body::Plain(stream)
    };

    // Stream the object (or fragment archive) to a temp file.
    let mut writer = or.writer();
    let mut buffer: Vec<u8> = Vec::new();
    let mut md5 = Md5::new();
    let mut received: u64 = 0;
    loop {
        let chunk = match body.next_chunk(state.cfg.client_timeout).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                writer.abort().await;
                if let MimeError::Disconnect(m) = &e {
                    tracing::warn!(error = %m, path = %or.name(), "client disconnected during PUT");
                }
                return mime_error(e);
            }
        };
        received += chunk.len() as u64;
        if received > limits.max_file_size || expected_size.is_some_and(|n| received > n) {
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
    if expected_size.is_some_and(|n| received != n) {
        writer.abort().await;
        return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
    }
    let etag = hex::encode(md5.finalize());
    let footer = match &mut body {
        Body::Mime(reader)
            if h::get(&headers, "x-backend-obj-metadata-footer").is_some_and(is_true) =>
        {
            match read_footer(reader).await {
                Ok(f) => f,
                Err(r) => {
                    writer.abort().await;
                    return r;
                }
            }
        }
        _ => Vec::new(),
    };
    let received_etag = footer
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.trim_matches('"').to_ascii_lowercase())
        .or(expected_etag);
    if received_etag
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != etag)
    {
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
    for (k, v) in &footer {
        let l = k.to_ascii_lowercase();
        if l.starts_with("x-object-meta-")
            || l.starts_with("x-object-sysmeta-")
            || l.starts_with("x-object-transient-sysmeta-")
        {
            meta.insert(title_case(&l), v.clone());
        }
    }
    if let Some(d) = delete_at {
        meta.insert("X-Delete-At".into(), d.to_string());
    }
    let frag_index = if or.policy.is_replication() {
        None
    } else {
        match ec_frag_index(&headers, &mut meta) {
            Ok(fi) => Some(fi),
            Err(r) => {
                writer.abort().await;
                return r;
            }
        }
    };
    let ext = match frag_index {
        Some(fi) => format!("#{fi}.data"),
        None => ".data".to_string(),
    };
    if let Err(r) = or.commit(writer, buffer, meta, &ext, req_ts).await {
        return r;
    }
    if let Body::Mime(reader) = &mut body {
        if multiphase {
            // Tell the proxy the archive is stored; it sends the commit once a quorum
            // of object servers said so, as chunks after the body's chunked end, which
            // only the raw connection sees.
            let Some(raw) = &raw_connection else {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "no PUT commit received");
            };
            let reads = raw.divert_reads();
            if raw.send_continue().await.is_err() {
                return plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect");
            }
            reader.set_stream(super::mime::dechunk(reads));
            if !read_commit(reader).await {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "no PUT commit received");
            }
        }
    }
    if let Some(fi) = frag_index {
        if !h::get(&headers, "x-backend-no-commit").is_some_and(is_true) {
            if let Err(r) = or.make_durable(req_ts, fi).await {
                return r;
            }
        }
    }
    if let Body::Mime(reader) = &mut body {
        // Nothing should follow, but the whole request body is read.
        while let Ok(Some(_)) = reader.next_part().await {}
    }
    // Hyper gets the connection's reads back (dropping the diverted stream).
    drop(body);
    let mut headers = headers;
    for (k, v) in &footer {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(k.to_ascii_lowercase()),
            axum::http::HeaderValue::try_from(v.as_str()),
        ) {
            headers.insert(n, v);
        }
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

/// `X-Backend-Container-Update-Override-*` replaces what the container is told, and
/// `X-Object-Sysmeta-Container-Update-Override-*` (what middlewares such as SLO set) wins
/// over it, as in Swift's `_check_container_override`: an EC PUT's footer carries the
/// former for the whole object while SLO's manifest etag travels in the latter.
pub(super) fn apply_overrides(headers: &HeaderMap, cheaders: &mut [(String, String)]) {
    for prefix in [
        "x-backend-container-update-override-",
        "x-object-sysmeta-container-update-override-",
    ] {
        for (name, value) in headers {
            let Some(k) = name.as_str().strip_prefix(prefix) else {
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
}

/// The request body: plain, or the MIME document of Swift's EC PUT.
enum Body<S> {
    Plain(S),
    Mime(MimeReader),
}

impl<S, E> Body<S>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    async fn next_chunk(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<Vec<u8>>, MimeError> {
        match self {
            Body::Plain(s) => match tokio::time::timeout(timeout, s.next()).await {
                Err(_) => Err(MimeError::Timeout),
                Ok(None) => Ok(None),
                Ok(Some(Err(e))) => Err(MimeError::Disconnect(e.to_string())),
                Ok(Some(Ok(c))) => Ok(Some(c.to_vec())),
            },
            Body::Mime(r) => r.read_chunk().await,
        }
    }
}

fn mime_error(e: MimeError) -> Resp {
    match e {
        MimeError::Timeout => plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
        MimeError::Disconnect(_) => plain(StatusCode::from_u16(499).unwrap(), "Client Disconnect"),
        MimeError::Malformed(m) => plain(StatusCode::BAD_REQUEST, m),
    }
}

/// The footer part: JSON metadata whose md5 the part's `Content-MD5` carries.
async fn read_footer(reader: &mut MimeReader) -> Result<Vec<(String, String)>, Resp> {
    let part = match reader.next_part().await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(plain(StatusCode::BAD_REQUEST, "no footer MIME document")),
        Err(e) => return Err(mime_error(e)),
    };
    let body = reader.read_part(1 << 20).await.map_err(mime_error)?;
    let Some(md5_hex) = part_header(&part, "content-md5") else {
        return Err(plain(StatusCode::BAD_REQUEST, "no Content-MD5 in footer"));
    };
    if md5_hex != hex::encode(Md5::digest(&body)) {
        return Err(plain(
            StatusCode::UNPROCESSABLE_ENTITY,
            "footer MD5 mismatch",
        ));
    }
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|_| plain(StatusCode::BAD_REQUEST, "invalid JSON for footer doc"))?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// The commit part (`X-Document: put commit`); its content is not checked, as in Swift.
async fn read_commit(reader: &mut MimeReader) -> bool {
    match reader.next_part().await {
        Ok(Some(part)) => {
            let is_commit = part_header(&part, "x-document") == Some("put commit");
            is_commit && reader.read_part(1 << 16).await.is_ok()
        }
        _ => false,
    }
}

/// The fragment index of an EC PUT: the `X-Object-Sysmeta-Ec-Frag-Index` metadata, or
/// `X-Backend-Ec-Frag-Index`, stored as sysmeta either way.
fn ec_frag_index(headers: &HeaderMap, meta: &mut Metadata) -> Result<u32, Resp> {
    let value = meta
        .get("X-Object-Sysmeta-Ec-Frag-Index")
        .cloned()
        .or_else(|| h::get(headers, "x-backend-ec-frag-index").map(str::to_string));
    let Some(v) = value else {
        return Err(plain(
            StatusCode::BAD_REQUEST,
            "EC PUT without X-Object-Sysmeta-Ec-Frag-Index",
        ));
    };
    let fi: u32 = v.trim().parse().map_err(|_| {
        plain(
            StatusCode::BAD_REQUEST,
            format!("Invalid X-Object-Sysmeta-Ec-Frag-Index {v:?}"),
        )
    })?;
    meta.insert("X-Object-Sysmeta-Ec-Frag-Index".into(), fi.to_string());
    Ok(fi)
}

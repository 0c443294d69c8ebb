//! `GET` and `HEAD /<dev>/<part>/<a>/<c>/<o>`: the object's headers, swob's conditional
//! answers, byte ranges (one, or multipart), and a body checked against its ETag as it
//! is read (a mismatch quarantines the object).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use md5::{Digest, Md5};

use super::diskfile::{self, hashes, DiskError, Lookup, OpenObject};
use super::range::{parse_range, ByteRange, RangeOutcome};
use super::request::{disk_error, is_expired, with_backend_ts, ObjectRequest};
use super::ObjectState;
use crate::common::headers::{self as h, etag_list};
use crate::common::shell::{blocking, Resp};
use crate::common::{empty, plain, unique_hex, Timestamp};
use ringsmith::swift::timestamp::{http_date, parse_http_date};

/// Objects up to this size are read in one blocking call and sent from memory.
const SMALL_OBJECT: u64 = 64 * 1024;

fn object_headers(o: &OpenObject) -> HeaderMap {
    let mut hm = HeaderMap::new();
    for (k, v) in &o.metadata {
        let l = k.to_ascii_lowercase();
        if l == "name" || l == "etag" || l == "content-length" || l == "x-timestamp" {
            continue;
        }
        if l == "content-type-timestamp" {
            continue;
        }
        h::insert(&mut hm, k, v);
    }
    if let Some(e) = o.metadata.get("ETag") {
        h::insert(&mut hm, "etag", &format!("\"{e}\""));
    }
    let x_ts = o
        .metadata
        .get("X-Timestamp")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(o.data_timestamp);
    h::insert(&mut hm, "x-timestamp", &x_ts.normal());
    h::insert(&mut hm, "last-modified", &http_date(x_ts.ceil_seconds()));
    let backend_ts = o
        .meta_timestamp
        .unwrap_or(o.data_timestamp)
        .max(o.data_timestamp);
    h::insert(&mut hm, "x-backend-timestamp", &backend_ts.internal());
    h::insert(
        &mut hm,
        "x-backend-data-timestamp",
        &o.data_timestamp.internal(),
    );
    match &o.ec {
        // A fragment archive: durable only once committed; which fragments are here.
        Some(ec) => {
            if let Some(d) = ec.durable_timestamp {
                h::insert(&mut hm, "x-backend-durable-timestamp", &d.internal());
            }
            if let Some(f) = &ec.fragments {
                h::insert(&mut hm, "x-backend-fragments", f);
            }
        }
        None => h::insert(
            &mut hm,
            "x-backend-durable-timestamp",
            &o.data_timestamp.internal(),
        ),
    }
    hm.insert("accept-ranges", HeaderValue::from_static("bytes"));
    hm
}

/// A metadata value by name, whatever its case.
fn meta_get<'a>(meta: &'a diskfile::Metadata, name: &str) -> Option<&'a String> {
    meta.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Swift's `X-Backend-Ignore-Range-If-Metadata-Present`: a middleware that wants such an
/// object whole (an SLO manifest) gets it whole, whatever the Range.
fn ignore_range(headers: &HeaderMap, meta: &diskfile::Metadata) -> bool {
    h::get(headers, "x-backend-ignore-range-if-metadata-present").is_some_and(|v| {
        v.split(',')
            .any(|name| meta_get(meta, name.trim()).is_some())
    })
}

/// If-Match / If-None-Match / If-(Un)Modified-Since, as swob's conditional response.
fn conditional(
    headers: &HeaderMap,
    etag: &str,
    last_modified: u64,
    is_get_or_head: bool,
) -> Option<StatusCode> {
    if let Some(im) = h::get(headers, "if-match") {
        let tags = etag_list(im);
        if !tags.iter().any(|t| t == "*" || t == etag) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(inm) = h::get(headers, "if-none-match") {
        let tags = etag_list(inm);
        if tags.iter().any(|t| t == "*" || t == etag) {
            return Some(if is_get_or_head {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            });
        }
    } else if let Some(ims) = h::get(headers, "if-modified-since").and_then(parse_http_date) {
        if last_modified <= ims {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    if let Some(ius) = h::get(headers, "if-unmodified-since").and_then(parse_http_date) {
        if last_modified > ius {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    None
}

pub(super) async fn get(
    state: &Arc<ObjectState>,
    or: ObjectRequest,
    headers: &HeaderMap,
    head: bool,
) -> Resp {
    if let Err(m) = h::timestamp(headers, "x-timestamp") {
        return plain(StatusCode::BAD_REQUEST, m);
    }
    let read_small = (!head && !headers.contains_key("range")).then_some(SMALL_OBJECT);
    let selection = match fragment_selection(headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let found = match or.lookup_selecting(read_small, selection).await {
        Ok(Lookup::Found(o)) => o,
        Ok(Lookup::Deleted(t)) => return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), t),
        Ok(Lookup::NotFound) => return plain(StatusCode::NOT_FOUND, ""),
        Err(DiskError::BadMetadata { path, reason }) => {
            tracing::error!(path = %path.display(), %reason, "quarantining object with bad metadata");
            or.quarantine().await;
            return plain(StatusCode::NOT_FOUND, "");
        }
        Err(e) => return disk_error(&or.path.device, e),
    };
    if is_expired(&found.metadata, headers) {
        let ts = found.meta_timestamp.unwrap_or(found.data_timestamp);
        return with_backend_ts(plain(StatusCode::NOT_FOUND, ""), ts);
    }
    let expected_size: u64 = found
        .metadata
        .get("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(found.size);
    if expected_size != found.size {
        tracing::error!(path = %found.data_path.display(), "size mismatch; quarantining");
        or.quarantine().await;
        return plain(StatusCode::NOT_FOUND, "");
    }
    let mut hm = object_headers(&found);
    let etag = found.metadata.get("ETag").cloned().unwrap_or_default();
    // Conditions compare the etag the proxy names (EC: the whole object's), else ours.
    let condition_etag = h::get(headers, "x-backend-etag-is-at")
        .and_then(|names| {
            names.split(',').find_map(|n| {
                let n = n.trim();
                found
                    .metadata
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
            })
        })
        .unwrap_or_else(|| etag.clone());
    if let Some(b) = &found.small_body {
        // Verified before a byte is sent: a corrupt small object is never served.
        if hex::encode(Md5::digest(b)) != etag {
            tracing::error!(path = %found.data_path.display(), "ETag and file's md5 do not match; quarantining");
            or.quarantine().await;
            return plain(StatusCode::NOT_FOUND, "");
        }
    }
    let x_ts = found
        .metadata
        .get("X-Timestamp")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(found.data_timestamp);
    if let Some(status) = conditional(headers, &condition_etag, x_ts.ceil_seconds(), true) {
        let mut r = empty(status);
        hm.remove("content-type");
        r.headers_mut().extend(hm);
        r.headers_mut()
            .insert("content-length", HeaderValue::from_static("0"));
        return r;
    }
    let size = found.size;
    let ranges = match h::get(headers, "range").filter(|_| !ignore_range(headers, &found.metadata))
    {
        Some(r) => parse_range(r, size),
        None => RangeOutcome::Full,
    };
    match ranges {
        RangeOutcome::Unsatisfiable => {
            let mut r = plain(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Requested Range Not Satisfiable",
            );
            // The object's headers (ETag, Accept-Ranges, Last-Modified, metadata) stay on
            // the 416, as in Swift; only the body and its type and length are the error's.
            hm.remove("content-type");
            hm.remove("content-length");
            for (k, v) in hm.iter() {
                if !r.headers().contains_key(k) {
                    r.headers_mut().insert(k.clone(), v.clone());
                }
            }
            h::insert(r.headers_mut(), "content-range", &format!("bytes */{size}"));
            r
        }
        RangeOutcome::Full => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::OK;
            r.headers_mut().extend(hm);
            h::insert(r.headers_mut(), "content-length", &size.to_string());
            if !head {
                *r.body_mut() = match found.small_body {
                    Some(b) => Body::from(b),
                    None => full_body(state, &or, found, etag),
                };
            }
            r
        }
        RangeOutcome::Ranges(rs) if rs.len() == 1 => {
            let br = rs[0];
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().extend(hm);
            h::insert(
                r.headers_mut(),
                "content-range",
                &format!("bytes {}-{}/{size}", br.start, br.end),
            );
            h::insert(r.headers_mut(), "content-length", &br.length().to_string());
            if !head {
                *r.body_mut() = range_body(found.file, vec![(Vec::new(), br)], Vec::new());
            }
            r
        }
        RangeOutcome::Ranges(rs) => {
            let boundary = unique_hex();
            let ctype = found
                .metadata
                .get("Content-Type")
                .cloned()
                .unwrap_or_else(|| "application/octet-stream".into());
            let parts: Vec<(Vec<u8>, ByteRange)> = rs
                .iter()
                .enumerate()
                .map(|(i, br)| {
                    let lead = if i == 0 { "" } else { "\r\n" };
                    (
                        format!(
                            "{lead}--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                            br.start, br.end
                        )
                        .into_bytes(),
                        *br,
                    )
                })
                .collect();
            let trailer = format!("\r\n--{boundary}--").into_bytes();
            let total: u64 = parts
                .iter()
                .map(|(p, br)| p.len() as u64 + br.length())
                .sum::<u64>()
                + trailer.len() as u64;
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            r.headers_mut().extend(hm);
            h::insert(
                r.headers_mut(),
                "content-type",
                &format!("multipart/byteranges;boundary={boundary}"),
            );
            h::insert(r.headers_mut(), "content-length", &total.to_string());
            if !head {
                *r.body_mut() = range_body(found.file, parts, trailer);
            }
            r
        }
    }
}

/// The whole object. Small ones come from one read; larger ones stream in
/// `disk_chunk_size` pieces, the last piece held back until the md5 of the whole is
/// checked. A mismatch quarantines the object (so the next reader gets a good replica
/// elsewhere, as Swift's reader does) and fails the body instead of sending the last
/// piece, so no client takes damaged bytes for a complete object (Swift's object server
/// sends them all and only quarantines afterwards).
fn full_body(state: &Arc<ObjectState>, or: &ObjectRequest, o: OpenObject, etag: String) -> Body {
    let chunk = state.cfg.disk_chunk_size.max(4096);
    let size = o.size;
    let quarantine_info = Arc::new(StoredObject {
        device_path: or.device_path.clone(),
        objects_dir: or.policy.dir("objects"),
        hash_dir: or.hash_dir.clone(),
        part_dir: or.part_dir.clone(),
        suffix: or.suffix().to_string(),
        etag,
    });
    struct St {
        file: Option<std::fs::File>,
        md5: Md5,
        left: u64,
    }
    let init = St {
        file: Some(o.file),
        md5: Md5::new(),
        left: size,
    };
    let stream = futures_util::stream::unfold(init, move |mut st| {
        let qi = quarantine_info.clone();
        async move {
            if st.left == 0 {
                // Only an empty object gets here with its file still open.
                st.file.take()?;
                return verify_md5(&st.md5, &qi).await.err().map(|e| (Err(e), st));
            }
            let want = st.left.min(if size <= SMALL_OBJECT {
                size
            } else {
                chunk as u64
            }) as usize;
            let mut file = st.file.take()?;
            let (res, file) = blocking(move || {
                let mut buf = vec![0u8; want];
                let r = file.read_exact(&mut buf).map(|_| buf);
                (r, file)
            })
            .await;
            match res {
                Ok(buf) => {
                    st.md5.update(&buf);
                    st.left -= buf.len() as u64;
                    if st.left == 0 {
                        if let Err(e) = verify_md5(&st.md5, &qi).await {
                            return Some((Err(e), st));
                        }
                    } else {
                        st.file = Some(file);
                    }
                    Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), st))
                }
                Err(e) => Some((Err(e), st)),
            }
        }
    });
    Body::from_stream(stream)
}

/// Where a streamed object lives, to quarantine it if its contents fail the check.
struct StoredObject {
    device_path: std::path::PathBuf,
    objects_dir: String,
    hash_dir: std::path::PathBuf,
    part_dir: std::path::PathBuf,
    suffix: String,
    etag: String,
}

/// Checks a whole object's md5 against its ETag; on a mismatch quarantines it and returns
/// the error that fails the body.
async fn verify_md5(md5: &Md5, obj: &Arc<StoredObject>) -> Result<(), std::io::Error> {
    let got = hex::encode(md5.clone().finalize());
    if got == obj.etag {
        return Ok(());
    }
    tracing::error!(
        path = %obj.hash_dir.display(), stored = %obj.etag, actual = %got,
        "ETag and file's md5 do not match; quarantining"
    );
    let o = obj.clone();
    let _ = blocking(move || {
        let r = diskfile::quarantine(&o.device_path, &o.objects_dir, &o.hash_dir);
        let _ = hashes::invalidate_hash(&o.part_dir, &o.suffix);
        r
    })
    .await;
    Err(std::io::Error::other(format!(
        "{}: contents' md5 {got} is not the ETag {}",
        obj.hash_dir.display(),
        obj.etag
    )))
}

/// Byte ranges, each preceded by its (possibly empty) multipart header, then a trailer.
fn range_body(file: std::fs::File, parts: Vec<(Vec<u8>, ByteRange)>, trailer: Vec<u8>) -> Body {
    const CHUNK: u64 = 65536;
    struct St {
        file: Option<std::fs::File>,
        parts: std::collections::VecDeque<(Vec<u8>, ByteRange)>,
        pos: Option<(u64, u64)>,
        trailer: Option<Vec<u8>>,
    }
    let st = St {
        file: Some(file),
        parts: parts.into(),
        pos: None,
        trailer: Some(trailer),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some((at, end)) = st.pos {
                if at > end {
                    st.pos = None;
                    continue;
                }
                let want = (end - at + 1).min(CHUNK) as usize;
                let mut file = st.file.take()?;
                let (res, file) = blocking(move || {
                    let mut buf = vec![0u8; want];
                    let r = file
                        .seek(SeekFrom::Start(at))
                        .and_then(|_| file.read_exact(&mut buf))
                        .map(|_| buf);
                    (r, file)
                })
                .await;
                st.file = Some(file);
                return match res {
                    Ok(buf) => {
                        st.pos = Some((at + buf.len() as u64, end));
                        Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), st))
                    }
                    Err(e) => {
                        st.parts.clear();
                        st.trailer = None;
                        st.pos = None;
                        Some((Err(e), st))
                    }
                };
            }
            if let Some((header, br)) = st.parts.pop_front() {
                st.pos = Some((br.start, br.end));
                if !header.is_empty() {
                    return Some((Ok(Bytes::from(header)), st));
                }
                continue;
            }
            let t = st.trailer.take()?;
            if t.is_empty() {
                return None;
            }
            return Some((Ok(Bytes::from(t)), st));
        }
    });
    Body::from_stream(stream)
}

/// `X-Backend-Fragment-Preferences` and `X-Backend-Ec-Frag-Index` of an EC read.
fn fragment_selection(headers: &HeaderMap) -> Result<diskfile::FragmentSelection, Resp> {
    // Swift reads the header with `safe_json_loads`: text that is not JSON counts as
    // absent; JSON of the wrong shape is refused.
    let prefs = match h::get(headers, "x-backend-fragment-preferences") {
        Some(v) if serde_json::from_str::<serde_json::Value>(v).is_ok() => {
            Some(diskfile::ec::parse_frag_prefs(v).map_err(|m| plain(StatusCode::BAD_REQUEST, m))?)
        }
        _ => None,
    };
    let frag_index = match h::get(headers, "x-backend-ec-frag-index") {
        Some(v) => Some(v.trim().parse::<u32>().map_err(|_| {
            plain(
                StatusCode::BAD_REQUEST,
                format!("Invalid X-Backend-Ec-Frag-Index {v:?}"),
            )
        })?),
        None => None,
    };
    Ok(diskfile::FragmentSelection { prefs, frag_index })
}

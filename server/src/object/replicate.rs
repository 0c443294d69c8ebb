//! `REPLICATE /<dev>/<part>[/<suffix>-<suffix>...]`: the partition's suffix hashes as a
//! pickle (what replicators compare), or, with suffixes, their invalidation after a push.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::diskfile::{ec_hashes, hashes};
use super::request::{disk_error, request_policy};
use super::ObjectState;
use crate::common::headers as h;
use crate::common::shell::{blocking, storage_path, Resp};
use crate::common::{plain, Timestamp};

pub(super) async fn replicate(state: &Arc<ObjectState>, path: &str, headers: &HeaderMap) -> Resp {
    let sp = match storage_path(path, 2, 3) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let policy = match request_policy(state, headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let device_path = match state.cfg.storage.devices.require(&sp.device) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let suffixes: Vec<String> = sp
        .account
        .as_deref()
        .map(|s| s.split('-').map(str::to_string).collect())
        .unwrap_or_default();
    if suffixes.iter().any(|s| !hashes::valid_suffix(s)) {
        return plain(StatusCode::BAD_REQUEST, "Invalid suffix");
    }
    let part_dir = device_path.join(policy.dir("objects")).join(&sp.partition);
    let reclaim = Timestamp::from_ticks(
        Timestamp::now()
            .ticks()
            .saturating_sub(state.cfg.reclaim_age * 100_000),
        0,
    );
    // Erasure-coded partitions answer `{suffix: {frag_index|None: md5}}`.
    let is_ec = !policy.is_replication();
    // Ringsmith's listing of one suffix, for the pulling reconstructor.
    let list = h::get(headers, "x-ringsmith-list-suffix").is_some_and(|v| v == "yes");
    if list && suffixes.len() != 1 {
        return plain(StatusCode::BAD_REQUEST, "Listing takes exactly one suffix");
    }
    let res = blocking(move || -> std::io::Result<Vec<u8>> {
        if list {
            let listing = super::suffix_listing::list_suffix(&part_dir.join(&suffixes[0]))?;
            Ok(listing.to_string().into_bytes())
        } else if suffixes.is_empty() && is_ec {
            let hashes = ec_hashes::ec_partition_hashes(&part_dir, Some(reclaim))?;
            Ok(ec_hashes::pickle_ec_hashes(&hashes))
        } else if suffixes.is_empty() {
            let hashes = hashes::get_hashes(&part_dir, &[], Some(reclaim))?;
            Ok(hashes::pickle_hashes(&hashes))
        } else {
            for s in &suffixes {
                hashes::invalidate_hash(&part_dir, s)?;
            }
            Ok(ringsmith::pickle::dumps(&ringsmith::pickle::Value::None))
        }
    })
    .await;
    match res {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        Err(e) => disk_error(&sp.device, e.into()),
    }
}

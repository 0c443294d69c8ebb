//! The HTTP side both database servers share: listing parameters and answers, the
//! headers of a database's stat row, the checked metadata of a write, and POST.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode};

use super::broker::{db_error, meta_limits, open_live, update_metadata, update_put_timestamp};
use super::listing::{listing_params_reserved, ListingFormat, ListingParams};
use super::metadata::{live_metadata, metadata_items, parse_metadata, MetaLimits};
use super::DbKind;
use crate::common::headers::{self as h, check_metadata};
use crate::common::shell::{blocking, required_timestamp, Resp};
use crate::common::{empty, plain, Constraints, Timestamp};
use ringsmith::swift::timestamp::http_date;

/// The listing parameters of a GET or HEAD, or Swift's 400/412 for bad ones.
pub fn request_params(
    query: Option<&str>,
    headers: &HeaderMap,
    max_limit: usize,
) -> Result<ListingParams, Resp> {
    let allow_reserved = h::get(headers, "x-backend-allow-reserved-names")
        .is_some_and(ringsmith::swift::conf::is_true);
    listing_params_reserved(query, h::get(headers, "accept"), max_limit, allow_reserved).map_err(
        |(code, m)| {
            plain(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                m,
            )
        },
    )
}

/// The answer to a listing GET (`body` rendered) or HEAD (`None`): 204 when there is
/// nothing to list, with the database's headers and the format's content type.
pub fn listing_response(body: Option<String>, format: ListingFormat, headers: HeaderMap) -> Resp {
    let mut r = match body {
        Some(b) => {
            let status = if b.is_empty() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::OK
            };
            let mut r = Response::new(Body::from(b));
            *r.status_mut() = status;
            r
        }
        None => empty(StatusCode::NO_CONTENT),
    };
    r.headers_mut().extend(headers);
    h::insert(r.headers_mut(), "content-type", format.content_type());
    r
}

/// Reads an existing database on the blocking pool: `read`'s result, or the answer
/// (404 when there is no database, a database error).
pub async fn read_existing<K: DbKind, T: Send + 'static>(
    db_path: PathBuf,
    read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Resp> {
    let res = blocking(move || -> rusqlite::Result<Option<T>> {
        if !db_path.exists() {
            return Ok(None);
        }
        read(&super::broker::open_db::<K>(&db_path)?).map(Some)
    })
    .await;
    match res {
        Err(e) => Err(db_error(e)),
        Ok(None) => Err(plain(StatusCode::NOT_FOUND, "")),
        Ok(Some(x)) => Ok(x),
    }
}

/// The answer to a write that needed the database: `status` when it was there (and
/// live), 404 when not, a database error otherwise.
pub fn found_or_404(res: rusqlite::Result<bool>, status: StatusCode) -> Resp {
    match res {
        Err(e) => db_error(e),
        Ok(false) => plain(StatusCode::NOT_FOUND, ""),
        Ok(true) => empty(status),
    }
}

/// `X-Timestamp`, `X-Put-Timestamp` and `Last-Modified` of a stat row.
pub fn timestamp_headers(hm: &mut HeaderMap, created_at: Timestamp, put_timestamp: Timestamp) {
    h::insert(hm, "x-timestamp", &created_at.normal());
    h::insert(hm, "x-put-timestamp", &put_timestamp.normal());
    h::insert(
        hm,
        "last-modified",
        &http_date(put_timestamp.ceil_seconds()),
    );
}

/// The live items of a stored `metadata` column, as headers.
pub fn metadata_headers(hm: &mut HeaderMap, metadata: &str) {
    for (k, v) in live_metadata(&parse_metadata(metadata)) {
        h::insert(hm, &k, &v);
    }
}

/// The metadata a write stores in a `K` database, after Swift's `check_metadata` (400),
/// with the limits its merged result must keep.
pub fn request_metadata<K: DbKind>(
    headers: &HeaderMap,
    constraints: &Constraints,
) -> Result<(Vec<(String, String)>, MetaLimits), Resp> {
    check_metadata(headers, K::META_TARGET, constraints)
        .map_err(|m| plain(StatusCode::BAD_REQUEST, m))?;
    Ok((
        metadata_items(headers, K::NAME, K::SAVE_HEADERS),
        meta_limits::<K>(constraints),
    ))
}

/// POST to an account or container: merges the request's metadata (and, with
/// `bump_put_timestamp`, raises the put timestamp); 404 when missing or deleted.
pub async fn post<K: DbKind>(
    db_path: PathBuf,
    headers: &HeaderMap,
    constraints: &Constraints,
    bump_put_timestamp: bool,
) -> Resp {
    let req_ts = match required_timestamp(headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (items, limits) = match request_metadata::<K>(headers, constraints) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let res = blocking(move || -> rusqlite::Result<bool> {
        let Some(mut conn) = open_live::<K>(&db_path)? else {
            return Ok(false);
        };
        if bump_put_timestamp {
            update_put_timestamp::<K>(&conn, req_ts)?;
        }
        update_metadata::<K>(&mut conn, &items, req_ts, &limits)?;
        Ok(true)
    })
    .await;
    found_or_404(res, StatusCode::NO_CONTENT)
}

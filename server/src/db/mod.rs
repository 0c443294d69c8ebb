//! The database layer the container and account servers share: opening Swift-format
//! SQLite databases and the `chexor` function their triggers call (here), the generic
//! broker ([`broker`]: creation, the stat row, put timestamps, metadata, listing rows,
//! replication sync points), the JSON metadata column ([`metadata`]) and listings
//! ([`listing`]: parameters, the paging walk, the three formats). `account::broker` and
//! `container::broker` keep only their own tables, rows and merge rules.
//!
//! A database lives at `<dev>/<containers|accounts>/<part>/<hash[-3:]>/<hash>/<hash>.db`
//! with Swift's schema, so Swift's replicators, auditors and `swift-*-info` tools can read
//! it. Row updates (an object server's update of a container, a container server's
//! report to an account) go through Swift's `.pending` file next to the database
//! ([`pending`]): appended under the directory's `.lock`, and merged into SQLite in one
//! transaction when the file passes `PENDING_CAP` or before the database is read
//! ([`broker::open_db`]). The records are Swift's, so each server merges what the
//! other left.
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

pub mod broker;
pub mod listing;
pub mod metadata;
pub mod pending;
pub mod requests;

pub use broker::{ts, DbKind};
pub use listing::{list_iter, listing_params, Entry, ListingFormat, ListingParams, Window};
pub use metadata::{
    check_merged_metadata, live_metadata, merge_metadata, metadata_items, metadata_too_large,
    parse_metadata, MetaLimits, MetadataTooLarge,
};

/// Opens a database and registers `chexor`.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(25))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    register_chexor(&conn)?;
    Ok(conn)
}

/// Swift's `chexor(old, name, timestamp)`: old XOR md5("name-timestamp"), as 32 hex.
pub fn chexor(old: &str, name: &str, timestamp: &str) -> String {
    let digest = Md5::digest(format!("{name}-{timestamp}").as_bytes());
    let old = u128::from_str_radix(old, 16).unwrap_or(0);
    let new = u128::from_be_bytes(digest.into());
    format!("{:032x}", old ^ new)
}

fn register_chexor(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "chexor",
        3,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let old: String = ctx.get::<Option<String>>(0)?.unwrap_or_default();
            let name: String = ctx.get::<Option<String>>(1)?.unwrap_or_default();
            let ts: String = ctx
                .get_raw(2)
                .as_str()
                .map(str::to_string)
                .unwrap_or_default();
            Ok(chexor(&old, &name, &ts))
        },
    )
}

/// `<dev>/<kind>/<part>/<hash[-3:]>/<hash>/<hash>.db`.
pub fn db_path(device_path: &Path, kind: &str, partition: &str, hash: &str) -> PathBuf {
    device_path
        .join(kind)
        .join(partition)
        .join(&hash[hash.len() - 3..])
        .join(hash)
        .join(format!("{hash}.db"))
}

/// A fresh random database id (Swift uses a uuid4 string).
pub fn new_db_id() -> String {
    let h = crate::common::unique_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chexor_matches_swift() {
        // python: '%032x' % (int('0'*32,16) ^ int(md5(b'o-0000000001.00000').hexdigest(),16))
        let h = chexor("00000000000000000000000000000000", "o", "0000000001.00000");
        assert_eq!(h, hex::encode(Md5::digest(b"o-0000000001.00000")));
        assert_eq!(chexor(&h, "o", "0000000001.00000"), "0".repeat(32));
    }
}

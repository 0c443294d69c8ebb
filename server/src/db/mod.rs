//! What the container and account servers share: opening Swift-format SQLite databases,
//! the `chexor` function their triggers call, the JSON metadata column, listing queries
//! (prefix, delimiter, marker, end_marker, limit, reverse, path) and the three listing
//! formats.
//!
//! A database lives at `<dev>/<containers|accounts>/<part>/<hash[-3:]>/<hash>/<hash>.db`
//! with Swift's schema, so Swift's replicators, auditors and `swift-*-info` tools can read
//! it. Swift batches updates through a `.pending` file to cut SQLite write
//! transactions; Ringsmith writes each update straight into SQLite (one short
//! transaction under SQLite's own lock), so it never creates `.pending` files. (It does
//! not yet fold in `.pending` files that a Swift server left behind; see
//! `docs/differences.md`.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::common::Timestamp;

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

/// The `metadata` column: `{"X-Container-Meta-Color": ["blue", "<timestamp>"]}`.
pub fn parse_metadata(text: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Merges new metadata items: an item replaces the stored one only when newer.
pub fn merge_metadata(
    stored: &mut Map<String, Value>,
    updates: &[(String, String)],
    ts: Timestamp,
) {
    for (k, v) in updates {
        let newer = match stored
            .get(k)
            .and_then(|e| e.get(1))
            .and_then(|t| t.as_str())
        {
            Some(old) => Timestamp::parse(old).map(|o| ts > o).unwrap_or(true),
            None => true,
        };
        if newer {
            stored.insert(
                k.clone(),
                Value::Array(vec![Value::String(v.clone()), Value::String(ts.internal())]),
            );
        }
    }
}

/// Swift's limits on the user metadata an account or container holds once a write is
/// merged in (its `validate_metadata`): the request alone may be within the limits while
/// the merged whole is not.
#[derive(Clone, Copy, Debug)]
pub struct MetaLimits {
    /// `x-account-meta-` or `x-container-meta-`.
    pub prefix: &'static str,
    pub max_count: usize,
    pub max_overall_size: usize,
}

/// A metadata write the merged result of which breaks [`MetaLimits`]; it is not stored.
#[derive(Debug)]
pub struct MetadataTooLarge(pub String);

impl std::fmt::Display for MetadataTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetadataTooLarge {}

/// Checks merged metadata against `limits` (live user items only: name after the prefix
/// plus value count towards the size).
pub fn check_merged_metadata(
    stored: &Map<String, Value>,
    limits: &MetaLimits,
) -> Result<(), MetadataTooLarge> {
    let (mut count, mut size) = (0usize, 0usize);
    for (k, v) in stored {
        let Some(value) = v.get(0).and_then(|x| x.as_str()) else {
            continue;
        };
        if value.is_empty() || !k.to_ascii_lowercase().starts_with(limits.prefix) {
            continue;
        }
        count += 1;
        size += k.len() - limits.prefix.len() + value.len();
    }
    if count > limits.max_count {
        return Err(MetadataTooLarge("Too many metadata items".into()));
    }
    if size > limits.max_overall_size {
        return Err(MetadataTooLarge("Total metadata too large".into()));
    }
    Ok(())
}

/// The 400 for a rusqlite error that carries [`MetadataTooLarge`], if it is one.
pub fn metadata_too_large(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::UserFunctionError(inner) => inner
            .downcast_ref::<MetadataTooLarge>()
            .map(|m| m.0.clone()),
        _ => None,
    }
}

/// Live metadata items (an empty value means deleted).
pub fn live_metadata(stored: &Map<String, Value>) -> Vec<(String, String)> {
    stored
        .iter()
        .filter_map(|(k, v)| {
            let val = v.get(0)?.as_str()?;
            (!val.is_empty()).then(|| (k.clone(), val.to_string()))
        })
        .collect()
}

/// Listing parameters from the query string, validated like Swift's
/// `validate_container_params`.
#[derive(Clone, Debug, Default)]
pub struct ListingParams {
    pub prefix: String,
    /// One or more characters (Swift allows multi-character delimiters).
    pub delimiter: Option<String>,
    pub marker: String,
    pub end_marker: String,
    pub limit: usize,
    pub reverse: bool,
    pub path: Option<String>,
    pub format: ListingFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListingFormat {
    #[default]
    Plain,
    Json,
    Xml,
}

impl ListingFormat {
    pub fn content_type(&self) -> &'static str {
        match self {
            ListingFormat::Plain => "text/plain; charset=utf-8",
            ListingFormat::Json => "application/json; charset=utf-8",
            ListingFormat::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// Parses the query string; the error is a 400 message (or 412 for a bad `limit`).
pub fn listing_params(
    query: Option<&str>,
    accept: Option<&str>,
    max_limit: usize,
) -> Result<ListingParams, (u16, String)> {
    let mut p = ListingParams {
        limit: max_limit,
        ..ListingParams::default()
    };
    let mut format: Option<String> = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        // NUL is fine in a marker (a client may ask for "just after X" as `X\0`).
        if v.contains('\0') && k != "marker" && k != "end_marker" {
            return Err((400, format!("Invalid {k}")));
        }
        match k.as_ref() {
            "prefix" => p.prefix = v.into_owned(),
            "delimiter" => p.delimiter = (!v.is_empty()).then(|| v.into_owned()),
            "marker" => p.marker = v.into_owned(),
            "end_marker" => p.end_marker = v.into_owned(),
            // Swift ignores a limit that is not all digits (say `5000.0`).
            "limit" if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let n: usize = v.parse().unwrap_or(usize::MAX);
                if n > max_limit {
                    return Err((412, format!("Maximum limit is {max_limit}")));
                }
                p.limit = n;
            }
            "reverse" => p.reverse = ringsmith::swift::conf::is_true(&v),
            "path" => p.path = Some(v.into_owned()),
            "format" => format = Some(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    p.format = match format.as_deref() {
        Some("json") => ListingFormat::Json,
        Some("xml") => ListingFormat::Xml,
        Some("plain") => ListingFormat::Plain,
        _ => {
            let a = accept.unwrap_or("").to_ascii_lowercase();
            if a.contains("application/json") {
                ListingFormat::Json
            } else if a.contains("application/xml") || a.contains("text/xml") {
                ListingFormat::Xml
            } else {
                ListingFormat::Plain
            }
        }
    };
    if let Some(path) = &p.path {
        // Swift: an empty path lists the top level; any other gets exactly one trailing
        // slash (so `/` lists the children of `/`).
        p.prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}/", path.trim_end_matches('/'))
        };
        p.delimiter = Some("/".to_string());
    }
    Ok(p)
}

/// One listing entry: a row, or a `subdir` roll-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<R> {
    Row(String, R),
    Subdir(String),
}

/// The name range a listing page reads: `lo` (inclusive when the flag is set) to `hi`
/// (always exclusive).
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub lo: Option<(String, bool)>,
    pub hi: Option<String>,
}

impl Window {
    /// The SQL condition on `name` and its arguments.
    pub fn sql(&self) -> (String, Vec<String>) {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        if let Some((l, inclusive)) = &self.lo {
            clauses.push(if *inclusive { "name >= ?" } else { "name > ?" }.to_string());
            args.push(l.clone());
        }
        if let Some(h) = &self.hi {
            clauses.push("name < ?".to_string());
            args.push(h.clone());
        }
        (clauses.join(" AND "), args)
    }

    pub fn contains(&self, name: &str) -> bool {
        let lo_ok = match &self.lo {
            Some((l, true)) => name >= l.as_str(),
            Some((l, false)) => name > l.as_str(),
            None => true,
        };
        lo_ok && self.hi.as_deref().is_none_or(|h| name < h)
    }
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(n) = char::from_u32(c as u32 + 1) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Swift's `list_objects_iter` / `list_containers_iter`: pages through a table by name,
/// rolling names up to `subdir` at the delimiter. `fetch(window, reverse, n)` returns up
/// to `n` live rows inside the window, in name order (descending when `reverse`).
pub fn list_iter<R>(
    params: &ListingParams,
    mut fetch: impl FnMut(&Window, bool, usize) -> rusqlite::Result<Vec<(String, R)>>,
) -> rusqlite::Result<Vec<Entry<R>>> {
    let mut out: Vec<Entry<R>> = Vec::new();
    let prefix = params.prefix.as_str();
    let mut w = Window::default();
    let (start, stop) = if params.reverse {
        (&params.end_marker, &params.marker)
    } else {
        (&params.marker, &params.end_marker)
    };
    if !start.is_empty() {
        w.lo = Some((start.clone(), false));
    }
    if !stop.is_empty() {
        w.hi = Some(stop.clone());
    }
    if !prefix.is_empty() {
        if w.lo.as_ref().is_none_or(|(l, _)| l.as_str() < prefix) {
            w.lo = Some((prefix.to_string(), true));
        }
        if let Some(u) = prefix_upper(prefix) {
            if w.hi.as_ref().is_none_or(|h| u < *h) {
                w.hi = Some(u);
            }
        }
    }
    let path_mode = params.path.is_some();
    'pages: while out.len() < params.limit {
        let want = params.limit - out.len();
        let rows = fetch(&w, params.reverse, want)?;
        let short = rows.len() < want;
        if rows.is_empty() {
            break;
        }
        for (name, row) in rows {
            if params.reverse {
                w.hi = Some(name.clone());
            } else {
                w.lo = Some((name.clone(), false));
            }
            if !name.starts_with(prefix) {
                continue;
            }
            if path_mode && name == prefix {
                continue;
            }
            if let Some(d) = params.delimiter.as_deref() {
                let rest = &name[prefix.len()..];
                if let Some(pos) = rest.find(d) {
                    let dir = format!("{prefix}{}{d}", &rest[..pos]);
                    if path_mode {
                        // `path` lists direct children only; `dir/` itself is one.
                        if name != dir {
                            skip_subtree(&mut w, &dir, d, params.reverse);
                            continue 'pages;
                        }
                    } else {
                        if dir != params.marker {
                            out.push(Entry::Subdir(dir.clone()));
                        }
                        skip_subtree(&mut w, &dir, d, params.reverse);
                        continue 'pages;
                    }
                }
            }
            out.push(Entry::Row(name, row));
            if out.len() >= params.limit {
                break 'pages;
            }
        }
        if short {
            break;
        }
    }
    Ok(out)
}

/// Moves the window past every name that starts with `dir` (which ends with the
/// delimiter): forward, to `dir` with its last character bumped by one.
fn skip_subtree(w: &mut Window, dir: &str, _d: &str, reverse: bool) {
    if reverse {
        // Everything under `dir` sorts at or after `dir`.
        w.hi = Some(dir.to_string());
    } else {
        let mut next = dir.to_string();
        let last = next.pop().unwrap_or('/');
        next.push(char::from_u32(last as u32 + 1).unwrap_or(last));
        w.lo = Some((next, true));
    }
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

    fn run(names: &[&str], q: &str) -> Vec<String> {
        let p = listing_params(Some(q), None, 10000).unwrap();
        let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        sorted.sort();
        let res = list_iter(&p, |w, rev, n| {
            let mut v: Vec<(String, ())> = sorted
                .iter()
                .filter(|s| w.contains(s))
                .map(|s| (s.clone(), ()))
                .collect();
            if rev {
                v.reverse();
            }
            v.truncate(n);
            Ok(v)
        })
        .unwrap();
        res.into_iter()
            .map(|e| match e {
                Entry::Row(n, _) => n,
                Entry::Subdir(d) => format!("subdir:{d}"),
            })
            .collect()
    }

    #[test]
    fn listings_like_swift() {
        let names = ["a/1.txt", "a/2.txt", "b/x.txt", "c.txt"];
        assert_eq!(run(&names, ""), names);
        assert_eq!(
            run(&names, "delimiter=/"),
            ["subdir:a/", "subdir:b/", "c.txt"]
        );
        assert_eq!(run(&names, "prefix=a/&limit=1"), ["a/1.txt"]);
        assert_eq!(run(&names, "marker=a/2.txt&end_marker=c.txt"), ["b/x.txt"]);
        assert_eq!(
            run(&names, "reverse=on&delimiter=/"),
            ["c.txt", "subdir:b/", "subdir:a/"]
        );
        assert_eq!(run(&names, "reverse=true&limit=2"), ["c.txt", "b/x.txt"]);
        assert_eq!(run(&names, "path=a"), ["a/1.txt", "a/2.txt"]);
        assert_eq!(run(&names, "prefix=a/&delimiter=/"), ["a/1.txt", "a/2.txt"]);
        let deep = ["a/b/c", "a/b/d", "a/e", "a/f/"];
        assert_eq!(run(&deep, "path=a"), ["a/e", "a/f/"]);
        assert_eq!(
            run(&deep, "prefix=a/&delimiter=/"),
            ["subdir:a/b/", "a/e", "subdir:a/f/"]
        );
    }

    #[test]
    fn bad_params() {
        assert_eq!(
            listing_params(Some("limit=10001"), None, 10000)
                .unwrap_err()
                .0,
            412
        );
        // Swift takes multi-character delimiters.
        assert_eq!(
            listing_params(Some("delimiter=ab"), None, 10000)
                .unwrap()
                .delimiter
                .as_deref(),
            Some("ab")
        );
        assert_eq!(
            listing_params(None, Some("application/json"), 10)
                .unwrap()
                .format,
            ListingFormat::Json
        );
    }

    #[test]
    fn multi_character_delimiters_roll_up_like_swift() {
        let names = ["test", "test-&bar", "test-&foo", "tex"];
        assert_eq!(
            run(&names, "delimiter=-%26"),
            vec!["test", "subdir:test-&", "tex"]
        );
        assert_eq!(
            run(&names, "delimiter=-%26&reverse=yes"),
            vec!["tex", "subdir:test-&", "test"]
        );
    }

    #[test]
    fn limits_that_are_not_digits_are_ignored_and_nul_markers_allowed() {
        let p = listing_params(Some("limit=5000.0"), None, 10000).unwrap();
        assert_eq!(p.limit, 10000);
        assert_eq!(
            listing_params(Some("limit=10001"), None, 10000)
                .unwrap_err()
                .0,
            412
        );
        let p = listing_params(Some("marker=b1%00"), None, 10000).unwrap();
        assert_eq!(p.marker, "b1\0");
        assert_eq!(
            listing_params(Some("prefix=a%00"), None, 10000)
                .unwrap_err()
                .0,
            400
        );
    }

    #[test]
    fn merged_metadata_limits() {
        let limits = MetaLimits {
            prefix: "x-container-meta-",
            max_count: 2,
            max_overall_size: 10,
        };
        let mut md = Map::new();
        let ts = Timestamp::parse("1").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-A".into(), "12345".into())],
            ts,
        );
        merge_metadata(&mut md, &[("X-Container-Meta-B".into(), "123".into())], ts);
        assert!(check_merged_metadata(&md, &limits).is_ok());
        let mut over = md.clone();
        merge_metadata(&mut over, &[("X-Container-Meta-C".into(), "1".into())], ts);
        assert_eq!(
            check_merged_metadata(&over, &limits).unwrap_err().0,
            "Too many metadata items"
        );
        // Size counts the name after the prefix plus the value: "a12345" + "b1234" = 11.
        let ts2 = Timestamp::parse("2").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-B".into(), "1234".into())],
            ts2,
        );
        assert_eq!(
            check_merged_metadata(&md, &limits).unwrap_err().0,
            "Total metadata too large"
        );
        // Deleted items (empty values) do not count; other headers do not either.
        let ts3 = Timestamp::parse("3").unwrap();
        merge_metadata(
            &mut md,
            &[("X-Container-Meta-B".into(), String::new())],
            ts3,
        );
        merge_metadata(&mut md, &[("X-Container-Read".into(), "x".repeat(50))], ts3);
        assert!(check_merged_metadata(&md, &limits).is_ok());
    }

    #[test]
    fn path_slash_lists_the_children_of_slash() {
        let names = ["/dir1/", "/dir1/f", "/file1", "dir1/", "dir1/f", "file1"];
        assert_eq!(run(&names, "path=%2F"), vec!["/dir1/", "/file1"]);
        assert_eq!(run(&names, "path="), vec!["dir1/", "file1"]);
    }
}

//! Request paths: `/<device>/<partition>/<account>[/<container>[/<object>]]`.
//!
//! The wire path is percent-decoded first (a WSGI server hands Swift a decoded
//! `PATH_INFO`), so `%2F` in an object name is a slash like any other: objects may contain
//! slashes, and they only ever reach the disk through their hash. Device and partition
//! *do* become directory names, so they are validated strictly: no `/`, no `.` or `..`,
//! and the partition must be a decimal number.

use percent_encoding::percent_decode_str;

#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// Swift's 412 `Invalid UTF8 or contains NULL`.
    BadEncoding,
    /// 400 with the message.
    Invalid(String),
}

/// Percent-decodes a request path and rejects invalid UTF-8. NUL is allowed: storage
/// servers take names in the reserved namespace (Swift's `check_utf8(internal=True)`);
/// only the proxy keeps clients out of it, and [`parse_storage_path`] checks where a
/// NUL may stand.
pub fn decode_path(raw: &str) -> Result<String, PathError> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    String::from_utf8(bytes).map_err(|_| PathError::BadEncoding)
}

/// The reserved namespace's marker: a name starting with NUL is internal (object
/// versioning keeps versions there), and users can never name one.
pub const RESERVED: char = '\0';

/// Swift's `validate_internal_obj`: a NUL only leads a name, and a reserved-namespace
/// container holds only reserved-namespace objects (and the other way round).
pub fn validate_reserved_names(
    account: Option<&str>,
    container: Option<&str>,
    object: Option<&str>,
) -> Result<(), PathError> {
    for (name, kind) in [
        (account, "account"),
        (container, "container"),
        (object, "object"),
    ] {
        if let Some(n) = name {
            if n.contains(RESERVED) && !n.starts_with(RESERVED) {
                return Err(PathError::Invalid(format!(
                    "Invalid reserved-namespace {kind}"
                )));
            }
        }
    }
    if let (Some(c), Some(o)) = (container, object) {
        match (c.starts_with(RESERVED), o.starts_with(RESERVED)) {
            (true, false) => {
                return Err(PathError::Invalid(
                    "Invalid user-namespace object in reserved-namespace container".into(),
                ))
            }
            (false, true) => {
                return Err(PathError::Invalid(
                    "Invalid reserved-namespace object in user-namespace container".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Swift's `split_path(path, minsegs, maxsegs, rest_with_last)`: the segments after the
/// leading slash, `None` for the optional ones that are absent.
pub fn split_path(
    path: &str,
    minsegs: usize,
    maxsegs: usize,
    rest_with_last: bool,
) -> Result<Vec<Option<String>>, PathError> {
    let invalid = || PathError::Invalid(format!("Invalid path: {path}"));
    let segs: Vec<&str> = path.splitn(maxsegs + 1, '/').collect();
    let count = segs.len();
    if !segs[0].is_empty()
        || count < minsegs + 1
        || segs[1..(minsegs + 1).min(count)]
            .iter()
            .any(|s| s.is_empty())
    {
        return Err(invalid());
    }
    if rest_with_last {
        if count > maxsegs + 1 {
            return Err(invalid());
        }
    } else {
        // Without rest_with_last a trailing segment is only allowed when empty ("/a/c/").
        let extra: Vec<&str> = path.splitn(maxsegs + 2, '/').collect();
        if extra.len() == maxsegs + 2 && !extra[maxsegs + 1].is_empty() {
            return Err(invalid());
        }
        // Swift splits on every slash here, so a required segment that is only the
        // trailing slash of the one before it (`//` for one segment) is empty.
        if extra[1..(minsegs + 1).min(extra.len())]
            .iter()
            .any(|s| s.is_empty())
        {
            return Err(invalid());
        }
    }
    let mut out: Vec<Option<String>> = segs[1..].iter().map(|s| Some(s.to_string())).collect();
    if !rest_with_last {
        if let Some(last) = out.last() {
            if count == maxsegs + 1 {
                let l = last.as_deref().unwrap_or("");
                if let Some(pos) = l.find('/') {
                    let trimmed = l[..pos].to_string();
                    *out.last_mut().unwrap() = Some(trimmed);
                }
            }
        }
    }
    // Every segment but the last must be non-empty; an empty last one means "absent".
    let n = out.len();
    if out[..n.saturating_sub(1)]
        .iter()
        .any(|s| s.as_deref() == Some(""))
    {
        return Err(invalid());
    }
    if let Some(last) = out.last_mut() {
        if last.as_deref() == Some("") {
            *last = None;
        }
    }
    out.resize(maxsegs, None);
    Ok(out)
}

/// Swift's `validate_device_partition`, plus a numeric partition (it names a directory).
pub fn validate_device_partition(device: &str, partition: &str) -> Result<(), PathError> {
    if device.is_empty() || device.contains('/') || device == "." || device == ".." {
        return Err(PathError::Invalid(format!("Invalid device: {device}")));
    }
    if partition.is_empty()
        || partition.len() > 10
        || !partition.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(PathError::Invalid(format!(
            "Invalid partition: {partition}"
        )));
    }
    Ok(())
}

/// A parsed storage-server path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoragePath {
    pub device: String,
    pub partition: String,
    pub account: Option<String>,
    pub container: Option<String>,
    pub object: Option<String>,
}

/// Parses `/<dev>/<part>[/<a>[/<c>[/<o...>]]]` with at least `min` segments.
pub fn parse_storage_path(path: &str, min: usize, max: usize) -> Result<StoragePath, PathError> {
    let segs = split_path(path, min, max, true)?;
    let mut it = segs.into_iter();
    let device = it.next().flatten().unwrap_or_default();
    let partition = it.next().flatten().unwrap_or_default();
    validate_device_partition(&device, &partition)?;
    let (account, container, object) = (
        it.next().flatten(),
        it.next().flatten(),
        it.next().flatten(),
    );
    validate_reserved_names(account.as_deref(), container.as_deref(), object.as_deref())?;
    Ok(StoragePath {
        device,
        partition,
        account,
        container,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_matches_swift() {
        assert_eq!(
            split_path("/a/c/o/r", 1, 3, true).unwrap(),
            vec![Some("a".into()), Some("c".into()), Some("o/r".into())]
        );
        assert_eq!(
            split_path("/a", 1, 2, false).unwrap(),
            vec![Some("a".into()), None]
        );
        assert_eq!(
            split_path("/a/c/", 1, 2, false).unwrap(),
            vec![Some("a".into()), Some("c".into())]
        );
        assert!(split_path("/a/c/o", 1, 2, false).is_err());
        assert!(split_path("a/c", 1, 2, false).is_err());
        assert!(split_path("//c", 1, 2, false).is_err());
        // Found by the `object_request` fuzz target: `//` gave one absent segment where
        // one is required; Swift refuses it.
        assert!(split_path("//", 1, 1, false).is_err());
        assert_eq!(
            split_path("/a/", 1, 1, false).unwrap(),
            vec![Some("a".into())]
        );
        // As Swift 2.38.3's split_path answers them.
        assert!(split_path("//", 1, 2, false).is_err());
        assert!(split_path("/a//", 2, 2, false).is_err());
        assert!(split_path("/d/p/a//o", 5, 5, true).is_err());
    }

    #[test]
    fn storage_paths_and_traversal() {
        let p = parse_storage_path("/sda1/12/AUTH_a/c/dir/obj", 5, 5).unwrap();
        assert_eq!(p.object.as_deref(), Some("dir/obj"));
        assert!(matches!(
            parse_storage_path("/../12/a/c/o", 5, 5),
            Err(PathError::Invalid(_))
        ));
        assert!(parse_storage_path("/sda/..", 2, 5).is_err());
        assert!(parse_storage_path("/sda/1x/a", 3, 5).is_err());
        let decoded = decode_path("/sda/1/a%2Fb").unwrap();
        assert_eq!(decoded, "/sda/1/a/b");
        assert_eq!(decode_path("/sda/1/%00").unwrap(), "/sda/1/\0");
        assert_eq!(decode_path("/sda/1/%ff"), Err(PathError::BadEncoding));
    }

    #[test]
    fn reserved_names_only_lead_and_match_their_container() {
        assert!(parse_storage_path("/d/1/a/\0versions\0c/\0o\x001", 3, 5).is_ok());
        assert!(parse_storage_path("/d/1/a/c/o", 3, 5).is_ok());
        let err = |p: &str| match parse_storage_path(p, 3, 5) {
            Err(PathError::Invalid(m)) => m,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(err("/d/1/a/c\0x"), "Invalid reserved-namespace container");
        assert_eq!(err("/d/1/a\0/c"), "Invalid reserved-namespace account");
        assert_eq!(
            err("/d/1/a/\0c/o"),
            "Invalid user-namespace object in reserved-namespace container"
        );
        assert_eq!(
            err("/d/1/a/c/\0o"),
            "Invalid reserved-namespace object in user-namespace container"
        );
    }
}

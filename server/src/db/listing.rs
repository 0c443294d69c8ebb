//! Listings: the query parameters (validated like Swift's
//! `validate_container_params`), the paging walk over a table by name with prefix,
//! delimiter, marker, end_marker, limit, reverse and path (Swift's
//! `list_objects_iter` / `list_containers_iter`), and the plain, JSON and XML bodies.
//! The account and container servers differ only in their row type and its fields.

use ringsmith::swift::escape::{xml_attr, xml_text};

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
    /// `X-Backend-Allow-Reserved-Names`: list names in the reserved namespace (those
    /// starting with NUL) too. Without it they are left out, as Swift's brokers do.
    pub allow_reserved: bool,
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
    listing_params_reserved(query, accept, max_limit, false)
}

/// [`listing_params`] for a request that may (`allow_reserved`) see reserved names.
pub fn listing_params_reserved(
    query: Option<&str>,
    accept: Option<&str>,
    max_limit: usize,
    allow_reserved: bool,
) -> Result<ListingParams, (u16, String)> {
    let mut p = ListingParams {
        limit: max_limit,
        allow_reserved,
        ..ListingParams::default()
    };
    let mut format: Option<String> = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        // NUL is fine in a marker (a client may ask for "just after X" as `X\0`), and
        // anywhere in a listing of the reserved namespace.
        if v.contains('\0') && k != "marker" && k != "end_marker" && !allow_reserved {
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
    if !params.allow_reserved {
        // Reserved names sort before everything else: start just past them.
        const FIRST_USER_NAME: &str = "\u{1}";
        if w.lo
            .as_ref()
            .is_none_or(|(l, _)| l.as_str() < FIRST_USER_NAME)
        {
            w.lo = Some((FIRST_USER_NAME.to_string(), true));
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

/// One listing body: a name a line, a JSON array, or an XML document whose root is
/// `<root name="...">`. Subdirs are the same in both servers' listings; a row is
/// `json_row` (its JSON object, keys in Swift's order) or `xml_row` (its XML element).
pub fn render<R>(
    format: ListingFormat,
    root: &str,
    name: &str,
    rows: &[Entry<R>],
    json_row: impl Fn(&str, &R) -> serde_json::Value,
    xml_row: impl Fn(&str, &R) -> String,
) -> String {
    match format {
        ListingFormat::Plain => rows
            .iter()
            .map(|e| match e {
                Entry::Row(n, _) | Entry::Subdir(n) => format!("{n}\n"),
            })
            .collect(),
        ListingFormat::Json => serde_json::Value::Array(
            rows.iter()
                .map(|e| match e {
                    Entry::Subdir(d) => serde_json::json!({ "subdir": d }),
                    Entry::Row(n, r) => json_row(n, r),
                })
                .collect(),
        )
        .to_string(),
        ListingFormat::Xml => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} name=\"{}\">",
                xml_attr(name)
            );
            for e in rows {
                match e {
                    Entry::Subdir(d) => s.push_str(&format!(
                        "<subdir name=\"{}\"><name>{}</name></subdir>",
                        xml_attr(d),
                        xml_text(d)
                    )),
                    Entry::Row(n, r) => s.push_str(&xml_row(n, r)),
                }
            }
            s.push_str(&format!("</{root}>"));
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reserved_names_are_listed_only_when_allowed() {
        let names = ["\0versions\0c", "\0x", "a", "b"];
        assert_eq!(run(&names, ""), ["a", "b"]);
        assert_eq!(run(&names, "reverse=on"), ["b", "a"]);
        let mut p = listing_params_reserved(Some("prefix=%00"), None, 100, true).unwrap();
        let listed = |p: &ListingParams| -> Vec<String> {
            list_iter(p, |w, rev, n| {
                let mut v: Vec<(String, ())> = names
                    .iter()
                    .filter(|x| w.contains(x))
                    .map(|x| (x.to_string(), ()))
                    .collect();
                if rev {
                    v.reverse();
                }
                v.truncate(n);
                Ok(v)
            })
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Entry::Row(n, _) | Entry::Subdir(n) => n,
            })
            .collect()
        };
        assert_eq!(listed(&p), ["\0versions\0c", "\0x"]);
        p.prefix.clear();
        assert_eq!(listed(&p).len(), 4);
        assert!(listing_params(Some("prefix=%00"), None, 100).is_err());
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
    fn path_slash_lists_the_children_of_slash() {
        let names = ["/dir1/", "/dir1/f", "/file1", "dir1/", "dir1/f", "file1"];
        assert_eq!(run(&names, "path=%2F"), vec!["/dir1/", "/file1"]);
        assert_eq!(run(&names, "path="), vec!["dir1/", "file1"]);
    }
}

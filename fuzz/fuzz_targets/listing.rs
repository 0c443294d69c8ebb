//! Container and account listings: the query string (`prefix`, `delimiter`, `marker`,
//! `end_marker`, `limit`, `reverse`, `path`, `format`), then the paging walk over the
//! names, checked against a direct reading of Swift's rules over the whole name list,
//! then the plain, JSON and XML bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringsmith_server::db::listing::{
    list_iter, listing_params_reserved, render, Entry, ListingFormat, ListingParams,
};

/// The listing Swift's rules describe, one name at a time over the sorted list.
fn model(p: &ListingParams, names: &[String]) -> Vec<Entry<()>> {
    let (start, stop) = if p.reverse {
        (&p.end_marker, &p.marker)
    } else {
        (&p.marker, &p.end_marker)
    };
    let in_range = |n: &String| {
        (start.is_empty() || n > start)
            && (stop.is_empty() || n < stop)
            && n.starts_with(&p.prefix)
            && (p.allow_reserved || n.as_str() >= "\u{1}")
    };
    let mut ordered: Vec<&String> = names.iter().filter(|n| in_range(n)).collect();
    if p.reverse {
        ordered.reverse();
    }
    let mut out = Vec::new();
    let mut skipping: Option<String> = None;
    for name in ordered {
        if out.len() >= p.limit {
            break;
        }
        if skipping.as_deref().is_some_and(|d| name.starts_with(d)) {
            continue;
        }
        if p.path.is_some() && *name == p.prefix {
            continue;
        }
        if let Some(d) = p.delimiter.as_deref() {
            let rest = &name[p.prefix.len()..];
            if let Some(pos) = rest.find(d) {
                let dir = format!("{}{}{d}", p.prefix, &rest[..pos]);
                if p.path.is_some() {
                    if *name != dir {
                        skipping = Some(dir);
                        continue;
                    }
                } else {
                    if dir != p.marker {
                        out.push(Entry::Subdir(dir.clone()));
                    }
                    skipping = Some(dir);
                    continue;
                }
            }
        }
        out.push(Entry::Row(name.clone(), ()));
    }
    out
}

/// `(max_limit, allow_reserved)`: the container server's default limit, and a small one
/// so that `limit` cuts listings short.
const SETTINGS: [(usize, bool); 3] = [(10_000, false), (10_000, true), (3, false)];

/// One listing request over the names: the walk and the model agree.
fn check(
    query: &str,
    accept: Option<&str>,
    names: &[String],
    max_limit: usize,
    allow_reserved: bool,
) {
    let Ok(params) = listing_params_reserved(Some(query), accept, max_limit, allow_reserved) else {
        return;
    };
    assert!(params.limit <= max_limit);
    assert!(params.delimiter.as_deref() != Some(""));
    let mut fetches = 0usize;
    let listing = list_iter(&params, |w, reverse, n| {
        fetches += 1;
        // Each page moves on; more pages than names means the walk is stuck.
        assert!(
            fetches <= names.len() + 2,
            "the listing walk does not move on: {params:?}"
        );
        let inside = names.iter().filter(|name| w.contains(name));
        let rows: Vec<(String, ())> = if reverse {
            inside.rev().take(n).map(|s| (s.clone(), ())).collect()
        } else {
            inside.take(n).map(|s| (s.clone(), ())).collect()
        };
        Ok(rows)
    })
    .expect("an in-memory fetch does not fail");
    assert_eq!(listing, model(&params, names), "{params:?}");

    for format in [
        ListingFormat::Plain,
        ListingFormat::Json,
        ListingFormat::Xml,
    ] {
        let body = render(
            format,
            "container",
            "c",
            &listing,
            |n, _| serde_json::json!({ "name": n }),
            |n, _| format!("<object><name>{n}</name></object>"),
        );
        if format == ListingFormat::Json {
            let v: serde_json::Value =
                serde_json::from_str(&body).expect("the JSON listing parses");
            assert_eq!(v.as_array().map(Vec::len), Some(listing.len()));
        }
    }
}

// The input: the query string on the first line, the `Accept` header on the second, then
// the names in the container, one a line.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or("");
    let accept = lines.next().filter(|a| !a.is_empty());
    let mut names: Vec<String> = lines.map(str::to_string).collect();
    names.sort();
    names.dedup();
    for (max_limit, allow_reserved) in SETTINGS {
        check(query, accept, &names, max_limit, allow_reserved);
    }
});

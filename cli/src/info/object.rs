//! `ringsmith object-info`: Swift's `swift-object-info` on an object's `.data` file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};
use ringsmith::swift::timestamp::Timestamp;
use ringsmith_server::object::diskfile::read_metadata;

use super::{has_prefix, ring_locations, Parsed, SwiftDir, Tool};
use crate::ring::optparse::{Kind, Spec};

const SPECS: &[Spec] = &[
    Spec::new(Some('h'), "--help", Kind::Flag),
    Spec::new(Some('n'), "--no-check-etag", Kind::Flag),
    Spec::new(Some('d'), "--swift-dir", Kind::Str),
    Spec::new(None, "--drop-prefixes", Kind::Flag),
    Spec::new(Some('P'), "--policy-name", Kind::Str),
];

const TOOL: Tool = Tool {
    prog: "ringsmith object-info",
    file_word: "OBJECT_FILE",
    specs: SPECS,
    help_lines: "  -h, --help            show this help message and exit
  -n, --no-check-etag   Don't verify file contents against stored etag
  -d SWIFT_DIR, --swift-dir=SWIFT_DIR
                        Pass location of swift directory
  --drop-prefixes       When outputting metadata, drop the per-section common
                        prefixes
  -P POLICY_NAME, --policy-name=POLICY_NAME
                        Specify storage policy name
",
};

const SYS: &str = "x-object-sysmeta-";
const USER: &str = "x-object-meta-";
const TRANSIENT: &str = "x-object-transient-sysmeta-";

pub fn main(argv: &[String]) -> u8 {
    let opts = match TOOL.parse(argv) {
        Parsed::Run(p) => p,
        Parsed::Exit(code) => return code,
    };
    let file = opts.args[0].clone();
    let swift_dir = opts.str("swift_dir").unwrap_or("/etc/swift").to_string();
    let sd = SwiftDir::load(&swift_dir);
    // Swift validates a non-default swift directory's swift.conf up front.
    if swift_dir != "/etc/swift" && sd.hash.is_none() {
        println!(
            "{}: no usable [swift-hash] settings in {}/swift.conf",
            TOOL.prog, swift_dir
        );
        return 1;
    }
    match print_obj(
        &file,
        !opts.flag("no_check_etag"),
        &sd,
        opts.str("policy_name"),
        opts.flag("drop_prefixes"),
    ) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(text) => {
            print!("{text}");
            1
        }
    }
}

/// The policy index of a data file from its `objects[-N]` directory (Swift's
/// `extract_policy`); unknown or missing policies count as policy 0.
fn policy_of_path(path: &str, sd: &SwiftDir) -> u32 {
    let Some(at) = path.rfind("objects") else {
        return 0;
    };
    let Some(dir) = path[at..]
        .split('/')
        .next()
        .filter(|_| path[at..].contains('/'))
    else {
        return 0;
    };
    let index = match dir.strip_prefix("objects") {
        Some("") => Some(0),
        Some(rest) => rest.strip_prefix('-').and_then(|n| n.parse::<u32>().ok()),
        None => None,
    };
    index.filter(|i| sd.policies.get(*i).is_some()).unwrap_or(0)
}

fn print_obj(
    file: &str,
    check_etag: bool,
    sd: &SwiftDir,
    policy_name: Option<&str>,
    drop_prefixes: bool,
) -> Result<String, String> {
    let mut out = String::new();
    if !super::exists(file) {
        return Err("Data file doesn't exist\n".into());
    }
    let full = ringsmith::builder::composite::abspath(file);
    let policy_index = policy_of_path(&full, sd);
    let mut datadir = "objects".to_string();
    let mut ring = if policy_index > 0 {
        datadir = format!("objects-{policy_index}");
        sd.ring(&format!("object-{policy_index}"))
    } else {
        sd.ring("object")
    };
    if let Some(name) = policy_name.filter(|n| !n.is_empty()) {
        if let Some(named) = sd.policy_by_name(name) {
            if named != policy_index {
                out.push_str(
                    "WARNING: Ring does not match policy!\nDouble check your policy name!\n",
                );
            }
            if ring.is_none() && named > 0 {
                ring = sd.ring(&format!("object-{named}"));
                if ring.is_none() {
                    return Err(format!(
                        "{out}No ring for policy {name:?}: cannot load {}/object-{named}.ring.gz\n",
                        sd.dir.display()
                    ));
                }
                datadir = format!("objects-{named}");
            }
        }
    }
    let mut fp = std::fs::File::open(file).map_err(|e| format!("{out}{file}: {e}\n"))?;
    let mut meta = match read_metadata(&fp, Path::new(file)) {
        Ok(m) if !m.is_empty() => m,
        _ => return Err(format!("{out}Invalid metadata\n")),
    };
    let etag = meta.remove("ETag").unwrap_or_default();
    let length = meta.remove("Content-Length").unwrap_or_default();
    let path = meta.get("name").cloned().unwrap_or_default();
    let names = print_metadata(&mut out, meta, drop_prefixes, &sd.hash_config())?;

    let file_len;
    if check_etag {
        let mut h = Md5::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n_total = 0u64;
        loop {
            let n = fp
                .read(&mut buf)
                .map_err(|e| format!("{out}{file}: {e}\n"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            n_total += n as u64;
        }
        file_len = n_total;
        let got = hex::encode(h.finalize());
        if etag.is_empty() {
            out.push_str("ETag: Not found in metadata\n");
        } else if got == etag {
            out.push_str(&format!("ETag: {etag} (valid)\n"));
        } else {
            out.push_str(&format!("ETag: {etag} doesn't match file hash of {got}!\n"));
        }
    } else {
        out.push_str(&format!("ETag: {etag} (not checked)\n"));
        file_len = fp.metadata().map(|m| m.len()).unwrap_or(0);
    }
    if length.is_empty() {
        out.push_str("Content-Length: Not found in metadata\n");
    } else if length.trim().parse::<u64>().ok() == Some(file_len) {
        out.push_str(&format!("Content-Length: {length} (valid)\n"));
    } else {
        out.push_str(&format!(
            "Content-Length: {length} doesn't match file length of {file_len}\n"
        ));
    }
    let Some((account, container, obj)) = names else {
        return Err(format!("{out}Path is invalid for object {path:?}\n"));
    };
    if let Some(ring) = ring {
        out.push_str(&ring_locations(
            &ring,
            &datadir,
            &account,
            Some(&container),
            Some(&obj),
            Some(policy_index),
        ));
    }
    Ok(out)
}

/// Swift's `print_obj_metadata`; returns the object's account, container and name.
fn print_metadata(
    out: &mut String,
    mut meta: BTreeMap<String, String>,
    drop_prefixes: bool,
    hash: &ringsmith::hash::HashConfig,
) -> Result<Option<(String, String, String)>, String> {
    let path = meta.remove("name").unwrap_or_default();
    let content_type = meta.remove("Content-Type").unwrap_or_default();
    let ts = meta
        .remove("X-Timestamp")
        .map(|t| Timestamp::parse(&t).map_err(|e| format!("{out}{e}\n")))
        .transpose()?
        .unwrap_or_default();
    let mut names = None;
    if !path.is_empty() {
        let parts: Vec<&str> = path.splitn(4, '/').collect();
        if parts.len() != 4 {
            return Err(format!("{out}Path is invalid for object {path:?}\n"));
        }
        let (a, c, o) = (parts[1], parts[2], parts[3]);
        let obj_hash = hash.hash_path(a, Some(c), Some(o)).unwrap_or_default();
        out.push_str(&format!(
            "Path: {path}\n  Account: {a}\n  Container: {c}\n  Object: {o}\n  Object hash: {obj_hash}\n"
        ));
        names = Some((a.to_string(), c.to_string(), o.to_string()));
    } else {
        out.push_str("Path: Not found in metadata\n");
    }
    if content_type.is_empty() {
        out.push_str("Content-Type: Not found in metadata\n");
    } else {
        out.push_str(&format!("Content-Type: {content_type}\n"));
    }
    if ts == Timestamp::default() {
        out.push_str("Timestamp: Not found in metadata\n");
    } else {
        out.push_str(&format!(
            "Timestamp: {} ({})\n",
            ts.isoformat(),
            ts.internal()
        ));
    }
    let mut sys = BTreeMap::new();
    let mut transient = BTreeMap::new();
    let mut user = BTreeMap::new();
    let mut other = BTreeMap::new();
    for (key, value) in meta {
        let (section, prefix) = if has_prefix(&key, USER) {
            (&mut user, USER)
        } else if has_prefix(&key, SYS) {
            (&mut sys, SYS)
        } else if has_prefix(&key, TRANSIENT) {
            (&mut transient, TRANSIENT)
        } else {
            (&mut other, "")
        };
        let key = if drop_prefixes {
            key[prefix.len()..].to_string()
        } else {
            key
        };
        section.insert(key, value);
    }
    for (title, items) in [
        ("System Metadata:", &sys),
        ("Transient System Metadata:", &transient),
        ("User Metadata:", &user),
        ("Other Metadata:", &other),
    ] {
        out.push_str(title);
        out.push('\n');
        if items.is_empty() {
            out.push_str("  No metadata found\n");
        }
        for (k, v) in items {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    for (label, meta) in [
        (
            "Data crypto details",
            sys.get("X-Object-Sysmeta-Crypto-Body-Meta"),
        ),
        (
            "Metadata crypto details",
            transient.get("X-Object-Transient-Sysmeta-Crypto-Meta"),
        ),
    ] {
        let Some(meta) = meta else { continue };
        let parsed = serde_json::from_str::<serde_json::Value>(&unquote_plus(meta))
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                // Swift stops here with a traceback on stderr; the report so far stays.
                eprintln!(
                    "Bad crypto meta {}: not a JSON object",
                    ringsmith::builder::syntax::py_repr(meta)
                );
                out.clone()
            })?;
        out.push_str(&format!(
            "{label}: {}\n",
            ringsmith::pyjson::dumps_indent(&parsed, 2)
        ));
    }
    Ok(names)
}

/// Python's `urllib.parse.unquote_plus`: `+` is a space, `%XX` escapes decode as UTF-8.
fn unquote_plus(s: &str) -> String {
    ringsmith::swift::escape::unquote(&s.replace('+', " "))
}

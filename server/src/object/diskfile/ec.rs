//! Fragment archives of erasure-coded policies, named as Swift's `ECDiskFileManager`
//! names them: `<ts>#<frag_index>#d.data` once durable, `<ts>#<frag_index>.data`
//! before the proxy's commit, and (written by older Swift) a separate `<ts>.durable`
//! marking every `.data` of that timestamp durable.
//!
//! Which files a hash directory keeps: the newest durable frag set (every fragment
//! index at the durable timestamp), any non-durable fragments newer than it (a PUT
//! still waiting for its commit, or one the proxy never committed), the newest newer
//! `.meta`, or the newest tombstone when it is newer than any durable data. Everything
//! older than the newest durable data or tombstone is obsolete.
//!
//! Which fragment a read serves: without fragment preferences, the highest fragment
//! index of the durable set. With `X-Backend-Fragment-Preferences` (the proxy always
//! sends them, possibly `[]`), the first preferred timestamp that has a fragment index
//! not excluded, else the newest frag set, durable or not.

use std::collections::BTreeMap;

use crate::common::Timestamp;

/// Parses `<ts>#<frag>[#d].data`; `None` for anything else.
pub fn parse_fragment_name(name: &str) -> Option<(Timestamp, u32, bool)> {
    let stem = name.strip_suffix(".data")?;
    let mut parts = stem.split('#');
    let ts = Timestamp::parse(parts.next()?).ok()?;
    let frag: u32 = parts.next()?.parse().ok()?;
    let durable = match parts.next() {
        None => false,
        Some("d") => true,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((ts, frag, durable))
}

/// The name of a fragment archive.
pub fn fragment_name(ts: Timestamp, frag_index: u32, durable: bool) -> String {
    if durable {
        format!("{}#{frag_index}#d.data", ts.internal())
    } else {
        format!("{}#{frag_index}.data", ts.internal())
    }
}

/// One preference of `X-Backend-Fragment-Preferences`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragPreference {
    pub timestamp: Timestamp,
    pub exclude: Vec<u32>,
}

/// Parses the JSON list `[{"timestamp": "...", "exclude": [..]}, ...]`.
pub fn parse_frag_prefs(value: &str) -> Result<Vec<FragPreference>, String> {
    let bad = |why: &str| format!("Bad X-Backend-Fragment-Preferences {value:?}: {why}");
    let v: serde_json::Value = serde_json::from_str(value).map_err(|e| bad(&e.to_string()))?;
    let list = v.as_array().ok_or_else(|| bad("not a list"))?;
    let mut prefs = Vec::new();
    for item in list {
        let ts = match item.get("timestamp") {
            Some(serde_json::Value::String(s)) => {
                Timestamp::parse(s).map_err(|_| bad("bad timestamp"))?
            }
            Some(serde_json::Value::Number(n)) => {
                Timestamp::parse(&n.to_string()).map_err(|_| bad("bad timestamp"))?
            }
            _ => return Err(bad("missing timestamp")),
        };
        let exclude = item
            .get("exclude")
            .and_then(|e| e.as_array())
            .ok_or_else(|| bad("missing exclude list"))?
            .iter()
            .map(|x| x.as_u64().map(|n| n as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| bad("bad fragment index"))?;
        prefs.push(FragPreference {
            timestamp: ts,
            exclude,
        });
    }
    Ok(prefs)
}

/// What an EC hash directory holds, by the rules in the module comment.
#[derive(Clone, Debug, Default)]
pub struct EcFiles {
    /// Kept fragment archives by timestamp: (file name, frag index), ascending index.
    pub frag_sets: BTreeMap<Timestamp, Vec<(String, u32)>>,
    pub durable_timestamp: Option<Timestamp>,
    /// The newest tombstone, when it is newer than the durable data.
    pub tombstone: Option<(String, Timestamp)>,
    /// The newest `.meta` newer than the durable data or tombstone.
    pub meta: Option<(String, Timestamp)>,
    /// A legacy `.durable` marker that is still needed.
    pub legacy_durable: Option<String>,
    pub obsolete: Vec<String>,
}

impl EcFiles {
    /// Sorts the names of an EC hash directory into kept and obsolete files.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> EcFiles {
        enum F {
            Data(u32, bool),
            Ts,
            Meta,
            Durable,
        }
        let mut files: Vec<(Timestamp, String, F)> = Vec::new();
        for n in names {
            let parsed = if let Some((ts, fi, d)) = parse_fragment_name(n) {
                Some((ts, F::Data(fi, d)))
            } else if let Some(s) = n.strip_suffix(".ts") {
                Timestamp::parse(s).ok().map(|t| (t, F::Ts))
            } else if let Some(s) = n.strip_suffix(".meta") {
                Timestamp::parse(s.split('-').next().unwrap_or(s))
                    .ok()
                    .map(|t| (t, F::Meta))
            } else if let Some(s) = n.strip_suffix(".durable") {
                Timestamp::parse(s).ok().map(|t| (t, F::Durable))
            } else {
                None
            };
            if let Some((t, f)) = parsed {
                files.push((t, n.to_string(), f));
            }
        }
        let legacy: Vec<Timestamp> = files
            .iter()
            .filter(|(_, _, f)| matches!(f, F::Durable))
            .map(|(t, _, _)| *t)
            .collect();
        // The newest durable data or tombstone ends what is kept.
        let mut floor: Option<(Timestamp, bool)> = None; // (ts, is_tombstone)
        for (t, _, f) in &files {
            let candidate = match f {
                F::Data(_, d) if *d || legacy.contains(t) => Some((*t, false)),
                F::Ts => Some((*t, true)),
                _ => None,
            };
            if let Some(c) = candidate {
                // A durable data file wins over a tombstone of the same time.
                if floor.is_none_or(|(ft, fts)| c.0 > ft || (c.0 == ft && fts && !c.1)) {
                    floor = Some(c);
                }
            }
        }
        let mut out = EcFiles::default();
        if let Some((t, false)) = floor {
            out.durable_timestamp = Some(t);
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (t, name, f) in files {
            let below = floor.is_some_and(|(ft, _)| t < ft);
            let at = floor.is_some_and(|(ft, _)| t == ft);
            match f {
                _ if below => out.obsolete.push(name),
                F::Data(fi, _) => {
                    if at && floor.is_some_and(|(_, ts)| ts) {
                        out.obsolete.push(name);
                    } else {
                        out.frag_sets.entry(t).or_default().push((name, fi));
                    }
                }
                F::Ts => {
                    if at && out.tombstone.is_none() && floor.is_some_and(|(_, ts)| ts) {
                        out.tombstone = Some((name, t));
                    } else {
                        out.obsolete.push(name);
                    }
                }
                F::Meta => {
                    if out.meta.is_none() && !at {
                        out.meta = Some((name, t));
                    } else {
                        out.obsolete.push(name);
                    }
                }
                F::Durable => {
                    if at && out.durable_timestamp == Some(t) {
                        out.legacy_durable = Some(name);
                    } else {
                        out.obsolete.push(name);
                    }
                }
            }
        }
        for set in out.frag_sets.values_mut() {
            set.sort_by_key(|(_, fi)| *fi);
        }
        // A .meta with no data left to describe goes too.
        if out.frag_sets.is_empty() {
            if let Some((m, _)) = out.meta.take() {
                out.obsolete.push(m);
            }
        }
        out
    }

    /// The fragment archive a read serves: (file name, timestamp, frag index).
    pub fn choose(
        &self,
        prefs: Option<&[FragPreference]>,
        frag_index: Option<u32>,
    ) -> Option<(String, Timestamp, u32)> {
        let (ts, mut wanted) = match prefs {
            None => (self.durable_timestamp?, frag_index),
            Some(prefs) => {
                let mut chosen = None;
                let mut excluded_sets = Vec::new();
                for p in prefs {
                    let Some(set) = self.frag_sets.get(&p.timestamp) else {
                        continue;
                    };
                    if let Some((_, fi)) = set.iter().rev().find(|(_, fi)| !p.exclude.contains(fi))
                    {
                        chosen = Some((p.timestamp, Some(*fi)));
                        break;
                    }
                    excluded_sets.push(p.timestamp);
                }
                match chosen {
                    Some(c) => c,
                    None => {
                        let newest = self
                            .frag_sets
                            .keys()
                            .rev()
                            .find(|t| !excluded_sets.contains(t))?;
                        (*newest, frag_index)
                    }
                }
            }
        };
        let set = self.frag_sets.get(&ts)?;
        if wanted.is_none() {
            wanted = set.last().map(|(_, fi)| *fi);
        }
        set.iter()
            .find(|(_, fi)| Some(*fi) == wanted)
            .map(|(n, fi)| (n.clone(), ts, *fi))
    }

    /// `X-Backend-Fragments`: JSON of timestamp -> frag indexes, as Python's
    /// `json.dumps` writes it.
    pub fn fragments_header(&self) -> Option<String> {
        if self.frag_sets.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .frag_sets
            .iter()
            .map(|(t, set)| {
                let idx: Vec<String> = set.iter().map(|(_, fi)| fi.to_string()).collect();
                format!("\"{}\": [{}]", t.internal(), idx.join(", "))
            })
            .collect();
        Some(format!("{{{}}}", parts.join(", ")))
    }
}

/// True when a hash directory's names are an EC policy's (a replicated one never has
/// `#` in a `.data` name nor a `.durable`).
pub fn looks_like_ec<'a>(names: impl IntoIterator<Item = &'a str>) -> bool {
    names
        .into_iter()
        .any(|n| (n.ends_with(".data") && n.contains('#')) || n.ends_with(".durable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn names_parse_and_format() {
        let t = ts("0000000001.00000");
        assert_eq!(
            parse_fragment_name("0000000001.00000#3#d.data"),
            Some((t, 3, true))
        );
        assert_eq!(
            parse_fragment_name("0000000001.00000#3.data"),
            Some((t, 3, false))
        );
        assert_eq!(parse_fragment_name("0000000001.00000.data"), None);
        assert_eq!(parse_fragment_name("0000000001.00000#x.data"), None);
        assert_eq!(parse_fragment_name("0000000001.00000#1#e.data"), None);
        assert_eq!(fragment_name(t, 3, true), "0000000001.00000#3#d.data");
        assert_eq!(fragment_name(t, 0, false), "0000000001.00000#0.data");
    }

    #[test]
    fn keeps_newest_durable_and_newer_non_durables() {
        let f = EcFiles::from_names([
            "0000000001.00000#1#d.data",
            "0000000002.00000#1#d.data",
            "0000000002.00000#4#d.data",
            "0000000003.00000#1.data",
            "0000000000.50000#2.data",
            "0000000001.50000.meta",
            "0000000004.00000.meta",
        ]);
        assert_eq!(f.durable_timestamp, Some(ts("0000000002.00000")));
        let mut obs = f.obsolete.clone();
        obs.sort();
        assert_eq!(
            obs,
            vec![
                "0000000000.50000#2.data",
                "0000000001.00000#1#d.data",
                "0000000001.50000.meta"
            ]
        );
        assert_eq!(f.meta.as_ref().unwrap().0, "0000000004.00000.meta");
        assert_eq!(
            f.fragments_header().unwrap(),
            r#"{"0000000002.00000": [1, 4], "0000000003.00000": [1]}"#
        );
        // No preferences: the durable set, highest index.
        assert_eq!(f.choose(None, None).unwrap().0, "0000000002.00000#4#d.data");
        assert_eq!(
            f.choose(None, Some(1)).unwrap().0,
            "0000000002.00000#1#d.data"
        );
        // Preferences: any newest set, or the preferred timestamp minus exclusions.
        assert_eq!(
            f.choose(Some(&[]), None).unwrap().0,
            "0000000003.00000#1.data"
        );
        let prefs = [FragPreference {
            timestamp: ts("0000000002.00000"),
            exclude: vec![4],
        }];
        assert_eq!(
            f.choose(Some(&prefs), None).unwrap().0,
            "0000000002.00000#1#d.data"
        );
    }

    #[test]
    fn legacy_durable_and_tombstones() {
        let f = EcFiles::from_names(["0000000002.00000#1.data", "0000000002.00000.durable"]);
        assert_eq!(f.durable_timestamp, Some(ts("0000000002.00000")));
        assert_eq!(
            f.legacy_durable.as_deref(),
            Some("0000000002.00000.durable")
        );
        assert!(f.obsolete.is_empty());
        assert_eq!(f.choose(None, None).unwrap().2, 1);

        let f = EcFiles::from_names([
            "0000000002.00000#1#d.data",
            "0000000003.00000.ts",
            "0000000001.00000.durable",
        ]);
        assert_eq!(f.tombstone.as_ref().unwrap().0, "0000000003.00000.ts");
        assert_eq!(f.durable_timestamp, None);
        assert_eq!(f.obsolete.len(), 2);
        assert!(f.choose(None, None).is_none());

        // Only a non-durable fragment: nothing to serve without preferences.
        let f = EcFiles::from_names(["0000000002.00000#1.data"]);
        assert!(f.choose(None, None).is_none());
        assert!(f.obsolete.is_empty());
        assert_eq!(f.choose(Some(&[]), None).unwrap().2, 1);
    }

    #[test]
    fn frag_prefs_parse() {
        let p =
            parse_frag_prefs(r#"[{"timestamp": "0000000002.00000", "exclude": [1, 2]}]"#).unwrap();
        assert_eq!(p[0].exclude, vec![1, 2]);
        assert_eq!(parse_frag_prefs("[]").unwrap(), vec![]);
        assert!(parse_frag_prefs("{}").is_err());
        assert!(parse_frag_prefs(r#"[{"timestamp": "x", "exclude": []}]"#).is_err());
    }
}

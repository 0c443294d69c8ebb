//! The line formats of SSYNC's missing check, shared by our receiver and our sender:
//! what a sender offers (`<hash> <ts_data>[ m:<hex>[__<hex>][,t:<hex>[__<hex>]][,durable:False]]`)
//! and what a receiver wants back (`<hash> d|m|dm`). Deltas are in Swift's raw
//! timestamp units (10 µs ticks) relative to the data timestamp.

use crate::common::Timestamp;

/// One object a sender offers: its hash and the timestamps of what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub hash: String,
    pub ts_data: Timestamp,
    pub ts_meta: Timestamp,
    pub ts_ctype: Timestamp,
    /// False only for a non-durable EC fragment offered as such.
    pub durable: bool,
}

/// Which parts of an offered object the receiver asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub data: bool,
    pub meta: bool,
}

/// What the receiver holds of an offered object; all `None` when it holds nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// The `.data` (or tombstone) timestamp.
    pub ts_data: Option<Timestamp>,
    pub ts_meta: Option<Timestamp>,
    pub ts_ctype: Option<Timestamp>,
}

fn shifted(base: Timestamp, spec: &str) -> Result<Timestamp, String> {
    let (delta, offset) = spec.split_once("__").unwrap_or((spec, "0"));
    let delta = i128::from_str_radix(delta, 16).map_err(|_| format!("bad delta {spec:?}"))?;
    let offset = u64::from_str_radix(offset, 16).map_err(|_| format!("bad offset {spec:?}"))?;
    let ticks = u64::try_from(base.ticks() as i128 + delta)
        .map_err(|_| format!("delta {spec:?} out of range"))?;
    Ok(Timestamp::from_ticks(ticks, offset))
}

/// Parses a missing-check line from a sender.
pub fn decode_offer(line: &str) -> Result<Offer, String> {
    let mut parts = line.split_whitespace();
    let hash = parts.next().ok_or("empty missing-check line")?;
    let hash = percent_decode(hash)?;
    let ts = parts
        .next()
        .ok_or_else(|| format!("no timestamp in {line:?}"))?;
    let ts_data =
        Timestamp::parse(&percent_decode(ts)?).map_err(|_| format!("bad timestamp in {line:?}"))?;
    // Deltas count from the data timestamp without its offset, as Swift's `normal`.
    let base = Timestamp::from_ticks(ts_data.ticks(), 0);
    let mut offer = Offer {
        hash,
        ts_data,
        ts_meta: ts_data,
        ts_ctype: ts_data,
        durable: true,
    };
    if let Some(extra) = parts.next() {
        for item in percent_decode(extra)?.split(',') {
            let Some((key, value)) = item.split_once(':') else {
                continue;
            };
            match key {
                "m" => offer.ts_meta = shifted(base, value)?,
                "t" => offer.ts_ctype = shifted(base, value)?,
                "durable" => offer.durable = ringsmith::swift::conf::is_true(value),
                _ => {}
            }
        }
    }
    Ok(offer)
}

/// The line a sender writes for an offer.
pub fn encode_offer(offer: &Offer) -> String {
    let mut line = format!("{} {}", offer.hash, offer.ts_data.internal());
    let mut extra = Vec::new();
    let delta = |t: Timestamp| {
        let d = t.ticks() as i128 - offer.ts_data.ticks() as i128;
        let mut s = if d < 0 {
            format!("-{:x}", -d)
        } else {
            format!("{d:x}")
        };
        if t.offset() != 0 {
            s.push_str(&format!("__{:x}", t.offset()));
        }
        s
    };
    if offer.ts_meta != offer.ts_data {
        extra.push(format!("m:{}", delta(offer.ts_meta)));
        // Swift only sends the content-type time together with a meta time.
        if offer.ts_ctype != offer.ts_data {
            extra.push(format!("t:{}", delta(offer.ts_ctype)));
        }
    }
    if !offer.durable {
        extra.push("durable:False".into());
    }
    if !extra.is_empty() {
        line.push(' ');
        line.push_str(&extra.join(","));
    }
    line
}

/// What the receiver wants of `offer`, given what it holds; `None` when in sync.
pub fn wanted(offer: &Offer, held: &Held) -> Option<Wanted> {
    let mut want = Wanted::default();
    match held.ts_data {
        None => {
            want.data = true;
            want.meta = true;
        }
        Some(local_data) => {
            want.data = offer.ts_data > local_data;
            if held.ts_meta.is_some_and(|m| offer.ts_meta > m) {
                want.meta = true;
            }
            if held.ts_ctype.is_some_and(|c| offer.ts_ctype > c) && offer.ts_ctype > offer.ts_data {
                want.meta = true;
            }
        }
    }
    (want.data || want.meta).then_some(want)
}

/// The receiver's answer line for a wanted object.
pub fn encode_wanted(hash: &str, want: Wanted) -> String {
    let mut parts = String::new();
    if want.data {
        parts.push('d');
    }
    if want.meta {
        parts.push('m');
    }
    format!("{hash} {parts}")
}

/// Parses a receiver's answer line: the hash and the parts (data only when unsaid).
pub fn decode_wanted(line: &str) -> Option<(String, Wanted)> {
    let mut parts = line.split_whitespace();
    let hash = parts.next()?.to_string();
    let spec = parts.next().unwrap_or("");
    let mut want = Wanted {
        data: spec.contains('d'),
        meta: spec.contains('m'),
    };
    if !want.data && !want.meta {
        want.data = true;
    }
    Some((hash, want))
}

fn percent_decode(s: &str) -> Result<String, String> {
    crate::common::path::decode_path(s).map_err(|_| format!("bad encoding in {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn offers_round_trip_with_meta_ctype_and_durability() {
        let offer = Offer {
            hash: "9d41d8cd98f00b204e9800998ecf0abc".into(),
            ts_data: ts("1700000000.00000"),
            ts_meta: ts("1700000001.50000_0000000000000002"),
            ts_ctype: ts("1700000000.50000"),
            durable: false,
        };
        let line = encode_offer(&offer);
        assert_eq!(
            line,
            "9d41d8cd98f00b204e9800998ecf0abc 1700000000.00000 m:249f0__2,t:c350,durable:False"
        );
        assert_eq!(decode_offer(&line).unwrap(), offer);
        let plain = decode_offer("9d41d8cd98f00b204e9800998ecf0abc 1700000000.00000").unwrap();
        assert!(plain.durable);
        assert_eq!(plain.ts_meta, plain.ts_data);
        assert!(decode_offer("abc").is_err());
        assert!(decode_offer("abc notatime").is_err());
    }

    #[test]
    fn wanted_parts_follow_swift() {
        let offer = decode_offer("h 1700000000.00000 m:186a0").unwrap();
        assert_eq!(
            wanted(&offer, &Held::default()),
            Some(Wanted {
                data: true,
                meta: true
            })
        );
        let same = Held {
            ts_data: Some(offer.ts_data),
            ts_meta: Some(offer.ts_meta),
            ts_ctype: Some(offer.ts_data),
        };
        assert_eq!(wanted(&offer, &same), None);
        let old_meta = Held {
            ts_meta: Some(offer.ts_data),
            ..same
        };
        assert_eq!(
            wanted(&offer, &old_meta),
            Some(Wanted {
                data: false,
                meta: true
            })
        );
        // A tombstone newer than the offer: nothing wanted.
        let deleted = Held {
            ts_data: Some(ts("1800000000.00000")),
            ..Held::default()
        };
        assert_eq!(wanted(&offer, &deleted), None);
        assert_eq!(
            encode_wanted(
                "h",
                Wanted {
                    data: true,
                    meta: true
                }
            ),
            "h dm"
        );
        assert_eq!(
            decode_wanted("h"),
            Some((
                "h".into(),
                Wanted {
                    data: true,
                    meta: false
                }
            ))
        );
        assert_eq!(
            decode_wanted("h m"),
            Some((
                "h".into(),
                Wanted {
                    data: false,
                    meta: true
                }
            ))
        );
    }
}

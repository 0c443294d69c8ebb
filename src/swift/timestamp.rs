//! Swift's timestamps (`common/utils/timestamp.py`) without floating point.
//!
//! A timestamp is a count of 10 µs ticks since the epoch plus an optional offset (a
//! counter that orders several writes carrying the same wall-clock time, used by the
//! reconciler and by `.meta` files). Its *normal* form is `%016.05f`
//! (`0001795313121.68505` is never produced: 10 integer digits, a dot, 5 decimals); its
//! *internal* form appends `_%016x` of the offset when the offset is not zero. Comparison
//! is on `(ticks, offset)`, which is exactly the order of the internal strings.
//!
//! Parsing keeps the exact decimal digits and rounds half-up at the fifth decimal, so
//! `1.000005` and Python's `round(float(..) * 1e5)` agree for every value a proxy sends.

use std::fmt;

/// Ticks per second: Swift's `PRECISION = 1e-5`.
/// Swift timestamps count 10-microsecond ticks.
pub const TICKS_PER_SEC: u64 = 100_000;
/// Swift refuses timestamps of 10^10 seconds or more (they would not fit in `%016.05f`).
const MAX_SECONDS: u64 = 10_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    ticks: u64,
    offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?}")]
pub struct BadTimestamp(pub String);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp {
        ticks: 0,
        offset: 0,
    };

    pub fn from_ticks(ticks: u64, offset: u64) -> Timestamp {
        Timestamp { ticks, offset }
    }

    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            ticks: d.as_secs() * TICKS_PER_SEC + u64::from(d.subsec_nanos()) / 10_000,
            offset: 0,
        }
    }

    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn with_offset(self, offset: u64) -> Timestamp {
        Timestamp { offset, ..self }
    }

    pub fn seconds(&self) -> u64 {
        self.ticks / TICKS_PER_SEC
    }

    /// Seconds as a float, for JSON and for comparisons with `X-Delete-At`.
    pub fn as_f64(&self) -> f64 {
        self.ticks as f64 / TICKS_PER_SEC as f64
    }

    /// Swift's `ceil(float(ts))`, used for `Last-Modified`.
    pub fn ceil_seconds(&self) -> u64 {
        self.ticks.div_ceil(TICKS_PER_SEC)
    }

    /// Parses Swift's accepted forms: `123`, `123.4`, `0000000123.40000`,
    /// `0000000123.40000_000000000000000a`.
    pub fn parse(text: &str) -> Result<Timestamp, BadTimestamp> {
        let bad = || BadTimestamp(text.to_string());
        let text_trim = text.trim();
        let (main, offset) = match text_trim.split_once('_') {
            Some((m, o)) => {
                if o.is_empty() || o.len() > 16 || !o.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                (m, u64::from_str_radix(o, 16).map_err(|_| bad())?)
            }
            None => (text_trim, 0),
        };
        let (int_part, frac_part) = match main.split_once('.') {
            Some((i, f)) => (i, f),
            None => (main, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int_digits = int_part.trim_start_matches('0');
        if int_digits.len() > 11 {
            return Err(bad());
        }
        let secs: u64 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| bad())?
        };
        let mut frac: u64 = 0;
        let digits = frac_part.as_bytes();
        for i in 0..5 {
            frac = frac * 10 + digits.get(i).map(|d| u64::from(d - b'0')).unwrap_or(0);
        }
        if digits.get(5).is_some_and(|d| *d >= b'5') {
            frac += 1;
        }
        let ticks = secs
            .checked_mul(TICKS_PER_SEC)
            .and_then(|t| t.checked_add(frac))
            .ok_or_else(bad)?;
        if ticks >= MAX_SECONDS * TICKS_PER_SEC {
            return Err(bad());
        }
        Ok(Timestamp { ticks, offset })
    }

    /// `%016.05f`.
    pub fn normal(&self) -> String {
        format!(
            "{:010}.{:05}",
            self.ticks / TICKS_PER_SEC,
            self.ticks % TICKS_PER_SEC
        )
    }

    /// The normal form, plus `_%016x` of a non-zero offset.
    pub fn internal(&self) -> String {
        if self.offset == 0 {
            self.normal()
        } else {
            format!("{}_{:016x}", self.normal(), self.offset)
        }
    }

    /// `YYYY-mm-ddTHH:MM:SS.ffffff` as used in listings (`last_modified`).
    pub fn isoformat(&self) -> String {
        let secs = self.seconds();
        let micros = (self.ticks % TICKS_PER_SEC) * 10;
        let (y, mo, d, h, mi, s) = civil_from_unix(secs);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.internal())
    }
}

/// (year, month, day, hour, minute, second) in UTC.
pub fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// RFC 7231 date (`Sun, 22 Nov 2026 02:05:22 GMT`).
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Parses an HTTP date into seconds since the epoch.
pub fn parse_http_date(text: &str) -> Option<u64> {
    httpdate::parse_http_date(text.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// The three times of a container's object row: when its data was written, when its
/// content type was last set (a POST may set it), and when its metadata was (any POST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTimes {
    pub data: Timestamp,
    pub ctype: Timestamp,
    pub meta: Timestamp,
}

impl RowTimes {
    /// All three the same: a row as a PUT or DELETE leaves it.
    pub fn at(t: Timestamp) -> RowTimes {
        RowTimes {
            data: t,
            ctype: t,
            meta: t,
        }
    }

    /// Swift's `encode_timestamps(data, ctype, meta)`, the `created_at` column: the data
    /// time (with its offset, if any), then, unless both are zero, the content-type time
    /// minus the data time and the metadata time minus the content-type time, in ticks,
    /// as signed hex (`+0`, `-1a`). Rows store this so that a listing shows when the
    /// object was last changed, and so that replicas (Swift's or ours) merge each part by
    /// its own time.
    pub fn encode(&self) -> String {
        let d2 = i128::from(self.ctype.ticks) - i128::from(self.data.ticks);
        let d3 = i128::from(self.meta.ticks) - i128::from(self.ctype.ticks);
        // Swift's `short` form: an offset in unpadded hex.
        let data = match self.data.offset {
            0 => self.data.normal(),
            o => format!("{}_{o:x}", self.data.normal()),
        };
        if d2 == 0 && d3 == 0 {
            return data;
        }
        format!("{data}{}{}", signed_hex(d2), signed_hex(d3))
    }

    /// Swift's `decode_timestamps`: reads what [`RowTimes::encode`] writes; a part left
    /// out equals the one before it, and parts past the third are ignored, as Swift does.
    /// A time made from a delta has no offset.
    pub fn decode(text: &str) -> Result<RowTimes, BadTimestamp> {
        let bad = || BadTimestamp(text.to_string());
        // Split before every sign, keeping it with the digits that follow.
        let mut parts: Vec<(i128, &str)> = Vec::new();
        let mut start = 0;
        let mut sign = 1;
        for (i, c) in text.char_indices() {
            if c == '+' || c == '-' {
                parts.push((sign, &text[start..i]));
                sign = if c == '+' { 1 } else { -1 };
                start = i + 1;
            }
        }
        parts.push((sign, &text[start..]));
        let data = Timestamp::parse(parts[0].1)?;
        let shifted = |base: Timestamp, (sign, hex): (i128, &str)| -> Result<Timestamp, _> {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let delta = sign * i128::from_str_radix(hex, 16).map_err(|_| bad())?;
            if delta == 0 {
                // Swift keeps the base itself, offset included.
                return Ok(base);
            }
            let ticks = u64::try_from(i128::from(base.ticks) + delta).map_err(|_| bad())?;
            if ticks >= MAX_SECONDS * TICKS_PER_SEC {
                return Err(bad());
            }
            Ok(Timestamp::from_ticks(ticks, 0))
        };
        let ctype = match parts.get(1) {
            Some(p) => shifted(data, *p)?,
            None => data,
        };
        let meta = match parts.get(2) {
            Some(p) => shifted(ctype, *p)?,
            None => ctype,
        };
        Ok(RowTimes { data, ctype, meta })
    }
}

fn signed_hex(d: i128) -> String {
    if d < 0 {
        format!("-{:x}", -d)
    } else {
        format!("+{d:x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_and_internal_forms_match_swift() {
        let t = Timestamp::parse("1795313121.68505").unwrap();
        assert_eq!(t.normal(), "1795313121.68505");
        assert_eq!(t.internal(), "1795313121.68505");
        assert_eq!(Timestamp::parse("1").unwrap().normal(), "0000000001.00000");
        let o = Timestamp::parse("0000000001.00000_000000000000000a").unwrap();
        assert_eq!(o.offset(), 10);
        assert_eq!(o.internal(), "0000000001.00000_000000000000000a");
        assert!(o > Timestamp::parse("1").unwrap());
        assert_eq!(
            Timestamp::parse("1.000005").unwrap().normal(),
            "0000000001.00001"
        );
        assert_eq!(
            Timestamp::parse("1.000004").unwrap().normal(),
            "0000000001.00000"
        );
        assert_eq!(Timestamp::parse(".5").unwrap().normal(), "0000000000.50000");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "abc",
            "-1",
            "1e5",
            "1.2.3",
            "1_",
            "1_xyz",
            "10000000000",
            " . ",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn iso_and_http_dates() {
        let t = Timestamp::parse("1795313121.68505").unwrap();
        assert_eq!(t.isoformat(), "2026-11-22T02:05:21.685050");
        assert_eq!(http_date(t.ceil_seconds()), "Sun, 22 Nov 2026 02:05:22 GMT");
        assert_eq!(
            parse_http_date("Sun, 22 Nov 2026 02:05:22 GMT"),
            Some(1795313122)
        );
    }

    #[test]
    fn row_times_encode_as_swift_does() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        // Values from Swift 2.38.3's encode_timestamps.
        let same = RowTimes::at(t("1700000000.12345"));
        assert_eq!(same.encode(), "1700000000.12345");
        let posted = RowTimes {
            data: t("1700000000.00000"),
            ctype: t("1700000000.00000"),
            meta: t("1700000010.00000"),
        };
        assert_eq!(posted.encode(), "1700000000.00000+0+f4240");
        let ctype_later = RowTimes {
            data: t("1700000000.00000"),
            ctype: t("1700000001.00000"),
            meta: t("1700000001.00000"),
        };
        assert_eq!(ctype_later.encode(), "1700000000.00000+186a0+0");
        let older_ctype = RowTimes {
            data: t("1700000002.00000"),
            ctype: t("1700000001.00000"),
            meta: t("1700000003.00000"),
        };
        assert_eq!(older_ctype.encode(), "1700000002.00000-186a0+30d40");
        let offset = RowTimes {
            data: t("1700000000.00000_000000000000000a"),
            ctype: t("1700000000.00000"),
            meta: t("1700000000.00001"),
        };
        assert_eq!(offset.encode(), "1700000000.00000_a+0+1");
        for r in [same, posted, ctype_later, older_ctype] {
            assert_eq!(RowTimes::decode(&r.encode()).unwrap(), r);
        }
        let back = RowTimes::decode(&offset.encode()).unwrap();
        assert_eq!(back.data, offset.data);
        assert_eq!(
            back.ctype, offset.data,
            "a zero delta keeps the base's offset"
        );
        assert_eq!(back.meta, t("1700000000.00001"));
    }

    #[test]
    fn row_times_refuse_what_swift_cannot_read() {
        for bad in ["", "+1", "1700000000.0+", "1700000000.0+g", "0.00001-2"] {
            assert!(RowTimes::decode(bad).is_err(), "{bad:?}");
        }
        let extra = RowTimes::decode("1+1+1+1").unwrap();
        assert_eq!(extra.meta, Timestamp::parse("1.00002").unwrap());
        // Two parts: the metadata time follows the content type's.
        let r = RowTimes::decode("1700000000.00000+a").unwrap();
        assert_eq!(r.ctype, r.meta);
        assert_eq!(r.ctype.ticks(), r.data.ticks() + 10);
    }
}

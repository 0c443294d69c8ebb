//! `Range: bytes=...` as swob interprets it: a syntactically bad header is ignored (the
//! whole object is sent), ranges that cannot be satisfied are dropped, and when none is
//! left the answer is 416.

/// A satisfiable byte range, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn length(&self) -> u64 {
        self.end - self.start + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No usable Range header: send everything.
    Full,
    Ranges(Vec<ByteRange>),
    Unsatisfiable,
}

/// Swift caps the number of ranges it honours (swob: more than 50 → ignore the header).
const MAX_RANGES: usize = 50;

pub fn parse_range(header: &str, size: u64) -> RangeOutcome {
    // Units are case-insensitive and may have blanks around `=` (`BYTES = 0 - 999`).
    let Some((units, spec)) = header.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !units.trim().eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    let mut raw = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let Some((a, b)) = part.split_once('-') else {
            return RangeOutcome::Full;
        };
        let (a, b) = (a.trim(), b.trim());
        let parse = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        };
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return RangeOutcome::Full,
            (true, false) => match parse(b) {
                Some(n) => raw.push((None, Some(n))),
                None => return RangeOutcome::Full,
            },
            (false, true) => match parse(a) {
                Some(n) => raw.push((Some(n), None)),
                None => return RangeOutcome::Full,
            },
            (false, false) => match (parse(a), parse(b)) {
                (Some(x), Some(y)) if x <= y => raw.push((Some(x), Some(y))),
                _ => return RangeOutcome::Full,
            },
        }
    }
    if raw.is_empty() || raw.len() > MAX_RANGES {
        return RangeOutcome::Full;
    }
    let mut out = Vec::new();
    for r in raw {
        match r {
            (None, Some(n)) if n > 0 && size > 0 => out.push(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
            (Some(s), None) if s < size => out.push(ByteRange {
                start: s,
                end: size - 1,
            }),
            (Some(s), Some(e)) if s < size => out.push(ByteRange {
                start: s,
                end: e.min(size - 1),
            }),
            _ => {}
        }
    }
    if out.is_empty() {
        RangeOutcome::Unsatisfiable
    } else {
        RangeOutcome::Ranges(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_swob() {
        assert_eq!(
            parse_range("bytes=0-9", 100000),
            RangeOutcome::Ranges(vec![ByteRange { start: 0, end: 9 }])
        );
        assert_eq!(
            parse_range("bytes=-5", 12),
            RangeOutcome::Ranges(vec![ByteRange { start: 7, end: 11 }])
        );
        assert_eq!(
            parse_range("bytes=0-1,4-5", 12),
            RangeOutcome::Ranges(vec![
                ByteRange { start: 0, end: 1 },
                ByteRange { start: 4, end: 5 }
            ])
        );
        assert_eq!(parse_range("bytes=20-30", 12), RangeOutcome::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 12), RangeOutcome::Full);
        assert_eq!(parse_range("items=0-1", 12), RangeOutcome::Full);
        assert_eq!(
            parse_range("bytes=8-", 12),
            RangeOutcome::Ranges(vec![ByteRange { start: 8, end: 11 }])
        );
    }

    #[test]
    fn blanks_and_case_in_the_header_are_fine() {
        let want = RangeOutcome::Ranges(vec![ByteRange { start: 0, end: 999 }]);
        for h in [
            "BYTES=0-999",
            "bytes = 0-999",
            "BYTES = 0 - 999",
            "bytes = 0 - 999",
            "bytes=0 - 999",
            "bytes=0-999 ",
        ] {
            assert_eq!(parse_range(h, 10000), want, "{h}");
        }
    }
}

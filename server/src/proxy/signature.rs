//! The signed-request primitives tempurl and formpost share, as Swift's
//! `swift.common.digest` and tempurl define them: the HMAC digests an operator may allow
//! (sha1, sha256, sha512), a client signature in either of its two spellings (hex, whose
//! length names the digest, or `<digest>:<base64>`), expiry times (Unix seconds or
//! ISO 8601 UTC), a query string read as Python's `parse_qs` reads it, and the
//! `temp_url_ip_range` networks.
//!
//! Everything here is total: malformed input is `None` (or 0), never a panic, and a
//! caller only grants access when a computed HMAC equals the client's (compared in
//! constant time). The unit tests below throw random input at every parser.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hmac::{Hmac, Mac};

/// A digest an HMAC signature may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha512,
}

impl Digest {
    pub const ALL: [Digest; 3] = [Digest::Sha1, Digest::Sha256, Digest::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
            Digest::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Digest> {
        Digest::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Which digest a hex signature of this many characters is (Swift infers it).
    fn from_hex_len(len: usize) -> Option<Digest> {
        match len {
            40 => Some(Digest::Sha1),
            64 => Some(Digest::Sha256),
            128 => Some(Digest::Sha512),
            _ => None,
        }
    }

    /// Swift deprecates sha1 but still allows it by default.
    pub fn is_deprecated(self) -> bool {
        self == Digest::Sha1
    }

    /// The lower-case hex HMAC of `message` under `key`.
    pub fn hmac_hex(self, key: &[u8], message: &[u8]) -> String {
        macro_rules! hmac_with {
            ($d:ty) => {{
                let mut mac =
                    Hmac::<$d>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(message);
                hex::encode(mac.finalize().into_bytes())
            }};
        }
        match self {
            Digest::Sha1 => hmac_with!(sha1::Sha1),
            Digest::Sha256 => hmac_with!(sha2::Sha256),
            Digest::Sha512 => hmac_with!(sha2::Sha512),
        }
    }
}

/// The digests an `allowed_digests` option leaves, and which of them are deprecated, as
/// Swift's `get_allowed_digests`: names are case-insensitive, unknown names are dropped
/// (with a warning), an empty option means all of them, and nothing left is an error.
pub fn allowed_digests(option: Option<&str>) -> Result<(BTreeSet<Digest>, Vec<String>), String> {
    let names: Vec<String> = option
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let mut allowed = BTreeSet::new();
    if names.is_empty() {
        allowed.extend(Digest::ALL);
    }
    let mut unknown = Vec::new();
    for n in &names {
        match Digest::from_name(n) {
            Some(d) => {
                allowed.insert(d);
            }
            None => unknown.push(n.clone()),
        }
    }
    if !unknown.is_empty() {
        tracing::warn!(
            "the following digest algorithms are configured but not supported: {}",
            unknown.join(", ")
        );
    }
    if allowed.is_empty() {
        return Err("no valid digest algorithms are configured".into());
    }
    Ok((allowed, unknown))
}

/// A client's signature, as Swift's `extract_digest_and_algorithm` reads it: the digest
/// name it claims (anything before a `:`, unchecked here) and the signature as lower-case
/// hex. `None` for a value that is neither valid hex of a digest's length nor
/// `<name>:<base64>` (standard or URL-safe alphabet, padding optional).
pub fn parse_signature(value: &str) -> Option<(String, String)> {
    if let Some((algo, b64)) = value.split_once(':') {
        let mut b64 = b64.to_string();
        if (b64.contains('-') || b64.contains('_')) && !(b64.contains('+') || b64.contains('/')) {
            b64 = b64.replace('-', "+").replace('_', "/");
        }
        let bytes = strict_b64decode(&b64)?;
        return Some((algo.to_string(), hex::encode(bytes)));
    }
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digest = Digest::from_hex_len(value.len())?;
    Some((digest.name().to_string(), value.to_string()))
}

/// Swift's `strict_b64decode(value + '==')`: only base64 characters (padding at the ends
/// aside), and Python's `b64decode` on the rest, which tolerates missing or extra padding
/// but not a lone trailing character.
fn strict_b64decode(value: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let core = value.trim_matches('=');
    if !core
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    // Leading padding is only ever "valid" to Python when nothing follows it.
    if value.starts_with('=') && !core.is_empty() {
        return None;
    }
    if core.len() % 4 == 1 {
        return None;
    }
    base64::Engine::decode(&LENIENT, core).ok()
}

/// Swift's `normalize_temp_url_expires`: a Unix time (Python's `int()`: optional sign and
/// surrounding blanks) or `%Y-%m-%dT%H:%M:%SZ`; 0 when it is neither or already past.
pub fn normalize_expires(value: &str, now: f64) -> u64 {
    let secs = parse_int(value).or_else(|| parse_iso8601(value));
    match secs {
        Some(s) if s >= 0 && (s as f64) >= now => s as u64,
        _ => 0,
    }
}

/// Python's `int(str)` for plain decimal text (underscores between digits included).
pub fn parse_int(value: &str) -> Option<i64> {
    let v = value.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// `time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")` then `calendar.timegm`: a UTC time.
/// strptime takes 1–2 digit fields (4 for the year) and checks the ranges.
fn parse_iso8601(value: &str) -> Option<i64> {
    let rest = value.strip_suffix('Z')?;
    let (date, time) = rest.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    let mut t = time.split(':');
    let (h, mi, s) = (t.next()?, t.next()?, t.next()?);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    let field = |f: &str, max_len: usize| -> Option<i64> {
        if f.is_empty() || f.len() > max_len || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.parse().ok()
    };
    let (y, mo, da) = (field(y, 4)?, field(mo, 2)?, field(da, 2)?);
    let (h, mi, s) = (field(h, 2)?, field(mi, 2)?, field(s, 2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || da < 1
        || da > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 61
    {
        return None;
    }
    Some(days_from_civil(y, mo, da) * 86400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// A query string as Python's `parse_qs(qs, keep_blank_values=True)` reads it, in order:
/// `&`-separated pairs, `+` as a space, percent escapes decoded (invalid UTF-8 replaced),
/// a name without `=` has the empty value.
pub fn parse_qs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| ringsmith::swift::escape::unquote(&s.replace('+', " "));
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `key` in a parsed query (`parse_qs(...)[key][0]`).
pub fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A network as Python's `ipaddress.ip_network(text)` (strict) reads it: an address, or
/// an address with a prefix length or (IPv4) a netmask; host bits set is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    base: IpAddr,
    prefix: u32,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<IpRange> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let base: IpAddr = addr.parse().ok()?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => bits,
            Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse().ok().filter(|p| *p <= bits)?
            }
            Some(l) => match (base, l.parse::<std::net::Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(mask)) => {
                    let m = u32::from(mask);
                    if m.leading_ones() + m.trailing_zeros() == 32 {
                        m.leading_ones()
                    } else if m.leading_zeros() + m.trailing_ones() == 32 {
                        // A host mask (`0.0.0.255`), which ipaddress also accepts.
                        32 - m.trailing_ones()
                    } else {
                        return None;
                    }
                }
                _ => return None,
            },
        };
        let range = IpRange { base, prefix };
        // Strict: the address must be the network's own (no host bits).
        if range.masked(base) != Some(base) {
            return None;
        }
        Some(range)
    }

    fn masked(&self, ip: IpAddr) -> Option<IpAddr> {
        match (self.base, ip) {
            (IpAddr::V4(_), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                Some(IpAddr::V4((u32::from(a) & mask).into()))
            }
            (IpAddr::V6(_), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                Some(IpAddr::V6((u128::from(a) & mask).into()))
            }
            _ => None,
        }
    }

    /// Whether `ip` is in the network (an address of the other family never is).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.masked(ip) == Some(self.base)
    }
}

/// Equality of two secrets' encodings without an early exit on the first difference.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    #[test]
    fn hmacs_match_rfc_vectors() {
        // RFC 2202 / RFC 4231 test case 2.
        let (k, m) = (
            b"Jefe".as_slice(),
            b"what do ya want for nothing?".as_slice(),
        );
        assert_eq!(
            Digest::Sha1.hmac_hex(k, m),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            Digest::Sha256.hmac_hex(k, m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(Digest::Sha512
            .hmac_hex(k, m)
            .starts_with("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"));
    }

    #[test]
    fn signatures_in_both_spellings() {
        let raw = [0xfbu8; 32];
        let hexsig = hex::encode(raw);
        assert_eq!(
            parse_signature(&hexsig).unwrap(),
            ("sha256".into(), hexsig.clone())
        );
        let std = base64::engine::general_purpose::STANDARD.encode(raw);
        let url = base64::engine::general_purpose::URL_SAFE.encode(raw);
        assert!(std.contains('+') || std.contains('/'));
        for spelled in [
            format!("sha256:{std}"),
            format!("sha256:{}", std.trim_end_matches('=')),
            format!("sha256:{url}"),
        ] {
            assert_eq!(
                parse_signature(&spelled).unwrap(),
                ("sha256".into(), hexsig.clone()),
                "{spelled}"
            );
        }
        assert!(parse_signature("abc").is_none(), "odd length");
        assert!(
            parse_signature(&"a".repeat(42)).is_none(),
            "no digest is 21 bytes"
        );
        assert!(parse_signature(&"g".repeat(40)).is_none(), "not hex");
        assert!(parse_signature("sha1:not base64!").is_none());
        assert!(
            parse_signature("sha1:a").is_none(),
            "a lone base64 character"
        );
        // Mixed alphabets are not translated, so `-` stays invalid.
        assert!(parse_signature("sha1:ab+-").is_none());
    }

    #[test]
    fn expiry_forms() {
        let now = 1_700_000_000.0;
        assert_eq!(normalize_expires("1700000100", now), 1_700_000_100);
        assert_eq!(normalize_expires(" +1700000100 ", now), 1_700_000_100);
        assert_eq!(normalize_expires("1699999999", now), 0, "past");
        assert_eq!(normalize_expires("-5", now), 0);
        assert_eq!(
            normalize_expires("2023-11-14T22:15:00Z", now),
            1_700_000_100
        );
        assert_eq!(normalize_expires("2023-11-14T22:15:00", now), 0, "no Z");
        assert_eq!(normalize_expires("2023-02-30T00:00:00Z", now), 0);
        assert_eq!(normalize_expires("soon", now), 0);
        assert_eq!(normalize_expires("", now), 0);
        assert_eq!(normalize_expires("99999999999999999999999", now), 0);
    }

    #[test]
    fn ip_ranges_as_ipaddress_reads_them() {
        let lo = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = IpRange::parse("127.0.0.0/8").unwrap();
        assert!(r.contains(lo("127.1.2.3")) && !r.contains(lo("10.0.0.1")));
        assert!(!r.contains(lo("::1")));
        assert!(IpRange::parse("127.0.0.1")
            .unwrap()
            .contains(lo("127.0.0.1")));
        assert!(!IpRange::parse("127.0.0.1")
            .unwrap()
            .contains(lo("127.0.0.2")));
        assert_eq!(
            IpRange::parse("10.1.0.0/255.255.0.0"),
            IpRange::parse("10.1.0.0/16")
        );
        assert_eq!(
            IpRange::parse("10.1.0.0/0.0.255.255"),
            IpRange::parse("10.1.0.0/16")
        );
        assert!(IpRange::parse("127.0.0.1/8").is_none(), "host bits set");
        assert!(IpRange::parse("127.0.0.0/33").is_none());
        assert!(IpRange::parse("127.0.0.0/").is_none());
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(lo("1.2.3.4")));
        assert!(IpRange::parse("::/0").unwrap().contains(lo("::1")));
        assert!(IpRange::parse("fe80::/10").unwrap().contains(lo("fe80::1")));
        assert!(IpRange::parse("nonsense").is_none());
    }

    #[test]
    fn query_strings_as_parse_qs() {
        let q = parse_qs("temp_url_sig=sha1%3Aab%2B&inline&filename=a+b&x=1&x=2");
        assert_eq!(first(&q, "temp_url_sig"), Some("sha1:ab+"));
        assert_eq!(first(&q, "inline"), Some(""));
        assert_eq!(first(&q, "filename"), Some("a b"));
        assert_eq!(first(&q, "x"), Some("1"));
        assert_eq!(first(&q, "y"), None);
    }

    #[test]
    fn allowed_digest_options() {
        let (all, unknown) = allowed_digests(None).unwrap();
        assert_eq!(all.len(), 3);
        assert!(unknown.is_empty());
        let (some, unknown) = allowed_digests(Some("SHA512 md5")).unwrap();
        assert_eq!(some.into_iter().collect::<Vec<_>>(), [Digest::Sha512]);
        assert_eq!(unknown, ["md5"]);
        assert!(allowed_digests(Some("md5")).is_err());
    }

    proptest! {
        // Any text: the parsers answer, never panic.
        #[test]
        fn parsers_never_panic(s in ".{0,200}") {
            let _ = parse_signature(&s);
            let _ = normalize_expires(&s, 0.0);
            let _ = IpRange::parse(&s);
            let _ = parse_qs(&s);
        }

        // A signature that parses is hex of a real digest length, so it can only match a
        // computed HMAC if it is that HMAC.
        #[test]
        fn parsed_signatures_are_digest_hex(s in "(sha1|sha256|sha512|md5|)?:?[A-Za-z0-9+/=_-]{0,140}") {
            if let Some((_, hexsig)) = parse_signature(&s) {
                prop_assert!(hexsig.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }

        #[test]
        fn ranges_that_parse_contain_their_base(a in any::<u32>(), p in 0u32..=32) {
            let base = std::net::Ipv4Addr::from(a & u32::MAX.checked_shl(32 - p).unwrap_or(0));
            let r = IpRange::parse(&format!("{base}/{p}")).unwrap();
            prop_assert!(r.contains(IpAddr::V4(base)));
        }
    }
}

//! The value syntaxes of `swift-ring-builder`, parsed into the builder's types.
//!
//! Operators type three compact syntaxes on the command line:
//!
//! * the **add value** `[r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device>[_<meta>]`
//!   ([`parse_add_value`] → [`ParsedAddValue`], completed into a [`NewDevice`] by
//!   [`ParsedAddValue::into_new_device`]);
//! * the **search value** `d<id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/<device>_<meta>`,
//!   every part optional ([`parse_search_value`] → [`DeviceFilter`]);
//! * the **set_info change value** `<ip>:<port>R<r_ip>:<r_port>/<device>_<meta>`, every part
//!   optional but at least one given ([`parse_change_value`] → [`DevInfoChange`]).
//!
//! The grammar is Swift's, scanned the way Swift scans it (prefix letters, digit runs, bracketed
//! IPv6), so that every string an operator's runbook feeds `swift-ring-builder` means the same
//! thing here, and every malformed one fails with the message Swift prints. Addresses typed in
//! these compact forms must be IP literals; hostnames are only accepted through the long
//! `--ip`/`--replication-ip` options ([`validate_and_normalize_address`]). IP literals are
//! lower-cased and IPv6 is canonicalised (RFC 5952, as `inet_ntop` prints it) so that searches
//! and duplicate checks compare like with like.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{DevInfoChange, DeviceFilter, NewDevice};

/// A malformed value; the message is the one Swift prints for the same input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SyntaxError {}

fn err<T>(msg: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError(msg.into()))
}

/// Python's `repr()` of a string, for messages that quote the user's input like Swift does.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `int(text)` for the digit runs the scanners cut out, with Python's message when the
/// run is empty or out of range for our id/port/region/zone types.
pub fn parse_py_int(text: &str) -> Result<u32, SyntaxError> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = digits.parse::<u32>() {
            return Ok(v);
        }
        return err(format!("value out of range: {text}"));
    }
    err(format!(
        "invalid literal for int() with base 10: {}",
        py_repr(text)
    ))
}

/// Python's `float(text)` restricted to finite values (a weight of `inf` or `nan` would poison
/// every balance computation, so it is refused with Python's message for a non-number).
pub fn parse_py_float(text: &str) -> Result<f64, SyntaxError> {
    let trimmed = text.trim().replace('_', "");
    let lower = trimmed.to_ascii_lowercase();
    let looks_special = lower.contains("inf") || lower.contains("nan");
    match trimmed.parse::<f64>() {
        Ok(v) if v.is_finite() && !looks_special && !trimmed.is_empty() => Ok(v),
        _ => err(format!(
            "could not convert string to float: {}",
            py_repr(text)
        )),
    }
}

/// Whether `ip` is a dotted-quad IPv4 literal as `inet_pton(AF_INET)` accepts it.
pub fn is_valid_ipv4(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>().is_ok()
}

/// Whether `ip` is an IPv6 literal (no brackets, no zone index).
pub fn is_valid_ipv6(ip: &str) -> bool {
    ip.parse::<Ipv6Addr>().is_ok()
}

/// The canonical text of an IPv6 literal (lower case, longest zero run compressed).
fn canonical_ipv6(ip: &str) -> Option<String> {
    ip.parse::<Ipv6Addr>().ok().map(|a| a.to_string())
}

/// An IP literal, lower-cased and (IPv6) canonicalised; anything else is `Invalid ip <ip>`.
pub fn validate_and_normalize_ip(ip: &str) -> Result<String, SyntaxError> {
    let lower = ip.to_lowercase();
    if is_valid_ipv4(&lower) {
        return Ok(lower);
    }
    if let Some(canon) = canonical_ipv6(&lower) {
        return Ok(canon);
    }
    err(format!("Invalid ip {ip}"))
}

/// An IP literal or an RFC 1123 host name (lower-cased), as `--ip` accepts. A bracketed value
/// must be an IP literal.
pub fn validate_and_normalize_address(address: &str) -> Result<String, SyntaxError> {
    let inner = address.trim_start_matches('[').trim_end_matches(']');
    if address.starts_with('[') && address.ends_with(']') {
        return validate_and_normalize_ip(inner);
    }
    let lower = inner.to_lowercase();
    if is_valid_ipv4(&lower) {
        return Ok(lower);
    }
    if let Some(canon) = canonical_ipv6(&lower) {
        return Ok(canon);
    }
    if is_valid_hostname(&lower) {
        return Ok(lower);
    }
    err(format!("Invalid address {address}"))
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and inner hyphens,
/// 255 characters at most, one trailing dot allowed.
pub fn is_valid_hostname(hostname: &str) -> bool {
    if hostname.is_empty() || hostname.len() > 255 {
        return false;
    }
    let name = hostname.strip_suffix('.').unwrap_or(hostname);
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Device names may not be empty nor start or end with a space.
pub fn validate_device_name(name: &str) -> bool {
    !(name.is_empty() || name.starts_with(' ') || name.ends_with(' '))
}

/// Cuts a one-letter-prefixed number (`d12`, `r1`, `z3`, `:6200`) off the front of `s`.
/// Returns the digits (possibly empty, which Python's `int('')` then rejects) and the rest.
fn take_prefixed_digits(s: &str) -> (&str, &str) {
    let body = &s[1..];
    let end = body
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(body.len());
    (&body[..end], &body[end..])
}

/// Cuts an IP off the front of `s` the way Swift's search and change scanners do: a run of
/// digits and dots starting with a digit (IPv4), or everything up to the first `]` of a
/// bracketed IPv6. Returns `None` when `s` starts with neither.
fn take_ip(s: &str) -> Option<(&str, &str)> {
    let first = s.chars().next()?;
    if first.is_ascii_digit() {
        let end = s
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(s.len());
        Some((&s[..end], &s[end..]))
    } else if first == '[' {
        let close = s[1..].find(']').map(|i| i + 1).unwrap_or(s.len());
        let end = (close + 1).min(s.len());
        let ip = s[..end].trim_start_matches('[').trim_end_matches(']');
        Some((ip, &s[end..]))
    } else {
        None
    }
}

/// Cuts `/<device>` (up to the first `_`) off the front of `s`.
fn take_device(s: &str) -> (&str, &str) {
    let body = &s[1..];
    let end = body.find('_').unwrap_or(body.len());
    (&body[..end], &body[end..])
}

/// A parsed add value before Swift's defaults are applied: `region` is `None` when the value
/// had no `r<region>` (the caller warns and uses region 1), replication address and port are
/// `None` when there was no `R` part (they default to the service ones).
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedAddValue {
    pub region: Option<u32>,
    pub zone: u32,
    pub ip: String,
    pub port: u32,
    pub replication_ip: Option<String>,
    pub replication_port: Option<u32>,
    pub device: String,
    pub meta: String,
}

impl ParsedAddValue {
    /// The device to add, with Swift's defaults: region 1, replication address = service one.
    pub fn into_new_device(self, weight: f64) -> NewDevice {
        NewDevice {
            id: None,
            region: self.region.unwrap_or(1),
            zone: self.zone,
            replication_ip: Some(self.replication_ip.unwrap_or_else(|| self.ip.clone())),
            replication_port: Some(self.replication_port.unwrap_or(self.port)),
            ip: self.ip,
            port: self.port,
            device: self.device,
            weight,
            meta: self.meta,
        }
    }
}

/// Parses `[r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device>[_<meta>]`.
pub fn parse_add_value(add_value: &str) -> Result<ParsedAddValue, SyntaxError> {
    let invalid = || SyntaxError(format!("Invalid add value: {add_value}"));
    let mut rest = add_value;
    let mut region = None;
    if rest.starts_with('r') {
        let (digits, after) = take_prefixed_digits(rest);
        region = Some(parse_py_int(digits)?);
        rest = after;
    }
    if !rest.starts_with('z') {
        return Err(invalid());
    }
    let (digits, after) = take_prefixed_digits(rest);
    let zone = parse_py_int(digits)?;
    rest = after;
    let Some(after_dash) = rest.strip_prefix('-') else {
        return Err(invalid());
    };
    let (ip, port, after) = parse_address(after_dash)?;
    rest = &after;
    let (mut replication_ip, mut replication_port) = (None, None);
    let owned_rest;
    if let Some(after_r) = rest.strip_prefix('R') {
        let (rip, rport, after) = parse_address(after_r)?;
        replication_ip = Some(rip);
        replication_port = Some(rport);
        owned_rest = after;
        rest = &owned_rest;
    }
    if !rest.starts_with('/') {
        return Err(invalid());
    }
    let (device, after) = take_device(rest);
    if !validate_device_name(device) {
        return err("Invalid device name");
    }
    let meta = after.strip_prefix('_').unwrap_or("").to_string();
    Ok(ParsedAddValue {
        region,
        zone,
        ip,
        port,
        replication_ip,
        replication_port,
        device: device.to_string(),
        meta,
    })
}

/// `<ip>:<port>` up to the next `R` or `/`; brackets around an IPv6 are dropped first.
fn parse_address(input: &str) -> Result<(String, u32, String), SyntaxError> {
    let unbracketed;
    let rest = if input.starts_with('[') {
        unbracketed = input.replacen('[', "", 1).replacen(']', "", 1);
        unbracketed.as_str()
    } else {
        input
    };
    let end = rest.find(['R', '/']).unwrap_or(rest.len());
    let (address, after) = rest.split_at(end);
    let Some(colon) = address.rfind(':') else {
        return err("Invalid port in add value");
    };
    let port_text = &address[colon + 1..];
    let port = parse_py_int(port_text)
        .ok()
        .filter(|p| *p <= 65535)
        .ok_or_else(|| SyntaxError(format!("Invalid port {} in add value", &address[colon..])))?;
    let ip = validate_and_normalize_ip(&address[..colon])?;
    Ok((ip, port, after.to_string()))
}

/// Parses a search value into a filter; see the module docs for the grammar.
pub fn parse_search_value(search_value: &str) -> Result<DeviceFilter, SyntaxError> {
    let mut filter = DeviceFilter::default();
    let mut rest = search_value;
    if rest.starts_with('d') {
        let (digits, after) = take_prefixed_digits(rest);
        filter.id = Some(parse_py_int(digits)?);
        rest = after;
    }
    if rest.starts_with('r') {
        let (digits, after) = take_prefixed_digits(rest);
        filter.region = Some(parse_py_int(digits)?);
        rest = after;
    }
    if rest.starts_with('z') {
        let (digits, after) = take_prefixed_digits(rest);
        filter.zone = Some(parse_py_int(digits)?);
        rest = after;
    }
    rest = rest.strip_prefix('-').unwrap_or(rest);
    if let Some((ip, after)) = take_ip(rest) {
        filter.ip = Some(validate_and_normalize_ip(ip)?);
        rest = after;
    }
    if rest.starts_with(':') {
        let (digits, after) = take_prefixed_digits(rest);
        filter.port = Some(parse_py_int(digits)?);
        rest = after;
    }
    if let Some(after_r) = rest.strip_prefix('R') {
        rest = after_r;
        if let Some((ip, after)) = take_ip(rest) {
            filter.replication_ip = Some(validate_and_normalize_ip(ip)?);
            rest = after;
        }
        if rest.starts_with(':') {
            let (digits, after) = take_prefixed_digits(rest);
            filter.replication_port = Some(parse_py_int(digits)?);
            rest = after;
        }
    }
    if rest.starts_with('/') {
        let (device, after) = take_device(rest);
        filter.device = Some(device.to_string());
        rest = after;
    }
    if let Some(meta) = rest.strip_prefix('_') {
        filter.meta = Some(meta.to_string());
        rest = "";
    }
    if !rest.is_empty() {
        return err(format!("Invalid <search-value>: {}", py_repr(search_value)));
    }
    Ok(filter)
}

/// `[<ip>][:<port>]` at the front of a change value, into the given slots.
fn take_change_address<'a>(
    mut rest: &'a str,
    ip_slot: &mut Option<String>,
    port_slot: &mut Option<u32>,
) -> Result<&'a str, SyntaxError> {
    if let Some((ip, after)) = take_ip(rest) {
        if !ip.is_empty() {
            *ip_slot = Some(validate_and_normalize_ip(ip)?);
        }
        rest = after;
    }
    if rest.starts_with(':') {
        let (digits, after) = take_prefixed_digits(rest);
        *port_slot = Some(parse_py_int(digits)?);
        rest = after;
    }
    Ok(rest)
}

/// Parses a set_info change value `[<ip>][:<port>][R[<r_ip>][:<r_port>]][/<device>][_<meta>]`.
/// `error_subject` is what Swift quotes when the value is malformed (it quotes the command
/// line's first search value, so callers pass that through).
pub fn parse_change_value(
    change_value: &str,
    error_subject: &str,
) -> Result<DevInfoChange, SyntaxError> {
    let mut change = DevInfoChange::default();
    let mut rest = take_change_address(change_value, &mut change.ip, &mut change.port)?;
    if let Some(after_r) = rest.strip_prefix('R') {
        rest = take_change_address(
            after_r,
            &mut change.replication_ip,
            &mut change.replication_port,
        )?;
    }
    if rest.starts_with('/') {
        let (device, after) = take_device(rest);
        change.device = Some(device.to_string());
        rest = after;
    }
    if let Some(meta) = rest.strip_prefix('_') {
        change.meta = Some(meta.to_string());
        rest = "";
    }
    if !rest.is_empty() || change == DevInfoChange::default() {
        return err(format!(
            "Invalid set info change value: {}",
            py_repr(error_subject)
        ));
    }
    Ok(change)
}

impl DeviceFilter {
    /// True when no key is given (the filter matches every device).
    pub fn is_empty(&self) -> bool {
        *self == DeviceFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swift_docstring_search_examples() {
        let f = parse_search_value("d74r4z1-1.2.3.4:5678R5.6.7.8:9999/sdb1_snet: 5.6.7.8").unwrap();
        assert_eq!(
            f,
            DeviceFilter {
                id: Some(74),
                region: Some(4),
                zone: Some(1),
                ip: Some("1.2.3.4".into()),
                port: Some(5678),
                replication_ip: Some("5.6.7.8".into()),
                replication_port: Some(9999),
                device: Some("sdb1".into()),
                meta: Some("snet: 5.6.7.8".into()),
                weight: None,
            }
        );
        let z = parse_search_value("z1:5678").unwrap();
        assert_eq!((z.zone, z.port, z.ip), (Some(1), Some(5678), None));
        assert_eq!(parse_search_value(":5678").unwrap().port, Some(5678));
        assert_eq!(
            parse_search_value("/sdb1").unwrap().device.as_deref(),
            Some("sdb1")
        );
        assert_eq!(
            parse_search_value("_shiny").unwrap().meta.as_deref(),
            Some("shiny")
        );
        let r = parse_search_value("R:5678").unwrap();
        assert_eq!((r.replication_port, r.replication_ip), (Some(5678), None));
        let both = parse_search_value("1.2.3.4R5.6.7.8").unwrap();
        assert_eq!(both.ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(both.replication_ip.as_deref(), Some("5.6.7.8"));
        let v6 = parse_search_value("z1-[::1]:5678").unwrap();
        assert_eq!(
            (v6.zone, v6.ip.as_deref(), v6.port),
            (Some(1), Some("::1"), Some(5678))
        );
        assert_eq!(
            parse_search_value("[::1]").unwrap().ip.as_deref(),
            Some("::1")
        );
        assert_eq!(
            parse_search_value("z1-1.2.3.4").unwrap().ip.as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(parse_search_value("r4").unwrap().region, Some(4));
    }

    #[test]
    fn search_value_errors_name_the_input() {
        assert_eq!(
            parse_search_value("x5").unwrap_err().0,
            "Invalid <search-value>: 'x5'"
        );
        assert_eq!(
            parse_search_value("dfoo").unwrap_err().0,
            "invalid literal for int() with base 10: ''"
        );
        assert_eq!(
            parse_search_value("1.2.3").unwrap_err().0,
            "Invalid ip 1.2.3"
        );
    }

    #[test]
    fn search_ipv6_is_canonicalised() {
        let f = parse_search_value("[2001:DB8:85a3:0::8A2E:370:7334]").unwrap();
        assert_eq!(f.ip.as_deref(), Some("2001:db8:85a3::8a2e:370:7334"));
    }

    #[test]
    fn add_value_full_and_defaults() {
        let a =
            parse_add_value("r1z2-[2001:db8::1]:6200R[2001:DB8::2]:6300/sdb1_meta here").unwrap();
        assert_eq!(
            a,
            ParsedAddValue {
                region: Some(1),
                zone: 2,
                ip: "2001:db8::1".into(),
                port: 6200,
                replication_ip: Some("2001:db8::2".into()),
                replication_port: Some(6300),
                device: "sdb1".into(),
                meta: "meta here".into(),
            }
        );
        let b = parse_add_value("z1-10.0.0.1:6200/sda").unwrap();
        assert_eq!(b.region, None);
        let dev = b.into_new_device(100.0);
        assert_eq!(dev.region, 1);
        assert_eq!(dev.replication_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(dev.replication_port, Some(6200));
        assert_eq!(dev.meta, "");
        assert_eq!(dev.weight, 100.0);
    }

    #[test]
    fn add_value_errors_match_swift() {
        assert_eq!(
            parse_add_value("z1-1.2.3.4/sda").unwrap_err().0,
            "Invalid port in add value"
        );
        assert_eq!(
            parse_add_value("r1z1-example.com:6200/sda").unwrap_err().0,
            "Invalid ip example.com"
        );
        assert_eq!(
            parse_add_value("r1z1-1.2.3.4:abc/sda").unwrap_err().0,
            "Invalid port :abc in add value"
        );
        assert_eq!(
            parse_add_value("r1-1.2.3.4:6200/sda").unwrap_err().0,
            "Invalid add value: r1-1.2.3.4:6200/sda"
        );
        assert_eq!(
            parse_add_value("r1z1:1.2.3.4:6200/sda").unwrap_err().0,
            "Invalid add value: r1z1:1.2.3.4:6200/sda"
        );
        assert_eq!(
            parse_add_value("r1z1-1.2.3.4:6200sda").unwrap_err().0,
            "Invalid port :6200sda in add value"
        );
        assert_eq!(
            parse_add_value("r1z1-1.2.3.4:6200/ sda").unwrap_err().0,
            "Invalid device name"
        );
        assert_eq!(
            parse_add_value("r1z1-1.2.3.4:6200/_meta").unwrap_err().0,
            "Invalid device name"
        );
        assert_eq!(
            parse_add_value("rxz1-1.2.3.4:6200/sda").unwrap_err().0,
            "invalid literal for int() with base 10: ''"
        );
    }

    #[test]
    fn change_values() {
        let c = parse_change_value("192.168.0.44:6201/sdz_rack 4b", "d6").unwrap();
        assert_eq!(
            c,
            DevInfoChange {
                ip: Some("192.168.0.44".into()),
                port: Some(6201),
                replication_ip: None,
                replication_port: None,
                device: Some("sdz".into()),
                meta: Some("rack 4b".into()),
            }
        );
        let m = parse_change_value("_snet: 5.6.7.8", "d74").unwrap();
        assert_eq!(m.meta.as_deref(), Some("snet: 5.6.7.8"));
        let r = parse_change_value("R[::1]:7000", "d1").unwrap();
        assert_eq!(r.replication_ip.as_deref(), Some("::1"));
        assert_eq!(r.replication_port, Some(7000));
        assert_eq!(
            parse_change_value("", "d1").unwrap_err().0,
            "Invalid set info change value: 'd1'"
        );
        assert_eq!(
            parse_change_value("x", "d1").unwrap_err().0,
            "Invalid set info change value: 'd1'"
        );
    }

    #[test]
    fn addresses_and_hostnames() {
        assert_eq!(
            validate_and_normalize_address("Example.COM").unwrap(),
            "example.com"
        );
        assert_eq!(validate_and_normalize_address("[::1]").unwrap(), "::1");
        assert!(validate_and_normalize_address("[example.com]").is_err());
        assert_eq!(
            validate_and_normalize_address("-bad-.com").unwrap_err().0,
            "Invalid address -bad-.com"
        );
        assert_eq!(validate_and_normalize_ip("10.0.0.1").unwrap(), "10.0.0.1");
        assert!(validate_and_normalize_ip("256.0.0.1").is_err());
        assert!(is_valid_hostname("a.b-c.d."));
        assert!(!is_valid_hostname("a..b"));
    }

    #[test]
    fn py_reprs_and_numbers() {
        assert_eq!(py_repr("x5"), "'x5'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(parse_py_float("4000").unwrap(), 4000.0);
        assert_eq!(
            parse_py_float("abc").unwrap_err().0,
            "could not convert string to float: 'abc'"
        );
        assert!(parse_py_float("nan").is_err());
        assert_eq!(parse_py_int(" 7 ").unwrap(), 7);
    }
}

//! Python's number and duration formatting, where Swift's output shows it to operators.
//!
//! Swift prints weights with `%s` (Python's shortest round-trip `repr`, e.g. `4000.0`) and
//! times left with `str(timedelta)` (`0:59:58`, `1 day, 0:00:00`). Scripts grep these texts,
//! so the ring command formats them the same way.

/// Python's `repr(float)`: the shortest text that round-trips, always with a `.0` or an
/// exponent, exponent form below 1e-4 and from 1e16 up.
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust's `{:e}` gives the shortest round-trip digits as `1.5e16`; Python writes
        // `1.5e+16` and pads the exponent to two digits.
        let text = format!("{v:e}");
        let (mantissa, exp) = text.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent digits");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let text = format!("{v}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// Python's `str(timedelta(seconds=n))` for non-negative whole seconds.
pub fn timedelta(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    let hms = format!("{}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(4000.0), "4000.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(2.5), "2.5");
        assert_eq!(float_repr(0.0), "0.0");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-5), "1.5e-05");
        assert_eq!(float_repr(123456789.0), "123456789.0");
    }

    #[test]
    fn durations_print_like_python() {
        assert_eq!(timedelta(0), "0:00:00");
        assert_eq!(timedelta(3599), "0:59:59");
        assert_eq!(timedelta(86_400), "1 day, 0:00:00");
        assert_eq!(timedelta(2 * 86_400 + 61), "2 days, 0:01:01");
    }
}

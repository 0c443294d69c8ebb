//! Python's number and duration formatting, where Swift's output shows it to operators.
//!
//! Swift prints weights with `%s` (Python's shortest round-trip `repr`, e.g. `4000.0`) and
//! times left with `str(timedelta)` (`0:59:58`, `1 day, 0:00:00`). Scripts grep these texts,
//! so the ring command formats them the same way.

pub use ringsmith::pyjson::py_float_repr as float_repr;

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

//! Clock faults: a process of the cluster whose wall clock is off by a fixed offset.
//!
//! Network namespaces give a node its own network, not its own clock, and Linux time
//! namespaces shift only the monotonic and boot clocks. So a skewed process runs under
//! libfaketime (`LD_PRELOAD`), which shifts what `clock_gettime(CLOCK_REALTIME)` and
//! `time()` return to it, as a host whose NTP went wrong would see. The monotonic clock
//! is left true (`FAKETIME_DONT_FAKE_MONOTONIC`): timeouts and timers still measure real
//! durations, as they do on a host whose wall clock was stepped.
//!
//! What the offset changes in a Swift cluster: a proxy stamps every write with
//! `X-Timestamp` from its clock, and storage servers keep the newest timestamp, so a
//! proxy behind the others makes its writes lose to older ones (202 for a PUT, 409 for a
//! DELETE), and one ahead makes its writes win until the others catch up. A storage
//! node's clock decides expiry (`X-Delete-At`), reclaim ages and what `recon --time`
//! reports.

use std::path::PathBuf;
use std::process::Command;

/// Where distributions install libfaketime, `{arch}` being the machine's.
const LIBFAKETIME_PATHS: [&str; 5] = [
    "/usr/lib/{arch}-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/local/lib64/faketime/libfaketime.so.1",
];

/// The largest offset accepted: a year. Anything past it is a typo, not a fault.
pub const MAX_OFFSET_SECS: i64 = 366 * 24 * 3600;

/// libfaketime's shared object: `RINGSMITH_LIBFAKETIME` if set, else the first of
/// [`LIBFAKETIME_PATHS`] that exists.
pub fn libfaketime() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("RINGSMITH_LIBFAKETIME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "RINGSMITH_LIBFAKETIME={} is not a file",
                p.display()
            ))
        };
    }
    LIBFAKETIME_PATHS
        .iter()
        .map(|p| PathBuf::from(p.replace("{arch}", std::env::consts::ARCH)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "a clock fault needs libfaketime (Debian and Ubuntu: apt install libfaketime; \
             or set RINGSMITH_LIBFAKETIME to its libfaketime.so.1)"
                .to_string()
        })
}

/// Makes `cmd` run with its wall clock `offset` seconds ahead (negative: behind).
pub fn skew(cmd: &mut Command, offset: i64) -> Result<(), String> {
    check_offset(offset)?;
    cmd.env("LD_PRELOAD", libfaketime()?)
        .env("FAKETIME", faketime_spec(offset))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        // The spec is FAKETIME alone, not a file an inherited variable might name.
        .env_remove("FAKETIME_TIMESTAMP_FILE");
    Ok(())
}

/// libfaketime's relative form: `+600` or `-600` (seconds).
fn faketime_spec(offset: i64) -> String {
    format!("{offset:+}")
}

pub fn check_offset(offset: i64) -> Result<(), String> {
    if offset.unsigned_abs() > MAX_OFFSET_SECS as u64 {
        return Err(format!(
            "a clock offset of {offset} s is more than a year; give seconds, e.g. --by 600"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_always_carries_its_sign() {
        assert_eq!(faketime_spec(600), "+600");
        assert_eq!(faketime_spec(-600), "-600");
        assert_eq!(faketime_spec(0), "+0");
    }

    #[test]
    fn offsets_past_a_year_are_refused() {
        assert!(check_offset(MAX_OFFSET_SECS).is_ok());
        assert!(check_offset(-MAX_OFFSET_SECS).is_ok());
        let e = check_offset(MAX_OFFSET_SECS + 1).unwrap_err();
        assert!(e.contains("more than a year"), "{e}");
    }
}

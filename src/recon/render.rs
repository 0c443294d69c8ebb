//! `swift-recon`'s text output, line for line, from a [`CheckReport`].
//!
//! The header of each check, its statistics lines (`[name] low: .., high: .., avg: ..,
//! total: .., Failed: ..%, no_result: .., reported: ..`), its details and the closing line
//! of 79 `=` are printed as `swift-recon` prints them, so scripts written against its output
//! keep working. Numbers follow Python's `%d` (truncation), `%.1f` and `str(float)` rules.

use serde_json::Value;

use crate::builder::syntax::py_repr as py_str_repr;

use super::checks::{CheckKind, CheckReport, Detail, StatLine, Stats};

/// The closing line of every check.
pub const RULE: &str =
    "===============================================================================";

/// Output switches shared by every check.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// `-v`: every URL and its answer.
    pub verbose: bool,
    /// `--suppress`: hide per-host connection errors.
    pub suppress: bool,
    /// `--human-readable` sizes in the disk-usage check.
    pub human_readable: bool,
}

/// `YYYY-mm-dd HH:MM:SS` in UTC.
pub fn format_utc(ts: f64) -> String {
    let (y, m, d, hh, mm, ss) =
        crate::swift::timestamp::civil_from_unix(ts.floor().max(0.0) as u64);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

/// Python's `%d` of a float: truncation toward zero.
fn pd(x: f64) -> i64 {
    x.trunc() as i64
}

pub use crate::pyjson::py_float_repr as py_float;

/// A JSON value as Python prints the parsed object (`-v` output).
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => py_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `swift-recon`'s `_print_stats`.
pub fn stats_line(s: &Stats) -> String {
    format!(
        "[{}] low: {}, high: {}, avg: {:.1}, total: {}, Failed: {:.1}%, no_result: {}, reported: {}",
        s.name,
        pd(s.low),
        pd(s.high),
        s.average,
        pd(s.total),
        s.perc_none,
        s.number_none,
        s.reported
    )
}

fn stat_lines(lines: &[StatLine], out: &mut Vec<String>) {
    for l in lines {
        out.push(match l {
            StatLine::Stats(s) => stats_line(s),
            StatLine::NoData { label: Some(l) } => format!("[{l}] - No hosts returned valid data."),
            StatLine::NoData { label: None } => "No hosts returned valid data.".into(),
        });
    }
}

/// `seconds2timeunit`.
fn time_unit(seconds: f64) -> (f64, &'static str) {
    let mut e = seconds;
    if e >= 60.0 {
        e /= 60.0;
        if e >= 60.0 {
            e /= 60.0;
            if e >= 24.0 {
                return (e / 24.0, "days");
            }
            return (e, "hours");
        }
        return (e, "minutes");
    }
    (e, "seconds")
}

/// `size_suffix`: decimal units, integer division as Python's `//`.
pub fn size_suffix(size: f64) -> String {
    const SUFFIXES: [&str; 9] = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut n = size.max(0.0) as u128;
    for s in SUFFIXES {
        if n < 1000 {
            return format!("{n} {s}");
        }
        n /= 1000;
    }
    format!("{n} YB")
}

fn int_or_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e18 {
        format!("{}", x as i64)
    } else {
        py_float(x)
    }
}

fn header(r: &CheckReport) -> String {
    let what = match r.check {
        CheckKind::Async => "Checking async pendings".to_string(),
        CheckKind::Replication => "Checking on replication".into(),
        CheckKind::Reconstruction => "Checking on reconstructors".into(),
        CheckKind::Auditor if r.server_type == super::ServerType::Object => {
            "Checking auditor stats ".into()
        }
        CheckKind::Auditor => "Checking auditor stats".into(),
        CheckKind::Updater => "Checking updater times".into(),
        CheckKind::Expirer => "Checking on expirers".into(),
        CheckKind::Sharding => "Checking on sharders".into(),
        CheckKind::Unmounted => format!("Getting unmounted drives from {} hosts...", r.hosts_total),
        CheckKind::DiskUsage => "Checking disk usage now".into(),
        CheckKind::Load => "Checking load averages".into(),
        CheckKind::Quarantined => "Checking quarantine".into(),
        CheckKind::ValidateServers => format!(
            "Validating server type '{}' on {} hosts...",
            r.server_type, r.hosts_total
        ),
        CheckKind::RingMd5 => "Checking ring md5sums".into(),
        CheckKind::SwiftConfMd5 => "Checking swift.conf md5sum".into(),
        CheckKind::Sockstat => "Checking socket usage".into(),
        CheckKind::DriveAudit => "Checking drive-audit errors".into(),
        CheckKind::Time => "Checking time-sync".into(),
        CheckKind::Versions => "Checking versions".into(),
    };
    format!("[{}] {}", format_utc(r.started), what)
}

/// The lines `swift-recon` prints for this check; `now` dates the "N seconds ago" figures.
pub fn render(r: &CheckReport, opts: &RenderOptions, now: f64) -> Vec<String> {
    let mut out = vec![header(r)];
    if opts.verbose {
        if let Detail::Md5 { local, .. } = &r.detail {
            for (file, sum) in local {
                let sum = sum.as_deref().unwrap_or("(unreadable)");
                if r.check == CheckKind::SwiftConfMd5 {
                    out.push(format!("-> On disk swift.conf md5sum: {sum}"));
                } else {
                    out.push(format!("-> On disk {file} md5sum: {sum}"));
                }
            }
        }
    }
    for a in &r.answers {
        match &a.result {
            Ok(v) if opts.verbose && r.check != CheckKind::ValidateServers => {
                out.push(format!("-> {}: {}", a.url, py_repr(v)))
            }
            Err(e) if opts.verbose || !opts.suppress => out.push(format!("-> {}: {e}", a.url)),
            _ => {}
        }
    }
    stat_lines(&r.stats, &mut out);
    match &r.detail {
        Detail::None => {}
        Detail::NoHostsAvailable => out.push("Error: No hosts available".into()),
        Detail::Completions(c) => {
            if let Some((host, t)) = &c.oldest {
                if *t == 0.0 {
                    out.push(format!("Oldest completion was NEVER by {host}."));
                } else {
                    let (e, unit) = time_unit(now - t);
                    out.push(format!(
                        "Oldest completion was {} ({} {unit} ago) by {host}.",
                        format_utc(*t),
                        pd(e)
                    ));
                }
            }
            if let Some((host, t)) = &c.newest {
                let (e, unit) = time_unit(now - t);
                out.push(format!(
                    "Most recent completion was {} ({} {unit} ago) by {host}.",
                    format_utc(*t),
                    pd(e)
                ));
            }
        }
        Detail::LastPass {
            oldest,
            newest,
            average,
        } => out.push(format!(
            "[last_pass] oldest: {}, newest: {}, avg: {}",
            format_utc(*oldest),
            format_utc(*newest),
            format_utc(*average)
        )),
        Detail::Unmounted { unmounted, errors } => {
            for (h, d) in unmounted {
                out.push(format!("Not mounted: {d} on {h}"));
            }
            for (h, d, _) in errors {
                out.push(format!("Device errors: {d} on {h}"));
            }
        }
        Detail::DiskUsage(s) => {
            for (h, d, m) in &s.device_errors {
                out.push(format!("-> {}/{d}: Error: {m}", h.recon_url("diskusage")));
            }
            for h in &s.no_drive_info {
                out.push(format!(
                    "-> {}: Error. No drive info available.",
                    h.recon_url("diskusage")
                ));
            }
            if let (Some(low), Some(high), Some(avg)) = (s.lowest, s.highest, s.average) {
                out.push("Distribution Graph:".into());
                let most = s.distribution.values().copied().max().unwrap_or(1).max(1);
                let mul = 69.0 / most as f64;
                for (pct, n) in &s.distribution {
                    // Python's '% 3d': a space where the sign of a positive number goes.
                    let pct = if *pct >= 0 {
                        format!(" {pct}")
                    } else {
                        pct.to_string()
                    };
                    out.push(format!(
                        "{pct:>3}%{n:>5} {}",
                        "*".repeat((*n as f64 * mul) as usize)
                    ));
                }
                let total = s.used_bytes + s.avail_bytes;
                let (u, a, t) = if opts.human_readable {
                    (
                        size_suffix(s.used_bytes),
                        size_suffix(s.avail_bytes),
                        size_suffix(total),
                    )
                } else {
                    (
                        int_or_float(s.used_bytes),
                        int_or_float(s.avail_bytes),
                        int_or_float(total),
                    )
                };
                out.push(format!("Disk usage: space used: {u} of {t}"));
                out.push(format!("Disk usage: space free: {a} of {t}"));
                out.push(format!(
                    "Disk usage: lowest: {}%, highest: {}%, avg: {}%",
                    py_float(low),
                    py_float(high),
                    py_float(avg)
                ));
            } else {
                out.push("No hosts returned valid data.".into());
            }
            out.push(RULE.into());
            if s.top_requested > 0 {
                out.push(format!("TOP {}", s.top_requested));
                for d in &s.top {
                    out.push(format!(
                        "{:.2}%  {:<15} {}",
                        d.used_percent, d.host.ip, d.device
                    ));
                }
            }
            if s.lowest_requested > 0 {
                out.push(format!("LOWEST {}", s.lowest_requested));
                for d in &s.bottom {
                    out.push(format!(
                        "{:.2}%  {:<15} {}",
                        d.used_percent, d.host.ip, d.device
                    ));
                }
            }
            // The rule came before the rankings, as in swift-recon.
            return out;
        }
        Detail::Md5 {
            matched,
            errors,
            mismatches,
            ..
        } => {
            for m in mismatches {
                if r.check == CheckKind::SwiftConfMd5 {
                    out.push(format!(
                        "!! {} ({}) doesn't match on disk md5sum",
                        m.url, m.remote
                    ));
                } else {
                    out.push(format!(
                        "!! {} ({} => {}) doesn't match on disk md5sum",
                        m.url, m.subject, m.remote
                    ));
                }
            }
            if opts.verbose {
                for a in &r.answers {
                    if a.result.is_ok() && !mismatches.iter().any(|m| m.host == a.host) {
                        out.push(format!("-> {} matches.", a.url));
                    }
                }
            }
            out.push(format!(
                "{matched}/{} hosts matched, {errors} error[s] while checking hosts.",
                r.hosts_total
            ));
        }
        Detail::ServerType {
            ok,
            errors,
            invalid,
        } => {
            out.push(format!(
                "{ok}/{} hosts ok, {errors} error[s] while checking hosts.",
                r.hosts_total
            ));
            for (url, got) in invalid {
                out.push(format!("Invalid: {url} is {got}"));
            }
        }
        Detail::Time {
            matched,
            errors,
            skewed,
        } => {
            for s in skewed {
                out.push(format!(
                    "!! {} current time is {}, but remote is {}, differs by {:.4} sec",
                    s.url,
                    format_utc(s.local),
                    format_utc(s.remote),
                    s.diff
                ));
            }
            if opts.verbose {
                for a in &r.answers {
                    if a.result.is_ok() && !skewed.iter().any(|s| s.host == a.host) {
                        out.push(format!("-> {} matches.", a.url));
                    }
                }
            }
            out.push(format!(
                "{matched}/{} hosts matched, {errors} error[s] while checking hosts.",
                r.hosts_total
            ));
        }
        Detail::Versions { versions, errors } => {
            if opts.verbose {
                for a in &r.answers {
                    if let Some(v) = a.result.as_ref().ok().and_then(|b| b.get("version")) {
                        let v = v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string());
                        out.push(format!("-> {} installed version {v}", a.url));
                    }
                }
            }
            match versions.len() {
                0 => out.push("No hosts returned valid data.".into()),
                1 => out.push(format!(
                    "Versions matched ({}), {errors} error[s] while checking hosts.",
                    versions[0]
                )),
                _ => out.push(format!(
                    "Versions not matched ({}), {errors} error[s] while checking hosts.",
                    versions.join(", ")
                )),
            }
        }
    }
    out.push(RULE.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::recon::checks::{summarize, CheckContext, HostAnswer};
    use crate::recon::hosts::{Host, ServerType};

    fn lines(check: CheckKind, answers: Vec<HostAnswer>, ctx: &CheckContext) -> Vec<String> {
        let n = answers.len();
        let r = summarize(check, ServerType::Object, n, 0.0, answers, ctx);
        let mut l = render(&r, &RenderOptions::default(), 1000.0);
        l.remove(0); // the timestamped header
        l
    }

    fn ok(n: u8, body: Value) -> HostAnswer {
        let h = Host::new(format!("127.0.0.{n}"), 6200);
        let url = h.recon_url("x");
        HostAnswer::ok(h, url, body)
    }

    #[test]
    fn detail_lines_read_like_swift_recon() {
        let ctx = CheckContext::default();
        let l = lines(
            CheckKind::Replication,
            vec![
                ok(1, json!({"replication_last": 0, "replication_time": 1})),
                ok(2, json!({"replication_last": 940.0, "replication_time": 1})),
            ],
            &ctx,
        );
        assert_eq!(
            l[l.len() - 3],
            "Oldest completion was NEVER by 127.0.0.1:6200."
        );
        assert_eq!(
            l[l.len() - 2],
            "Most recent completion was 1970-01-01 00:15:40 (1 minutes ago) by 127.0.0.2:6200."
        );
        assert_eq!(l[0], "[replication_time] low: 1, high: 1, avg: 1.0, total: 2, Failed: 0.0%, no_result: 0, reported: 2");
        assert_eq!(l[1], "[failure] - No hosts returned valid data.");

        let l = lines(
            CheckKind::Versions,
            vec![
                ok(1, json!({"version": "2.38.3"})),
                ok(2, json!({"version": "2.37.0"})),
            ],
            &ctx,
        );
        assert_eq!(
            l,
            [
                "Versions not matched (2.37.0, 2.38.3), 0 error[s] while checking hosts.",
                RULE
            ]
        );

        let mut a = ok(1, Value::Null);
        a.server = Some("container-server/2.38.3".into());
        a.url = "http://127.0.0.1:6200/".into();
        let l = lines(CheckKind::ValidateServers, vec![a], &ctx);
        assert_eq!(
            l,
            [
                "0/1 hosts ok, 1 error[s] while checking hosts.",
                "Invalid: http://127.0.0.1:6200/ is container-server",
                RULE
            ]
        );

        let mut a = ok(1, json!(100.0));
        (a.started, a.finished) = (160.0, 160.5);
        let l = lines(CheckKind::Time, vec![a], &ctx);
        assert_eq!(
            l[0],
            "!! http://127.0.0.1:6200/recon/x current time is 1970-01-01 00:02:40, but remote is 1970-01-01 00:01:40, differs by 60.5000 sec"
        );
        assert_eq!(l[1], "0/1 hosts matched, 0 error[s] while checking hosts.");

        let l = lines(
            CheckKind::Quarantined,
            vec![ok(
                1,
                json!({"objects": 1, "containers": 0, "accounts": 0, "policies": {"0": {"objects": 1}}}),
            )],
            &ctx,
        );
        assert_eq!(l[0], "[quarantined_objects_0] low: 1, high: 1, avg: 1.0, total: 1, Failed: 0.0%, no_result: 0, reported: 1");
        assert_eq!(l[1], "[quarantined_objects] low: 1, high: 1, avg: 1.0, total: 1, Failed: 0.0%, no_result: 0, reported: 1");
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1795313387.876878), "2026-11-22 02:09:47");
        assert_eq!(format_utc(951782400.0), "2000-02-29 00:00:00");
    }

    #[test]
    fn python_number_formats() {
        assert_eq!(py_float(37.0), "37.0");
        assert_eq!(py_float(59.333333333333336), "59.333333333333336");
        assert_eq!(py_float(0.00001), "1e-05");
        assert_eq!(py_float(1.5e16), "1.5e+16");
        assert_eq!(size_suffix(118_000_000_000.0), "118 GB");
        assert_eq!(size_suffix(999.0), "999 bytes");
        assert_eq!(
            py_repr(&json!({"a": 0, "b": 1.5, "c": null, "d": "x'", "e": [true]})),
            "{'a': 0, 'b': 1.5, 'c': None, 'd': \"x'\", 'e': [True]}"
        );
    }

    #[test]
    fn stats_line_truncates_like_percent_d() {
        let s = Stats {
            name: "1m_load_avg".into(),
            low: 1.04,
            high: 1.9,
            average: 1.47,
            total: 2.94,
            perc_none: 0.0,
            number_none: 0,
            reported: 2,
        };
        assert_eq!(
            stats_line(&s),
            "[1m_load_avg] low: 1, high: 1, avg: 1.5, total: 2, Failed: 0.0%, no_result: 0, reported: 2"
        );
        assert_eq!(time_unit(7200.0), (2.0, "hours"));
        assert_eq!(time_unit(59.0), (59.0, "seconds"));
    }
}

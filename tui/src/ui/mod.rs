//! Drawing: one function per view, all reading an [`App`] and nothing else, so the same
//! state renders identically in a real terminal and in `TestBackend` snapshot tests.
//!
//! Colour means the same everywhere: green healthy, yellow warning, red failing, and lists
//! put the worst first. Layouts are computed from the frame's area on every draw, so a
//! resize simply redraws at the new size.

use ratatui::prelude::*;
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Tabs,
    Wrap,
};

use crate::app::{App, Mode, Prompt, SortKey, View};
use crate::backend::{ClusterSnapshot, DevStat, HostStatus};

const HEALTHY: Color = Color::Green;
const WARNING: Color = Color::Yellow;
const FAILING: Color = Color::Red;

pub fn draw(f: &mut Frame, app: &App) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_tabs(f, app, tabs);
    match (&app.snapshot, app.view) {
        (None, _) => f.render_widget(
            Paragraph::new("Reading rings and asking recon...").block(Block::bordered()),
            body,
        ),
        (Some(s), View::Overview) => overview(f, app, s, body),
        (Some(s), View::Devices) => devices(f, app, s, body),
        (Some(s), View::Ring) => ring(f, app, s, body),
        (Some(s), View::Replication) => replication(f, app, s, body),
        (Some(s), View::Planner) => planner(f, app, s, body),
    }
    draw_status(f, app, status);
    match &app.mode {
        Mode::Help => help(f),
        Mode::Confirm => confirm(f, app),
        Mode::Input(prompt, text) => input(f, *prompt, text),
        _ => {}
    }
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    let selected = View::ALL.iter().position(|v| *v == app.view).unwrap_or(0);
    let mode = match &app.snapshot {
        Some(s) if s.live => Span::styled(" LIVE ", Style::new().fg(Color::Black).bg(HEALTHY)),
        Some(_) => Span::styled(" OFFLINE ", Style::new().fg(Color::Black).bg(WARNING)),
        None => Span::raw(" ... "),
    };
    let ro = if app.readonly { " READONLY " } else { "" };
    let [left, right] =
        Layout::horizontal([Constraint::Min(10), Constraint::Length(22)]).areas(area);
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        left,
    );
    f.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(ro), mode, Span::raw(" ?:help")]))
            .alignment(Alignment::Right),
        right,
    );
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let text = match &app.mode {
        Mode::Filter => format!("/{}", app.filter),
        _ if !app.status.is_empty() => app.status.clone(),
        _ if !app.filter.is_empty() => format!("filter: {} (Esc clears)", app.filter),
        _ => "q quit  Tab/1-5 views  j/k move  Enter drill  / filter  s sort  r next ring".into(),
    };
    f.render_widget(
        Paragraph::new(text).style(Style::new().fg(Color::Gray)),
        area,
    );
}

fn color_of(level: u8) -> Color {
    match level {
        0 => HEALTHY,
        1 => WARNING,
        _ => FAILING,
    }
}

fn host_level(h: &HostStatus) -> u8 {
    if !h.up() || h.ring_md5_ok == Some(false) || !h.unmounted.is_empty() {
        2
    } else if h.async_pending.unwrap_or(0) > 0 || h.quarantined.unwrap_or(0) > 0 {
        1
    } else {
        0
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// "3m ago", "2h ago": how long since a unix time.
pub fn ago(now: f64, then: f64) -> String {
    let s = (now - then).max(0.0);
    if s < 120.0 {
        format!("{s:.0}s ago")
    } else if s < 7200.0 {
        format!("{:.0}m ago", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.0}h ago", s / 3600.0)
    } else {
        format!("{:.0}d ago", s / 86400.0)
    }
}

fn overview(f: &mut Frame, app: &App, s: &ClusterSnapshot, area: Rect) {
    let hosts = app.hosts_sorted();
    let up = s.hosts.iter().filter(|h| h.up()).count();
    let down = s.hosts.len() - up;
    let md5_bad = s
        .hosts
        .iter()
        .filter(|h| h.ring_md5_ok == Some(false))
        .count();
    let asyncs: u64 = s.hosts.iter().filter_map(|h| h.async_pending).sum();
    let quarantined: u64 = s.hosts.iter().filter_map(|h| h.quarantined).sum();
    let unmounted: usize = s.hosts.iter().map(|h| h.unmounted.len()).sum();
    let oldest_repl = s
        .hosts
        .iter()
        .filter_map(|h| h.replication_last)
        .reduce(f64::min);
    let longest_repl = s
        .hosts
        .iter()
        .filter_map(|h| h.replication_duration)
        .reduce(f64::max);
    let max_load = s.hosts.iter().filter_map(|h| h.load5).reduce(f64::max);

    let mut tiles: Vec<(String, u8)> = vec![
        (
            format!("hosts {up} up / {down} down"),
            if s.hosts.is_empty() {
                1
            } else if down > 0 {
                2
            } else {
                0
            },
        ),
        (
            if s.live {
                format!(
                    "ring md5 {}",
                    if md5_bad == 0 {
                        "agree".into()
                    } else {
                        format!("{md5_bad} differ")
                    }
                )
            } else {
                "ring md5 unknown".into()
            },
            if md5_bad > 0 {
                2
            } else if s.live {
                0
            } else {
                1
            },
        ),
        (
            format!("unmounted {unmounted}"),
            if unmounted > 0 { 2 } else { 0 },
        ),
        (
            format!("async pending {asyncs}"),
            if asyncs > 0 { 1 } else { 0 },
        ),
        (
            format!("quarantined {quarantined}"),
            if quarantined > 0 { 1 } else { 0 },
        ),
        (
            format!(
                "oldest replication {}",
                oldest_repl.map_or("-".into(), |t| ago(s.taken_at, t))
            ),
            match oldest_repl {
                Some(t) if s.taken_at - t > 86_400.0 => 2,
                Some(t) if s.taken_at - t > 3_600.0 => 1,
                Some(_) => 0,
                None => 1,
            },
        ),
        (
            format!(
                "longest pass {}",
                longest_repl.map_or("-".into(), |d| format!("{d:.0}s"))
            ),
            0,
        ),
        (
            format!(
                "max load5 {}",
                max_load.map_or("-".into(), |l| format!("{l:.2}"))
            ),
            0,
        ),
    ];
    for e in &s.errors {
        tiles.push((e.clone(), 2));
    }
    // Worst first.
    tiles.sort_by_key(|(_, level)| std::cmp::Reverse(*level));
    let summary: Vec<Line> = tiles
        .iter()
        .map(|(text, level)| {
            let mark = ["OK  ", "WARN", "FAIL"][*level as usize];
            Line::from(vec![
                Span::styled(
                    mark,
                    Style::new()
                        .fg(color_of(*level))
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(" "),
                Span::raw(text.clone()),
            ])
        })
        .collect();
    let summary_height = (summary.len() as u16 + 2).min(area.height / 2).max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(summary_height), Constraint::Min(3)]).areas(area);
    let rings: Vec<String> = s.rings.iter().map(|r| r.name.clone()).collect();
    f.render_widget(
        Paragraph::new(summary).block(Block::bordered().title(format!(
            " Cluster: {} rings ({}) ",
            s.rings.len(),
            rings.join(", ")
        ))),
        top,
    );
    let rows = hosts.iter().map(|h| {
        let level = host_level(h);
        let state = if h.up() { "up" } else { "DOWN" };
        Row::new(vec![
            Cell::from(h.host.clone()),
            Cell::from(state).style(Style::new().fg(color_of(if h.up() { 0 } else { 2 }))),
            Cell::from(h.load5.map_or("-".into(), |l| format!("{l:.2}"))),
            Cell::from(opt(h.async_pending)),
            Cell::from(opt(h.quarantined)),
            Cell::from(
                h.replication_last
                    .map_or("-".into(), |t| ago(s.taken_at, t)),
            ),
            Cell::from(match h.ring_md5_ok {
                Some(true) => "ok",
                Some(false) => "DIFFER",
                None => "-",
            }),
            Cell::from(if h.unmounted.is_empty() {
                "-".into()
            } else {
                h.unmounted.join(",")
            }),
            Cell::from(h.error.clone().unwrap_or_default()),
        ])
        .style(Style::new().fg(color_of(level)))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(21),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new([
            "host",
            "state",
            "load5",
            "async",
            "quar",
            "repl",
            "ringmd5",
            "unmounted",
            "error",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(Block::bordered().title(" Hosts (worst first, Enter: devices) "));
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, bottom, &mut state);
}

/// Disk use of a device from the live snapshot: `(used fraction, mounted)`.
fn disk_of(s: &ClusterSnapshot, d: &DevStat) -> Option<(f64, bool, bool)> {
    let host = s
        .hosts
        .iter()
        .find(|h| h.ip == d.ip && u32::from(h.port) == d.port)?;
    let unmounted = h_unmounted(host, &d.device);
    let disk = host.disks.iter().find(|u| u.device == d.device);
    Some((
        disk.map_or(0.0, |u| {
            if u.size > 0 {
                u.used as f64 / u.size as f64
            } else {
                0.0
            }
        }),
        unmounted,
        !host.up(),
    ))
}

fn h_unmounted(h: &HostStatus, dev: &str) -> bool {
    h.unmounted.iter().any(|u| u == dev)
}

/// `[#####     ] 52%`
pub fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "·".repeat(width - filled),
        fraction * 100.0
    )
}

fn balance_level(b: f64) -> u8 {
    if b.abs() > 10.0 {
        2
    } else if b.abs() > 1.0 {
        1
    } else {
        0
    }
}

fn devices(f: &mut Frame, app: &App, s: &ClusterSnapshot, area: Rect) {
    let Some(ring) = app.ring() else {
        f.render_widget(
            Paragraph::new("No rings found in the builder dir or the swift dir.")
                .block(Block::bordered().title(" Devices ")),
            area,
        );
        return;
    };
    let devs = app.devices();
    let tree = app.sort == SortKey::Tree;
    // Only the visible window is materialised: a 1,000-device ring renders as fast as 10.
    let visible = area.height.saturating_sub(3) as usize;
    let mut rows = Vec::with_capacity(visible * 2);
    let mut selected_row = 0;
    let start = app.selected.saturating_sub(visible.saturating_sub(1) / 2);
    let mut last: Option<(u32, u32, String)> = None;
    for (i, d) in devs.iter().enumerate().skip(start) {
        if rows.len() >= visible {
            break;
        }
        if tree {
            let key = (d.region, d.zone, format!("{}:{}", d.ip, d.port));
            let prev = last.clone();
            if prev.as_ref().map(|p| p.0) != Some(d.region) {
                rows.push(header_row(
                    format!("region {}", d.region),
                    ring.devices.iter().filter(|x| x.region == d.region),
                ));
            }
            if prev.as_ref().map(|p| (p.0, p.1)) != Some((d.region, d.zone)) {
                rows.push(header_row(
                    format!("  zone {}", d.zone),
                    ring.devices
                        .iter()
                        .filter(|x| x.region == d.region && x.zone == d.zone),
                ));
            }
            if prev.as_ref() != Some(&key) {
                rows.push(header_row(
                    format!("    {}", key.2),
                    ring.devices.iter().filter(|x| {
                        x.ip == d.ip && x.port == d.port && x.region == d.region && x.zone == d.zone
                    }),
                ));
            }
            last = Some(key);
        }
        if i == app.selected {
            selected_row = rows.len();
        }
        let disk = disk_of(s, d);
        let mut flags = Vec::new();
        if d.deleted {
            flags.push("DEL");
        }
        if disk.is_some_and(|x| x.1) {
            flags.push("UNMOUNTED");
        }
        if disk.is_some_and(|x| x.2) {
            flags.push("HOST-DOWN");
        }
        let level = if flags.iter().any(|f| *f != "DEL") {
            2
        } else {
            balance_level(d.balance)
        };
        let name = if tree {
            format!("      d{} {}", d.id, d.device)
        } else {
            format!(
                "d{} r{}z{}-{}:{}/{}",
                d.id, d.region, d.zone, d.ip, d.port, d.device
            )
        };
        rows.push(
            Row::new(vec![
                Cell::from(name),
                Cell::from(format!("{:.2}", d.weight)),
                Cell::from(d.parts.to_string()),
                Cell::from(format!("{:+.2}", d.balance)),
                Cell::from(match disk {
                    Some((used, false, false)) => bar(used, 10),
                    _ => "-".into(),
                }),
                Cell::from(flags.join(" ")),
            ])
            .style(Style::new().fg(color_of(level))),
        );
    }
    let title = format!(
        " Devices of {} ({} devices{}{}, sort: {:?}) ",
        ring.name,
        devs.len(),
        app.drill_host
            .as_ref()
            .map_or(String::new(), |h| format!(", host {h}")),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!(", filter {:?}", app.filter)
        },
        app.sort
    );
    let table = Table::new(
        rows,
        [
            Constraint::Min(24),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(20),
        ],
    )
    .header(
        Row::new(["tree", "weight", "parts", "balance", "disk used", "flags"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(if devs.is_empty() {
        None
    } else {
        Some(selected_row)
    });
    f.render_stateful_widget(table, area, &mut state);
}

fn header_row<'a>(label: String, devs: impl Iterator<Item = &'a DevStat>) -> Row<'static> {
    let (w, p) = devs.fold((0.0, 0u64), |(w, p), d| (w + d.weight, p + d.parts));
    Row::new(vec![label, format!("{w:.2}"), p.to_string()])
        .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))
}

fn ring(f: &mut Frame, app: &App, s: &ClusterSnapshot, area: Rect) {
    if s.rings.is_empty() {
        f.render_widget(
            Paragraph::new("No rings found in the builder dir or the swift dir.")
                .block(Block::bordered().title(" Rings ")),
            area,
        );
        return;
    }
    let [list, detail] = Layout::vertical([
        Constraint::Length(s.rings.len() as u16 + 3),
        Constraint::Min(5),
    ])
    .areas(area);
    let rows = s.rings.iter().map(|r| {
        let level = balance_level(r.balance).max(if r.dispersion > 0.0 { 1 } else { 0 });
        Row::new(vec![
            r.name.clone(),
            r.part_power.to_string(),
            format!("{}", r.replicas),
            r.devices.len().to_string(),
            format!("{:.2}", r.balance),
            format!("{:.2}", r.dispersion),
            format!("{:.2}%", r.overload * 100.0),
            r.required_overload
                .map_or("-".into(), |o| format!("{:.2}%", o * 100.0)),
            if r.builder_path.is_some() {
                "builder".into()
            } else {
                "ring.gz".into()
            },
        ])
        .style(Style::new().fg(color_of(level)))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(8),
        ],
    )
    .header(
        Row::new([
            "ring",
            "power",
            "replicas",
            "devices",
            "balance",
            "dispersion",
            "overload",
            "required",
            "source",
        ])
        .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(Block::bordered().title(" Rings (Enter: its devices) "));
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, list, &mut state);

    let Some(r) = s.rings.get(app.selected) else {
        return;
    };
    let [tiers, chart] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(20)]).areas(detail);
    let tier_lines: Vec<Line> = r
        .parts_per_tier
        .iter()
        .take(tiers.height.saturating_sub(2) as usize)
        .map(|(t, n)| Line::from(format!("{t:<22} {n:>9}")))
        .collect();
    f.render_widget(
        Paragraph::new(tier_lines)
            .block(Block::bordered().title(format!(" {} parts per tier ", r.name))),
        tiers,
    );
    // One bar per device: partitions as a % of what its weight share asks (100 = exact).
    let width = chart.width.saturating_sub(2) as usize;
    let max_bars = (width / 5).max(1);
    let mut worst: Vec<&DevStat> = r.devices.iter().collect();
    worst.sort_by(|a, b| b.balance.abs().total_cmp(&a.balance.abs()));
    worst.truncate(max_bars);
    worst.sort_by_key(|d| d.id);
    let bars: Vec<Bar> = worst
        .iter()
        .map(|d| {
            let pct = if d.weight_share > 0.0 {
                100.0 * d.part_share / d.weight_share
            } else {
                0.0
            };
            Bar::default()
                .value(pct.round() as u64)
                .label(Line::from(format!("d{}", d.id)))
                .style(Style::new().fg(color_of(balance_level(d.balance))))
        })
        .collect();
    f.render_widget(
        BarChart::default()
            .block(Block::bordered().title(format!(
                " {}: parts vs weight share (100 = even; {} worst of {}) ",
                r.name,
                worst.len(),
                r.devices.len()
            )))
            .bar_width(4)
            .bar_gap(1)
            // 100 (the fair share) sits at half height so over- and under-filled both show.
            .max(200)
            .data(BarGroup::default().bars(&bars)),
        chart,
    );
}

fn replication(f: &mut Frame, app: &App, s: &ClusterSnapshot, area: Rect) {
    let [now, history] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Min(4)]).areas(area);
    let rows = s.hosts.iter().map(|h| {
        let level = match (h.up(), h.replication_last, h.replication_failures) {
            (false, _, _) => 2,
            (_, None, _) => 1,
            (_, Some(t), _) if s.taken_at - t > 86_400.0 => 2,
            (_, _, Some(n)) if n > 0 => 1,
            _ => 0,
        };
        Row::new(vec![
            h.host.clone(),
            h.replication_last
                .map_or("never".into(), |t| ago(s.taken_at, t)),
            h.replication_duration
                .map_or("-".into(), |d| format!("{d:.1}s")),
            opt(h.replication_failures),
            h.error.clone().unwrap_or_default(),
        ])
        .style(Style::new().fg(color_of(level)))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(21),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["host", "last pass", "duration", "failures", "error"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .block(Block::bordered().title(" Object replication per node "));
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, now, &mut state);
    let lines: Vec<Line> = s
        .replication_history
        .iter()
        .rev()
        .take(history.height.saturating_sub(2) as usize)
        .map(|h| {
            Line::from(format!(
                "{}  {:<21} {:>8.1}s  {} failures",
                ringsmith::recon::render::format_utc(h.last),
                h.host,
                h.duration,
                h.failures
            ))
        })
        .collect();
    let rings: Vec<String> = s
        .rings
        .iter()
        .map(|r| format!("{} (min_part_hours {})", r.name, r.min_part_hours))
        .collect();
    f.render_widget(
        Paragraph::new(if lines.is_empty() {
            vec![Line::from("No replication pass seen yet.")]
        } else {
            lines
        })
        .block(Block::bordered().title(format!(
            " Passes over time, newest first — rings: {} ",
            rings.join(", ")
        ))),
        history,
    );
}

fn planner(f: &mut Frame, app: &App, s: &ClusterSnapshot, area: Rect) {
    let Some(r) = app.ring() else {
        f.render_widget(
            Paragraph::new("No rings to plan.").block(Block::bordered().title(" Planner ")),
            area,
        );
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    devices(f, app, s, left);
    let mut lines = vec![
        Line::from(format!(
            "ring {}  balance {:.2}  dispersion {:.2}  overload {:.2}%",
            r.name,
            r.balance,
            r.dispersion,
            r.overload * 100.0
        )),
        Line::from(if app.readonly {
            "read-only: p dry run".to_string()
        } else {
            "w weight a add x remove o overload u undo p dry-run M min_part_hours W write"
                .to_string()
        }),
        Line::from(""),
        Line::from(Span::styled(
            "Staged edits:",
            Style::new().add_modifier(Modifier::BOLD),
        )),
    ];
    if app.planner.edits.is_empty() {
        lines.push(Line::from("  (none)"));
    }
    for e in &app.planner.edits {
        lines.push(Line::from(format!("  {e}")));
    }
    lines.push(Line::from(""));
    match &app.planner.plan {
        None => lines.push(Line::from("No dry run yet (p).")),
        Some(Err(e)) => lines.push(Line::from(Span::styled(
            format!("Dry run failed: {e}"),
            Style::new().fg(FAILING),
        ))),
        Some(Ok(p)) => {
            lines.push(Line::from(Span::styled(
                "Dry run:",
                Style::new().add_modifier(Modifier::BOLD),
            )));
            lines.push(Line::from(format!(
                "  moved {} partitions; balance {:.2} -> {:.2}; dispersion {:.2} -> {:.2}",
                p.outcome.changed_parts,
                p.balance_before,
                p.balance_after,
                p.dispersion_before,
                p.dispersion_after
            )));
            if p.outcome.changed_parts == 0
                && r.min_part_hours > 0
                && !app.planner.ignore_min_part_hours
            {
                lines.push(Line::from(Span::styled(
                    format!("  min_part_hours ({}h) holds recently moved partitions; M: pretend it passed", r.min_part_hours),
                    Style::new().fg(WARNING),
                )));
            }
            if app.planner.ignore_min_part_hours {
                lines.push(Line::from("  (as if min_part_hours had passed)"));
            }
            lines.push(Line::from("  tier                 leave  arrive  after"));
            for t in p
                .tiers
                .iter()
                .filter(|t| t.leaving + t.arriving > 0)
                .take(8)
            {
                lines.push(Line::from(format!(
                    "  {:<20} {:>5} {:>7} {:>6}",
                    t.tier, t.leaving, t.arriving, t.parts_after
                )));
            }
            lines.push(Line::from("  device               leave  arrive  after"));
            for d in p
                .devices
                .iter()
                .filter(|d| d.leaving + d.arriving > 0 || d.removed)
            {
                lines.push(Line::from(format!(
                    "  {:<20} {:>5} {:>7} {:>6}{}",
                    format!("d{} {}", d.id, d.name),
                    d.leaving,
                    d.arriving,
                    d.parts_after,
                    if d.removed { " removed" } else { "" }
                )));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Plan ")),
        right,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn help(f: &mut Frame) {
    let text = [
        "?          this help (any key closes)",
        "Tab, 1-5   switch view (Shift-Tab back)",
        "j/k, arrows  move    g/G  first/last",
        "Enter      drill down (host -> devices, ring -> devices)",
        "Esc        back / clear filter",
        "/          filter rows (Enter keeps, Esc clears)",
        "s          sort devices: tree, |balance|, weight",
        "r, [ ]     next / previous ring",
        "Planner:   w weight, a add, x remove, o overload,",
        "           u undo, p dry run, W write (asks y/n)",
        "q          quit",
    ];
    let area = centered(f.area(), 62, text.len() as u16 + 2);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(text.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(Block::bordered().title(" Help ").borders(Borders::ALL)),
        area,
    );
}

fn confirm(f: &mut Frame, app: &App) {
    let name = app.ring().map_or("?".into(), |r| r.name.clone());
    let area = centered(f.area(), 56, 5);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(vec![
            Line::from(format!("Write {name}.builder and {name}.ring.gz?")),
            Line::from("Backups go to backups/. y: write   any other key: cancel"),
        ])
        .block(
            Block::bordered()
                .title(" Confirm ")
                .style(Style::new().fg(WARNING)),
        ),
        area,
    );
}

fn input(f: &mut Frame, prompt: Prompt, text: &str) {
    let title = match prompt {
        Prompt::Weight => " New weight ",
        Prompt::Add => " Add device: r1z1-127.0.0.1:6200/sdb 100 ",
        Prompt::Overload => " Overload (0.1 or 10%) ",
    };
    let area = centered(f.area(), 50, 3);
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(format!("{text}_")).block(Block::bordered().title(title)),
        area,
    );
}

#[cfg(test)]
mod tests;

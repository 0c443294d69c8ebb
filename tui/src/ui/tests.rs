//! Every view in every state, rendered into ratatui's `TestBackend` and kept as an insta
//! snapshot. Fixtures use a fixed clock, so "ago" columns are stable.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::draw;
use crate::app::App;
use crate::backend::{fixture, ClusterSnapshot};

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    terminal.backend().to_string()
}

fn app_with(snapshot: Option<ClusterSnapshot>, keys: &str) -> App {
    let mut app = App::new(false);
    if let Some(s) = snapshot {
        app.set_snapshot(s);
    }
    press(&mut app, keys);
    app
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
    }
}

#[test]
fn every_view_live() {
    for (i, name) in ["overview", "devices", "ring", "replication", "planner"]
        .iter()
        .enumerate()
    {
        let app = app_with(Some(fixture::live_snapshot()), &(i + 1).to_string());
        insta::assert_snapshot!(format!("live_{name}"), render(&app, 110, 30));
    }
}

#[test]
fn every_view_unreachable() {
    for (i, name) in ["overview", "devices", "ring", "replication", "planner"]
        .iter()
        .enumerate()
    {
        let app = app_with(Some(fixture::unreachable_snapshot()), &(i + 1).to_string());
        insta::assert_snapshot!(format!("unreachable_{name}"), render(&app, 110, 30));
    }
}

#[test]
fn every_view_empty_and_loading() {
    insta::assert_snapshot!("loading", render(&app_with(None, ""), 80, 12));
    for (i, name) in ["overview", "devices", "ring", "replication", "planner"]
        .iter()
        .enumerate()
    {
        let app = app_with(Some(fixture::empty_snapshot()), &(i + 1).to_string());
        insta::assert_snapshot!(format!("empty_{name}"), render(&app, 80, 16));
    }
}

#[test]
fn huge_ring_views() {
    // 2^14 partitions keep the debug-build test quick; the benchmark renders 2^20.
    let snapshot = fixture::huge_snapshot(14);
    for (i, name) in ["overview", "devices", "ring", "planner"]
        .iter()
        .enumerate()
    {
        let key = ["1", "2", "3", "5"][i];
        let app = app_with(Some(snapshot.clone()), &format!("{key}GkkkS"));
        insta::assert_snapshot!(format!("huge_{name}"), render(&app, 120, 30));
    }
}

#[test]
fn dialogs_and_drill_down() {
    let live = || Some(fixture::live_snapshot());
    insta::assert_snapshot!("help", render(&app_with(live(), "?"), 90, 24));
    insta::assert_snapshot!("filter_typing", render(&app_with(live(), "2/sdc"), 90, 20));
    insta::assert_snapshot!("drill_host", render(&app_with(live(), "1j\n"), 90, 14));
    insta::assert_snapshot!("weight_prompt", render(&app_with(live(), "5w12"), 100, 20));
    insta::assert_snapshot!("plan", render(&app_with(live(), "5w0\nM"), 120, 34));
    insta::assert_snapshot!("confirm", render(&app_with(live(), "5w0\nMW"), 120, 34));
    let mut ro = App::new(true);
    ro.set_snapshot(fixture::live_snapshot());
    press(&mut ro, "5x");
    insta::assert_snapshot!("readonly_planner", render(&ro, 110, 20));
}

#[test]
fn resizes_from_tiny_to_wide_without_panicking() {
    for view in "12345".chars() {
        let app = app_with(Some(fixture::live_snapshot()), &format!("{view}?"));
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (200, 60)] {
            render(&app, w, h);
        }
    }
}

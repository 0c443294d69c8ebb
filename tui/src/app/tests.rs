//! The key-handling state machine, driven the way a user drives it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::backend::fixture;

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}
fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}
fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(matches!(app.handle_key(key(c)), Action::None));
    }
}

fn live_app(readonly: bool) -> App {
    let mut app = App::new(readonly);
    app.set_snapshot(fixture::live_snapshot());
    app
}

#[test]
fn views_switch_by_tab_backtab_and_digits() {
    let mut app = live_app(false);
    assert_eq!(app.view, View::Overview);
    app.handle_key(code(KeyCode::Tab));
    assert_eq!(app.view, View::Devices);
    app.handle_key(code(KeyCode::BackTab));
    app.handle_key(code(KeyCode::BackTab));
    assert_eq!(app.view, View::Planner);
    for (c, v) in ['1', '2', '3', '4', '5'].into_iter().zip(View::ALL) {
        app.handle_key(key(c));
        assert_eq!(app.view, v);
    }
    app.handle_key(code(KeyCode::Esc));
    assert_eq!(app.view, View::Overview);
}

#[test]
fn hosts_are_listed_worst_first_and_selection_is_clamped() {
    let mut app = live_app(false);
    let order: Vec<_> = app.hosts_sorted().iter().map(|h| h.host.clone()).collect();
    assert_eq!(
        order,
        ["127.0.0.3:6200", "127.0.0.2:6200", "127.0.0.1:6200"]
    );
    for _ in 0..10 {
        app.handle_key(key('j'));
    }
    assert_eq!(app.selected, 2);
    app.handle_key(code(KeyCode::Up));
    app.handle_key(key('k'));
    app.handle_key(key('k'));
    assert_eq!(app.selected, 0);
    app.handle_key(key('G'));
    assert_eq!(app.selected, 2);
    app.handle_key(key('g'));
    assert_eq!(app.selected, 0);
}

#[test]
fn enter_drills_from_a_host_to_its_devices_and_esc_comes_back() {
    let mut app = live_app(false);
    app.handle_key(key('j')); // 127.0.0.2, the second worst
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(app.view, View::Devices);
    assert_eq!(app.drill_host.as_deref(), Some("127.0.0.2:6200"));
    let devs: Vec<_> = app.devices().iter().map(|d| d.device.clone()).collect();
    assert_eq!(devs, ["sdb", "sdc"]);
    assert!(app.devices().iter().all(|d| d.ip == "127.0.0.2"));
    app.handle_key(code(KeyCode::Esc));
    assert_eq!(app.view, View::Overview);
    assert_eq!(app.drill_host, None);
    assert_eq!(app.devices().len(), 6);
}

#[test]
fn filter_typing_keeping_and_clearing() {
    let mut app = live_app(false);
    app.handle_key(key('2'));
    app.handle_key(key('/'));
    assert_eq!(app.mode, Mode::Filter);
    // While filtering, letters are text, not commands: q must not quit.
    typed(&mut app, "sdq");
    app.handle_key(code(KeyCode::Backspace));
    typed(&mut app, "c");
    assert_eq!(app.filter, "sdc");
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.devices().len(), 3);
    assert!(app.devices().iter().all(|d| d.device == "sdc"));
    app.handle_key(code(KeyCode::Esc));
    assert_eq!(app.filter, "");
    assert_eq!(app.view, View::Devices);
    // Esc while typing drops the filter too.
    app.handle_key(key('/'));
    typed(&mut app, "127.0.0.9");
    app.handle_key(code(KeyCode::Esc));
    assert_eq!((app.mode.clone(), app.filter.as_str()), (Mode::Normal, ""));
}

#[test]
fn sort_cycles_tree_balance_weight() {
    let mut app = live_app(false);
    app.handle_key(key('2'));
    assert_eq!(app.sort, SortKey::Tree);
    app.handle_key(key('s'));
    assert_eq!(app.sort, SortKey::Balance);
    let b: Vec<f64> = app.devices().iter().map(|d| d.balance.abs()).collect();
    assert!(b.windows(2).all(|w| w[0] >= w[1]), "{b:?}");
    app.handle_key(key('s'));
    let w: Vec<f64> = app.devices().iter().map(|d| d.weight).collect();
    assert!(w.windows(2).all(|w| w[0] >= w[1]), "{w:?}");
    app.handle_key(key('s'));
    assert_eq!(app.sort, SortKey::Tree);
}

#[test]
fn help_opens_and_any_key_closes_it_and_q_quits() {
    let mut app = live_app(false);
    app.handle_key(key('?'));
    assert_eq!(app.mode, Mode::Help);
    assert!(matches!(app.handle_key(key('3')), Action::None));
    assert_eq!((app.mode.clone(), app.view), (Mode::Normal, View::Overview));
    assert!(matches!(app.handle_key(key('q')), Action::Quit));
    assert!(matches!(
        app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    ));
}

#[test]
fn planner_stages_edits_dry_runs_and_writes_only_after_yes() {
    let mut app = live_app(false);
    app.handle_key(key('5'));
    // Writing before a dry run is refused.
    app.handle_key(key('W'));
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.status.contains("dry run first"), "{}", app.status);

    app.handle_key(key('w'));
    typed(&mut app, "abc");
    app.handle_key(code(KeyCode::Enter));
    assert!(app.status.contains("Invalid weight"), "{}", app.status);
    assert!(app.planner.edits.is_empty());

    app.handle_key(key('w'));
    typed(&mut app, "0");
    app.handle_key(code(KeyCode::Enter));
    app.handle_key(key('a'));
    typed(&mut app, "r1z3-127.0.0.4:6200/sdd 120");
    app.handle_key(code(KeyCode::Enter));
    app.handle_key(key('o'));
    typed(&mut app, "10%");
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(
        app.planner.edits,
        vec![
            Edit::Weight { id: 0, weight: 0.0 },
            Edit::Add {
                value: "r1z3-127.0.0.4:6200/sdd".into(),
                weight: 120.0
            },
            Edit::Overload(0.1),
        ]
    );
    app.handle_key(key('u'));
    assert_eq!(app.planner.edits.len(), 2);

    // min_part_hours was just reset by the fixture's rebalance: pretend it passed.
    app.handle_key(key('M'));
    let plan = app
        .planner
        .plan
        .clone()
        .expect("a dry run")
        .expect("it succeeds");
    assert!(plan.outcome.changed_parts > 0);
    let d0 = plan.devices.iter().find(|d| d.id == 0).unwrap();
    assert_eq!(d0.parts_after, 0, "weight 0 empties d0");
    assert!(plan
        .devices
        .iter()
        .any(|d| d.name.contains("127.0.0.4") && d.arriving > 0));

    // 'n' cancels, nothing returned.
    app.handle_key(key('W'));
    assert_eq!(app.mode, Mode::Confirm);
    assert!(matches!(app.handle_key(key('n')), Action::None));
    assert!(app.status.contains("nothing was written"));

    app.handle_key(key('W'));
    match app.handle_key(key('y')) {
        Action::Write(req) => {
            assert_eq!(req.ring_name, "object");
            assert_eq!(
                req.builder_path,
                std::path::PathBuf::from("/etc/swift/object.builder")
            );
            assert_eq!(req.builder.dev(0).unwrap().parts, 0);
            assert!(req.builder.iter_devs().any(|d| d.dev.ip == "127.0.0.4"));
        }
        other => panic!("expected a write, got {other:?}"),
    }
    app.write_finished(Ok("Wrote it".into()));
    assert!(app.planner.edits.is_empty());
    app.write_finished(Err("disk full".into()));
    assert!(app.status.contains("nothing changed"));
}

#[test]
fn planner_reports_a_failing_dry_run() {
    let mut app = live_app(false);
    app.handle_key(key('5'));
    for _ in 0..6 {
        app.handle_key(key('x'));
        app.handle_key(key('j'));
    }
    app.handle_key(key('p'));
    assert!(
        matches!(app.planner.plan, Some(Err(_))),
        "{:?}",
        app.planner.plan
    );
    app.handle_key(key('W'));
    assert_eq!(app.mode, Mode::Normal, "a failed plan cannot be written");
}

#[test]
fn readonly_refuses_every_change_but_allows_dry_runs() {
    let mut app = live_app(true);
    app.handle_key(key('5'));
    for c in ['w', 'a', 'x', 'o', 'W'] {
        app.handle_key(key(c));
        assert_eq!(app.mode, Mode::Normal);
        assert!(app.status.contains("Read-only"));
    }
    assert!(app.planner.edits.is_empty());
    app.handle_key(key('p'));
    assert!(matches!(app.planner.plan, Some(Ok(_))));
    app.handle_key(key('W'));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn rings_cycle_and_no_snapshot_is_harmless() {
    let mut app = App::new(false);
    for c in ['j', 'k', 'r', '[', 's', '5', 'p', 'x', 'W'] {
        assert!(matches!(app.handle_key(key(c)), Action::None));
    }
    app.handle_key(code(KeyCode::Enter));
    assert!(app.devices().is_empty());
    let mut s = fixture::live_snapshot();
    let mut other = s.rings[0].clone();
    other.name = "account".into();
    s.rings.insert(0, other);
    app.set_snapshot(s);
    assert_eq!(app.ring().unwrap().name, "account");
    app.handle_key(key('r'));
    assert_eq!(app.ring().unwrap().name, "object");
    app.handle_key(key('r'));
    assert_eq!(app.ring().unwrap().name, "account");
    app.handle_key(key('['));
    assert_eq!(app.ring().unwrap().name, "object");
}

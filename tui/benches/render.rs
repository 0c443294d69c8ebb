//! Render time of each view for a 2^20-partition, 3-replica ring of 1,000 devices at
//! 200x60: the dashboard must redraw well under 50 ms to stay responsive.
//! Run: `cargo bench -p ringsmith-tui --bench render`.

use std::sync::OnceLock;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ringsmith_tui::app::App;
use ringsmith_tui::backend::{fixture, ClusterSnapshot};

fn main() {
    divan::main();
}

fn huge() -> &'static ClusterSnapshot {
    static SNAPSHOT: OnceLock<ClusterSnapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| fixture::huge_snapshot(20))
}

#[divan::bench(args = ["1 Overview", "2 Devices", "3 Ring", "4 Replication", "5 Planner"])]
fn render_view(bencher: divan::Bencher, view: &str) {
    let mut app = App::new(false);
    app.set_snapshot(huge().clone());
    let digit = view.chars().next().unwrap();
    // Select a row in the middle of the device list too, as an operator scrolling would.
    for c in [digit, 'G', 'k'] {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    bencher.bench_local(|| {
        terminal.draw(|f| ringsmith_tui::ui::draw(f, &app)).unwrap();
    });
}

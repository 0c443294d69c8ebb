//! `ringsmith dash`: the dashboard. The UI (views, key handling) is kept apart from the
//! backend it drives (ring files and the recon client from the core crate).
//!
//! Three layers, as in gitui:
//! - [`backend`] turns builder/ring files and recon answers into a [`backend::ClusterSnapshot`],
//!   on a background thread that sends each snapshot over a channel;
//! - [`app`] is the pure state machine (views, selection, filter, planner, dialogs) that keys
//!   drive; it never touches the terminal or the disk, so it is unit-tested directly;
//! - [`ui`] draws an [`app::App`] into a ratatui frame, one function per view.
//!
//! The terminal loop that glues them ([`run`]) only reads keys, drains the snapshot channel
//! and redraws; every slow thing (recon fetches, ring statistics) happens on the poller.

pub mod app;
pub mod backend;
pub mod ui;

use std::io;
use std::time::Duration;

use crossterm::event::{self, Event, KeyEventKind};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::ExecutableCommand;
use ratatui::prelude::*;

use app::{Action, App};
use backend::{Poller, PollerConfig};

/// Writes what the planner confirmed (builder + ring, with the CLI's lock and backups).
/// Supplied by the binary so the tui shares the `ringsmith ring` code path.
pub type WriteHook = Box<dyn FnMut(&app::WriteRequest) -> Result<String, String>>;

/// Runs the dashboard until the user quits. Restores the terminal on every exit path.
pub fn run(config: PollerConfig, readonly: bool, mut write: WriteHook) -> anyhow::Result<()> {
    let poller = Poller::spawn(config);
    enable_raw_mode()?;
    io::stdout().execute(EnterAlternateScreen)?;
    let result = (|| -> anyhow::Result<()> {
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let mut app = App::new(readonly);
        loop {
            while let Ok(snapshot) = poller.snapshots.try_recv() {
                app.set_snapshot(snapshot);
            }
            terminal.draw(|f| ui::draw(f, &app))?;
            // Short poll so fresh snapshots show without a key press; keys never wait on I/O.
            if event::poll(Duration::from_millis(200))? {
                if let Event::Key(key) = event::read()? {
                    if key.kind != KeyEventKind::Press {
                        continue;
                    }
                    match app.handle_key(key) {
                        Action::Quit => break,
                        Action::Write(req) => {
                            let outcome = write(&req);
                            app.write_finished(outcome);
                            poller.refresh();
                        }
                        Action::None => {}
                    }
                }
            }
        }
        Ok(())
    })();
    disable_raw_mode()?;
    io::stdout().execute(LeaveAlternateScreen)?;
    result
}

//! The dashboard's state machine: which view, which row, what filter, which dialog, what the
//! planner has staged. Keys go in through [`App::handle_key`] and an [`Action`] comes out; no
//! terminal and no disk here, so every transition is unit-tested.
//!
//! The planner stages edits (weight, add, remove, overload) against a copy of the selected
//! ring's builder; `p` runs the dry run (`RingBuilder::plan_rebalance`), `W` asks for
//! confirmation, and only `y` in that dialog returns [`Action::Write`] with the rebalanced
//! builder for the binary to write under the builder lock.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ringsmith::builder::RebalancePlan;
use ringsmith::builder::{RebalanceOptions, RingBuilder};

use crate::backend::{ClusterSnapshot, DevStat};

/// The planner's rebalance seed (ChaCha, like `ringsmith ring ... rebalance --seed`).
pub const PLANNER_SEED: u64 = 0x0515_71f7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Overview,
    Devices,
    Ring,
    Replication,
    Planner,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Devices,
        View::Ring,
        View::Replication,
        View::Planner,
    ];
    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Devices => "Devices",
            View::Ring => "Ring",
            View::Replication => "Replication",
            View::Planner => "Planner",
        }
    }
    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// What a prompt in the planner is asking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    Weight,
    Add,
    Overload,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a `/` filter.
    Filter,
    Help,
    /// Typing a planner value.
    Input(Prompt, String),
    /// "Write builder and ring?" waiting for y/n.
    Confirm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Region, zone, server, device: the tree.
    Tree,
    /// Worst |balance| first.
    Balance,
    /// Most used disk first (live only).
    Weight,
}

/// A staged planner edit, shown in the order it was made.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    Weight { id: u32, weight: f64 },
    Remove { id: u32 },
    Add { value: String, weight: f64 },
    Overload(f64),
}

impl std::fmt::Display for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Edit::Weight { id, weight } => write!(f, "set_weight d{id} {weight}"),
            Edit::Remove { id } => write!(f, "remove d{id}"),
            Edit::Add { value, weight } => write!(f, "add {value} {weight}"),
            Edit::Overload(o) => write!(f, "set_overload {o}"),
        }
    }
}

/// What the binary must do after a key.
#[derive(Debug)]
pub enum Action {
    None,
    Quit,
    /// Boxed: a builder is large and most keys return `None`.
    Write(Box<WriteRequest>),
}

/// A confirmed plan: write `builder` to `builder_path` and its ring to `ring_path`.
#[derive(Debug)]
pub struct WriteRequest {
    pub ring_name: String,
    pub builder_path: PathBuf,
    pub ring_path: PathBuf,
    pub builder: RingBuilder,
}

#[derive(Debug, Default)]
pub struct Planner {
    pub edits: Vec<Edit>,
    /// The dry run of the staged edits, or why it failed.
    pub plan: Option<Result<RebalancePlan, String>>,
    /// Dry-run as if `min_part_hours` had passed (Swift's `pretend_min_part_hours_passed`).
    pub ignore_min_part_hours: bool,
    after: Option<RingBuilder>,
}

pub struct App {
    pub view: View,
    pub mode: Mode,
    pub readonly: bool,
    pub selected: usize,
    pub filter: String,
    pub sort: SortKey,
    /// Which ring the Devices, Ring and Planner views show.
    pub ring_index: usize,
    /// Overview drill-down: the host whose devices are listed.
    pub drill_host: Option<String>,
    pub snapshot: Option<ClusterSnapshot>,
    pub planner: Planner,
    /// One line at the bottom: the last thing that happened.
    pub status: String,
}

impl App {
    pub fn new(readonly: bool) -> App {
        App {
            view: View::Overview,
            mode: Mode::Normal,
            readonly,
            selected: 0,
            filter: String::new(),
            sort: SortKey::Tree,
            ring_index: 0,
            drill_host: None,
            snapshot: None,
            planner: Planner::default(),
            status: String::new(),
        }
    }

    pub fn set_snapshot(&mut self, snapshot: ClusterSnapshot) {
        if self.ring_index >= snapshot.rings.len() {
            self.ring_index = 0;
        }
        self.snapshot = Some(snapshot);
        self.clamp_selection();
    }

    pub fn ring(&self) -> Option<&crate::backend::RingStats> {
        self.snapshot.as_ref()?.rings.get(self.ring_index)
    }

    /// Hosts, worst first: down, then md5 mismatch, unmounted, async pendings.
    pub fn hosts_sorted(&self) -> Vec<&crate::backend::HostStatus> {
        let Some(s) = &self.snapshot else {
            return Vec::new();
        };
        let mut hosts: Vec<_> = s
            .hosts
            .iter()
            .filter(|h| self.filter.is_empty() || h.host.contains(&self.filter))
            .collect();
        hosts.sort_by_key(|h| {
            if !h.up() {
                0
            } else if h.ring_md5_ok == Some(false) || !h.unmounted.is_empty() {
                1
            } else if h.async_pending.unwrap_or(0) > 0 || h.quarantined.unwrap_or(0) > 0 {
                2
            } else {
                3
            }
        });
        hosts
    }

    /// The devices of the current ring, filtered (by name/ip/tier) and sorted.
    pub fn devices(&self) -> Vec<&DevStat> {
        let Some(ring) = self.ring() else {
            return Vec::new();
        };
        let mut devs: Vec<&DevStat> = ring
            .devices
            .iter()
            .filter(|d| match &self.drill_host {
                Some(h) => format!("{}:{}", d.ip, d.port) == *h,
                None => true,
            })
            .filter(|d| {
                self.filter.is_empty()
                    || format!("r{}z{}-{}:{}/{}", d.region, d.zone, d.ip, d.port, d.device)
                        .contains(&self.filter)
            })
            .collect();
        match self.sort {
            SortKey::Tree => devs.sort_by(|a, b| {
                (a.region, a.zone, &a.ip, a.port, &a.device)
                    .cmp(&(b.region, b.zone, &b.ip, b.port, &b.device))
            }),
            SortKey::Balance => devs.sort_by(|a, b| b.balance.abs().total_cmp(&a.balance.abs())),
            SortKey::Weight => devs.sort_by(|a, b| b.weight.total_cmp(&a.weight)),
        }
        devs
    }

    fn row_count(&self) -> usize {
        match self.view {
            View::Overview => self.hosts_sorted().len(),
            View::Devices | View::Planner => self.devices().len(),
            View::Ring => self.snapshot.as_ref().map_or(0, |s| s.rings.len()),
            View::Replication => self.snapshot.as_ref().map_or(0, |s| s.hosts.len()),
        }
    }

    fn clamp_selection(&mut self) {
        let n = self.row_count();
        if self.selected >= n {
            self.selected = n.saturating_sub(1);
        }
    }

    fn switch(&mut self, view: View) {
        if self.view != view {
            self.view = view;
            self.selected = 0;
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        match self.mode.clone() {
            Mode::Help => {
                // Any key closes help; q still quits.
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('q') {
                    return Action::Quit;
                }
                Action::None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.selected = 0;
                Action::None
            }
            Mode::Input(prompt, mut text) => {
                match key.code {
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        self.submit(prompt, &text);
                    }
                    KeyCode::Backspace => {
                        text.pop();
                        self.mode = Mode::Input(prompt, text);
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.mode = Mode::Input(prompt, text);
                    }
                    _ => {}
                }
                Action::None
            }
            Mode::Confirm => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.mode = Mode::Normal;
                    self.write_request()
                }
                _ => {
                    self.mode = Mode::Normal;
                    self.status = "Write cancelled; nothing was written".into();
                    Action::None
                }
            },
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Tab => self.switch(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            KeyCode::BackTab => {
                self.switch(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            KeyCode::Char(c @ '1'..='5') => self.switch(View::ALL[c as usize - '1' as usize]),
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.row_count().saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = self.row_count().saturating_sub(1),
            KeyCode::Char('s') => {
                self.sort = match self.sort {
                    SortKey::Tree => SortKey::Balance,
                    SortKey::Balance => SortKey::Weight,
                    SortKey::Weight => SortKey::Tree,
                };
                self.selected = 0;
            }
            KeyCode::Char('r') | KeyCode::Char(']') => self.next_ring(1),
            KeyCode::Char('[') => self.next_ring(-1),
            KeyCode::Enter => self.drill_down(),
            KeyCode::Esc => {
                if self.drill_host.take().is_some() {
                    self.view = View::Overview;
                    self.selected = 0;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                } else if self.view != View::Overview {
                    self.switch(View::Overview);
                }
            }
            _ if self.view == View::Planner => return self.planner_key(key),
            _ => {}
        }
        Action::None
    }

    fn next_ring(&mut self, step: isize) {
        let n = self.snapshot.as_ref().map_or(0, |s| s.rings.len());
        if n == 0 {
            return;
        }
        self.ring_index = (self.ring_index as isize + step).rem_euclid(n as isize) as usize;
        self.planner = Planner::default();
        self.selected = 0;
    }

    fn drill_down(&mut self) {
        match self.view {
            View::Overview => {
                if let Some(h) = self.hosts_sorted().get(self.selected) {
                    self.drill_host = Some(h.host.clone());
                    self.view = View::Devices;
                    self.selected = 0;
                }
            }
            View::Ring => {
                self.ring_index = self.selected;
                self.planner = Planner::default();
                self.switch(View::Devices);
            }
            _ => {}
        }
    }

    fn selected_device(&self) -> Option<u32> {
        self.devices().get(self.selected).map(|d| d.id)
    }

    fn planner_key(&mut self, key: KeyEvent) -> Action {
        let editing = matches!(key.code, KeyCode::Char('w' | 'a' | 'x' | 'o' | 'W' | 'u'));
        if editing && self.readonly {
            self.status = "Read-only: the planner can show plans but not change or write".into();
            return Action::None;
        }
        match key.code {
            KeyCode::Char('w') if self.selected_device().is_some() => {
                self.mode = Mode::Input(Prompt::Weight, String::new())
            }
            KeyCode::Char('a') => self.mode = Mode::Input(Prompt::Add, String::new()),
            KeyCode::Char('o') => self.mode = Mode::Input(Prompt::Overload, String::new()),
            KeyCode::Char('x') => {
                if let Some(id) = self.selected_device() {
                    self.stage(Edit::Remove { id });
                }
            }
            KeyCode::Char('u') => {
                self.planner.edits.pop();
                self.planner.plan = None;
                self.planner.after = None;
            }
            KeyCode::Char('p') => self.compute_plan(),
            KeyCode::Char('M') => {
                self.planner.ignore_min_part_hours = !self.planner.ignore_min_part_hours;
                self.compute_plan();
            }
            KeyCode::Char('W') => {
                if self.planner.after.is_none() {
                    self.status = "Run the dry run first (p): nothing to write".into();
                } else if self.ring().and_then(|r| r.builder_path.as_ref()).is_none() {
                    self.status = "This ring has no builder file; nothing can be written".into();
                } else {
                    self.mode = Mode::Confirm;
                }
            }
            _ => {}
        }
        Action::None
    }

    fn submit(&mut self, prompt: Prompt, text: &str) {
        let text = text.trim();
        match prompt {
            Prompt::Weight => match text.parse::<f64>() {
                Ok(w) if w >= 0.0 && w.is_finite() => {
                    if let Some(id) = self.selected_device() {
                        self.stage(Edit::Weight { id, weight: w });
                    }
                }
                _ => self.status = format!("Invalid weight {text:?}: want a number >= 0"),
            },
            Prompt::Overload => {
                let (num, pct) = match text.strip_suffix('%') {
                    Some(n) => (n, true),
                    None => (text, false),
                };
                match num.parse::<f64>() {
                    Ok(o) if o >= 0.0 && o.is_finite() => {
                        self.stage(Edit::Overload(if pct { o / 100.0 } else { o }))
                    }
                    _ => self.status = format!("Invalid overload {text:?}: want e.g. 0.1 or 10%"),
                }
            }
            Prompt::Add => {
                let mut parts = text.split_whitespace();
                let (Some(value), Some(weight), None) = (parts.next(), parts.next(), parts.next())
                else {
                    self.status = "Add wants: r1z1-127.0.0.1:6200/sdb 100".into();
                    return;
                };
                match (
                    ringsmith::builder::syntax::parse_add_value(value),
                    weight.parse::<f64>(),
                ) {
                    (Ok(_), Ok(w)) if w >= 0.0 => self.stage(Edit::Add {
                        value: value.to_string(),
                        weight: w,
                    }),
                    (Err(e), _) => self.status = format!("Invalid device {value:?}: {e}"),
                    _ => self.status = format!("Invalid weight {weight:?}"),
                }
            }
        }
    }

    fn stage(&mut self, edit: Edit) {
        self.status = format!("Staged: {edit} (p: dry run)");
        self.planner.edits.push(edit);
        self.planner.plan = None;
        self.planner.after = None;
    }

    /// Applies the staged edits to a copy of the builder and dry-runs the rebalance.
    pub fn compute_plan(&mut self) {
        let Some(ring) = self.ring() else {
            self.status = "No ring loaded".into();
            return;
        };
        let mut builder = (*ring.builder).clone();
        if self.planner.ignore_min_part_hours {
            builder.pretend_min_part_hours_passed();
        }
        let result = apply_edits(&mut builder, &self.planner.edits).and_then(|()| {
            builder
                // Seeded so the same edits show the same plan on every press (and in tests);
                // what is written is this very dry run's builder, so nothing is re-rolled.
                .plan_rebalance(&RebalanceOptions {
                    seed: Some(PLANNER_SEED),
                    now_secs: None,
                })
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((after, plan)) => {
                self.status = format!(
                    "Dry run: balance {:.2} -> {:.2}, dispersion {:.2} -> {:.2}; W writes",
                    plan.balance_before,
                    plan.balance_after,
                    plan.dispersion_before,
                    plan.dispersion_after
                );
                self.planner.after = Some(after);
                self.planner.plan = Some(Ok(plan));
            }
            Err(e) => {
                self.status = format!("Dry run failed: {e}");
                self.planner.after = None;
                self.planner.plan = Some(Err(e));
            }
        }
    }

    fn write_request(&mut self) -> Action {
        let (Some(ring), Some(after)) = (self.ring(), self.planner.after.clone()) else {
            return Action::None;
        };
        let Some(builder_path) = ring.builder_path.clone() else {
            return Action::None;
        };
        Action::Write(Box::new(WriteRequest {
            ring_name: ring.name.clone(),
            builder_path,
            ring_path: ring.ring_path.clone(),
            builder: after,
        }))
    }

    /// The binary reports how the write went.
    pub fn write_finished(&mut self, outcome: Result<String, String>) {
        match outcome {
            Ok(msg) => {
                self.status = msg;
                self.planner = Planner::default();
                self.view = View::Planner;
            }
            Err(e) => self.status = format!("Write failed, nothing changed: {e}"),
        }
    }
}

/// Applies staged edits to a builder (the planner's copy).
pub fn apply_edits(builder: &mut RingBuilder, edits: &[Edit]) -> Result<(), String> {
    for edit in edits {
        match edit {
            Edit::Weight { id, weight } => builder.set_dev_weight(*id, *weight),
            Edit::Remove { id } => builder.remove_dev(*id),
            Edit::Overload(o) => builder.set_overload(*o),
            Edit::Add { value, weight } => {
                let parsed = ringsmith::builder::syntax::parse_add_value(value)
                    .map_err(|e| format!("{value}: {e}"))?;
                builder.add_dev(parsed.into_new_device(*weight)).map(|_| ())
            }
        }
        .map_err(|e| format!("{edit}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! `ringsmith ring plan SPEC BUILDER` and `ringsmith ring apply SPEC BUILDER`: declarative
//! rings for CI (see docs/declarative-rings.md).
//!
//! `plan` shows what separates the builder from the spec (a version-controlled TOML file)
//! and how many capped steps it takes; `apply` performs the next safe step: weights moved by
//! at most the policy's fraction, one rebalance, the builder and ring saved with backups
//! under the builder directory's lock, exactly as `ringsmith ring … rebalance` saves them.
//!
//! Exit codes tell a pipeline what to do next: 0 done (the builder matches the spec and is
//! balanced), 3 a step was taken (push the ring, run again after min_part_hours), 4 nothing
//! could be done yet (min_part_hours has not passed; run again later), 2 refused (bad spec,
//! missing builder, locked directory, a change that cannot be made in place).

use std::path::{Path, PathBuf};

use ringsmith::builder::declare::{self, DeviceChange, Diff, Spec};
use ringsmith::builder::{RebalanceOptions, RingBuilder};
use serde_json::json;

use crate::ring::{file_names, load_builder, lock, now_secs, pyfmt, ring_io};

pub const EXIT_DONE: u8 = 0;
pub const EXIT_REFUSED: u8 = 2;
pub const EXIT_STEP: u8 = 3;
pub const EXIT_WAIT: u8 = 4;

struct Cmd {
    apply: bool,
    spec: PathBuf,
    builder: PathBuf,
    json: bool,
    seed: Option<u64>,
}

const USAGE: &str = "usage: ringsmith ring plan|apply SPEC.toml BUILDER [--json] [--seed N]";

fn parse(apply: bool, args: &[String]) -> Result<Cmd, String> {
    let mut pos = Vec::new();
    let mut json = false;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed: not a number: {v}"))?,
                );
            }
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => pos.push(a.clone()),
        }
    }
    let [spec, builder] = <[String; 2]>::try_from(pos).map_err(|_| USAGE.to_string())?;
    Ok(Cmd {
        apply,
        spec: spec.into(),
        builder: builder.into(),
        json,
        seed,
    })
}

/// Runs `plan` or `apply` with the words after it; returns the exit status.
pub fn run(apply: bool, args: &[String]) -> u8 {
    let json = args.iter().any(|a| a == "--json");
    let cmd = match parse(apply, args) {
        Ok(c) => c,
        Err(why) => return refuse(json, &why),
    };
    match execute(&cmd) {
        Ok(code) => code,
        Err(why) => refuse(cmd.json, &why),
    }
}

fn refuse(json: bool, why: &str) -> u8 {
    if json {
        let body = json!({"status": "refused", "exit_code": EXIT_REFUSED, "message": why});
        println!("{}", serde_json::to_string_pretty(&body).expect("json"));
    } else {
        eprintln!("refused: {why}");
    }
    EXIT_REFUSED
}

fn load_spec(path: &Path) -> Result<Spec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("spec {}: {e}", path.display()))
}

/// What the pipeline should do, decided before anything is written.
#[derive(Clone, Copy, PartialEq)]
enum Next {
    Done,
    Step,
    Wait,
}

fn execute(cmd: &Cmd) -> Result<u8, String> {
    let spec = load_spec(&cmd.spec)?;
    let (builder_file, ring_file) = file_names(&cmd.builder.to_string_lossy());
    // Held until the end: no other ring command changes the builder meanwhile.
    let _lock = if cmd.apply {
        Some(
            lock::lock_parent_directory(&builder_file, lock::default_timeout()).map_err(
                |e| match e {
                    lock::LockError::TimedOut => "Ring/builder dir currently locked.".to_string(),
                    lock::LockError::Io(p, e) => format!("Unable to lock {}: {e}", p.display()),
                },
            )?,
        )
    } else {
        None
    };
    let mut builder = load_builder(&builder_file).map_err(|e| e.to_string())?;
    declare::validate(&spec, &builder)?;
    let diff = declare::diff(&spec, &builder);
    let now = now_secs();
    let wait_secs = if builder.ever_rebalanced() {
        builder.min_part_seconds_left(now)
    } else {
        0
    };
    let balanced = builder.ever_rebalanced()
        && !builder.devs_changed
        && builder.get_balance() <= spec.policy.balance_tolerance;
    let mut next = if diff.is_empty() && balanced {
        Next::Done
    } else if wait_secs > 0 {
        Next::Wait
    } else {
        Next::Step
    };
    if next == Next::Step && diff.is_empty() && builder.ever_rebalanced() && !builder.devs_changed {
        // Only the balance is off: done if a rebalance cannot improve it (tried on a copy,
        // so `plan` and `apply` reach the same verdict).
        let mut trial = builder.clone();
        let outcome = trial
            .rebalance(&RebalanceOptions {
                seed: cmd.seed,
                now_secs: Some(now),
            })
            .map_err(|e| e.to_string())?;
        if outcome.changed_parts == 0 && outcome.removed_devs == 0 {
            next = Next::Done;
        }
    }
    let step = if diff.is_empty() {
        Vec::new()
    } else {
        declare::next_step(&spec, &diff)
    };
    let mut report = json!({
        "spec": cmd.spec.display().to_string(),
        "builder": builder_file.display().to_string(),
        "ring": ring_file.display().to_string(),
        "changes": diff.changes,
        "settings": diff.settings.iter().map(|(k, a, b)| json!({"name": k, "from": a, "to": b})).collect::<Vec<_>>(),
        "total_weight_change": diff.total_weight_change,
        "spec_total_weight": diff.spec_total_weight,
        "max_weight_step": spec.policy.max_weight_step,
        "steps_needed": if diff.is_empty() { u64::from(next == Next::Step) } else { diff.steps_needed(&spec.policy) },
        "next_step": step,
        "balance": if builder.ever_rebalanced() { json!(builder.get_balance()) } else { json!(null) },
        "min_part_hours": builder.min_part_hours,
        "min_part_seconds_left": wait_secs,
    });
    let mut lines = describe(cmd, &builder_file, &diff, &spec, &step);

    let (status, code, message) = match next {
        Next::Done if balanced => (
            "done",
            EXIT_DONE,
            "The builder matches the spec.".to_string(),
        ),
        Next::Done => (
            "done",
            EXIT_DONE,
            format!(
                "The builder matches the spec; balance {:.2} is as good as a rebalance makes it.",
                builder.get_balance()
            ),
        ),
        Next::Wait => (
            "wait",
            EXIT_WAIT,
            format!(
                "min_part_hours ({}) has not passed since the last rebalance: run again in {}.",
                builder.min_part_hours,
                pyfmt::timedelta(wait_secs)
            ),
        ),
        Next::Step if !cmd.apply => (
            "step",
            EXIT_STEP,
            "`ringsmith ring apply` would take the next step now.".to_string(),
        ),
        Next::Step => {
            declare::apply_step(&spec, &step, &mut builder)?;
            let outcome = builder
                .rebalance(&RebalanceOptions {
                    seed: cmd.seed,
                    now_secs: Some(now),
                })
                .map_err(|e| e.to_string())?;
            report["rebalance"] = json!({
                "changed_parts": outcome.changed_parts,
                "balance": outcome.balance,
                "removed_devices": outcome.removed_devs,
            });
            if step.is_empty() && outcome.changed_parts == 0 && outcome.removed_devs == 0 {
                // Only the balance was off, and no rebalance can improve it now.
                ("done", EXIT_DONE, format!(
                    "The builder matches the spec; balance {:.2} is as good as a rebalance makes it.",
                    outcome.balance
                ))
            } else {
                builder.validate(false).map_err(|e| e.to_string())?;
                save(&mut builder, &builder_file, &ring_file, now)?;
                ("step", EXIT_STEP, format!(
                    "Step taken: {} partitions reassigned, balance {:.2}. Push {} and run again after min_part_hours ({}).",
                    outcome.changed_parts,
                    outcome.balance,
                    ring_file.display(),
                    builder.min_part_hours
                ))
            }
        }
    };
    report["status"] = status.into();
    report["exit_code"] = code.into();
    report["message"] = message.clone().into();
    if cmd.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        lines.push(format!("Status: {status}. {message}"));
        println!("{}", lines.join("\n"));
    }
    Ok(code)
}

/// Backups of the builder and ring first, then the ring, then the builder — the order of
/// `ringsmith ring … rebalance`, so a failure never leaves a ring newer than its builder.
fn save(
    builder: &mut RingBuilder,
    builder_file: &Path,
    ring_file: &Path,
    now: u64,
) -> Result<(), String> {
    builder.ensure_id();
    let ring = builder.get_ring();
    let ring_backup = ringsmith::builder::file::backup_path(ring_file, now);
    if let Some(dir) = ring_backup.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("Unable to create {}: {e}", dir.display()))?;
    }
    ring_io::save_ring(&ring, &ring_backup, ring_io::DEFAULT_FORMAT_VERSION)?;
    let builder_backup = ringsmith::builder::file::backup_path(builder_file, now);
    builder
        .save(&builder_backup)
        .map_err(|e| format!("Unable to write backup {}: {e}", builder_backup.display()))?;
    ring_io::save_ring(&ring, ring_file, ring_io::DEFAULT_FORMAT_VERSION)?;
    builder.save(builder_file).map_err(|e| {
        format!(
            "Unable to write builder file {}: {e}",
            builder_file.display()
        )
    })
}

fn describe(
    cmd: &Cmd,
    builder_file: &Path,
    diff: &Diff,
    spec: &Spec,
    step: &[DeviceChange],
) -> Vec<String> {
    let w = pyfmt::float_repr;
    let mut lines = vec![format!(
        "{} {} -> {}",
        if cmd.apply { "Applying" } else { "Planning" },
        cmd.spec.display(),
        builder_file.display()
    )];
    if diff.is_empty() {
        lines.push("No device or setting changes.".into());
    } else {
        lines.push("Changes to reach the spec:".into());
        for c in &diff.changes {
            let id = c.id.map(|i| format!("d{i} ")).unwrap_or_default();
            lines.push(format!(
                "  {:<7} {id}{}  weight {} -> {}{}",
                c.action,
                c.device,
                w(c.from_weight),
                w(c.to_weight),
                if c.action == "drain" {
                    " (then removed)"
                } else {
                    ""
                }
            ));
        }
        for (k, a, b) in &diff.settings {
            lines.push(format!("  set     {k} {} -> {}", w(*a), w(*b)));
        }
        lines.push(format!(
            "Weight to move: {} of {} ({:.2}%); at most {:.2}% per step: {} step(s), each a rebalance and a ring push",
            w(diff.total_weight_change),
            w(diff.spec_total_weight),
            100.0 * diff.total_weight_change / diff.spec_total_weight,
            100.0 * spec.policy.max_weight_step,
            diff.steps_needed(&spec.policy)
        ));
        lines.push("Next step:".into());
        for c in step {
            let id = c.id.map(|i| format!("d{i} ")).unwrap_or_default();
            lines.push(format!(
                "  {:<7} {id}{}  weight {} -> {}",
                c.action,
                c.device,
                w(c.from_weight),
                w(c.to_weight)
            ));
        }
    }
    lines
}

//! `rebalance --dry-run`: the rebalancer's `plan_rebalance` runs the rebalance on a copy;
//! this module shows its plan and writes nothing.
//!
//! The text report starts with the line a real rebalance would print (`Would reassign …`),
//! then balance and dispersion before and after, the overload the ring would need to meet its
//! dispersion target, why a target would be missed, and the partition-replicas leaving and
//! arriving per device and per tier. The exit status is the one the real rebalance would
//! return — 0, or 1 when nothing could move or a balance/dispersion target would be missed —
//! so a CI job can gate on it before committing to the change.

use ringsmith::builder::{RebalanceOptions, RebalancePlan};

use super::progress::Spinner;
use super::pyfmt::timedelta;
use super::{now_secs, CmdResult, Ctx, Fail, EXIT_SUCCESS, EXIT_WARNING};

/// The status and closing note the real rebalance would give.
fn verdict(plan: &RebalancePlan, min_part_hours: u32, seconds_left: u64) -> (u8, Option<String>) {
    let o = &plan.outcome;
    if o.changed_parts == 0 && o.removed_devs == 0 {
        let why = if seconds_left > 0 {
            format!(
                "The time between rebalances must be at least min_part_hours: {min_part_hours} hours ({} remaining)",
                timedelta(seconds_left)
            )
        } else {
            "There is no need to do so at this time".to_string()
        };
        (
            EXIT_WARNING,
            Some(format!("No partitions could be reassigned.\n{why}")),
        )
    } else if o.dispersion > 0.0 {
        (
            EXIT_WARNING,
            Some(format!(
                "NOTE: Dispersion of {:.6} indicates some parts are not optimally dispersed.",
                o.dispersion
            )),
        )
    } else if o.balance > 5.0 && o.balance / 100.0 > plan.overload {
        (
            EXIT_WARNING,
            Some(format!(
                "NOTE: Balance of {:.2} indicates you should push this ring, wait at least {min_part_hours} hours, and rebalance/repush.",
                o.balance
            )),
        )
    } else {
        (EXIT_SUCCESS, None)
    }
}

pub fn dry_run(ctx: &mut Ctx, opts: &RebalanceOptions, format_version: u8) -> CmdResult {
    let json = ctx.json;
    let builder = ctx.builder();
    let seconds_left = builder.min_part_seconds_left(opts.now_secs.unwrap_or_else(now_secs));
    let spinner = Spinner::start("planning rebalance");
    let planned = builder.plan_rebalance(opts);
    drop(spinner);
    let (after, plan) = planned.map_err(|e| {
        Fail::new(format!(
            "{rule}\nAn error has occurred during ring validation. Common\n\
             causes of failure are rings that are empty or do not\n\
             have enough devices to accommodate the replica count.\n\
             Original exception message:\n {e}\n{rule}",
            rule = "-".repeat(79)
        ))
    })?;
    let parts = 1u64 << after.part_power;
    let changed = plan.outcome.changed_parts;
    let percent = 100.0 * changed as f64 / parts as f64;
    let (status, note) = verdict(&plan, after.min_part_hours, seconds_left);

    if json {
        let doc = serde_json::json!({
            "dry_run": true,
            "changed_parts": changed,
            "changed_percent": percent,
            "balance_before": plan.balance_before,
            "balance": plan.balance_after,
            "dispersion_before": plan.dispersion_before,
            "dispersion": plan.dispersion_after,
            "required_overload": plan.required_overload,
            "overload": plan.overload,
            "removed_devices": plan.outcome.removed_devs,
            "finished": plan.outcome.finished,
            "unmet": plan.outcome.unmet,
            "format_version": format_version,
            "saved": false,
            "exit_code": status,
            "message": note,
            "devices": plan.devices,
            "tiers": plan.tiers,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(status);
    }
    println!("Dry run: nothing was written.");
    println!(
        "Would reassign {changed} ({percent:.2}%) partitions. Balance {:.2} -> {:.2}.  Dispersion {:.2} -> {:.2}",
        plan.balance_before, plan.balance_after, plan.dispersion_before, plan.dispersion_after
    );
    println!(
        "Overload is {:.2}%, required overload is {:.6}%",
        plan.overload * 100.0,
        plan.required_overload * 100.0
    );
    for why in &plan.outcome.unmet {
        println!("Unmet: {why}");
    }
    let nw = plan
        .devices
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "Devices: {:>5} {:<nw$} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "id", "name", "before", "after", "target", "leaving", "arriving"
    );
    for d in &plan.devices {
        println!(
            "         {:>5} {:<nw$} {:>8} {:>8} {:>8} {:>8} {:>8}{}",
            d.id,
            d.name,
            d.parts_before,
            d.parts_after,
            d.target,
            d.leaving,
            d.arriving,
            if d.removed { "  removed" } else { "" }
        );
    }
    let tw = plan
        .tiers
        .iter()
        .map(|t| t.tier.len())
        .max()
        .unwrap_or(4)
        .max(30);
    println!(
        "{:<tw$} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Tier", "before", "after", "target", "leaving", "arriving"
    );
    for t in &plan.tiers {
        println!(
            "{:<tw$} {:>8} {:>8} {:>8} {:>8} {:>8}",
            t.tier, t.parts_before, t.parts_after, t.target, t.leaving, t.arriving
        );
    }
    if let Some(note) = note {
        println!("{note}");
    }
    Ok(status)
}

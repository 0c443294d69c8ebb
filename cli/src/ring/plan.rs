//! `rebalance --dry-run`: run the rebalance on a copy (the rebalancer's `plan_rebalance`),
//! show what it would do, write nothing.
//!
//! The text report starts with the line a real rebalance would print (`Would reassign …`),
//! then balance and dispersion before and after, the overload the ring would need to meet its
//! dispersion target, and the partition-replicas leaving and arriving per device and per tier
//! (the ring-diff of the current ring and the planned one). The exit status is the one the real
//! rebalance would return — 0, or 1 when nothing could move or a balance/dispersion target
//! would be missed — so a CI job can gate on it before committing to the change.

use ringsmith::builder::RebalanceOptions;

use super::display;
use super::progress::Spinner;
use super::{CmdResult, Ctx, Fail, EXIT_SUCCESS, EXIT_WARNING};
use crate::ring_diff;

pub fn dry_run(ctx: &mut Ctx, opts: &RebalanceOptions, format_version: u8) -> CmdResult {
    let json = ctx.json;
    let builder = ctx.builder();
    let balance_before = if display::balances(builder).is_some() {
        builder.get_balance()
    } else {
        0.0
    };
    let dispersion_before = builder.dispersion;
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
    let diff = ring_diff::diff_rings(&builder.get_ring(), &after.get_ring()).map_err(Fail::new)?;
    let balance_after = after.get_balance();
    let dispersion_after = after.dispersion.unwrap_or(0.0);
    let required_overload = after
        .get_required_overload()
        .map_err(|e| Fail::new(e.to_string()))?;
    let parts = 1u64 << after.part_power;
    let removed = builder.remove_devs.len() as u64;
    let changed = diff.moved_replicas;

    let (status, note) = if changed == 0 && removed == 0 {
        (
            EXIT_WARNING,
            Some("No partitions could be reassigned.".to_string()),
        )
    } else if dispersion_after > 0.0 {
        (
            EXIT_WARNING,
            Some(format!(
                "NOTE: Dispersion of {dispersion_after:.6} indicates some parts are not optimally dispersed."
            )),
        )
    } else if balance_after > 5.0 && balance_after / 100.0 > after.overload {
        (
            EXIT_WARNING,
            Some(format!(
                "NOTE: Balance of {balance_after:.2} indicates you should push this ring, wait at least {} hours, and rebalance/repush.",
                after.min_part_hours
            )),
        )
    } else {
        (EXIT_SUCCESS, None)
    };

    if json {
        let doc = serde_json::json!({
            "dry_run": true,
            "changed_parts": changed,
            "changed_percent": 100.0 * changed as f64 / parts as f64,
            "balance_before": balance_before,
            "balance": balance_after,
            "dispersion_before": dispersion_before,
            "dispersion": dispersion_after,
            "required_overload": required_overload,
            "removed_devices": removed,
            "format_version": format_version,
            "saved": false,
            "exit_code": status,
            "message": note,
            "moves": diff,
            "plan": plan,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(status);
    }
    println!("Dry run: nothing was written.");
    println!(
        "Would reassign {} ({:.2}%) partitions. Balance {:.2} -> {:.2}.  Dispersion {} -> {:.2}",
        changed,
        100.0 * changed as f64 / parts as f64,
        balance_before,
        balance_after,
        dispersion_before
            .map(|d| format!("{d:.2}"))
            .unwrap_or_else(|| "(none)".into()),
        dispersion_after
    );
    println!("Required overload is {:.6}%", required_overload * 100.0);
    print!("{}", ring_diff::render_text(&diff, false));
    if let Some(note) = note {
        println!("{note}");
    }
    Ok(status)
}

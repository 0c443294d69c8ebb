//! The `dispersion` command: how the replicas of each partition are spread over every tier,
//! as swift-ring-builder prints it (`-v` for the per-tier histogram) or as JSON.
//!
//! The numbers come from the rebalancer's `dispersion_report`; this module filters tiers with
//! the operator's regular expression (matched at the start of the tier name, like Python's
//! `re.match`), picks the worst tier among those shown, and lays out the table.

use serde::Serialize;

use super::{CmdResult, Ctx, EXIT_SUCCESS, EXIT_WARNING};

/// One row of the report.
#[derive(Serialize)]
struct TierRow {
    tier: String,
    placed_parts: u64,
    dispersion: f64,
    max_replicas: u64,
    replicas: Vec<u64>,
}

pub fn report(
    ctx: &mut Ctx,
    filter: Option<&regex_lite::Regex>,
    verbose: bool,
    recalculate: bool,
) -> CmdResult {
    let builder = ctx.builder();
    let orig_version = builder.version;
    if recalculate || builder.dispersion_graph.is_empty() {
        builder.rebuild_dispersion_graph();
    }
    let matcher = |name: &str| filter.is_none_or(|re| re.is_match(name));
    let report = builder.dispersion_report(Some(&matcher), true);
    let rows: Vec<TierRow> = report
        .graph
        .iter()
        .map(|t| TierRow {
            tier: t.tier.clone(),
            placed_parts: t.placed_parts,
            dispersion: t.dispersion,
            max_replicas: t.max_replicas,
            replicas: t.replicas.clone(),
        })
        .collect();
    let worst = report
        .worst_tier
        .clone()
        .map(|tier| (report.max_dispersion, tier));
    let (dispersion, balance, overload, required) = (
        report.dispersion,
        report.balance,
        report.overload,
        report.required_overload,
    );
    let replicas = builder.replicas;
    let parts = 1u64 << builder.part_power;
    if recalculate || builder.version != orig_version {
        // The report had to be rebuilt; keep the work, as Swift does.
        ctx.save_builder()?;
    }
    let status = if worst.is_some() {
        EXIT_WARNING
    } else {
        EXIT_SUCCESS
    };

    if ctx.json {
        let doc = serde_json::json!({
            "dispersion": dispersion,
            "balance": balance,
            "overload": overload,
            "required_overload": required,
            "worst_tier": worst.as_ref().map(|(d, t)| serde_json::json!({"tier": t, "dispersion": d})),
            "tiers": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(status);
    }

    println!(
        "Dispersion is {dispersion:.6}, Balance is {balance:.6}, Overload is {:.2}%",
        overload * 100.0
    );
    println!("Required overload is {:.6}%", required * 100.0);
    if let Some((d, tier)) = &worst {
        println!("Worst tier is {d:.6} ({tier})");
    }
    if verbose && !rows.is_empty() {
        let columns = (replicas + 1.0).ceil() as usize;
        let pcw = parts.to_string().len().max(5);
        let tw = rows.iter().map(|r| r.tier.len()).max().unwrap_or(0).max(30);
        let counts = |values: &mut dyn Iterator<Item = String>| {
            values
                .map(|v| format!("{v:>pcw$}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let header = format!(
            "{:<tw$} {:>pcw$} {:>6} {:>6} {}",
            "Tier",
            "Parts",
            "%",
            "Max",
            counts(&mut (0..columns).map(|i| i.to_string()))
        );
        let rule = "-".repeat(header.len());
        println!("{rule}\n{header}\n{rule}");
        for row in &rows {
            let mut hist: Vec<u64> = row.replicas.clone();
            hist.resize(columns.max(hist.len()), 0);
            println!(
                "{:<tw$} {:>pcw$} {:>6.2} {:>6} {}",
                row.tier,
                row.placed_parts,
                row.dispersion,
                row.max_replicas,
                counts(&mut hist.iter().map(|c| c.to_string()))
            );
        }
    }
    Ok(status)
}

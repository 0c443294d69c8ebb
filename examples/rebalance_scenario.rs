//! Runs a `swift-ring-builder-analyzer` scenario through Ringsmith's builder and prints one
//! JSON object per rebalance: round, rebalance number, seconds, partition-replicas moved,
//! balance, dispersion, removed devices.
//!
//! `cargo run --release --example rebalance_scenario -- fixtures/scenarios/small.json`
//! (`scripts/compare-rebalance.py` runs the same file through Swift side by side).

use std::process::ExitCode;

use ringsmith::builder::scenario::Scenario;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: rebalance_scenario <scenario.json>");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Invalid scenario {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scenario = match Scenario::from_json(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Invalid scenario {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = scenario.run(|step| {
        println!(
            "{}",
            serde_json::to_string(step).expect("a step serializes")
        );
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Scenario {path} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

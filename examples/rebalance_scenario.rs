//! Runs a `swift-ring-builder-analyzer` scenario through Ringsmith's builder and prints one
//! JSON object per rebalance: round, rebalance number, seconds, partition-replicas moved,
//! balance, dispersion, removed devices. `cpu_seconds` is the process CPU time since the
//! previous step (on a shared machine wall time mostly measures the other tenants).
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
    let mut last_cpu = cpu_seconds();
    let result = scenario.run(|step| {
        let now = cpu_seconds();
        let mut value = serde_json::to_value(step).expect("a step serializes");
        value["cpu_seconds"] = serde_json::json!(now - last_cpu);
        last_cpu = now;
        println!("{value}");
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Scenario {path} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// CPU time of this process so far.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

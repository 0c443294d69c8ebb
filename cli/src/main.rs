//! `ringsmith`: one binary for the ring tools, the recon client, the local cluster and the
//! dashboard. Each subcommand lives in its own module; this file only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cluster;
mod completions;
mod dash;
mod declare;
mod dispersion;
mod get_nodes;
mod info;
mod init;
mod recon;
mod ring;
mod ring_diff;

#[derive(Parser)]
#[command(
    name = "ringsmith",
    version,
    about = "Tools for OpenStack-Swift-style object storage clusters"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the partition and nodes of an account, container or object (like swift-get-nodes).
    GetNodes(get_nodes::Args),
    /// Cluster health from the recon endpoints (like swift-recon).
    Recon(recon::Args),
    /// Run a whole cluster on this machine: `cluster up`, `cluster status`, `cluster down`.
    Cluster(cluster::Args),
    /// Build and inspect rings: a drop-in swift-ring-builder.
    Ring(ring::Args),
    /// What moved between two rings or builders, per device and tier.
    RingDiff(ring_diff::Args),
    /// Sample containers and objects and report their copies (like swift-dispersion-populate/-report).
    #[command(subcommand_required = true)]
    Dispersion(dispersion::Args),
    /// Interactive dashboard: cluster health, rings, replication and a rebalance planner.
    Dash(dash::Args),
    /// Load a Swift API endpoint: PUT, GET, HEAD, listings and DELETE, with exact latencies.
    Bench(bench::Args),
    /// Show an object's .data file: metadata, ring locations, curl lines (like swift-object-info).
    ObjectInfo(info::Args),
    /// Show a container database: metadata, ring locations (like swift-container-info).
    ContainerInfo(info::Args),
    /// Show an account database: metadata, ring locations (like swift-account-info).
    AccountInfo(info::Args),
    /// Start, stop, reload and check the servers and daemons of /etc/swift (like swift-init).
    Init(init::Args),
    /// Print shell completions for ringsmith.
    Completions(completions::CompletionsArgs),
    /// Print the ringsmith man page (or write one per subcommand with --dir).
    Man(completions::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GetNodes(args) => get_nodes::run(args),
        Command::Recon(args) => recon::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Ring(args) => ring::run(args),
        Command::RingDiff(args) => ring_diff::run(args),
        Command::Dispersion(args) => dispersion::run(args),
        Command::Dash(args) => dash::run(args),
        Command::Bench(args) => bench::run(args),
        Command::ObjectInfo(args) => info::run_object(args),
        Command::ContainerInfo(args) => info::run_container(args),
        Command::AccountInfo(args) => info::run_account(args),
        Command::Init(args) => init::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

//! `ringsmith-server <server-or-daemon> -c <conf>`: Swift's servers and daemons in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[allow(dead_code)] // used by the servers as they land
mod conf;

#[derive(Parser)]
#[command(
    name = "ringsmith-server",
    version,
    about = "Swift-compatible servers and consistency daemons"
)]
struct Cli {
    /// What to run: object, container, account, proxy, or a daemon name.
    kind: String,
    /// The Swift-style configuration file.
    #[arg(short = 'c', long = "conf")]
    conf: PathBuf,
    /// Run a daemon's pass once and exit.
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match conf::Conf::load(&cli.conf) {
        Ok(_) => {
            eprintln!("ringsmith-server: {} is not built yet", cli.kind);
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ringsmith-server: {e}");
            ExitCode::from(2)
        }
    }
}

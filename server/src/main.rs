//! `ringsmith-server <server-or-daemon> -c <conf>`: Swift's servers and daemons in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[allow(dead_code)] // used by the servers as they land
mod conf;
mod proxy;

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
    if cli.kind == "proxy" {
        init_logging();
        return match proxy::run(&cli.conf) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringsmith-server proxy: {e}");
                ExitCode::from(2)
            }
        };
    }
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

/// Structured logs on stderr; `RUST_LOG` overrides the default `info`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

//! `ringsmith get-nodes`: where an account, container or object lives.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The ring file (e.g. /etc/swift/object.ring.gz).
    pub ring: PathBuf,
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("get-nodes: not built yet");
    ExitCode::from(2)
}

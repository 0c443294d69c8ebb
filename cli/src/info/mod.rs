//! `ringsmith object-info | container-info | account-info FILE`: drop-ins for Swift's
//! `swift-object-info`, `swift-container-info` and `swift-account-info`.
//!
//! Each reads one file from a storage node (an object's `.data` file with its pickled
//! xattr metadata, or an account/container SQLite database), prints its metadata, and,
//! when the matching ring is found in the swift directory, where the ring places it: the
//! partition, primary and handoff nodes, `curl` lines to HEAD it on each and `ssh … ls`
//! lines for its directory. Options, messages and exit codes are Swift's (optparse rules;
//! 0 shown, 1 nothing to show, 2 bad options or stale data). The file formats are read
//! with the object and database code of `ringsmith-server`, so a file written by either
//! Swift or Ringsmith reads the same.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ringsmith::device::Device;
use ringsmith::hash::HashConfig;
use ringsmith::ring::Ring;
use ringsmith::swift::policy::Policies;

use crate::get_nodes::bracket_ipv6;
use crate::ring::optparse::{self, Spec};
use ringsmith::swift::escape::quote;

mod db;
mod object;

/// The words after the sub-command, parsed with Swift's optparse rules.
#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// `[options] FILE`, exactly as for the Swift tool (`-h` lists the options).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "[OPTIONS] FILE",
        value_hint = clap::ValueHint::FilePath
    )]
    pub argv: Vec<String>,
}

pub fn run_object(args: Args) -> ExitCode {
    finish(object::main(&args.argv))
}

pub fn run_container(args: Args) -> ExitCode {
    finish(db::main(db::Kind::Container, &args.argv))
}

pub fn run_account(args: Args) -> ExitCode {
    finish(db::main(db::Kind::Account, &args.argv))
}

fn finish(code: u8) -> ExitCode {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

/// What the options of one tool are, and its usage line and help text.
pub(crate) struct Tool {
    pub prog: &'static str,
    pub file_word: &'static str,
    pub specs: &'static [Spec],
    pub help_lines: &'static str,
}

pub(crate) enum Parsed {
    Run(optparse::Parsed),
    Exit(u8),
}

impl Tool {
    fn usage(&self) -> String {
        format!("Usage: {} [options] {}\n", self.prog, self.file_word)
    }

    /// optparse's handling: `-h` prints the help (exit 0), a bad option prints the usage
    /// and the error on stderr (exit 2), and anything but one file prints the help and
    /// exits 0 (Swift calls `sys.exit(parser.print_help())`).
    pub fn parse(&self, argv: &[String]) -> Parsed {
        let help = format!("{}\nOptions:\n{}", self.usage(), self.help_lines);
        match optparse::parse(self.specs, argv) {
            Err(optparse::UsageError(msg)) => {
                eprintln!("{}\n{}: error: {msg}", self.usage(), self.prog);
                Parsed::Exit(2)
            }
            Ok(p) if p.flag("help") || p.args.len() != 1 => {
                print!("{help}");
                Parsed::Exit(0)
            }
            Ok(p) => Parsed::Run(p),
        }
    }
}

/// The cluster settings a tool reads from the swift directory.
pub(crate) struct SwiftDir {
    pub dir: PathBuf,
    /// `None` when `swift.conf` has no usable hash settings: Swift then hashes with empty
    /// ones and finds no ring.
    pub hash: Option<HashConfig>,
    pub policies: Policies,
}

impl SwiftDir {
    pub fn load(dir: &str) -> SwiftDir {
        let dir = PathBuf::from(dir);
        let hash = HashConfig::load(&dir).ok();
        let policies = Policies::load(&dir).unwrap_or_default();
        SwiftDir {
            dir,
            hash,
            policies,
        }
    }

    pub fn hash_config(&self) -> HashConfig {
        self.hash.clone().unwrap_or_default()
    }

    /// `<dir>/<name>.ring.gz`, when it and `swift.conf` can be loaded (as Swift's `Ring`).
    pub fn ring(&self, name: &str) -> Option<Ring> {
        let hash = self.hash.clone()?;
        Ring::load(&self.dir.join(format!("{name}.ring.gz")), hash).ok()
    }

    /// The policy called `name` or with that alias, case-insensitively.
    pub fn policy_by_name(&self, name: &str) -> Option<u32> {
        self.policies.by_name(name).map(|p| p.index)
    }
}

/// Swift's `print_ring_locations`: partition, hash, nodes, curl and ssh lines.
pub(crate) fn ring_locations(
    ring: &Ring,
    datadir: &str,
    account: &str,
    container: Option<&str>,
    obj: Option<&str>,
    policy_index: Option<u32>,
) -> String {
    let target = match (container, obj) {
        (Some(c), Some(o)) => format!("{account}/{c}/{o}"),
        (Some(c), None) => format!("{account}/{c}"),
        _ => account.to_string(),
    };
    let part = ring.get_part(account, container, obj).unwrap_or(0);
    let hash = ring
        .hash_config()
        .hash_path(account, container, obj)
        .unwrap_or_default();
    let primaries: Vec<&Device> = ring.get_part_nodes(part).iter().collect();
    let handoffs: Vec<&Device> = ring.get_more_nodes(part).take(primaries.len()).collect();
    let mut o = String::new();
    writeln!(o, "Partition\t{part}").unwrap();
    writeln!(o, "Hash     \t{hash}\n").unwrap();
    for d in &primaries {
        writeln!(o, "Server:Port Device\t{}:{} {}", d.ip, d.port, d.device).unwrap();
    }
    for d in &handoffs {
        writeln!(
            o,
            "Server:Port Device\t{}:{} {}\t [Handoff]",
            d.ip, d.port, d.device
        )
        .unwrap();
    }
    writeln!(o, "\n").unwrap();
    let curl = |d: &Device| {
        let mut cmd = format!(
            "curl -g -I -XHEAD \"http://{}:{}/{}/{part}/{}\"",
            bracket_ipv6(&d.ip),
            d.port,
            d.device,
            quote(&target)
        );
        if let Some(n) = policy_index {
            write!(cmd, " -H \"X-Backend-Storage-Policy-Index: {n}\"").unwrap();
        }
        cmd + " --path-as-is"
    };
    for d in &primaries {
        writeln!(o, "{}", curl(d)).unwrap();
    }
    for d in &handoffs {
        writeln!(o, "{} # [Handoff]", curl(d)).unwrap();
    }
    writeln!(o, "\n\nUse your own device location of servers:").unwrap();
    writeln!(o, "such as \"export DEVICE=/srv/node\"").unwrap();
    let suffix = &hash[hash.len().saturating_sub(3)..];
    let location = format!("{datadir}/{part}/{suffix}/{hash}");
    for (d, tail) in primaries
        .iter()
        .map(|d| (d, ""))
        .chain(handoffs.iter().map(|d| (d, " # [Handoff]")))
    {
        writeln!(
            o,
            "ssh {} \"ls -lah ${{DEVICE:-/srv/node*}}/{}/{location}\"{tail}",
            d.ip, d.device
        )
        .unwrap();
    }
    writeln!(
        o,
        "\nnote: `/srv/node*` is used as default value of `devices`, the real value is set in \
         the config file on each storage node."
    )
    .unwrap();
    o
}

/// Python's `str.title()` on ASCII keys: a letter after a non-letter is upper-cased,
/// every other letter lower-cased.
pub(crate) fn py_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// Whether `key` starts with `prefix`, ignoring ASCII case (Swift lower-cases the key).
pub(crate) fn has_prefix(key: &str, prefix: &str) -> bool {
    key.len() >= prefix.len()
        && key.is_char_boundary(prefix.len())
        && key[..prefix.len()].eq_ignore_ascii_case(prefix)
}

pub(crate) fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_like_python() {
        assert_eq!(py_title("x-container-sync-to"), "X-Container-Sync-To");
        assert_eq!(py_title("X_ACCOUNT_meta"), "X_Account_Meta");
    }
}

//! `ringsmith ring compose`: a drop-in `swift-ring-composer`.
//!
//! `ringsmith ring compose <composite_file> show` prints the composite builder file;
//! `ringsmith ring compose <composite_file> compose <builder>... --output <ring> [--force]`
//! stitches component builders into a composite ring and records them in the composite
//! file. Arguments, messages, streams and exit codes (0, 2) are Swift's; Swift's argparse
//! grammar is reproduced here (options after positionals, `--opt=value`, unique prefixes of
//! long options) because scripts call the tool with all of those. The rules themselves live
//! in the core crate ([`ringsmith::builder::composite`]).

use std::path::Path;

use ringsmith::builder::composite::{python_io_error, CompositeBuilder};
use ringsmith::ring::{FormatVersion, RingProblem};

const PROG: &str = "ringsmith ring compose";
const EXIT_SUCCESS: u8 = 0;
const EXIT_ERROR: u8 = 2;

/// Swift prints this note on every run; scripts that compare stderr expect it.
const WARNING: &str = "\nNOTE: This tool is for experimental use and may be\n      removed in future versions of Swift.\n";

fn top_usage() -> String {
    format!("usage: {PROG} [-h] composite_builder_file {{show,compose}} ...")
}

fn compose_usage() -> String {
    format!(
        "usage: {PROG} composite_builder_file compose [-h] [builder_file builder_file \
         [builder_file ...] --output ring_file [--force]"
    )
}

fn top_help() -> String {
    format!(
        "{}

This is a tool for building a composite ring file from other existing ring
builder files. The component ring builders must all have the same partition
power. Each device must only be used in a single component builder. Each
region must only be used in a single component builder.

positional arguments:
  composite_builder_file
                        Name of composite builder file

options:
  -h, --help            show this help message and exit

subcommands:
  {{show,compose}}        subcommand help
    show                show composite ring builder metadata
    compose             compose composite ring
",
        top_usage()
    )
}

fn compose_help() -> String {
    format!(
        "{}

positional arguments:
  builder_file          Paths to component ring builder files to include in
                        composite ring

options:
  -h, --help            show this help message and exit
  --output output_file  Name of output ring file
  --force               Force new composite ring file to be written
",
        compose_usage()
    )
}

fn show_help() -> String {
    format!(
        "usage: {PROG} composite_builder_file show [-h]

options:
  -h, --help  show this help message and exit
"
    )
}

/// What the command line asked for, after argparse's rules.
#[derive(Debug, PartialEq)]
enum Parsed {
    Help(String),
    Show {
        composite: String,
    },
    Compose {
        composite: String,
        builders: Vec<String>,
        output: String,
        force: bool,
    },
    /// A usage error: (usage line, prog shown before "error:", message). Exit 2.
    Usage(String, String, String),
    /// No sub-command: Swift crashes with a traceback (exit 1); we say what is missing.
    NoCommand,
}

fn top_error(msg: impl Into<String>) -> Parsed {
    Parsed::Usage(top_usage(), PROG.to_string(), msg.into())
}

fn compose_error(msg: impl Into<String>) -> Parsed {
    Parsed::Usage(
        compose_usage(),
        format!("{PROG} composite_builder_file compose"),
        msg.into(),
    )
}

fn is_help(a: &str) -> bool {
    a == "-h" || (a.len() >= 3 && "--help".starts_with(a))
}

fn parse(args: &[String]) -> Parsed {
    // Top level: options first are only -h; the first two positionals are the file and the
    // sub-command, everything after the sub-command belongs to it.
    let mut unknown = Vec::new();
    let mut composite = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if is_help(a) {
            return Parsed::Help(top_help());
        }
        if a.starts_with('-') && a.len() > 1 {
            unknown.push(a.clone());
        } else if composite.is_none() {
            composite = Some(a.clone());
        } else {
            break;
        }
        i += 1;
    }
    let Some(composite) = composite else {
        return top_error("the following arguments are required: composite_builder_file");
    };
    let Some(command) = args.get(i) else {
        if !unknown.is_empty() {
            return top_error(format!("unrecognized arguments: {}", unknown.join(" ")));
        }
        return Parsed::NoCommand;
    };
    let rest = &args[i + 1..];
    match command.as_str() {
        "show" => {
            if rest.iter().any(|a| is_help(a)) {
                return Parsed::Help(show_help());
            }
            unknown.extend(rest.iter().cloned());
            if unknown.is_empty() {
                Parsed::Show { composite }
            } else {
                top_error(format!("unrecognized arguments: {}", unknown.join(" ")))
            }
        }
        "compose" => parse_compose(composite, rest, unknown),
        other => top_error(format!(
            "argument {{show,compose}}: invalid choice: '{other}' (choose from 'show', 'compose')"
        )),
    }
}

fn parse_compose(composite: String, rest: &[String], mut unknown: Vec<String>) -> Parsed {
    let mut builders = Vec::new();
    let mut output = None;
    let mut force = false;
    // argparse gives the `*` positional the first run of plain words only.
    let mut positional_run = 0; // 0: not started, 1: in it, 2: over
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        i += 1;
        if a.starts_with("--") && a.len() > 2 {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            if positional_run == 1 {
                positional_run = 2;
            }
            let matches: Vec<&str> = ["--help", "--output", "--force"]
                .into_iter()
                .filter(|o| o.starts_with(name))
                .collect();
            match matches.as_slice() {
                ["--help"] => return Parsed::Help(compose_help()),
                ["--output"] => match value {
                    Some(v) => output = Some(v),
                    None => match rest.get(i) {
                        Some(v) if !(v.starts_with('-') && v.len() > 1) => {
                            output = Some(v.clone());
                            i += 1;
                        }
                        _ => return compose_error("argument --output: expected one argument"),
                    },
                },
                ["--force"] => {
                    if let Some(v) = value {
                        return compose_error(format!(
                            "argument --force: ignored explicit argument '{v}'"
                        ));
                    }
                    force = true;
                }
                [] => unknown.push(a.clone()),
                several => {
                    return compose_error(format!(
                        "ambiguous option: {name} could match {}",
                        several.join(", ")
                    ))
                }
            }
        } else if a == "-h" {
            return Parsed::Help(compose_help());
        } else if a.starts_with('-') && a.len() > 1 && a != "--" {
            if positional_run == 1 {
                positional_run = 2;
            }
            unknown.push(a.clone());
        } else if positional_run < 2 {
            positional_run = 1;
            builders.push(a.clone());
        } else {
            unknown.push(a.clone());
        }
    }
    let Some(output) = output else {
        return compose_error("the following arguments are required: --output");
    };
    if !unknown.is_empty() {
        return top_error(format!("unrecognized arguments: {}", unknown.join(" ")));
    }
    Parsed::Compose {
        composite,
        builders,
        output,
        force,
    }
}

/// Runs `ringsmith ring compose ARGS…` and returns the exit status.
pub fn run(args: &[String]) -> u8 {
    eprintln!("{WARNING}");
    match parse(args) {
        Parsed::Help(text) => {
            print!("{text}");
            EXIT_SUCCESS
        }
        Parsed::Usage(usage, prog, msg) => {
            eprintln!("{usage}\n{prog}: error: {msg}");
            EXIT_ERROR
        }
        Parsed::NoCommand => {
            eprintln!(
                "{}\n{PROG}: error: the following arguments are required: {{show,compose}}",
                top_usage()
            );
            1
        }
        Parsed::Show { composite } => match load(&composite) {
            Ok(cb) => {
                println!("{}", ringsmith::pyjson::dumps_indent(&cb.to_dict(), 4));
                EXIT_SUCCESS
            }
            Err(code) => code,
        },
        Parsed::Compose {
            composite,
            builders,
            output,
            force,
        } => {
            let mut cb = if Path::new(&composite).exists() {
                match load(&composite) {
                    Ok(cb) => cb,
                    Err(code) => return code,
                }
            } else {
                CompositeBuilder::default()
            };
            compose(&mut cb, &composite, &builders, &output, force)
        }
    }
}

fn load(composite: &str) -> Result<CompositeBuilder, u8> {
    CompositeBuilder::load(Path::new(composite)).map_err(|why| {
        print_err(
            "An error occurred while loading the composite builder file.",
            &why,
        )
    })
}

fn print_err(msg: &str, why: &str) -> u8 {
    eprintln!("{msg}\nOriginal exception message:\n{why}");
    EXIT_ERROR
}

fn compose(
    cb: &mut CompositeBuilder,
    composite: &str,
    builders: &[String],
    output: &str,
    force: bool,
) -> u8 {
    let ring = match cb.compose(builders, force, true) {
        Ok(r) => r,
        Err(why) => return print_err("An error occurred while composing the ring.", &why),
    };
    let out = Path::new(output);
    let format = if ring.dev_id_bytes == 2 {
        FormatVersion::V1
    } else {
        FormatVersion::V2
    };
    if let Err(e) = ring.save(out, format) {
        let why = match &e.problem {
            RingProblem::Write(io) => python_io_error(io, out),
            other => other.to_string(),
        };
        return print_err(
            "An error occurred while writing the composite ring file.",
            &why,
        );
    }
    if let Err(why) = cb.save(Path::new(composite)) {
        return print_err(
            "An error occurred while writing the composite builder file.",
            &why,
        );
    }
    EXIT_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Parsed {
        parse(
            &args
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn argparse_rules() {
        assert_eq!(
            p("c compose --output o a b"),
            Parsed::Compose {
                composite: "c".into(),
                builders: vec!["a".into(), "b".into()],
                output: "o".into(),
                force: false
            }
        );
        assert_eq!(
            p("c compose a b --out=o --f"),
            Parsed::Compose {
                composite: "c".into(),
                builders: vec!["a".into(), "b".into()],
                output: "o".into(),
                force: true
            }
        );
        assert!(
            matches!(p("c compose a --output o b"), Parsed::Usage(_, _, m) if m == "unrecognized arguments: b")
        );
        assert!(
            matches!(p("c compose a b -o o"), Parsed::Usage(_, _, m) if m.contains("required: --output"))
        );
        assert!(
            matches!(p("c bogus"), Parsed::Usage(_, _, m) if m.contains("invalid choice: 'bogus'"))
        );
        assert_eq!(p("c"), Parsed::NoCommand);
    }
}

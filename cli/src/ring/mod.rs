//! `ringsmith ring`: a drop-in `swift-ring-builder`.
//!
//! The command line is Swift's: `ringsmith ring <builder_file> [<command> [args…]]`, the same
//! commands, value syntaxes and options, the same messages on the same streams, the same exit
//! codes (0 done, 1 done with a warning, 2 error), the same `backups/` directory and the same
//! `.lock` file. An operator's runbook that says `swift-ring-builder` works with
//! `ringsmith ring` in its place.
//!
//! The flow of one invocation mirrors Swift's `main()`, which scripts depend on in subtle ways
//! (e.g. which errors are reported before the command runs):
//!
//! 1. work out the builder and ring file names from the first argument ([`file_names`]);
//! 2. take the directory lock (always — Swift only locks as `swift-ring-builder-safe`);
//! 3. load the builder, unless the command may run without one (`create`, `write_builder`,
//!    `version`), and create `backups/` next to it;
//! 4. run the command ([`commands`]), which prints its report ([`display`]) and saves through
//!    the atomic writers of the builder and ring modules, only after everything succeeded —
//!    a command that fails leaves the builder and ring byte-for-byte as they were.
//!
//! Beyond Swift: `--json` on the display, `search`, `rebalance`, `dispersion` and `validate`
//! (schema in `docs/json.md`), `rebalance --dry-run`, `ringsmith ring <file.ring.gz>` with no
//! builder at hand, and a progress indicator on stderr for long rebalances.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ringsmith::builder::RingBuilder;

mod commands;
mod compose;
mod dispersion;
mod display;
pub mod lock;
pub mod optparse;
mod plan;
mod progress;
mod push;
pub mod pyfmt;
pub mod ring_io;
mod usage;

/// Exit statuses, as swift-ring-builder defines them.
pub const EXIT_SUCCESS: u8 = 0;
pub const EXIT_WARNING: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(clap::Args, Debug)]
#[command(
    about = "Build and inspect rings: a drop-in swift-ring-builder",
    long_about = "Build and inspect rings with swift-ring-builder's commands, syntax, files and exit codes \
(0 done, 1 warning, 2 error). Run with no arguments for every command's usage.\n\n\
Beyond Swift: --json on the default view, search, rebalance, dispersion and validate; \
rebalance --dry-run; `ringsmith ring <file.ring.gz>` shows a ring without its builder.\n\n\
Also: `ringsmith ring compose <composite_file> show|compose …` (swift-ring-composer) and \
`ringsmith ring plan|apply SPEC.toml BUILDER [--json]` (declarative rings, docs/declarative-rings.md; \
exit 0 done, 3 step taken, 4 wait for min_part_hours, 2 refused). \
`ringsmith ring push [RING…] [--command TEMPLATE]` copies rings to every node in them and checks \
through /recon/ringmd5 that each server reports them (exit 1 lists the servers that do not).",
    disable_help_flag = true
)]
pub struct Args {
    /// `<builder_file|ring_file> [<command> [<args>...]]`, exactly as for swift-ring-builder.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "BUILDER_FILE [COMMAND] [ARGS]",
        value_hint = clap::ValueHint::FilePath
    )]
    pub argv: Vec<String>,
}

/// How a command ended when it did not succeed: the message (printed to stdout, where Swift
/// prints its errors, unless `stderr` is set as for optparse usage errors) and exit 2.
#[derive(Debug)]
pub struct Fail {
    pub message: String,
    pub stderr: bool,
}

impl Fail {
    pub fn new(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            stderr: false,
        }
    }

    pub fn stderr(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            stderr: true,
        }
    }
}

/// `Ok(EXIT_SUCCESS | EXIT_WARNING)` or a failure (exit 2).
pub type CmdResult = Result<u8, Fail>;

/// Everything a command needs: Swift's `argv` (`[prog, file, command, args…]`), the file
/// names, the loaded builder and the output mode.
pub struct Ctx {
    pub argv: Vec<String>,
    pub builder_file: PathBuf,
    pub ring_file: PathBuf,
    /// `None` only for commands that may run without a builder file.
    pub builder: Option<RingBuilder>,
    pub json: bool,
    pub dry_run: bool,
}

impl Ctx {
    /// The builder; commands that need one only run after it was loaded.
    pub fn builder(&mut self) -> &mut RingBuilder {
        self.builder
            .as_mut()
            .expect("builder loaded for this command")
    }

    /// Shows the path as the user typed it (Swift echoes the argument, not an absolute path).
    pub fn builder_name(&self) -> String {
        self.builder_file.display().to_string()
    }

    pub fn ring_name(&self) -> String {
        self.ring_file.display().to_string()
    }

    /// Arguments after the command word.
    pub fn rest(&self) -> Vec<String> {
        self.argv.iter().skip(3).cloned().collect()
    }

    /// Saves the builder atomically (assigning its id first, as Swift's `save` does).
    pub fn save_builder(&mut self) -> Result<(), Fail> {
        let path = self.builder_file.clone();
        let builder = self.builder();
        builder.ensure_id();
        builder.save(&path).map_err(|e| {
            Fail::new(format!(
                "Unable to write builder file {}: {e}",
                path.display()
            ))
        })
    }

    /// Saves a copy of the builder under `backups/<ts>.<name>`.
    pub fn backup_builder(&mut self, now_secs: u64) -> Result<(), Fail> {
        let path = ringsmith::builder::file::backup_path(&self.builder_file, now_secs);
        let builder = self.builder();
        builder.ensure_id();
        builder
            .save(&path)
            .map_err(|e| Fail::new(format!("Unable to write backup {}: {e}", path.display())))
    }
}

/// Swift's `parse_builder_ring_filename_args`: `x.ring.gz` → `x.builder`; `x.builder` →
/// `x.ring.gz`; anything else is the builder and gets `.ring.gz` appended for the ring.
pub fn file_names(first_arg: &str) -> (PathBuf, PathBuf) {
    if let Some(stem) = first_arg.strip_suffix(".ring.gz") {
        (
            PathBuf::from(format!("{stem}.builder")),
            PathBuf::from(first_arg),
        )
    } else if let Some(stem) = first_arg.strip_suffix(".builder") {
        (
            PathBuf::from(first_arg),
            PathBuf::from(format!("{stem}.ring.gz")),
        )
    } else {
        (
            PathBuf::from(first_arg),
            PathBuf::from(format!("{first_arg}.ring.gz")),
        )
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Prints a failure where Swift prints it (or as a JSON object in `--json` mode) and
/// returns exit status 2.
fn report_failure(fail: &Fail, json: bool) -> u8 {
    if json {
        let body = serde_json::json!({ "error": fail.message, "exit_code": EXIT_ERROR });
        println!("{}", serde_json::to_string_pretty(&body).expect("json"));
    } else if fail.stderr {
        eprintln!("{}", fail.message);
    } else {
        println!("{}", fail.message);
    }
    EXIT_ERROR
}

/// Runs `ringsmith ring …` and returns its exit status.
pub fn run(args: Args) -> ExitCode {
    let code = run_argv(args.argv);
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

fn run_argv(raw: Vec<String>) -> u8 {
    // `ringsmith ring compose …` is swift-ring-composer, with its own grammar (unless a
    // builder file is literally called `compose`).
    if raw.first().map(String::as_str) == Some("compose") && !Path::new("compose").exists() {
        return compose::run(&raw[1..]);
    }
    // `ringsmith ring plan|apply SPEC BUILDER`: declarative rings (unless a builder file is
    // literally called `plan` or `apply`).
    if let Some(word @ ("plan" | "apply")) = raw.first().map(String::as_str) {
        if !Path::new(word).exists() {
            return crate::declare::run(word == "apply", &raw[1..]);
        }
    }
    // `ringsmith ring push [RING…]`: distribute rings and check the servers report them
    // (unless a builder file is literally called `push`).
    if raw.first().map(String::as_str) == Some("push") && !Path::new("push").exists() {
        return push::run(&raw[1..]);
    }
    // `--json` and `--dry-run` are Ringsmith's own switches; they may appear anywhere after the
    // file name and are taken out before Swift's argument rules apply to the rest.
    let mut json = false;
    let mut dry_run = false;
    let mut argv = vec!["ringsmith ring".to_string()];
    let mut after_dashdash = false;
    for (i, a) in raw.into_iter().enumerate() {
        if a == "--" {
            after_dashdash = true;
        }
        if i > 0 && !after_dashdash && a == "--json" {
            json = true;
        } else if i > 0 && !after_dashdash && a == "--dry-run" {
            dry_run = true;
        } else {
            argv.push(a);
        }
    }
    if argv.len() < 2 {
        usage::print_full_help();
        return EXIT_SUCCESS;
    }
    if argv[1] == "-h" || argv[1] == "--help" {
        usage::print_full_help();
        return EXIT_SUCCESS;
    }
    let command = argv
        .get(2)
        .cloned()
        .unwrap_or_else(|| "default".to_string());
    let (builder_file, ring_file) = file_names(&argv[1]);
    let renamed = builder_file.as_os_str() != argv[1].as_str();
    let quiet_command = matches!(command.as_str(), "write_builder" | "version");
    // A ring shown as JSON, or with no builder beside it, needs no note.
    let shows_ring_alone = command == "default" && (json || !builder_file.exists());
    if renamed && !quiet_command && !shows_ring_alone {
        println!(
            "Note: using {} instead of {} as builder file",
            builder_file.display(),
            argv[1]
        );
    }

    let _lock = match lock::lock_parent_directory(&builder_file, lock::default_timeout()) {
        Ok(l) => Some(l),
        Err(lock::LockError::TimedOut) => {
            return report_failure(&Fail::new("Ring/builder dir currently locked."), json)
        }
        Err(lock::LockError::Io(path, e)) => {
            return report_failure(
                &Fail::new(format!("Unable to lock {}: {e}", path.display())),
                json,
            )
        }
    };

    let may_lack_builder = matches!(command.as_str(), "create" | "write_builder" | "version");
    let builder = match load_builder(&builder_file) {
        Ok(b) => Some(b),
        Err(LoadError::Missing(_)) if may_lack_builder => None,
        Err(LoadError::Missing(_)) if command == "default" && argv[1].ends_with(".ring.gz") => {
            // Ringsmith shows a ring file even when its builder is not at hand.
            let ctx = Ctx {
                argv,
                builder_file,
                ring_file,
                builder: None,
                json,
                dry_run,
            };
            return finish(display::show_ring_file(&ctx), json);
        }
        Err(e) => return report_failure(&Fail::new(e.to_string()), json),
    };
    // Swift creates `backups/` next to the builder whatever the command.
    {
        let backup_dir = backup_dir_of(&builder_file);
        if let Err(e) = std::fs::create_dir(&backup_dir) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return report_failure(
                    &Fail::new(format!("Unable to create {}: {e}", backup_dir.display())),
                    json,
                );
            }
        }
    }
    let mut ctx = Ctx {
        argv,
        builder_file,
        ring_file,
        builder,
        json,
        dry_run,
    };
    let result = commands::dispatch(&command, &mut ctx);
    finish(result, json)
}

fn finish(result: CmdResult, json: bool) -> u8 {
    match result {
        Ok(code) => code,
        Err(fail) => report_failure(&fail, json),
    }
}

/// `<dir of builder>/backups`.
pub fn backup_dir_of(builder_file: &Path) -> PathBuf {
    match builder_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("backups"),
        _ => PathBuf::from("backups"),
    }
}

/// Why a builder file could not be loaded, worded as Swift words it.
pub enum LoadError {
    Missing(PathBuf),
    Other(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing(p) => write!(f, "Ring Builder file does not exist: {}", p.display()),
            LoadError::Other(why) => f.write_str(why),
        }
    }
}

pub fn load_builder(path: &Path) -> Result<RingBuilder, LoadError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::Missing(path.to_path_buf()))
        }
        Ok(m) if m.is_dir() => {
            return Err(LoadError::Other(format!(
                "Ring Builder file is invalid: {}: is a directory",
                path.display()
            )))
        }
        _ => {}
    }
    RingBuilder::load(path).map_err(|e| LoadError::Other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_swift() {
        assert_eq!(
            file_names("object.ring.gz"),
            ("object.builder".into(), "object.ring.gz".into())
        );
        assert_eq!(
            file_names("d/object.builder"),
            ("d/object.builder".into(), "d/object.ring.gz".into())
        );
        assert_eq!(file_names("foo"), ("foo".into(), "foo.ring.gz".into()));
    }
}

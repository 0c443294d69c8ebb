//! `ringsmith completions <shell>` and `ringsmith man`, generated from the clap definitions
//! so they never drift from the real command line.
//!
//! The `ring` subcommand takes swift-ring-builder's free-form arguments; its completion
//! offers files for the builder argument and the command names after it.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write one page per subcommand into this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> ExitCode {
    let mut cmd = crate::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "ringsmith", &mut out);
    let _ = out.flush();
    ExitCode::SUCCESS
}

pub fn man(args: ManArgs) -> ExitCode {
    let cmd = crate::Cli::command();
    match args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("man: {e}");
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("man: cannot create {}: {e}", dir.display());
                return ExitCode::from(2);
            }
            let mut pages = vec![("ringsmith".to_string(), cmd.clone())];
            for sub in cmd.get_subcommands() {
                pages.push((format!("ringsmith-{}", sub.get_name()), sub.clone()));
            }
            for (name, page) in pages {
                let mut buf = Vec::new();
                // clap wants a static name; this runs once per page in a short-lived process.
                let page = page.name(&*Box::leak(name.clone().into_boxed_str()));
                if let Err(e) = clap_mangen::Man::new(page).render(&mut buf) {
                    eprintln!("man: {e}");
                    return ExitCode::from(2);
                }
                let path = dir.join(format!("{name}.1"));
                if let Err(e) = ringsmith::atomic::write_bytes_atomic(&path, 0o644, &buf) {
                    eprintln!("man: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
    }
}

//! The command line: argv, files and standard input, the terminal (colour, progress) and
//! exit codes. Everything it knows about stores, appends and reports it asks of `engine`,
//! and it shows the answers through `present`.
//!
//! Exit codes (CLI.md): 0 success, 1 input refused (nothing written),
//! 2 usage error, 3 integrity check failed, 4 store unavailable.

mod args;
mod commands;
mod demo;
mod failure;
mod input;
mod ledger;
mod manual;
mod progress;
mod record;
mod serve;
mod style;

use std::io::{self, Write};

use clap::FromArgMatches;

pub use args::Cli;
pub use failure::Failure;

/// Runs the command line and returns the process exit code; `version` is
/// the binary's package version.
pub fn run(version: &'static str) -> i32 {
    let _ = args::VERSION.set(version);
    style::init();
    let parsed = args::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = commands::execute(cli, &mut out);
    let _ = out.flush();
    match result {
        Ok(()) | Err(Failure::BrokenPipe) => 0,
        Err(failure) => {
            let _ = writeln!(
                io::stderr(),
                "{} {}",
                style::error_prefix(),
                // One line, whatever text it quotes.
                present::render::visible(failure.message())
            );
            failure.exit_code()
        }
    }
}

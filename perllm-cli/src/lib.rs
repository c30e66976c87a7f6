//! The `perllm` command-line interface: check, run, compare, sweep, merge, plot and list plugins.
//!
//! The default feature `engine` adds the real CPU engine and HTTP serving (`profile`,
//! `calibrate`, `validate`, `serve`, `engine serve`, `load`, `link-relay`); without it the crate builds the
//! simulator's commands only (what the `cli_args` fuzz target uses).
//!
//! Exit codes: 0 success, 1 a run failed, 2 bad usage or invalid input.
//!
//! The binary (`src/main.rs`) only calls [`main_entry`]. The library exists so that the fuzz
//! targets (`fuzz/`) can call [`fuzzing`], the command line's checks without running anything.

mod catalog;
mod chart;
mod cli;
mod commands;
mod error;
mod eta;
#[cfg(feature = "engine")]
mod fidelity;
pub mod fuzzing;
mod inputs;
mod observers;
mod output;
mod plot;
mod provenance;
mod render;
mod results;
mod runner;
mod scenario;
#[cfg(feature = "engine")]
mod serve;
mod table;
mod term;
mod util;

use clap::Parser;
use std::process::ExitCode;

/// Run the command line of this process; the exit code to return.
pub fn main_entry() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with exit 0; usage errors to stderr with exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // An interrupt deletes the staged output files (the previous outputs stay as they were; a
    // commit in progress ends first), says which outputs were written, and exits with 130, the
    // shell's code for a command ended by SIGINT.
    // The servers (`serve`, `engine serve`) handle SIGTERM and Ctrl-C themselves: they drain.
    #[cfg(feature = "engine")]
    let serving = matches!(
        cli.command,
        cli::Command::Serve(_) | cli::Command::Engine { .. } | cli::Command::LinkRelay(_)
    );
    #[cfg(not(feature = "engine"))]
    let serving = false;
    if !serving {
        let _ = ctrlc::set_handler(|| {
            let msg = output::interrupted();
            eprintln!("\n{}", term::safe(&msg, false));
            std::process::exit(130);
        });
    }
    let term = term::Term::new(cli.color, cli.quiet);
    match commands::dispatch(cli, term) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            term.error(&e);
            e.exit_code()
        }
    }
}

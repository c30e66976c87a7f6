//! One module per command.

pub mod check;
pub mod export;
pub mod grid;
pub mod merge;
pub mod plot;
pub mod plugins;
pub mod run;

#[cfg(feature = "engine")]
use crate::cli::EngineCommand;
use crate::cli::{Cli, Command, PluginsCommand};
use crate::error::Result;
use crate::term::Term;
use clap::CommandFactory;

/// Run the parsed command.
pub fn dispatch(cli: Cli, term: Term) -> Result<()> {
    match cli.command {
        Command::Check(a) => check::check(a, term),
        Command::Export(a) => export::export(a, term),
        Command::Run(a) => run::run(a, term),
        Command::Compare(a) => grid::compare(a, term),
        Command::Sweep(a) => grid::sweep(a, term),
        Command::Merge(a) => merge::merge(a, term),
        Command::Plot(a) => plot::plot(a, term),
        #[cfg(feature = "engine")]
        Command::Profile(a) => crate::fidelity::profile::profile(a, term),
        #[cfg(feature = "engine")]
        Command::Calibrate(a) => crate::fidelity::calibrate::calibrate(a, term),
        #[cfg(feature = "engine")]
        Command::Validate(a) => crate::fidelity::validate::validate(a, term),
        #[cfg(feature = "engine")]
        Command::Serve(a) => crate::serve::gateway::serve(a, term),
        #[cfg(feature = "engine")]
        Command::Engine {
            command: EngineCommand::Serve(a),
        } => crate::serve::engine::engine_serve(a),
        #[cfg(feature = "engine")]
        Command::Load(a) => crate::serve::load::load(a, term),
        #[cfg(feature = "engine")]
        Command::LinkRelay(a) => crate::serve::relay::link_relay(a),
        Command::Plugins {
            command: PluginsCommand::List { plugins, format },
        } => plugins::list(plugins, format),
        Command::Plugins {
            command:
                PluginsCommand::Info {
                    name,
                    plugins,
                    format,
                },
        } => plugins::info(&name, plugins, format),
        Command::PluginWorker => perllm_host::isolate::serve_stdio()
            .map_err(|e| crate::error::CliError::run(format!("plugin worker: {e}"))),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "perllm", &mut buf);
            crate::term::print_stdout(&String::from_utf8_lossy(&buf))
        }
    }
}

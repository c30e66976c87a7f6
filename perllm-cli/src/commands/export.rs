//! `perllm export`: a scenario as serialised JSON.
//!
//! The JSON is perllm-core's `Scenario` after the `--set` overrides: the form `.json` scenarios
//! are read in (`check`, `run`, `compare`, `sweep`), and the one the scenario hash is computed over
//! (compact there, indented here; loading it back gives the same scenario and the same hash).
//! Paths of trace and series files are written as they were resolved: relative to the working
//! directory the export ran in.
//!
//! `--format links` writes instead what a network emulator needs (scripts/netem-links.sh): one
//! tab-separated line per server with an `endpoint`, its host and port and its link's mean
//! bandwidth, one-way latency and fluctuation kind.

use crate::cli::{ExportArgs, ExportFormat};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::term::{Term, print_stdout};

/// Load, validate and write the scenario.
pub fn export(args: ExportArgs, term: Term) -> Result<()> {
    let loaded = crate::scenario::load(&args.file, &args.set, term.color_stderr)?;
    if !loaded.warnings.is_empty() {
        term.eprint_rendered(&loaded.warnings);
    }
    // Only a scenario that builds is exported: what comes out can be run.
    crate::scenario::build(&loaded, &loaded.scenario)?;
    let text = match args.format {
        ExportFormat::Json => {
            let mut t = serde_json::to_string_pretty(&loaded.scenario)
                .map_err(|e| CliError::run(format!("cannot serialise the scenario: {e}")))?;
            t.push('\n');
            t
        }
        ExportFormat::Links => links(&loaded.scenario)?,
    };
    match &args.out {
        Some(path) => {
            let mut out = Outputs::new();
            let f = out.open(path)?;
            out.refuse_inputs(&crate::inputs::of_scenario(&loaded, &loaded.scenario))?;
            out.report_created(&term);
            f.write_text(&text)?;
            for p in out.commit()? {
                term.info(&format!(
                    "wrote {} ({})",
                    p.display(),
                    crate::provenance::scenario_hash(&loaded.scenario)
                ));
            }
            Ok(())
        }
        None => print_stdout(&text),
    }
}

/// The `links` format: a `#` header, then `server host port link bandwidth_bps latency_ns
/// fluctuation`, tab-separated, one line per server with an endpoint (in the scenario's order).
fn links(sc: &perllm_core::spec::Scenario) -> Result<String> {
    use perllm_core::spec::Fluctuation;
    let mut t =
        String::from("# server\thost\tport\tlink\tbandwidth_bps\tlatency_ns\tfluctuation\n");
    for s in &sc.servers {
        let Some(url) = &s.endpoint else { continue };
        let (host, port) = crate::util::host_port(url).ok_or_else(|| {
            CliError::input(format!(
                "server `{}`: cannot read a host and port from its endpoint `{url}` (expected `http://HOST:PORT`)",
                s.name
            ))
        })?;
        let link =
            sc.links.iter().find(|l| l.name == s.link).ok_or_else(|| {
                CliError::run(format!("server `{}`: no link `{}`", s.name, s.link))
            })?;
        let fluct = match &link.fluctuation {
            Fluctuation::None => "none".to_string(),
            Fluctuation::Uniform { frac } => format!("uniform:{frac}"),
            Fluctuation::RandomWalk { .. } => "random_walk".to_string(),
            Fluctuation::Series { .. } => "series".to_string(),
        };
        t.push_str(&format!(
            "{}\t{host}\t{port}\t{}\t{}\t{}\t{fluct}\n",
            s.name, link.name, link.bandwidth_bps, link.latency_ns
        ));
    }
    Ok(t)
}

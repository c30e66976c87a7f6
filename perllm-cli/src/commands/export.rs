//! `perllm export`: a scenario as serialised JSON.
//!
//! The JSON is perllm-core's `Scenario` after the `--set` overrides: the form `.json` scenarios
//! are read in (`check`, `run`, `compare`, `sweep`), and the one the scenario hash is computed over
//! (compact there, indented here; loading it back gives the same scenario and the same hash).
//! Paths of trace and series files are written as they were resolved: relative to the working
//! directory the export ran in.

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

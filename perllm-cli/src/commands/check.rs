//! `perllm check`.

use crate::cli::CheckArgs;
use crate::error::{CliError, Result};
use crate::term::Term;

/// Validate scenario files; diagnostics on stderr, a one-line verdict per run.
pub fn check(args: CheckArgs, term: Term) -> Result<()> {
    let out = crate::scenario::check(&args.files, term.color_stderr);
    term.eprint_rendered(&out.rendered);
    let files = args.files.len();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if out.errors > 0 {
        return Err(CliError::input(format!(
            "checked {}: {}, {}",
            plural(files, "file"),
            plural(out.errors, "error"),
            plural(out.warnings, "warning")
        )));
    }
    term.info(&format!(
        "checked {}: no errors, {}",
        plural(files, "file"),
        plural(out.warnings, "warning")
    ));
    Ok(())
}

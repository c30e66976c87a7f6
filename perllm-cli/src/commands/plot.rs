//! `perllm plot`.

use crate::cli::PlotArgs;
use crate::error::Result;
use crate::results::Results;
use crate::term::Term;

/// Draw the plots of a results file into a directory.
pub fn plot(args: PlotArgs, term: Term) -> Result<()> {
    let results = Results::read(&args.results)?;
    let files = crate::plot::write_all(&results, &args.out, &args.results, &term)?;
    term.info(&format!(
        "wrote {} files to {} (open {})",
        files.len(),
        args.out.display(),
        args.out.join("index.html").display()
    ));
    Ok(())
}

//! `perllm merge`: combine the shards of a study into what one machine would have produced.

use crate::cli::MergeArgs;
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::results::Results;
use crate::term::Term;

/// Check that two parts belong to the same study; the first difference as a sentence.
fn same_study(a: &Results, b: &Results) -> Option<String> {
    let fields: [(&str, bool); 9] = [
        ("kind", a.kind == b.kind),
        ("perllm version", a.perllm_version == b.perllm_version),
        ("scenario", a.scenario == b.scenario),
        ("cost model", a.cost_model == b.cost_model),
        ("policies", a.policies == b.policies),
        ("seeds", a.seeds == b.seeds),
        ("swept parameters", a.parameters == b.parameters),
        ("reference policy", a.reference == b.reference),
        ("grid size", a.runs == b.runs),
    ];
    fields
        .iter()
        .find(|(_, same)| !same)
        .map(|(what, _)| what.to_string())
}

/// Merge parts into one results document (rows in grid order, no shard, summary recomputed).
pub fn merge_parts(parts: Vec<(String, Results)>) -> Result<Results> {
    let (first_name, first) = &parts[0];
    let count = match first.shard {
        Some(s) => s.count,
        None => {
            return Err(CliError::input(format!(
                "`{first_name}` is not a shard (it was not produced with `--shard K/N`)"
            )));
        }
    };
    let mut seen = vec![None::<&str>; count as usize];
    for (name, p) in &parts {
        if let Some(what) = same_study(first, p) {
            return Err(CliError::input(format!(
                "`{name}` is from a different study than `{first_name}`: the {what} differ"
            )));
        }
        let s = p.shard.ok_or_else(|| {
            CliError::input(format!(
                "`{name}` is not a shard (it was not produced with `--shard K/N`)"
            ))
        })?;
        if s.count != count {
            return Err(CliError::input(format!(
                "`{name}` is shard {}/{} but `{first_name}` is one of {count} shards",
                s.index, s.count
            )));
        }
        if let Some(other) = seen[(s.index - 1) as usize].replace(name) {
            return Err(CliError::input(format!(
                "`{name}` and `{other}` are both shard {}/{count}",
                s.index
            )));
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is_none())
        .map(|(i, _)| format!("{}/{count}", i + 1))
        .collect();
    if !missing.is_empty() {
        let (noun, verb) = if missing.len() == 1 {
            ("shard", "is")
        } else {
            ("shards", "are")
        };
        return Err(CliError::input(format!(
            "{noun} {} {verb} missing",
            missing.join(", ")
        )));
    }
    let mut merged = first.clone();
    merged.shard = None;
    let mut pairs: Vec<_> = parts
        .iter()
        .flat_map(|(_, p)| p.rows.iter().cloned().zip(p.details.iter().cloned()))
        .collect();
    pairs.sort_by_key(|(r, _)| r.run);
    for (i, (r, d)) in pairs.iter().enumerate() {
        if r.run != i as u64 || d.run != r.run {
            return Err(CliError::input(format!(
                "the parts do not hold run {i} of the grid exactly once"
            )));
        }
    }
    if pairs.len() as u64 != merged.runs {
        return Err(CliError::input(format!(
            "the parts hold {} runs, the grid has {}",
            pairs.len(),
            merged.runs
        )));
    }
    (merged.rows, merged.details) = pairs.into_iter().unzip();
    // Each part holds the bounds of the (point, seed) pairs it ran: keep one of each.
    let mut bounds: Vec<_> = parts.iter().flat_map(|(_, p)| p.bounds.clone()).collect();
    bounds.sort_by_key(|b| (b.point, b.seed));
    bounds.dedup_by_key(|b| (b.point, b.seed));
    merged.bounds = bounds;
    merged.resummarise();
    Ok(merged)
}

/// `perllm merge`.
pub fn merge(args: MergeArgs, term: Term) -> Result<()> {
    let mut parts = Vec::new();
    for p in &args.parts {
        parts.push((p.display().to_string(), Results::read(p)?));
    }
    let mut out = Outputs::new();
    let json = out.open(&args.out)?;
    let csv = args.csv.as_deref().map(|c| out.open(c)).transpose()?;
    let merged = merge_parts(parts)?;
    json.write_text(&merged.to_json())?;
    if let Some(c) = csv {
        c.write_text(&merged.rows_csv())?;
    }
    out.commit()?;
    term.info(&format!(
        "merged {} parts ({} runs) into {}",
        args.parts.len(),
        merged.runs,
        args.out.display()
    ));
    Ok(())
}

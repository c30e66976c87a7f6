//! `perllm merge`: combine the shards of a study into what one machine would have produced.

use crate::cli::MergeArgs;
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::results::Results;
use crate::term::Term;
use crate::util::Shard;
use std::collections::BTreeMap;

/// Check that two parts belong to the same study; the first difference as a sentence
/// ("their seeds differ (`a.json`: 1, 2; `b.json`: 1, 2, 3)").
fn same_study(a: &Results, an: &str, b: &Results, bn: &str) -> Option<String> {
    let list = |xs: Vec<String>| xs.join(", ");
    let names = |r: &Results| list(r.policies.iter().map(|p| p.name.clone()).collect());
    let seeds = |r: &Results| list(r.seeds.iter().map(u64::to_string).collect());
    let params = |r: &Results| {
        list(
            r.parameters
                .iter()
                .map(|p| format!("{}={}", p.key, p.values.join(",")))
                .collect(),
        )
    };
    let scenario = |r: &Results| format!("{} {}", r.scenario.file, r.scenario.hash);
    let cost = |r: &Results| format!("{} {}", r.cost_model.name, r.cost_model.version);
    let reference = |r: &Results| r.reference.clone().unwrap_or_else(|| "none".into());
    #[allow(clippy::type_complexity)]
    let fields: [(&str, &str, &dyn Fn(&Results) -> String, bool); 10] = [
        ("kind", "differs", &|r| r.kind.clone(), a.kind == b.kind),
        (
            "perllm version",
            "differs",
            &|r| r.perllm_version.clone(),
            a.perllm_version == b.perllm_version,
        ),
        ("scenario", "differs", &scenario, a.scenario == b.scenario),
        ("cost model", "differs", &cost, a.cost_model == b.cost_model),
        (
            "cost model config",
            "differs",
            &|r| r.cost_config.to_string(),
            a.cost_config == b.cost_config,
        ),
        ("policies", "differ", &names, a.policies == b.policies),
        ("seeds", "differ", &seeds, a.seeds == b.seeds),
        (
            "swept parameters",
            "differ",
            &params,
            a.parameters == b.parameters,
        ),
        (
            "reference policy",
            "differs",
            &reference,
            a.reference == b.reference,
        ),
        (
            "grid size",
            "differs",
            &|r| r.runs.to_string(),
            a.runs == b.runs,
        ),
    ];
    fields.iter().find(|f| !f.3).map(|(what, verb, show, _)| {
        let (x, y) = (show(a), show(b));
        if x == y || x.len() + y.len() > 200 {
            // Same summary (e.g. a policy's version or description changed): name the field only.
            format!("their {what} {verb}")
        } else {
            format!("their {what} {verb} (`{an}`: {x}; `{bn}`: {y})")
        }
    })
}

/// At most this many missing shards are named in an error (then they are counted).
const MAX_MISSING_NAMED: usize = 10;

/// The shard of part `name`, checked against its grid: `1 <= K <= N <= runs`, and every row
/// belongs to the grid and to this shard.
fn part_shard(name: &str, p: &Results) -> Result<Shard> {
    let s = p.shard.ok_or_else(|| {
        CliError::input(format!(
            "`{name}` is not a shard (it was not produced with `--shard K/N`)"
        ))
    })?;
    s.check(p.runs)
        .map_err(|m| CliError::input(format!("`{name}` is not a valid part: {m}")))?;
    if let Some(r) = p.rows.iter().find(|r| r.run >= p.runs || !s.owns(r.run)) {
        return Err(CliError::input(format!(
            "`{name}` is not a valid part: it holds run {} of a {}-run grid, which is not in \
             shard {}/{}",
            r.run, p.runs, s.index, s.count
        )));
    }
    Ok(s)
}

/// Merge parts into one results document (rows in grid order, no shard, summary recomputed).
///
/// Memory is proportional to the parts' rows, whatever shard counts and grid sizes they claim.
pub fn merge_parts(parts: Vec<(String, Results)>) -> Result<Results> {
    let Some((first_name, first)) = parts.first() else {
        return Err(CliError::input("nothing to merge: give the parts' files"));
    };
    let count = part_shard(first_name, first)?.count;
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, p) in &parts {
        if let Some(what) = same_study(first, first_name, p, name) {
            return Err(CliError::input(format!(
                "`{name}` is from a different study than `{first_name}`: {what}"
            )));
        }
        let s = part_shard(name, p)?;
        if s.count != count {
            return Err(CliError::input(format!(
                "`{name}` is shard {}/{} but `{first_name}` is one of {count} shards",
                s.index, s.count
            )));
        }
        if let Some(other) = seen.insert(s.index, name) {
            return Err(CliError::input(format!(
                "`{name}` and `{other}` are both shard {}/{count}",
                s.index
            )));
        }
    }
    let n_missing = count - seen.len() as u64;
    if n_missing > 0 {
        let missing: Vec<String> = (1..=count)
            .filter(|k| !seen.contains_key(k))
            .take(MAX_MISSING_NAMED)
            .map(|k| format!("{k}/{count}"))
            .collect();
        let (noun, verb) = if n_missing == 1 {
            ("shard", "is")
        } else {
            ("shards", "are")
        };
        let more = if n_missing > missing.len() as u64 {
            format!(" and {} more", n_missing - missing.len() as u64)
        } else {
            String::new()
        };
        return Err(CliError::input(format!(
            "{noun} {}{more} {verb} missing",
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
    // Runs that failed have no row: a part lists them in `failed`.
    let mut failed: Vec<_> = parts.iter().flat_map(|(_, p)| p.failed.clone()).collect();
    failed.sort_by_key(|f| f.run);
    if let Some((r, d)) = pairs.iter().find(|(r, d)| d.run != r.run) {
        return Err(CliError::input(format!(
            "run {} of the grid has the plot details of run {}",
            r.run, d.run
        )));
    }
    let mut held: Vec<u64> = pairs
        .iter()
        .map(|(r, _)| r.run)
        .chain(failed.iter().map(|f| f.run))
        .collect();
    held.sort_unstable();
    for (i, &r) in held.iter().enumerate() {
        if r != i as u64 {
            return Err(CliError::input(format!(
                "the parts do not hold run {i} of the grid exactly once"
            )));
        }
    }
    if held.len() as u64 != merged.runs {
        return Err(CliError::input(format!(
            "the parts hold {} runs, the grid has {}",
            held.len(),
            merged.runs
        )));
    }
    merged.failed = failed;
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
    out.refuse_inputs(&crate::inputs::parts(&args.parts, "a merge part"))?;
    out.report_created(&term);
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
    if !merged.failed.is_empty() {
        let runs: Vec<String> = merged.failed.iter().map(|f| f.run.to_string()).collect();
        eprintln!(
            "warning: {} run{} of the grid failed in {} part and {} listed in `failed`, not in the rows: {}",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            if runs.len() == 1 { "its" } else { "their" },
            if runs.len() == 1 { "is" } else { "are" },
            runs.join(", ")
        );
    }
    Ok(())
}

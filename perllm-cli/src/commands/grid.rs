//! `perllm compare` and `perllm sweep`: a grid of (point, policy, seed) runs, in parallel.
//!
//! Grid order is point-major, then policy, then seed: run `i` of a grid with P policies and S
//! seeds is point `i / (P S)`, policy `(i / S) % P`, seed `i % S`. A shard `K/N` runs the entries
//! with `i % N == K - 1`. Every run is a pure function of its entry, and results are collected in
//! grid order, so the output does not depend on `--jobs`, on scheduling, or on sharding.

use crate::catalog::{BudgetUse, Catalog, ComponentInfo};
use crate::cli::{CompareArgs, Format, GridArgs, SweepArgs};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::provenance::{PERLLM_VERSION, scenario_hash};
use crate::results::{
    Metrics, Parameter, RESULTS_SCHEMA, RESULTS_SCHEMA_VERSION, Results, Row, ScenarioInfo,
    param_value,
};
use crate::runner::{Details, execute};
use crate::scenario::Loaded;
use crate::term::{Term, print_stdout};
use crate::util::{Setting, parse_seeds};
use perllm_core::{Policy, Scenario, World};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// `perllm compare`.
pub fn compare(args: CompareArgs, term: Term) -> Result<()> {
    // `--set k=a,b` is a sweep: if the scenario refuses such a value, say where lists go.
    let lists: Vec<(String, String)> = args
        .set
        .iter()
        .filter(|(_, v)| crate::util::split_values(v).len() > 1)
        .cloned()
        .collect();
    let file = args.grid.file.clone();
    run_grid(args.grid, args.set, Vec::new(), "compare", term).map_err(|mut e| {
        let refused = |k: &str| {
            e.detail
                .as_deref()
                .is_some_and(|d| d.contains(&format!("--set {k}")))
        };
        if let Some((k, v)) = lists.iter().find(|(k, _)| refused(k)) {
            e.message = format!(
                "{}\nhelp: `compare` runs every policy at one setting; to run each of several values \
                 of `{k}`, use `perllm sweep {} --set {k}={v}`",
                e.message,
                file.display()
            );
        }
        e
    })
}

/// `perllm sweep`.
pub fn sweep(args: SweepArgs, term: Term) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for s in &args.set {
        if !seen.insert(s.key.as_str()) {
            return Err(CliError::input(format!(
                "`--set {}` is given twice; list all its values in one `--set`",
                s.key
            )));
        }
    }
    run_grid(args.grid, Vec::new(), args.set, "sweep", term)
}

/// One sweep point: its overrides and scenario.
struct Point {
    params: BTreeMap<String, Value>,
    scenario: Scenario,
    hash: String,
    loaded: Loaded,
}

/// The cartesian product of the settings' values, first setting outermost.
fn cartesian(settings: &[Setting]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for s in settings {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                s.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((s.key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    out
}

struct Task {
    run: u64,
    point: usize,
    policy: String,
    seed: u64,
    world: World,
    instance: Box<dyn Policy>,
}

fn run_grid(
    args: GridArgs,
    fixed: Vec<(String, String)>,
    settings: Vec<Setting>,
    kind: &str,
    term: Term,
) -> Result<()> {
    if args.jobs == Some(0) {
        return Err(CliError::input("`--jobs` must be at least 1"));
    }
    let seeds = parse_seeds(&args.seeds)?;
    let base = crate::scenario::load(&args.file, &fixed, term.color_stderr)?;
    if !base.warnings.is_empty() {
        eprint!("{}", base.warnings);
    }
    let catalog = Catalog::for_sim(&args.sim)?;
    let policies: Vec<String> = if args.policies.is_empty() {
        catalog.policy_names()
    } else {
        args.policies.iter().map(|p| p.trim().to_string()).collect()
    };
    let mut infos: Vec<ComponentInfo> = Vec::new();
    for p in &policies {
        if p.is_empty() {
            return Err(CliError::input("`--policies` has an empty name"));
        }
        if infos.iter().any(|i| &i.name == p) {
            return Err(CliError::input(format!(
                "policy `{p}` is listed twice in `--policies`"
            )));
        }
        infos.push(catalog.policy_info(p)?.clone());
    }
    let reference = match &args.reference {
        Some(r) if policies.contains(r) => r.clone(),
        Some(r) => {
            return Err(CliError::input(format!(
                "the reference policy `{r}` is not among the policies run ({})",
                policies.join(", ")
            )));
        }
        None if policies.iter().any(|p| p == "perllm") => "perllm".into(),
        None => policies[0].clone(),
    };
    let cost_info = catalog.cost_model_info(&args.sim.cost_model)?.clone();
    let cost = catalog.cost_model(&args.sim.cost_model, &args.sim.cost_config)?;

    // Load and validate every point before running anything.
    let mut points = Vec::new();
    for overrides in cartesian(&settings) {
        let loaded = if overrides.is_empty() {
            base.clone()
        } else {
            let all: Vec<(String, String)> = fixed.iter().chain(&overrides).cloned().collect();
            crate::scenario::load(&args.file, &all, term.color_stderr)?
        };
        let scenario = loaded.scenario.clone();
        crate::scenario::build(&loaded, &scenario).map_err(|mut e| {
            if !overrides.is_empty() {
                let desc: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                e.message = format!("with {}: {}", desc.join(", "), e.message);
            }
            e
        })?;
        points.push(Point {
            params: overrides
                .iter()
                .map(|(k, v)| (k.clone(), param_value(v)))
                .collect(),
            hash: scenario_hash(&scenario),
            scenario,
            loaded,
        });
    }

    let per_point = (policies.len() * seeds.len()) as u64;
    let total = per_point * points.len() as u64;
    let mut tasks = Vec::new();
    for run in 0..total {
        if args.shard.is_some_and(|s| !s.owns(run)) {
            continue;
        }
        let point = (run / per_point) as usize;
        let policy = &policies[((run / seeds.len() as u64) % policies.len() as u64) as usize];
        let seed = seeds[(run % seeds.len() as u64) as usize];
        let mut sc = points[point].scenario.clone();
        crate::scenario::apply_cli(&mut sc, Some(seed), Some(policy), args.sim.skip_bad_rows);
        let world = crate::scenario::build(&points[point].loaded, &sc)?;
        let instance = catalog.policy(&sc.policy, &world)?;
        tasks.push(Task {
            run,
            point,
            policy: policy.clone(),
            seed,
            world,
            instance,
        });
    }

    if let Some(sh) = args.shard.filter(|_| tasks.is_empty()) {
        eprintln!(
            "warning: shard {}/{} holds no run: the grid has only {total} run(s), so shards above \
             {total} are empty (its results have no rows; `merge` still needs it)",
            sh.index, sh.count
        );
    }

    // Outputs are staged before the runs (an unwritable path fails now, not after them) and
    // moved into place only if every run succeeds.
    let mut out = Outputs::new();
    let json_out = args.out.as_deref().map(|p| out.open(p)).transpose()?;
    let csv_out = args.csv.as_deref().map(|p| out.open(p)).transpose()?;
    out.report_created(&term);

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| CliError::run(format!("cannot start {jobs} worker threads: {e}")))?;
    let bar = term.progress(tasks.len() as u64, kind);
    let outcomes: Vec<Result<(Row, Details, Option<BudgetUse>)>> = pool.install(|| {
        tasks
            .into_par_iter()
            .map(|mut t| {
                let p = &points[t.point];
                let out = execute(&t.world, t.instance.as_mut(), cost.as_ref(), &mut []);
                bar.inc(1);
                let mut out = out?;
                out.details.run = t.run;
                let budget = BudgetUse::from_stats(&out.report.policy_stats);
                Ok((
                    Row {
                        run: t.run,
                        point: t.point as u64,
                        policy: t.policy,
                        seed: t.seed,
                        scenario_hash: p.hash.clone(),
                        metrics: Metrics::from_report(&out.report),
                        params: p.params.clone(),
                    },
                    out.details,
                    budget,
                ))
            })
            .collect()
    });
    bar.finish_and_clear();
    catalog.check()?;
    let mut rows = Vec::with_capacity(outcomes.len());
    let mut details = Vec::with_capacity(outcomes.len());
    let mut budgets: Vec<(String, BudgetUse)> = Vec::new();
    for o in outcomes {
        let (r, d, b) = o?;
        if let Some(b) = b {
            match budgets.iter_mut().find(|(p, _)| *p == r.policy) {
                Some((_, u)) => u.add(&b),
                None => budgets.push((r.policy.clone(), b)),
            }
        }
        rows.push(r);
        details.push(d);
    }
    for (p, u) in &budgets {
        let source = infos
            .iter()
            .find(|i| i.name == *p)
            .map_or("plugin", |i| i.source.as_str());
        if let Some(w) = u.warning(p, source) {
            eprint!("{w}");
        }
    }
    let mut results = Results {
        schema: RESULTS_SCHEMA.into(),
        schema_version: RESULTS_SCHEMA_VERSION,
        kind: kind.into(),
        perllm_version: PERLLM_VERSION.into(),
        scenario: ScenarioInfo {
            name: base.scenario.name.clone(),
            file: base.file_name(),
            hash: scenario_hash(&base.scenario),
            overrides: fixed.clone(),
        },
        cost_model: cost_info,
        policies: infos,
        seeds,
        parameters: settings
            .iter()
            .map(|s| Parameter {
                key: s.key.clone(),
                values: s.values.clone(),
            })
            .collect(),
        reference: Some(reference),
        runs: total,
        shard: args.shard,
        summary: Vec::new(),
        rows,
        details,
    };
    results.resummarise();
    if let Some(f) = json_out {
        f.write_text(&results.to_json())?;
    }
    if let Some(f) = csv_out {
        f.write_text(&results.rows_csv())?;
    }
    for p in out.commit()? {
        term.info(&format!("wrote {}", p.display()));
    }
    match args.format {
        Format::Table => print_stdout(&crate::render::summary(&results)),
        Format::Json => print_stdout(&results.to_json()),
        Format::Csv => print_stdout(&results.rows_csv()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartesian_first_outermost() {
        let s = vec![
            Setting {
                key: "a".into(),
                values: vec!["1".into(), "2".into()],
            },
            Setting {
                key: "b".into(),
                values: vec!["x".into(), "y".into(), "z".into()],
            },
        ];
        let c = cartesian(&s);
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[0],
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            c[3],
            vec![("a".into(), "2".into()), ("b".into(), "x".into())]
        );
        assert_eq!(cartesian(&[]), vec![Vec::<(String, String)>::new()]);
    }
}

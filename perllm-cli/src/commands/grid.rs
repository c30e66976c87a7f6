//! `perllm compare` and `perllm sweep`: a grid of (point, policy, seed) runs, in parallel.
//!
//! Grid order is point-major, then policy, then seed: run `i` of a grid with P policies and S
//! seeds is point `i / (P S)`, policy `(i / S) % P`, seed `i % S`. A shard `K/N` runs the entries
//! with `i % N == K - 1`. Every run is a pure function of its entry, and results are collected in
//! grid order, so the output does not depend on `--jobs`, on scheduling, or on sharding.

use crate::catalog::{BudgetUse, Catalog, ComponentInfo};
use crate::cli::{CompareArgs, Format, GridArgs, SimArgs, SweepArgs};
use crate::error::{CliError, Result};
use crate::inputs::Inputs;
use crate::output::Outputs;
use crate::provenance::{PERLLM_VERSION, scenario_hash};
use crate::results::{
    BoundRow, FailedRun, Metrics, Parameter, RESULTS_SCHEMA, RESULTS_SCHEMA_VERSION, Results, Row,
    ScenarioInfo, param_value,
};
use crate::runner::{Details, bound, execute};
use crate::scenario::Loaded;
use crate::term::{Term, print_stdout};
use crate::util::Shard;
use crate::util::{Setting, parse_seeds};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// `perllm compare`.
pub fn compare(args: CompareArgs, term: Term) -> Result<()> {
    crate::util::check_repeated("--set", &args.set)?;
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
    check_sweep_settings(&args.set)?;
    run_grid(args.grid, Vec::new(), args.set, "sweep", term)
}

/// A sweep key may be given once (its values in one `--set`).
pub fn check_sweep_settings(settings: &[Setting]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for s in settings {
        if !seen.insert(s.key.as_str()) {
            return Err(CliError::input(format!(
                "`--set {}` is given twice; list all its values in one `--set`",
                s.key
            )));
        }
    }
    Ok(())
}

/// Largest number of runs one process executes (the runs of its shard): each keeps its result
/// row and its plot details (a few KB) until the results are written. Larger studies are split
/// with `--shard`.
pub const MAX_RUNS_PER_PROCESS: u64 = 1_000_000;

/// Worker threads per available core at most: runs are CPU-bound, so more threads than this only
/// compete for the cores (a few spare ones hide the waits of plugin calls and file reads).
const MAX_JOBS_PER_CORE: usize = 4;

/// One sweep point: what its rows record.
struct PointMeta {
    params: BTreeMap<String, Value>,
    hash: String,
    /// Expected arrivals of a run at this point (the size of its runs, for the time left).
    arrivals: f64,
}

/// Number of points of the cartesian product of `settings` (1 without settings), `None` if it
/// does not fit in a u64.
fn point_count(settings: &[Setting]) -> Option<u64> {
    settings
        .iter()
        .try_fold(1u64, |n, s| n.checked_mul(s.values.len() as u64))
}

/// The overrides of point `i` of the cartesian product, first setting outermost.
fn point_overrides(settings: &[Setting], mut i: u64) -> Vec<(String, String)> {
    let mut out = vec![(String::new(), String::new()); settings.len()];
    for (slot, s) in out.iter_mut().zip(settings).rev() {
        let n = s.values.len() as u64;
        *slot = (s.key.clone(), s.values[(i % n) as usize].clone());
        i /= n;
    }
    out
}

/// The scenarios of the points being run, loaded on demand: a compare has one point (the base
/// scenario); a sweep point is loaded again from the file with its overrides when a run needs
/// it, and the last few are kept (runs of one point are consecutive in grid order).
struct Points<'a> {
    file: &'a std::path::Path,
    fixed: &'a [(String, String)],
    settings: &'a [Setting],
    base: &'a Loaded,
    color: bool,
    memory_limit: Option<u64>,
    recent: Mutex<VecDeque<(u64, Arc<Loaded>)>>,
    keep: usize,
}

impl Points<'_> {
    fn get(&self, point: u64) -> Result<Arc<Loaded>> {
        if self.settings.is_empty() {
            return Ok(Arc::new(self.base.clone()));
        }
        if let Some((_, l)) = self.lock().iter().find(|(p, _)| *p == point) {
            return Ok(l.clone());
        }
        let overrides = point_overrides(self.settings, point);
        let all: Vec<(String, String)> = self.fixed.iter().chain(&overrides).cloned().collect();
        let loaded = crate::scenario::load_limited(self.file, &all, self.memory_limit, self.color)?;
        let loaded = Arc::new(loaded);
        let mut recent = self.lock();
        if recent.len() >= self.keep {
            recent.pop_front();
        }
        recent.push_back((point, loaded.clone()));
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Arc<Loaded>)>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Load point `point` and check that it builds, and that every policy can be set up on it.
    /// Also returns the point's input files (which no output may overwrite).
    fn validate(
        &self,
        point: u64,
        policies: &[String],
        catalog: &Catalog,
        sim: &SimArgs,
    ) -> Result<(PointMeta, Inputs)> {
        let overrides = point_overrides(self.settings, point);
        let with = |mut e: CliError| {
            if !overrides.is_empty() {
                let desc: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
                e.message = format!("with {}: {}", desc.join(", "), e.message);
            }
            e
        };
        let loaded = self.get(point)?;
        let scenario = &loaded.scenario;
        let world = crate::scenario::build(&loaded, scenario).map_err(with)?;
        for p in policies {
            let mut sc = scenario.clone();
            apply_policy(&mut sc, None, p, false)?;
            let mut w = world.clone();
            w.scenario = sc;
            catalog.policy(&w.scenario.policy, &w).map_err(with)?;
        }
        let meta = PointMeta {
            params: overrides
                .iter()
                .map(|(k, v)| (k.clone(), param_value(v)))
                .collect(),
            hash: scenario_hash(scenario),
            arrivals: expected_arrivals(scenario),
        };
        Ok((meta, crate::inputs::of_sim(&loaded, scenario, sim)))
    }
}

/// The size of a grid and what one process runs of it, computed from the command line alone
/// (no scenario is loaded): every check of `--seeds`, `--set`, `--shard` and `--jobs` that does
/// not need the scenario. [`crate::fuzzing`] calls it too.
#[derive(Clone, Debug, PartialEq)]
pub struct GridPlan {
    /// Runs per sweep point (policies x seeds).
    pub per_point: u64,
    /// Runs of the whole grid.
    pub total: u64,
    /// The shard run (`1/1` without `--shard`).
    pub shard: Shard,
    /// Runs of this process.
    pub mine: u64,
    /// Worker threads.
    pub jobs: usize,
    /// The note printed when `--jobs` was capped.
    pub jobs_note: Option<String>,
}

impl GridPlan {
    /// The plan of a `kind` (`compare` or `sweep`) grid of `seeds` seeds, `policies` policies
    /// and the cartesian product of `settings`, for `shard` with `jobs` on `cores` cores.
    pub fn new(
        kind: &str,
        seeds: usize,
        policies: usize,
        settings: &[Setting],
        shard: Option<Shard>,
        jobs: Option<usize>,
        cores: usize,
    ) -> Result<GridPlan> {
        if jobs == Some(0) {
            return Err(CliError::input("`--jobs` must be at least 1"));
        }
        let per_point = (policies as u64)
            .checked_mul(seeds as u64)
            .filter(|n| *n > 0)
            .ok_or_else(|| CliError::input("the grid has no policy or no seed"))?;
        let total = point_count(settings)
            .and_then(|n| n.checked_mul(per_point))
            .ok_or_else(|| CliError::input("the grid has more than 2^64 runs"))?;
        if total == 0 {
            return Err(CliError::input("a `--set` has no value"));
        }
        let shard = shard.unwrap_or(Shard { index: 1, count: 1 });
        shard
            .check(total)
            .map_err(|m| CliError::input(format!("`--shard`: {m}")))?;
        // Runs `K-1, K-1+N, ...` below `total` (`shard.check` made `K-1 < N <= total`).
        let mine = (total - shard.index) / shard.count + 1;
        if mine > MAX_RUNS_PER_PROCESS {
            let split = total.div_ceil(MAX_RUNS_PER_PROCESS);
            return Err(CliError::input(format!(
                "this {kind} would run {mine} runs in one process, more than the \
                 {MAX_RUNS_PER_PROCESS} whose results one process keeps; split it with \
                 `--shard K/{split}` (or more shards) and combine the parts with `perllm merge`"
            )));
        }
        let cores = cores.max(1);
        let useful = (cores.saturating_mul(MAX_JOBS_PER_CORE))
            .min(usize::try_from(mine).unwrap_or(usize::MAX))
            .max(1);
        let (jobs, jobs_note) = match jobs {
            Some(j) if j > useful => {
                let why = if useful as u64 == mine {
                    "the number of runs to do".to_string()
                } else {
                    format!(
                        "{MAX_JOBS_PER_CORE} per core on {cores} core{}",
                        if cores == 1 { "" } else { "s" }
                    )
                };
                (
                    useful,
                    Some(format!("note: `--jobs {j}` capped at {useful} ({why})")),
                )
            }
            Some(j) => (j, None),
            None => (cores.min(useful), None),
        };
        Ok(GridPlan {
            per_point,
            total,
            shard,
            mine,
            jobs,
            jobs_note,
        })
    }
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
    let base = crate::scenario::load_and_warn(&args.file, &fixed, args.sim.memory_limit, &term)?;
    let catalog = args.sim.catalog()?;
    let policies: Vec<String> = if args.policies.is_empty() {
        catalog.policy_names()
    } else {
        split_policies(&args.policies)?
            .into_iter()
            .map(|p| {
                let (name, rest) = p.split_at(p.find('{').unwrap_or(p.len()));
                let name = name.trim();
                let c = perllm_core::policies::canonical(name);
                if c != name {
                    eprintln!(
                        "note: policy `{name}` is now called `{c}` (a reference policy that knows the \
                         true mean costs, not a bound; the goodput bound is reported as `bound`)"
                    );
                }
                format!("{c}{rest}")
            })
            .collect()
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
        let (name, _) = parse_policy(p)?;
        let mut info = catalog.policy_info(&name)?.clone();
        // Rows and summaries name the policy as listed, with its parameters.
        info.name = p.clone();
        infos.push(info);
    }
    let isolated: Vec<&str> = policies
        .iter()
        .map(|p| p.split('{').next().unwrap_or(p).trim())
        .filter(|p| catalog.is_isolated(p))
        .collect();
    if !isolated.is_empty() {
        term.info(&format!(
            "note: plugin polic{} {} run{} in separate worker processes, so that a crash or a hang \
             ends one run only (--isolate never runs {} in this process)",
            if isolated.len() == 1 { "y" } else { "ies" },
            isolated.join(", "),
            if isolated.len() == 1 { "s" } else { "" },
            if isolated.len() == 1 { "it" } else { "them" },
        ));
    }
    let reference = args
        .reference
        .as_deref()
        .map(|r| perllm_core::policies::canonical(r).to_string());
    let reference = match &reference {
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

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plan = GridPlan::new(
        kind,
        seeds.len(),
        policies.len(),
        &settings,
        args.shard,
        args.jobs,
        cores,
    )?;
    if let Some(note) = &plan.jobs_note {
        term.info(note);
    }
    let GridPlan {
        per_point,
        total,
        shard,
        mine,
        jobs,
        ..
    } = plan;
    let n_seeds = seeds.len() as u64;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| CliError::run(format!("cannot start {jobs} worker threads: {e}")))?;

    // Load and validate every point this process runs before running anything; keep only what
    // the rows record.
    let points = Points {
        file: &args.file,
        fixed: &fixed,
        settings: &settings,
        base: &base,
        color: term.color_stderr,
        memory_limit: args.sim.memory_limit,
        recent: Mutex::new(VecDeque::new()),
        keep: 2 * jobs,
    };
    let my_points: Vec<u64> = {
        let mut v: Vec<u64> = Vec::new();
        for run in shard.runs(total) {
            let p = run / per_point;
            if v.last() != Some(&p) {
                v.push(p);
            }
        }
        v
    };
    // The first invalid point stops the validation.
    let validated: Vec<(u64, PointMeta, Inputs)> = pool.install(|| {
        my_points
            .par_iter()
            .map(|&p| {
                let (meta, inputs) = points.validate(p, &policies, &catalog, &args.sim)?;
                Ok((p, meta, inputs))
            })
            .collect::<Result<_>>()
    })?;
    drop(my_points);
    let mut metas: BTreeMap<u64, PointMeta> = BTreeMap::new();
    let mut inputs: BTreeSet<(String, std::path::PathBuf)> = BTreeSet::new();
    for (p, meta, ins) in validated {
        metas.insert(p, meta);
        inputs.extend(ins);
    }
    // Outputs are staged before the runs (an unwritable path fails now, not after them) and
    // moved into place only if every run succeeds.
    let mut out = Outputs::new();
    let json_out = args.out.as_deref().map(|p| out.open(p)).transpose()?;
    let csv_out = args.csv.as_deref().map(|p| out.open(p)).transpose()?;
    out.refuse_inputs(&inputs.into_iter().collect::<Inputs>())?;
    out.report_created(&term);

    // Time left from what is left: each run weighs its expected arrivals, each policy's cost
    // per arrival is learnt as its runs finish.
    let eta = std::sync::Arc::new(crate::eta::Eta::new(
        (0..mine)
            .map(|j| metas[&((start_of(&shard) + j * shard.count) / per_point)].arrivals)
            .collect(),
        (0..mine)
            .map(|j| {
                (((start_of(&shard) + j * shard.count) / n_seeds) % policies.len() as u64) as usize
            })
            .collect(),
        policies.len(),
        jobs,
    ));
    let bar = term.progress_eta(mine, kind, eta.clone());
    let start = shard.index - 1;
    // A run that its policy fails (a plugin's error, crash or hang) is recorded and the others
    // go on; any other failure (a point that does not load, a bad trace row, which every run
    // would meet) stops the grid.
    let outcomes: Result<Vec<RunResult>> = pool.install(|| {
        (0..mine)
            .into_par_iter()
            .map(|j| {
                let run = start + j * shard.count;
                let point = run / per_point;
                let policy = &policies[((run / n_seeds) % policies.len() as u64) as usize];
                let seed = seeds[(run % n_seeds) as usize];
                let loaded = points.get(point)?;
                let mut sc = loaded.scenario.clone();
                apply_policy(&mut sc, Some(seed), policy, args.sim.skip_bad_rows)?;
                let world = crate::scenario::build(&loaded, &sc)?;
                drop(loaded);
                let began = std::time::Instant::now();
                let out =
                    catalog
                        .policy_for_run(&sc.policy, &world)
                        .and_then(|(mut instance, check)| {
                            let out = execute(&world, instance.as_mut(), cost.as_ref(), &mut [])?;
                            drop(instance);
                            check.check().map_err(|e| {
                                CliError::run(format!(
                                    "the run of policy `{}` with seed {seed} failed: {e}",
                                    sc.policy.name
                                ))
                            })?;
                            Ok(out)
                        });
                eta.finished(j as usize, began.elapsed().as_secs_f64());
                bar.inc(1);
                let mut out = match out {
                    Ok(o) => o,
                    Err(e) if e.kind == crate::error::Kind::Policy => {
                        return Ok(Err(FailedRun {
                            run,
                            point,
                            policy: policy.clone(),
                            seed,
                            error: e.message,
                        }));
                    }
                    Err(e) => return Err(e),
                };
                out.details.run = run;
                let budget = BudgetUse::from_stats(&out.report.policy_stats);
                let meta = &metas[&point];
                Ok(Ok((
                    Row {
                        run,
                        point,
                        policy: policy.clone(),
                        seed,
                        scenario_hash: meta.hash.clone(),
                        metrics: Metrics::from_report(&out.report),
                        params: meta.params.clone(),
                    },
                    out.details,
                    budget,
                )))
            })
            .collect()
    });
    let (outcomes, failed): (Vec<_>, Vec<_>) = match outcomes {
        Ok(o) => o.into_iter().partition(std::result::Result::is_ok),
        Err(e) => {
            bar.finish_and_clear();
            return Err(e);
        }
    };
    let outcomes: Vec<(Row, Details, Option<BudgetUse>)> =
        outcomes.into_iter().filter_map(|r| r.ok()).collect();
    let failed: Vec<FailedRun> = failed.into_iter().filter_map(|r| r.err()).collect();
    // The goodput bound of each (point, seed) this process ran at least one policy of.
    let pairs: BTreeSet<(u64, u64)> = outcomes.iter().map(|(r, _, _)| (r.point, r.seed)).collect();
    let bounds: Result<Vec<BoundRow>> = pool.install(|| {
        pairs
            .into_par_iter()
            .map(|(point, seed)| {
                let loaded = points.get(point)?;
                let mut sc = loaded.scenario.clone();
                crate::scenario::apply_cli(&mut sc, Some(seed), None, args.sim.skip_bad_rows);
                let world = crate::scenario::build(&loaded, &sc)?;
                drop(loaded);
                let (bound, error) = match bound(&world, cost.as_ref()) {
                    Ok(b) => (Some(b), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                Ok(BoundRow {
                    point,
                    seed,
                    bound,
                    error,
                })
            })
            .collect()
    });
    bar.finish_and_clear();
    catalog.check()?;
    let bounds = bounds?;
    let mut rows = Vec::with_capacity(outcomes.len());
    let mut details = Vec::with_capacity(outcomes.len());
    let mut budgets: Vec<(String, BudgetUse)> = Vec::new();
    for (r, d, b) in outcomes {
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
            term.eprint_rendered(&w);
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
        cost_config: crate::results::cost_config_value(&args.sim.cost_config),
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
        bounds,
        failed,
    };
    results.resummarise();
    if let Some(f) = json_out {
        f.write_text(&results.to_json())?;
    }
    if let Some(f) = csv_out {
        f.write_text(&results.rows_csv())?;
    }
    let to_stdout = out.uses_stdout();
    for p in out.commit()? {
        term.info(&format!("wrote {}", p.display()));
    }
    if !to_stdout {
        // (When an output went to standard output, nothing else is printed there.)
        match args.format {
            Format::Table => print_stdout(&crate::render::summary(&results))?,
            Format::Json => print_stdout(&results.to_json())?,
            Format::Csv => print_stdout(&results.rows_csv())?,
        }
    }
    failed_runs_error(&results.failed, mine)
}

/// The error (exit code 1) listing the runs that failed, if any; the others were kept.
fn failed_runs_error(failed: &[FailedRun], ran: u64) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let list: String = failed
        .iter()
        .map(|f| {
            format!(
                "  run {} (policy {}, seed {}{}): {}\n",
                f.run,
                f.policy,
                f.seed,
                if f.point > 0 {
                    format!(", point {}", f.point)
                } else {
                    String::new()
                },
                f.error
            )
        })
        .collect();
    Err(CliError::run(format!(
        "{} of {ran} runs failed (listed above and in the results' `failed`); the results hold the other {}",
        failed.len(),
        ran - failed.len() as u64
    ))
    .with_detail(format!("failed runs:\n{list}")))
}

/// One run's result: its row, plot details and budget use, or why it failed.
type RunResult = std::result::Result<(Row, Details, Option<BudgetUse>), FailedRun>;

/// Index of a shard's first run.
fn start_of(shard: &Shard) -> u64 {
    shard.index - 1
}

/// Expected arrivals of a run of `sc`: mean rate times the arrival window (a trace counts its
/// window only: its rate is not known before it is read).
fn expected_arrivals(sc: &perllm_core::Scenario) -> f64 {
    let secs = sc.duration_ns as f64 / 1e9;
    if sc.workload.trace.is_some() {
        return secs.max(1e-9);
    }
    (sc.workload.arrivals.rates(sc.duration_ns).1 * secs).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_first_setting_outermost() {
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
        assert_eq!(point_count(&s), Some(6));
        assert_eq!(
            point_overrides(&s, 0),
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            point_overrides(&s, 3),
            vec![("a".into(), "2".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            point_overrides(&s, 5),
            vec![("a".into(), "2".into()), ("b".into(), "z".into())]
        );
        assert_eq!(point_count(&[]), Some(1));
        assert!(point_overrides(&[], 0).is_empty());
        let huge = Setting {
            key: "c".into(),
            values: vec!["1".into(); 1 << 16],
        };
        assert_eq!(
            point_count(&[huge.clone(), huge.clone(), huge.clone(), huge]),
            None
        );
    }
}

/// The `--policies` values split at the commas outside braces: `perllm,perllm{a=1,b=2}` is two
/// policies.
pub(crate) fn split_policies(args: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let mut depth = 0i32;
        let mut cur = String::new();
        for c in arg.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return Err(CliError::input(format!(
                    "`--policies {arg}`: a `}}` without its `{{`"
                )));
            }
            if c == ',' && depth == 0 {
                out.push(std::mem::take(&mut cur).trim().to_string());
            } else {
                cur.push(c);
            }
        }
        if depth != 0 {
            return Err(CliError::input(format!(
                "`--policies {arg}`: a `{{` without its `}}`"
            )));
        }
        out.push(cur.trim().to_string());
    }
    Ok(out)
}

/// A `--policies` entry: `name` or `name{key=value,...}`.
fn parse_policy(entry: &str) -> Result<(String, Vec<(String, String)>)> {
    let Some(open) = entry.find('{') else {
        return Ok((entry.to_string(), Vec::new()));
    };
    let bad = |why: &str| {
        CliError::input(format!(
            "`--policies`: `{entry}`: {why} (write `name{{key=value,key=value}}`)"
        ))
    };
    let name = entry[..open].trim();
    if name.is_empty() {
        return Err(bad("no policy name before `{`"));
    }
    let Some(inner) = entry[open + 1..].strip_suffix('}') else {
        return Err(bad("text after the closing `}`"));
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for kv in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(bad(&format!("`{kv}` is not key=value")));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(bad(&format!("`{kv}` has an empty key or value")));
        }
        if params.iter().any(|(p, _)| p == k) {
            return Err(bad(&format!("`{k}` is given twice")));
        }
        params.push((k.to_string(), v.to_string()));
    }
    Ok((name.to_string(), params))
}

/// Set the scenario's policy to the `--policies` entry `entry` (its parameters over the
/// scenario's when the scenario names the same policy), and the seed.
fn apply_policy(
    sc: &mut perllm_core::Scenario,
    seed: Option<u64>,
    entry: &str,
    skip_bad_rows: bool,
) -> Result<()> {
    let (name, params) = parse_policy(entry)?;
    crate::scenario::apply_cli(sc, seed, Some(&name), skip_bad_rows);
    for (k, v) in params {
        sc.policy
            .params
            .insert(k, crate::commands::run::param_value(&v));
    }
    Ok(())
}

#[cfg(test)]
mod policy_entry_tests {
    use super::*;

    #[test]
    fn entries_split_outside_braces_and_parse() {
        let v =
            split_policies(&["perllm, perllm{exploration=0.1, window=5},greedy".into()]).unwrap();
        assert_eq!(v, ["perllm", "perllm{exploration=0.1, window=5}", "greedy"]);
        let (n, p) = parse_policy(&v[1]).unwrap();
        assert_eq!(n, "perllm");
        assert_eq!(
            p,
            [
                ("exploration".to_string(), "0.1".to_string()),
                ("window".to_string(), "5".to_string())
            ]
        );
        assert!(split_policies(&["perllm{a=1".into()]).is_err());
        assert!(split_policies(&["perllm}".into()]).is_err());
        for bad in [
            "{a=1}",
            "perllm{a}",
            "perllm{a=1}x",
            "perllm{a=1,a=2}",
            "perllm{=1}",
        ] {
            assert!(parse_policy(bad).is_err(), "{bad}");
        }
    }
}

//! How far an offline schedule that knows the arrival sequence gets, against the goodput bound
//! (docs/perllm-policy.md, "The goodput bound"): runs `perllm_core::clairvoyant` on a scenario
//! over seeds and prints, per seed and on average, its deadline-met requests and goodput and the
//! bound's.
//!
//! ```text
//! cargo run --release -p perllm-cli --example clairvoyant -- examples/paper-33b.perllm \
//!     workload.arrivals.rate=0.25/s 1..10
//! ```
//!
//! A value may be a comma-separated list (`workload.arrivals.rate=0.25/s,0.5/s`): one block per
//! value. With `CLAIRVOYANT_JSON=FILE` it also writes every value's per-seed figures as JSON
//! (`"schema": "perllm.offline"`), which `perllm-paper table --offline NAME=FILE` puts beside
//! the online policies and the bound (`scripts/reproduce-paper.sh` does both).

use perllm_core::clairvoyant::{Clairvoyant, PlanParams};
use perllm_core::workload::{Reader, source_for};
use perllm_core::{Roofline, bound};
use std::path::Path;

/// With `CLAIRVOYANT_DUMP=FILE`: one line per request of the last seed (arrival, model, SLO,
/// tokens, best-case time and where, met or not) for comparing with a policy's `--requests` CSV.
#[derive(Default)]
struct Dump {
    rows: std::collections::BTreeMap<u64, String>,
}

impl perllm_core::Observer for Dump {
    fn on_completion(&mut self, o: &perllm_core::Outcome) {
        self.rows.insert(
            o.request.id,
            format!(
                "completed,{},{},{:.3}",
                o.server,
                o.met,
                o.total_ns as f64 / 1e9
            ),
        );
    }
    fn on_rejection(
        &mut self,
        _now: u64,
        r: &perllm_core::Request,
        why: perllm_core::RejectReason,
    ) {
        self.rows.insert(r.id, format!("rejected {why:?},,false,"));
    }
}

/// The plans tried (the first is `Clairvoyant::new`'s): margins over the best case, how many
/// requests of one model may overlap, tightest deadline first or arrival order.
fn plans() -> Vec<PlanParams> {
    let mut out = vec![PlanParams::default()];
    for (margin, min_margin) in [(1.08, 1.03), (1.05, 1.02), (1.12, 1.05), (1.03, 1.01)] {
        for max_same_model in [8, 4, 16] {
            for by_arrival in [false, true] {
                let p = PlanParams {
                    margin,
                    min_margin,
                    max_same_model,
                    by_arrival,
                };
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    if std::env::var_os("CLAIRVOYANT_ONE_PLAN").is_some() {
        out.truncate(1);
    }
    out
}

fn open(path: &str) -> std::io::Result<Reader> {
    Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
        path,
    )?)))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: clairvoyant SCENARIO [KEY=VALUE ...] FIRST..LAST";
    let (file, rest) = args.split_first().ok_or(usage)?;
    let (seeds, sets) = rest.split_last().ok_or(usage)?;
    let (a, b) = seeds.split_once("..").ok_or(usage)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| usage)?, b.parse().map_err(|_| usage)?);
    let overrides: Vec<(String, String)> = sets
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or(usage)
        })
        .collect::<Result<_, _>>()?;
    // A comma-separated value: one block per value (at most one such key).
    let listed = overrides.iter().position(|(_, v)| v.contains(','));
    let values: Vec<String> = match listed {
        Some(i) => overrides[i].1.split(',').map(str::to_string).collect(),
        None => vec![String::new()],
    };
    let mut points = Vec::new();
    for value in values {
        let mut overrides = overrides.clone();
        if let Some(i) = listed {
            overrides[i].1 = value.clone();
            println!("{}={value}", overrides[i].0);
        }
        let loaded = perllm_dsl::load_file_with_overrides(Path::new(file), &overrides)
            .map_err(|e| format!("{e:?}"))?;
        let seeds = one_value(&loaded, a, b)?;
        points.push(serde_json::json!({
            "set": overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "value": listed.map(|i| overrides[i].1.clone()),
            "seeds": seeds,
        }));
    }
    if let Ok(path) = std::env::var("CLAIRVOYANT_JSON") {
        let doc = serde_json::json!({
            "schema": "perllm.offline",
            "reference": "clairvoyant",
            "about": "an offline schedule that knows the arrival sequence in advance (perllm_core::clairvoyant): no online policy can run it",
            "scenario": file,
            "key": listed.map(|i| overrides[i].0.clone()),
            "points": points,
        });
        let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| format!("cannot write `{path}`: {e}"))?;
    }
    Ok(())
}

/// Runs the clairvoyant reference over seeds `a..=b` of one scenario, prints a line per seed and
/// the means, and returns the per-seed figures.
fn one_value(
    loaded: &perllm_dsl::Loaded,
    a: u64,
    b: u64,
) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    let (mut met_sum, mut bound_sum, mut mean_sum, mut n) = (0.0, 0.0, 0.0, 0.0);
    println!(
        "seed  arrived  met  bound  goodput  bound_goodput  held  vs_bound  noise_lucky  bound_at_mean_noise"
    );
    for seed in a..=b {
        let mut sc = loaded.scenario.clone();
        sc.seed = seed;
        let world = sc.build().map_err(|e| format!("{e:?}"))?;
        let mut requests = Vec::new();
        let mut src = source_for(&world, &open).map_err(|e| e.to_string())?;
        while let Some(r) = src.next_request() {
            requests.push(r.map_err(|e| e.to_string())?);
        }
        let cost = Roofline::default();
        let bd = bound::compute(&world, &cost, &requests).map_err(|e| e.to_string())?;
        // Requests the bound counts only because every one of their steps may run at the low end
        // of the step noise: infeasible everywhere with the noise at its mean.
        let mut mean_world = world.clone();
        mean_world.scenario.sim.step_noise = 0.0;
        let feasible = |w: &perllm_core::World, q: &perllm_core::Request| {
            let d = w.slos[q.slo as usize].deadline_ns as f64 / 1e9;
            w.servers
                .iter()
                .any(|s| bound::best_case(w, &cost, q, s.id).is_some_and(|b| b.latency_s <= d))
        };
        let lucky = requests
            .iter()
            .filter(|q| feasible(&world, q) && !feasible(&mean_world, q))
            .count();
        let mean_bd = bound::compute(&mean_world, &cost, &requests).map_err(|e| e.to_string())?;
        // Knowing the future (arrivals and, through the seed, the step noise), an offline
        // schedule may simulate several plans and keep the one that meets the most deadlines.
        let mut best: Option<(perllm_core::Report, Dump, usize)> = None;
        for (i, pp) in plans().iter().enumerate() {
            let mut policy = Clairvoyant::with_params(&world, &requests, pp);
            let mut src = source_for(&world, &open).map_err(|e| e.to_string())?;
            let mut dump = Dump::default();
            let r = perllm_core::run(&world, &mut policy, &cost, src.as_mut(), &mut [&mut dump])
                .map_err(|e| e.to_string())?;
            if best
                .as_ref()
                .is_none_or(|b| r.deadline_met > b.0.deadline_met)
            {
                best = Some((r, dump, i));
            }
        }
        let (r, dump, plan_index) = best.ok_or("no plan")?;
        if let Ok(path) = std::env::var("CLAIRVOYANT_DUMP") {
            let mut text = String::from(
                "request,arrival_s,model,slo,deadline_s,prompt_tokens,output_tokens,best_s,best_server,status,server,met,latency_s\n",
            );
            for q in &requests {
                let best = world
                    .servers
                    .iter()
                    .filter_map(|s| {
                        bound::best_case(&world, &cost, q, s.id).map(|b| (b.latency_s, s.id))
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                let (bs, bsv) = best.map_or((f64::NAN, u32::MAX), |b| b);
                text.push_str(&format!(
                    "{},{:.3},{},{},{},{},{},{bs:.3},{bsv},{}\n",
                    q.id,
                    q.arrival_ns as f64 / 1e9,
                    q.model,
                    q.slo,
                    world.slos[q.slo as usize].deadline_ns as f64 / 1e9,
                    q.prompt_tokens,
                    q.output_tokens,
                    dump.rows.get(&q.id).map_or("-", String::as_str)
                ));
            }
            std::fs::write(&path, text).map_err(|e| e.to_string())?;
        }
        let goodput = r.deadline_met as f64 / r.duration_s;
        let held = r
            .policy_stats
            .values
            .get("held_for_future")
            .copied()
            .unwrap_or(0.0);
        println!(
            "{seed:>4}  {:>7}  {:>3}  {:>5}  {goodput:>7.4}  {:>13.4}  {held:>4}  {:>+7.1}%  {lucky:>11}  {:>19}",
            bd.arrived,
            r.deadline_met,
            bd.deadline_met_max,
            bd.goodput_rps,
            (goodput / bd.goodput_rps - 1.0) * 100.0,
            mean_bd.deadline_met_max
        );
        out.push(serde_json::json!({
            "seed": seed,
            "plan": plan_index,
            "arrived": bd.arrived,
            "deadline_met": r.deadline_met,
            "goodput_rps": goodput,
            "bound_deadline_met_max": bd.deadline_met_max,
            "bound_goodput_rps": bd.goodput_rps,
        }));
        mean_sum += mean_bd.deadline_met_max as f64;
        met_sum += r.deadline_met as f64;
        bound_sum += bd.deadline_met_max as f64;
        n += 1.0;
    }
    println!(
        "mean: met {:.1}, bound {:.1}, clairvoyant vs bound {:+.1}%; bound at mean step noise {:.1} ({:+.1}% of the bound; clairvoyant vs it {:+.1}%)",
        met_sum / n,
        bound_sum / n,
        (met_sum / bound_sum - 1.0) * 100.0,
        mean_sum / n,
        (mean_sum / bound_sum - 1.0) * 100.0,
        (met_sum / mean_sum - 1.0) * 100.0
    );
    Ok(out)
}

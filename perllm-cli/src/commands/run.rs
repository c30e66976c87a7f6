//! `perllm run`: one simulation.

use crate::catalog::{BudgetUse, ComponentInfo};
use crate::cli::{Format, RunArgs};
use crate::error::{CliError, Result};
use crate::observers::{DecisionLog, ProgressObserver, RequestCsv};
use crate::output::Outputs;
use crate::provenance::{PERLLM_VERSION, scenario_hash};
use crate::results::{Metrics, RESULTS_SCHEMA, RESULTS_SCHEMA_VERSION, Results, Row, ScenarioInfo};
use crate::term::{Term, print_stdout};
use perllm_core::Observer;
use perllm_core::report::Report;
use perllm_core::spec::ParamValue;
use serde::Serialize;
use std::io::Write;

/// Name of the report document schema.
pub const REPORT_SCHEMA: &str = "perllm.report";
/// Version of the report document schema.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// The JSON document of one run (`run --format json`, `report.json`).
#[derive(Serialize)]
pub struct ReportDoc<'a> {
    /// Always `perllm.report`.
    pub schema: &'static str,
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// perllm version.
    pub perllm_version: &'static str,
    /// The scenario.
    pub scenario: &'a ScenarioInfo,
    /// Seed of the run.
    pub seed: u64,
    /// Parameters the policy ran with.
    pub policy_params: &'a std::collections::BTreeMap<String, ParamValue>,
    /// The policy.
    pub policy: &'a ComponentInfo,
    /// The cost model.
    pub cost_model: &'a ComponentInfo,
    /// The cost model's configuration (`--cost-config`; `{}` for none).
    pub cost_config: serde_json::Value,
    /// The simulator's report.
    pub report: &'a Report,
}

/// Run one simulation and print or write its report.
pub fn run(args: RunArgs, term: Term) -> Result<()> {
    crate::util::check_repeated("--set", &args.set)?;
    crate::util::check_repeated("--param", &args.params)?;
    let loaded =
        crate::scenario::load_and_warn(&args.file, &args.set, args.sim.memory_limit, &term)?;
    let catalog = args.sim.catalog()?;
    let hash = scenario_hash(&loaded.scenario);
    let mut sc = loaded.scenario.clone();
    crate::scenario::apply_cli(
        &mut sc,
        args.seed,
        args.policy.as_deref(),
        args.sim.skip_bad_rows,
    );
    for (k, v) in &args.params {
        sc.policy.params.insert(k.clone(), param_value(v));
    }
    let policy_info = catalog.policy_info(&sc.policy.name)?.clone();
    let cost_info = catalog.cost_model_info(&args.sim.cost_model)?.clone();
    let world = crate::scenario::build(&loaded, &sc)?;
    let cost = catalog.cost_model(&args.sim.cost_model, &args.sim.cost_config)?;
    let mut policy = catalog.policy(&sc.policy, &world)?;

    let decisions_path = args
        .decisions
        .clone()
        .or_else(|| args.out.as_ref().map(|d| d.join("decisions.jsonl")));
    let requests_path = args
        .requests
        .clone()
        .or_else(|| args.out.as_ref().map(|d| d.join("requests.csv")));
    // Every output is staged before the run (an unwritable path fails now, not after it) and
    // moved into place only once the run and the plugin check have passed (in the order
    // report, results, requests, decisions).
    if args.out.as_deref().is_some_and(|d| d.as_os_str() == "-") {
        return Err(CliError::input(
            "`--out` of `run` is a directory; for the report on standard output use `--format json`",
        ));
    }
    let mut out = Outputs::new();
    let files = match &args.out {
        Some(dir) => Some((
            out.open(&dir.join("report.json"))?,
            out.open(&dir.join("results.json"))?,
        )),
        None => None,
    };
    let mut requests = match &requests_path {
        Some(p) => {
            let f = out.open(p)?;
            let w: Box<dyn Write> = Box::new(f.into_writer());
            Some((RequestCsv::new(&world, w), p.clone()))
        }
        None => None,
    };
    let mut decisions = match &decisions_path {
        Some(p) => {
            let f = out.open(p)?;
            let w: Box<dyn Write> = Box::new(f.into_writer());
            Some((
                DecisionLog::new(&world, w, args.decisions_every_defer, args.decisions_limit),
                p.clone(),
            ))
        }
        None => None,
    };
    out.refuse_inputs(&crate::inputs::of_sim(&loaded, &sc, &args.sim))?;
    out.report_created_for(&term, args.out.as_deref());
    let bar = term.progress(1000, &format!("{} seed {}", sc.policy.name, sc.seed));
    let mut progress = ProgressObserver::new(bar.clone(), &world);
    let output = {
        let mut extra: Vec<&mut dyn Observer> = vec![&mut progress];
        if let Some((d, _)) = decisions.as_mut() {
            extra.push(d);
        }
        if let Some((r, _)) = requests.as_mut() {
            extra.push(r);
        }
        crate::runner::execute(&world, policy.as_mut(), cost.as_ref(), &mut extra)
    };
    bar.finish_and_clear();
    let output = output?;
    catalog.check()?;
    if let Some(w) = BudgetUse::from_stats(&output.report.policy_stats)
        .and_then(|u| u.warning(&policy_info.name, &policy_info.source))
    {
        term.eprint_rendered(&w);
    }
    let log_note = match decisions {
        Some((d, p)) => {
            let st = d.finish().map_err(|e| CliError::write(&p, &e))?;
            if st.truncated {
                eprintln!(
                    "warning: the decision log `{}` reached its {} limit and ends with a \
                     `truncated` line: later decisions are not in it (raise --decisions-limit)",
                    p.display(),
                    perllm_dsl::files::size_text(args.decisions_limit)
                );
            }
            Some(format!(
                "decision log `{}`: {} lines, {}{}",
                p.display(),
                st.lines,
                perllm_dsl::files::size_text(st.bytes),
                if st.folded > 0 {
                    format!(
                        "; {} repeated deferrals counted in `deferred_slots`, not logged one by \
                         one (--decisions-every-defer logs them)",
                        st.folded
                    )
                } else {
                    String::new()
                }
            ))
        }
        None => None,
    };
    if let Some((r, p)) = requests {
        r.finish()
            .map_err(|e| CliError::run(format!("cannot write `{}`: {e}", p.display())))?;
    }

    let info = ScenarioInfo {
        name: sc.name.clone(),
        file: loaded.file_name(),
        hash: hash.clone(),
        overrides: args.set.clone(),
    };
    let doc = ReportDoc {
        schema: REPORT_SCHEMA,
        schema_version: REPORT_SCHEMA_VERSION,
        perllm_version: PERLLM_VERSION,
        scenario: &info,
        seed: sc.seed,
        policy_params: &sc.policy.params,
        policy: &policy_info,
        cost_model: &cost_info,
        cost_config: crate::results::cost_config_value(&args.sim.cost_config),
        report: &output.report,
    };
    let mut doc_json = serde_json::to_string_pretty(&doc).expect("reports serialise");
    doc_json.push('\n');
    let mut results = Results {
        schema: RESULTS_SCHEMA.into(),
        schema_version: RESULTS_SCHEMA_VERSION,
        kind: "run".into(),
        perllm_version: PERLLM_VERSION.into(),
        scenario: info.clone(),
        cost_model: cost_info.clone(),
        cost_config: crate::results::cost_config_value(&args.sim.cost_config),
        policies: vec![policy_info.clone()],
        seeds: vec![sc.seed],
        parameters: Vec::new(),
        reference: Some(sc.policy.name.clone()),
        runs: 1,
        shard: None,
        summary: Vec::new(),
        rows: vec![Row {
            run: 0,
            point: 0,
            policy: sc.policy.name.clone(),
            seed: sc.seed,
            scenario_hash: hash.clone(),
            metrics: Metrics::from_report(&output.report),
            params: Default::default(),
        }],
        details: vec![output.details],
        bounds: Vec::new(),
        failed: Vec::new(),
    };
    results.resummarise();
    if let Some((report_file, results_file)) = files {
        report_file.write_text(&doc_json)?;
        results_file.write_text(&results.to_json())?;
    }
    let to_stdout = out.uses_stdout();
    let written = out.commit()?;
    if !written.is_empty() {
        term.info(&format!(
            "wrote {}",
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(n) = &log_note {
        term.info(n);
    }
    if to_stdout {
        // An output went to standard output: print nothing else there.
        return Ok(());
    }
    match args.format {
        Format::Table => print_stdout(&crate::render::report(
            &output.report,
            &hash,
            PERLLM_VERSION,
        )),
        Format::Json => print_stdout(&doc_json),
        Format::Csv => print_stdout(&results.rows_csv()),
    }
}

/// A `--param` value: a boolean or number if it reads as one, else text.
pub fn param_value(raw: &str) -> ParamValue {
    match raw {
        "true" => ParamValue::Bool(true),
        "false" => ParamValue::Bool(false),
        _ => match raw.parse::<f64>() {
            Ok(n) if n.is_finite() => ParamValue::Number(n),
            _ => ParamValue::Text(raw.to_string()),
        },
    }
}

//! Command-line arguments (clap derive).

use crate::catalog::{Catalog, DEFAULT_COST_MODEL, PluginArgs};
use crate::error::{CliError, Result};
use crate::term::ColorChoice;
use crate::util::{Setting, Shard, parse_duration, parse_override};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const ABOUT: &str =
    "Simulate edge-cloud LLM serving and compare scheduling policies (PerLLM, CS-UCB)";

const MAIN_EXAMPLES: &str = "\
Examples:
  perllm check examples/paper.perllm
  perllm run examples/paper.perllm
  perllm run examples/paper.perllm --policy greedy --seed 3 --out runs/greedy
  perllm compare examples/paper.perllm --policies perllm,cloud-only,edge-only,oracle --seeds 1..10
  perllm sweep examples/paper.perllm --set workload.arrivals.rate=2/s,4/s,8/s --out sweep.json
  perllm plot sweep.json --out plots/
  perllm plugins list --plugin target/release/";

/// The perllm command line.
#[derive(Debug, Parser)]
#[command(name = "perllm", version, about = ABOUT, after_help = MAIN_EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// When to colour messages on stderr (NO_COLOR is respected by `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// No progress bars or informational messages on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate scenario files without running them.
    #[command(
        after_help = "Examples:\n  perllm check examples/paper.perllm\n  perllm check examples/*.perllm"
    )]
    Check(CheckArgs),
    /// Write a scenario as serialised JSON (what `.json` scenarios and the scenario hash are).
    #[command(
        after_help = "Examples:\n  perllm export examples/paper.perllm > paper.json\n  perllm export examples/paper.perllm --set workload.arrivals.rate=8/s --out paper-8.json\n  perllm check paper.json"
    )]
    Export(ExportArgs),
    /// Run one simulation and print its report.
    #[command(
        after_help = "Examples:\n  perllm run examples/paper.perllm\n  perllm run examples/paper.perllm --policy cloud-only --seed 3\n  perllm run examples/paper.perllm --policy epsilon-greedy --param epsilon=0.2\n  perllm run examples/paper.perllm --set scenario.duration=60s --set workload.arrivals.rate=2/s\n  perllm run examples/paper.perllm --format json > report.json\n  perllm run examples/paper.perllm --out runs/perllm    # report, results, requests, decisions"
    )]
    Run(RunArgs),
    /// Run several policies on the same workloads over several seeds, in parallel.
    #[command(
        after_help = "Examples:\n  perllm compare examples/paper.perllm --policies perllm,cloud-only,edge-only,random --seeds 1..10\n  perllm compare examples/paper.perllm --policies perllm,greedy,oracle --reference greedy --out cmp.json\n  perllm compare examples/paper.perllm --set scenario.duration=60s --seeds 1,2,3\n  perllm compare examples/paper.perllm --shard 2/4 --out part2.json   # one machine's share"
    )]
    Compare(CompareArgs),
    /// Sweep scenario values (cartesian grid) for load curves and sensitivity studies.
    #[command(
        after_help = "Examples:\n  perllm sweep examples/paper.perllm --set workload.arrivals.rate=2/s,4/s,8/s,16/s --policies perllm,greedy\n  perllm sweep examples/paper.perllm --set workload.arrivals.rate=4/s,8/s --set server.cloud.max_batch=16,64 -f csv > sweep.csv"
    )]
    Sweep(SweepArgs),
    /// Combine the shards of a `--shard` study into the single-machine result.
    #[command(
        after_help = "Example:\n  perllm merge part1.json part2.json part3.json --out results.json"
    )]
    Merge(MergeArgs),
    /// Draw SVG plots and an HTML page from a results file.
    #[command(
        after_help = "Example:\n  perllm plot results.json --out plots/    # then open plots/index.html"
    )]
    Plot(PlotArgs),
    #[cfg(feature = "engine")]
    /// Time the real CPU engine (perllm-engine) over a grid of step shapes.
    #[command(
        after_help = "Examples:\n  perllm profile --out profile.csv\n  perllm profile --preset tiny --batch 0,1,4 --context 16,64 --prefill 0,16,64 --repeats 3 --out p.csv\n  perllm profile --out profile.csv --table table.csv   # also a profile-table cost-model CSV"
    )]
    Profile(crate::fidelity::profile::ProfileArgs),
    #[cfg(feature = "engine")]
    /// Fit the analytic model (overhead, compute, bandwidth, batch interference) to a profile or a request log.
    #[command(
        after_help = "Examples:\n  perllm calibrate --profile profile.csv --out calibration.json --hardware engine.perllm\n  perllm calibrate --log runs/fidelity/requests-60.csv --out cal-log.json"
    )]
    Calibrate(crate::fidelity::calibrate::CalibrateArgs),
    #[cfg(feature = "engine")]
    /// Serve workloads through the real engine in real time and compare with the simulator.
    #[command(
        after_help = "Examples:\n  perllm validate --calibration calibration.json --out runs/fidelity\n  perllm validate --calibration calibration.json --loads 0.5 --requests 40"
    )]
    Validate(crate::fidelity::validate::ValidateArgs),
    #[cfg(feature = "engine")]
    /// Route real requests with a scenario's policy: an OpenAI-compatible gateway over the
    /// scenario's servers that have an `endpoint` (docs/serve.md).
    #[command(
        after_help = "Examples:\n  perllm serve cluster.perllm --listen 0.0.0.0:8080 --decisions decisions.jsonl --requests requests.csv\n  perllm serve cluster.perllm --policy greedy --set scenario.slot=0s\n  GATEWAY_KEYS=k1,k2 perllm serve cluster.perllm --api-keys-env GATEWAY_KEYS"
    )]
    Serve(crate::serve::gateway::ServeArgs),
    #[cfg(feature = "engine")]
    /// The real CPU engine as a server.
    Engine {
        /// The engine command.
        #[command(subcommand)]
        command: EngineCommand,
    },
    #[cfg(feature = "engine")]
    /// Replay a scenario's workload against an OpenAI-compatible endpoint in real time (open loop)
    /// and write the simulator's per-request CSV.
    #[command(
        after_help = "Examples:\n  perllm load cluster.perllm --url http://127.0.0.1:8080 --out real.csv\n  perllm load cluster.perllm --url http://127.0.0.1:8080 --set scenario.duration=30s --out real.csv"
    )]
    Load(crate::serve::load::LoadArgs),
    /// Inspect policy and cost-model plugins.
    Plugins {
        /// The plugins command.
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// A TCP relay adding a one-way delay each way: the latency of an emulated link on kernels
    /// without `netem` (started by scripts/netem-links.sh; docs/serve.md).
    #[cfg(feature = "engine")]
    #[command(hide = true, name = "link-relay")]
    LinkRelay(crate::serve::relay::RelayArgs),
    /// The isolated plugin worker (started by perllm itself with pipes; not for direct use).
    #[command(hide = true, name = "plugin-worker")]
    PluginWorker,
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  perllm completions bash > ~/.local/share/bash-completion/completions/perllm\n  perllm completions zsh > ~/.zfunc/_perllm"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `perllm engine` subcommands.
#[cfg(feature = "engine")]
#[derive(Debug, Subcommand)]
pub enum EngineCommand {
    /// Serve perllm-engine (continuous batching) over the OpenAI-compatible API.
    #[command(
        after_help = "Examples:\n  perllm engine serve --preset tiny --listen 127.0.0.1:8001 --model llama2-7b\n  perllm engine serve --preset small --threads 1 --max-batch 8 --listen 127.0.0.1:8002"
    )]
    Serve(crate::serve::engine::EngineServeArgs),
}

/// `perllm plugins` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List every policy and cost model available, built-in or loaded.
    #[command(
        after_help = "Examples:\n  perllm plugins list\n  perllm plugins list --plugin target/release/libmy_policy.so"
    )]
    List {
        /// Plugin options.
        #[command(flatten)]
        plugins: PluginArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show one policy or cost model: source, ABI, flags and the parameters it accepts.
    #[command(
        after_help = "Examples:\n  perllm plugins info greedy\n  perllm plugins info profile-table\n  perllm plugins info my-policy --plugin target/release/libmy_policy.so --format json"
    )]
    Info {
        /// The policy or cost model (as `--policy` / `--cost-model` take it).
        #[arg(value_name = "NAME")]
        name: String,
        /// Plugin options.
        #[command(flatten)]
        plugins: PluginArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
}

/// Format of `plugins list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// An aligned table.
    Table,
    /// A JSON array.
    Json,
}

/// `perllm export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Scenario file: `.perllm`, `.toml` or `.json`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Override a scenario value first, e.g. `workload.arrivals.rate=8/s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<(String, String)>,
    /// Output format: `json` (the serialised scenario) or `links` (each backend's link, one
    /// tab-separated line per server with an `endpoint`, for scripts/netem-links.sh).
    #[arg(short, long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Format of `perllm export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// perllm-core's `Scenario` as JSON (field names as in `docs/report-schema.md`'s hash).
    Json,
    /// One tab-separated line per server with an `endpoint`: `server host port link
    /// bandwidth_bps latency_ns fluctuation` (after a `#` header line), what
    /// scripts/netem-links.sh emulates.
    Links,
}

/// `perllm check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario files: `.perllm` (the language), `.toml` (its TOML twin) or `.json` (a
    /// serialised scenario, as `perllm export` writes).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Options shared by every command that simulates.
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Plugin options.
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Cost model pricing engine steps.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_COST_MODEL)]
    pub cost_model: String,
    /// Configuration of the cost model, a JSON object (e.g. '{"step_overhead_ns": 2000000}').
    #[arg(long, value_name = "JSON", default_value = "")]
    pub cost_config: String,
    /// Skip malformed trace rows (and count them) instead of failing.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Wall-clock budget of one plugin-policy call (`schedule`, `observe`), e.g. 50ms or 2s.
    /// Slower calls are counted and reported after the run, never interrupted.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub call_budget: std::time::Duration,
    /// The memory limit: sets the scenario's `sim.max_memory` (default 2GiB) for this command.
    /// A scenario whose estimated memory (servers, models, SLO classes; docs/robustness.md) is
    /// above it is refused before anything runs, with the size it needs: e.g. 8GiB, or `none`.
    #[arg(long, value_name = "SIZE", value_parser = crate::util::parse_size)]
    pub memory_limit: Option<u64>,
    /// Run plugin policies in separate worker processes, so that a crash, `abort`, `exit` or a
    /// hang of a plugin ends its run only (in `compare` and `sweep` the other runs complete),
    /// with an error naming the plugin and the call: `third-party` isolates plugins of libraries
    /// other than the bundled one, `always` every plugin policy, `never` none. Opt-in: it
    /// costs about 30 µs per `schedule` call and a worker start per run (BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = IsolateChoice::Never, value_name = "WHICH")]
    pub isolate: IsolateChoice,
    /// Hard wall-clock limit of one call of an isolated plugin (and of its start): past it the
    /// worker process is killed and the run fails, e.g. 10s or 2min.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub call_timeout: std::time::Duration,
}

impl SimArgs {
    /// [`Catalog::discover`] with these simulation options: the wall-clock budget of each
    /// plugin-policy call, and isolation (`--isolate`, `--call-timeout`).
    pub fn catalog(&self) -> Result<Catalog> {
        use perllm_host::IsolateMode;
        let sim = self;
        let mut c = Catalog::discover(&sim.plugins.plugins)?;
        c.registry_mut().set_call_budget(sim.call_budget);
        let mode = match sim.isolate {
            IsolateChoice::ThirdParty => IsolateMode::ThirdParty,
            IsolateChoice::Never => IsolateMode::Never,
            IsolateChoice::Always => IsolateMode::Always,
        };
        if mode != IsolateMode::Never {
            // The worker is this very program, re-executed with the hidden `plugin-worker`
            // command: an installed perllm needs nothing else.
            let program = std::env::current_exe().map_err(|e| {
                CliError::run(format!(
                    "cannot find the perllm executable to start isolated plugin workers: {e} (use --isolate never)"
                ))
            })?;
            c.registry_mut().set_isolation(Some(perllm_host::Isolation {
                mode,
                program,
                args: vec!["plugin-worker".into()],
                call_timeout: sim.call_timeout,
            }));
        }
        Ok(c)
    }
}

/// Which plugin policies run in worker processes (`--isolate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IsolateChoice {
    /// Plugins of libraries other than the bundled one.
    ThirdParty,
    /// Every plugin policy.
    Always,
    /// None: every plugin runs in the perllm process.
    Never,
}

/// Output format of reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// The versioned JSON document (docs/report-schema.md).
    Json,
    /// Tidy CSV, one row per run.
    Csv,
}

/// `perllm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Policy to run (default: the scenario's).
    #[arg(short, long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Seed (default: the scenario's).
    #[arg(short, long, value_name = "N")]
    pub seed: Option<u64>,
    /// Override a scenario value, e.g. `scenario.duration=60s` (repeatable; keys as in `sweep`).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<(String, String)>,
    /// Set a parameter of the policy run, e.g. `epsilon=0.1` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub params: Vec<(String, String)>,
    /// Shared simulation options.
    #[command(flatten)]
    pub sim: SimArgs,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write report.json, results.json, requests.csv and decisions.jsonl into this directory.
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the decision log (JSON Lines) to this file: at most two lines per request, its first
    /// deferral and its final decision (repeated deferrals are counted in `deferred_slots`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub decisions: Option<PathBuf>,
    /// Log every deferral of a request, one line per slot it waits (the log can then grow with
    /// requests x slots).
    #[arg(long)]
    pub decisions_every_defer: bool,
    /// Largest decision log, e.g. 200MB or 2GiB (`none`: no limit); past it the log ends with a
    /// `truncated` line and a warning.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = crate::util::parse_size)]
    pub decisions_limit: u64,
    /// Write one CSV row per request to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub requests: Option<PathBuf>,
}

/// Options shared by `compare` and `sweep`.
#[derive(Debug, Args)]
pub struct GridArgs {
    /// Scenario file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Policies to run, comma-separated (default: every available policy). A policy may carry
    /// parameters, and one policy may appear with several sets:
    /// `perllm,perllm{exploration=0.1,window=50},greedy{slack=0.8}`.
    #[arg(short, long, value_name = "A,B{k=v},...")]
    pub policies: Vec<String>,
    /// Seeds: `1..10` (inclusive), `1,2,5`, or a mix.
    #[arg(short, long, value_name = "SEEDS", default_value = "1..5")]
    pub seeds: String,
    /// Policy the ratios are relative to (default: `perllm` if it runs, else the first policy).
    #[arg(short, long, value_name = "NAME")]
    pub reference: Option<String>,
    /// Parallel runs (default: one per core). Results do not depend on it.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Run only shard K of N of the grid (for batch systems); combine parts with `perllm merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Shared simulation options.
    #[command(flatten)]
    pub sim: SimArgs,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the results document (JSON) to this file.
    #[arg(short, long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Write the tidy per-run CSV to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
}

/// `perllm compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Override a scenario value for every run, e.g. `scenario.duration=60s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<(String, String)>,
    /// Grid options.
    #[command(flatten)]
    pub grid: GridArgs,
}

/// `perllm sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A scenario value and the values to sweep: `key=v1,v2,...` (repeatable; cartesian product).
    #[arg(long = "set", value_name = "KEY=V1,V2", required = true)]
    pub set: Vec<Setting>,
    /// Grid options.
    #[command(flatten)]
    pub grid: GridArgs,
}

/// `perllm merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Result files of all shards.
    #[arg(required = true, value_name = "PARTS")]
    pub parts: Vec<PathBuf>,
    /// Where to write the merged results.
    #[arg(short, long, value_name = "RESULTS")]
    pub out: PathBuf,
    /// Also write the tidy per-run CSV here.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
}

/// `perllm plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A results file (from `compare`, `sweep`, `merge` or `run --out`).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,
    /// Output directory for the SVG files and index.html.
    #[arg(short, long, value_name = "DIR", default_value = "plots")]
    pub out: PathBuf,
}

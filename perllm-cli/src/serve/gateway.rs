//! `perllm serve SCENARIO`: the OpenAI-compatible gateway over the scenario's real servers.

use crate::catalog::Catalog;
use crate::catalog::PluginArgs;
use crate::error::{CliError, Result};
use crate::observers::DecisionLog;
use crate::util::parse_override;
use clap::Args;
use perllm_core::{Observer, World};
use perllm_gateway::{Gateway, GatewayConfig, Parts, RequestLog};
use std::path::PathBuf;
use std::time::Duration;

/// `perllm serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Scenario file: its servers with an `endpoint` are the backends; its policy, slot length,
    /// SLO classes and models are the gateway's.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Policy (default: the scenario's).
    #[arg(short, long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Set a parameter of the policy, e.g. `epsilon=0.1` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub params: Vec<(String, String)>,
    /// Override a scenario value, e.g. `scenario.slot=0s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<(String, String)>,
    /// Plugin options.
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Cost model (the policy's estimates; the energy the logs mark as estimated).
    #[arg(long, value_name = "NAME", default_value = crate::catalog::DEFAULT_COST_MODEL)]
    pub cost_model: String,
    /// Configuration of the cost model, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "")]
    pub cost_config: String,
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Name of an environment variable holding the keys clients must present
    /// (`Authorization: Bearer KEY`), comma-separated; unset: no check.
    #[arg(long, value_name = "VAR")]
    pub api_keys_env: Option<String>,
    /// Write the decision log (the simulator's JSON Lines) to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub decisions: Option<PathBuf>,
    /// Write one CSV row per request (the simulator's columns) to this file.
    #[arg(long, value_name = "FILE.csv")]
    pub requests: Option<PathBuf>,
    /// Largest `max_tokens` accepted (default: the scenario's `workload.max_output_tokens`).
    #[arg(long, value_name = "N")]
    pub max_tokens_limit: Option<u32>,
    /// SLO class of requests without an `x-perllm-slo` header when no trace size rule applies
    /// (default: the scenario's first class).
    #[arg(long, value_name = "NAME")]
    pub default_slo: Option<String>,
    /// A backend that takes longer to accept a connection is marked unhealthy.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::util::parse_duration)]
    pub connect_timeout: Duration,
    /// A backend that sends no response headers within this is marked unhealthy.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = crate::util::parse_duration)]
    pub response_timeout: Duration,
    /// Interval of the health probes (`GET /v1/models` on every backend).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::util::parse_duration)]
    pub probe_interval: Duration,
    /// On SIGTERM or Ctrl-C: stop accepting, and wait this long for requests in flight.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::util::parse_duration)]
    pub drain: Duration,
    /// Backends that run on this machine, comma-separated: their requests' inference energy is
    /// measured with RAPL where the machine exposes it (the package's energy, shared among the
    /// requests in flight on them), else estimated. Default: backends with a loopback endpoint;
    /// `none`: estimate every backend's energy.
    #[arg(long, value_name = "NAME,...")]
    pub local_backends: Option<String>,
    /// Worker threads of the HTTP side (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

fn create(path: &PathBuf, what: &str) -> Result<std::fs::File> {
    std::fs::File::create(path).map_err(|e| {
        CliError::input(format!(
            "cannot create the {what} `{}`: {e}",
            path.display()
        ))
    })
}

/// Run the gateway until SIGTERM or Ctrl-C.
pub fn serve(a: ServeArgs, term: crate::term::Term) -> Result<()> {
    let loaded = crate::scenario::load(&a.file, &a.set, term.color_stderr)?;
    if !loaded.warnings.is_empty() {
        term.eprint_rendered(&loaded.warnings);
    }
    let mut sc = loaded.scenario.clone();
    crate::scenario::apply_cli(&mut sc, None, a.policy.as_deref(), false);
    for (k, v) in &a.params {
        sc.policy
            .params
            .insert(k.clone(), crate::commands::run::param_value(v));
    }
    let (with, without): (Vec<_>, Vec<_>) = sc
        .servers
        .iter()
        .cloned()
        .partition(|s| s.endpoint.is_some());
    if with.is_empty() {
        return Err(CliError::input(format!(
            "`{}` has no server with an `endpoint`: give each real server its URL, e.g. `endpoint = \"http://10.0.0.5:8000\"`",
            a.file.display()
        )));
    }
    if !without.is_empty() {
        let names: Vec<&str> = without.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "warning: servers without an `endpoint` are not backends: {}",
            names.join(", ")
        );
    }
    sc.servers = with;
    let world = crate::scenario::build(&loaded, &sc)?;
    let world: &'static World = Box::leak(Box::new(world));
    let catalog = Catalog::discover(&a.plugins.plugins)?;
    let cost = catalog.cost_model(&a.cost_model, &a.cost_config)?;
    let policy = catalog.policy(&sc.policy, world)?;
    let backends = perllm_gateway::backends(world, &|v| std::env::var(v).ok())
        .map_err(|e| CliError::input(e.to_string()))?;
    let energy = energy_meter(a.local_backends.as_deref(), world)?;
    let default_slo = match &a.default_slo {
        None => 0,
        Some(n) => world.slo_id(n).ok_or_else(|| {
            CliError::input(format!(
                "--default-slo: `{n}` is not an SLO class of the scenario"
            ))
        })?,
    };
    let cfg = GatewayConfig {
        api_keys: super::engine::keys_from_env(a.api_keys_env.as_deref())?,
        max_tokens_limit: a
            .max_tokens_limit
            .unwrap_or(world.scenario.workload.max_output_tokens),
        connect_timeout: a.connect_timeout,
        response_timeout: a.response_timeout,
        probe_interval: a.probe_interval,
        default_slo,
    };
    let decisions = match &a.decisions {
        Some(p) => Some(create(p, "decision log")?),
        None => None,
    };
    let requests = match &a.requests {
        Some(p) => Some(RequestLog::new(Box::new(std::io::BufWriter::new(create(
            p,
            "request log",
        )?)))),
        None => None,
    };
    let observers: Box<dyn FnOnce(&'static World) -> Vec<Box<dyn Observer>> + Send> =
        Box::new(move |w: &'static World| -> Vec<Box<dyn Observer>> {
            match decisions {
                Some(f) => vec![Box::new(DecisionLog::new(
                    w,
                    Box::new(std::io::LineWriter::new(f)),
                    false,
                    u64::MAX,
                ))],
                None => Vec::new(),
            }
        });
    let rt = super::runtime(a.threads)?;
    let names: Vec<String> = backends
        .iter()
        .map(|b| format!("{} -> {}", b.name, b.url))
        .collect();
    let policy_name = sc.policy.name.clone();
    let slot = world.scenario.slot_ns;
    rt.block_on(async move {
        let (l, addr) = super::bind(&a.listen).await?;
        let gw = Gateway::start(
            cfg,
            Parts {
                world,
                policy,
                cost,
                observers,
                requests,
                energy,
            },
            backends,
        )
        .map_err(|e| CliError::run(e.to_string()))?;
        println!(
            "perllm serve: policy `{policy_name}`, slot {} ms, backends: {}; listening on http://{addr}",
            slot as f64 / 1e6,
            names.join(", ")
        );
        let draining = gw.draining();
        let shutdown = async move {
            perllm_openai::termination().await;
            draining.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("perllm serve: draining (at most {:?})", a.drain);
        };
        let served = perllm_openai::serve_until(l, gw.router.clone(), shutdown, a.drain).await;
        let finished = gw.finish();
        served.map_err(|e| CliError::run(format!("the gateway failed: {e}")))?;
        finished.map_err(CliError::run)?;
        eprintln!("perllm serve: stopped");
        Ok(())
    })
}

/// The RAPL meter of the backends on this machine (`--local-backends`), or `None` when no backend
/// is local or the machine exposes no RAPL counters (said on stderr: their energy is estimated).
fn energy_meter(arg: Option<&str>, world: &World) -> Result<Option<perllm_gateway::EnergyMeter>> {
    let servers = &world.scenario.servers;
    let local: Vec<bool> = match arg.map(str::trim) {
        Some("none") => return Ok(None),
        Some(list) => {
            let names: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            for n in &names {
                if !servers.iter().any(|s| s.name == *n) {
                    return Err(CliError::input(format!(
                        "--local-backends: `{n}` is not a backend of the scenario"
                    )));
                }
            }
            servers
                .iter()
                .map(|s| names.contains(&s.name.as_str()))
                .collect()
        }
        None => servers
            .iter()
            .map(|s| {
                s.endpoint
                    .as_deref()
                    .and_then(crate::util::host_port)
                    .is_some_and(|(h, _)| {
                        h == "localhost"
                            || h.parse::<std::net::IpAddr>()
                                .is_ok_and(|ip| ip.is_loopback())
                    })
            })
            .collect(),
    };
    if !local.iter().any(|l| *l) {
        return Ok(None);
    }
    let names: Vec<&str> = servers
        .iter()
        .zip(&local)
        .filter(|(_, l)| **l)
        .map(|(s, _)| s.name.as_str())
        .collect();
    match perllm_engine::Rapl::open() {
        Ok(r) => {
            eprintln!(
                "perllm serve: the energy of {} is measured with RAPL (package energy, shared among their requests in flight)",
                names.join(", ")
            );
            Ok(Some(perllm_gateway::EnergyMeter::new(r, local)))
        }
        Err(why) => {
            eprintln!(
                "perllm serve: the energy of {} is estimated, not measured: {why}",
                names.join(", ")
            );
            Ok(None)
        }
    }
}

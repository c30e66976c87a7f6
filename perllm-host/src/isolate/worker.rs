//! The worker side of isolation: a process that loads one plugin library, creates one policy
//! and answers the host's requests over stdin/stdout ([`serve_stdio`]).

use super::wire::{self, Init, Reply, Request, WireDecision};
use crate::Registry;
use crate::policy::ForeignPolicy;
use perllm_core::cost::{CostModel, Estimate, LoadHint, Roofline, StepShape};
use perllm_core::policy::{ClusterView, Decision, Pending, Policy};
use perllm_core::spec::{Hardware, ModelSpec, Nanos};
use perllm_core::{Request as CoreRequest, Scenario, Server, World};
use perllm_plugin_abi as abi;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::time::Duration;

/// Serve one isolated plugin on this process's stdin and stdout until stdin closes, as the
/// hidden `perllm plugin-worker` command and the `perllm-plugin-worker` binary do. What the
/// plugin prints on stdout goes to stderr (stdout carries the protocol). Returns a message for a
/// protocol error (the host then reports the worker as broken).
pub fn serve_stdio() -> Result<(), String> {
    let (mut input, mut output) = protocol_streams()?;
    serve(&mut input, &mut output)
}

/// The protocol's streams: stdin, and a duplicate of stdout; stdout itself then points at
/// stderr, so that a plugin's `printf` cannot corrupt the protocol.
#[allow(unsafe_code)]
fn protocol_streams() -> Result<(std::io::StdinLock<'static>, std::fs::File), String> {
    let _ = std::io::stdout().flush();
    // SAFETY: `dup` and `dup2` on the process's own standard descriptors; the duplicate is a new
    // descriptor owned by the returned `File` alone.
    let out = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(format!(
                "cannot set up the protocol descriptors: {}",
                std::io::Error::last_os_error()
            ));
        }
        std::fs::File::from_raw_fd(fd)
    };
    Ok((std::io::stdin().lock(), out))
}

/// Serve on the given streams (see [`serve_stdio`]).
pub fn serve<R: std::io::Read, W: Write>(input: &mut R, output: &mut W) -> Result<(), String> {
    crate::crash::set_in_worker();
    let mut rbuf = Vec::new();
    let mut wbuf = Vec::new();
    let io = |e: std::io::Error| format!("protocol error: {e}");
    if !wire::recv_blocking(input, &mut rbuf).map_err(io)? {
        return Ok(());
    }
    let init: Init = wire::decode(&rbuf).map_err(io)?;
    let (mut policy, world, registry) = match start(&init) {
        Ok(x) => x,
        Err(message) => {
            return wire::send(output, &mut wbuf, &Reply::Failed(message)).map_err(io);
        }
    };
    let wants = policy.wants_estimates();
    wire::send(
        output,
        &mut wbuf,
        &Reply::Ready {
            wants_estimates: wants,
        },
    )
    .map_err(io)?;
    let mut table = Table::new(&world);
    let mut out: Vec<Decision> = Vec::new();
    let mut wire_out: Vec<WireDecision> = Vec::new();
    while wire::recv_blocking(input, &mut rbuf).map_err(io)? {
        let reply = match wire::decode::<Request>(&rbuf).map_err(io)? {
            Request::Schedule {
                observed,
                slot,
                now_ns,
                servers,
                pending,
                estimates,
            } => {
                for o in &observed {
                    policy.observe(o);
                }
                if servers.len() != world.servers.len() {
                    return Err(format!(
                        "protocol error: {} server states for a world of {} servers",
                        servers.len(),
                        world.servers.len()
                    ));
                }
                table.fill(&world, &pending, estimates)?;
                let view = ClusterView {
                    now_ns,
                    slot,
                    world: &world,
                    servers: &servers,
                    cost: &table,
                    truth: None,
                    model_load: &[],
                };
                out.clear();
                out.resize(pending.len(), Decision::Defer);
                match policy.schedule(&view, &pending, &mut out) {
                    Ok(()) => {
                        wire_out.clear();
                        wire_out.extend(out.iter().map(|&d| WireDecision::from(d)));
                        Reply::Decisions(std::mem::take(&mut wire_out))
                    }
                    Err(e) => Reply::Failed(e.message),
                }
            }
            Request::Stats { observed } => {
                for o in &observed {
                    policy.observe(o);
                }
                let stats = policy.stats();
                Reply::Stats(stats, registry.check().err().map(|e| e.to_string()))
            }
        };
        wire::send(output, &mut wbuf, &reply).map_err(io)?;
        if let Reply::Decisions(v) = reply {
            wire_out = v;
        }
    }
    Ok(())
}

/// Build the world and create the policy `init` names.
fn start(init: &Init) -> Result<(ForeignPolicy, World, Registry), String> {
    if init.wire_version != wire::WIRE_VERSION {
        return Err(format!(
            "the worker speaks isolation protocol {} and the host {}: use the same perllm build for both",
            wire::WIRE_VERSION,
            init.wire_version
        ));
    }
    let scenario: Scenario = serde_json::from_str(&init.scenario_json)
        .map_err(|e| format!("the worker cannot read the scenario: {e}"))?;
    let world = scenario.build().map_err(|errs| {
        format!(
            "the worker cannot build the scenario: {}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    if world.servers.len() != init.servers as usize || world.models.len() != init.models as usize {
        return Err(format!(
            "the worker's world ({} servers, {} models) differs from the host's ({} servers, {} models)",
            world.servers.len(),
            world.models.len(),
            init.servers,
            init.models
        ));
    }
    let mut registry = Registry::new();
    registry
        .load_library(&init.library)
        .map_err(|e| e.to_string())?;
    let d = registry
        .declared(abi::KIND_POLICY, &init.plugin)
        .ok_or_else(|| {
            format!(
                "the library `{}` has no policy `{}`",
                init.library.display(),
                init.plugin
            )
        })?
        .clone();
    let policy = ForeignPolicy::create(
        &d,
        &init.config,
        init.seed,
        registry.health(),
        Duration::from_nanos(init.budget_ns),
    )
    .map_err(|e| e.to_string())?;
    Ok((policy, world, registry))
}

/// The cost model the worker's policy sees: the host's estimates of this call, looked up by
/// (request, server). Step times are never asked for by a policy; they fall back to core's
/// roofline.
struct Table {
    estimates: Vec<Estimate>,
    /// Offset of each pending request's row in `estimates`.
    rows: HashMap<u64, usize>,
    /// `position[model][server]`: index of the server among those hosting the model.
    position: Vec<Vec<u32>>,
    /// Servers hosting each model.
    hosted: Vec<u32>,
    fallback: Roofline,
}

impl Table {
    fn new(world: &World) -> Table {
        let mut position = Vec::with_capacity(world.models.len());
        let mut hosted = Vec::with_capacity(world.models.len());
        for m in 0..world.models.len() {
            let mut pos = vec![u32::MAX; world.servers.len()];
            let mut k = 0u32;
            for s in &world.servers {
                if s.hosts(m as u16) {
                    pos[s.id as usize] = k;
                    k += 1;
                }
            }
            position.push(pos);
            hosted.push(k);
        }
        Table {
            estimates: Vec::new(),
            rows: HashMap::new(),
            position,
            hosted,
            fallback: Roofline::default(),
        }
    }

    fn fill(
        &mut self,
        world: &World,
        pending: &[Pending],
        estimates: Vec<Estimate>,
    ) -> Result<(), String> {
        self.rows.clear();
        if estimates.is_empty() {
            self.estimates = estimates;
            return Ok(());
        }
        let mut at = 0usize;
        for p in pending {
            self.rows.insert(p.request.id, at);
            at += self
                .hosted
                .get(p.request.model as usize)
                .copied()
                .unwrap_or(0) as usize;
        }
        if at != estimates.len() {
            return Err(format!(
                "protocol error: {} estimates for {} (request, hosting server) pairs in a world of {} servers",
                estimates.len(),
                at,
                world.servers.len()
            ));
        }
        self.estimates = estimates;
        Ok(())
    }
}

impl CostModel for Table {
    fn name(&self) -> &str {
        "host-estimates"
    }
    fn step_ns(&self, hw: &Hardware, count: u32, model: &ModelSpec, shape: &StepShape) -> Nanos {
        self.fallback.step_ns(hw, count, model, shape)
    }
    fn estimate(
        &self,
        _world: &World,
        server: &Server,
        req: &CoreRequest,
        _load: &LoadHint,
    ) -> Estimate {
        let k = self
            .position
            .get(req.model as usize)
            .and_then(|p| p.get(server.id as usize))
            .copied()
            .unwrap_or(u32::MAX);
        match self.rows.get(&req.id) {
            Some(&row) if k != u32::MAX => self
                .estimates
                .get(row + k as usize)
                .copied()
                .unwrap_or_default(),
            _ => Estimate::default(),
        }
    }
}

//! [`ForeignPolicy`]: a plugin policy behind the core [`Policy`] trait.

use crate::convert::{Capture, EstimateSlot, estimate_views, outcome_parts, outcome_view};
use crate::crash::{self, Note};
use crate::error::HostError;
use crate::health::{Health, Kind};
use crate::inplace::{BadAction, call_in_place, pending_slice};
use crate::loader::Declared;
use crate::views::{BadPlacement, Hosts, SlotViews};
use perllm_core::policy::{ClusterView, Decision, Pending, Policy, PolicyError, PolicyStats};
use perllm_core::{Outcome, World};
use perllm_plugin_abi as abi;
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
#[cfg(not(unix))]
use std::time::Instant;

/// Prefix of the [`PolicyStats`] keys that hold wall-clock measurements of plugin calls. They
/// differ from run to run (unlike every simulated quantity): leave them out when comparing
/// reports for equality.
pub const WALLCLOCK_PREFIX: &str = "wallclock.";

/// Default per-call time budget of a plugin entry point.
pub const DEFAULT_CALL_BUDGET: Duration = Duration::from_millis(50);

/// Wall-clock statistics of one entry point.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallTiming {
    /// Calls made.
    pub calls: u64,
    /// Total time, ns.
    pub total_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
    /// Calls that took longer than the budget.
    pub over_budget: u64,
}

impl CallTiming {
    pub(crate) fn record(&mut self, d: Duration, budget: Duration) {
        self.record_ns(
            d.as_nanos().min(u64::MAX as u128) as u64,
            budget.as_nanos().min(u64::MAX as u128) as u64,
        );
    }
    #[inline]
    pub(crate) fn record_ns(&mut self, ns: u64, budget_ns: u64) {
        self.calls += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
        if ns > budget_ns {
            self.over_budget += 1;
        }
    }
    pub(crate) fn put(&self, stats: &mut PolicyStats, what: &str) {
        let v = &mut stats.values;
        v.insert(
            format!("{WALLCLOCK_PREFIX}plugin.{what}.calls"),
            self.calls as f64,
        );
        let mean = if self.calls == 0 {
            0.0
        } else {
            self.total_ns as f64 / self.calls as f64 / 1e3
        };
        v.insert(format!("{WALLCLOCK_PREFIX}plugin.{what}.mean_us"), mean);
        v.insert(
            format!("{WALLCLOCK_PREFIX}plugin.{what}.max_us"),
            self.max_ns as f64 / 1e3,
        );
        v.insert(
            format!("{WALLCLOCK_PREFIX}plugin.{what}.over_budget"),
            self.over_budget as f64,
        );
    }
}

/// A policy from a plugin library, usable wherever a core [`Policy`] is.
///
/// It converts the [`ClusterView`] into the ABI's [`abi::SlotView`] (with cost-model estimates
/// per (request, server) pair if the plugin asked for them), calls the plugin, and validates
/// every placement it returns. A panic poisons it: it is never called again and every later
/// call fails. Its library is never unloaded.
///
/// The views are kept across calls and only what changed is rewritten. It relies on
/// perllm-core's contract that a request id is unique within a run: a pending request with the
/// id and arrival time of one pending at the previous call is taken to be that request (only
/// its `defers` is updated). A new run through the same instance (simulated time going back,
/// or another world) starts afresh.
pub struct ForeignPolicy {
    name: String,
    path: PathBuf,
    vt: abi::PolicyVTable,
    instance: *mut c_void,
    wants_estimates: bool,
    poisoned: bool,
    failure: Option<HostError>,
    health: Arc<Health>,
    budget: Duration,
    /// `budget` in ns.
    budget_ns: u64,
    schedule_timing: CallTiming,
    observe_timing: CallTiming,
    /// The server, request and placement views, kept across calls.
    views: SlotViews,
    /// The estimates of the slot, in the ABI's layout (see [`EstimateSlot`]), one row of
    /// `servers` entries per request.
    estimates: Vec<EstimateSlot>,
    /// Which server hosts which model, for the check of every placement. Built with the
    /// server views, for the world of the first call (again if a call's world is another).
    hosts: Hosts,
    /// Per model, the indices of the servers that host it and of those that do not.
    hosted: Vec<Vec<usize>>,
    unhosted: Vec<Vec<usize>>,
    /// The deadline of every SLO class of the world, ns (`SlotView::slo_deadlines`).
    deadlines: Vec<u64>,
    /// What a crash says during `schedule`, `observe`, `stats` and `decide` (see
    /// [`crate::crash`]).
    notes: [Note; 4],
}

// SAFETY: the ABI requires a policy instance to be usable from any thread as long as calls are
// not concurrent (`GuestPolicy: Send`); `&mut self` methods guarantee that. The view buffers
// hold pointers into the world only during a call and are rebuilt before each.
unsafe impl Send for ForeignPolicy {}

impl std::fmt::Debug for ForeignPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignPolicy")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl ForeignPolicy {
    /// Create an instance of the declared policy `d` with `config` (JSON) and `seed`.
    pub(crate) fn create(
        d: &Declared,
        config: &str,
        seed: u64,
        health: Arc<Health>,
        budget: Duration,
    ) -> Result<Self, HostError> {
        let vt = d
            .policy
            .expect("validated at load: a policy declaration has a policy vtable");
        let create = vt.create.expect("validated at load");
        crash::install();
        let note =
            |f: &str, label: &'static str| Note::new("policy", &d.name, &d.lib.path, f, label);
        let notes = [
            note("schedule", ", slot "),
            note("observe", ", outcome of request "),
            note("stats", ""),
            note("decide", ", slot "),
        ];
        let mut cap = Capture::default();
        let sink = cap.sink();
        let instance = {
            let create_note = note("create", "");
            let _active = crash::enter(&create_note, 0);
            create(abi::StrRef::new(config), seed, &sink)
        };
        if instance.is_null() {
            return Err(HostError::Call {
                plugin: d.name.clone(),
                path: d.lib.path.clone(),
                function: "create".into(),
                message: cap.take(),
            });
        }
        Ok(ForeignPolicy {
            name: d.name.clone(),
            path: d.lib.path.clone(),
            vt,
            instance,
            wants_estimates: d.flags & abi::FLAG_WANTS_ESTIMATES != 0,
            poisoned: false,
            failure: None,
            health,
            budget,
            budget_ns: budget.as_nanos().min(u64::MAX as u128) as u64,
            schedule_timing: CallTiming::default(),
            observe_timing: CallTiming::default(),
            views: SlotViews::default(),
            estimates: Vec::new(),
            hosts: Hosts::default(),
            hosted: Vec::new(),
            unhosted: Vec::new(),
            deadlines: Vec::new(),
            notes,
        })
    }

    /// The library this policy came from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    /// Has a panic poisoned it?
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
    /// Set the per-call time budget (calls over it are counted, not interrupted).
    pub fn set_call_budget(&mut self, budget: Duration) {
        self.budget = budget;
        self.budget_ns = budget.as_nanos().min(u64::MAX as u128) as u64;
    }
    /// Call `schedule` even if the plugin provides `decide` (see [`crate::Registry::set_in_place`]).
    pub(crate) fn without_in_place(&mut self) {
        self.vt.decide = None;
    }
    /// Does the plugin call `decide`, the in-place path of ABI 1.3?
    pub fn is_in_place(&self) -> bool {
        self.vt.decide.is_some()
    }
    /// Does the plugin want estimates (`FLAG_WANTS_ESTIMATES`)?
    pub(crate) fn wants_estimates(&self) -> bool {
        self.wants_estimates
    }
    /// Wall-clock statistics of `schedule` calls.
    pub fn schedule_timing(&self) -> CallTiming {
        self.schedule_timing
    }

    fn fail(&mut self, e: HostError) -> PolicyError {
        if self.failure.is_none() {
            self.failure = Some(e.clone());
            self.health.fail(Kind::Policy, &self.name, e.clone());
        }
        PolicyError {
            policy: self.name.clone(),
            message: e.to_string(),
        }
    }

    #[cold]
    fn invalid(&self, problem: String) -> HostError {
        self.invalid_in("schedule", problem)
    }

    #[cold]
    fn invalid_in(&self, function: &str, problem: String) -> HostError {
        HostError::Invalid {
            plugin: self.name.clone(),
            path: self.path.clone(),
            function: function.into(),
            problem,
        }
    }

    fn status_error(&mut self, function: &str, status: u32, cap: &mut Capture) -> HostError {
        match status {
            abi::STATUS_PANIC => {
                self.poisoned = true;
                HostError::Panic {
                    plugin: self.name.clone(),
                    path: self.path.clone(),
                    function: function.into(),
                    message: cap.take(),
                }
            }
            abi::STATUS_ERROR => HostError::Call {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function: function.into(),
                message: cap.take(),
            },
            s => HostError::Invalid {
                plugin: self.name.clone(),
                path: self.path.clone(),
                function: function.into(),
                problem: format!(
                    "unknown status {s} (expected STATUS_OK, STATUS_ERROR or STATUS_PANIC)"
                ),
            },
        }
    }

    /// Rebuild the hosting tables for `world` (its first call, or another world).
    #[cold]
    fn rebuild_hosts(&mut self, world: &World) {
        self.hosts = Hosts::new(world);
        let (hosted, unhosted): (Vec<_>, Vec<_>) = (0..world.models.len())
            .map(|m| {
                world
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(i, _)| i)
                    .partition(|&i| world.servers[i].hosts(m as u16))
            })
            .unzip();
        self.hosted = hosted;
        self.unhosted = unhosted;
        self.deadlines = world.slos.iter().map(|s| s.deadline_ns).collect();
    }

    /// Fill the estimates of this call (if the plugin asked for them). The buffer is kept
    /// across calls (no allocation once it is large enough); every element is rewritten.
    fn build_estimates(&mut self, view: &ClusterView<'_>, pending: &[Pending]) {
        let ns = view.world.servers.len();
        if !self.wants_estimates || ns == 0 {
            self.estimates.clear();
            return;
        }
        // Every entry is overwritten below, so resizing only pays for growth.
        self.estimates
            .resize(pending.len() * ns, EstimateSlot::NOT_HOSTED);
        for (row, p) in self.estimates.chunks_exact_mut(ns).zip(pending) {
            let req = &p.request;
            let m = req.model as usize;
            let (Some(hosted), Some(unhosted)) = (self.hosted.get(m), self.unhosted.get(m)) else {
                row.fill(EstimateSlot::NOT_HOSTED);
                continue;
            };
            for &s in unhosted {
                if let Some(e) = row.get_mut(s) {
                    *e = EstimateSlot::NOT_HOSTED;
                }
            }
            for &s in hosted {
                if let Some(e) = row.get_mut(s) {
                    // The core's estimate, in place but for one 64-byte copy of the value the
                    // cost model returns (the call may unwind, so the compiler cannot make `e`
                    // its return slot).
                    e.valid = 1;
                    e.estimate = view.estimate(req, s as u32);
                }
            }
        }
    }

    /// What is wrong with a placement the translation refused.
    #[cold]
    fn undecidable(
        &self,
        world: &World,
        req: &perllm_core::Request,
        action: u32,
        server: u32,
    ) -> HostError {
        match action {
            abi::ACTION_ASSIGN => self.bad_server(world, req, server),
            a => self.invalid(bad_action(req, a)),
        }
    }

    #[cold]
    fn bad_server(&self, world: &World, req: &perllm_core::Request, server: u32) -> HostError {
        match world.servers.get(server as usize) {
            None => self.invalid(format!(
                "request {} assigned to server {}, but the scenario has {} servers (ids 0 to {})",
                req.id,
                server,
                world.servers.len(),
                world.servers.len().saturating_sub(1)
            )),
            Some(s) => self.invalid(format!(
                "request {} (model `{}`) assigned to server `{}`, which does not host that model",
                req.id,
                world
                    .models
                    .get(req.model as usize)
                    .map_or("?", |m| &m.name),
                s.name
            )),
        }
    }
}

impl Policy for ForeignPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(
        &mut self,
        view: &ClusterView<'_>,
        pending: &[Pending],
        out: &mut [Decision],
    ) -> Result<(), PolicyError> {
        if let Some(cost_model) = precheck(&self.name, &self.failure, &self.health, pending, out)? {
            return Err(self.fail(cost_model));
        }
        let decide = self.vt.decide;
        let changed = if decide.is_some() {
            self.views
                .prepare_servers(view.world, view.servers, view.now_ns)
        } else {
            self.views
                .prepare(view.world, view.servers, pending, view.now_ns)
        };
        if changed {
            self.rebuild_hosts(view.world);
        }
        self.build_estimates(view, pending);
        let n = pending.len();
        let slot = abi::SlotView {
            struct_size: size_of::<abi::SlotView>() as u32,
            reserved: 0,
            slot: view.slot,
            now_ns: view.now_ns,
            servers: abi::Slice::new(&self.views.servers),
            // The in-place path has no request views: `pending` is the only list.
            requests: match decide {
                Some(_) => abi::Slice::empty(),
                None => abi::Slice::new(&self.views.requests[..n]),
            },
            estimates: estimate_views(&self.estimates),
            energy_weights: {
                let w = &view.world.scenario.objective.weights;
                [w.transmission, w.inference, w.idle]
            },
            server_size: size_of::<abi::ServerView>() as u32,
            request_size: size_of::<abi::RequestView>() as u32,
            estimate_size: size_of::<abi::EstimateView>() as u32,
            placement_size: size_of::<abi::Placement>() as u32,
            pending: pending_slice(pending),
            slo_deadlines: abi::Slice::new(&self.deadlines),
            pending_size: size_of::<abi::Pending>() as u32,
            decision_size: size_of::<abi::Decision>() as u32,
        };
        let mut cap = Capture::default();
        let sink = cap.sink();
        let t0 = monotonic_ns();
        if let Some(decide) = decide {
            let (instance, note) = (self.instance, &self.notes[3]);
            let r = call_in_place(out, |p| {
                let _active = crash::enter(note, view.slot);
                decide(instance, &slot, p, n, &sink)
            });
            self.schedule_timing
                .record_ns(monotonic_ns().saturating_sub(t0), self.budget_ns);
            return match r {
                Ok(abi::STATUS_OK) => Ok(()),
                Ok(status) => {
                    let e = self.status_error("decide", status, &mut cap);
                    Err(self.fail(e))
                }
                Err(BadAction { index, action }) => {
                    let e = self.invalid_in("decide", bad_action(&pending[index].request, action));
                    Err(self.fail(e))
                }
            };
        }
        let schedule = self.vt.schedule.expect("validated at load");
        let status = {
            let _active = crash::enter(&self.notes[0], view.slot);
            schedule(self.instance, &slot, self.views.out.as_mut_ptr(), n, &sink)
        };
        self.schedule_timing
            .record_ns(monotonic_ns().saturating_sub(t0), self.budget_ns);
        if status != abi::STATUS_OK {
            self.views.reset(n);
            let e = self.status_error("schedule", status, &mut cap);
            return Err(self.fail(e));
        }
        match self.views.translate(pending, &self.hosts, out) {
            Ok(()) => Ok(()),
            Err(BadPlacement {
                index,
                action,
                server,
            }) => {
                let e = self.undecidable(view.world, &pending[index].request, action, server);
                Err(self.fail(e))
            }
        }
    }

    fn observe(&mut self, outcome: &Outcome) {
        if self.failure.is_some() {
            return;
        }
        let Some(observe) = self.vt.observe else {
            return;
        };
        let parts = outcome_parts(outcome);
        let o = outcome_view(outcome, &parts);
        let mut cap = Capture::default();
        let sink = cap.sink();
        let t0 = monotonic_ns();
        let status = {
            let _active = crash::enter(&self.notes[1], outcome.request.id);
            observe(self.instance, &o, &sink)
        };
        self.observe_timing
            .record_ns(monotonic_ns().saturating_sub(t0), self.budget_ns);
        if status != abi::STATUS_OK {
            // `observe` cannot fail in the core trait: the failure is kept and the next
            // `schedule` (and the registry's checks) report it.
            let e = self.status_error("observe", status, &mut cap);
            self.fail(e);
        }
    }

    fn stats(&self) -> PolicyStats {
        let mut stats = PolicyStats::default();
        self.schedule_timing.put(&mut stats, "schedule");
        self.observe_timing.put(&mut stats, "observe");
        stats.values.insert(
            format!("{WALLCLOCK_PREFIX}plugin.call_budget_us"),
            self.budget.as_nanos() as f64 / 1e3,
        );
        if self.poisoned {
            return stats;
        }
        if let Some(f) = self.vt.stats {
            let mut got = Stats::default();
            let sink = abi::StatSink {
                struct_size: size_of::<abi::StatSink>() as u32,
                reserved: 0,
                ctx: (&mut got as *mut Stats).cast(),
                emit: stats_emit,
            };
            let status = {
                let _active = crash::enter(&self.notes[2], 0);
                f(self.instance, &sink)
            };
            if let Some(problem) = got.bad {
                let e = self.invalid_in("stats", problem);
                if self.failure.is_none() {
                    self.health.fail(Kind::Policy, &self.name, e);
                }
            } else if status == abi::STATUS_OK {
                for (k, v) in got.values {
                    if !k.starts_with(WALLCLOCK_PREFIX) {
                        stats.values.insert(k, v);
                    }
                }
            }
        }
        stats
    }
}

/// What is wrong with an action code that is none of the three.
#[cold]
fn bad_action(req: &perllm_core::Request, action: u32) -> String {
    format!(
        "request {} has action {action}, not ACTION_DEFER (0), ACTION_ASSIGN (1) or ACTION_REJECT (2)",
        req.id
    )
}

/// The time budget's clock, ns: the monotonic clock `Instant` reads, read directly (two
/// readings cost about half the instructions of `Instant::now` and `elapsed`, on every call).
#[cfg(unix)]
#[inline]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The time budget's clock, ns (elsewhere than Unix: from a process-wide `Instant`).
#[cfg(not(unix))]
#[inline]
fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The checks before a `schedule` call of a plugin policy named `name`: an earlier failure of
/// its own (repeated) or `pending` and `out` of different lengths are errors; a failure of a
/// cost model of its registry is returned for the caller to record as its own.
#[inline]
pub(crate) fn precheck(
    name: &str,
    failure: &Option<HostError>,
    health: &Health,
    pending: &[Pending],
    out: &[Decision],
) -> Result<Option<HostError>, PolicyError> {
    let error = |message: String| {
        Err(PolicyError {
            policy: name.to_string(),
            message,
        })
    };
    if let Some(e) = failure {
        return error(e.to_string());
    }
    if let Some(e) = health.cost_model_failure() {
        return Ok(Some(e));
    }
    if pending.len() != out.len() {
        return error(format!(
            "{} pending requests but {} decision slots",
            pending.len(),
            out.len()
        ));
    }
    Ok(None)
}

/// What a plugin's `stats` emitted: the values, or the first invalid name.
#[derive(Default)]
struct Stats {
    values: Vec<(String, f64)>,
    bad: Option<String>,
}

/// Longest statistic name kept, bytes; most statistics a plugin may emit.
const MAX_STAT_NAME: usize = 256;
const MAX_STATS: usize = 10_000;

extern "C" fn stats_emit(ctx: *mut c_void, name: abi::StrRef, value: f64) {
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `&mut Stats` of `ForeignPolicy::stats`, alive for the call; the guest
    // calls back on the calling thread.
    let got = unsafe { &mut *ctx.cast::<Stats>() };
    if got.bad.is_some() {
        return;
    }
    let problem = if name.ptr.is_null() {
        Some(format!(
            "a statistic with a null name pointer (length {}, value {value})",
            name.len
        ))
    } else if name.len == 0 {
        Some(format!("a statistic with an empty name (value {value})"))
    } else {
        // SAFETY: the guest passes a name valid for the callback; at most 256 bytes are read.
        let bytes = unsafe {
            abi::StrRef {
                ptr: name.ptr,
                len: name.len.min(MAX_STAT_NAME),
            }
            .as_bytes()
        };
        match std::str::from_utf8(bytes) {
            Err(_) if name.len <= MAX_STAT_NAME => Some(format!(
                "a statistic name that is not UTF-8: {:?}",
                String::from_utf8_lossy(bytes)
            )),
            Ok(s) if s.contains('\0') => Some(format!(
                "a statistic name \"{}\" containing a NUL byte (pass the length without the terminator)",
                s.escape_debug()
            )),
            _ => {
                if got.values.len() < MAX_STATS {
                    got.values
                        .push((String::from_utf8_lossy(bytes).into_owned(), value));
                }
                None
            }
        }
    };
    got.bad = problem;
}

impl Drop for ForeignPolicy {
    fn drop(&mut self) {
        // After a panic the instance may be inconsistent: it is leaked rather than destroyed.
        if !self.poisoned
            && let Some(destroy) = self.vt.destroy
        {
            destroy(self.instance);
        }
    }
}

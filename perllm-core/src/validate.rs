//! [`Scenario::build`]: every check of a scenario (all problems in one pass, each with its path)
//! and the resolution of its names into a [`World`]. Apart from `world` so that the types the
//! simulator and policies read import nothing from the checks (names, batching, the simulator's
//! memory estimate) that read them.

use crate::spec::*;
use crate::world::{ModelId, ScenarioError, Server, ServerId, World, fmt_num};
use std::collections::HashMap;

/// The peak and the time-average arrival rate over `[0, duration)`, requests per second.
fn arrival_rates(a: &Arrivals, duration_ns: Nanos) -> (f64, f64) {
    a.rates(duration_ns)
}

/// A sum of shares that is not 1 as a percentage with enough decimals to show that it is not
/// 100% (`99.99995%`, never `100.0%`), at most 12.
fn share_sum(sum: f64) -> String {
    let off = ((sum - 1.0).abs() * 100.0).max(1e-12);
    let decimals = ((-off.log10()).ceil() as i64 + 1).clamp(1, 12) as usize;
    if sum.is_finite() && sum.abs() < 1e6 {
        format!("{:.decimals$}%", sum * 100.0)
    } else {
        format!("{:e}%", sum * 100.0)
    }
}

/// A duration for messages: whole seconds, milliseconds or nanoseconds.
fn fmt_ns(ns: Nanos) -> String {
    if ns.is_multiple_of(SECOND) {
        format!("{} s", ns / SECOND)
    } else if ns.is_multiple_of(MILLISECOND) {
        format!("{} ms", ns / MILLISECOND)
    } else if ns.is_multiple_of(1_000) {
        format!("{} us", ns / 1_000)
    } else {
        format!("{ns} ns")
    }
}

/// A server's PUE: 1.0 when not given; otherwise finite, at least 1 and at most
/// [`limits::MAX_PUE`] (an error is reported and 1.0 used).
fn check_pue(pue: Option<f64>, p: &str, e: &mut impl FnMut(String, String)) -> f64 {
    let Some(v) = pue else { return 1.0 };
    if !(v.is_finite() && v >= 1.0) {
        e(
            format!("{p}.pue"),
            format!(
                "{v} is not a PUE: it must be at least 1 (facility energy per joule of IT energy)"
            ),
        );
        1.0
    } else if v > limits::MAX_PUE {
        e(
            format!("{p}.pue"),
            format!("{v} is above the limit of 5 (a percentage or a power typed as a PUE?)"),
        );
        1.0
    } else {
        v
    }
}

/// What is wrong with `v` as a positive finite quantity of at least `min` (`None`: nothing): the
/// message names the minimum (`min_text`) and an `example` in a suitable unit.
fn below_floor(v: f64, min: f64, unit: &str, min_text: &str, example: &str) -> Option<String> {
    if !finite_pos(v) {
        Some("must be a positive finite number".into())
    } else if v < min {
        Some(format!(
            "{} {unit} is below the {min_text} minimum (a unit mistake? write e.g. `{example}`)",
            fmt_num(v)
        ))
    } else {
        None
    }
}

/// The entry named `name` in `table`, or the message "unknown WHAT `name`" with a suggestion.
fn named<T: Copy>(table: &HashMap<&str, T>, what: &str, name: &str) -> Result<T, String> {
    table.get(name).copied().ok_or_else(|| {
        format!(
            "unknown {what} `{name}`{}",
            did_you_mean(name, table.keys().copied())
        )
    })
}

fn finite_pos(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn check_dist(errs: &mut Vec<ScenarioError>, path: &str, d: &SizeDist) {
    if let Err(m) = d.check() {
        errs.push(ScenarioError::new(path, m));
    }
}

/// The numbers and names of a trace replay (what the replayer would otherwise reject only when the
/// trace is opened).
fn check_trace(errs: &mut Vec<ScenarioError>, t: &TraceSpec, servers: &[Server], sc: &Scenario) {
    let mut e = |p: &str, m: String| errs.push(ScenarioError::new(p, m));
    if !finite_pos(t.speedup) {
        e(
            "workload.trace.speedup",
            format!("must be a positive finite number, not {}", t.speedup),
        );
    }
    if let Some(r) = t.target_rate {
        if !finite_pos(r) {
            e(
                "workload.trace.target_rate",
                format!("must be a positive finite number, not {r}"),
            );
        } else if r > limits::MAX_ARRIVAL_RATE {
            e(
                "workload.trace.target_rate",
                format!(
                    "{} requests/s is above the maximum of 1,000,000 requests/s (a unit mistake? \
                     write e.g. `{}/h`)",
                    fmt_num(r),
                    fmt_num(r)
                ),
            );
        }
    }
    if t.repeat == 0 {
        e("workload.trace.repeat", "must be at least 1".into());
    }
    if let Some((a, b)) = t.window_ns
        && a >= b
    {
        e(
            "workload.trace.window",
            format!("the start ({a} ns) is not before the end ({b} ns)"),
        );
    }
    if let Some(p) = &t.payload
        && let Err(m) = p.check()
    {
        e("workload.trace.payload", m);
    }
    for (what, a) in [
        ("slo_assign", &t.slo_assign),
        ("model_assign", &t.model_assign),
    ] {
        if let Assign::BySize { rules } = a {
            let p = format!("workload.trace.{what}");
            if rules.is_empty() {
                e(&p, "by_size needs at least one rule".into());
            }
            if rules.windows(2).any(|w| w[1].0 <= w[0].0) {
                e(&p, "by_size rules must have increasing max_tokens".into());
            }
            for (_, n) in rules {
                let known = if what == "slo_assign" {
                    sc.slos.iter().any(|s| &s.name == n)
                } else {
                    match sc.models.iter().position(|m| &m.name == n) {
                        Some(i) => servers.iter().any(|s| s.hosts(i as ModelId)),
                        None => false,
                    }
                };
                if !known {
                    e(
                        &p,
                        format!("by_size names `{n}`, which is not a known (hosted) one"),
                    );
                }
            }
        }
    }
}

impl Scenario {
    /// Validate and resolve names; every problem found is returned, not just the first.
    pub fn build(&self) -> Result<World, Vec<ScenarioError>> {
        let unusable = crate::names::unusable(self);
        if !unusable.is_empty() {
            return Err(unusable);
        }
        let mut errs = crate::names::ambiguous(self);
        let mut e = |p: String, m: String| errs.push(ScenarioError::new(p, m));

        if self.duration_ns == 0 {
            e("scenario.duration".into(), "must be positive".into());
        }
        if self.slot_ns > limits::MAX_TIME_PARAM_NS {
            e(
                "scenario.slot".into(),
                format!(
                    "{} is longer than the {} limit (a unit mistake?)",
                    fmt_ns(self.slot_ns),
                    fmt_ns(limits::MAX_TIME_PARAM_NS)
                ),
            );
        }
        fn dup_check<'a>(
            e: &mut impl FnMut(String, String),
            what: &str,
            names: impl Iterator<Item = &'a str>,
        ) -> HashMap<&'a str, usize> {
            let mut map = HashMap::new();
            for (i, n) in names.enumerate() {
                if map.insert(n, i).is_some() {
                    e(
                        format!("{what}[{n}]"),
                        format!("duplicate {what} name `{n}`"),
                    );
                }
            }
            map
        }
        let hw = dup_check(
            &mut e,
            "hardware",
            self.hardware.iter().map(|h| h.name.as_str()),
        );
        let models = dup_check(&mut e, "model", self.models.iter().map(|h| h.name.as_str()));
        let links = dup_check(&mut e, "link", self.links.iter().map(|h| h.name.as_str()));
        dup_check(
            &mut e,
            "server",
            self.servers.iter().map(|h| h.name.as_str()),
        );
        dup_check(&mut e, "slo", self.slos.iter().map(|h| h.name.as_str()));

        for h in &self.hardware {
            let p = format!("hardware[{}]", h.name);
            if let Some(m) = below_floor(
                h.compute_flops,
                limits::MIN_COMPUTE_FLOPS,
                "FLOP/s",
                "1 MFLOP/s",
                "14 TFLOPS",
            ) {
                e(format!("{p}.compute"), m);
            }
            if h.memory_bytes == 0 {
                e(format!("{p}.memory"), "must be positive".into());
            }
            if let Some(m) = below_floor(
                h.memory_bandwidth_bytes_per_s,
                limits::MIN_MEMORY_BANDWIDTH,
                "B/s",
                "1 MB/s",
                "140 GB/s",
            ) {
                e(format!("{p}.memory_bandwidth"), m);
            }
            if !(h.power_idle_w.is_finite() && h.power_idle_w >= 0.0) {
                e(
                    format!("{p}.power.idle"),
                    "must be a non-negative finite number".into(),
                );
            }
            if !(h.power_busy_w.is_finite() && h.power_busy_w >= h.power_idle_w) {
                e(
                    format!("{p}.power.busy"),
                    "must be finite and at least the idle power".into(),
                );
            } else if h.power_busy_w > limits::MAX_POWER_W {
                e(
                    format!("{p}.power.busy"),
                    format!(
                        "{} W is above the 10 MW limit per device (a unit mistake?)",
                        fmt_num(h.power_busy_w)
                    ),
                );
            }
            if let Some(c) = h.contention {
                crate::batching::check_contention(&format!("{p}.contention"), c, &mut e);
            }
            for (n, v) in [
                ("compute_efficiency", h.compute_efficiency),
                ("bandwidth_efficiency", h.bandwidth_efficiency),
            ] {
                if let Some(v) = v
                    && !(v.is_finite() && v > 0.0 && v <= 1.0)
                {
                    e(format!("{p}.{n}"), "must be in (0, 1]".into());
                } else if let Some(v) = v
                    && v < limits::MIN_EFFICIENCY
                {
                    e(
                        format!("{p}.{n}"),
                        format!(
                            "{} is below the 0.1% minimum (a unit mistake? write e.g. `60%`)",
                            fmt_num(v)
                        ),
                    );
                }
            }
        }
        for m in &self.models {
            let p = format!("model[{}]", m.name);
            if !finite_pos(m.params) {
                e(
                    format!("{p}.params"),
                    "must be a positive finite number".into(),
                );
            }
            if m.kv_bytes_per_token == 0 {
                e(format!("{p}.kv_per_token"), "must be positive".into());
            }
        }
        for l in &self.links {
            let p = format!("link[{}]", l.name);
            if let Some(m) = below_floor(
                l.bandwidth_bps,
                limits::MIN_LINK_BPS,
                "bit/s",
                "1 kbit/s",
                "100 Mbps",
            ) {
                e(format!("{p}.bandwidth"), m);
            }
            if l.latency_ns > limits::MAX_TIME_PARAM_NS {
                e(
                    format!("{p}.latency"),
                    format!(
                        "{} is longer than the {} limit (a unit mistake?)",
                        fmt_ns(l.latency_ns),
                        fmt_ns(limits::MAX_TIME_PARAM_NS)
                    ),
                );
            }
            if !(l.energy_j_per_bit.is_finite() && l.energy_j_per_bit >= 0.0) {
                e(
                    format!("{p}.energy"),
                    "must be a non-negative finite number".into(),
                );
            } else if l.energy_j_per_bit > limits::MAX_LINK_J_PER_BIT {
                e(
                    format!("{p}.energy"),
                    format!(
                        "{} J/bit is above the maximum of 1 mJ/bit (a unit mistake? radios spend \
                         nJ to µJ per bit: write e.g. `{} nJ/bit`)",
                        fmt_num(l.energy_j_per_bit),
                        fmt_num(l.energy_j_per_bit)
                    ),
                );
            }
            if let Some(r) = l.redraw_ns
                && r < limits::MIN_REDRAW_NS
            {
                e(
                    format!("{p}.redraw"),
                    format!(
                        "{} is shorter than the 1 ms minimum (each period of a busy link is one simulated event)",
                        fmt_ns(r)
                    ),
                );
            }
            match &l.fluctuation {
                Fluctuation::None => {}
                Fluctuation::Uniform { frac } => {
                    if !(frac.is_finite() && *frac >= 0.0 && *frac < 1.0) {
                        e(
                            format!("{p}.bandwidth"),
                            "fluctuation must be in [0%, 100%)".into(),
                        );
                    }
                }
                Fluctuation::RandomWalk { step, bound } => {
                    if !(step.is_finite()
                        && bound.is_finite()
                        && *step >= 0.0
                        && *bound >= 0.0
                        && *bound < 1.0)
                    {
                        e(
                            format!("{p}.fluctuation"),
                            "random walk needs step >= 0 and bound in [0, 1)".into(),
                        );
                    }
                }
                Fluctuation::Series { points } => {
                    if points.is_empty()
                        || points[0].0 != 0
                        || points.windows(2).any(|w| w[1].0 <= w[0].0)
                        || points.iter().any(|p| !finite_pos(p.1))
                    {
                        e(
                            format!("{p}.fluctuation"),
                            "series must start at time 0, increase strictly in time and have positive factors".into(),
                        );
                    } else if let Some(&(_, f)) = points.iter().find(|p| {
                        !(limits::MIN_BANDWIDTH_FACTOR..=limits::MAX_BANDWIDTH_FACTOR)
                            .contains(&p.1)
                    }) {
                        e(
                            format!("{p}.fluctuation"),
                            format!(
                                "series factor {f} is outside [0.001, 1000] of the mean bandwidth"
                            ),
                        );
                    }
                }
            }
        }

        let mut servers = Vec::with_capacity(self.servers.len());
        for (i, s) in self.servers.iter().enumerate() {
            let p = format!("server[{}]", s.name);
            let h = named(&hw, "hardware", &s.hardware)
                .map_err(|m| e(format!("{p}.hardware"), m))
                .ok();
            let l = named(&links, "link", &s.link)
                .map_err(|m| e(format!("{p}.link"), m))
                .ok();
            if s.count == 0 {
                e(
                    format!("{p}.hardware"),
                    "device count must be positive".into(),
                );
            }
            if s.max_batch == 0 {
                e(format!("{p}.max_batch"), "must be positive".into());
            }
            if s.models.is_empty() {
                e(
                    format!("{p}.models"),
                    "a server must host at least one model".into(),
                );
            }
            let mut ms = Vec::new();
            for m in &s.models {
                match models.get(m.as_str()) {
                    Some(&id) => ms.push(id as ModelId),
                    None => e(format!("{p}.models"), format!("unknown model `{m}`")),
                }
            }
            ms.sort_unstable();
            ms.dedup();
            let mut kv = 0u64;
            if let Some(h) = h {
                let mem = self.hardware[h].memory_bytes as f64 * s.count as f64;
                let weights: f64 = ms
                    .iter()
                    .map(|&m| self.models[m as usize].weight_bytes())
                    .sum();
                if weights >= mem {
                    e(
                        format!("{p}.models"),
                        format!(
                            "the hosted models' weights ({:.1} GB) do not fit in the server's memory ({:.1} GB)",
                            weights / 1e9,
                            mem / 1e9
                        ),
                    );
                } else {
                    kv = (mem - weights) as u64;
                }
            }
            servers.push(Server {
                id: i as ServerId,
                name: s.name.clone(),
                family: s.family.clone(),
                tier: s.tier,
                hardware: h.unwrap_or(0),
                count: s.count,
                models: ms,
                link: l.unwrap_or(0),
                max_batch: s.max_batch,
                kv_capacity_bytes: kv,
                batching: crate::batching::resolve(s, &self.sim, &p, &mut e),
                contention: h.map_or(self.sim.contention, |h| {
                    crate::batching::contention_of(&self.hardware[h], &self.sim)
                }),
                pue: check_pue(s.pue, &p, &mut e),
                idle_charge: s.idle_charge.unwrap_or_default(),
            });
        }
        if self.servers.is_empty() {
            e(
                "server".into(),
                "a scenario needs at least one server".into(),
            );
        }

        if self.slos.is_empty() {
            e(
                "slo".into(),
                "a scenario needs at least one SLO class".into(),
            );
        }
        let mut share = 0.0;
        for s in &self.slos {
            if s.deadline_ns == 0 {
                e(
                    format!("slo[{}].deadline", s.name),
                    "must be positive".into(),
                );
            }
            if !(s.share.is_finite() && (0.0..=1.0).contains(&s.share)) {
                e(
                    format!("slo[{}].share", s.name),
                    "must be between 0% and 100%".into(),
                );
            }
            share += s.share;
        }
        if !self.slos.is_empty() && (share - 1.0).abs() > 1e-6 {
            e(
                "slo".into(),
                format!("SLO shares sum to {}, not 100%", share_sum(share)),
            );
        }

        let w = &self.workload;
        let mut model_shares = Vec::new();
        let mut msum = 0.0;
        for (name, sh) in &w.models {
            match models.get(name.as_str()) {
                Some(&id) => {
                    if !servers.iter().any(|s| s.hosts(id as ModelId)) {
                        e(
                            format!("workload.models.{name}"),
                            format!("no server hosts model `{name}`"),
                        );
                    }
                    model_shares.push((id as ModelId, *sh));
                }
                None => e(
                    format!("workload.models.{name}"),
                    format!("unknown model `{name}`"),
                ),
            }
            if !(sh.is_finite() && *sh >= 0.0) {
                e(
                    format!("workload.models.{name}"),
                    "share must be non-negative".into(),
                );
            }
            msum += sh;
        }
        if w.models.is_empty() {
            e(
                "workload.models".into(),
                "the workload must name at least one model".into(),
            );
        } else if (msum - 1.0).abs() > 1e-6 {
            e(
                "workload.models".into(),
                format!("model shares sum to {}, not 100%", share_sum(msum)),
            );
        }
        check_dist(&mut errs, "workload.prompt_tokens", &w.prompt_tokens);
        check_dist(&mut errs, "workload.output_tokens", &w.output_tokens);
        check_dist(&mut errs, "workload.payload", &w.payload_bytes);
        let mut e = |p: &str, m: String| errs.push(ScenarioError::new(p, m));
        if !(w.output_bytes_per_token.is_finite() && w.output_bytes_per_token >= 0.0) {
            e(
                "workload.output_bytes_per_token",
                "must be non-negative".into(),
            );
        } else if w.output_bytes_per_token > limits::MAX_OUTPUT_BYTES_PER_TOKEN {
            e(
                "workload.output_bytes_per_token",
                format!(
                    "{} bytes per token is above the 1 MB limit",
                    fmt_num(w.output_bytes_per_token)
                ),
            );
        }
        if w.max_prompt_tokens == 0 {
            e("workload.max_prompt_tokens", "must be positive".into());
        }
        if w.max_output_tokens == 0 {
            e("workload.max_output_tokens", "must be positive".into());
        }
        if w.max_requests == Some(0) {
            e("workload.max_requests", "must be positive".into());
        }
        if let Some(t) = &w.trace {
            check_trace(&mut errs, t, &servers, self);
        }
        let mut e = |p: &str, m: String| errs.push(ScenarioError::new(p, m));
        if w.trace.is_none() {
            let bad_rate = |r: f64| !finite_pos(r);
            let bad = match &w.arrivals {
                Arrivals::Poisson { rate } => bad_rate(*rate),
                Arrivals::Gamma { rate, cv } => bad_rate(*rate) || !finite_pos(*cv),
                Arrivals::OnOff {
                    rate,
                    on_ns,
                    off_ns,
                } => bad_rate(*rate) || *on_ns == 0 || *off_ns == Nanos::MAX,
                Arrivals::Diurnal {
                    mean_rate,
                    amplitude,
                    period_ns,
                } => bad_rate(*mean_rate) || !(0.0..=1.0).contains(amplitude) || *period_ns == 0,
                Arrivals::Steps { steps } => {
                    steps.is_empty()
                        || steps[0].0 != 0
                        || steps.windows(2).any(|w| w[1].0 <= w[0].0)
                        || steps.iter().any(|s| !(s.1.is_finite() && s.1 >= 0.0))
                        || steps.iter().all(|s| s.1 == 0.0)
                }
            };
            if bad {
                e(
                    "workload.arrivals",
                    "arrival rates must be positive and finite, times increasing".into(),
                );
            } else if let Arrivals::Gamma { cv, .. } = &w.arrivals
                && *cv > limits::MAX_GAMMA_CV
            {
                e(
                    "workload.arrivals",
                    format!(
                        "gamma cv = {} is above the maximum of 100: nearly every gap would be \
                         zero, in bursts of about cv^2 requests at one instant (measured \
                         arrivals have cv of a few units)",
                        fmt_num(*cv)
                    ),
                );
            } else {
                let (peak, mean) = arrival_rates(&w.arrivals, self.duration_ns);
                let expected = mean * self.duration_ns as f64 / 1e9;
                if peak > limits::MAX_ARRIVAL_RATE {
                    e(
                        "workload.arrivals",
                        format!(
                            "{} requests/s is above the maximum of 1,000,000 requests/s (a unit mistake? \
                             write e.g. `{}/h`)",
                            fmt_num(peak),
                            fmt_num(peak)
                        ),
                    );
                } else if expected > limits::MAX_EXPECTED_REQUESTS && w.max_requests.is_none() {
                    e(
                        "workload.arrivals",
                        format!(
                            "about {expected:.2e} requests expected ({} requests/s on average for {}), \
                             more than the 1e9 a run accepts without `max_requests`: check the \
                             rate and the duration, or set `workload.max_requests` to run them \
                             anyway",
                            fmt_num(mean),
                            fmt_ns(self.duration_ns)
                        ),
                    );
                }
            }
        }
        // Smallest request (1 token each) must fit the KV memory of some server hosting the model.
        for &(m, _) in &model_shares {
            let need = self.models[m as usize].kv_bytes_per_token.saturating_mul(2);
            if !servers
                .iter()
                .any(|s| s.hosts(m) && s.kv_capacity_bytes >= need)
            {
                e(
                    "workload.models",
                    format!(
                        "no server hosting `{}` has KV memory left for a request",
                        self.models[m as usize].name
                    ),
                );
            }
        }
        let ow = &self.objective.weights;
        for (n, v) in [
            ("transmission", ow.transmission),
            ("inference", ow.inference),
            ("idle", ow.idle),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                e(
                    &format!("objective.minimize.{n}"),
                    "energy weights must be non-negative and finite".into(),
                );
            } else if v > limits::MAX_OBJECTIVE_WEIGHT {
                e(
                    &format!("objective.minimize.{n}"),
                    format!(
                        "the weight {} is above the maximum of 1e6 (only the ratios between the \
                         weights matter: scale them down)",
                        fmt_num(v)
                    ),
                );
            }
        }
        let sim = &self.sim;
        if !(sim.step_noise.is_finite() && (0.0..1.0).contains(&sim.step_noise)) {
            e("sim.step_noise", "must be in [0, 1)".into());
        }
        if !(sim.contention.is_finite() && sim.contention >= 0.0) {
            e("sim.contention", "must be non-negative".into());
        } else if sim.contention > limits::MAX_CONTENTION {
            e(
                "sim.contention",
                format!(
                    "{} is above the limit of 10 (each extra sequence in a batch would add {} times the step's estimate)",
                    fmt_num(sim.contention),
                    fmt_num(sim.contention)
                ),
            );
        }
        if sim.drain_ns == Some(0) {
            e("sim.drain", "must be positive".into());
        }
        // The one memory limit of a scenario (perllm_core::footprint): its estimate against
        // `sim.max_memory`.
        let limit = sim
            .max_memory_bytes
            .unwrap_or(crate::footprint::DEFAULT_MEMORY_LIMIT);
        if let Err(m) = crate::footprint::Footprint::of(self).check(limit) {
            e("sim.max_memory", m);
        }
        let tmp_world_servers = &servers;
        for c in &self.objective.constraints {
            if !c.constant.is_finite() {
                e(
                    "objective.constraint",
                    format!("`{}`: constants must be finite", c.source),
                );
            } else if let Err(m) = c.normalised()
                && c.terms.iter().all(|(k, _)| k.is_finite())
            {
                e("objective.constraint", format!("`{}`: {m}", c.source));
            }
            for (coef, q) in &c.terms {
                if !coef.is_finite() {
                    e(
                        "objective.constraint",
                        format!("`{}`: coefficients must be finite", c.source),
                    );
                }
                if let Quantity::Share(t) | Quantity::Occupancy(t) = q {
                    let any = tmp_world_servers.iter().any(|s| match t {
                        Target::Server(n) => &s.name == n,
                        Target::Family(f) => s.family.as_deref() == Some(f.as_str()),
                        Target::Tier(tier) => s.tier == *tier,
                    });
                    if !any {
                        e(
                            "objective.constraint",
                            format!("`{}`: {t:?} names no server", c.source),
                        );
                    }
                }
            }
        }

        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(World {
            scenario: self.clone(),
            hardware: self.hardware.clone(),
            models: self.models.clone(),
            links: self.links.clone(),
            servers,
            slos: self.slos.clone(),
            model_shares,
        })
    }
}

/// "; did you mean `x`?" for a name close to one of `known`, else nothing.
fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    crate::suggest::closest(name, known)
        .map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

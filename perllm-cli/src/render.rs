//! Human-readable rendering of reports and result summaries.

use crate::results::{NA, NO_COMPLETIONS, Results, SummaryRow};
use crate::table::Table;
use crate::util::{fmt_num, pct, si, sig3};
use perllm_core::report::Report;
use std::fmt::Write;

/// A run's report as text tables.
pub fn report(r: &Report, hash: &str, version: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} | policy {} | seed {} | {} of arrivals, horizon {}",
        r.scenario,
        r.policy,
        r.seed,
        si(r.duration_s, "s"),
        si(r.horizon_s, "s")
    );
    if r.ground_truth_policy {
        let _ = writeln!(
            s,
            "note: this policy read the simulator's hidden ground truth (offline oracle)"
        );
    }
    s.push('\n');
    let rejected = if r.rejected_by_reason.is_empty() {
        format!("{} rejected", r.rejected)
    } else {
        let parts: Vec<String> = r
            .rejected_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!("{} rejected ({})", r.rejected, parts.join(", "))
    };
    let mut t = Table::new(&["metric", "value"]);
    let mut kv = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    kv(
        "requests",
        format!(
            "{} arrived, {} completed, {rejected}",
            r.arrived, r.completed
        ),
    );
    kv(
        "deadlines",
        format!(
            "{} met, attainment {}",
            r.deadline_met,
            pct(r.deadline_attainment)
        ),
    );
    kv(
        "throughput",
        format!(
            "{} req/s completed, goodput {} req/s met their deadline",
            sig3(r.throughput_rps),
            sig3(r.goodput_rps)
        ),
    );
    kv(
        "",
        format!(
            "(per second of the {} arrival window, in which {} req/s arrived)",
            si(r.duration_s, "s"),
            sig3(if r.duration_s > 0.0 {
                r.arrived as f64 / r.duration_s
            } else {
                0.0
            })
        ),
    );
    let none = r.completed == 0;
    let na = |v: String| {
        if none {
            format!("{NA} ({NO_COMPLETIONS})")
        } else {
            v
        }
    };
    let p = &r.latency_s;
    kv(
        "latency D",
        na(format!(
            "mean {}, p50 {}, p90 {}, p99 {}, max {}",
            si(p.mean, "s"),
            si(p.p50, "s"),
            si(p.p90, "s"),
            si(p.p99, "s"),
            si(p.max, "s")
        )),
    );
    let q = &r.ttft_s;
    kv(
        "first token",
        na(format!("p50 {}, p99 {}", si(q.p50, "s"), si(q.p99, "s"))),
    );
    let e = &r.energy;
    kv(
        "energy",
        format!(
            "{} = transmission {} + inference {} + idle {}",
            si(e.total_j, "J"),
            si(e.transmission_j, "J"),
            si(e.inference_j, "J"),
            si(e.idle_j, "J")
        ),
    );
    kv(
        "energy/request",
        na(format!(
            "{} ({} per output token)",
            si(e.per_request_j, "J"),
            si(e.per_output_token_j, "J")
        )),
    );
    kv(
        "objective",
        format!("{} (weighted energy)", si(e.weighted_j, "J")),
    );
    s.push_str(&t.render());
    s.push('\n');

    let mut t = Table::new(&[
        "SLO class",
        ">deadline",
        ">arrived",
        ">met",
        ">attainment",
        ">p50 D",
        ">p99 D",
    ]);
    for c in &r.slos {
        // A class that completed nothing has no latency.
        let latency = |v: f64| {
            if c.completed == 0 {
                NA.to_string()
            } else {
                si(v, "s")
            }
        };
        t.row(vec![
            c.name.clone(),
            si(c.deadline_s, "s"),
            c.arrived.to_string(),
            c.met.to_string(),
            pct(c.attainment),
            latency(c.latency_s.p50),
            latency(c.latency_s.p99),
        ]);
    }
    s.push_str(&t.render());
    s.push('\n');

    let mut t = Table::new(&[
        "server",
        "tier",
        ">assigned",
        ">completed",
        ">share",
        ">busy",
        ">energy",
    ]);
    for v in &r.servers {
        t.row(vec![
            v.name.clone(),
            v.tier.clone(),
            v.assigned.to_string(),
            v.completed.to_string(),
            pct(v.share),
            pct(v.busy_fraction),
            si(v.inference_j + v.idle_j + v.transmission_j, "J"),
        ]);
    }
    s.push_str(&t.render());
    let _ = writeln!(
        s,
        "busy = share of the {} horizon spent running engine steps (arrivals, then the drain)",
        si(r.horizon_s, "s")
    );
    if !r.policy_stats.values.is_empty() {
        s.push('\n');
        let parts: Vec<String> = r
            .policy_stats
            .values
            .iter()
            .map(|(k, v)| format!("{k} {}", fmt_num(*v)))
            .collect();
        let _ = writeln!(s, "policy stats: {}", parts.join(", "));
    }
    if r.sim.skipped_rows > 0 {
        let _ = writeln!(s, "trace rows skipped as malformed: {}", r.sim.skipped_rows);
    }
    let _ = writeln!(s, "\nscenario {hash} | perllm {version}");
    s
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.2}x"))
}

/// `mean ± sd`, or the mean alone when there was one seed (a spread of one value is no spread).
fn mean_sd(seeds: u64, m: f64, sd: f64, f: impl Fn(f64) -> String) -> String {
    if seeds > 1 {
        format!("{} ± {}", f(m), f(sd))
    } else {
        f(m)
    }
}

/// [`mean_sd`] of a per-completion figure: `n/a` when it does not exist.
fn mean_sd_opt(seeds: u64, m: Option<f64>, sd: Option<f64>, f: impl Fn(f64) -> String) -> String {
    match (m, sd) {
        (Some(m), Some(sd)) => mean_sd(seeds, m, sd, f),
        _ => NA.to_string(),
    }
}

/// The summary tables of a results document, one per sweep point.
pub fn summary(res: &Results) -> String {
    let mut s = String::new();
    let reference = res.reference.as_deref().unwrap_or("-");
    let _ = writeln!(
        s,
        "{} | {} policies x {} seeds{} | reference {reference}{}",
        res.scenario.name,
        res.policies.len(),
        res.seeds.len(),
        if res.parameters.is_empty() {
            String::new()
        } else {
            format!(
                " x {} points",
                res.runs / (res.policies.len() * res.seeds.len()).max(1) as u64
            )
        },
        match &res.shard {
            Some(sh) => format!(
                " | shard {}/{} ({} of {} runs)",
                sh.index,
                sh.count,
                res.rows.len(),
                res.runs
            ),
            None => String::new(),
        }
    );
    let has_oracle = res
        .summary
        .iter()
        .any(|r| r.true_costs_energy_gap.is_some());
    let has_bounds = !res.bounds.is_empty();
    let mut points: Vec<u64> = res.summary.iter().map(|r| r.point).collect();
    points.dedup();
    for p in points {
        // Policies whose per-completion figures do not exist (no completed request in some
        // seed) are ranked last: their n/a must not read as the lowest energy or latency.
        let (mut rows, na): (Vec<&SummaryRow>, Vec<&SummaryRow>) = res
            .summary
            .iter()
            .filter(|r| r.point == p)
            .partition(|r| r.na_reason.is_none());
        let na_policies: Vec<String> = na
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    r.policy,
                    r.na_reason.as_deref().unwrap_or(NO_COMPLETIONS)
                )
            })
            .collect();
        rows.extend(na);
        s.push('\n');
        if !rows[0].params.is_empty() {
            let _ = writeln!(s, "point {p}: {}", rows[0].params_text());
        }
        if has_bounds {
            s.push_str(&bound_line(res, p, rows[0]));
        }
        let mut header = vec![
            "policy",
            ">goodput req/s",
            ">x ref",
            ">attainment",
            ">x ref",
            ">energy/request",
            ">x ref",
            ">p99 latency",
            ">x ref",
        ];
        if has_bounds {
            header.push(">vs bound");
        }
        if has_oracle {
            header.push(">vs true-costs");
        }
        let mut t = Table::new(&header);
        for r in rows {
            let mut cells = vec![
                r.policy.clone(),
                mean_sd(r.seeds, r.goodput_rps_mean, r.goodput_rps_std, sig3),
                ratio(r.goodput_ratio),
                mean_sd(
                    r.seeds,
                    r.deadline_attainment_mean,
                    r.deadline_attainment_std,
                    pct,
                ),
                ratio(r.attainment_ratio),
                mean_sd_opt(
                    r.seeds,
                    r.energy_per_request_j_mean,
                    r.energy_per_request_j_std,
                    |x| si(x, "J"),
                ),
                ratio(r.energy_per_request_ratio),
                mean_sd_opt(r.seeds, r.latency_p99_s_mean, r.latency_p99_s_std, |x| {
                    si(x, "s")
                }),
                ratio(r.latency_p99_ratio),
            ];
            if has_bounds {
                cells.push(
                    r.bound_gap
                        .map_or_else(|| "n/a".into(), |g| format!("{:+.1}%", g * 100.0)),
                );
            }
            if has_oracle {
                cells.push(
                    r.true_costs_energy_gap
                        .map_or_else(|| "-".into(), |g| format!("{:+.1}%", g * 100.0)),
                );
            }
            t.row(cells);
        }
        s.push_str(&t.render());
        if !na_policies.is_empty() {
            let _ = writeln!(
                s,
                "n/a: energy/request and p99 latency do not exist, ranked last: {}",
                na_policies.join(", ")
            );
        }
    }
    if !res.failed.is_empty() {
        let _ = writeln!(
            s,
            "\n{} run{} failed and {} not in this summary:",
            res.failed.len(),
            if res.failed.len() == 1 { "" } else { "s" },
            if res.failed.len() == 1 { "is" } else { "are" }
        );
        for f in &res.failed {
            let _ = writeln!(
                s,
                "  run {} (policy {}, seed {}, point {})",
                f.run, f.policy, f.seed, f.point
            );
        }
    }
    s.push_str("\ngoodput = requests that met their deadline per second of the arrival window\n");
    if res.seeds.len() > 1 {
        s.push_str("mean ± sample standard deviation over seeds; ");
    } else {
        s.push_str("one seed, so no spread; ");
    }
    s.push_str("x ref = mean / reference mean");
    if has_bounds {
        s.push_str(
            "; vs bound = goodput below the goodput bound (no policy can beat it; n/a: not computed)",
        );
    }
    if has_oracle {
        s.push_str(
            "; vs true-costs = weighted energy above that of `true-costs` (the LP fed the true mean costs)",
        );
    }
    let _ = writeln!(
        s,
        "\nscenario {} | perllm {}",
        res.scenario.hash, res.perllm_version
    );
    s
}

/// One line on the goodput bound of point `p`: its value, or why it is n/a.
fn bound_line(res: &Results, p: u64, first: &SummaryRow) -> String {
    match first.bound_goodput_rps {
        Some(g) => {
            let att: Vec<f64> = res
                .bounds
                .iter()
                .filter(|b| b.point == p)
                .filter_map(|b| b.bound.as_ref().map(|b| b.attainment))
                .collect();
            let att = att.iter().sum::<f64>() / att.len().max(1) as f64;
            format!(
                "bound (no policy can beat it): goodput {} req/s, attainment {}, energy >= {} per served request\n",
                sig3(g),
                pct(att),
                first
                    .bound_energy_per_request_j
                    .map_or_else(|| "n/a".to_string(), |e| si(e, "J"))
            )
        }
        None => {
            let why = res
                .bounds
                .iter()
                .find(|b| b.point == p && b.bound.is_none())
                .and_then(|b| b.error.clone())
                .unwrap_or_else(|| "not computed for every seed".into());
            format!("bound: n/a ({why})\n")
        }
    }
}

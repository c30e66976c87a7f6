//! The charts of a results document and a self-contained HTML page (drawing in `chart.rs`).
//!
//! Charts: goodput and deadline attainment per policy, as lines against the offered load for a
//! load sweep or as bars for one load (`compare`, `run`), with whiskers of one standard deviation
//! over seeds; energy per request split into transmission / inference / idle per policy; the
//! latency CDF per policy on a log time axis; the share of requests per server over time, one
//! chart per policy; cumulative regret per policy (for policies that report a `regret` series).
//! Per-run charts use one sweep point (the last one, the highest load of a load sweep) and
//! average over seeds.

use crate::chart::{Series, XAxis, bars, lines, stacked_bars, stacked_shares};
use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::results::{Results, SummaryRow};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A drawn chart: file stem, title, caption and SVG text.
pub struct Chart {
    /// File name without `.svg`.
    pub stem: String,
    /// Title.
    pub title: String,
    /// One sentence under the chart in the HTML page.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

fn policies(res: &Results) -> Vec<String> {
    res.policies.iter().map(|p| p.name.clone()).collect()
}

fn point_desc(res: &Results, point: u64) -> String {
    let Some(s) = res.summary.iter().find(|s| s.point == point) else {
        return String::new();
    };
    if s.params.is_empty() {
        return String::new();
    }
    format!(" at {}", s.params_text())
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every chart of a results document.
pub fn charts(res: &Results) -> Result<Vec<Chart>> {
    let pols = policies(res);
    let mut out = Vec::new();
    let mut points: Vec<u64> = res.summary.iter().map(|s| s.point).collect();
    points.sort_unstable();
    points.dedup();
    let spread = |sd: f64, s: &SummaryRow| if s.seeds > 1 { sd } else { 0.0 };
    let seeds_note = if res.seeds.len() > 1 {
        format!(
            "mean over {} seeds, whiskers one sample standard deviation each side",
            res.seeds.len()
        )
    } else {
        "one seed".to_string()
    };
    if points.len() > 1 {
        // A load sweep: one line per policy against the offered load.
        let by_policy = |f: fn(&SummaryRow) -> (f64, f64)| -> Vec<Series> {
            pols.iter()
                .filter_map(|p| {
                    let mut rows: Vec<&SummaryRow> =
                        res.summary.iter().filter(|s| &s.policy == p).collect();
                    rows.sort_by(|a, b| a.offered_load_rps.total_cmp(&b.offered_load_rps));
                    (!rows.is_empty()).then(|| Series {
                        name: p.clone(),
                        points: rows.iter().map(|s| (s.offered_load_rps, f(s).0)).collect(),
                        spread: rows.iter().map(|s| spread(f(s).1, s)).collect(),
                    })
                })
                .collect()
        };
        out.push(Chart {
            stem: "goodput".into(),
            title: "Goodput vs offered load".into(),
            caption: format!(
                "Requests that met their deadline per second of the arrival window, against \
                 requests arrived per second; {seeds_note}."
            ),
            svg: lines(
                "Goodput vs offered load",
                "offered load (requests/s)",
                "goodput (requests/s)",
                &by_policy(|s| (s.goodput_rps_mean, s.goodput_rps_std)),
                XAxis::Linear,
                true,
            )?,
        });
        out.push(Chart {
            stem: "attainment".into(),
            title: "Deadline attainment vs offered load".into(),
            caption: format!(
                "Share of arrived requests completed within their deadline; {seeds_note}."
            ),
            svg: lines(
                "Deadline attainment vs offered load",
                "offered load (requests/s)",
                "deadline attainment",
                &by_policy(|s| (s.deadline_attainment_mean, s.deadline_attainment_std)),
                XAxis::Linear,
                true,
            )?,
        });
    } else {
        // One load (`compare`, `run`): a bar per policy.
        let at = point_desc(res, points.first().copied().unwrap_or(0));
        let here: Vec<&SummaryRow> = pols
            .iter()
            .filter_map(|p| res.summary.iter().find(|s| &s.policy == p))
            .collect();
        let names: Vec<String> = here.iter().map(|s| s.policy.clone()).collect();
        let load = here.first().map_or(0.0, |s| s.offered_load_rps);
        // A bar per policy of a column of the summary rows, with its spread (none with one seed).
        let bar_chart = |stem: &str,
                         title: String,
                         caption: String,
                         value_desc: &str,
                         mean: fn(&SummaryRow) -> f64,
                         sd: fn(&SummaryRow) -> f64|
         -> Result<Chart> {
            let means: Vec<f64> = here.iter().map(|s| mean(s)).collect();
            let spreads: Vec<f64> = here.iter().map(|s| spread(sd(s), s)).collect();
            Ok(Chart {
                stem: stem.into(),
                svg: bars(&title, value_desc, &names, &means, &spreads)?,
                title,
                caption,
            })
        };
        out.push(bar_chart(
            "goodput",
            format!("Goodput{at}"),
            format!(
                "Requests that met their deadline per second of the arrival window ({} req/s \
                 offered); {seeds_note}.",
                crate::util::sig3(load)
            ),
            "goodput (requests/s)",
            |s| s.goodput_rps_mean,
            |s| s.goodput_rps_std,
        )?);
        out.push(bar_chart(
            "attainment",
            format!("Deadline attainment{at}"),
            format!("Share of arrived requests completed within their deadline; {seeds_note}."),
            "deadline attainment",
            |s| s.deadline_attainment_mean,
            |s| s.deadline_attainment_std,
        )?);
    }

    let point = res.summary.iter().map(|s| s.point).max().unwrap_or(0);
    let at = point_desc(res, point);
    let here: Vec<&SummaryRow> = pols
        .iter()
        .filter_map(|p| {
            res.summary
                .iter()
                .find(|s| s.point == point && &s.policy == p)
        })
        .collect();
    // Energy per completed request does not exist for a policy that completed nothing in some
    // seed: no bar (a bar at 0 would look best), named in the caption.
    let (here, na): (Vec<&SummaryRow>, Vec<&SummaryRow>) = here
        .into_iter()
        .partition(|s| s.energy_per_request_j_mean.is_some());
    let na_note = if na.is_empty() {
        String::new()
    } else {
        let n: Vec<&str> = na.iter().map(|s| s.policy.as_str()).collect();
        format!(
            " n/a ({}): {}.",
            crate::results::NO_COMPLETIONS,
            n.join(", ")
        )
    };
    let names: Vec<String> = here.iter().map(|s| s.policy.clone()).collect();
    out.push(Chart {
        stem: "energy".into(),
        title: format!("Energy per request{at}"),
        caption: format!(
            "Transmission, inference and idle energy per completed request{at}, mean over seeds.{na_note}"
        ),
        svg: stacked_bars(
            &format!("Energy per request{at}"),
            "joules per completed request",
            &names,
            &[
                (
                    "transmission",
                    here.iter()
                        .map(|s| s.energy_per_request_transmission_j_mean.unwrap_or(0.0))
                        .collect(),
                ),
                (
                    "inference",
                    here.iter()
                        .map(|s| s.energy_per_request_inference_j_mean.unwrap_or(0.0))
                        .collect(),
                ),
                (
                    "idle",
                    here.iter()
                        .map(|s| s.energy_per_request_idle_j_mean.unwrap_or(0.0))
                        .collect(),
                ),
            ],
        )?,
    });

    // Latency CDF: quantile curves averaged over seeds.
    let runs_of = |p: &str| -> Vec<usize> {
        res.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.point == point && r.policy == p)
            .map(|(i, _)| i)
            .collect()
    };
    let mut cdf = Vec::new();
    for p in &pols {
        let qs: Vec<&Vec<f64>> = runs_of(p)
            .into_iter()
            .map(|i| &res.details[i].latency_quantiles_s)
            .filter(|q| !q.is_empty())
            .collect();
        if qs.is_empty() {
            continue;
        }
        let n = qs.iter().map(|q| q.len()).min().unwrap_or(0);
        let pts: Vec<(f64, f64)> = (0..n)
            .map(|k| {
                let x = qs.iter().map(|q| q[k]).sum::<f64>() / qs.len() as f64;
                (x.max(1e-6), k as f64 / (n - 1).max(1) as f64)
            })
            .collect();
        cdf.push(Series {
            name: p.clone(),
            points: pts,
            spread: Vec::new(),
        });
    }
    out.push(Chart {
        stem: "latency-cdf".into(),
        title: format!("Latency CDF{at}"),
        caption: format!(
            "Distribution of the processing time D of completed requests{at}, on a log time axis \
             (quantiles averaged over seeds, from the fastest request to the slowest)."
        ),
        svg: lines(
            &format!("Latency CDF{at}"),
            "processing time D (log scale)",
            "fraction of completed requests",
            &cdf,
            XAxis::Log,
            true,
        )?,
    });

    // Share of requests per server over time, per policy.
    for p in &pols {
        let idx = runs_of(p);
        let Some(&first) = idx.first() else { continue };
        let t0 = &res.details[first].timeline;
        let buckets = idx
            .iter()
            .map(|&i| res.details[i].timeline.assigned.len())
            .max()
            .unwrap_or(0);
        if buckets == 0 {
            continue;
        }
        let mut xs = Vec::new();
        let mut shares = Vec::new();
        for b in 0..buckets {
            let mut counts = vec![0u64; t0.servers.len()];
            for &i in &idx {
                if let Some(row) = res.details[i].timeline.assigned.get(b) {
                    for (c, v) in counts.iter_mut().zip(row) {
                        *c += v;
                    }
                }
            }
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            xs.push((b as f64 + 0.5) * t0.bucket_s);
            shares.push(
                counts
                    .iter()
                    .map(|c| *c as f64 / total as f64)
                    .collect::<Vec<f64>>(),
            );
        }
        if xs.is_empty() {
            continue;
        }
        out.push(Chart {
            stem: format!("shares-{}", file_safe(p)),
            title: format!("Requests per server over time: {p}{at}"),
            caption: format!(
                "Share of the requests `{p}` assigned to each server in each {:.3} s window{at}, all seeds.",
                t0.bucket_s
            ),
            svg: stacked_shares(
                &format!("Requests per server: {p}{at}"),
                "simulated time (s)",
                &t0.servers,
                &xs,
                &shares,
            )?,
        });
    }

    // Cumulative regret (first seed's series per policy that reports one).
    let regret: Vec<Series> = pols
        .iter()
        .filter_map(|p| {
            runs_of(p)
                .into_iter()
                .map(|i| &res.details[i].regret)
                .find(|r| !r.is_empty())
                .map(|r| Series {
                    name: p.clone(),
                    points: r.clone(),
                    spread: Vec::new(),
                })
        })
        .collect();
    if !regret.is_empty() {
        out.push(Chart {
            stem: "regret".into(),
            title: format!("Cumulative regret{at}"),
            caption: format!("Cumulative regret reported by learning policies{at}, first seed."),
            svg: lines(
                &format!("Cumulative regret{at}"),
                "simulated time (s)",
                "cumulative regret",
                &regret,
                XAxis::Linear,
                true,
            )?,
        });
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

/// The self-contained HTML page: provenance, the summary table and every chart inline.
pub fn html(res: &Results, charts: &[Chart]) -> String {
    let mut h = String::new();
    let title = format!("perllm {}: {}", res.kind, res.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
body{{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}}\n\
table{{border-collapse:collapse;margin:1em 0;font-size:14px}}\n\
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\n\
th:first-child,td:first-child{{text-align:left}}\n\
th{{background:#f3f3f3}}\nfigure{{margin:2em 0}}\nfigcaption{{color:#555;font-size:14px}}\n\
code{{background:#f3f3f3;padding:1px 4px}}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<p>Scenario <code>{}</code> ({}), {} policies x {} seeds, {} runs{}. Reference policy: <code>{}</code>. \
Cost model <code>{}</code>. perllm {}.</p>",
        esc(&res.scenario.file),
        esc(&res.scenario.hash),
        res.policies.len(),
        res.seeds.len(),
        res.rows.len(),
        match res.shard {
            Some(s) => format!(" (shard {}/{} of {} runs)", s.index, s.count, res.runs),
            None => String::new(),
        },
        esc(res.reference.as_deref().unwrap_or("-")),
        esc(&res.cost_model.name),
        esc(&res.perllm_version)
    );
    h.push_str("<h2>Summary</h2>\n<table>\n<tr><th>policy</th>");
    let keys: Vec<&str> = res.parameters.iter().map(|p| p.key.as_str()).collect();
    for k in &keys {
        let _ = write!(h, "<th>{}</th>", esc(k));
    }
    h.push_str(
        "<th>seeds</th><th>load req/s</th><th>goodput req/s</th><th>x ref</th><th>attainment</th><th>x ref</th>\
<th>energy/request J</th><th>x ref</th><th>p99 latency s</th><th>x ref</th><th>vs bound</th><th>vs true-costs</th></tr>\n",
    );
    for s in &res.summary {
        let _ = write!(h, "<tr><td>{}</td>", esc(&s.policy));
        for k in &keys {
            let v = s.params.get(*k).map_or_else(String::new, |v| {
                v.as_str().map_or_else(|| v.to_string(), String::from)
            });
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        // A spread of one seed is no spread: the mean alone.
        let ms = |m: f64, sd: f64, digits: usize| {
            if s.seeds > 1 {
                format!("{m:.digits$} ± {sd:.digits$}")
            } else {
                format!("{m:.digits$}")
            }
        };
        let msn = |m: Option<f64>, sd: Option<f64>, digits: usize| match (m, sd) {
            (Some(m), Some(sd)) => ms(m, sd, digits),
            _ => crate::results::NA.to_string(),
        };
        let _ = writeln!(
            h,
            "<td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{}%</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.seeds,
            s.offered_load_rps,
            ms(s.goodput_rps_mean, s.goodput_rps_std, 3),
            opt(s.goodput_ratio, |x| format!("{x:.2}")),
            ms(
                s.deadline_attainment_mean * 100.0,
                s.deadline_attainment_std * 100.0,
                1
            ),
            opt(s.attainment_ratio, |x| format!("{x:.2}")),
            msn(s.energy_per_request_j_mean, s.energy_per_request_j_std, 1),
            opt(s.energy_per_request_ratio, |x| format!("{x:.2}")),
            msn(s.latency_p99_s_mean, s.latency_p99_s_std, 3),
            opt(s.latency_p99_ratio, |x| format!("{x:.2}")),
            opt(s.bound_gap, |g| format!("{:+.1}%", g * 100.0)),
            opt(s.true_costs_energy_gap, |g| format!("{:+.1}%", g * 100.0)),
        );
    }
    let _ = write!(
        h,
        "</table>\n<p>goodput = requests that met their deadline per second of the arrival window; \
{}; x ref = mean / reference mean; \
vs bound = goodput below the goodput bound (no policy can beat it; n/a: not computed); \
vs true-costs = weighted energy above that of `true-costs` (PerLLM's LP fed the true mean costs).</p>\n\
<h2>Policies</h2>\n<table>\n<tr><th>name</th><th>version</th><th>abi</th><th>source</th></tr>\n",
        if res.seeds.len() > 1 {
            "mean ± sample standard deviation over seeds"
        } else {
            "one seed, so no spread"
        }
    );
    for p in &res.policies {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.version),
            p.abi.as_deref().unwrap_or("-"),
            esc(&p.source)
        );
    }
    h.push_str("</table>\n<h2>Charts</h2>\n");
    for c in charts {
        let _ = write!(
            h,
            "<figure id=\"{}\">\n<h3>{}</h3>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            esc(&c.stem),
            esc(&c.title),
            c.svg.trim(),
            esc(&c.caption)
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Write every chart as SVG and the HTML page into `dir`, all-or-nothing; the files written.
pub fn write_all(
    res: &Results,
    dir: &Path,
    input: &Path,
    term: &crate::term::Term,
) -> Result<Vec<PathBuf>> {
    if res.rows.is_empty() {
        return Err(CliError::input("the results file has no runs to plot"));
    }
    let cs = charts(res)?;
    let mut out = Outputs::new();
    let files: Vec<_> = cs
        .iter()
        .map(|c| out.open(&dir.join(format!("{}.svg", c.stem))))
        .collect::<Result<_>>()?;
    // The page last, so it is renamed into place after the charts it shows.
    let index = out.open(&dir.join("index.html"))?;
    out.refuse_inputs(&crate::inputs::one(input, "the results file"))?;
    out.report_created_for(term, Some(dir));
    for (f, c) in files.into_iter().zip(&cs) {
        f.write_text(&c.svg)?;
    }
    index.write_text(&html(res, &cs))?;
    out.commit()
}

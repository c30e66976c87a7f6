//! SVG plots (plotters, SVG backend, no system fonts) and a self-contained HTML page.
//!
//! Charts: goodput and deadline attainment vs offered load per policy; energy per request split
//! into transmission / inference / idle per policy; the latency CDF per policy; the share of
//! requests per server over time, one chart per policy; cumulative regret per policy (for
//! policies that report a `regret` series). Per-run charts use one sweep point (the last one, the
//! highest load of a load sweep) and average over seeds.

use crate::error::{CliError, Result};
use crate::output::Outputs;
use crate::results::{Results, SummaryRow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const W: u32 = 760;
const H: u32 = 440;
const FONT: &str = "sans-serif";
/// Series with at most this many points get a marker at each point.
const MAX_MARKERS: usize = 30;

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

fn color(i: usize) -> RGBColor {
    // Okabe-Ito, colour-blind safe, then a few more.
    const C: [(u8, u8, u8); 10] = [
        (0, 114, 178),
        (230, 159, 0),
        (0, 158, 115),
        (204, 121, 167),
        (86, 180, 233),
        (213, 94, 0),
        (240, 228, 66),
        (0, 0, 0),
        (120, 120, 120),
        (150, 75, 0),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

fn draw_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError::run(format!("cannot draw the {what} chart: {e:?}"))
}

fn range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        return (lo - pad)..(hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad)..(hi + pad)
}

fn policies(res: &Results) -> Vec<String> {
    res.policies.iter().map(|p| p.name.clone()).collect()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn with_svg(f: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err("background"))?;
        f(&root)?;
        root.present().map_err(draw_err("output"))?;
    }
    Ok(buf)
}

/// A line chart of `(x, y)` series, one per name, with markers.
fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    y_floor_zero: bool,
) -> Result<String> {
    with_svg(|root| {
        let pts = series.iter().flat_map(|(_, s)| s.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if y_floor_zero {
            y0 = 0.0f64.min(y0);
        }
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(range(x0, x1), range(y0, y1))
            .map_err(draw_err(title))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        for (i, (name, s)) in series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))
                .map_err(draw_err(title))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            // Markers only where they carry information (sweep points), not on dense curves.
            if s.len() <= MAX_MARKERS {
                chart
                    .draw_series(s.iter().map(|&p| Circle::new(p, 4, c.filled())))
                    .map_err(draw_err(title))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        Ok(())
    })
}

/// Stacked bars: one bar per name, one layer per series.
fn stacked_bars(
    title: &str,
    y_desc: &str,
    names: &[String],
    layers: &[(&str, Vec<f64>)],
) -> Result<String> {
    with_svg(|root| {
        let n = names.len();
        let top = (0..n)
            .map(|i| layers.iter().map(|(_, v)| v[i].max(0.0)).sum::<f64>())
            .fold(0.0f64, f64::max);
        // Headroom for the legend above the tallest bar.
        let top = if top > 0.0 { top * 1.35 } else { 1.0 };
        let labels = names.to_vec();
        let fmt = move |x: &f64| {
            let r = x.round();
            if (x - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < labels.len() {
                labels[r as usize].clone()
            } else {
                String::new()
            }
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.6f64..(n as f64 - 0.4), 0f64..top)
            .map_err(draw_err(title))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&fmt)
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        let mut base = vec![0.0; n];
        for (li, (layer, vals)) in layers.iter().enumerate() {
            let c = color(li);
            let rects: Vec<Rectangle<(f64, f64)>> = (0..n)
                .map(|i| {
                    let lo = base[i];
                    let hi = lo + vals[i].max(0.0);
                    base[i] = hi;
                    Rectangle::new([(i as f64 - 0.35, lo), (i as f64 + 0.35, hi)], c.filled())
                })
                .collect();
            chart
                .draw_series(rects)
                .map_err(draw_err(title))?
                .label(*layer)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        Ok(())
    })
}

/// Stacked areas of shares (each x's values sum to 1), one layer per name.
fn stacked_shares(
    title: &str,
    x_desc: &str,
    names: &[String],
    xs: &[f64],
    shares: &[Vec<f64>],
) -> Result<String> {
    with_svg(|root| {
        let x1 = xs.last().copied().unwrap_or(1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x1.max(1e-9), 0f64..1.0)
            .map_err(draw_err(title))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("share of assigned requests")
            .label_style((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        // Cumulative tops, drawn from the top layer down so each lower layer covers its part.
        let cum: Vec<Vec<f64>> = shares
            .iter()
            .map(|row| {
                let mut acc = 0.0;
                row.iter()
                    .map(|v| {
                        acc += v;
                        acc
                    })
                    .collect()
            })
            .collect();
        for k in (0..names.len()).rev() {
            let c = color(k);
            let pts: Vec<(f64, f64)> = xs.iter().zip(&cum).map(|(x, row)| (*x, row[k])).collect();
            chart
                .draw_series(AreaSeries::new(pts, 0.0, c.mix(0.85)).border_style(c))
                .map_err(draw_err(title))?
                .label(names[k].as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()
            .map_err(draw_err(title))?;
        Ok(())
    })
}

fn point_desc(res: &Results, point: u64) -> String {
    let Some(s) = res.summary.iter().find(|s| s.point == point) else {
        return String::new();
    };
    if s.params.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = s
        .params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), String::from)
            )
        })
        .collect();
    format!(" at {}", parts.join(", "))
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
    let by_policy = |f: fn(&SummaryRow) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        pols.iter()
            .map(|p| {
                let mut pts: Vec<(f64, f64)> = res
                    .summary
                    .iter()
                    .filter(|s| &s.policy == p)
                    .map(|s| (s.offered_load_rps, f(s)))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                (p.clone(), pts)
            })
            .filter(|(_, pts)| !pts.is_empty())
            .collect()
    };
    out.push(Chart {
        stem: "goodput".into(),
        title: "Goodput vs offered load".into(),
        caption:
            "Deadline-met completions per second against arrivals per second, mean over seeds."
                .into(),
        svg: lines(
            "Goodput vs offered load",
            "offered load (requests/s)",
            "goodput (requests/s)",
            &by_policy(|s| s.goodput_rps_mean),
            true,
        )?,
    });
    out.push(Chart {
        stem: "attainment".into(),
        title: "Deadline attainment vs offered load".into(),
        caption: "Share of arrived requests completed within their deadline, mean over seeds."
            .into(),
        svg: lines(
            "Deadline attainment vs offered load",
            "offered load (requests/s)",
            "deadline attainment",
            &by_policy(|s| s.deadline_attainment_mean),
            true,
        )?,
    });

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
    let names: Vec<String> = here.iter().map(|s| s.policy.clone()).collect();
    out.push(Chart {
        stem: "energy".into(),
        title: format!("Energy per request{at}"),
        caption: format!(
            "Transmission, inference and idle energy per completed request{at}, mean over seeds."
        ),
        svg: stacked_bars(
            &format!("Energy per request{at}"),
            "joules per completed request",
            &names,
            &[
                (
                    "transmission",
                    here.iter()
                        .map(|s| s.energy_per_request_transmission_j_mean)
                        .collect(),
                ),
                (
                    "inference",
                    here.iter()
                        .map(|s| s.energy_per_request_inference_j_mean)
                        .collect(),
                ),
                (
                    "idle",
                    here.iter()
                        .map(|s| s.energy_per_request_idle_j_mean)
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
    let mut xmax = 0.0f64;
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
                (x, k as f64 / (n - 1).max(1) as f64)
            })
            .collect();
        if n > 1 {
            xmax = xmax.max(pts[(n - 1) * 99 / 100].0);
        }
        cdf.push((p.clone(), pts));
    }
    for (_, pts) in &mut cdf {
        pts.retain(|(x, _)| *x <= xmax * 1.1);
    }
    out.push(Chart {
        stem: "latency-cdf".into(),
        title: format!("Latency CDF{at}"),
        caption: format!(
            "Distribution of the processing time D of completed requests{at} (quantiles averaged over seeds, up to the largest p99)."
        ),
        svg: lines(
            &format!("Latency CDF{at}"),
            "processing time D (s)",
            "fraction of completed requests",
            &cdf,
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
    let regret: Vec<(String, Vec<(f64, f64)>)> = pols
        .iter()
        .filter_map(|p| {
            runs_of(p)
                .into_iter()
                .map(|i| &res.details[i].regret)
                .find(|r| !r.is_empty())
                .map(|r| (p.clone(), r.clone()))
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
<th>energy/request J</th><th>x ref</th><th>p99 latency s</th><th>x ref</th><th>vs oracle</th></tr>\n",
    );
    for s in &res.summary {
        let _ = write!(h, "<tr><td>{}</td>", esc(&s.policy));
        for k in &keys {
            let v = s.params.get(*k).map_or_else(String::new, |v| {
                v.as_str().map_or_else(|| v.to_string(), String::from)
            });
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td>{:.3}</td><td>{:.3} ± {:.3}</td><td>{}</td><td>{:.1}% ± {:.1}</td><td>{}</td>\
<td>{:.1} ± {:.1}</td><td>{}</td><td>{:.3} ± {:.3}</td><td>{}</td><td>{}</td></tr>",
            s.seeds,
            s.offered_load_rps,
            s.goodput_rps_mean,
            s.goodput_rps_std,
            opt(s.goodput_ratio, |x| format!("{x:.2}")),
            s.deadline_attainment_mean * 100.0,
            s.deadline_attainment_std * 100.0,
            opt(s.attainment_ratio, |x| format!("{x:.2}")),
            s.energy_per_request_j_mean,
            s.energy_per_request_j_std,
            opt(s.energy_per_request_ratio, |x| format!("{x:.2}")),
            s.latency_p99_s_mean,
            s.latency_p99_s_std,
            opt(s.latency_p99_ratio, |x| format!("{x:.2}")),
            opt(s.oracle_energy_gap, |g| format!("{:+.1}%", g * 100.0)),
        );
    }
    h.push_str(
        "</table>\n<p>mean ± sample standard deviation over seeds; x ref = mean / reference mean; \
vs oracle = weighted energy above the offline oracle's.</p>\n<h2>Policies</h2>\n<table>\n\
<tr><th>name</th><th>version</th><th>abi</th><th>source</th></tr>\n",
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
pub fn write_all(res: &Results, dir: &Path, term: &crate::term::Term) -> Result<Vec<PathBuf>> {
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
    out.report_created(term);
    for (f, c) in files.into_iter().zip(&cs) {
        f.write_text(&c.svg)?;
    }
    index.write_text(&html(res, &cs))?;
    out.commit()
}

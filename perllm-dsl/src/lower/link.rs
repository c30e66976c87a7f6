//! `link NAME { .. }` blocks: bandwidth (with `+/-`), fluctuation (calls and series files),
//! latency, energy.

use super::*;
use crate::ast::*;
use crate::diag::{DiagBuilder, codes};
use crate::units::Dim;
use perllm_core::spec::*;
use std::path::Path;

/// Keys of a `link` block.
pub const LINK_KEYS: &[&str] = &["bandwidth", "fluctuation", "redraw", "latency", "energy"];

impl Lowerer {
    pub(super) fn link(&mut self, it: &Item, names: &mut Names) -> Option<LinkSpec> {
        let Named { id, fresh, f, .. } =
            self.named_block(it, &mut names.links, "link", "link", LINK_KEYS)?;
        let mut fluct_from_bw = None;
        let bandwidth = self.required(&f, "bandwidth", |l, e| {
            let (mean, plus_minus) = l.split_at(e, BinOp::PlusMinus)?;
            let bw = l.positive_quantity(&mean, Dim::Bandwidth, "bandwidth");
            if let Some(rhs) = plus_minus {
                let frac = l.plus_minus(&rhs, bw, Dim::Bandwidth);
                fluct_from_bw = Some((frac, rhs.span));
            }
            bw
        });
        let fluctuation = match (f.get("fluctuation"), fluct_from_bw) {
            (Some(en), Some((_, sp))) => {
                self.err(
                    DiagBuilder::error(codes::DUPLICATE, "the fluctuation is given twice")
                        .label(en.key.span, "here")
                        .label(sp, "and here, as `+/-`")
                        .help("keep one of them"),
                );
                None
            }
            (None, Some((frac, _))) => frac.map(|frac| Fluctuation::Uniform { frac }),
            (Some(en), None) => self.fluctuation(&en.value),
            (None, None) => Some(Fluctuation::None),
        };
        let redraw = self.maybe(&f, "redraw", |l, e| l.positive_time(e, "the redraw period"));
        let latency = self.required(&f, "latency", |l, e| l.time_ns(e));
        let energy = self.required(&f, "energy", |l, e| {
            l.non_negative_quantity(e, Dim::EnergyPerBit, "transmission energy")
        });
        if !fresh {
            return None;
        }
        Some(LinkSpec {
            name: id.name,
            bandwidth_bps: bandwidth?,
            fluctuation: fluctuation?,
            redraw_ns: redraw?,
            latency_ns: latency?,
            energy_j_per_bit: energy?,
        })
    }

    /// The right side of `+/-`: a percentage, or an absolute amount in the mean's dimension.
    fn plus_minus(&mut self, e: &Expr, mean: Option<f64>, dim: Dim) -> Option<f64> {
        let is_pct = matches!(&e.kind, ExprKind::Quantity { unit: Some(u), .. } if u.name == "%")
            || matches!(&e.kind, ExprKind::Quantity { unit: None, .. });
        let frac = if is_pct {
            self.quantity(e, Dim::Fraction)
        } else {
            let abs = self.quantity(e, dim)?;
            mean.map(|m| abs / m)
        };
        self.in_unit(e, frac, "the fluctuation", Interval::OpenHigh)
    }

    fn fluctuation(&mut self, e: &Expr) -> Option<Fluctuation> {
        let (f, span, a) = self.call(
            e,
            "fluctuation",
            &[
                ("none", &[]),
                ("uniform", &["frac"]),
                ("random_walk", &["step", "bound"]),
                ("series", &["points"]),
            ],
        )?;
        match f.as_str() {
            "none" => Some(Fluctuation::None),
            "uniform" => {
                let x = self.arg(&a, 0, "uniform", "frac", span)?;
                self.fraction(x, "the fluctuation", Interval::OpenHigh)
                    .map(|frac| Fluctuation::Uniform { frac })
            }
            "random_walk" => {
                let s = self.arg(&a, 0, "random_walk", "step", span).cloned();
                let b = self.arg(&a, 1, "random_walk", "bound", span).cloned();
                let step = s
                    .as_ref()
                    .and_then(|s| self.non_negative_quantity(s, Dim::Fraction, "the step"));
                let bound = b
                    .as_ref()
                    .and_then(|b| self.fraction(b, "the bound", Interval::OpenHigh));
                Some(Fluctuation::RandomWalk {
                    step: step?,
                    bound: bound?,
                })
            }
            _ => {
                let x = self.arg(&a, 0, "series", "points", span)?.clone();
                let points = self.series(&x)?;
                Some(Fluctuation::Series { points })
            }
        }
    }

    /// A series: a list of `(time, factor)` tuples or the path of a CSV file `time_s,factor`.
    fn series(&mut self, e: &Expr) -> Option<Vec<(Nanos, f64)>> {
        let points = if matches!(e.kind, ExprKind::Str(_) | ExprKind::TomlStr { .. }) {
            let p = self.string(e, "a file path")?;
            let path = self.resolve_path(&p);
            self.read_series(&path, e.span)?
        } else {
            self.time_points(
                e,
                "a list of `(time, factor)` points or a CSV file path",
                "a `(time, factor)` point",
                |l, v| l.positive_quantity(v, Dim::Fraction, "a bandwidth factor"),
            )?
        };
        if !self.increasing_from_zero(&points, e.span, "a series", "this series") {
            return None;
        }
        Some(points)
    }

    /// Read a series file through the core reader
    /// ([`perllm_core::workload::bandwidth_series_from_csv`]): `time_s,factor` or
    /// `time_s,bandwidth_<unit>` (normalised by its time-weighted mean), header optional for
    /// factors, `#` comment lines. An error names the file and its line, and points at `span`.
    fn read_series(&mut self, path: &Path, span: Span) -> Option<Vec<(Nanos, f64)>> {
        use std::io::Read;
        let limit = crate::files::MAX_SERIES_BYTES;
        let file = match crate::files::open(path, "series file", limit) {
            Ok(f) => {
                self.data_files.push(path.to_path_buf());
                f.take(limit)
            }
            Err(err) => {
                self.err(
                    DiagBuilder::error(codes::DATA_FILE, err)
                        .label(span, "this file")
                        .help("paths are relative to the scenario file's directory"),
                );
                return None;
            }
        };
        let name = path.display().to_string();
        match perllm_core::workload::bandwidth_series_from_csv(file, &name) {
            Ok(points) => Some(points),
            Err(e) => {
                let at = if e.row > 0 {
                    format!("{name}:{}", e.row)
                } else {
                    name.clone()
                };
                self.err(
                    DiagBuilder::error(
                        codes::DATA_FILE,
                        format!("series file {at}: {}", e.message),
                    )
                    .label(span, "in this series file")
                    .help(SERIES_FILE_HELP),
                );
                None
            }
        }
    }
}

/// What a series file looks like, for diagnostics.
const SERIES_FILE_HELP: &str = "a series file is CSV: a header `time_s,factor` (or \
`time_s,bandwidth_mbps`, `_bps`, `_kbps`, `_gbps`), then one `seconds,value` row per line with \
times increasing strictly; `#` starts a comment line";

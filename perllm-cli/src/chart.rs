//! Drawing primitives of `perllm plot` (plotters, SVG backend, no system fonts).
//!
//! Every chart has its legend in a column to the right of the plot area, never over the data.
//! Series are told apart by colour, dash pattern and marker shape together, so two series with
//! the same values (say `cloud-only` and `greedy` when greedy sends everything to the cloud)
//! still show as two: a dashed line over a solid one, two marker shapes at each point.

use crate::error::{CliError, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordf64, RangedCoordusize};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// Width and height of every chart, pixels.
pub const W: u32 = 820;
/// Height of every chart, pixels.
pub const H: u32 = 440;
const FONT: &str = "sans-serif";
/// Width of the legend column right of the plot area.
const LEGEND_W: u32 = 190;
/// Line series with at most this many points get a marker at each point.
const MAX_MARKERS: usize = 30;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A marker shape.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    Cross,
    Ring,
    HollowSquare,
}

/// How series `i` is drawn: colour, dash pattern (`None` solid, else dash and gap in pixels)
/// and marker shape. Colours cycle over 10, dashes over 4 and markers over 7, so any two of the
/// first 20 series differ in at least two of the three.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    color: RGBColor,
    dash: Option<(u32, u32)>,
    marker: Marker,
}

/// The look of series `i`.
pub fn look(i: usize) -> Look {
    const DASHES: [Option<(u32, u32)>; 4] = [None, Some((9, 5)), Some((3, 4)), Some((16, 6))];
    const MARKERS: [Marker; 7] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Diamond,
        Marker::Cross,
        Marker::Ring,
        Marker::HollowSquare,
    ];
    Look {
        color: color(i),
        dash: DASHES[i % DASHES.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}

/// Okabe-Ito (colour-blind safe), then a few more.
pub fn color(i: usize) -> RGBColor {
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

/// Largest magnitude an axis reaches: data beyond it are drawn at the edge. Past about 1e307 the
/// padding overflows to infinity, and plotters' tick search never ends on an infinite or
/// sub-ulp-wide range (issue 21: `plot` hung on such a results file).
pub const AXIS_LIMIT: f64 = 1e300;

/// `v` inside `[-AXIS_LIMIT, AXIS_LIMIT]` (NaN as 0).
fn clamp_axis(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-AXIS_LIMIT, AXIS_LIMIT)
    }
}

/// [`clamp_axis`] of every value.
fn clamp_all(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| clamp_axis(x)).collect()
}

/// A padded axis range around `[lo, hi]`: finite, and at least a millionth of its magnitude
/// wide (so that tick steps are far above the floating-point resolution).
fn range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo <= hi {
        (clamp_axis(lo), clamp_axis(hi))
    } else {
        (0.0, 1.0)
    };
    let width = (hi - lo).max(lo.abs().max(hi.abs()) * 1e-6).max(1e-12);
    let mid = lo / 2.0 + hi / 2.0;
    let (lo, hi) = (mid - width / 2.0, mid + width / 2.0);
    let pad = width * 0.05;
    (lo - pad)..(hi + pad)
}

/// The top of a value axis starting at 0: `top` with `headroom`, finite and positive.
fn top_of(top: f64, headroom: f64) -> f64 {
    let top = clamp_axis(top);
    if top > 0.0 { top * headroom } else { 1.0 }
}

/// An SVG document of `W x H` drawn by `f` into the plot area and the legend column below a
/// title.
fn with_svg(
    title: &str,
    with_legend: bool,
    f: impl FnOnce(&Area<'_>, &Area<'_>) -> Result<()>,
) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(title))?;
        let body = root.titled(title, (FONT, 20)).map_err(draw_err(title))?;
        let (w, _) = body.dim_in_pixel();
        let legend_w = if with_legend { LEGEND_W } else { 0 };
        let (plot, legend) = body.split_horizontally(w.saturating_sub(legend_w));
        f(&plot, &legend)?;
        root.present().map_err(draw_err(title))?;
    }
    Ok(buf)
}

/// What a legend entry shows next to its name.
#[derive(Clone, Copy)]
pub enum Key {
    /// A line sample with its dash pattern and marker.
    Line(Look),
    /// A filled block (bars, areas).
    Block(RGBColor),
}

/// The legend column: one entry per line, top-aligned with the plot area.
fn legend(area: &Area<'_>, entries: &[(String, Key)], title: &str) -> Result<()> {
    let style = TextStyle::from((FONT, 13).into_font()).color(&BLACK);
    for (i, (name, key)) in entries.iter().enumerate() {
        let y = 24 + 22 * i as i32;
        match *key {
            Key::Line(l) => {
                let s = l.color.stroke_width(2);
                let pts = vec![(10, y), (44, y)];
                match l.dash {
                    None => area.draw(&PathElement::new(pts, s)),
                    Some((d, g)) => area.draw(&DashedPathElement::new(pts, d, g, s)),
                }
                .map_err(draw_err(title))?;
                legend_marker(area, (27, y), l).map_err(draw_err(title))?;
            }
            Key::Block(c) => {
                area.draw(&Rectangle::new([(14, y - 6), (40, y + 6)], c.filled()))
                    .map_err(draw_err(title))?;
            }
        }
        // Long names are cut rather than run off the chart.
        let shown: String = if name.chars().count() > 22 {
            name.chars().take(21).chain(['…']).collect()
        } else {
            name.clone()
        };
        area.draw(&Text::new(shown, (52, y - 7), style.clone()))
            .map_err(draw_err(title))?;
    }
    Ok(())
}

fn legend_marker(
    area: &Area<'_>,
    (x, y): (i32, i32),
    l: Look,
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let f = l.color.filled();
    match l.marker {
        Marker::Circle => area.draw(&Circle::new((x, y), 4, f)),
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), 5, f)),
        Marker::Square => area.draw(&Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], f)),
        Marker::Diamond => area.draw(&Polygon::new(
            vec![(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)],
            f,
        )),
        Marker::Cross => area.draw(&Cross::new((x, y), 4, l.color.stroke_width(2))),
        Marker::Ring => area.draw(&Circle::new((x, y), 4, l.color.stroke_width(2))),
        Marker::HollowSquare => area.draw(&Rectangle::new(
            [(x - 4, y - 4), (x + 4, y + 4)],
            l.color.stroke_width(2),
        )),
    }
}

/// One series of a line chart: its name, its points and, optionally, a spread (one sample
/// standard deviation) at each point, drawn as an error bar.
pub struct Series {
    /// Legend name.
    pub name: String,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
    /// Spread at each point (same length as `points`), or empty.
    pub spread: Vec<f64>,
}

/// The x axis of a line chart.
#[derive(Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Linear from the data's smallest to largest x.
    Linear,
    /// Logarithmic (times spanning several decades); x must be positive.
    Log,
}

/// A line chart of `series` (legend right of the plot), with error bars where a series has a
/// spread.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    x_axis: XAxis,
    y_floor_zero: bool,
) -> Result<String> {
    // Every number within the axis limit: plotters maps values to i32 pixels and overflows on
    // values far outside the drawn range.
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s
                .points
                .iter()
                .map(|&(x, y)| (clamp_axis(x), clamp_axis(y)))
                .collect(),
            spread: clamp_all(&s.spread),
        })
        .collect();
    let series = series.as_slice();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for s in series {
        for (k, &(x, y)) in s.points.iter().enumerate() {
            let sd = s.spread.get(k).copied().unwrap_or(0.0);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y - sd);
            y1 = y1.max(y + sd);
        }
    }
    if y_floor_zero {
        y0 = 0.0f64.min(y0);
    }
    let entries: Vec<(String, Key)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), Key::Line(look(i))))
        .collect();
    with_svg(title, true, |plot, leg| {
        let mut chart = ChartBuilder::on(plot);
        chart.margin(10).x_label_area_size(44).y_label_area_size(64);
        match x_axis {
            XAxis::Linear => {
                let mut c = chart
                    .build_cartesian_2d(range(x0, x1), range(y0, y1))
                    .map_err(draw_err(title))?;
                c.configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .label_style((FONT, 13))
                    .draw()
                    .map_err(draw_err(title))?;
                draw_lines(&mut c, series, title)?;
            }
            XAxis::Log => {
                let lo = if x0 > 0.0 {
                    x0.clamp(1e-290, AXIS_LIMIT / 10.0)
                } else {
                    1e-6
                };
                let hi = clamp_axis(x1).max(lo * 10.0);
                let mut c = chart
                    .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), range(y0, y1))
                    .map_err(draw_err(title))?;
                c.configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .x_label_formatter(&|v| crate::util::si(*v, "s"))
                    .label_style((FONT, 13))
                    .draw()
                    .map_err(draw_err(title))?;
                draw_lines(&mut c, series, title)?;
            }
        }
        legend(leg, &entries, title)
    })
}

fn draw_lines<X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<
        '_,
        SVGBackend<'_>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    series: &[Series],
    title: &str,
) -> Result<()> {
    for (i, s) in series.iter().enumerate() {
        let l = look(i);
        let st = l.color.stroke_width(2);
        let pts = s.points.iter().copied();
        match l.dash {
            None => chart.draw_series(LineSeries::new(pts, st)).map(drop),
            Some((d, g)) => chart
                .draw_series(DashedLineSeries::new(pts, d, g, st))
                .map(drop),
        }
        .map_err(draw_err(title))?;
        // Whiskers: one standard deviation each side, with caps.
        let spread: Vec<(f64, f64, f64)> = s
            .points
            .iter()
            .zip(&s.spread)
            .filter(|(_, sd)| **sd > 0.0)
            .map(|(&(x, y), &sd)| (x, y, sd))
            .collect();
        let whiskers = spread.iter().map(|&(x, y, sd)| {
            PathElement::new(vec![(x, y - sd), (x, y + sd)], l.color.stroke_width(1))
        });
        chart.draw_series(whiskers).map_err(draw_err(title))?;
        let caps = spread.iter().flat_map(|&(x, y, sd)| {
            let c = l.color.stroke_width(1);
            [y - sd, y + sd]
                .map(|v| EmptyElement::at((x, v)) + PathElement::new(vec![(-5, 0), (5, 0)], c))
        });
        chart.draw_series(caps).map_err(draw_err(title))?;
        // Markers where they carry information (sweep points), not on dense curves.
        if s.points.len() <= MAX_MARKERS {
            let f = l.color.filled();
            let pts = s.points.iter().map(|&p| EmptyElement::at(p));
            match l.marker {
                Marker::Circle => chart.draw_series(pts.map(|e| e + Circle::new((0, 0), 4, f))),
                Marker::Triangle => {
                    chart.draw_series(pts.map(|e| e + TriangleMarker::new((0, 0), 5, f)))
                }
                Marker::Square => {
                    chart.draw_series(pts.map(|e| e + Rectangle::new([(-4, -4), (4, 4)], f)))
                }
                Marker::Diamond => chart.draw_series(
                    pts.map(|e| e + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], f)),
                ),
                Marker::Cross => chart
                    .draw_series(pts.map(|e| e + Cross::new((0, 0), 4, l.color.stroke_width(2)))),
                Marker::Ring => chart
                    .draw_series(pts.map(|e| e + Circle::new((0, 0), 4, l.color.stroke_width(2)))),
                Marker::HollowSquare => chart.draw_series(
                    pts.map(|e| e + Rectangle::new([(-4, -4), (4, 4)], l.color.stroke_width(2))),
                ),
            }
            .map_err(draw_err(title))?;
        }
    }
    Ok(())
}

/// Horizontal bars, one per name (first at the top), each with a whisker of one standard
/// deviation each side when its spread is positive; `value_desc` labels the value axis.
pub fn bars(
    title: &str,
    value_desc: &str,
    names: &[String],
    means: &[f64],
    spread: &[f64],
) -> Result<String> {
    let (means, spread) = (&clamp_all(means)[..], &clamp_all(spread)[..]);
    let n = names.len();
    let top = means
        .iter()
        .zip(spread.iter().chain(std::iter::repeat(&0.0)))
        .map(|(m, s)| m + s.max(0.0))
        .fold(0.0f64, f64::max);
    let top = top_of(top, 1.08);
    with_svg(title, false, |plot, _| {
        let mut chart = bar_axes(plot, title, value_desc, names, top)?;
        chart
            .draw_series(
                means
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| bar_rect(n, n - 1 - i, 0.0, m.max(0.0), color(i).filled())),
            )
            .map_err(draw_err(title))?;
        for (i, &m) in means.iter().enumerate() {
            let row = n - 1 - i;
            let sd = spread.get(i).copied().unwrap_or(0.0);
            if sd > 0.0 {
                let c = BLACK.stroke_width(1);
                let at = || SegmentValue::CenterOf(row);
                chart
                    .draw_series([PathElement::new(
                        vec![((m - sd).max(0.0), at()), (m + sd, at())],
                        c,
                    )])
                    .map_err(draw_err(title))?;
                chart
                    .draw_series([(m - sd).max(0.0), m + sd].map(|v| {
                        EmptyElement::at((v, SegmentValue::CenterOf(row)))
                            + PathElement::new(vec![(0, -6), (0, 6)], c)
                    }))
                    .map_err(draw_err(title))?;
            }
        }
        // No legend: the names are on the axis.
        Ok(())
    })
}

/// Horizontal stacked bars: one bar per name (first at the top), one layer per series.
pub fn stacked_bars(
    title: &str,
    value_desc: &str,
    names: &[String],
    layers: &[(&str, Vec<f64>)],
) -> Result<String> {
    let layers: Vec<(&str, Vec<f64>)> = layers.iter().map(|(n, v)| (*n, clamp_all(v))).collect();
    let layers = layers.as_slice();
    let n = names.len();
    let top = (0..n)
        .map(|i| layers.iter().map(|(_, v)| v[i].max(0.0)).sum::<f64>())
        .fold(0.0f64, f64::max);
    let top = top_of(top, 1.05);
    let entries: Vec<(String, Key)> = layers
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.to_string(), Key::Block(color(i))))
        .collect();
    with_svg(title, true, |plot, leg| {
        let mut chart = bar_axes(plot, title, value_desc, names, top)?;
        let mut base = vec![0.0; n];
        for (li, (_, vals)) in layers.iter().enumerate() {
            let lows = base.clone();
            for (b, v) in base.iter_mut().zip(vals) {
                *b += v.max(0.0);
            }
            chart
                .draw_series(
                    base.iter()
                        .zip(&lows)
                        .enumerate()
                        .map(|(i, (&hi, &lo))| bar_rect(n, n - 1 - i, lo, hi, color(li).filled())),
                )
                .map_err(draw_err(title))?;
        }
        legend(leg, &entries, title)
    })
}

/// The bar of row `row` (of `n`) from `lo` to `hi`, 6 px clear of its neighbours. Bars are drawn
/// in row order: plotters' `Histogram` gathers its bars in a `HashMap`, so the SVG it writes
/// changes order from run to run, and the same results file must always give the same chart.
fn bar_rect(
    n: usize,
    row: usize,
    lo: f64,
    hi: f64,
    style: ShapeStyle,
) -> Rectangle<(f64, SegmentValue<usize>)> {
    let next = if row + 1 < n {
        SegmentValue::Exact(row + 1)
    } else {
        SegmentValue::Last
    };
    let mut rect = Rectangle::new([(hi, SegmentValue::Exact(row)), (lo, next)], style);
    rect.set_margin(6, 6, 0, 0);
    rect
}

/// The axes of a horizontal bar chart: one row per name (first at the top), values `0..top`.
type BarChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, SegmentedCoord<RangedCoordusize>>>;

/// Draws the axes of a horizontal bar chart (see [`BarChart`]) on `plot`.
fn bar_axes<'a, 'b>(
    plot: &'a Area<'b>,
    title: &str,
    value_desc: &str,
    names: &[String],
    top: f64,
) -> Result<BarChart<'a, 'b>> {
    let n = names.len();
    let mut chart = ChartBuilder::on(plot)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(label_width(names))
        .build_cartesian_2d(0f64..top, (0..n.saturating_sub(1)).into_segmented())
        .map_err(draw_err(title))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(value_desc)
        .y_labels(n + 1)
        .y_label_formatter(&|v| category(names, v))
        // plotters draws no tick label for a single category: name it on the axis instead.
        .y_desc(if n == 1 { names[0].as_str() } else { "" })
        .label_style((FONT, 13))
        .draw()
        .map_err(draw_err(title))?;
    Ok(chart)
}

/// The name of the bar at a category position (the first name at the top row).
fn category(names: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(row) if *row < names.len() => names[names.len() - 1 - row].clone(),
        _ => String::new(),
    }
}

/// Room for the longest category name at 13 px (about 7.5 px a character).
fn label_width(names: &[String]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(4) as u32;
    (longest * 15 / 2 + 16).clamp(48, 220)
}

/// Stacked areas of shares (each x's values sum to 1), one layer per name.
pub fn stacked_shares(
    title: &str,
    x_desc: &str,
    names: &[String],
    xs: &[f64],
    shares: &[Vec<f64>],
) -> Result<String> {
    let xs = &clamp_all(xs)[..];
    let shares: Vec<Vec<f64>> = shares.iter().map(|v| clamp_all(v)).collect();
    let shares = shares.as_slice();
    let entries: Vec<(String, Key)> = names
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), Key::Block(color(i))))
        .collect();
    with_svg(title, true, |plot, leg| {
        let x1 = xs.last().copied().unwrap_or(1.0);
        let mut chart = ChartBuilder::on(plot)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..top_of(x1, 1.0).max(1e-9), 0f64..1.0)
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
                .map_err(draw_err(title))?;
        }
        legend(leg, &entries, title)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two series with the same values must still read as two: any two of the first 20 looks
    /// differ in at least two of colour, dash pattern and marker.
    #[test]
    fn the_first_twenty_looks_differ_twice() {
        for i in 0..20 {
            for j in (i + 1)..20 {
                let (a, b) = (look(i), look(j));
                let differ = [a.color != b.color, a.dash != b.dash, a.marker != b.marker]
                    .iter()
                    .filter(|d| **d)
                    .count();
                assert!(differ >= 2, "series {i} and {j} look alike: {a:?} {b:?}");
            }
        }
    }
}

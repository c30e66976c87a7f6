//! Bandwidth time series read from CSV, for [`crate::spec::Fluctuation::Series`].
//!
//! The file has two columns, normally under a header. The first is `time_s` (seconds; any origin,
//! the series is shifted so that its first row is at time 0; strictly increasing). The second is
//! either
//!
//! - `factor`: the multiplicative factor applied to the link's mean bandwidth (> 0), or
//! - `bandwidth_bps`, `bandwidth_kbps`, `bandwidth_mbps` or `bandwidth_gbps`: a measured absolute
//!   bandwidth in that unit (> 0), turned into factors by dividing by a mean (see
//!   [`BandwidthSeries::factors`]).
//!
//! Without a header (the first row is two numbers) the file is `time_s,factor`.
//!
//! As in `Fluctuation::Series`, each value holds until the next row and the whole series repeats
//! with the last row's time as its period, so the last row only marks the end of the period.
//! Blank lines and comment lines (first character `#`) are ignored. Any malformed row is an error
//! naming the row (its line in the file).

use super::WorkloadError;
use super::lines::CsvReader;
use crate::spec::{Nanos, limits};

/// A parsed bandwidth CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct BandwidthSeries {
    /// `(time_ns, value)` points, the first at 0, strictly increasing in time.
    pub points: Vec<(Nanos, f64)>,
    /// `true` if the values are absolute bandwidths in bits/s, `false` if they are factors.
    pub absolute: bool,
    /// The 1-based line of the file each point was read from (same length as `points`).
    pub lines: Vec<u64>,
}

impl BandwidthSeries {
    /// The time-weighted mean value over one period (each value weighted by how long it holds; a
    /// single-row series is its value).
    pub fn time_weighted_mean(&self) -> f64 {
        let p = &self.points;
        if p.len() == 1 {
            return p[0].1;
        }
        let period = p[p.len() - 1].0 as f64;
        // Each value times the fraction of the period it holds (so that huge values cannot
        // overflow the sum).
        p.windows(2)
            .map(|w| w[0].1 * ((w[1].0 - w[0].0) as f64 / period))
            .sum::<f64>()
    }

    /// Multiplicative factors for `Fluctuation::Series`. Factor files are returned as they are;
    /// absolute bandwidths are divided by `mean_bps` if given (so that the series replays the
    /// measured values on a link whose declared mean is `mean_bps`), otherwise by the series' own
    /// time-weighted mean (so that the link's declared bandwidth sets the mean and the file only
    /// the shape).
    pub fn factors(&self, mean_bps: Option<f64>) -> Vec<(Nanos, f64)> {
        if !self.absolute {
            return self.points.clone();
        }
        let m = mean_bps.unwrap_or_else(|| self.time_weighted_mean());
        self.points.iter().map(|&(t, v)| (t, v / m)).collect()
    }

    /// [`BandwidthSeries::factors`], checked against what a scenario accepts: every factor finite
    /// and within `[MIN_BANDWIDTH_FACTOR, MAX_BANDWIDTH_FACTOR]` (see [`limits`]). Otherwise an
    /// error in `name` naming the line of the first point outside.
    pub fn checked_factors(
        &self,
        mean_bps: Option<f64>,
        name: &str,
    ) -> Result<Vec<(Nanos, f64)>, WorkloadError> {
        let f = self.factors(mean_bps);
        let range = limits::MIN_BANDWIDTH_FACTOR..=limits::MAX_BANDWIDTH_FACTOR;
        match f.iter().position(|p| !range.contains(&p.1)) {
            None => Ok(f),
            Some(i) => {
                let line = self.lines.get(i).copied().unwrap_or(0);
                let what = if self.absolute {
                    let mean = match mean_bps {
                        Some(m) => format!("the mean {m:e} bits/s"),
                        None => "the series' time-weighted mean".into(),
                    };
                    format!("{:e} bits/s is {} times {mean}", self.points[i].1, f[i].1)
                } else {
                    format!("factor {}", f[i].1)
                };
                Err(WorkloadError::new(
                    name,
                    line,
                    format!(
                        "{what}, outside [{}, {}] of the mean bandwidth",
                        limits::MIN_BANDWIDTH_FACTOR,
                        limits::MAX_BANDWIDTH_FACTOR
                    ),
                ))
            }
        }
    }
}

/// Read a bandwidth CSV (see the module documentation for the columns).
pub fn read_bandwidth_csv<R: std::io::Read>(
    reader: R,
    name: &str,
) -> Result<BandwidthSeries, WorkloadError> {
    const NO_ROWS: &str = "the bandwidth series has no rows";
    let err = |row: u64, m: String| WorkloadError::new(name, row, m);
    let mut rec = CsvReader::new(std::io::BufReader::new(reader)).with_comments();
    let hline = match rec.advance() {
        Err((row, m)) => return Err(err(row, format!("cannot read the header: {m}"))),
        Ok(None) => return Err(err(0, NO_ROWS.into())),
        Ok(Some(l)) => l,
    };
    // No header: the first row is two numbers, read as `time_s,factor`.
    let numeric = |f: &[u8]| {
        std::str::from_utf8(f)
            .ok()
            .is_some_and(|s| s.trim().parse::<f64>().is_ok())
    };
    let headerless = rec.len() == 2 && rec.iter().all(numeric);
    let header: Vec<String> = if headerless {
        vec!["time_s".into(), "factor".into()]
    } else {
        rec.iter().map(super::trace::norm).collect()
    };
    let unit = match header.get(1).map(String::as_str) {
        Some("bandwidth_bps") => Some(1.0),
        Some("bandwidth_kbps") => Some(1e3),
        Some("bandwidth_mbps") => Some(1e6),
        Some("bandwidth_gbps") => Some(1e9),
        _ => None,
    };
    let second_ok = unit.is_some() || header.get(1).is_some_and(|h| h == "factor");
    if header.len() != 2 || header[0] != "time_s" || !second_ok {
        return Err(err(
            hline,
            format!(
                "expected the header `time_s,factor` or `time_s,bandwidth_<bps|kbps|mbps|gbps>` (or no header and `time_s,factor` rows), found `{}`",
                header.join(",")
            ),
        ));
    }
    let mut points: Vec<(Nanos, f64)> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut first_ns: Option<Nanos> = None;
    let mut pending = headerless.then_some(hline);
    loop {
        let line = match pending.take() {
            Some(l) => l,
            None => match rec.advance() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err((row, m)) => return Err(err(row, m)),
            },
        };
        if rec.len() != 2 {
            return Err(err(line, format!("has {} fields, expected 2", rec.len())));
        }
        let text = |i: usize| {
            std::str::from_utf8(rec.get(i).expect("2 fields"))
                .map_err(|_| err(line, format!("field {} is not valid UTF-8", i + 1)))
        };
        let (t, v) = (text(0)?, text(1)?);
        let raw_v = v.trim();
        let t = super::trace::parse_seconds_ns(t).map_err(|m| err(line, format!("time_s: {m}")))?;
        let v: f64 = raw_v
            .parse()
            .map_err(|_| err(line, format!("`{raw_v}` is not a number")))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(err(
                line,
                format!("{} must be a positive finite number, not {v}", header[1]),
            ));
        }
        let v = v * unit.unwrap_or(1.0);
        if !v.is_finite() {
            return Err(err(
                line,
                format!(
                    "`{raw_v}` {} overflows: more than {:e} bits/s",
                    header[1],
                    f64::MAX
                ),
            ));
        }
        let t0 = *first_ns.get_or_insert(t);
        if t < t0 || points.last().is_some_and(|p| t - t0 <= p.0) {
            return Err(err(
                line,
                "times must increase strictly from row to row".into(),
            ));
        }
        points.push((t - t0, v));
        lines.push(line);
    }
    if points.is_empty() {
        return Err(err(0, NO_ROWS.into()));
    }
    Ok(BandwidthSeries {
        points,
        absolute: unit.is_some(),
        lines,
    })
}

/// Read a bandwidth CSV and return the factors for `Fluctuation::Series` (absolute bandwidths are
/// normalised by their time-weighted mean; see [`BandwidthSeries::factors`]), checked with
/// [`BandwidthSeries::checked_factors`]: a `Fluctuation::Series` built from the result is valid.
pub fn bandwidth_series_from_csv<R: std::io::Read>(
    reader: R,
    name: &str,
) -> Result<Vec<(Nanos, f64)>, WorkloadError> {
    read_bandwidth_csv(reader, name)?.checked_factors(None, name)
}

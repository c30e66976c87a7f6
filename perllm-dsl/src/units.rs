//! Typed unit literals.
//!
//! Each unit has a dimension and a factor to the dimension's base unit. Decimal factors are applied
//! to the number's text (`1.6 TFLOPS` is read as the literal `1.6e12`), so a value converts to
//! exactly the `f64` a programmer would write by hand.

/// Physical dimension of a quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Time, base: nanoseconds.
    Time,
    /// Data size, base: bytes.
    Data,
    /// Bandwidth, base: bits per second (byte units are converted).
    Bandwidth,
    /// Compute, base: FLOP/s.
    Compute,
    /// Power, base: watts.
    Power,
    /// Energy per bit, base: joules per bit.
    EnergyPerBit,
    /// Energy, base: joules.
    Energy,
    /// A plain count, with optional `K`, `M`, `B` suffixes.
    Count,
    /// A fraction: a percentage, or a plain number.
    Fraction,
    /// A rate, base: per second.
    Rate,
}

impl Dim {
    /// Article and name, for messages ("a time").
    pub fn describe(self) -> &'static str {
        match self {
            Dim::Time => "a time",
            Dim::Data => "a data size",
            Dim::Bandwidth => "a bandwidth",
            Dim::Compute => "a compute rate",
            Dim::Power => "a power",
            Dim::EnergyPerBit => "an energy per bit",
            Dim::Energy => "an energy",
            Dim::Count => "a count",
            Dim::Fraction => "a fraction",
            Dim::Rate => "a rate",
        }
    }
    /// Example units, for help texts.
    pub fn examples(self) -> &'static str {
        match self {
            Dim::Time => "`ms` or `s`",
            Dim::Data => "`MB` or `GiB`",
            Dim::Bandwidth => "`Mbps` or `GB/s`",
            Dim::Compute => "`GFLOPS` or `TFLOPS`",
            Dim::Power => "`W` or `kW`",
            Dim::EnergyPerBit => "`nJ/bit` or `pJ/bit`",
            Dim::Energy => "`J` or `mJ`",
            Dim::Count => "`K`, `M` or `B`",
            Dim::Fraction => "`%`",
            Dim::Rate => "`/s` or `/min`",
        }
    }
}

/// How a unit scales the number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Factor {
    /// Multiply by ten to this power (applied to the number's text).
    Dec(i32),
    /// Multiply by this (exact for binary prefixes and integers).
    Mul(f64),
    /// Divide by this.
    Div(f64),
}

/// One unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    /// As written.
    pub name: &'static str,
    /// Its dimension.
    pub dim: Dim,
    /// To the base unit.
    pub factor: Factor,
    /// For bandwidth: the unit counts bytes (converted to bits by x8).
    pub bytes: bool,
}

const fn u(name: &'static str, dim: Dim, factor: Factor) -> Unit {
    Unit {
        name,
        dim,
        factor,
        bytes: false,
    }
}
const fn ub(name: &'static str, factor: Factor) -> Unit {
    Unit {
        name,
        dim: Dim::Bandwidth,
        factor,
        bytes: true,
    }
}

use Dim::*;
use Factor::*;

/// Every unit the language knows. `B`, `K` and `M` are also counts (`7 B` parameters); which one
/// is meant is decided by the dimension the key expects.
pub const UNITS: &[Unit] = &[
    u("ns", Time, Dec(0)),
    u("us", Time, Dec(3)),
    u("µs", Time, Dec(3)),
    u("ms", Time, Dec(6)),
    u("s", Time, Dec(9)),
    u("min", Time, Mul(60e9)),
    u("h", Time, Mul(3600e9)),
    u("B", Data, Dec(0)),
    u("KB", Data, Dec(3)),
    u("kB", Data, Dec(3)),
    u("MB", Data, Dec(6)),
    u("GB", Data, Dec(9)),
    u("TB", Data, Dec(12)),
    u("KiB", Data, Mul(1024.0)),
    u("MiB", Data, Mul(1048576.0)),
    u("GiB", Data, Mul(1073741824.0)),
    u("TiB", Data, Mul(1099511627776.0)),
    u("bps", Bandwidth, Dec(0)),
    u("Kbps", Bandwidth, Dec(3)),
    u("kbps", Bandwidth, Dec(3)),
    u("Mbps", Bandwidth, Dec(6)),
    u("Gbps", Bandwidth, Dec(9)),
    u("Tbps", Bandwidth, Dec(12)),
    ub("B/s", Dec(0)),
    ub("KB/s", Dec(3)),
    ub("kB/s", Dec(3)),
    ub("MB/s", Dec(6)),
    ub("GB/s", Dec(9)),
    ub("TB/s", Dec(12)),
    ub("KiB/s", Mul(1024.0)),
    ub("MiB/s", Mul(1048576.0)),
    ub("GiB/s", Mul(1073741824.0)),
    u("FLOPS", Compute, Dec(0)),
    u("KFLOPS", Compute, Dec(3)),
    u("MFLOPS", Compute, Dec(6)),
    u("GFLOPS", Compute, Dec(9)),
    u("TFLOPS", Compute, Dec(12)),
    u("PFLOPS", Compute, Dec(15)),
    u("mW", Power, Dec(-3)),
    u("W", Power, Dec(0)),
    u("kW", Power, Dec(3)),
    u("pJ/bit", EnergyPerBit, Dec(-12)),
    u("nJ/bit", EnergyPerBit, Dec(-9)),
    u("uJ/bit", EnergyPerBit, Dec(-6)),
    u("µJ/bit", EnergyPerBit, Dec(-6)),
    u("mJ/bit", EnergyPerBit, Dec(-3)),
    u("J/bit", EnergyPerBit, Dec(0)),
    u("uJ", Energy, Dec(-6)),
    u("mJ", Energy, Dec(-3)),
    u("J", Energy, Dec(0)),
    u("kJ", Energy, Dec(3)),
    u("Wh", Energy, Mul(3600.0)),
    u("kWh", Energy, Mul(3.6e6)),
    u("K", Count, Dec(3)),
    u("M", Count, Dec(6)),
    u("G", Count, Dec(9)),
    u("%", Fraction, Dec(-2)),
    u("/s", Rate, Dec(0)),
    u("/min", Rate, Div(60.0)),
    u("/h", Rate, Div(3600.0)),
];

/// The billions suffix, a count (`7 B` parameters); `B` is bytes where a data size is expected.
pub const BILLION: Unit = u("B", Count, Dec(9));

/// Look a unit up for the expected dimension (resolving `B` = bytes or billions).
pub fn lookup(name: &str, expected: Option<Dim>) -> Option<Unit> {
    if name == "B" && expected == Some(Count) {
        return Some(BILLION);
    }
    UNITS.iter().copied().find(|u| u.name == name)
}

/// The names of all units, for suggestions.
pub fn names() -> impl Iterator<Item = &'static str> {
    UNITS.iter().map(|u| u.name)
}

/// Apply a unit's factor to a number written as `text`.
pub fn scale(text: &str, value: f64, factor: Factor) -> f64 {
    match factor {
        Dec(0) => value,
        Dec(p) => {
            // Re-read the literal with the exponent shifted: exactly the f64 of e.g. `1.6e12`.
            let (mant, exp) = match text.find(['e', 'E']) {
                Some(i) => (&text[..i], text[i + 1..].parse::<i32>().unwrap_or(0)),
                None => (text, 0),
            };
            format!("{mant}e{}", exp.saturating_add(p))
                .parse::<f64>()
                .unwrap_or(value * 10f64.powi(p))
        }
        Mul(m) => value * m,
        Div(d) => value / d,
    }
}

/// A unit the user probably meant by `name`, preferring units of the expected dimension.
pub fn suggest(name: &str, dim: Option<Dim>) -> Option<&'static str> {
    let fits = |u: &&Unit| dim.is_none_or(|d| u.dim == d);
    if let Some(u) = UNITS
        .iter()
        .filter(fits)
        .find(|u| u.name.eq_ignore_ascii_case(name))
    {
        return Some(u.name);
    }
    let alias = match name.to_ascii_lowercase().as_str() {
        "sec" | "secs" | "second" | "seconds" => "s",
        "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => "ms",
        "usec" | "usecs" | "microsecond" | "microseconds" => "us",
        "nsec" | "nsecs" | "nanosecond" | "nanoseconds" => "ns",
        "mins" | "minute" | "minutes" => "min",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "watt" | "watts" => "W",
        "byte" | "bytes" => "B",
        "percent" | "pct" => "%",
        "rps" | "qps" | "/sec" => "/s",
        _ => "",
    };
    if let Some(u) = UNITS.iter().filter(fits).find(|u| u.name == alias) {
        return Some(u.name);
    }
    crate::diag::suggest(name, UNITS.iter().filter(fits).map(|u| u.name))
        .or_else(|| crate::diag::suggest(name, names()))
}

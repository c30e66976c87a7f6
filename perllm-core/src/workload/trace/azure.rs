//! The Azure LLM inference trace (2023): CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, with
//! calendar timestamps.

use super::WorkloadError;
use super::csv::{CsvLayout, Header};
use crate::spec::Nanos;

/// The columns of an Azure trace.
pub(super) fn layout(h: &Header) -> Result<CsvLayout, WorkloadError> {
    h.layout(
        [
            ("timestamp", "TIMESTAMP"),
            ("contexttokens", "ContextTokens"),
            ("generatedtokens", "GeneratedTokens"),
        ],
        parse_datetime_ns,
    )
}

/// Parse a calendar timestamp `YYYY-MM-DD HH:MM:SS[.fraction][Z|+HH:MM|-HH:MM|+HHMM]` (a `T` may
/// replace the space) into nanoseconds since the Unix epoch (UTC). Fraction digits beyond the
/// ninth are ignored. Dates before 1970 are an error.
pub fn parse_datetime_ns(s: &str) -> Result<Nanos, String> {
    let b = s.trim().as_bytes();
    let bad = || {
        format!(
            "`{}` is not a timestamp of the form YYYY-MM-DD HH:MM:SS[.fff]",
            s.trim()
        )
    };
    if b.len() < 19 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let mut v = 0u64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u64;
        }
        Some(v)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 59
    {
        return Err(format!("`{}` is not a valid date and time", s.trim()));
    }
    let mut i = 19;
    let mut frac_ns = 0u64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        let mut scale = 100_000_000u64;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_ns += (b[i] - b'0') as u64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let mut offset_s: i64 = 0;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' => {
                let sign = if b[i] == b'+' { 1 } else { -1 };
                let rest = &b[i + 1..];
                let (oh, om) = match rest.len() {
                    5 if rest[2] == b':' => (num(i + 1..i + 3), num(i + 4..i + 6)),
                    4 => (num(i + 1..i + 3), num(i + 3..i + 5)),
                    2 => (num(i + 1..i + 3), Some(0)),
                    _ => (None, None),
                };
                let (Some(oh), Some(om)) = (oh, om) else {
                    return Err(bad());
                };
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                offset_s = sign * (oh * 3600 + om * 60) as i64;
            }
            _ => return Err(bad()),
        }
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + sec) as i64 - offset_s;
    if secs < 0 {
        return Err(format!("`{}` is before 1970", s.trim()));
    }
    (secs as u64)
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(|| format!("`{}` is too far in the future", s.trim()))
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

//! Cell values every format shares: seconds, integers, token counts, payload bytes, and the row
//! rule on output bytes. Pure functions; the public ones are re-exported for reuse and tests.

use super::MAX_PAYLOAD_BYTES;
use crate::spec::Nanos;

/// Parse a non-negative number of seconds (decimal or scientific notation) into nanoseconds,
/// rounded to the nearest nanosecond.
pub fn parse_seconds_ns(s: &str) -> Result<Nanos, String> {
    let t = s.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| format!("`{t}` is not a number of seconds"))?;
    seconds_to_ns(v).map_err(|m| format!("`{t}` {m}"))
}

pub(super) fn seconds_to_ns(v: f64) -> Result<Nanos, String> {
    if !v.is_finite() || v < 0.0 {
        return Err("is not a finite non-negative time".into());
    }
    let ns = (v * 1e9).round();
    if ns >= u64::MAX as f64 {
        return Err("overflows the nanosecond clock".into());
    }
    Ok(ns as Nanos)
}

/// Parse a non-negative decimal integer with overflow detection.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    let mut v = 0u64;
    for c in t.bytes() {
        if !c.is_ascii_digit() {
            return Err(format!("`{t}` is not a non-negative integer"));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or_else(|| format!("`{t}` is too large (more than {})", u64::MAX))?;
    }
    Ok(v)
}

pub(super) fn tokens(v: u64, what: &str) -> Result<u32, String> {
    if v == 0 {
        return Err(format!("{what} is 0; a request has at least one token"));
    }
    u32::try_from(v)
        .map_err(|_| format!("{what} {v} is more than the largest supported {}", u32::MAX))
}

pub(super) fn payload_bytes(v: u64) -> Result<u64, String> {
    if v > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "{v} is more than the largest supported {MAX_PAYLOAD_BYTES} (1 TiB)"
        ));
    }
    Ok(v)
}

//! Small helpers: name suggestions, number formatting, seed lists and shards.

use crate::error::{CliError, Result};

/// Edit distance between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(name, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

/// Largest number of seeds of a seed list.
pub const MAX_SEEDS: u64 = 1_000_000;

/// Parse a seed list: `7`, `1,2,5`, `1..10` (inclusive), `1..=10`, or a mix (`1..3,9`).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = |why: &str| {
        CliError::input(format!(
            "invalid seed list `{s}`: {why} (write e.g. `7`, `1,2,5` or `1..10`)"
        ))
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(bad("empty element"));
        }
        if let Some((a, b)) = part.split_once("..") {
            let b = b.strip_prefix('=').unwrap_or(b);
            let lo: u64 = a
                .trim()
                .parse()
                .map_err(|_| bad(&format!("`{a}` is not a number")))?;
            let hi: u64 = b
                .trim()
                .parse()
                .map_err(|_| bad(&format!("`{b}` is not a number")))?;
            if hi < lo {
                return Err(bad(&format!("the range {lo}..{hi} is empty")));
            }
            if hi - lo >= MAX_SEEDS - out.len() as u64 {
                return Err(bad("more than a million seeds"));
            }
            out.extend(lo..=hi);
        } else {
            if out.len() as u64 >= MAX_SEEDS {
                return Err(bad("more than a million seeds"));
            }
            out.push(
                part.parse()
                    .map_err(|_| bad(&format!("`{part}` is not a number")))?,
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = out.iter().find(|x| !seen.insert(**x)) {
        return Err(bad(&format!("seed {d} appears twice")));
    }
    Ok(out)
}

/// A shard `K/N`: this process runs grid entries `i` with `i % N == K - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 1-based shard index.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// Does this shard run grid entry `i`? (False for a shard that [`Shard::check`] refuses.)
    pub fn owns(&self, i: u64) -> bool {
        self.count != 0 && i % self.count == self.index.wrapping_sub(1)
    }

    /// The grid entries this shard runs, in order, for a grid of `runs` entries.
    pub fn runs(&self, runs: u64) -> impl Iterator<Item = u64> + use<> {
        let step = usize::try_from(self.count.max(1)).unwrap_or(usize::MAX);
        (self.index.saturating_sub(1)..runs).step_by(step)
    }

    /// Check the shard against a grid of `runs` entries: `1 <= K <= N <= runs`. A shard
    /// count above the grid size would leave shards with nothing to run.
    pub fn check(&self, runs: u64) -> std::result::Result<(), String> {
        let Shard { index: k, count: n } = *self;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n} is out of range: K must be in 1..=N"));
        }
        if n > runs {
            return Err(format!(
                "shard {k}/{n} splits a grid of {runs} run{} into {n} shards: use at most {runs} \
                 shards, or none",
                if runs == 1 { "" } else { "s" }
            ));
        }
        Ok(())
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form K/N (e.g. 3/8)"))?;
        let k: u64 = k
            .trim()
            .parse()
            .map_err(|_| format!("`{k}` is not a number"))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n} is out of range: K must be in 1..=N"));
        }
        Ok(Shard { index: k, count: n })
    }
}

/// Refuse a key given twice to `flag` (`--set`, `--param`): the last value used to win silently.
pub fn check_repeated(flag: &str, pairs: &[(String, String)]) -> Result<()> {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if let Some((_, first)) = pairs[..i].iter().find(|(k0, _)| k0 == k) {
            return Err(CliError::input(format!(
                "`{flag} {k}` is given twice (`{k}={first}` and `{k}={v}`): give each key once"
            )));
        }
    }
    Ok(())
}

/// A `key=v1,v2,...` sweep setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// Dotted scenario path.
    pub key: String,
    /// Values, as written.
    pub values: Vec<String>,
}

impl std::str::FromStr for Setting {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not of the form key=v1,v2,..."))?;
        let key = k.trim().to_string();
        if key.is_empty() {
            return Err(format!("`{s}` has an empty key"));
        }
        let values: Vec<String> = split_values(v);
        if values.iter().any(|x| x.is_empty()) {
            return Err(format!("`{s}` has an empty value"));
        }
        Ok(Setting { key, values })
    }
}

/// Split a value list at top-level commas (commas inside brackets or quotes stay).
pub fn split_values(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut cur = String::new();
    for c in v.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' | '(' if !quoted => depth += 1,
            ']' | '}' | ')' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

/// Format a quantity with an SI prefix: `1.23 kJ`, `456 ms`.
pub fn si(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return format!("{v} {unit}");
    }
    let a = v.abs();
    if a >= BIG {
        // Past the largest prefix: scientific notation, never dozens of digits.
        return format!("{} {unit}", sig3(v));
    }
    if unit == "s" && a >= 1000.0 {
        // Long durations read better in plain seconds than in kiloseconds.
        return format!("{v:.0} s");
    }
    let (scale, prefix) = if a == 0.0 {
        (1.0, "")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else if a >= 1.0 {
        (1.0, "")
    } else if a >= 1e-3 {
        (1e-3, "m")
    } else if a >= 1e-6 {
        (1e-6, "µ")
    } else {
        (1e-9, "n")
    };
    format!("{} {prefix}{unit}", sig3(v / scale))
}

/// From this magnitude on, numbers print in scientific notation (`1.23e15`): a printed number
/// has at most 15 digits before its point, whatever the value (1e300 once printed 301 digits).
pub const BIG: f64 = 1e12;

/// Three significant digits, without trailing zeros beyond what is needed; scientific notation
/// from [`BIG`] on.
pub fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= BIG && a.is_finite() {
        return format!("{v:.2e}");
    }
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$}")
}

/// A fraction as a percentage with one decimal.
pub fn pct(v: f64) -> String {
    if (v * 100.0).abs() >= BIG {
        return format!("{}%", sig3(v * 100.0));
    }
    format!("{:.1}%", v * 100.0)
}

/// A byte size: a number with an optional unit `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`,
/// `MiB`, `GiB` (powers of 1024), case-insensitive; `none` is no limit (`u64::MAX`).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(u64::MAX);
    }
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use B, KB, MB, GB, KiB, MiB, GiB, or `none`)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (write e.g. `200MB` or `2GiB`)"))?;
    let bytes = n * mult;
    if !bytes.is_finite() || !(1.0..1.8e19).contains(&bytes) {
        return Err(format!(
            "`{s}` is not a usable size (at least 1 byte; `none` for no limit)"
        ));
    }
    Ok(bytes as u64)
}

/// Host and port of an `http://` or `https://` URL (default ports 80 and 443); IPv6 hosts lose
/// their brackets.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    Some((host.to_string(), port))
}

/// A number without needless decimals.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < BIG {
        format!("{}", v as i64)
    } else {
        sig3(v)
    }
}

/// A wall-clock duration: a positive number and a unit (`ns`, `us`, `ms`, `s`, `min`).
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .ok_or_else(|| format!("`{s}` has no unit (write e.g. `50ms` or `2s`)"))?;
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number (write e.g. `50ms` or `2s`)"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        _ => return Err(format!("unknown unit `{unit}` (use ns, us, ms, s or min)")),
    };
    let secs = v * scale;
    if secs.is_nan() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "`{s}` must be positive and at most one day (e.g. `50ms`)"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A `key=value` option (`--set`, `--param`).
pub fn parse_override(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!("`{s}` is not of the form key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(parse_seeds("7").unwrap(), vec![7]);
        assert_eq!(parse_seeds("1..3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("1..=3,9").unwrap(), vec![1, 2, 3, 9]);
        assert!(parse_seeds("3..1").is_err());
        assert_eq!(parse_seeds("1..1000000").unwrap().len(), 1_000_000);
        // The limit is on the whole list, not on each range.
        assert!(parse_seeds("1..1000000,1000001").is_err());
        assert!(parse_seeds("0..999999,1000000..1999999").is_err());
        assert!(parse_seeds("0..18446744073709551615").is_err());
        assert_eq!(parse_seeds("18446744073709551615").unwrap(), vec![u64::MAX]);
        assert!(parse_seeds("18446744073709551616").is_err());
        assert!(parse_seeds("1,1").is_err());
        assert!(
            parse_seeds("a")
                .unwrap_err()
                .message
                .contains("`a` is not a number")
        );
    }

    #[test]
    fn shards() {
        let s: Shard = "2/3".parse().unwrap();
        assert!(s.owns(1) && s.owns(4) && !s.owns(0) && !s.owns(2));
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn settings() {
        let s: Setting = "workload.arrivals.rate=2,4, 8".parse().unwrap();
        assert_eq!(s.key, "workload.arrivals.rate");
        assert_eq!(s.values, vec!["2", "4", "8"]);
        let s: Setting = "x=[1,2],[3,4]".parse().unwrap();
        assert_eq!(s.values, vec!["[1,2]", "[3,4]"]);
        assert!("x".parse::<Setting>().is_err());
        assert!("x=1,,2".parse::<Setting>().is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(si(1234.0, "J"), "1.23 kJ");
        assert_eq!(si(0.0456, "s"), "45.6 ms");
        assert_eq!(si(0.0, "J"), "0 J");
        assert_eq!(si(1234.5, "s"), "1234 s");
        assert_eq!(pct(0.9134), "91.3%");
        // Bounded digits whatever the value (issue 21: 300-digit numbers).
        assert_eq!(si(1e300, "s"), "1.00e300 s");
        assert_eq!(si(-1e300, "J"), "-1.00e300 J");
        assert_eq!(sig3(1e300), "1.00e300");
        assert_eq!(pct(1e300), "1.00e302%");
        assert_eq!(fmt_num(1e300), "1.00e300");
        assert_eq!(fmt_num(123.0), "123");
        for v in [1e12, 9.99e11, 1e15, 1e300, f64::MAX, 5e-324, 1e-300] {
            for t in [si(v, "s"), si(v, "J"), sig3(v), pct(v), fmt_num(v)] {
                assert!(t.len() <= 24, "{v}: {t}");
            }
        }
        assert_eq!(closest("perlm", &["perllm", "oracle"]), Some("perllm"));
        assert_eq!(closest("zzz", &["perllm", "oracle"]), None);
    }
}

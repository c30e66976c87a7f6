//! Helpers shared by the bundled plugins.

use perllm_plugin_abi::{EstimateView, Pending, ServerView, Slot};
use serde::de::DeserializeOwned;

/// Parse a plugin's JSON config; an empty string or `null` gives the defaults.
pub fn parse_config<T: DeserializeOwned + Default>(
    plugin: &str,
    config: &str,
) -> Result<T, String> {
    let t = config.trim();
    if t.is_empty() || t == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(t).map_err(|e| {
        let e = e.to_string();
        let why = unknown_field(&e).or_else(|| culprit::<T>(t)).unwrap_or(e);
        format!("invalid config for `{plugin}`: {why}")
    })
}

/// The parameter a config error is about, when the config is an object: the first key that fails
/// on its own (every other parameter at its default), as "parameter `k`: why".
fn culprit<T: DeserializeOwned>(config: &str) -> Option<String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(config).ok()?;
    map.into_iter().find_map(|(k, v)| {
        let one = serde_json::Value::Object([(k.clone(), v)].into_iter().collect());
        serde_json::from_value::<T>(one)
            .err()
            .map(|e| format!("parameter `{k}`: {e}"))
    })
}

/// `Ok` where `ok` holds, else the config error "invalid config for `plugin`: why".
pub fn check(plugin: &str, ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("invalid config for `{plugin}`: {}", why()))
    }
}

/// A weight or other number must be finite and at least `min`: the error names the parameter.
pub fn check_at_least(plugin: &str, name: &str, v: f64, min: f64) -> Result<(), String> {
    check(plugin, v.is_finite() && v >= min, || {
        format!("parameter `{name}` must be a finite number >= {min}, got {v}")
    })
}

/// A factor such as a slack must be finite and positive: the error names the parameter.
pub fn check_positive(plugin: &str, name: &str, v: f64) -> Result<(), String> {
    check(plugin, v.is_finite() && v > 0.0, || {
        format!("{name} must be positive, got {v}")
    })
}

/// A word parameter must be one of `allowed`: the error names the parameter and the choices.
pub fn check_one_of(plugin: &str, name: &str, v: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        Err(format!(
            "invalid config for `{plugin}`: parameter `{name}` must be {}, got `{v}`",
            list.join(" or ")
        ))
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b` at line 1 column 7" as the parameter
/// message every other name gets: "unknown parameter `x`; did you mean `a`? known parameters:
/// a, b" (or "it takes no parameters").
fn unknown_field(e: &str) -> Option<String> {
    let rest = e.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let rest = rest.split(" at line ").next().unwrap_or(rest);
    let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    if known.is_empty() {
        return Some(format!(
            "unknown parameter `{name}`: it takes no parameters"
        ));
    }
    let lname = name.to_ascii_lowercase();
    let close = known
        .iter()
        .map(|k| (strsim::levenshtein(&lname, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (name.len().max(k.len()) / 3).max(1))
        .min()
        .map(|(_, k)| k)
        .or_else(|| {
            // Most of the name is the start of exactly one parameter (`explore`, `exploration`);
            // the same rule as perllm-core's `suggest`.
            let common = |k: &str| {
                lname
                    .chars()
                    .zip(k.to_ascii_lowercase().chars())
                    .take_while(|(a, b)| a == b)
                    .count()
            };
            let n = lname.chars().count();
            let mut best = known
                .iter()
                .map(|k| (common(k), *k))
                .filter(|(c, _)| *c >= 4 && 4 * c >= 3 * n)
                .collect::<Vec<_>>();
            best.sort_by_key(|&(c, _)| std::cmp::Reverse(c));
            match best.as_slice() {
                [(c, k), rest @ ..] if rest.first().is_none_or(|r| r.0 < *c) => Some(*k),
                _ => None,
            }
        });
    let hint = close.map_or_else(String::new, |k| format!("did you mean `{k}`? "));
    Some(format!(
        "unknown parameter `{name}`; {hint}known parameters: {}",
        known.join(", ")
    ))
}

/// A small deterministic generator (SplitMix64): plenty for tie-breaking and exploration.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A uniform f64 in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// A uniform index in [0, n) (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Requests a server holds (uploading + queued + running) plus `extra` placed this slot, per
/// batch slot.
#[inline]
pub fn load(s: &ServerView, extra: u32) -> f64 {
    (s.uploading as f64 + s.queued as f64 + s.running as f64 + extra as f64)
        / s.max_batch.max(1) as f64
}

/// The least-loaded server among those hosting `model` that pass `filter`, counting requests
/// already placed this slot (`extra`, indexed by server); ties go to the lower id.
pub fn least_loaded(
    slot: &Slot<'_>,
    model: u16,
    extra: &[u32],
    filter: impl Fn(&ServerView) -> bool,
) -> Option<u32> {
    let mut best: Option<(f64, u32)> = None;
    for (i, s) in slot.servers().iter().enumerate() {
        if !slot.hosts(i, model) || !filter(s) {
            continue;
        }
        let l = load(s, extra.get(i).copied().unwrap_or(0));
        if best.is_none_or(|(bl, _)| l < bl) {
            best = Some((l, i as u32));
        }
    }
    best.map(|b| b.1)
}

/// Queueing of a request on server `s` from the estimate `e` and `extra` requests placed there
/// earlier in the slot: the estimate's own queue, raised to `((occupied - b) / b + 1)` rounds of
/// one prefill-and-decode each when `occupied = uploading + queued + running + extra` fills the
/// `b = max_batch` batch slots.
#[inline]
pub fn queue_ns(s: &ServerView, e: &EstimateView, extra: u32) -> u64 {
    let mb = s.max_batch.max(1);
    let occupied = s
        .uploading
        .saturating_add(s.queued)
        .saturating_add(s.running)
        .saturating_add(extra);
    let queue = if occupied >= mb {
        let rounds = u64::from((occupied - mb) / mb + 1);
        rounds.saturating_mul(e.prefill_ns.saturating_add(e.decode_ns))
    } else {
        0
    };
    e.queue_ns.max(queue)
}

/// Predicted completion of a request on server `s` (the estimate with [`queue_ns`] as its
/// queueing), counted from the slot's `now`; `None` when the host has no valid estimate (the
/// server does not host the model).
#[inline]
pub fn predicted_ns(s: &ServerView, e: &EstimateView, extra: u32) -> Option<u64> {
    if e.valid != 1 {
        return None;
    }
    Some(
        e.total_ns()
            .saturating_sub(e.queue_ns)
            .saturating_add(queue_ns(s, e, extra)),
    )
}

/// The absolute time by which `r` must be delivered.
#[inline]
pub fn due_ns(slot: &Slot<'_>, r: &Pending) -> u64 {
    r.request.arrival_ns.saturating_add(slot.deadline_ns(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_uniform_enough() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let xs: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut c = SplitMix64::new(1);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[c.below(4)] += 1;
        }
        for n in counts {
            assert!((9_000..11_000).contains(&n), "{counts:?}");
        }
    }

    #[test]
    fn config_defaults_and_errors() {
        #[derive(serde::Deserialize, Default, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct C {
            #[serde(default)]
            x: f64,
        }
        assert_eq!(parse_config::<C>("p", "").unwrap(), C::default());
        assert_eq!(parse_config::<C>("p", "null").unwrap(), C::default());
        assert_eq!(parse_config::<C>("p", r#"{"x": 2}"#).unwrap(), C { x: 2.0 });
        let e = parse_config::<C>("p", r#"{"y": 2}"#).unwrap_err();
        assert_eq!(
            e,
            "invalid config for `p`: unknown parameter `y`; did you mean `x`? known parameters: x"
        );
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct Two {
            #[serde(default)]
            _exploration: f64,
            #[serde(default)]
            _window: f64,
        }
        let e = parse_config::<Two>("p", r#"{"speed": 2}"#).unwrap_err();
        assert_eq!(
            e,
            "invalid config for `p`: unknown parameter `speed`; known parameters: _exploration, _window"
        );
        let e = parse_config::<Two>("p", r#"{"_windw": 2}"#).unwrap_err();
        assert!(e.contains("did you mean `_window`?"), "{e}");
        let e = parse_config::<C>("p", r#"{"x": "fast"}"#).unwrap_err();
        assert!(
            e.starts_with("invalid config for `p`: parameter `x`: invalid type: string \"fast\""),
            "{e}"
        );
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(deny_unknown_fields)]
        struct NoFields {}
        let e = parse_config::<NoFields>("p", r#"{"slack": 2}"#).unwrap_err();
        assert_eq!(
            e,
            "invalid config for `p`: unknown parameter `slack`: it takes no parameters"
        );
    }
}

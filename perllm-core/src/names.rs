//! Names in a scenario: what a name may be, and names that would be ambiguous.
//!
//! Names appear in tables, CSV columns, JSON keys, `--set` paths and constraint targets, so a
//! name is 1 to [`MAX_NAME_BYTES`] bytes without control characters (a newline broke the tables,
//! a NUL the C ABI). A server may not carry the name of a family (`edge` next to `edge[1..5]`:
//! `share(edge)` and `--set server.edge...` would not say which), and a server lists a model
//! once. Messages quote names through [`excerpt`], so a huge name never makes a huge message.

use crate::spec::{Scenario, limits};
use crate::world::ScenarioError;
use std::collections::{BTreeMap, BTreeSet};

/// Longest accepted name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Characters of a name quoted in a message at most.
const EXCERPT_CHARS: usize = 40;

/// `name` as a message may quote it: control characters escaped, at most 40 characters, then
/// `…` and the length in bytes.
pub fn excerpt(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push_str(&format!("… ({} bytes)", name.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".into())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "`{}` is longer than {MAX_NAME_BYTES} bytes",
            excerpt(name)
        ))
    } else if name.chars().any(char::is_control) {
        Some(format!(
            "`{}` contains a control character (a newline, tab, NUL...): names appear in \
             tables and CSV files",
            excerpt(name)
        ))
    } else {
        None
    }
}

/// Names no message should quote as they are (empty, control characters, too long), and more
/// SLO classes than the limit. When there is one, [`Scenario::build`] reports only
/// these (its other messages quote names, and its tables grow with the counts).
pub(crate) fn unusable(sc: &Scenario) -> Vec<ScenarioError> {
    let mut errs = Vec::new();
    for (what, n, max) in [("slo", sc.slos.len(), limits::MAX_SLO_CLASSES)] {
        if n > max {
            errs.push(ScenarioError {
                path: what.into(),
                message: format!(
                    "{n} {what} declarations, more than the {max} a scenario may have"
                ),
            });
        }
    }
    if !errs.is_empty() {
        return errs;
    }
    let mut check = |kind: &str, i: usize, name: &str| {
        if let Some(p) = name_problem(name) {
            errs.push(ScenarioError {
                path: format!("{kind}#{}", i + 1),
                message: format!("the name of {kind} {} {p}", i + 1),
            });
        }
    };
    for (i, h) in sc.hardware.iter().enumerate() {
        check("hardware", i, &h.name);
    }
    for (i, m) in sc.models.iter().enumerate() {
        check("model", i, &m.name);
    }
    for (i, l) in sc.links.iter().enumerate() {
        check("link", i, &l.name);
    }
    for (i, s) in sc.servers.iter().enumerate() {
        check("server", i, &s.name);
    }
    for (i, s) in sc.slos.iter().enumerate() {
        check("slo", i, &s.name);
    }
    for (i, s) in sc.servers.iter().enumerate() {
        if let Some(f) = &s.family
            && let Some(p) = name_problem(f)
        {
            errs.push(ScenarioError {
                path: format!("server#{}", i + 1),
                message: format!("the family name of server {} {p}", i + 1),
            });
        }
    }
    errs
}

/// Ambiguous names: a server named like a family, a model listed twice on one server.
pub(crate) fn ambiguous(sc: &Scenario) -> Vec<ScenarioError> {
    let mut errs = Vec::new();
    let mut families: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &sc.servers {
        if let Some(f) = &s.family {
            families
                .entry(f.as_str())
                .or_default()
                .push(s.name.as_str());
        }
    }
    for s in &sc.servers {
        if let Some(members) = families.get(s.name.as_str())
            && s.family.as_deref() != Some(s.name.as_str())
        {
            let shown: Vec<&str> = members.iter().take(3).copied().collect();
            errs.push(ScenarioError {
                path: format!("server[{}]", excerpt(&s.name)),
                message: format!(
                    "server `{}` has the name of the family of servers {}{}: `share({0})`, \
                     `occupancy({0})` and `--set server.{0}...` would not say which is meant; \
                     rename the server or the family",
                    excerpt(&s.name),
                    shown.join(", "),
                    if members.len() > 3 { ", ..." } else { "" }
                ),
            });
        }
        let mut seen = BTreeSet::new();
        for m in &s.models {
            if !seen.insert(m.as_str()) {
                errs.push(ScenarioError {
                    path: format!("server[{}].models", excerpt(&s.name)),
                    message: format!("model `{}` is listed twice", excerpt(m)),
                });
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("edge1"), "edge1");
        assert_eq!(excerpt("a\nb\0"), "a\\nb\\u{0}");
        let long = "x".repeat(1_000_000);
        let e = excerpt(&long);
        assert!(e.len() < 80 && e.ends_with("… (1000000 bytes)"), "{e}");
    }
}

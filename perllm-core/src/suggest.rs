//! "Did you mean ...?" for names the user typed: the closest known name, if it is close enough
//! to be a plausible typo.

/// The closest candidate to `name` (ASCII case ignored), if it is a plausible typo of it (an edit
/// distance of at most a third of the longer name) or a spelling with the same start.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if name.len() > 64 {
        return None;
    }
    let lname = name.to_ascii_lowercase();
    let cands: Vec<&str> = candidates
        .into_iter()
        .filter(|c| c.len() <= 64 && *c != name)
        .collect();
    let mut best: Option<(usize, &str)> = None;
    for &c in &cands {
        let d = strsim::levenshtein(&lname, &c.to_ascii_lowercase());
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c).or_else(|| {
        // A shortened or lengthened word (`explore` for `exploration`): the candidate sharing the
        // longest start with the name, if that start is most of the name.
        let common = |c: &str| {
            lname
                .chars()
                .zip(c.to_ascii_lowercase().chars())
                .take_while(|(a, b)| a == b)
                .count()
        };
        let n = lname.chars().count();
        let mut by_start: Vec<(usize, &str)> = cands
            .iter()
            .map(|c| (common(c), *c))
            .filter(|(k, _)| *k >= 4 && 4 * k >= 3 * n)
            .collect();
        by_start.sort_by_key(|&(k, _)| std::cmp::Reverse(k));
        match by_start.as_slice() {
            [(k, c), rest @ ..] if rest.first().is_none_or(|r| r.0 < *k) => Some(*c),
            _ => None,
        }
    })
}

/// `"did you mean `x`? "` when a candidate is close, else the empty string (for messages that
/// go on to list every candidate).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates).map_or_else(String::new, |c| format!("did you mean `{c}`? "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_only() {
        let known = ["exploration", "constraint_weight", "window"];
        assert_eq!(closest("explorationn", known), Some("exploration"));
        assert_eq!(closest("Windw", known), Some("window"));
        assert_eq!(closest("speed", known), None);
        assert_eq!(
            closest("explore", known),
            Some("exploration"),
            "most of the name is the start of one candidate"
        );
        assert_eq!(closest("w", known), None);
        assert_eq!(closest("constant", known), None, "only `const` in common");
        assert_eq!(did_you_mean("speed", known), "");
        assert_eq!(
            did_you_mean("constraint-weight", known),
            "did you mean `constraint_weight`? "
        );
    }
}

//! What produced a result: scenario hash, versions.

use perllm_core::Scenario;
use sha2::{Digest, Sha256};

/// The perllm version of this binary.
pub const PERLLM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `sha256:` and the hex SHA-256 of the scenario's canonical JSON (serde's compact serialisation
/// of [`Scenario`]: fields in declaration order, maps sorted by key).
pub fn scenario_hash(s: &Scenario) -> String {
    let json = serde_json::to_string(s).expect("a scenario serialises to JSON");
    let digest = Sha256::digest(json.as_bytes());
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use perllm_core::testbed;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = testbed::paper(2.0, 10_000_000_000);
        let h = scenario_hash(&a);
        assert_eq!(h, scenario_hash(&a.clone()));
        assert!(h.starts_with("sha256:") && h.len() == 71);
        let mut b = a.clone();
        b.workload.max_requests = Some(5);
        assert_ne!(h, scenario_hash(&b));
    }
}

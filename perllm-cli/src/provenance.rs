//! What produced a result: scenario hash, versions.

use perllm_core::Scenario;
use sha2::{Digest, Sha256};

/// The perllm version of this binary.
pub const PERLLM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `sha256:` and the hex SHA-256 of the scenario's canonical JSON (serde's compact serialisation
/// of [`Scenario`]: fields in declaration order, maps sorted by key).
///
/// A trace's path is replaced by its file name and the SHA-256 of its content
/// ([`trace_identity`]): the loaders resolve the path against the scenario file's directory as
/// the command was given it, so the same scenario run from two working directories (or two
/// machines) would otherwise get two hashes, and its shards could not be merged; and two traces
/// with the same name but different rows must not pass for one.
pub fn scenario_hash(s: &Scenario) -> String {
    let mut c = s.clone();
    if let Some(t) = c.workload.trace.as_mut() {
        t.path = trace_identity(&t.path);
    }
    // The memory limit decides whether a run may start, not what it computes: shards run with
    // different `--memory-limit` values merge.
    c.sim.max_memory_bytes = None;
    let json = serde_json::to_string(&c).expect("a scenario serialises to JSON");
    hex_sha256(&Sha256::digest(json.as_bytes()))
}

fn hex_sha256(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// `NAME sha256:HEX`: a trace file's name and the hash of its bytes (streamed; computed once
/// per path and process). Just the name if the file cannot be read (the run then fails opening
/// it, with the reason).
pub fn trace_identity(path: &str) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(id) = cache.as_ref().and_then(|m| m.get(path)) {
        return id.clone();
    }
    let p = std::path::Path::new(path);
    let name = p
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned());
    let content = perllm_dsl::files::open(p, "trace file", u64::MAX)
        .ok()
        .and_then(|mut f| {
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h).ok()?;
            Some(hex_sha256(&h.finalize()))
        });
    let id = match content {
        Some(c) => format!("{name} {c}"),
        None => name,
    };
    cache
        .get_or_insert_with(HashMap::new)
        .insert(path.to_string(), id.clone());
    id
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

    /// A trace scenario's hash depends on the trace's name and bytes, not on how its path was
    /// reached (issue 21: shards run from two working directories could not be merged).
    #[test]
    fn trace_hash_ignores_the_directory_and_sees_the_content() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(
                d.join("t.csv"),
                "arrival_s,prompt_tokens,output_tokens\n0,1,1\n",
            )
            .unwrap();
        }
        std::fs::write(
            b.join("other.csv"),
            "arrival_s,prompt_tokens,output_tokens\n0,1,2\n",
        )
        .unwrap();
        let with = |p: &std::path::Path| {
            let mut s = testbed::paper(2.0, 10_000_000_000);
            s.workload.trace = Some(perllm_core::spec::TraceSpec {
                path: p.to_string_lossy().into_owned(),
                ..serde_json::from_str(r#"{"path": "", "format": "csv"}"#).unwrap()
            });
            scenario_hash(&s)
        };
        let h = with(&a.join("t.csv"));
        assert_eq!(h, with(&b.join("t.csv")), "same name and bytes elsewhere");
        assert_eq!(h, with(&b.join("../a/./t.csv")), "another path to it");
        std::fs::copy(b.join("other.csv"), t.path().join("t.csv")).unwrap();
        assert_ne!(h, with(&t.path().join("t.csv")), "same name, other rows");
        assert_ne!(h, with(&b.join("other.csv")));
    }
}

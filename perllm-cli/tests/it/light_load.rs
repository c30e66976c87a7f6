//! PerLLM (the default, improved variant) at light load on the paper's 7B deployment: its
//! deadline attainment within one point of cloud-only's and its energy per request within 5% of
//! it (issue 15, item 3: the paper variant explored five identical CPU edge servers and lost 2-4
//! points there). A few seeds, each point in a few seconds of a debug build.

use crate::perllm;
use serde_json::Value;

#[test]
fn perllm_matches_cloud_only_at_light_load_on_paper_7b() {
    for rate in ["0.5/s", "2/s"] {
        let out = perllm(&[
            "--quiet",
            "compare",
            "examples/paper-7b.perllm",
            "--set",
            &format!("workload.arrivals.rate={rate}"),
            "--policies",
            "perllm,cloud-only",
            "--seeds",
            "1..3",
            "-f",
            "json",
        ]);
        let v: Value = serde_json::from_str(out.ok()).expect("JSON results");
        let row = |p: &str| {
            v["summary"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["policy"] == p)
                .unwrap_or_else(|| panic!("no summary row for {p}"))
                .clone()
        };
        let (ours, cloud) = (row("perllm"), row("cloud-only"));
        let att = |r: &Value| r["deadline_attainment_mean"].as_f64().unwrap();
        let energy = |r: &Value| r["energy_per_request_j_mean"].as_f64().unwrap();
        assert!(att(&cloud) > 0.95, "{rate}: light load: {}", att(&cloud));
        assert!(
            att(&ours) >= att(&cloud) - 0.01,
            "{rate}: perllm attainment {:.4} vs cloud-only {:.4}",
            att(&ours),
            att(&cloud)
        );
        assert!(
            energy(&ours) <= 1.05 * energy(&cloud),
            "{rate}: perllm {:.1} J vs cloud-only {:.1} J per request",
            energy(&ours),
            energy(&cloud)
        );
    }
}

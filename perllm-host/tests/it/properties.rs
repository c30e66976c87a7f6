//! Properties over random slots: every bundled policy, called through the ABI, returns placements
//! the host accepts (each pending request decided once, only on servers hosting its model), and
//! the deterministic ones decide identically when asked twice.

use super::*;
use perllm_core::spec::PolicySpec;
use proptest::prelude::*;

/// Per server (uploading, queued, running); per request (model, prompt, output, slo); a seed.
type RandomSlot = (Vec<(u32, u32, u32)>, Vec<(u16, u32, u32, u16)>, u64);

fn slot_strategy() -> impl Strategy<Value = RandomSlot> {
    (
        // Per server of the paper testbed: uploading, queued, running.
        proptest::collection::vec((0u32..20, 0u32..200, 0u32..70), 6),
        // Pending requests: model, prompt, output, slo.
        proptest::collection::vec((0u16..2, 1u32..8192, 1u32..4096, 0u16..3), 0..150),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn bundled_policies_return_valid_placements((loads, reqs, seed) in slot_strategy()) {
        let world = paper(1.0, 1);
        let registry = bundled();
        let mut states = ServerState::all_idle(&world);
        for (st, (u, q, r)) in states.iter_mut().zip(&loads) {
            st.uploading = *u;
            st.queued = *q;
            st.running = *r;
        }
        let pending: Vec<Pending> = reqs
            .iter()
            .enumerate()
            .map(|(i, &(model, prompt, output, slo))| Pending {
                request: perllm_core::Request {
                    id: i as u64 * 7 + 3,
                    arrival_ns: 0,
                    model,
                    prompt_tokens: prompt,
                    output_tokens: output,
                    input_bytes: prompt as u64 * 4,
                    output_bytes: output as u64 * 4,
                    slo,
                },
                defers: (i % 3) as u32,
            })
            .collect();
        let cost = Roofline::default();
        let view = ClusterView { now_ns: 5 * SECOND, slot: 50, world: &world, servers: &states, cost: &cost, truth: None, model_load: &[] };
        for name in ["cloud-only", "edge-only", "random", "round-robin", "least-loaded", "greedy", "ucb1", "epsilon-greedy"] {
            let spec = PolicySpec { name: name.into(), params: Default::default() };
            let mut p = registry.policy(&spec, &world, seed).unwrap();
            let mut out = vec![Decision::Defer; pending.len()];
            p.schedule(&view, &pending, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (d, q) in out.iter().zip(&pending) {
                match d {
                    Decision::Assign(s) => prop_assert!(world.servers[*s as usize].hosts(q.request.model), "{name}"),
                    Decision::Reject => prop_assert!(name == "edge-only" && q.request.model == 1, "{name} rejected"),
                    Decision::Defer => prop_assert!(false, "{name} deferred"),
                }
            }
            let mut again = registry.policy(&spec, &world, seed).unwrap();
            let mut out2 = vec![Decision::Defer; pending.len()];
            again.schedule(&view, &pending, &mut out2).unwrap();
            prop_assert_eq!(&out, &out2, "{} is deterministic for a seed", name);
        }
        prop_assert!(registry.check().is_ok());
    }
}

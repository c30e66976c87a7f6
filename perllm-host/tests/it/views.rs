//! The host keeps a policy's views across calls and rewrites only what changed: a run in which
//! requests are deferred (so that later calls see requests from earlier ones, with new `defers`,
//! next to new requests) decides through the ABI exactly as the same policy in-process.

use super::*;
use perllm_core::simple::from_fn;

#[test]
fn deferred_requests_are_decided_as_in_process() {
    let world = paper(6.0, 20);
    let r = testkit();
    for defers in [1, 3] {
        let params = [
            ("mode", ParamValue::Text("defer".into())),
            ("defers", ParamValue::Number(defers as f64)),
        ];
        let mut foreign = r.policy(&spec("testkit", &params), &world, 1).unwrap();
        // The testkit's `defer` mode, in-process: a request with an even prompt length is
        // deferred until it has been deferred `defers` times; every request is placed on the
        // first server hosting its model.
        let mut deferred = 0u64;
        let mut twin = from_fn("testkit", |view, p| {
            if p.request.prompt_tokens % 2 == 0 && p.defers < defers {
                deferred += 1;
                Decision::Defer
            } else {
                match view.candidates(&p.request).next() {
                    Some(s) => Decision::Assign(s),
                    None => Decision::Reject,
                }
            }
        });
        let a = run(&world, &mut *foreign, &Roofline::default()).unwrap();
        let b = run(&world, &mut twin, &Roofline::default()).unwrap();
        r.check().unwrap();
        assert!(deferred > 40, "{deferred}");
        assert!(a.completed > 50, "{}", a.completed);
        let mut a = deterministic_json(&a);
        a["policy_stats"] = serde_json::Value::Null;
        let mut b = deterministic_json(&b);
        b["policy_stats"] = serde_json::Value::Null;
        assert_eq!(a, b, "defers {defers}");
    }
}

//! End to end through the gateway to real engine processes, streaming and not.

use crate::harness::*;
use perllm_gateway::GatewayConfig;

#[test]
fn non_streaming_and_streaming_through_real_engines() {
    let (cloud, edge) = (engine(None), engine(None));
    let world = world(&scenario(&[&cloud.url, &edge.url], "0 s", "perllm"));
    let dir = tempfile::tempdir().unwrap();
    let (csv, log) = request_log(dir.path());
    let gw = gateway(world, RoundRobin::boxed(), GatewayConfig::default(), log);
    let c = client();
    // Non-streaming completion: the engine's answer, with its backend named.
    let r = complete(
        &c,
        &gw.url,
        r#"{"model":"tiny","prompt":"hello edge and cloud","max_tokens":6}"#,
    );
    assert_eq!(r.status(), 200);
    let backend = r.headers()["x-perllm-backend"]
        .to_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["choices"][0]["text"].as_str().unwrap().len(), 24);
    // Streaming chat: 5 token chunks, then [DONE], on the other backend (round robin).
    let r = c
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-perllm-slo", "slow")
        .body(r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_ne!(r.headers()["x-perllm-backend"].to_str().unwrap(), backend);
    let text = r.text().unwrap();
    let datas: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.len(), 6, "{text}");
    assert_eq!(datas[5], "[DONE]");
    let first: serde_json::Value = serde_json::from_str(datas[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    // Models and metrics.
    let m: serde_json::Value = c
        .get(format!("{}/v1/models", gw.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(m["data"][0]["id"], "tiny");
    let needles = [
        "perllm_gateway_requests_total{endpoint=\"completions\",status=\"200\"} 1",
        "perllm_gateway_decisions_total{decision=\"assign\",backend=\"cloud\"} 1",
        "perllm_gateway_slo_completed_total{slo=\"slow\"} 1",
        "perllm_gateway_slo_attainment{slo=\"fast\"} 1",
        "perllm_gateway_ttft_seconds_bucket",
        "perllm_gateway_backend_in_flight{backend=\"edge1\"} 0",
    ];
    // The last request is counted just after its stream ends: wait for it (bounded).
    let t = std::time::Instant::now();
    let mut text = metrics(&c, &gw.url);
    while !needles.iter().all(|n| text.contains(n)) && t.elapsed() < BOUND {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = metrics(&c, &gw.url);
    }
    for needle in needles {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    gw.stop().unwrap();
    let seen_csv = std::fs::read_to_string(&csv).unwrap();
    let rows = request_rows(&csv);
    assert_eq!(rows.len(), 2, "{seen_csv}");
    for r in &rows {
        assert_eq!(r["status"], "completed");
        // What a gateway cannot see is empty, not zero; energy is the cost model's estimate.
        assert_eq!(r["upload_s"], "");
        assert_eq!(r["queue_s"], "");
        assert_eq!(r["energy_source"], "estimated");
        assert!(r["latency_s"].parse::<f64>().unwrap() > 0.0);
    }
}

#[test]
fn the_perllm_policy_routes_real_requests() {
    let (cloud, edge) = (engine(None), engine(None));
    let world = world(&scenario(&[&cloud.url, &edge.url], "50 ms", "perllm"));
    let policy = perllm_core::policies::builtin(&world.scenario.policy, world)
        .unwrap()
        .unwrap();
    let gw = gateway(world, policy, GatewayConfig::default(), None);
    let c = client();
    let mut ok = 0;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (c, url) = (&c, &gw.url);
                s.spawn(move || {
                    let r = complete(c, url, &format!(r#"{{"model":"tiny","prompt":"request {i}","max_tokens":4,"stream":{}}}"#, i % 2 == 0));
                    let st = r.status().as_u16();
                    let body = r.text().unwrap();
                    if st == 200 {
                        assert!(body.contains("\"completion_tokens\":4"), "{body}");
                    }
                    st
                })
            })
            .collect();
        for h in hs {
            let st = h.join().unwrap();
            assert!(st == 200 || st == 429, "status {st}");
            ok += (st == 200) as u32;
        }
    });
    assert!(ok > 0);
    let seen = gw.seen.clone();
    gw.stop().unwrap();
    let done = seen.completed.lock().unwrap().len();
    assert_eq!(done, ok as usize, "every 200 reached observe");
    assert_eq!(
        seen.decisions
            .lock()
            .unwrap()
            .iter()
            .filter(|d| !matches!(d.1, perllm_core::Decision::Defer))
            .count(),
        8
    );
}

#[test]
fn each_backend_gets_its_own_key_and_never_the_clients() {
    // Both engines require a key; `cloud` gets the right one from its `api_key_env`, `edge1`
    // is configured with the wrong one. Clients present the gateway's own key.
    let (cloud, edge) = (engine(Some("backend-key")), engine(Some("another-key")));
    let mut text = scenario(&[&cloud.url, &edge.url], "0 s", "perllm");
    for u in [&cloud.url, &edge.url] {
        text = text.replace(
            &format!("endpoint = \"{u}\""),
            &format!("endpoint = \"{u}\"\n api_key_env = \"PERLLM_TEST_BACKEND_KEY\""),
        );
    }
    let world = world(&text);
    let cfg = GatewayConfig {
        api_keys: vec!["client-key".into()],
        ..GatewayConfig::default()
    };
    let gw = gateway(world, RoundRobin::boxed(), cfg, None);
    let c = client();
    let send = || {
        let r = c
            .post(format!("{}/v1/completions", gw.url))
            .bearer_auth("client-key")
            .header("content-type", "application/json")
            .body(r#"{"model":"tiny","prompt":"keys","max_tokens":2}"#)
            .send()
            .unwrap();
        let backend = r
            .headers()
            .get(perllm_gateway::BACKEND_HEADER)
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), backend)
    };
    // Round robin: cloud answers (its key was sent, not the client's), then edge1 refuses the
    // gateway's key for it, and its 401 reaches the client unchanged.
    assert_eq!(send(), (200, Some("cloud".into())));
    assert_eq!(send(), (401, Some("edge1".into())));
    gw.stop().unwrap();
}

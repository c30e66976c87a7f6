//! Faults and overload: rejection, bad input, a backend killed mid-run, client disconnects.

use crate::harness::*;
use perllm_gateway::GatewayConfig;
use std::time::{Duration, Instant};

#[test]
fn a_rejection_is_a_429_with_retry_after() {
    let e = engine(None);
    let world = world(&scenario(&[&e.url], "0 s", "perllm"));
    let gw = gateway(
        world,
        RoundRobin::rejecting(vec![1]),
        GatewayConfig::default(),
        None,
    );
    let c = client();
    let body = r#"{"model":"tiny","prompt":"x","max_tokens":2}"#;
    let r0 = complete(&c, &gw.url, body);
    assert_eq!(r0.status(), 200);
    let r1 = complete(&c, &gw.url, body);
    assert_eq!(r1.status(), 429);
    assert_eq!(r1.headers()["retry-after"], "1");
    assert_eq!(r1.headers()["x-perllm-reject-reason"], "policy");
    let v: serde_json::Value = r1.json().unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "rejected_by_policy");
    gw.stop().unwrap();
}

#[test]
fn bad_input_is_a_4xx_and_never_reaches_a_backend() {
    // The only backend is a port nothing listens on: a request that reached it would be
    // re-offered until the deferral limit, a 429, never a 4xx with these codes.
    let world = world(&scenario(&["http://127.0.0.1:9"], "0 s", "perllm"));
    let cfg = GatewayConfig {
        max_tokens_limit: 1000,
        api_keys: vec!["secret".into()],
        ..GatewayConfig::default()
    };
    let gw = gateway(world, RoundRobin::boxed(), cfg, None);
    let c = client();
    let post = |body: &str, key: Option<&str>, slo: Option<&str>| {
        let mut rb = c
            .post(format!("{}/v1/completions", gw.url))
            .body(body.to_string());
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(s) = slo {
            rb = rb.header("x-perllm-slo", s);
        }
        let r = rb.send().unwrap();
        let st = r.status().as_u16();
        let v: serde_json::Value = r.json().unwrap();
        (st, v["error"]["code"].as_str().unwrap_or("").to_string())
    };
    let ok = r#"{"model":"tiny","prompt":"x","max_tokens":2}"#;
    assert_eq!(post(ok, None, None), (401, "missing_api_key".into()));
    assert_eq!(
        post(ok, Some("wrong"), None),
        (401, "invalid_api_key".into())
    );
    let k = Some("secret");
    assert_eq!(post("{oops", k, None), (400, "invalid_json".into()));
    assert_eq!(
        post(r#"{"model":"gpt-9","prompt":"x"}"#, k, None),
        (404, "model_not_found".into())
    );
    assert_eq!(
        post(
            r#"{"model":"tiny","prompt":"x","max_tokens":100000000}"#,
            k,
            None
        ),
        (400, "invalid_value".into())
    );
    assert_eq!(
        post(r#"{"model":"tiny","prompt":"x","max_tokens":0}"#, k, None),
        (400, "invalid_value".into())
    );
    assert_eq!(
        post(r#"{"model":"tiny"}"#, k, None),
        (400, "missing_required_parameter".into())
    );
    assert_eq!(
        post(ok, k, Some("platinum")),
        (400, "unknown_slo_class".into())
    );
    assert!(
        gw.seen.decisions.lock().unwrap().is_empty(),
        "nothing was scheduled"
    );
    gw.stop().unwrap();
}

#[test]
fn a_backend_killed_mid_run_loses_no_request() {
    let (cloud, mut edge) = (engine(None), engine(None));
    let world = world(&scenario(&[&cloud.url, &edge.url], "0 s", "perllm"));
    let cfg = GatewayConfig {
        connect_timeout: Duration::from_millis(500),
        probe_interval: Duration::from_millis(200),
        ..GatewayConfig::default()
    };
    let gw = gateway(world, RoundRobin::boxed(), cfg, None);
    let c = client();
    let send = |i: u32| {
        c.post(format!("{}/v1/completions", gw.url))
            .body(format!(
                r#"{{"model":"tiny","prompt":"req {i}","max_tokens":3}}"#
            ))
            .send()
            .unwrap()
    };
    for i in 0..4 {
        assert_eq!(send(i).status(), 200);
    }
    edge.child.kill().unwrap();
    edge.child.wait().unwrap();
    // Every request after the kill completes: the ones the policy sends to the dead edge are
    // re-offered (and the view then shows it unreachable), the rest go to the cloud.
    let mut backends = Vec::new();
    for i in 4..12 {
        let r = send(i);
        assert_eq!(r.status(), 200, "request {i}");
        backends.push(
            r.headers()["x-perllm-backend"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(backends.iter().all(|b| b == "cloud"), "{backends:?}");
    let metrics = metrics(&c, &gw.url);
    assert!(
        metrics.contains("perllm_gateway_backend_healthy{backend=\"edge1\"} 0"),
        "{metrics}"
    );
    // A completion reaches the observers just after its response: count them once the
    // scheduler has stopped.
    let seen = gw.seen.clone();
    gw.stop().unwrap();
    assert_eq!(seen.completed.lock().unwrap().len(), 12);
}

#[test]
fn a_client_that_goes_away_cancels_its_backend_request() {
    let e = engine_with(None, true);
    let world = world(&scenario(&[&e.url], "0 s", "perllm"));
    let gw = gateway(world, RoundRobin::boxed(), GatewayConfig::default(), None);
    // A long streaming request, abandoned after its first bytes.
    let body = r#"{"model":"tiny","prompt":"long","max_tokens":500,"stream":true}"#;
    drop(raw_stream(&gw.url, body));
    let c = client();
    let t = Instant::now();
    loop {
        let m = metrics(&c, &gw.url);
        if m.contains("perllm_gateway_requests_ended_total{end=\"cancelled\",slo=\"fast\"} 1")
            && m.contains("perllm_gateway_backend_in_flight{backend=\"cloud\"} 0")
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "not cancelled:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The engine is free again: a new request completes at once.
    let r = complete(
        &c,
        &gw.url,
        r#"{"model":"tiny","prompt":"x","max_tokens":2}"#,
    );
    assert_eq!(r.status(), 200);
    gw.stop().unwrap();
}

//! The child process: `PERLLM_TEST_CHILD=engine` runs perllm-engine behind the OpenAI API on
//! an ephemeral loopback port, prints `LISTEN <addr>`, and serves until killed or SIGTERM.

use perllm_engine::EngineConfig;
use perllm_openai::engine_server::{EngineServerConfig, router};

/// Not a test: the entry point of the engine child process (ignored unless run by the harness).
#[test]
#[ignore = "entry point of the engine child process, started by the harness"]
fn engine_process() {
    if std::env::var("PERLLM_TEST_CHILD").as_deref() != Ok("engine") {
        return;
    }
    let mut cfg = EngineConfig::tiny();
    cfg.max_batch = 16;
    if std::env::var("PERLLM_TEST_SLOW").is_ok() {
        // Milliseconds per token: long requests stay in flight long enough to be cut.
        (
            cfg.layers,
            cfg.hidden,
            cfg.intermediate,
            cfg.heads,
            cfg.kv_heads,
        ) = (4, 512, 1536, 8, 4);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let app = router(EngineServerConfig {
            engine: cfg,
            model: "tiny".into(),
            api_keys: std::env::var("PERLLM_TEST_KEY").into_iter().collect(),
        })
        .expect("engine");
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("LISTEN {}", l.local_addr().expect("addr"));
        perllm_openai::serve_until(
            l,
            app,
            perllm_openai::termination(),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("serve");
    });
    std::process::exit(0);
}

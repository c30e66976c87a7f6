//! The isolated plugin worker as its own program (the `perllm` binary has the same as the hidden
//! `perllm plugin-worker` command). The host starts it with pipes on stdin and stdout.

fn main() -> std::process::ExitCode {
    match perllm_host::isolate::serve_stdio() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perllm-plugin-worker: {e}");
            std::process::ExitCode::from(70)
        }
    }
}

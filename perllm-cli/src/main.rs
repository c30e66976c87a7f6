//! The `perllm` binary: everything is in the `perllm_cli` library.

fn main() -> std::process::ExitCode {
    perllm_cli::main_entry()
}

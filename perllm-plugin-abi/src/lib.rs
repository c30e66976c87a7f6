//! The stable C ABI for perllm plugins and a safe guest SDK (no dependencies)

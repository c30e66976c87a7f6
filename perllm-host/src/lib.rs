//! Loads perllm plugins through the C ABI and wraps them as core policies and cost models

//! Shared helpers for perllm's end-to-end tests.

//! End-to-end tests of the perllm binary.

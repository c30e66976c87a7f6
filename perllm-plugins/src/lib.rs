//! The bundled perllm baseline policies and hardware cost models, as one cdylib

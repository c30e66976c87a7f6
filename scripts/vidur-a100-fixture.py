#!/usr/bin/env python3
"""Per-iteration operator sums of Vidur's profiled A100 times for Llama-2-7B, as a test fixture.

Reads Vidur's profiling CSVs (Microsoft, MIT licence; the copies in
../shared/reference/vidur-a100-llama2-7b/ come from github.com/microsoft/vidur at commit
7d47513363ec447a741ac5e47241580b47724fbf, data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/)
and writes, for each shape they cover on one A100 (tensor parallelism 1), the time of one
iteration as Vidur's simulator sums it (vidur/entities/execution_time.py, `model_time`): the
per-layer medians of the non-attention operators at the step's token count (layer norms, QKV and
output projections, rotary embedding, MLP up/gate, activation, down, residual add) plus the
attention kernel (prefill by chunk size and KV size, decode by batch size and KV size per
request), times the model's 32 layers. Embedding and LM head are not counted, as in Vidur.

Shapes: a 400-token prefill alone (the attention file has chunk sizes 384 and 416 at KV size 0;
400 is interpolated linearly, as are MLP token counts between profiled ones) and every decode
(batch size, KV tokens per request) of the attention subset.

Usage: scripts/vidur-a100-fixture.py [REFERENCE_DIR] > perllm-cli/tests/fixtures/vidur-a100-llama2-7b.csv
"""

import csv
import os
import sys

LAYERS = 32
OPS = [
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ref = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "shared", "reference", "vidur-a100-llama2-7b")
    with open(os.path.join(ref, "mlp.csv")) as f:
        mlp = [r for r in csv.DictReader(f) if r["num_tensor_parallel_workers"] == "1"]
    with open(os.path.join(ref, "attention-subset.csv")) as f:
        att = [r for r in csv.DictReader(f) if r["num_tensor_parallel_workers"] == "1"]

    by_tokens = {int(r["num_tokens"]): sum(float(r[f"time_stats.{o}.median"]) for o in OPS) for r in mlp}

    def layer_ms(n):
        if n in by_tokens:
            return by_tokens[n]
        lo = max(k for k in by_tokens if k < n)
        hi = min(k for k in by_tokens if k > n)
        return by_tokens[lo] + (by_tokens[hi] - by_tokens[lo]) * (n - lo) / (hi - lo)

    prefill = {
        int(r["prefill_chunk_size"]): float(r["time_stats.attn_prefill.median"])
        for r in att
        if r["is_prefill"] == "True" and r["kv_cache_size"] == "0"
    }
    attn400 = prefill[384] + (prefill[416] - prefill[384]) * (400 - 384) / (416 - 384)

    out = csv.writer(sys.stdout, lineterminator="\n")
    print("# Llama-2-7B (fp16) on one NVIDIA A100-80GB: time of one iteration, ms, summed from Vidur's")
    print("# profiled per-operator medians x 32 layers (embedding and LM head excluded, as in Vidur).")
    print("# Source: Vidur (github.com/microsoft/vidur, commit 7d47513363ec447a741ac5e47241580b47724fbf,")
    print("# data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/{mlp,attention}.csv).")
    print("# Copyright (c) Microsoft Corporation. MIT licence: vidur-a100-llama2-7b.LICENSE next to this file.")
    print("# Derived by scripts/vidur-a100-fixture.py (the prefill of 400 tokens interpolates chunks 384 and 416).")
    out.writerow(["phase", "batch", "prompt_tokens", "context_tokens", "vidur_ms"])
    out.writerow(["prefill", 1, 400, 0, round(LAYERS * (layer_ms(400) + attn400), 4)])
    decode = sorted(
        (int(r["batch_size"]), int(r["kv_cache_size"]), float(r["time_stats.attn_decode.median"]))
        for r in att
        if r["is_prefill"] == "False"
    )
    for b, kv, attn in decode:
        out.writerow(["decode", b, 0, kv, round(LAYERS * (layer_ms(b) + attn), 4)])


if __name__ == "__main__":
    main()

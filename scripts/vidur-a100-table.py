#!/usr/bin/env python3
"""A `profile-table` cost-model table for Llama-2-7B (fp16) on one A100, from Vidur's profiles.

Reads perllm-cli/tests/fixtures/vidur-a100-llama2-7b.csv (per-iteration operator sums of Vidur's
profiled A100 times, written by scripts/vidur-a100-fixture.py; Microsoft, MIT licence) and
writes the table the `profile-table` cost model reads, with the optional `context` column:
one row per profiled decode shape (batch size x KV tokens per request), decode throughput
`batch / iteration time`; prefill throughput from the profiled 400-token prefill, the same in
every row (the profiles cover one prefill shape).

Usage: scripts/vidur-a100-table.py > examples/profiles/vidur-a100-llama2-7b.csv
"""

import csv
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    fixture = os.path.join(here, "..", "perllm-cli", "tests", "fixtures", "vidur-a100-llama2-7b.csv")
    with open(fixture) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    pre = [r for r in rows if r["phase"] == "prefill"]
    assert len(pre) == 1, "one profiled prefill"
    prefill_tps = int(pre[0]["prompt_tokens"]) / (float(pre[0]["vidur_ms"]) / 1e3)
    out = sys.stdout
    out.write(
        "# Llama-2-7B (fp16) on one NVIDIA A100-80GB: measured iteration times as a perllm `profile-table`.\n"
        "# Source: Vidur (github.com/microsoft/vidur, commit 7d47513363ec447a741ac5e47241580b47724fbf,\n"
        "# data/profiling/compute/a100/meta-llama/Llama-2-7b-hf/{mlp,attention}.csv), per-layer operator\n"
        "# medians x 32 layers (embedding and LM head excluded, as in Vidur).\n"
        "# Copyright (c) Microsoft Corporation. MIT licence: vidur-a100-llama2-7b.LICENSE next to this file.\n"
        "# Derived by scripts/vidur-a100-table.py from perllm-cli/tests/fixtures/vidur-a100-llama2-7b.csv.\n"
        "# context: KV tokens per decoding request. Prefill: the profiled 400-token prefill in every row.\n"
        "model,hardware,batch,context,prefill_tokens_per_s,decode_tokens_per_s\n"
    )
    for r in rows:
        if r["phase"] != "decode":
            continue
        b = int(r["batch"])
        decode_tps = b / (float(r["vidur_ms"]) / 1e3)
        out.write(f"llama2-7b,a100,{b},{r['context_tokens']},{prefill_tps:.3f},{decode_tps:.3f}\n")


if __name__ == "__main__":
    main()

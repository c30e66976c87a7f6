#!/usr/bin/env python3
"""Summarise per-request CSVs (the simulator's columns: `perllm run --requests`, `perllm serve
--requests`, `perllm load --out`) side by side: completed, deadline attainment per SLO class
(met over the class's requests), latency and time-to-first-token percentiles over completed
requests (linear interpolation between order statistics), and placement per server.

Usage: scripts/requests-summary.py A.csv [B.csv ...]   (prints a Markdown table)
"""
import csv
import sys


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    done = [r for r in rows if r["status"] == "completed"]
    out = {"completed": f"{len(done)} / {len(rows)}"}
    for slo in sorted({r["slo"] for r in rows}):
        cls = [r for r in rows if r["slo"] == slo]
        met = sum(1 for r in cls if r["met"] == "true")
        out[f"attainment `{slo}`"] = f"{100 * met / len(cls):.1f}% ({met}/{len(cls)})"
    lat = [float(r["latency_s"]) for r in done]
    ttft = [float(r["ttft_s"]) for r in done if r["ttft_s"]]
    out["latency p50 / p90 / p99"] = " / ".join(f"{pct(lat, q):.3f}" for q in (0.5, 0.9, 0.99)) + " s"
    out["time to first token p50 / p99"] = " / ".join(f"{pct(ttft, q):.3f}" for q in (0.5, 0.99)) + " s"
    servers = sorted({r["server"] for r in done if r["server"]})
    out["placement " + " / ".join(servers)] = " / ".join(
        str(sum(1 for r in done if r["server"] == s)) for s in servers
    )
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cols = [(p, summary(p)) for p in sys.argv[1:]]
    keys = list(dict.fromkeys(k for _, s in cols for k in s))
    print("| | " + " | ".join(p for p, _ in cols) + " |")
    print("| --- " * (len(cols) + 1) + "|")
    for k in keys:
        print(f"| {k} | " + " | ".join(s.get(k, "") for _, s in cols) + " |")


if __name__ == "__main__":
    main()

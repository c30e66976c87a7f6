#!/usr/bin/env bash
# docs/serve.md's sim-versus-real comparison: one workload through the gateway over three real
# engines, and in the simulator, side by side.
#
# Usage: scripts/serve-compare.sh loopback OUT   # examples/serve-loopback.perllm, engines on 127.0.0.1
#        scripts/serve-compare.sh netem OUT      # examples/serve-netem.perllm, each engine behind its
#                                                # emulated link (scripts/netem-links.sh; root)
# Writes OUT/sim.csv (perllm run), OUT/real.csv (perllm load, client side), OUT/gateway.csv and
# OUT/decisions.jsonl (perllm serve), then prints the table of scripts/requests-summary.py.
# Environment: PERLLM (a perllm binary; default: target/debug/perllm, built if missing), PYTHON.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:?usage: serve-compare.sh loopback|netem OUT}"
out="${2:?usage: serve-compare.sh loopback|netem OUT}"
mkdir -p "$out"; out="$(cd "$out" && pwd)"
cd "$root"
if [[ -z "${PERLLM:-}" ]]; then
  PERLLM="$root/target/debug/perllm"
  [[ -x "$PERLLM" ]] || cargo build -q -p perllm-cli
fi
export PERLLM
# The 5.2M-parameter model of the examples; cloud 2 threads, edges 1.
export ENGINE="--preset small --layers 4 --hidden 256 --heads 4 --kv-heads 2 --intermediate 768 --vocab 4000 --max-seq-len 512 --model tiny"

# Run inside the links (netem) or on loopback: start the engines, the gateway, the load.
drive() {
  local pids=() s addr
  for s in cloud edge1 edge2; do
    local threads=1 batch=4
    [[ $s = cloud ]] && threads=2 batch=8
    if [[ -n "${NETEM:-}" ]]; then
      local ns="PERLLM_NETNS_${s^^}" listen="PERLLM_LISTEN_${s^^}"
      ip netns exec "${!ns}" "$PERLLM" engine serve $ENGINE --threads $threads --max-batch $batch \
        --listen "${!listen}" >/dev/null &
    else
      case $s in cloud) addr=127.0.0.1:8100 ;; edge1) addr=127.0.0.1:8101 ;; *) addr=127.0.0.1:8102 ;; esac
      "$PERLLM" engine serve $ENGINE --threads $threads --max-batch $batch --listen $addr >/dev/null &
    fi
    pids+=($!)
  done
  sleep 5
  "$PERLLM" serve "$SCENARIO" --listen 127.0.0.1:8090 --decisions "$out/decisions.jsonl" \
    --requests "$out/gateway.csv" >/dev/null &
  local gw=$!
  sleep 2
  uptime > "$out/load-before.txt"
  "$PERLLM" load "$SCENARIO" --url http://127.0.0.1:8090 --out "$out/real.csv"
  uptime > "$out/load-after.txt"
  kill -TERM $gw; wait $gw || true
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
}

case "$mode" in
  loopback) export SCENARIO=examples/serve-loopback.perllm ;;
  netem) export SCENARIO=examples/serve-netem.perllm ;;
  *) echo "serve-compare: mode loopback or netem" >&2; exit 2 ;;
esac
"$PERLLM" run "$SCENARIO" --requests "$out/sim.csv" >/dev/null
export out
export -f drive
if [[ $mode = netem ]]; then
  NETEM=1 bash scripts/netem-links.sh run "$SCENARIO" -- bash -c drive
else
  drive
fi
"${PYTHON:-python3}" scripts/requests-summary.py "$out/sim.csv" "$out/real.csv" "$out/gateway.csv"

#!/usr/bin/env bash
# Where can edge-cloud scheduling save 50% of cloud-only's energy? (issue 15, item 4;
# docs/energy-region.md explains the question, the sources and the result.)
#
# Sweeps examples/energy-region.perllm over the energy assumptions with `perllm sweep`:
#   edge hardware      xeon-4214r (the paper's CPU, max_batch 4) | orin-agx-64gb | l4 (max_batch 16)
#   idle charge        always | if_used | never (every server alike)
#   cloud PUE          1.10 | 1.58
#   WAN energy         27 nJ/bit | 61 uJ/bit
#   request payload    median 4 KB | 4 MB (log-normal, sigma 1)
#   offered load       0.5 | 2 | 6 requests/s
# with cloud-only and the edge-using policies (greedy, edge-only, least-loaded, true-costs, perllm)
# over 3 seeds, then writes the tables with scripts/energy-region-table.py. A run is a pure
# function of (scenario, seed, policy): the same commit gives the same files.
#
# Usage: scripts/energy-region.sh [--quick] [--out DIR] [--seeds SPEC] [--jobs N]
#   --quick        1 seed, 1-minute runs (a smoke test of the pipeline, not the published table)
#   --out DIR      output directory (default docs/energy-region)
#   --seeds SPEC   seeds, as `perllm sweep --seeds` (default 1..3; --quick: 1)
#   --jobs N       parallel runs (default: one per core)
# Environment: PERLLM (a perllm binary to use instead of building one), CARGO, PYTHON.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/docs/energy-region"
# shellcheck source=lib/sweep-args.sh
source "$root/scripts/lib/sweep-args.sh"
sweep_args energy-region 1 1..3 "$@"

cargo="${CARGO:-cargo}"
if [[ -z "${PERLLM:-}" ]]; then
  echo "energy-region: building perllm and the bundled plugins (release)" >&2
  (cd "$root" && "$cargo" build --release -p perllm-cli -p perllm-plugins)
  PERLLM="$root/target/release/perllm"
fi
python="${PYTHON:-python3}"

policies="cloud-only,greedy,edge-only,least-loaded,true-costs,perllm"
mkdir -p "$out"
csvs=()
for hw in xeon-4214r:4 orin-agx-64gb:16 l4:16; do
  name="${hw%%:*}"; batch="${hw##*:}"
  for idle in always if_used never; do
    csv="$out/runs-$name-$idle.csv"
    echo "energy-region: edge $name, idle charge $idle, seeds $seeds" >&2
    "$PERLLM" --quiet sweep "$root/examples/energy-region.perllm" "${duration[@]}" \
      --set "server.edge.hardware=$name" --set "server.edge.max_batch=$batch" \
      --set "server.edge.idle_charge=$idle" --set "server.cloud.idle_charge=$idle" \
      --set "server.cloud.pue=1.10,1.58" \
      --set "link.wan.energy=27 nJ/bit,61 uJ/bit" \
      --set "workload.payload=lognormal(median = 4 KB, sigma = 1.0),lognormal(median = 4 MB, sigma = 1.0)" \
      --set "workload.arrivals.rate=0.5/s,2/s,6/s" \
      --policies "$policies" --seeds "$seeds" "${jobs[@]}" \
      --out "$out/.sweep.json" --csv "$csv" --format table > /dev/null
    rm -f "$out/.sweep.json"
    csvs+=("$name:$idle=$csv")
  done
done
"$python" "$root/scripts/energy-region-table.py" --out "$out/table.md" "${csvs[@]}"
echo "energy-region: wrote $out/table.md" >&2

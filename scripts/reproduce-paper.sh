#!/usr/bin/env bash
# Reproduce the PerLLM paper experiment (issue 8; setup and sources in docs/paper-setup.md).
#
# For each deployment (7B, 13B, 33B at the cloud, Llama-2-7B at the edge) it runs PerLLM (and its
# paper variant), true-costs and every bundled baseline (those offering admission control also
# with it on) over 10 seeds, on a synthetic load sweep and on the
# shipped Azure trace slice (time rescaled to several rates), with `perllm sweep`; draws the plots
# with `perllm plot`; and builds the table with `perllm-paper table`. Everything lands in
# docs/results/ (or --out). A run is a pure function of (scenario, seed): same inputs, same files.
#
# Usage: scripts/reproduce-paper.sh [--quick] [--out DIR] [--seeds SPEC] [--jobs N]
#   --quick        the small version used by the test: 2 seeds, 2-3 loads, 1-minute runs
#   --out DIR      output directory (default docs/results)
#   --seeds SPEC   seeds, as `perllm sweep --seeds` (default 1..10; --quick: 1..2)
#   --jobs N       parallel runs (default: one per core)
# At the two lightest loads of each experiment it also runs the offline `clairvoyant` reference
# (perllm-cli's `clairvoyant` example: it knows the arrivals, no online policy can run it; the
# table shows it beside the bound, not among the policies).
# Environment: PERLLM, PERLLM_PAPER (binaries to use instead of building them), PERLLM_CLAIRVOYANT
# (the `clairvoyant` example binary; built with the others, else that step is skipped), PERLLM_PLUGINS
# (an extra plugin library or directory to load; perllm finds the bundled one itself), CARGO.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/docs/results"
# shellcheck source=lib/sweep-args.sh
source "$root/scripts/lib/sweep-args.sh"
sweep_args reproduce-paper 1..2 1..10 "$@"

if [[ $quick -eq 1 ]]; then
  # Low load, moderate load and overload (the test checks PerLLM under overload).
  rates="0.5/s,2/s,16/s"
  trace_rates="1/s,8/s"
else
  rates="0.25/s,0.5/s,1/s,1.5/s,2/s,3/s,4/s,6/s,8/s,10/s,12/s,16/s"
  trace_rates="0.5/s,1/s,2/s,3/s,4/s,6/s,8/s"
fi

cargo="${CARGO:-cargo}"
if [[ -z "${PERLLM:-}" || -z "${PERLLM_PAPER:-}" ]]; then
  echo "reproduce-paper: building perllm, perllm-paper and the bundled plugins (release)" >&2
  (cd "$root" && "$cargo" build --release -p perllm-cli -p perllm-paper -p perllm-plugins)
  if [[ -z "${PERLLM_CLAIRVOYANT:-}" ]]; then
    (cd "$root" && "$cargo" build --release -p perllm-cli --example clairvoyant)
    PERLLM_CLAIRVOYANT="$root/target/release/examples/clairvoyant"
  fi
  PERLLM="${PERLLM:-$root/target/release/perllm}"
  PERLLM_PAPER="${PERLLM_PAPER:-$root/target/release/perllm-paper}"
fi
# perllm finds the bundled plugin library next to its binary; PERLLM_PLUGINS adds another.
plugin_args=()
if [[ -n "${PERLLM_PLUGINS:-}" ]]; then plugin_args=(--plugin "$PERLLM_PLUGINS"); fi

mkdir -p "$out"
# Every available policy; PerLLM's paper variant beside the default (improved) one; and every
# baseline a second time with admission control switched the other way (on for those without
# it by default, `admission=none` for those, like edf, that reject by default), so the table
# separates what admission control buys from what placement buys.
policies=()
for p in $("$PERLLM" plugins list "${plugin_args[@]}" --format table | awk 'NR>2 && $2=="policy" {print $1}'); do
  policies+=("$p")
  if [[ $p == perllm ]]; then
    policies+=("perllm{variant=paper}")
  elif [[ $p != true-costs ]]; then
    info="$("$PERLLM" plugins info "$p" "${plugin_args[@]}" --format json)"
    if grep -q 'admission (reject_infeasible)' <<<"$info"; then
      policies+=("$p{admission=none}")
    elif grep -q '"params":.*admission' <<<"$info"; then
      policies+=("$p{admission=reject_infeasible}")
    fi
  fi
done
policy_list="$(IFS=,; echo "${policies[*]}")"
echo "reproduce-paper: policies: $policy_list" >&2

tables=()
offline=()
for dep in 7b 13b 33b; do
  label="${dep^^}"
  for kind in synthetic azure; do
    if [[ $kind == synthetic ]]; then
      file="$root/examples/paper-$dep.perllm"; key="workload.arrivals.rate"; values="$rates"
      dir="$out/$dep"; name="$label synthetic"
    else
      file="$root/examples/paper-$dep-azure.perllm"; key="workload.trace.target_rate"; values="$trace_rates"
      dir="$out/$dep-azure"; name="$label Azure trace"
    fi
    mkdir -p "$dir"
    echo "reproduce-paper: $name: sweeping $key over $values, seeds $seeds" >&2
    "$PERLLM" --quiet sweep "$file" --set "$key=$values" "${duration[@]}" --seeds "$seeds" \
      --policies "$policy_list" \
      "${plugin_args[@]}" "${jobs[@]}" --out "$dir/sweep.json" --csv "$dir/runs.csv" \
      --format table > "$dir/summary.txt"
    "$PERLLM" --quiet plot "$dir/sweep.json" --out "$dir/plots"
    tables+=("$name=$dir/sweep.json")
    # The offline reference at the two lightest loads (its seeds as a FIRST..LAST range).
    if [[ -n "${PERLLM_CLAIRVOYANT:-}" && $seeds =~ ^[0-9]+\.\.[0-9]+$ ]]; then
      light="$(cut -d, -f1-2 <<<"$values")"
      echo "reproduce-paper: $name: offline clairvoyant reference at $light" >&2
      dur=()
      [[ ${#duration[@]} -gt 0 ]] && dur=("${duration[1]}")
      CLAIRVOYANT_JSON="$dir/clairvoyant.json" "$PERLLM_CLAIRVOYANT" "$file" "${dur[@]}" \
        "$key=$light" "$seeds" > "$dir/clairvoyant.txt"
      offline+=(--offline "$name=$dir/clairvoyant.json")
    fi
  done
done

"$PERLLM_PAPER" table "${tables[@]}" "${offline[@]}" --out "$out" > /dev/null
{
  echo "# How these files were made"
  echo
  echo "- command: scripts/reproduce-paper.sh$([[ $quick -eq 1 ]] && echo ' --quick') (seeds $seeds)"
  echo "- commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- perllm: $("$PERLLM" --version)"
  echo "- machine: $(uname -sm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') cores"
  echo "- synthetic loads (workload.arrivals.rate): $rates"
  echo "- trace loads (workload.trace.target_rate): $trace_rates"
  echo "- policies: $policy_list"
  if [[ ${#offline[@]} -gt 0 ]]; then
    echo "- offline reference (not a policy: knows the arrivals): clairvoyant at each experiment's two lightest loads (clairvoyant.json, clairvoyant.txt)"
  fi
} > "$out/PROVENANCE.md"
echo "reproduce-paper: table in $out/table.md" >&2

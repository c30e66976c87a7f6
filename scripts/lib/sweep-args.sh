# Options shared by the scripts that run `perllm sweep` over a grid (reproduce-paper.sh,
# energy-region.sh): source this file, then call
#   sweep_args NAME QUICK_SEEDS SEEDS "$@"
# It sets `quick` (0 or 1), `out` (only when --out is given: set the default before), `seeds`
# (--seeds, else QUICK_SEEDS with --quick and SEEDS without), the array `duration` (1-minute
# runs with --quick, else empty) and the array `jobs` (`--jobs N` or empty); --help prints the
# calling script's header comment (after the #! line); an unknown argument exits 2 naming it.
sweep_args() {
  local name=$1 quick_seeds=$2 full_seeds=$3
  shift 3
  seeds=""
  jobs=()
  quick=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --quick) quick=1 ;;
      --out) out="$2"; shift ;;
      --seeds) seeds="$2"; shift ;;
      --jobs) jobs=(--jobs "$2"); shift ;;
      -h|--help) awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$0"; exit 0 ;;
      *) echo "$name: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
    esac
    shift
  done
  if [[ $quick -eq 1 ]]; then
    seeds="${seeds:-$quick_seeds}"
    duration=(--set scenario.duration=1min)
  else
    seeds="${seeds:-$full_seeds}"
    duration=()
  fi
}

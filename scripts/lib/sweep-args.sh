# Options shared by the scripts that run `perllm sweep` over a grid (reproduce-paper.sh,
# energy-region.sh): source this file, then call
#   sweep_args NAME "$@"
# It sets `quick` (0 or 1), `out` (only when --out is given: set the default before), `seeds`
# (empty unless --seeds is given) and the array `jobs` (`--jobs N` or empty); --help prints
# the calling script's header comment (after the #! line); an unknown argument exits 2 naming it.
sweep_args() {
  local name=$1
  shift
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
}

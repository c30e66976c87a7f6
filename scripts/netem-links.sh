#!/usr/bin/env bash
# Put a scenario's backends behind emulated links on this machine (issue 18, item 7;
# docs/serve.md, "Emulated links").
#
# Each server of the scenario whose `endpoint` is an IPv4 address that is not on this machine
# (e.g. `http://10.91.1.2:8000`) gets a network namespace `PREFIX-SERVER` joined to this one by a
# veth pair: the namespace side holds the endpoint's address, this side the address next to it
# (last byte XOR 1), point to point. Both sides shape what they send with the server's link from
# the scenario (read with `perllm export --format links`, not parsed here): its mean bandwidth
# and its one-way latency, so a request pays the latency once on the way in and a response once
# on the way out, as in the simulator.
#   - with `netem` (the kernel's sch_netem): `netem delay LATENCY [JITTER distribution normal]
#     rate BANDWIDTH` on both ends of the pair;
#   - without it (`--delay-by relay`, or `auto` on a kernel built without netem): `tbf rate
#     BANDWIDTH` on both ends, and the latency added by `perllm link-relay` inside the namespace,
#     listening on the endpoint and forwarding to 127.0.0.1:PORT there (the backend then listens
#     on 127.0.0.1:PORT in its namespace).
# Servers with a loopback endpoint (127.x, localhost) stay on loopback, not emulated.
#
# Usage: scripts/netem-links.sh [OPTIONS] check
#        scripts/netem-links.sh [OPTIONS] plan SCENARIO        # print the commands, change nothing
#        scripts/netem-links.sh [OPTIONS] run SCENARIO -- COMMAND [ARG...]
#        scripts/netem-links.sh [OPTIONS] down                 # remove what a killed run left
# `run` sets the links up, runs COMMAND, and tears everything down when COMMAND ends or the
# script is interrupted (trap): processes still inside the namespaces are stopped (TERM, then
# KILL after 5 s), the namespaces and veth pairs deleted. COMMAND's exit status is the script's.
# COMMAND sees, per emulated server S (upper case, `-` as `_`):
#   PERLLM_NETNS_S    its namespace (start the backend with `ip netns exec "$PERLLM_NETNS_S" ...`)
#   PERLLM_LISTEN_S   the address the backend must listen on inside it
# Options:
#   --prefix P       namespace and interface prefix, 2-8 of [a-z0-9] (default perllm)
#   --jitter D       add a normal variation of standard deviation D to every link's latency
#                    (e.g. 5ms; the scenario language has no jitter: the simulator has none)
#   --delay-by M     netem | relay | auto (default: netem where the kernel has it, else relay)
#   --set K=V        a scenario override, passed to `perllm export` (repeatable)
# Environment: PERLLM (the perllm binary; default: `perllm` on PATH).
# Needs root (CAP_NET_ADMIN), iproute2 (`ip`, `tc`) and, for `tbf`/`netem`, a kernel with them.
set -euo pipefail

prefix=perllm
jitter=""
delay_by=auto
sets=()
perllm="${PERLLM:-perllm}"
export PATH="$PATH:/usr/sbin:/sbin"   # ip and tc live there on Debian
tmp=""
cpid=""
die() { echo "netem-links: $*" >&2; exit 2; }
note() { echo "netem-links: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --jitter) jitter="${2:?--jitter needs a duration, e.g. 5ms}"; shift 2 ;;
    --delay-by) delay_by="${2:?--delay-by needs netem, relay or auto}"; shift 2 ;;
    --set) sets+=(--set "${2:?--set needs KEY=VALUE}"); shift 2 ;;
    -h|--help) sed -n '2,44p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || die "no command: check, plan SCENARIO, run SCENARIO -- COMMAND, or down (see --help)"
cmd="$1"; shift
[[ "$prefix" =~ ^[a-z0-9]{2,8}$ ]] || die "--prefix \`$prefix\`: 2 to 8 characters of [a-z0-9]"
case "$delay_by" in netem|relay|auto) ;; *) die "--delay-by \`$delay_by\`: netem, relay or auto" ;; esac
if [[ -n "$jitter" && ! "$jitter" =~ ^[0-9]+(\.[0-9]+)?(us|ms|s)$ ]]; then
  die "--jitter \`$jitter\`: a duration such as 500us, 5ms or 0.1s"
fi

# --- helpers -------------------------------------------------------------------------------------
dry=0
# Run a command, or print it under `plan`.
do_() { if [[ $dry = 1 ]]; then echo "$*"; else "$@"; fi; }

need_tools() {
  [[ $(id -u) = 0 ]] || { echo "not root: network namespaces and qdiscs need CAP_NET_ADMIN"; return 1; }
  local t
  for t in ip tc; do
    command -v "$t" >/dev/null 2>&1 || { echo "\`$t\` (iproute2) is not installed"; return 1; }
  done
}

# Can this kernel add qdisc $1 (args $2...)? Tried on a throwaway veth pair.
probe_qdisc() {
  local ns="$prefix-probe" ok=1
  ip netns add "$ns" 2>/dev/null || return 1
  if ip -n "$ns" link add "${prefix}pa" type veth peer name "${prefix}pb" 2>/dev/null; then
    ip netns exec "$ns" tc qdisc add dev "${prefix}pa" root "$@" >/dev/null 2>&1 && ok=0
  fi
  ip netns del "$ns" 2>/dev/null || true
  return $ok
}

ns_list() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}-" || true; }

# Stop the processes inside namespace $1 (TERM, then KILL after 5 s), then delete it.
remove_ns() {
  local ns="$1" pids i
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [[ -n "$pids" ]]; then
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 50); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [[ -z "$pids" ]] && break
      sleep 0.1
    done
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
}

teardown() {
  local ns l
  # The command first (it may be talking to the backends), then everything in the namespaces.
  if [[ -n "$cpid" ]] && kill -TERM "$cpid" 2>/dev/null; then
    local t
    for t in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
  fi
  for ns in $(ns_list); do remove_ns "$ns"; done
  # A namespace's deletion deletes its veth end and so the pair; this catches a half-made one.
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 \
      | grep -E "^${prefix}h[0-9]+$" || true); do
    ip link del "$l" 2>/dev/null || true
  done
  [[ -n "$tmp" ]] && rm -rf "$tmp"
  return 0
}

# microseconds from nanoseconds (integer)
us_of_ns() { echo $(( $1 / 1000 )); }

is_ipv4() {
  [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
  local o; for o in "${BASH_REMATCH[@]:1}"; do (( o <= 255 )) || return 1; done
}

# The plan: arrays of emulated servers, read from `perllm export --format links`.
servers=(); hosts=(); ports=(); links=(); bws=(); lats=(); peers=()
read_plan() {
  local scen="$1" out line server host port link bw lat fl a b c d
  [[ -f "$scen" ]] || die "no scenario file \`$scen\`"
  out=$("$perllm" export "$scen" "${sets[@]}" --format links) \
    || die "\`$perllm export $scen --format links\` failed (set PERLLM to a perllm binary)"
  while IFS=$'\t' read -r server host port link bw lat fl; do
    [[ -z "$server" || "$server" == \#* ]] && continue
    if [[ "$host" == localhost || "$host" == 127.* || "$host" == ::1 ]]; then
      note "server \`$server\` ($host:$port) stays on loopback: not emulated"
      continue
    fi
    is_ipv4 "$host" || die "server \`$server\`: endpoint host \`$host\` is not an IPv4 address; give emulated backends addresses such as 10.91.1.2 (docs/serve.md)"
    [[ "$host" =~ \.(0|255)$ ]] && die "server \`$server\`: \`$host\` ends in .0 or .255; use e.g. .2"
    IFS=. read -r a b c d <<<"$host"
    [[ "$fl" == none ]] || note "link \`$link\` of \`$server\` fluctuates ($fl): emulated at its mean bandwidth"
    servers+=("$server"); hosts+=("$host"); ports+=("$port"); links+=("$link")
    bws+=("$bw"); lats+=("$lat"); peers+=("$a.$b.$c.$(( d ^ 1 ))")
  done <<<"$out"
  [[ ${#servers[@]} -gt 0 ]] || die "\`$scen\` has no server to emulate (endpoints on loopback or none)"
  (( ${#servers[@]} <= 99 )) || die "more than 99 servers to emulate"
  # Addresses must be free: each used once (a server takes its endpoint and the peer next to
  # it), and, when run for real, none already on this machine.
  local dup
  dup=$(printf '%s\n' "${hosts[@]}" "${peers[@]}" | sort | uniq -d | head -1)
  [[ -z "$dup" ]] || die "address $dup is used twice: each emulated server takes its endpoint's address and the one next to it (last byte XOR 1); space the endpoints out (e.g. 10.91.1.2, 10.91.2.2)"
  if [[ $dry = 0 ]]; then
    local here x
    here=" $(ip -4 -o addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | tr '\n' ' ') "
    for x in "${hosts[@]}" "${peers[@]}"; do
      [[ "$here" != *" $x "* ]] || die "address $x is already on this machine; choose endpoints in an unused private range"
    done
  fi
}

env_name() { local s="${1^^}"; echo "${s//[^A-Z0-9_]/_}"; }

setup() {
  local i ns vh vn lat_us bw q args listen
  for i in "${!servers[@]}"; do
    ns="$prefix-${servers[$i]}"; vh="${prefix}h$((i + 1))"; vn="${prefix}n$((i + 1))"
    lat_us=$(us_of_ns "${lats[$i]}"); bw="${bws[$i]}"
    do_ ip netns add "$ns"
    do_ ip link add "$vh" type veth peer name "$vn"
    do_ ip link set "$vn" netns "$ns"
    do_ ip addr add "${peers[$i]}/32" peer "${hosts[$i]}/32" dev "$vh"
    do_ ip link set "$vh" up
    do_ ip -n "$ns" addr add "${hosts[$i]}/32" peer "${peers[$i]}/32" dev "$vn"
    do_ ip -n "$ns" link set "$vn" up
    do_ ip -n "$ns" link set lo up
    if [[ $mode = netem ]]; then
      args=(netem delay "${lat_us}us")
      [[ -n "$jitter" ]] && args+=("$jitter" distribution normal)
      # A queue of 10,000 packets: a slow link queues, as a router would, rather than dropping.
      args+=(rate "${bw}bit" limit 10000)
      listen="${hosts[$i]}:${ports[$i]}"
    else
      # Burst: 10 ms at the link's rate, at least two full frames; queue up to 1 s of traffic.
      local burst=$(( ${bw%.*} / 800 )); (( burst < 3200 )) && burst=3200
      args=(tbf rate "${bw}bit" burst "$burst" latency 1s)
      listen="127.0.0.1:${ports[$i]}"
    fi
    do_ tc qdisc add dev "$vh" root "${args[@]}"
    do_ ip netns exec "$ns" tc qdisc add dev "$vn" root "${args[@]}"
    if [[ $mode = relay ]]; then
      local rargs=(link-relay --listen "${hosts[$i]}:${ports[$i]}" --to "$listen" --seed $((i + 1)))
      (( lat_us > 0 )) && rargs+=(--delay "${lat_us}us")
      [[ -n "$jitter" ]] && rargs+=(--jitter "$jitter")
      if [[ $dry = 1 ]]; then
        echo "ip netns exec $ns $perllm ${rargs[*]} &"
      else
        ip netns exec "$ns" "$perllm" "${rargs[@]}" >"$tmp/relay-$i.out" &
      fi
    fi
    export "PERLLM_NETNS_$(env_name "${servers[$i]}")=$ns"
    export "PERLLM_LISTEN_$(env_name "${servers[$i]}")=$listen"
    note "${servers[$i]}: namespace $ns, endpoint ${hosts[$i]}:${ports[$i]}, backend listens on $listen; link \`${links[$i]}\`: ${bw} bit/s, ${lat_us} us one way${jitter:+, jitter $jitter} ($mode)"
  done
  if [[ $mode = relay && $dry = 0 ]]; then
    # Wait until every relay listens (it prints its address once bound), at most 30 s.
    local t
    for i in "${!servers[@]}"; do
      for t in $(seq 300); do
        [[ -s "$tmp/relay-$i.out" ]] && break
        sleep 0.1
      done
      [[ -s "$tmp/relay-$i.out" ]] || die "the relay of \`${servers[$i]}\` did not start"
    done
  fi
}

choose_mode() {
  mode="$delay_by"
  if [[ $mode = auto ]]; then
    if probe_qdisc netem delay 1ms; then mode=netem; else
      mode=relay
      note "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM): bandwidth by tbf, latency by \`perllm link-relay\`"
    fi
  fi
  if [[ $mode = relay ]]; then
    command -v "$perllm" >/dev/null 2>&1 || [[ -x "$perllm" ]] \
      || die "the relay needs a perllm binary: set PERLLM (\`$perllm\` is not found)"
  fi
}

# --- commands ------------------------------------------------------------------------------------
case "$cmd" in
  check)
    if ! why=$(need_tools); then echo "cannot emulate links: $why"; exit 1; fi
    [[ -z "$(ns_list)" ]] || { echo "cannot emulate links: namespaces $(ns_list | tr '\n' ' ')exist (a run in progress, or left by a killed one: \`$0 --prefix $prefix down\`)"; exit 1; }
    ip netns add "$prefix-probe" 2>/dev/null || { echo "cannot emulate links: \`ip netns add\` fails here (no CAP_NET_ADMIN, or a container without it)"; exit 1; }
    ip netns del "$prefix-probe"
    if probe_qdisc netem delay 1ms rate 1mbit; then echo "ok: netem"; exit 0; fi
    if probe_qdisc tbf rate 1mbit burst 3200 latency 1s; then
      echo "ok: tbf and perllm link-relay (this kernel has no netem qdisc)"; exit 0
    fi
    echo "cannot emulate links: this kernel has neither the netem nor the tbf qdisc"; exit 1
    ;;
  plan)
    [[ $# -eq 1 ]] || die "usage: plan SCENARIO"
    dry=1
    read_plan "$1"
    # What `run` would choose here; without the rights to probe, netem.
    if need_tools >/dev/null; then choose_mode; else mode="$delay_by"; [[ $mode = auto ]] && mode=netem; fi
    setup
    ;;
  run)
    [[ $# -ge 3 && "$2" == "--" ]] || die "usage: run SCENARIO -- COMMAND [ARG...]"
    scen="$1"; shift 2
    if ! why=$(need_tools); then die "$why"; fi
    [[ -z "$(ns_list)" ]] || die "namespaces $(ns_list | tr '\n' ' ')exist: a run with prefix \`$prefix\` is in progress, or a killed one left them (\`$0 --prefix $prefix down\`)"
    read_plan "$scen"
    choose_mode
    # From here on, whatever happens, the namespaces go.
    tmp=$(mktemp -d)
    trap teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    setup
    # In the background, so that a signal to this script is handled at once (bash runs traps
    # only between commands; `wait` is interrupted).
    "$@" <&0 &
    cpid=$!
    set +e
    wait "$cpid"
    rc=$?
    set -e
    cpid=""
    exit $rc
    ;;
  down)
    if ! why=$(need_tools); then die "$why"; fi
    teardown
    ;;
  *) die "unknown command \`$cmd\`: check, plan, run or down" ;;
esac

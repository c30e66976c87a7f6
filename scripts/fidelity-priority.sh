#!/bin/bash
# Run a command (e.g. `perllm profile` or `perllm validate`) with the CPU share a real-time
# measurement needs on a machine other jobs load (docs/fidelity.md, "Other jobs' load").
#
# usage: sudo scripts/fidelity-priority.sh perllm validate --calibration cal.json ...
#
# The kernel groups processes by session (autogroup) and shares the CPU between the groups
# first, so `nice` alone does not help against other sessions' builds: this starts a new session,
# gives its group nice -19 and the command nice -19 (root only). It does not use real-time
# scheduling: `chrt -f` gets a full core too, but the kernel's real-time throttling then stops the
# command for 50 ms in every second, which lands inside the timed steps.
set -eu
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
exec setsid bash -c 'echo -19 > /proc/self/autogroup 2>/dev/null || echo "warning: cannot raise the autogroup priority (needs root and CONFIG_SCHED_AUTOGROUP)" >&2; exec nice -n -19 "$@"' bash "$@"

#!/usr/bin/env bash
# Run every benchmark in a private network namespace (loopback only), one after the other, and
# merge their figures into bench/results/call_setup.json (dispatch: bench/results/dispatch.json).
#   bench/run.sh                 call setup (20 calls) + server CPU (pass-through vs transcoding)
#                                + dispatch at 1,000 sockets (ring latency, dispatches/s)
#                                + recording cost per packet, remux vs aiortc MediaRecorder
#                                  (bench/results/recording.json)
#                                + server CPU per 3- and 6-person room, rooms per core, µs per
#                                  packet, loop lag, late join (bench/results/rooms.json)
#                                + a call's loop lag during 25 sign-ins/s, sign-in latency for
#                                  known and unknown usernames (bench/results/auth.json)
#                                + statistics view time (month, year) over a year of synthetic
#                                  history, 219,000 consultations (bench/results/stats.json)
#   bench/run.sh call_setup      only one of them (call_setup | cpu_relay | dispatch | recording
#                                | rooms | auth | stats), extra args passed on
#   bench/run.sh soak            2,000 sockets for 30 minutes (bench/results/soak.json; not run
#                                by default: it takes ~33 minutes)
#   bench/run.sh resilience      the fuzzer, Redis kill -9s and the soak's figures
#                                (bench/results/resilience.json)
#   bench/run.sh sentinel        Redis Sentinel failover under load: kill -9 of the master →
#                                tickets answered again, acknowledged tickets lost
#                                (bench/results/scale.json; not run by default)
#   bench/run.sh event_loop      the serving loop, uvloop against asyncio, side by side on the
#                                dispatch and RTP paths (bench/results/event_loop.json; not run
#                                by default: ~8 minutes)
# Needs what ./yunzhen.sh test installs (redis-server, chromium, the test extras in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -r -n); fi

bench() {  # $1: module under bench/, then its arguments
  local name=$1; shift
  echo "==> bench.$name $*"
  local limit=600
  if [ "$name" = soak ]; then limit=$((3 * 3600)); fi
  timeout "$limit" "${ns[@]}" sh -c 'ip link set lo up && exec "$0" -m "$@"' "$PY" "bench.$name" "$@"
}

if [ $# -gt 0 ]; then
  bench "$@"
else
  bench call_setup
  bench cpu_relay
  bench dispatch
  bench recording
  bench rooms
  bench auth
  bench stats
  bench node_loss
fi
echo "==> results: bench/results/call_setup.json, bench/results/dispatch.json," \
  "bench/results/recording.json, bench/results/rooms.json, bench/results/auth.json," \
  "bench/results/stats.json, bench/results/scale.json"

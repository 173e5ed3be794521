#!/usr/bin/env bash
# Where the leader's event loop spends a write at 64 clients: a three-member DWCP region on
# loopback, `wrk -t1 -c64` of PUT /v1/hosts/h1/labels on the leader, `perf record -a -g` meanwhile,
# then the leader's event-loop samples sorted into parts by what their stacks hold
# (leader-profile.py). Prints writes/s, the leader's CPU per write and the parts. Needs root (perf),
# wrk and linux-perf (apt-get install wrk linux-perf) and a release build
# (swift build -c release --static-swift-stdlib --product dwcp).
#
#   bench/region/leader-profile.sh [SECONDS] [DWCP_BINARY]
set -euo pipefail
SECONDS_TO_RUN=${1:-8}
DWCP=${2:-.build/release/dwcp}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" || true; sleep 1; rm -rf "$WORK"' EXIT
# shellcheck source=loopback-region.sh
source "$HERE/loopback-region.sh"
start_loopback_region
wrk -t1 -c64 -d2s -s "$WORK/put.lua" "http://127.0.0.1:$API" > /dev/null
BEFORE=$(awk '{print $14+$15}' "/proc/$PID/stat")
perf record -F 999 -a -g -o "$WORK/perf.data" -- sleep "$SECONDS_TO_RUN" > /dev/null 2>&1 &
PERF=$!
RATE=$(wrk -t1 -c64 -d"${SECONDS_TO_RUN}s" -s "$WORK/put.lua" "http://127.0.0.1:$API" | awk '/Requests\/sec/ {print $2}')
AFTER=$(awk '{print $14+$15}' "/proc/$PID/stat")
wait "$PERF" || true
# The leader's busiest thread is its event loop.
LOOP=$(for t in /proc/$PID/task/*; do echo "$(awk '{print $14+$15}' "$t/stat") $(basename "$t")"; done | sort -n -r | head -1 | cut -d' ' -f2)
echo "writes/s: $RATE; leader CPU per write: $(python3 -c "print(round(($AFTER-$BEFORE)*10/($RATE*$SECONDS_TO_RUN), 4))") ms"
perf script -i "$WORK/perf.data" --tid "$LOOP" -F ip,sym 2> /dev/null | python3 "$HERE/leader-profile.py"

#!/usr/bin/env bash
# One client's writes to a three-node DWCP region on loopback, timed phase by phase on the wire
# (wire-breakdown.py). Needs root (tcpdump), wrk and tcpdump (apt-get install wrk tcpdump) and a
# release build: swift build -c release --static-swift-stdlib --product dwcp (as make bench-region builds it).
#
#   bench/region/wire-breakdown.sh [SECONDS] [DWCP_BINARY]
set -euo pipefail
SECONDS_TO_RUN=${1:-5}
DWCP=${2:-.build/release/dwcp}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
# shellcheck source=loopback-region.sh
source "$HERE/loopback-region.sh"
start_loopback_region
wrk -t1 -c1 -d2s -s "$WORK/put.lua" "http://127.0.0.1:$API" > /dev/null
tcpdump -i lo -s 200 -w "$WORK/capture.pcap" "tcp portrange 7301-7303 or tcp port $API" 2> /dev/null &
TCPDUMP=$!
sleep 0.5
wrk -t1 -c1 -d"${SECONDS_TO_RUN}s" -s "$WORK/put.lua" "http://127.0.0.1:$API" | grep -E "Requests/sec"
sleep 0.3
kill $TCPDUMP; wait $TCPDUMP 2> /dev/null || true
python3 "$HERE/wire-breakdown.py" "$WORK/capture.pcap" 7301,7302,7303 "$API"

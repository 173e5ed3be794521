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
PEERS="--peer n1@127.0.0.1:7301 --peer n2@127.0.0.1:7302 --peer n3@127.0.0.1:7303"
for i in 1 2 3; do
    "$DWCP" serve --data-dir "$WORK/n$i" --node-id "n$i" --region eu --api "127.0.0.1:740$i" \
        --listen "127.0.0.1:730$i" --no-host-agent --log-level warning $PEERS > "$WORK/n$i.log" 2>&1 &
done
LEADER=""
for _ in $(seq 100); do
    for i in 1 2 3; do
        # The node's own role (its members list names the leader on every node).
        ROLE=$(curl -s "127.0.0.1:740$i/v1/cluster?timeout_ms=0" | python3 -c 'import json, sys; print(json.load(sys.stdin)["role"])' 2> /dev/null || true)
        if [ "$ROLE" = leader ]; then LEADER=$i; fi
    done
    [ -n "$LEADER" ] && break
    sleep 0.2
done
[ -n "$LEADER" ] || { echo "no leader in 20 s (logs in $WORK)"; exit 1; }
API=740$LEADER
curl -s -X POST "127.0.0.1:$API/v1/hosts" -d '{"name":"h1","region":"eu","cpus":64,"memory_bytes":274877906944}' > /dev/null
cat > "$WORK/put.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/v1/hosts/h1/labels", {["Content-Type"]="application/json"}, '{"labels":{"k":"v' .. n .. '"}}')
end
LUA
wrk -t1 -c1 -d2s -s "$WORK/put.lua" "http://127.0.0.1:$API" > /dev/null
tcpdump -i lo -s 200 -w "$WORK/capture.pcap" "tcp portrange 7301-7303 or tcp port $API" 2> /dev/null &
TCPDUMP=$!
sleep 0.5
wrk -t1 -c1 -d"${SECONDS_TO_RUN}s" -s "$WORK/put.lua" "http://127.0.0.1:$API" | grep -E "Requests/sec"
sleep 0.3
kill $TCPDUMP; wait $TCPDUMP 2> /dev/null || true
python3 "$HERE/wire-breakdown.py" "$WORK/capture.pcap" 7301,7302,7303 "$API"

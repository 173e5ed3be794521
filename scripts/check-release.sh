#!/usr/bin/env bash
# Checks what only the release build can show: that `dwcp` built with the Swift runtime linked in
# (--static-swift-stdlib, as every release build is) still runs its tasks on NIO's event loops.
# NIO's own install cannot find the runtime's hook in such a binary (docs/architecture.md,
# Threads); the tests run the debug build, where it can, so they would not notice.
#
#   scripts/check-release.sh [DWCP_BINARY]     (make check-release builds the binary first)
set -euo pipefail
DWCP=${1:-.build/release/dwcp}
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 10000))
"$DWCP" dev --data-dir "$WORK/data" --api "127.0.0.1:$PORT" --no-host-agent --log-level warning > "$WORK/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2> /dev/null || true; wait $NODE 2> /dev/null || true; rm -rf "$WORK"' EXIT
TASKS=""
for _ in $(seq 100); do
    TASKS=$("$DWCP" status --server "127.0.0.1:$PORT" --json 2> /dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["tasks"])' 2> /dev/null || true)
    [ -n "$TASKS" ] && break
    sleep 0.1
done
if [ "$TASKS" != "event-loops" ]; then
    echo "check-release: $DWCP runs its tasks on '${TASKS:-?}', not on NIO's event loops (node log: $(cat "$WORK/node.log"))" >&2
    exit 1
fi
echo "check-release: $DWCP runs its tasks on NIO's event loops"

# Sourced by leader-profile.sh and wire-breakdown.sh: starts a three-member DWCP region on loopback
# ($DWCP, data and logs in $WORK), waits for its leader and sets LEADER (1-3), API (the leader's
# API port) and PID (the leader's process); adds host h1 and writes $WORK/put.lua, a wrk script of
# PUT /v1/hosts/h1/labels with a new label value each time.
start_loopback_region() {
    local peers="--peer n1@127.0.0.1:7301 --peer n2@127.0.0.1:7302 --peer n3@127.0.0.1:7303"
    for i in 1 2 3; do
        # shellcheck disable=SC2086
        "$DWCP" serve --data-dir "$WORK/n$i" --node-id "n$i" --region eu --api "127.0.0.1:740$i" \
            --listen "127.0.0.1:730$i" --no-host-agent --log-level warning $peers > "$WORK/n$i.log" 2>&1 &
    done
    LEADER=""
    for _ in $(seq 100); do
        for i in 1 2 3; do
            # The node's own role (its members list names the leader on every node).
            local role
            role=$(curl -s "127.0.0.1:740$i/v1/cluster?timeout_ms=0" | python3 -c 'import json, sys; print(json.load(sys.stdin)["role"])' 2> /dev/null || true)
            if [ "$role" = leader ]; then LEADER=$i; fi
        done
        [ -n "$LEADER" ] && break
        sleep 0.2
    done
    [ -n "$LEADER" ] || { echo "no leader in 20 s (logs in $WORK)" >&2; exit 1; }
    API=740$LEADER
    PID=$(pgrep -f -- "--node-id n$LEADER ")
    curl -s -X POST "127.0.0.1:$API/v1/hosts" -d '{"name":"h1","region":"eu","cpus":64,"memory_bytes":274877906944}' > /dev/null
    cat > "$WORK/put.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/v1/hosts/h1/labels", {["Content-Type"]="application/json"}, '{"labels":{"k":"v' .. n .. '"}}')
end
LUA
}

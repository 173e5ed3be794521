#!/usr/bin/env bash
# A tour of DWCP: an embedded single node (hosts, VMs, placement, SQL, the log), then a
# three-node region on loopback (every member's status, a leader killed, the writes kept, a
# leader stopped gracefully handing over).
set -euo pipefail
cd "$(dirname "$0")/.."
DWCP=${DWCP:-.build/debug/dwcp}
DATA=$(mktemp -d /tmp/dwcp-demo-XXXXXX)
PORT=${DWCP_DEMO_PORT:-7070}
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
export DWCP_SERVER=127.0.0.1:$PORT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ dwcp %s\n' "$*"; "$DWCP" "$@"; }

step "start a dev node (data $DATA, API $DWCP_SERVER)"
"$DWCP" dev --data-dir "$DATA/node" --api "$DWCP_SERVER" --log-level warning > "$DATA/node.out" 2> "$DATA/node.err" &
NODE=$!
trap 'kill $NODE 2>/dev/null || true; wait $NODE 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$DATA/node.out" 2>/dev/null && break; sleep 0.1; done
cat "$DATA/node.out"
run status

step "add two hosts in region local (with /dev/kvm, dev's host agent registered this machine too)"
run host add rack1-a --region local --cpus 8 --memory 32GiB --label rack=1
run host add rack1-b --region local --cpus 4 --memory 8GiB --label rack=1

step "create VMs: the scheduler places each one (best fit) and explains why"
run vm create web-1 --cpus 2 --memory 2GiB --label app=web
run vm create web-2 --cpus 2 --memory 1.5GiB --label app=web
run vm create db-1 --cpus 4 --memory 8GiB --image builtin:counter
run vm create huge --cpus 64 --memory 512GiB
run vm list --format table

step "placement: constraints, explanations, planning before committing"
run host label rack1-b --label rack=1 --label disk=ssd
run vm create cache --count 2 --cpus 1 --memory 1GiB --group cache --anti-affinity hard
run vm create fast-db --cpus 1 --memory 1GiB --require disk=ssd
run vm explain fast-db
run plan vm create batch --cpus 1 --memory 512MiB
run rebalance --plan

step "bad input is refused with a clear reason and writes nothing"
run vm create web-1 --cpus 1 --memory 1GiB || true
run vm create Web_3 --cpus 1 --memory 1GiB || true
run vm create web-3 --cpus 1 --memory 1GB || true
run host remove rack1-b || true
run sql "DELETE FROM vms" || true

step "retrying a request with the same id applies it once"
run vm create web-9 --cpus 1 --memory 512MiB --request-id demo-req-1
run vm create web-9 --cpus 1 --memory 512MiB --request-id demo-req-1

step "stop, start and delete"
run vm stop web-2
run vm start web-2
run vm delete web-9

step "a VM that really runs: a KVM microVM on this machine, started by the host agent"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    run vm create tick --cpus 1 --memory 256MiB --image builtin:counter --require hypervisor=kvm --label guest.interval_ms=200
    for _ in $(seq 50); do "$DWCP" sql "SELECT actual_state FROM vms WHERE name = 'tick'" --format csv | grep -q running && break; sleep 0.1; done
    sleep 1
    run sql "SELECT name, host, actual_state, reason FROM vms WHERE name = 'tick'" --format table
    run vm console tick
    run sql "SELECT vm, path, first_entry_us, boot_us FROM vm_starts" --format table
    run vm stop tick
    sleep 0.3
    run sql "SELECT vm, from_state, to_state, reason FROM vm_events WHERE vm = 'tick' ORDER BY log_index" --format table
else
    echo "(skipped: /dev/kvm is not usable here, so this node runs no host agent)"
fi

step "capacity per host: the list, then any query over the views"
run host list --format table
run sql "SELECT name, cpus, cpus_used, memory_bytes, memory_used_bytes, json_extract(labels, '\$.rack') AS rack FROM hosts ORDER BY name" --format table
run sql "SELECT vm, host, json_extract(explanation, '\$.candidates[0].score') AS score FROM placements ORDER BY log_index" --format csv

step "the log: every committed record, from index 1"
run watch --from-index 1 --limit 20 --format text
run sql "SELECT kind, subject, outcome, error FROM intents ORDER BY log_index" --format json

step "metrics: Prometheus text at /metrics (a few of them; docs/api.md lists all)"
echo "\$ curl -s http://$DWCP_SERVER/metrics | grep ..."
curl -s "http://$DWCP_SERVER/metrics" | grep -E '^dwcp_(intents_total|intent_duration_seconds_(count|sum)|log_write_duration_seconds_(count|sum)|log_entries_written_total|views_applied_index|raft_is_leader)[ {]' | sort

step "views are derived: delete them, restart, and they are rebuilt from the log"
BEFORE=$("$DWCP" sql "SELECT count(*) AS vms FROM vms" --format csv)
kill -TERM $NODE; wait $NODE || true
rm -f "$DATA/node/views.sqlite" "$DATA/node/views.sqlite-wal" "$DATA/node/views.sqlite-shm"
"$DWCP" dev --data-dir "$DATA/node" --api "$DWCP_SERVER" > "$DATA/node.out" 2> "$DATA/node.err" &
NODE=$!
for _ in $(seq 100); do grep -q listening "$DATA/node.out" 2>/dev/null && break; sleep 0.1; done
grep -i "rebuild" "$DATA/node.err" || true
AFTER=$("$DWCP" sql "SELECT count(*) AS vms FROM vms" --format csv)
echo "VMs before: $(echo "$BEFORE" | tail -1 | tr -d '\r'), after the rebuild: $(echo "$AFTER" | tail -1 | tr -d '\r')"
run status

step "the node stops gracefully on SIGTERM"
kill -TERM $NODE; wait $NODE && echo "node exited cleanly"

step "a three-node region on loopback: one log, replicated by Raft; mutual TLS between members and on the API"
# Two authorities: one for the replication port (members only), one for the API (members' API
# certificates and the operators' client certificates), so a client certificate is no member's.
echo "\$ scripts/peer-certs.sh \$DATA/peer n1=127.0.0.1 n2=127.0.0.1 n3=127.0.0.1"
scripts/peer-certs.sh "$DATA/peer" n1=127.0.0.1 n2=127.0.0.1 n3=127.0.0.1
echo "\$ scripts/peer-certs.sh \$DATA/api n1=127.0.0.1 n2=127.0.0.1 n3=127.0.0.1 ops=127.0.0.1"
scripts/peer-certs.sh "$DATA/api" n1=127.0.0.1 n2=127.0.0.1 n3=127.0.0.1 ops=127.0.0.1
echo "(ops: the CLI's client certificate)"
# The CLI from here on: HTTPS, trusting the API's authority, showing the ops certificate.
export DWCP_CA_FILE="$DATA/api/ca.pem" DWCP_CERT_FILE="$DATA/api/ops.pem" DWCP_KEY_FILE="$DATA/api/ops.key"
echo "\$ export DWCP_CA_FILE=\$DATA/api/ca.pem DWCP_CERT_FILE=\$DATA/api/ops.pem DWCP_KEY_FILE=\$DATA/api/ops.key"
read -r -a PORTS <<< "$(python3 -c '
import socket
sockets = [socket.socket() for _ in range(6)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))')"
PEERS=()
for i in 1 2 3; do PEERS+=(--peer "n$i@127.0.0.1:${PORTS[$((i + 2))]}"); done
declare -A MEMBER
start_member() {
    local i=$1
    "$DWCP" serve --data-dir "$DATA/n$i" --node-id "n$i" --region eu --api "127.0.0.1:${PORTS[$((i - 1))]}" \
        --listen "127.0.0.1:${PORTS[$((i + 2))]}" "${PEERS[@]}" --no-host-agent --log-level warning --verify-every 3s \
        --peer-cert-file "$DATA/peer/n$i.pem" --peer-key-file "$DATA/peer/n$i.key" \
        --peer-trusted-ca-file "$DATA/peer/ca.pem" --api-cert-file "$DATA/api/n$i.pem" \
        --api-key-file "$DATA/api/n$i.key" --api-trusted-ca-file "$DATA/api/ca.pem" \
        > "$DATA/n$i.out" 2> "$DATA/n$i.err" &
    MEMBER[$i]=$!
}
api() { echo "127.0.0.1:${PORTS[$(($1 - 1))]}"; }
role() { "$DWCP" cluster status --server "$(api "$1")" --timeout-ms 0 --json 2> /dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin).get("role", ""))' 2> /dev/null || true; }
leader() { for _ in $(seq 100); do for i in "$@"; do [ "$(role "$i")" = leader ] && { echo "$i"; return; }; done; sleep 0.1; done; echo "no leader" >&2; exit 1; }
# On a failure: stop the members and show what they logged.
region_failed() {
    kill -KILL "${MEMBER[@]}" 2> /dev/null || true
    for i in 1 2 3; do [ -s "$DATA/n$i.err" ] && { echo "--- n$i:"; tail -20 "$DATA/n$i.err"; }; done
    echo "(the region's data is kept in $DATA)"
}
trap region_failed EXIT
# Stops every member with SIGTERM, and with SIGKILL one that has not exited after 10 s.
stop_members() {
    kill -TERM "${MEMBER[@]}" 2> /dev/null || true
    for _ in $(seq 100); do
        [ -z "$(jobs -rp)" ] && break
        sleep 0.1
    done
    kill -KILL $(jobs -rp) 2> /dev/null || true
    wait 2> /dev/null || true
}
for i in 1 2 3; do start_member "$i"; done
echo "started n1, n2, n3 (API $(api 1), $(api 2), $(api 3))"
LEADER=$(leader 1 2 3)
FOLLOWER=$(( LEADER % 3 + 1 ))
run cluster status --server "$(api "$FOLLOWER")"
echo "(asked of a follower: every member reports itself over the replication port)"
run host add h1 --region eu --cpus 16 --memory 64GiB --server "$(api "$FOLLOWER")"
run vm create app-1 --cpus 2 --memory 2GiB --server "$(api "$FOLLOWER")"

step "a peer without the region's certificate gets nothing in: plain text to n$FOLLOWER's replication port"
echo "\$ printf 'not a member' > /dev/tcp/127.0.0.1/${PORTS[$((FOLLOWER + 2))]}"
printf 'not a member' > "/dev/tcp/127.0.0.1/${PORTS[$((FOLLOWER + 2))]}" || true
for _ in $(seq 50); do grep -q "TLS handshake failed" "$DATA/n$FOLLOWER.err" && break; sleep 0.1; done
{ grep "TLS handshake failed" "$DATA/n$FOLLOWER.err" || true; } | head -1 | sed 's/^[^ ]* //'
echo "and a client without a certificate of the authority gets no answer from the API:"
echo "\$ DWCP_CERT_FILE= DWCP_KEY_FILE= dwcp status --server $(api "$FOLLOWER")"
DWCP_CERT_FILE= DWCP_KEY_FILE= "$DWCP" status --server "$(api "$FOLLOWER")" || true

step "kill the leader (n$LEADER) with SIGKILL: the others elect a new one and keep every write"
kill -KILL "${MEMBER[$LEADER]}"; wait "${MEMBER[$LEADER]}" 2> /dev/null || true
SURVIVORS=()
for i in 1 2 3; do [ "$i" != "$LEADER" ] && SURVIVORS+=("$i"); done
NEW_LEADER=$(leader "${SURVIVORS[@]}")
run vm create app-2 --cpus 2 --memory 2GiB --server "$(api "$NEW_LEADER")"
run cluster status --server "$(api "$NEW_LEADER")"

step "restart n$LEADER: it catches up from the others"
start_member "$LEADER"
CAUGHT_UP=no
for _ in $(seq 200); do
    if "$DWCP" sql "SELECT count(*) FROM vms" --consistency local --format csv --server "$(api "$LEADER")" 2> /dev/null \
        | tr -d '\r' | grep -qx 2; then
        CAUGHT_UP=yes
        break
    fi
    sleep 0.1
done
[ $CAUGHT_UP = yes ] || { echo "n$LEADER did not catch up in 20 s"; exit 1; }
run sql "SELECT name, host, actual_state FROM vms ORDER BY name" --consistency local --format table --server "$(api "$LEADER")"
echo "(this region runs no host agents: its VMs are placed, not started)"
run cluster status --server "$(api "$LEADER")"

step "hand leadership back to n$LEADER, asking n$LEADER itself: a follower sends the request on to the leader"
run cluster transfer-leader "n$LEADER" --server "$(api "$LEADER")"
NEW_LEADER=$LEADER

step "are the three members' views the same? each hashes them at one log index, table by table (the leader also does so on its own, here every 3 s: cluster status shows its last)"
run cluster verify --server "$(api "$FOLLOWER")"
# The leader verifies on its own as well, a few seconds after it was elected (then every 3 s
# here; hourly by default): cluster status ends with its last verify.
for _ in $(seq 100); do
    VIEWS=$("$DWCP" cluster status --server "$(api "$FOLLOWER")" | tail -1)
    case "$VIEWS" in "views: not verified yet"*) sleep 0.1 ;; *) break ;; esac
done
echo "\$ dwcp cluster status --server $(api "$FOLLOWER") | tail -1"
echo "$VIEWS"

step "stop the leader (n$NEW_LEADER) with SIGTERM: it hands its leadership over before it exits"
REST=()
for i in 1 2 3; do [ "$i" != "$NEW_LEADER" ] && REST+=("$i"); done
SIGNALLED=$(date +%s%N)
kill -TERM "${MEMBER[$NEW_LEADER]}"
# Written through a member that stays, right after the signal: no election timeout to wait out
# (the member sends it on to the next leader itself; the CLI would also retry a 503).
"$DWCP" vm create app-3 --cpus 2 --memory 2GiB --server "$(api "${REST[0]}")" > /dev/null
echo "app-3 acknowledged $(( ($(date +%s%N) - SIGNALLED) / 1000000 )) ms after the SIGTERM"
wait "${MEMBER[$NEW_LEADER]}" && echo "n$NEW_LEADER exited cleanly"
unset "MEMBER[$NEW_LEADER]"
run cluster status --server "$(api "${REST[0]}")" --timeout-ms 300

step "what n${REST[0]} saw, in its replication metrics (docs/api.md lists them all)"
echo "\$ curl -s --cacert \$DWCP_CA_FILE --cert \$DWCP_CERT_FILE --key \$DWCP_KEY_FILE https://$(api "${REST[0]}")/metrics | grep ..."
curl -s --cacert "$DWCP_CA_FILE" --cert "$DWCP_CERT_FILE" --key "$DWCP_KEY_FILE" "https://$(api "${REST[0]}")/metrics" \
    | grep -E '^dwcp_raft_(has_leader|leader_changes_total|elections_started_total|proposals_retried_total|proposals_parked|snapshots_installed_total)[ {]' \
    | sort
stop_members
trap - EXIT
echo "region stopped"
rm -rf "$DATA"

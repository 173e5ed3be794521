#!/usr/bin/env bash
# Partition drill for a 3-member DWCP region, isolated in a network namespace (root only; it
# installs iptables if missing, and needs jq, curl, setpriv and iproute2).
#
#   scripts/partition-drill.sh BINARY [PARTITION_SECONDS=90] [MAX_RECOVERY_SECONDS=300]
#   e.g. scripts/partition-drill.sh .build/release/dwcp 120
#
# Starts n1..n3 inside netns "dwcpdrill" (replication 127.0.0.1:7101-7103, API 7201-7203),
# each member under its own uid (61001..61003) so iptables can tell their packets apart,
# partitions the current leader from the other two (both directions) for PARTITION_SECONDS
# while writing ~4 intents/s through a majority member, heals, and measures (polling every
# 200 ms) how long until the old leader (a) reports the new leader's term and (b) has applied
# up to the new leader's applied index. Prints one SUMMARY line (also appended to
# $DRILL_DIR/summaries.txt). Artefacts: $OUT (default
# $DRILL_DIR/out/<binary>-<secs>s-<timestamp>/; DRILL_DIR defaults to /tmp/dwcp-partition-drill).
#
# How the partition is made (all packets on lo pass OUTPUT then INPUT):
#   * at set-up, mangle/OUTPUT stamps every new TCP connection with the opening member's mark
#     (CONNMARK 0x10+i, matched by -m owner --uid-owner of the member's uid);
#   * during the partition, filter/INPUT drops (so the sender's transmit "succeeds", as on a
#     real network) every TCP packet with dport or sport = leader's replication port, and
#     every packet of a connection the leader opened (connmark) to/from the others'
#     replication ports (covers connections opened during the partition too).
# The API ports are never touched, so the script can still ask every member how it is.
set -u

BIN=${1:?usage: scripts/partition-drill.sh BINARY [PARTITION_SECONDS] [MAX_RECOVERY_SECONDS]}
PART=${2:-90}
MAXREC=${3:-300}
NS=dwcpdrill
DRILL_DIR=${DRILL_DIR:-/tmp/dwcp-partition-drill}
ROOT=$DRILL_DIR/run
BASE_UID=61000
OUT=${OUT:-$DRILL_DIR/out/$(basename "$BIN")-${PART}s-$(date +%Y%m%d-%H%M%S)}
REGION=eu
PEERS="--peer n1@127.0.0.1:7101 --peer n2@127.0.0.1:7102 --peer n3@127.0.0.1:7103"
NSX="ip netns exec $NS"
PIDS=()
WRITER_PID=""
SSMON_PID=""

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" | tee -a "$OUT/drill.log" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null
  [ -n "$SSMON_PID" ] && kill "$SSMON_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 1 30); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  [ -d "$OUT" ] && log "cleaned up (rc=$rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT" "$ROOT"
chmod 755 "$DRILL_DIR"  # the members, each its own user, enter it (root's umask may be 077)
[ -x "$BIN" ] || { echo "binary $BIN not found or not executable" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq missing" >&2; exit 1; }
if ! command -v iptables >/dev/null; then
  echo "installing iptables (apt-get) for the partition" >&2
  apt-get install -y iptables >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1; apt-get install -y iptables >/dev/null 2>&1; } \
    || { echo "could not install iptables" >&2; exit 1; }
fi

# ---------------------------------------------------------------- namespace and firewall
ip netns del "$NS" 2>/dev/null
ip netns add "$NS" || exit 1
$NSX ip link set lo up || exit 1
$NSX sysctl -qw net.netfilter.nf_conntrack_tcp_be_liberal=1 2>/dev/null || true
MODE=iptables
for i in 1 2 3; do
  $NSX iptables -t mangle -A OUTPUT -p tcp -m owner --uid-owner $((BASE_UID + i)) \
    -m conntrack --ctstate NEW -j CONNMARK --set-mark $((0x10 + i)) || MODE=tc
done
if [ $MODE = tc ]; then
  log "iptables does not work in the netns; falling back to tc (port-only: the leader's own outgoing connections from ephemeral ports are dropped by ss-derived port filters)"
fi
log "binary=$BIN partition=${PART}s mode=$MODE out=$OUT host tcp_retries2=$(sysctl -n net.ipv4.tcp_retries2) netns tcp_retries2=$($NSX sysctl -n net.ipv4.tcp_retries2)"

# ---------------------------------------------------------------- members
RUNBIN="$BIN"
if ! setpriv --reuid=$((BASE_UID + 1)) --regid=$((BASE_UID + 1)) --clear-groups test -x "$BIN"; then
  mkdir -p "$ROOT/bin" && cp "$BIN" "$ROOT/bin/dwcp" && chmod 755 "$ROOT" "$ROOT/bin" "$ROOT/bin/dwcp"
  RUNBIN="$ROOT/bin/dwcp"
fi
for i in 1 2 3; do
  rm -rf "$ROOT/n$i"; mkdir -p "$ROOT/n$i"; chown $((BASE_UID + i)):$((BASE_UID + i)) "$ROOT/n$i"
done
chmod 755 "$ROOT"
# CAP_NET_ADMIN (ambient) only so that binaries before f5780ff run: their replication port set
# SO_DEBUG (a misspelt TCP_NODELAY), which needs it; without it no leader was ever elected.
for i in 1 2 3; do
  $NSX setpriv --reuid=$((BASE_UID + i)) --regid=$((BASE_UID + i)) --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin \
    env HOME="$ROOT/n$i" "$RUNBIN" serve --data-dir "$ROOT/n$i" --node-id n$i --region $REGION \
    --api 127.0.0.1:720$i --listen 127.0.0.1:710$i $PEERS --no-host-agent \
    >"$OUT/n$i.log" 2>&1 &
  PIDS+=($!)
  echo "n$i pid $!" >>"$OUT/drill.log"
done

api() { $NSX curl -s --max-time "${2:-2}" "http://127.0.0.1:720$1/v1/cluster?timeout_ms=0"; }
field() { jq -r "$1" 2>/dev/null <<<"$2"; }

find_leader() { # prints i of the member that says it leads (and is believed by a majority)
  local i j
  for i in "$@"; do
    local s; s=$(api $i 1)
    [ "$(field .role "$s")" = leader ] && { echo $i; return 0; }
  done
  return 1
}

t0=$(now); LEADER=""
while [ -z "$LEADER" ]; do
  LEADER=$(find_leader 1 2 3) && break
  [ "$(since $t0 | cut -d. -f1)" -ge 60 ] && { log "no leader after 60 s"; for f in "$OUT"/n*.log; do tail -n 5 "$f"; done; exit 2; }
  sleep 0.2
done
log "leader n$LEADER after $(since $t0) s"
$NSX "$BIN" cluster status --server 127.0.0.1:720$LEADER >"$OUT/status-before.txt" 2>&1

# a few intents through the CLI, as README's tour does
for h in 1 2 3 4 5; do
  $NSX "$BIN" host add h$h --region $REGION --cpus 16 --memory 64GiB --label rack=r$((h % 2)) \
    --server 127.0.0.1:720$(( (h % 3) + 1 )) >>"$OUT/writes-setup.txt" 2>&1 || log "setup write h$h failed"
done
# wait until all three applied the same index
t0=$(now)
while :; do
  a1=$(field .applied_index "$(api 1)"); a2=$(field .applied_index "$(api 2)"); a3=$(field .applied_index "$(api 3)")
  [ -n "$a1" ] && [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ] && break
  [ "$(since $t0 | cut -d. -f1)" -ge 20 ] && { log "members did not converge: $a1 $a2 $a3"; break; }
  sleep 0.2
done
LEADER=$(find_leader 1 2 3)
OTHERS=(); for i in 1 2 3; do [ $i != "$LEADER" ] && OTHERS+=($i); done
A=${OTHERS[0]}; B=${OTHERS[1]}
sL=$(api $LEADER)
OLD_TERM=$(field .term "$sL")
log "before partition: leader n$LEADER term $OLD_TERM applied $a1 on all; others n$A n$B"
$NSX ss -tnoip >"$OUT/ss-before.txt"

# ---------------------------------------------------------------- partition
PL=710$LEADER; PA=710$A; PB=710$B; MARK=$((0x10 + LEADER))
partition_on() {
  if [ $MODE = iptables ]; then
    $NSX iptables -N DRILL
    $NSX iptables -A DRILL -p tcp --dport $PL -j DROP
    $NSX iptables -A DRILL -p tcp --sport $PL -j DROP
    $NSX iptables -A DRILL -p tcp -m connmark --mark $MARK -m multiport --dports $PA,$PB -j DROP
    $NSX iptables -A DRILL -p tcp -m connmark --mark $MARK -m multiport --sports $PA,$PB -j DROP
    $NSX iptables -I INPUT 1 -j DRILL
  else
    # tc fallback on lo egress: by replication port, and by the leader's current outgoing ports
    $NSX tc qdisc add dev lo root handle 1: prio
    local p
    for p in $PL; do
      $NSX tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 6 0xff match ip dport $p 0xffff action drop
      $NSX tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 6 0xff match ip sport $p 0xffff action drop
    done
    for p in $($NSX ss -tnpH state established "( dport = :$PA or dport = :$PB )" | grep "pid=${PIDS[$((LEADER - 1))]}," | awk '{split($3,a,":"); print a[2]}'); do
      $NSX tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 6 0xff match ip sport $p 0xffff action drop
      $NSX tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip protocol 6 0xff match ip dport $p 0xffff action drop
    done
  fi
}
partition_off() {
  if [ $MODE = iptables ]; then
    $NSX iptables -L DRILL -v -n -x >"$OUT/rule-counters.txt" 2>&1
    $NSX iptables -D INPUT -j DRILL
  else
    $NSX tc -s filter show dev lo >"$OUT/rule-counters.txt" 2>&1
    $NSX tc qdisc del dev lo root
  fi
}

writer() { # ~4 writes/s through the majority's APIs, alternating
  local n=0 t code
  while :; do
    n=$((n + 1)); t=$([ $((n % 2)) = 0 ] && echo $A || echo $B)
    code=$($NSX curl -s -o /dev/null -w '%{http_code}' --max-time 3 -X POST \
      -H 'content-type: application/json' \
      -d "{\"name\":\"p$n\",\"cpus\":4,\"memory_bytes\":1073741824,\"labels\":{\"seq\":\"$n\"},\"request_id\":\"drill-$$-$n\"}" \
      "http://127.0.0.1:720$t/v1/hosts")
    echo "$(date +%H:%M:%S.%3N) n$t p$n $code" >>"$OUT/writes.txt"
    sleep 0.25
  done
}
ssmon() { # ss snapshots of the replication connections every 5 s
  while :; do
    { echo "=== $(date +%H:%M:%S.%3N)"; $NSX ss -tnoip '( sport >= :7101 and sport <= :7103 ) or ( dport >= :7101 and dport <= :7103 )'; } >>"$OUT/ss-during.txt"
    sleep 5
  done
}

partition_on
TP=$(now)
log "PARTITION n$LEADER (port $PL) from n$A n$B for ${PART}s"
writer & WRITER_PID=$!
ssmon & SSMON_PID=$!

NEW=""; T_ELECT=""; MIDSTATUS=""
while :; do
  el=$(since $TP)
  if [ -z "$NEW" ]; then
    NEW=$(find_leader $A $B) && { T_ELECT=$el; log "new leader n$NEW after ${el}s, term $(field .term "$(api $NEW)")"; }
  fi
  if [ -z "$MIDSTATUS" ] && [ -n "$NEW" ] && awk -v e="$el" -v p="$PART" 'BEGIN{exit !(e >= p / 2)}'; then
    MIDSTATUS=1; $NSX "$BIN" cluster status --server 127.0.0.1:720$NEW >"$OUT/status-partitioned.txt" 2>&1
  fi
  awk -v e="$el" -v p="$PART" 'BEGIN{exit !(e >= p)}' && break
  sleep 0.2
done
kill $SSMON_PID 2>/dev/null; SSMON_PID=""
{ echo "=== end of partition $(date +%H:%M:%S.%3N)"; $NSX ss -tnoip '( sport >= :7101 and sport <= :7103 ) or ( dport >= :7101 and dport <= :7103 )'; } >>"$OUT/ss-during.txt"
kill $WRITER_PID 2>/dev/null; wait $WRITER_PID 2>/dev/null; WRITER_PID=""
sO=$(api $LEADER); [ -z "$NEW" ] && NEW=$(find_leader $A $B)
sN=$(api $NEW)
log "end of partition: old n$LEADER role=$(field .role "$sO") term=$(field .term "$sO") applied=$(field .applied_index "$sO"); new n$NEW term=$(field .term "$sN") applied=$(field .applied_index "$sN"); writes ok=$(grep -c ' 20[01]$' "$OUT/writes.txt") of $(wc -l <"$OUT/writes.txt")"

# ---------------------------------------------------------------- heal and measure
partition_off
TH=$(now)
log "HEALED"
TA=""; TB=""; last_ss=0
while :; do
  el=$(since $TH)
  sO=$(api $LEADER 1); sN=$(api $NEW 1)
  if [ "$(field .role "$sN")" != leader ]; then
    NEW2=$(find_leader 1 2 3) && { [ "$NEW2" != "$NEW" ] && log "leader is now n$NEW2"; NEW=$NEW2; sN=$(api $NEW 1); }
  fi
  oT=$(field .term "$sO"); nT=$(field .term "$sN"); oA=$(field .applied_index "$sO"); nA=$(field .applied_index "$sN")
  echo "$el old:role=$(field .role "$sO") term=$oT leader=$(field .leader "$sO") last=$(field .last_index "$sO") commit=$(field .commit_index "$sO") applied=$oA new:n$NEW term=$nT applied=$nA" >>"$OUT/recovery-trace.txt"
  if [ -z "$TA" ] && [ -n "$oT" ] && [ "$oT" = "$nT" ]; then TA=$el; log "(a) old leader n$LEADER at the new leader's term $nT after ${TA}s"; fi
  if [ -n "$TA" ] && [ -z "$TB" ] && [ -n "$oA" ] && [ "$oA" = "$nA" ]; then TB=$el; log "(b) old leader n$LEADER applied $oA = new leader's after ${TB}s"; fi
  [ -n "$TA" ] && [ -n "$TB" ] && break
  if awk -v e="$el" -v l="$last_ss" 'BEGIN{exit !(e - l >= 2)}'; then
    last_ss=$el
    { echo "=== healed+${el}s"; $NSX ss -tnoip '( sport >= :7101 and sport <= :7103 ) or ( dport >= :7101 and dport <= :7103 )'; } >>"$OUT/ss-after.txt"
  fi
  awk -v e="$el" -v m="$MAXREC" 'BEGIN{exit !(e >= m)}' && { log "gave up after ${MAXREC}s"; break; }
  sleep 0.2
done
$NSX "$BIN" cluster status --server 127.0.0.1:720$NEW >"$OUT/status-after.txt" 2>&1

# retransmission timers of the replication connections, per ss snapshot: local>peer timer rto backoff
for f in ss-during ss-after; do
  [ -f "$OUT/$f.txt" ] || continue
  awk '/^===/{print; next} /^ESTAB/{c=$4">"$5; t=""; if (match($0,/timer:\([^)]*\)/)) t=substr($0,RSTART,RLENGTH); next}
       /rto:/{ if (t ~ /on,/) { r=""; b=""; if (match($0,/rto:[0-9.]+/)) r=substr($0,RSTART,RLENGTH); if (match($0,/backoff:[0-9]+/)) b=substr($0,RSTART,RLENGTH); print "  " c, t, r, b } }' \
    "$OUT/$f.txt" >"$OUT/$f-timers.txt"
done
for i in 1 2 3; do sed "s/^/n$i: /" "$OUT/n$i.log"; done | grep -i -E 'replication connection|cannot reach' >"$OUT/connection-lines.txt"
log "connection log lines: $(wc -l <"$OUT/connection-lines.txt") (see $OUT/connection-lines.txt)"

ENDTIMERS=$(awk '/^===/{n=0; m=0; r=0; next} {n++; split($0,a,"backoff:"); if (a[2]+0>m) m=a[2]+0; split($0,q,"rto:"); if (q[2]+0>r) r=q[2]+0} END{printf "conns_retransmitting_at_heal=%d max_backoff=%d max_rto_ms=%d", n, m, r}' "$OUT/ss-during-timers.txt" 2>/dev/null)
SUMMARY="SUMMARY binary=$BIN partition_s=$PART old_leader=n$LEADER new_leader=n$NEW elected_after_s=${T_ELECT:-none} to_term_s=${TA:-timeout>$MAXREC} to_applied_s=${TB:-timeout>$MAXREC} $ENDTIMERS"
echo "$SUMMARY" | tee -a "$OUT/drill.log"
echo "$SUMMARY" >>"$DRILL_DIR/summaries.txt"

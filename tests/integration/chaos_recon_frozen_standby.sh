#!/usr/bin/env bash
# chaos_recon_frozen_standby: the standby a reconciliation reads from is
# frozen whole (kill -STOP on its Patroni, its postmaster and every
# PostgreSQL process) in the middle of the run, as a paused VM or a host
# cut off by a partition is: it answers nothing and resets nothing, and
# its kernel still acknowledges TCP, so keepalives see nothing wrong.
# Proves that the run does not wait for it: after 10 s of silence a new
# session to that server gets no answer either (pg_unresponsive), the read
# session is opened again on another server (ledger_session_reopened),
# which catches up with a mark taken on the primary, and the run ends
# balanced while the frozen node is still frozen. Before, the run waited
# for the frozen node for as long as it stayed frozen.
#
# The moment is made certain, not raced: a transaction on the primary
# holds an ACCESS EXCLUSIVE lock on payq.transfers, which both standbys
# replay, so the run's scan is found waiting on its standby (which says
# nothing meanwhile); only then is that standby frozen and the lock let
# go. Needs the stack up (three PostgreSQL nodes); leaves it up and
# healthy.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/recon_lib.sh
source "$(dirname "$0")/lib/recon_lib.sh"
recon_config
P=rz$RUN_ID
N=5000
CUR=EUR # the fast path's days are in EUR
CUR2=EUR
FREEZE_MAX=90 # seconds the standby stays frozen at most

# The standbys among the nodes.
standbys=()
for port in $PG_PORTS; do
    [ "$(node_sql "$port" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] && standbys+=("$port")
done
if [ ${#standbys[@]} -lt 2 ]; then
    fail "two standbys needed, found ${#standbys[@]} (ports: $PG_PORTS)"
    finish
fi


fresh_date
PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
    "$P-c" "$P" "$D" "$N" 2>>"$TMP/fastday.log" >/dev/null ||
    fail "reconday failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"

# Both standbys hold the day.
for port in "${standbys[@]}"; do
    held=0
    for _ in $(seq 1 120); do
        held=$(node_sql "$port" "SELECT count(*) FROM payq.transfers WHERE business_date = '$D'") && [ "$held" = "$N" ] && break
        sleep 0.5
    done
    check "standby :$port holds the day" "$N" "$held"
done

# A lock on the primary that every standby replays: the run's scan of
# payq.transfers then waits on its standby, which says nothing meanwhile.
psql "$PAYQ_PG_PRIMARY" -X -q -v ON_ERROR_STOP=1 \
    -c "BEGIN; LOCK TABLE payq.transfers IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)" \
    >/dev/null 2>&1 &
locker=$!
release_lock() {
    q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE payq.transfers%' AND pid <> pg_backend_pid()" >/dev/null 2>&1
    wait "$locker" 2>/dev/null
}
trap 'release_lock; thaw_pg_nodes; untamper; cleanup_common' EXIT
# Once it holds the lock, a commit flushes the WAL up to it: the lock's
# record alone would wait in the primary's buffers.
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'payq.transfers'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
    sleep 0.1
done
q 'SELECT pg_current_xact_id()' >/dev/null || fail "commit on the primary"
for port in "${standbys[@]}"; do
    replayed=0
    for _ in $(seq 1 100); do
        replayed=$(node_sql "$port" "SELECT count(*) FROM pg_locks WHERE relation = 'payq.transfers'::regclass AND mode = 'AccessExclusiveLock' AND granted")
        [ "$replayed" = 1 ] && break
        sleep 0.1
    done
    check "standby :$port holds the primary's lock" 1 "$replayed"
done

"$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
    --format json --out "$TMP/$D.json" 2>"$TMP/$D.err" &
recon_pid=$!

# The standby the run reads from, once its scan waits there.
reading=""
for _ in $(seq 1 300); do
    for port in "${standbys[@]}"; do
        [ "$(node_sql "$port" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'payq-reconciler' AND wait_event_type = 'Lock'")" = 1 ] && reading=$port
    done
    [ -n "$reading" ] || ! kill -0 "$recon_pid" 2>/dev/null && break
    sleep 0.1
done
if [ -z "$reading" ]; then
    fail "the run's scan never waited on a standby"
    why_failed "$TMP/$D.err"
    finish
fi
node=$(basename "$(node_sql "$reading" 'SHOW data_directory')")
other=""
for port in "${standbys[@]}"; do [ "$port" != "$reading" ] && other=$port; done

t0=$(date +%s)
freeze_pg_node "$node" || fail "standby $node (:$reading): no postmaster or Patroni found"
release_lock
echo "# froze standby $node (:$reading, ${#PG_FROZEN[@]} processes) while the run's scan waited there"

while kill -0 "$recon_pid" 2>/dev/null && [ $(($(date +%s) - t0)) -lt "$FREEZE_MAX" ]; do sleep 1; done
t_end=$(($(date +%s) - t0))
if kill -0 "$recon_pid" 2>/dev/null; then
    fail "the run still waits after ${FREEZE_MAX} s of freeze"
    thaw_pg_nodes
fi
wait "$recon_pid"
RC=$?
thaw_pg_nodes
[ "$RC" = 2 ] && why_failed "$TMP/$D.err"
events=$(grep -v '"level":"info"' "$TMP/$D.err" | jq -r .event | uniq -c | tr -s ' \n' ' ')
echo "# the run ended $t_end s into the freeze; it logged:$events"
check "the run's exit code" 0 "$RC"
check "the run's result" balanced "$(jq -r .result "$TMP/$D.json" 2>/dev/null)"
check "the day's rows compared" "$N" "$(jq -r '.sources.ledger.rows' "$TMP/$D.json" 2>/dev/null)"
check "the ledger read on the other standby" "127.0.0.1:$other" "$(jq -r '.sources.ledger.server' "$TMP/$D.json" 2>/dev/null)"
grep -q '"event":"pg_unresponsive"' "$TMP/$D.err" &&
    ok "the run gave up the frozen standby's session (pg_unresponsive)" ||
    fail "the run logged no pg_unresponsive"
grep -q '"event":"ledger_session_reopened"' "$TMP/$D.err" &&
    ok "the run read on another server (ledger_session_reopened)" ||
    fail "the run logged no ledger_session_reopened"

# The thawed node rejoins.
check_healthy_after_thaw 90
finish

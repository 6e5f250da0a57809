#!/usr/bin/env bash
# chaos_recon_frozen_primary: the Patroni leader is frozen whole (kill
# -STOP on its Patroni, its postmaster and every PostgreSQL process) while
# a reconciliation's record (payq.record_reconciliation(), on the primary)
# waits there, as a paused VM or a host cut off by a partition is: it
# answers nothing and resets nothing. Patroni promotes the synchronous
# standby once the frozen leader's lease runs out. Proves that the run
# neither waits for the frozen node nor ends without its record: after
# 10 s of silence a new session to that server gets no answer either
# (pg_unresponsive), the record's outcome is unknown, and it is asked
# again (run_record_retry) until the promoted primary answers; the run
# ends balanced, recorded once, while the old leader is still frozen; the
# thawed old leader rejoins and the stack is healthy. Before, the first
# unanswered record ended the run: exit 2, "cannot record the run", no row.
#
# The moment is made certain, not raced: a transaction on the leader holds
# payq.reconciliations in SHARE mode (reads go on, the record's INSERT
# waits), so the run is found waiting there before the freeze. Needs the
# stack up (three PostgreSQL nodes); leaves it up and healthy.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/recon_lib.sh
source "$(dirname "$0")/lib/recon_lib.sh"
recon_config
P=rp$RUN_ID
N=3000
CUR=EUR # the fast path's days are in EUR
CUR2=EUR
FREEZE_MAX=90 # seconds the leader stays frozen at most

old=$PAYQ_PG_PRIMARY_NODE
old_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PAYQ_PG_PRIMARY")
LOCKER=payq-test-locker-$RUN_ID
# release_lock: ends the locker's session wherever it still runs (a thaw
# before any promotion leaves it on the old leader, holding the lock).
# shellcheck disable=SC2317 # runs from the EXIT trap
release_lock() {
    local port
    for port in $PG_PORTS; do
        node_sql "$port" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$LOCKER'" >/dev/null 2>&1
    done
}
trap 'thaw_pg_nodes; release_lock; cleanup_common' EXIT

fresh_date
PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
    "$P-c" "$P" "$D" "$N" 2>>"$TMP/fastday.log" >/dev/null ||
    fail "reconday failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"
SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")

# The lock, in a session of its own on the leader: it goes with the
# frozen node (the promoted one never saw it).
PGAPPNAME=$LOCKER psql "$PAYQ_PG_PRIMARY" -X -q -v ON_ERROR_STOP=1 \
    -c "BEGIN; LOCK TABLE payq.reconciliations IN SHARE MODE; SELECT pg_sleep(600)" \
    >/dev/null 2>&1 &
BG_PIDS+=($!)
locked=0
for _ in $(seq 1 100); do
    locked=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$LOCKER' AND state = 'active' AND query LIKE '%pg_sleep%'")
    [ "$locked" = 1 ] && break
    sleep 0.1
done
check "payq.reconciliations is locked on leader $old" 1 "$locked"

"$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
    --format json --out "$TMP/$D.json" 2>"$TMP/$D.err" &
recon_pid=$!
waiting=0
for _ in $(seq 1 300); do
    waiting=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'payq-reconciler' AND wait_event_type = 'Lock'")
    [ "$waiting" = 1 ] || ! kill -0 "$recon_pid" 2>/dev/null && break
    sleep 0.1
done
if [ "$waiting" != 1 ]; then
    fail "the run's record never waited on the leader"
    why_failed "$TMP/$D.err"
    kill -9 "$recon_pid" 2>/dev/null
    finish
fi

t0=$(date +%s)
if ! freeze_pg_node "$old"; then
    fail "leader $old: no postmaster or Patroni found"
    finish
fi
echo "# froze leader $old (:$old_port, ${#PG_FROZEN[@]} processes) while the run's record waited there"

# Patroni's lease (PAYQ_PATRONI_TTL, 15 s) runs out, a standby is promoted.
new=$old
t_promoted=""
while kill -0 "$recon_pid" 2>/dev/null && [ $(($(date +%s) - t0)) -lt "$FREEZE_MAX" ]; do
    if [ -z "$t_promoted" ]; then
        eval "$("$SRC/scripts/stack" env 2>/dev/null)"
        new=${PAYQ_PG_PRIMARY_NODE:-$old}
        [ "$new" != "$old" ] && t_promoted=$(($(date +%s) - t0))
    fi
    sleep 1
done
t_end=$(($(date +%s) - t0))
if kill -0 "$recon_pid" 2>/dev/null; then
    fail "the run still waits after ${FREEZE_MAX} s of freeze"
    thaw_pg_nodes
fi
wait "$recon_pid"
RC=$?
frozen=${#PG_FROZEN[@]}
thaw_pg_nodes
[ "$RC" = 0 ] || why_failed "$TMP/$D.err"
[ "$RC" = 0 ] || grep -v '^{' "$TMP/$D.err" | tail -n 2 | sed 's/^/# /'
events=$(grep -v '"level":"info"' "$TMP/$D.err" | jq -r .event 2>/dev/null | uniq -c | tr -s ' \n' ' ')
echo "# promoted after ${t_promoted:-?} s; the run ended $t_end s into the freeze; it logged:$events"
[ "$frozen" -gt 0 ] && ok "the run ended while leader $old was still frozen" ||
    fail "the leader was thawed before the run ended"
check "the run's exit code" 0 "$RC"
check "the run's result" balanced "$(jq -r .result "$TMP/$D.json" 2>/dev/null)"
check "the day's rows compared" "$N" "$(jq -r '.sources.ledger.rows' "$TMP/$D.json" 2>/dev/null)"
grep -q '"event":"pg_unresponsive"' "$TMP/$D.err" &&
    ok "the run gave up the frozen leader's session (pg_unresponsive)" ||
    fail "the run logged no pg_unresponsive"
grep -q '"event":"run_record_retry"' "$TMP/$D.err" &&
    ok "the run asked again for its record (run_record_retry)" ||
    fail "the run logged no run_record_retry"

# The thawed node finds its lease gone, demotes itself and rejoins.
check_healthy_after_thaw 180
# The thawed old leader rejoins as a replica (after pg_rewind): the next
# test needs both standbys answering.
standbys=0
for _ in $(seq 1 120); do
    standbys=0
    for port in $PG_PORTS; do
        [ "$(node_sql "$port" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] && standbys=$((standbys + 1))
    done
    [ "$standbys" = 2 ] && break
    sleep 1
done
check "the old leader answers again, as a standby" 2 "$standbys"
eval "$("$SRC/scripts/stack" env)"
check "a standby was promoted" t "$([ "$PAYQ_PG_PRIMARY_NODE" != "$old" ] && echo t || echo f)"
check "the run recorded once, balanced, on the promoted primary" "1 balanced" \
    "$(q "SELECT count(*) || ' ' || string_agg(result, ',') FROM payq.reconciliations WHERE business_date = '$D' AND seq > $SEQ0 AND run_id IS NOT NULL")"
finish

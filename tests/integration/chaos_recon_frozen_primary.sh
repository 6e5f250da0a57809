#!/usr/bin/env bash
# chaos_recon_frozen_primary: the Patroni leader is frozen whole (kill
# -STOP on its Patroni, its postmaster and every PostgreSQL process) while
# a reconciliation waits on it, as a paused VM or a host cut off by a
# partition is: it answers nothing and resets nothing. Patroni promotes the
# synchronous standby once the frozen leader's lease runs out. Proves that
# the run neither waits for the frozen node nor gives up what needs a
# primary, in two cases, each with its own freeze:
#  1. the invariants (payq.verify_books(), which writes its checkpoints
#     on the primary): after 10 s of silence a new session to that server
#     gets no answer either (pg_unresponsive); with no primary yet, the run
#     waits for one (invariants_wait_primary) rather than check every date
#     read-only, and checks on the promoted primary, its watermark moved;
#  2. the run's record (payq.record_reconciliation()): given up the same
#     way, its outcome unknown, it is asked again (run_record_retry) until
#     the promoted primary answers, and recorded once.
# Each run ends balanced, recorded once, while the old leader is still
# frozen; the thawed old leader rejoins as a standby. Before, case 1 read
# the whole ledger read-only and case 2 exited 2 ("cannot record the
# run") with no row.
#
# The moments are made certain, not raced: a transaction on the leader
# holds a row lock on payq.recon_watermark (case 1), or
# payq.reconciliations in SHARE mode (case 2: reads go on, the INSERT
# waits), and the run is found waiting there before the freeze. Needs the
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
# The other nodes' Patroni, stopped to hold the promotion back (case 1).
HELD=()
# shellcheck disable=SC2317 # runs from the EXIT trap and freeze_during
release_promotion() {
    [ ${#HELD[@]} -gt 0 ] && kill -CONT "${HELD[@]}" 2>/dev/null
    HELD=()
}
trap 'release_promotion; thaw_pg_nodes; release_lock; cleanup_common' EXIT

# freeze_during CASE LOCK_SQL APP [HOLD_UNTIL]: reconciles a fresh day
# while LOCK_SQL, held on the leader, makes the run's session APP wait
# there; freezes the leader whole until the run ends; thaws it and waits
# for the stack to heal. With HOLD_UNTIL, the other nodes' Patroni is
# stopped too (their PostgreSQL serving on, as standbys), so that no node
# is promoted until the run logs the event HOLD_UNTIL (up to 60 s): the
# run meets a cluster without a primary for certain, not by a race with
# Patroni's lease. Leaves the run's exit code in RC, its log in $TMP/$CASE.err, its
# report in $TMP/$CASE.json and the old leader's name in OLD.
freeze_during() {
    local case=$1 lock=$2 app=$3 hold=${4:-} locked=0 waiting=0 t0 t_end t_promoted="" frozen
    OLD=$PAYQ_PG_PRIMARY_NODE
    fresh_date
    PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
        "$P-$case-c" "$P-$case" "$D" "$N" 2>>"$TMP/fastday.log" >/dev/null ||
        fail "$case: reconday failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"
    SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")
    WM0=$(q "SELECT coalesce((SELECT verified_at FROM payq.recon_watermark), '-infinity')")
    # The lock, in a session of its own on the leader: it goes with the
    # frozen node (the promoted one never saw it).
    PGAPPNAME=$LOCKER psql "$PAYQ_PG_PRIMARY" -X -q -v ON_ERROR_STOP=1 \
        -c "BEGIN; $lock; SELECT pg_sleep(600)" >/dev/null 2>&1 &
    BG_PIDS+=($!)
    for _ in $(seq 1 100); do
        locked=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$LOCKER' AND state = 'active' AND query LIKE '%pg_sleep%'")
        [ "$locked" = 1 ] && break
        sleep 0.1
    done
    check "$case: the lock is held on leader $OLD" 1 "$locked"

    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
        --format json --out "$TMP/$case.json" 2>"$TMP/$case.err" &
    local pid=$!
    for _ in $(seq 1 300); do
        waiting=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$app' AND wait_event_type = 'Lock'")
        [ "$waiting" = 1 ] || ! kill -0 "$pid" 2>/dev/null && break
        sleep 0.1
    done
    if [ "$waiting" != 1 ]; then
        fail "$case: the run never waited on the leader"
        why_failed "$TMP/$case.err"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        RC=none
        release_lock
        return
    fi

    t0=$(date +%s)
    if [ -n "$hold" ]; then
        mapfile -t HELD < <(pgrep -f "patroni $SRC/.run/pg/patroni/[a-z]+.yml" |
            grep -vx "$(pgrep -f "patroni $SRC/.run/pg/patroni/$OLD.yml")")
        kill -STOP "${HELD[@]}" 2>/dev/null # a short-lived child may be gone
    fi
    freeze_pg_node "$OLD" || fail "$case: leader $OLD: no postmaster or Patroni found"
    echo "# $case: froze leader $OLD (${#PG_FROZEN[@]} processes) while the run waited there"
    if [ -n "$hold" ]; then
        for _ in $(seq 1 600); do
            grep -q "\"event\":\"$hold\"" "$TMP/$case.err" && break
            sleep 0.1
        done
        echo "# $case: promotion held back $(($(date +%s) - t0)) s, until the run logged $hold"
        release_promotion
    fi
    # Patroni's lease (PAYQ_PATRONI_TTL, 15 s) runs out, a standby is promoted.
    while kill -0 "$pid" 2>/dev/null && [ $(($(date +%s) - t0)) -lt "$FREEZE_MAX" ]; do
        if [ -z "$t_promoted" ]; then
            eval "$("$SRC/scripts/stack" env 2>/dev/null)"
            [ "${PAYQ_PG_PRIMARY_NODE:-$OLD}" != "$OLD" ] && t_promoted=$(($(date +%s) - t0))
        fi
        sleep 1
    done
    t_end=$(($(date +%s) - t0))
    kill -0 "$pid" 2>/dev/null && fail "$case: the run still waits after ${FREEZE_MAX} s of freeze"
    frozen=${#PG_FROZEN[@]}
    thaw_pg_nodes
    wait "$pid"
    RC=$?
    [ "$RC" = 0 ] || why_failed "$TMP/$case.err"
    [ "$RC" = 0 ] || grep -v '^{' "$TMP/$case.err" | tail -n 2 | sed 's/^/# /'
    local events
    events=$(grep -v '"level":"info"' "$TMP/$case.err" | jq -r .event 2>/dev/null | uniq -c | tr -s ' \n' ' ')
    echo "# $case: promoted after ${t_promoted:-?} s; the run ended $t_end s into the freeze; it logged:$events"
    [ "$frozen" -gt 0 ] && ok "$case: the run ended while leader $OLD was still frozen" ||
        fail "$case: the leader was thawed before the run ended"
    check "$case: the run's exit code" 0 "$RC"
    check "$case: the run's result" balanced "$(jq -r .result "$TMP/$case.json" 2>/dev/null)"
    check "$case: the day's rows compared" "$N" "$(jq -r '.sources.ledger.rows' "$TMP/$case.json" 2>/dev/null)"
    logged "$case" pg_unresponsive "gave up the frozen leader's session"

    # The thawed node finds its lease gone, demotes itself and rejoins.
    check_healthy_after_thaw 180
    check "$case: a standby was promoted" t "$([ "$PAYQ_PG_PRIMARY_NODE" != "$OLD" ] && echo t || echo f)"
    check "$case: the run recorded once, balanced, on the promoted primary" "1 balanced" \
        "$(q "SELECT count(*) || ' ' || string_agg(result, ',') FROM payq.reconciliations WHERE business_date = '$D' AND seq > $SEQ0 AND run_id IS NOT NULL")"
}

# logged CASE EVENT WHAT: checks that the case's run logged EVENT.
logged() {
    grep -q "\"event\":\"$2\"" "$TMP/$1.err" && ok "$1: the run $3 ($2)" || fail "$1: the run logged no $2"
}

freeze_during invariants "SELECT * FROM payq.recon_watermark FOR UPDATE" payq-reconciler-invariants \
    invariants_wait_primary
logged invariants invariants_wait_primary "waited for a primary"
check "invariants: checked on the primary, not every date read-only" 0 \
    "$(grep -c '"event":"invariants_without_checkpoints"' "$TMP/invariants.err")"
check "invariants: the watermark moved on the promoted primary" t \
    "$(q "SELECT verified_at > '$WM0' FROM payq.recon_watermark")"

freeze_during record "LOCK TABLE payq.reconciliations IN SHARE MODE" payq-reconciler
logged record run_record_retry "asked again for its record"
finish

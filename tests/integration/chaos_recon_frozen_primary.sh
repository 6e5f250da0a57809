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
#     the promoted primary answers, and recorded once;
#  3. the replay mark (the position a standby must replay before it
#     answers for the day): flushed by the leader, never sent (its WAL
#     senders stopped first), then the leader frozen. The run takes a new
#     mark (ledger_replay_remark), from the promoted primary once there is
#     one, or finds its read server promoted, and goes on.
# Each run ends balanced, recorded once, while the old leader is still
# frozen; the thawed old leader rejoins as a standby. Before, case 1 read
# the whole ledger read-only, case 2 exited 2 ("cannot record the run")
# with no row, and case 3 failed after 60 s ("did not replay up to").
#
# The moments are made certain, not raced: a transaction on the leader
# holds a row lock on payq.recon_watermark (case 1), or
# payq.reconciliations in SHARE mode (case 2: reads go on, the INSERT
# waits), and the run is found waiting there before the freeze, its
# replay mark on every standby (or, case 3, found waiting for it). Needs the
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

# The other nodes' Patroni, stopped to hold the promotion back (case 1).
HELD=()
# shellcheck disable=SC2317 # runs from the EXIT trap and freeze_leader
release_promotion() {
    [ ${#HELD[@]} -gt 0 ] && kill -CONT "${HELD[@]}" 2>/dev/null
    HELD=()
}
# The leader's WAL senders, stopped before the rest of it (case 3).
SENDERS=()
# shellcheck disable=SC2317 # runs from the EXIT trap and freeze_leader
release_senders() {
    [ ${#SENDERS[@]} -gt 0 ] && kill -CONT "${SENDERS[@]}" 2>/dev/null
    SENDERS=()
}
trap 'release_promotion; release_senders; thaw_pg_nodes; release_lock; cleanup_common' EXIT

# new_day CASE: a fresh day of N transfers, its audit and its manifests;
# the leader's name in OLD, the last record's seq in SEQ0, the watermark in
# WM0.
new_day() {
    OLD=$PAYQ_PG_PRIMARY_NODE
    fresh_date
    PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
        "$P-$1-c" "$P-$1" "$D" "$N" 2>>"$TMP/fastday.log" >/dev/null ||
        fail "$1: reconday failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"
    SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")
    WM0=$(q "SELECT coalesce((SELECT verified_at FROM payq.recon_watermark), '-infinity')")
}

# start_run CASE: reconciles the day in the background (pid in RUN_PID).
start_run() {
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
        --format json --out "$TMP/$1.json" 2>"$TMP/$1.err" &
    RUN_PID=$!
}

# await CASE WHAT COND: waits (30 s at most) until the shell condition COND
# holds; if it never does, or the run ends first, fails naming WHAT, kills
# the run and returns 1.
await() {
    for _ in $(seq 1 300); do
        eval "$3" && return 0
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "$1: $2 never happened"
    why_failed "$TMP/$1.err"
    kill -9 "$RUN_PID" 2>/dev/null
    wait "$RUN_PID" 2>/dev/null
    return 1
}
has_logged() { grep -q "\"event\":\"$2\"" "$TMP/$1.err"; }

# freeze_leader CASE [HOLD_UNTIL]: freezes the leader whole until the run
# ends; thaws it and waits for the stack to heal. With HOLD_UNTIL, the
# other nodes' Patroni is stopped too (their PostgreSQL serving on, as
# standbys), so that no node is promoted until the run logs the event
# HOLD_UNTIL (up to 60 s): the run meets a cluster without a primary for
# certain, not by a race with Patroni's lease. Leaves the run's exit code
# in RC, its log in $TMP/$CASE.err and its report in $TMP/$CASE.json.
freeze_leader() {
    local case=$1 hold=${2:-} t0 t_end t_promoted="" frozen
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
            has_logged "$case" "$hold" && break
            sleep 0.1
        done
        echo "# $case: promotion held back $(($(date +%s) - t0)) s, until the run logged $hold"
        release_promotion
    fi
    # Patroni's lease (PAYQ_PATRONI_TTL, 15 s) runs out, a standby is promoted.
    while kill -0 "$RUN_PID" 2>/dev/null && [ $(($(date +%s) - t0)) -lt "$FREEZE_MAX" ]; do
        if [ -z "$t_promoted" ]; then
            eval "$("$SRC/scripts/stack" env 2>/dev/null)"
            [ "${PAYQ_PG_PRIMARY_NODE:-$OLD}" != "$OLD" ] && t_promoted=$(($(date +%s) - t0))
        fi
        sleep 1
    done
    t_end=$(($(date +%s) - t0))
    kill -0 "$RUN_PID" 2>/dev/null && fail "$case: the run still waits after ${FREEZE_MAX} s of freeze"
    frozen=${#PG_FROZEN[@]}
    thaw_pg_nodes
    SENDERS=() # thawed with the rest
    wait "$RUN_PID"
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

    # The thawed node finds its lease gone, demotes itself and rejoins.
    check_healthy_after_thaw 180
    check "$case: a standby was promoted" t "$([ "$PAYQ_PG_PRIMARY_NODE" != "$OLD" ] && echo t || echo f)"
    check "$case: the run recorded once, balanced, on the promoted primary" "1 balanced" \
        "$(q "SELECT count(*) || ' ' || string_agg(result, ',') FROM payq.reconciliations WHERE business_date = '$D' AND seq > $SEQ0 AND run_id IS NOT NULL")"
}

# logged CASE EVENT WHAT: checks that the case's run logged EVENT.
logged() {
    has_logged "$1" "$2" && ok "$1: the run $3 ($2)" || fail "$1: the run logged no $2"
}

# 1. The invariants wait on the watermark's row lock. The run's replay mark
# (taken after its scan) must be on every standby before the freeze: a
# mark lost with the leader is case 3. The lock holds the run only if the
# watermark has its row, which a stack purged since its last reconciliation
# lacks (the run would insert it, unhindered): one verification makes it.
if [ "$(q "SELECT count(*) FROM payq.recon_watermark")" != 1 ]; then
    q "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM payq.verify_books(false); COMMIT" \
        >/dev/null || fail "invariants: cannot make the watermark's row"
fi
new_day invariants
hold_lock "SELECT * FROM payq.recon_watermark FOR UPDATE"
check "invariants: the lock is held on leader $OLD" 0 $?
start_run invariants
# shellcheck disable=SC2016 # expanded by await's eval
if await invariants "a wait on the leader" '[ "$(waiting_on_lock payq-reconciler-invariants)" = 1 ]' &&
    await invariants "the replay mark" "has_logged invariants ledger_caught_up"; then
    wait_replayed "the run's replay mark"
    freeze_leader invariants invariants_wait_primary
    logged invariants pg_unresponsive "gave up the frozen leader's session"
    logged invariants invariants_wait_primary "waited for a primary"
    check "invariants: checked on the primary, not every date read-only" 0 \
        "$(grep -c '"event":"invariants_without_checkpoints"' "$TMP/invariants.err")"
    check "invariants: the watermark moved on the promoted primary" t \
        "$(q "SELECT verified_at > '$WM0' FROM payq.recon_watermark")"
fi
release_lock

# 2. The record's INSERT waits on the table's SHARE lock (reads go on).
new_day record
hold_lock "LOCK TABLE payq.reconciliations IN SHARE MODE"
check "record: the lock is held on leader $OLD" 0 $?
start_run record
# shellcheck disable=SC2016 # expanded by await's eval
if await record "a wait on the leader" '[ "$(waiting_on_lock payq-reconciler)" = 1 ]'; then
    wait_replayed "the run's replay mark"
    freeze_leader record
    logged record pg_unresponsive "gave up the frozen leader's session"
    logged record run_record_retry "asked again for its record"
fi
release_lock

# 3. The leader's WAL senders stop first: the replay mark the run takes is
# flushed there and never sent. The rest of the leader freezes as soon as
# the mark's session is gone (committed): the standbys then lack only
# what was written since the senders stopped, under Patroni's
# maximum_lag_on_failover, so the synchronous one is promoted. (That WAL
# is no acknowledged commit's, since commits wait for the standby. With
# 1 MB, a CI run once found no standby eligible, "My wal position exceeds
# maximum replication lag", for the whole 90 s; scripts/stack says why
# 64 MiB.)
new_day mark
wait_replayed "the day"
MARK_SQL="query LIKE '%pg_current_wal_insert_lsn%'"
marks() { q "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE $MARK_SQL"; }
# shellcheck disable=SC2317 # called through await's eval
mark_taken() {
    [ "$(marks)" -gt "$MARKS0" ] &&
        [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'payq-reconciler-replay'")" = 0 ]
}
MARKS0=$(marks)
pm=$(pgrep -f "postgres -D $SRC/.run/pg/$OLD " | head -n1)
for pid in $(pgrep -P "$pm"); do
    grep -qa walsender "/proc/$pid/cmdline" 2>/dev/null && SENDERS+=("$pid")
done
check "mark: the leader's WAL senders found" 2 "${#SENDERS[@]}"
kill -STOP "${SENDERS[@]}"
start_run mark
if await mark "a replay mark on the leader" mark_taken; then
    freeze_leader mark
    # Which way the run went on depends on which standby it read from.
    if has_logged mark ledger_replay_remark; then
        echo "# mark: the run read from the standby not promoted and took a new mark"
    else
        echo "# mark: the run read from the standby promoted"
    fi
    logged mark ledger_caught_up "reached its mark after the failover"
fi
release_senders
finish

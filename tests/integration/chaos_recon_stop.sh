#!/usr/bin/env bash
# chaos_recon_stop: SIGTERM reaches a reconciliation while one of its
# statements waits on the database (a CronJob's deadline, a node drained,
# systemd stopping the unit). Proves that the run stops at once rather
# than when the statement ends (up to an hour: the scan's and the
# invariants' timeout), so that it still records itself as failed, writes
# its report and exits 2 within the stopper's grace period, and that its
# statements end on the servers too (client_connection_check_interval)
# without moving the invariants' watermark. Before, the run waited for the
# statement, and a grace period ended it with SIGKILL: no record, no
# report, its statements left running.
#
# Two cases, each made certain, not raced, by a lock held in another
# session for far longer than the run may take to stop:
#  - the scan's thread waits: ACCESS EXCLUSIVE on payq.transfers, which
#    the standbys replay, holds the day's COPY before its first row;
#  - the main thread waits: a row lock on payq.recon_watermark holds
#    payq.verify_books() once the stream is read (the run's broker and
#    management connections closed) and the scan has ended.
# Then the lock goes, and a run of the same day is balanced. A third case
# stops a run while its record waits: the record is asked again within
# the stop's bound, not given up. Needs the stack up; leaves it as it was.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/recon_lib.sh
source "$(dirname "$0")/lib/recon_lib.sh"
recon_config
P=rs$RUN_ID
N=2000
CUR=EUR # the fast path's days are in EUR
CUR2=EUR
STOP_MAX=20 # seconds the run may take to stop (a poll is 0.1 s)

# The run's sessions still on any node.
run_sessions() { sessions_on_nodes "application_name LIKE 'payq-reconciler%'"; }

# shellcheck disable=SC2317
# on_broker PID: whether PID holds a connection to the broker or its
# management port (the run closes both once the stream and the queues are read).
on_broker() {
    ss -tnpH state established 2>/dev/null | grep "pid=$1," | grep -Eq ":($amqp_ports)\b"
}
amqp_ports=$(tr , '\n' <<<"$PAYQ_AMQP_URL,$PAYQ_AMQP_MGMT_URL" |
    sed -nE 's#.*:([0-9]+)(/.*)?$#\1#p' | sort -u | paste -sd'|')

trap 'release_lock; cleanup_common' EXIT

fresh_date
PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
    "$P-c" "$P" "$D" "$N" 2>>"$TMP/fastday.log" >/dev/null ||
    fail "reconday failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"

# stop_run CASE UNTIL RECORDED: starts a run of the day, waits until the
# shell condition UNTIL holds, sends SIGTERM and checks how the run ended;
# RECORDED: how many failed runs it recorded (0 when the lock holds the
# record too).
stop_run() {
    local case=$1 until=$2 recorded=$3 pid t0 rc waited ready=""
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
        --format json --out "$TMP/$case.json" 2>"$TMP/$case.err" &
    pid=$!
    for _ in $(seq 1 300); do
        eval "$until" && ready=1 && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$ready" ]; then
        fail "$case: the run never reached its wait"
        if kill -0 "$pid" 2>/dev/null; then
            echo "# $case: the run is still going"
        else
            wait "$pid"
            echo "# $case: the run had ended on its own, exit $?"
        fi
        tail -n 5 "$TMP/$case.err" | sed 's/^/#   /'
        why_failed "$TMP/$case.err"
        # Where it waits instead (seen twice in CI: still going, after one
        # ledger_caught_up, no session of it waiting on a lock).
        local port
        for port in $PG_PORTS; do
            node_sql "$port" "SELECT '$port ' || pg_is_in_recovery() || ' replayed ' ||
                    coalesce(pg_last_wal_replay_lsn()::text, '-') || ' ' ||
                    coalesce(string_agg(application_name || ' ' || state || ' ' ||
                        coalesce(wait_event_type || ':' || wait_event, 'on cpu') || ' ' ||
                        left(regexp_replace(query, '\s+', ' ', 'g'), 70), ' | '), 'no run session')
                FROM pg_stat_activity WHERE application_name LIKE 'payq-reconciler%'" 2>&1 |
                sed 's/^/#   node /'
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return
    fi
    sleep 1 # in the wait for a second: nothing the run does is what stops it
    t0=$(date +%s%N)
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null && [ $((($(date +%s%N) - t0) / 1000000000)) -lt $STOP_MAX ]; do
        sleep 0.1
    done
    waited=$((($(date +%s%N) - t0) / 1000000))
    if kill -0 "$pid" 2>/dev/null; then
        fail "$case: the run still waits ${STOP_MAX} s after SIGTERM, its lock still held"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
    echo "# $case: the run exited $waited ms after SIGTERM, the lock still held"
    check "$case: exit code" 2 "$rc"
    [ "$rc" = 2 ] || cut -c1-400 "$TMP/$case.err" | tail -n 8 | sed 's/^/# /'
    check "$case: the reason given" "payq-reconciler: stopped by SIGTERM or SIGINT before it finished" \
        "$(grep -v '^{' "$TMP/$case.err" | tail -n 1)"
    check "$case: the report's result" failed "$(jq -r .result "$TMP/$case.json" 2>/dev/null)"
    grep -q '"event":"pg_abandoned"' "$TMP/$case.err" &&
        ok "$case: the statement in flight was abandoned (pg_abandoned)" ||
        fail "$case: no pg_abandoned logged"
    check "$case: failed runs recorded" "$recorded" "$(records)"
    # The servers end the run's statements too, lock still held.
    local remaining=1
    for _ in $(seq 1 100); do
        remaining=$(run_sessions)
        [ "$remaining" = 0 ] && break
        sleep 0.1
    done
    check "$case: the run's sessions gone from every node within 10 s" 0 "$remaining"
    [ -n "$LOCKER_PID" ] && ok "$case: the lock was held throughout" || fail "$case: the lock went early"
}

# records: the day's runs recorded since the last call.
SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")
records() {
    q "SELECT count(*) FROM payq.reconciliations WHERE business_date = '$D' AND result = 'failed' AND seq > $SEQ0"
    SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")
}
WM0=$(q "SELECT row(r.*)::text FROM payq.recon_watermark r")

# 1. The scan's thread waits. The lock's record reaches the standbys once
# a commit flushes the WAL after it.
hold_lock "LOCK TABLE payq.transfers IN ACCESS EXCLUSIVE MODE"
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'payq.transfers'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
    sleep 0.1
done
q 'SELECT pg_current_xact_id()' >/dev/null || fail "commit on the primary"
# Every standby must have replayed the lock before the run starts, or a
# standby still catching up (after an earlier test froze it) scans the day
# unhindered and the run ends on its own.
wait_replayed "the lock"
# The run's record reads payq.transfers too: it gives up after its bound
# for a stopped run (5 s) and must not commit later, once the lock goes.
# shellcheck disable=SC2016 # expanded by stop_run's eval
stop_run scan '[ "$(waiting_on_lock payq-reconciler)" = 1 ]' 0
release_lock
sleep 2
check "scan: no record committed once the lock went" 0 "$(records)"

# 2. The main thread waits in the invariants' result: the stream read (no
# connection to the broker or its management port left), the scan ended.
hold_lock "SELECT * FROM payq.recon_watermark FOR UPDATE"
sleep 1
# shellcheck disable=SC2016 # expanded by stop_run's eval
stop_run invariants '[ "$(waiting_on_lock payq-reconciler-invariants)" = 1 ] && ! on_broker "$pid"' 1
check "the invariants' watermark did not move" "$WM0" "$(q "SELECT row(r.*)::text FROM payq.recon_watermark r")"
release_lock

# 3. The stop comes while the run's record waits (a SHARE lock holds its
# INSERT); the waiting session is then ended, its answer unknown as in a
# failover, and the lock goes. The record is asked again within a stopped
# run's bound (5 s) rather than given up: recorded once, exit 0. Before,
# the stop ended the retry and the run exited 2, unrecorded.
hold_lock "LOCK TABLE payq.reconciliations IN SHARE MODE"
sleep 1
SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")
"$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
    --format json --out "$TMP/record.json" 2>"$TMP/record.err" &
pid=$!
ready=""
for _ in $(seq 1 300); do
    [ "$(waiting_on_lock payq-reconciler)" = 1 ] && ready=1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -n "$ready" ]; then
    kill -TERM "$pid"
    sleep 1 # the stop is seen by now: what follows is asked under its bound
    q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'payq-reconciler' AND wait_event_type = 'Lock'" >/dev/null
    release_lock
    wait "$pid"
    rc=$?
    check "record: exit code" 0 "$rc"
    [ "$rc" = 0 ] || cut -c1-400 "$TMP/record.err" | tail -n 6 | sed 's/^/# /'
    check "record: the report says recorded, balanced" "balanced true" \
        "$(jq -r '"\(.result) \(.recorded)"' "$TMP/record.json" 2>/dev/null)"
    check "record: recorded once, balanced" "1 balanced" \
        "$(q "SELECT count(*) || ' ' || string_agg(result, ',') FROM payq.reconciliations WHERE business_date = '$D' AND seq > $SEQ0")"
    check "record: asked again after the stop (run_record_retry)" 1 \
        "$(grep -c '"event":"run_record_retry"' "$TMP/record.err")"
else
    fail "record: the run never waited on the lock"
    why_failed "$TMP/record.err"
    kill -9 "$pid" 2>/dev/null
    release_lock
fi
SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.reconciliations")

# 4. Nothing left behind: the same day reconciles.
recon "$D"
check "the day's run after the stops: exit code" 0 "$RC"
check "the day's run after the stops: result" balanced "$(jq -r .result "$TMP/$D.json" 2>/dev/null)"
check "the day's rows compared" "$N" "$(jq -r '.sources.ledger.rows' "$TMP/$D.json" 2>/dev/null)"
finish

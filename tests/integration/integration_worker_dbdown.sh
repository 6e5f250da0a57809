#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317,SC2001 # `cond && ok || fail` is safe (ok always succeeds); cleanup runs from a trap
# integration_worker_dbdown: a worker that cannot reach the database neither
# sits on messages nor ignores SIGTERM.
#   1. Database unreachable (nothing listens on its port) with 1,000
#      transfers queued: the worker takes none of them, and exits 0 within
#      3 s of SIGTERM.
#   2. The database stops answering a worker in the middle of a batch (its
#      login disabled, its backend terminated): it gives every delivery back
#      to the broker (measured from its log), and a healthy worker books all 1,000; the
#      first one books none, and exits 0 within 3 s of SIGTERM.
#   3. A worker with a wrong database password started before a healthy one:
#      all 1,000 transfers are booked by the healthy one within 30 s.
source "$(dirname "$0")/lib/common.sh"
N=1000
DEPTH_TOOL=$SRC/tests/tools/producer_stream_read.py
ROLE=payq_t$RUN_ID
depth() { /usr/bin/python3 "$DEPTH_TOOL" "$PAYQ_AMQP_URL" --depth payq.transfers 2>/dev/null; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

cleanup() {
    cleanup_common
    q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# wait_depth N SECONDS: until payq.transfers holds N ready messages.
wait_depth() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ "$(depth)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# stop_within PID SECONDS WHAT: SIGTERM, then the worker must exit 0 in time.
stop_within() {
    local t0 rc i
    t0=$(now_ms)
    kill -TERM "$1"
    for ((i = 0; i < $2 * 20; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$1" 2>/dev/null; then
        fail "$3: still running $2 s after SIGTERM"
        kill -9 "$1"
        wait "$1" 2>/dev/null
        return
    fi
    wait "$1"
    rc=$?
    echo "# $3: exited $rc, $(($(now_ms) - t0)) ms after SIGTERM"
    check "$3: exits 0 promptly on SIGTERM" 0 "$rc"
}

# booked_by PID: transfers a worker process committed (the batch journal).
booked_by() { q "SELECT coalesce(sum(posted + rejected), 0) FROM payq.batches WHERE $(by_worker "$1")"; }

[ "$(depth)" = 0 ] || fail "payq.transfers is not empty at the start ($(depth))"
P=dd$RUN_ID
gen_accounts "$P" 20 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
gen_transfers "$P" "$N" 20 5 >"$TMP/transfers"
"$BIN/payq-rawpub" <"$TMP/transfers" >/dev/null || fail "publish"
wait_depth "$N" 10 || fail "the $N transfers are not queued"

# 1. Nothing listens where the database should be.
port=$(free_port 29000)
PAYQ_PG_CONNINFO="host=127.0.0.1 port=$port dbname=payq user=payq_worker connect_timeout=3" \
    start_worker
down=$LAST_PID
sleep 2
kill -0 "$down" 2>/dev/null && ok "unreachable database: the worker keeps trying" ||
    fail "unreachable database: the worker exited"
check "unreachable database: the worker holds no delivery" "$N" "$(depth)"
stop_within "$down" 3 "unreachable database"

# 2. The database stops answering a worker holding a batch. A lock on the
# accounts keeps its batch in hand until the test pulls the plug.
q "CREATE ROLE $ROLE LOGIN PASSWORD 'pw$RUN_ID' IN ROLE payq_worker" >/dev/null
PGAPPNAME=payq-test-locker psql "$PAYQ_PG_PRIMARY" -X -q -c "BEGIN; LOCK TABLE payq.accounts IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(60); COMMIT;" >/dev/null 2>&1 &
BG_PIDS+=($!)
sleep 0.5
conninfo=$(sed "s/user=payq_worker password=[^ ]*/user=$ROLE password=pw$RUN_ID/" <<<"$PAYQ_PG_CONNINFO")
cut_log=$TMP/worker-${#BG_PIDS[@]}.log
PAYQ_PG_CONNINFO=$conninfo start_worker
cut=$LAST_PID
backend=
for ((i = 0; i < 100; i++)); do
    backend=$(q "SELECT pid FROM pg_stat_activity WHERE usename = '$ROLE' AND wait_event_type = 'Lock' LIMIT 1")
    [ -n "$backend" ] && break
    sleep 0.1
done
[ -n "$backend" ] && ok "cut off: the worker's batch waits on the lock" || fail "cut off: no batch in hand"
d=$(depth)
held=$((N - ${d:-N}))
echo "# cut off: the worker holds $held of $N messages"
[ "$held" -gt 0 ] && ok "cut off: the worker holds deliveries" || fail "cut off: the worker holds none"
t0=$(now_ms)
q "ALTER ROLE $ROLE NOLOGIN; SELECT pg_terminate_backend($backend)" >/dev/null
if wait_depth "$N" 10; then
    ok "cut off: every delivery given back to the broker"
    # The worker's own log says when it let go; the queue probe (a Python
    # start and an AMQP connection, about 1 s) only bounds it from above.
    lost=$(grep -m1 '"event":"pg_error"' "$cut_log" | jq -r .ts)
    gave=$(grep -m1 '"event":"deliveries_given_back"' "$cut_log" | jq -r .ts)
    [ -n "$lost" ] && [ -n "$gave" ] && gave=$(($(date -d "$gave" +%s%3N) - $(date -d "$lost" +%s%3N)))
    echo "# cut off: deliveries given back ${gave:-?} ms after the worker saw its connection die (all back in the queue $(($(now_ms) - t0)) ms after the test cut it off)"
else
    fail "cut off: deliveries not given back within 10 s (queue holds $(depth) of $N)"
fi
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'payq-test-locker'" >/dev/null
t0=$(now_ms)
timeout 60 "$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/healthy2.log"
echo "# cut off: the healthy worker drained in $(($(now_ms) - t0)) ms"
check "cut off: the cut-off worker booked nothing" 0 "$(booked_by "$cut")"
kill -0 "$cut" 2>/dev/null && ok "cut off: the worker still waits for the database" ||
    fail "cut off: the worker exited"
stop_within "$cut" 3 "cut off"
check_ledger "$P" "$TMP/transfers"

# 3. A wrong password, beside a healthy worker.
P2=dp$RUN_ID
gen_accounts "$P2" 20 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
bad_conninfo=$(sed "s/password=[^ ]*/password=wrong$RUN_ID/" <<<"$PAYQ_PG_CONNINFO")
PAYQ_PG_CONNINFO=$bad_conninfo start_worker
bad=$LAST_PID
sleep 1
gen_transfers "$P2" "$N" 20 9 >"$TMP/transfers2"
"$BIN/payq-rawpub" <"$TMP/transfers2" >/dev/null || fail "publish"
t0=$(now_ms)
start_worker
good=$LAST_PID
if wait_transfers "id LIKE '$P2-t-%'" "$N" 30; then
    ok "wrong password: all booked within 30 s ($(($(now_ms) - t0)) ms)"
else fail "wrong password: not all booked within 30 s"; fi
check_ledger "$P2" "$TMP/transfers2"
check "wrong password: the healthy worker booked every transfer" "$N" "$(booked_by "$good")"
grep -q '"sqlstate":"28P01"\|password authentication failed' "$TMP"/worker-*.log &&
    ok "wrong password: the refusal is logged" || fail "wrong password: no log of the refusal"
stop_within "$bad" 3 "wrong password"
stop_within "$good" 5 "healthy worker"
finish

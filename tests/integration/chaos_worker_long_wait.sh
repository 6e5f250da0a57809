#!/usr/bin/env bash
# chaos_worker_long_wait: a worker that waits on the database longer than two
# AMQP heartbeat intervals keeps its broker connections. librabbitmq-c sends
# heartbeats only from inside its own calls, and RabbitMQ closes a
# connection that sent nothing for two intervals ("missed heartbeats from
# client"): before the worker sent them itself while it waited
# (worker/main.c, keep_broker), such a wait cost it its consumer and its
# publishing connection, its deliveries went back to the queue while it
# still booked them, and the lost confirms of its outcome events made it
# give the next deliveries back too. The publishing connection also sat
# unheartbeated while the worker was idle.
#
# With amqp.heartbeat_s 2, after a first batch and 7 s idle, a session
# holds one account's row lock for 12 s
# while a pack of transfers that moves that account arrives: the worker's
# balance UPDATE waits for it (seen waiting on a Lock), six heartbeat
# intervals. Checks: every transfer booked once with the published sums,
# the batch committed after the lock's release in one attempt, and the
# worker's log shows no broker error, reconnection or give-back.
#
# Then the database becomes unreachable to the worker for 7 s (its role's
# login disabled, its session ended) while a pack arrives: the worker gives
# the deliveries back and retries with backoff, and that backoff keeps the
# publishing connection alive too, so that once the login is back the
# pack's outcome events go out on it without a broker error (before, it
# was closed by then, and the first events after an outage failed).
#
# Last, a reconnect waits on a host frozen before it answers the start-up,
# first in the worker's host list, for its connect_timeout (7 s): the
# connect heartbeats too, so the pack that found the worker's session gone
# is booked once it reaches the primary, with no broker error (before, the
# connect was libpq's blocking one and sent none).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=lw$RUN_ID
N=200
HOLD_S=12
ROLE=payq_lw$RUN_ID
# shellcheck disable=SC2317 # runs from the trap
cleanup() {
    cleanup_common
    q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
trap cleanup EXIT

sed 's/^\(  heartbeat_s:\).*/\1 2/' "$SRC/config/payq.yaml" >"$TMP/payq.yaml"
grep -q '^  heartbeat_s: 2$' "$TMP/payq.yaml" || fail "test config: heartbeat_s not set"

# A role of the worker's own, so that the test can cut this worker off.
q "CREATE ROLE $ROLE LOGIN PASSWORD 'pw$RUN_ID' IN ROLE payq_worker" >/dev/null
# shellcheck disable=SC2001 # a pattern, not a fixed string
conninfo=$(sed "s/user=payq_worker password=[^ ]*/user=$ROLE password=pw$RUN_ID/" <<<"$PAYQ_PG_CONNINFO")

gen_accounts "$P" 20 | "$BIN/payq-rawpub" >/dev/null || fail "publish accounts"
PAYQ_PG_CONNINFO=$conninfo start_worker --config "$TMP/payq.yaml"
WORKER=$LAST_PID
wait_for() { # SQL: until it returns t, up to 30 s
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(q "$1")" = t ] && return 0
        sleep 0.1
    done
    return 1
}
wait_for "SELECT count(*) = 20 FROM payq.accounts WHERE id LIKE '$P-acct-%'" ||
    fail "the accounts were not opened"
# A first batch, away from acct-1, so that the worker's publishing
# connection (its outcome events) is open too when the wait begins.
awk -v p="$P" 'BEGIN { for (i = 1; i <= 10; i++)
    printf "transfer\t{\"id\":\"%s-w-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"5\",\"currency\":\"EUR\"}\n", p, i, p, i + 2, p, i + 3 }' |
    "$BIN/payq-rawpub" >/dev/null || fail "publish the first batch"
wait_transfers "id LIKE '$P-w-%'" 10 30 || fail "the first batch was not booked"
# Idle for three heartbeat intervals: nothing is published meanwhile, and
# the publishing connection must be alive for the events below.
sleep 7

# The lock holder: FOR UPDATE on one account, then a sleep in the same
# transaction. Every transfer below moves that account, so the batch's
# UPDATE must wait for it whatever order it takes the rows in.
psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 \
    -c "SET application_name = 'payq-test-lock'" \
    -c "BEGIN" -c "SELECT id FROM payq.accounts WHERE id = '$P-acct-1' FOR UPDATE" \
    -c "SELECT pg_sleep($HOLD_S)" -c "COMMIT" >"$TMP/lock.out" 2>&1 &
LOCKER=$!
BG_PIDS+=("$LOCKER")
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'payq-test-lock'
          AND query LIKE '%pg_sleep%' AND state = 'active'" || fail "the lock was not taken"
locked_at=$(q "SELECT extract(epoch FROM clock_timestamp())")

awk -v p="$P" -v n="$N" 'BEGIN {
    for (i = 1; i <= n; i++) {
        c = i % 19 + 2
        if (i % 2) printf "{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-acct-1\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"%d\",\"currency\":\"EUR\"}\n", p, i, p, p, c, i
        else printf "{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-1\",\"amount\":\"%d\",\"currency\":\"EUR\"}\n", p, i, p, c, p, i
    } }' >"$TMP/pack"
printf 'transfers\t@%s\n' "$TMP/pack" | "$BIN/payq-rawpub" >/dev/null || fail "publish the pack"
if wait_for "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'payq-worker'
             AND wait_event_type = 'Lock'"; then
    ok "the worker's batch waits for the row lock"
else
    fail "the worker never waited on the lock"
fi
wait "$LOCKER"
check "the lock holder committed after ${HOLD_S} s" "0" "$?"
wait_transfers "id LIKE '$P-t-%'" "$N" 60 || fail "not every transfer was booked"

check "transfers booked" "$N|$N" \
    "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'posted')
          FROM payq.transfers WHERE id LIKE '$P-t-%'")"
check "the account's balances are the published sums" "10000|10100" \
    "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-acct-1'")"
waited=$(q "SELECT min(extract(epoch FROM committed_at)) - $locked_at >= $HOLD_S - 2
            FROM payq.transfers WHERE id LIKE '$P-t-%'")
check "the batch committed only after the lock's release (a wait of 5+ heartbeats)" "t" "$waited"
check "every batch committed at its first attempt" "0" \
    "$(q "SELECT count(*) FROM payq.batches
          WHERE committed_at >= to_timestamp($locked_at) AND attempt > 1")"

log=$(cat "$TMP"/worker-*.log)
for ev in amqp_error amqp_reconnected deliveries_given_back result_events_failed; do
    check "no $ev in the worker's log" "0" "$(grep -c "\"event\":\"$ev\"" <<<"$log")"
done
seen=$(wc -l <<<"$log")

# 2. The database unreachable for 7 s while a pack arrives.
q "ALTER ROLE $ROLE NOLOGIN; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$ROLE'" >/dev/null
awk -v p="$P" 'BEGIN { for (i = 1; i <= 20; i++)
    printf "transfer\t{\"id\":\"%s-d-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"7\",\"currency\":\"EUR\"}\n", p, i, p, i % 19 + 1, p, i % 19 + 2 }' |
    "$BIN/payq-rawpub" >/dev/null || fail "publish during the outage"
gave_back=1
for ((i = 0; i < 100; i++)); do
    grep -q '"event":"deliveries_given_back"' "$TMP"/worker-*.log && gave_back=0 && break
    sleep 0.1
done
check "cut off: the worker gave the deliveries back" 0 "$gave_back"
sleep 7
q "ALTER ROLE $ROLE LOGIN" >/dev/null
wait_transfers "id LIKE '$P-d-%'" 20 60 || fail "the pack sent during the outage was not booked"
check "the pack sent during the outage: booked once" "20|140" \
    "$(q "SELECT count(*) || '|' || sum(amount) FROM payq.transfers WHERE id LIKE '$P-d-%'")"

kill -TERM "$WORKER"
wait "$WORKER"
check "worker stopped gracefully (exit 0)" "0" "$?"
log=$(cat "$TMP"/worker-*.log | tail -n +$((seen + 1)))
for ev in amqp_error result_events_failed outbox_retry; do
    check "after the outage: no $ev in the worker's log" "0" "$(grep -c "\"event\":\"$ev\"" <<<"$log")"
done

# 3. A reconnect that waits on a host frozen before it answers the
# start-up. A listener first in the worker's host list refuses while the
# worker starts (a bound socket that does not listen), then accepts and
# never answers; the worker's session is ended and a pack arrives, so its
# reconnect waits out that host's connect_timeout (7 s, three heartbeat
# intervals) before it reaches the primary.
python3 -c '
import signal, socket, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
signal.sigwait([signal.SIGUSR1])
s.listen(16)
time.sleep(600)' >"$TMP/hung.port" &
HUNG=$!
BG_PIDS+=("$HUNG")
for ((i = 0; i < 50; i++)); do [ -s "$TMP/hung.port" ] && break; sleep 0.1; done
hung_port=$(cat "$TMP/hung.port")
[ -n "$hung_port" ] || fail "the frozen host's port"
# shellcheck disable=SC2001 # patterns, not fixed strings
conninfo3=$(sed -e "s/host=\([^ ]*\)/host=127.0.0.1,\1/" -e "s/port=\([^ ]*\)/port=$hung_port,\1/" \
    -e "s/connect_timeout=[0-9]*//" <<<"$conninfo")" connect_timeout=7"
PAYQ_PG_CONNINFO=$conninfo3 start_worker --config "$TMP/payq.yaml"
WORKER=$LAST_PID
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE usename = '$ROLE'" ||
    fail "the third worker did not connect"
sleep 1 # its consumer opens after its database session
kill -USR1 "$HUNG"
seen=$(cat "$TMP"/worker-*.log | wc -l)
cut_at=$(q "SELECT extract(epoch FROM clock_timestamp())
            FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$ROLE') t
            LIMIT 1")
awk -v p="$P" 'BEGIN { for (i = 1; i <= 20; i++)
    printf "transfer\t{\"id\":\"%s-h-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"3\",\"currency\":\"EUR\"}\n", p, i, p, i % 19 + 1, p, i % 19 + 2 }' |
    "$BIN/payq-rawpub" >/dev/null || fail "publish after the cut"
wait_transfers "id LIKE '$P-h-%'" 20 60 || fail "the pack after the cut was not booked"
check "the pack after the cut: booked once" "20|60" \
    "$(q "SELECT count(*) || '|' || sum(amount) FROM payq.transfers WHERE id LIKE '$P-h-%'")"
check "its reconnect waited out the frozen host (6+ s)" "t" \
    "$(q "SELECT min(extract(epoch FROM committed_at)) - $cut_at >= 6
          FROM payq.transfers WHERE id LIKE '$P-h-%'")"
# Idle a little before the stop: a worker whose consumer the broker closed
# meanwhile reads that only on its next wait for deliveries.
sleep 3
kill -TERM "$WORKER"
wait "$WORKER"
check "third worker stopped gracefully (exit 0)" "0" "$?"
log=$(cat "$TMP"/worker-*.log | tail -n +$((seen + 1)))
for ev in amqp_error amqp_reconnected deliveries_given_back result_events_failed outbox_retry; do
    check "while reconnecting past the frozen host: no $ev in the worker's log" "0" \
        "$(grep -c "\"event\":\"$ev\"" <<<"$log")"
done
finish

#!/usr/bin/env bash
# integration_worker_idrace: the ledger insert's id race and the prepared
# statements' sessions (worker/ledger.c, insert_transfers and prepare).
#  1. The batch starts with a transfer booked before, published again (not
#     redelivered, so step 3 does not check its id): the ledger INSERT's
#     primary key refuses it and the batch is applied again at once with
#     every id checked (logged batch_recheck). Another session meanwhile
#     holds an uncommitted row with one of the batch's transfer ids: that
#     attempt's INSERT waits for it, is refused once it commits (23505 even
#     with every id checked), and the whole batch rolls back and is retried
#     (logged batch_race). The retry finds the id taken with another payload:
#     one conflict recorded, the booked transfer a duplicate, the other 199
#     transfers posted once, every balance equal to the model without the
#     raced transfer (the earlier attempts' balance moves are gone).
#  2. The worker's backend is terminated between batches: the worker
#     reconnects, prepares its statements again in the new session and books
#     the next batch (a session without them would fail every batch).
#  3. Part 2's first 50 transfers published again (every id booked, none
#     redelivered) to a new worker: one batch applied again with every id
#     read (payq_worker_batch_rechecks_total 1), nothing booked twice, every
#     balance unchanged.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=ir$RUN_ID
X=$P-t-77

gen_transfers "$P" 200 10 5 >"$TMP/transfers"
# The booked transfer: the file's first, under an id of its own.
sed -n "1s/\"id\":\"$P-t-1\"/\"id\":\"$P-t-0\"/p" "$TMP/transfers" >"$TMP/booked"
{ gen_accounts "$P" 10; cat "$TMP/booked"; } | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
check "the booked transfer posted" "1" "$(q "SELECT count(*) FROM payq.transfers WHERE id = '$P-t-0'")"

# 1. The racing row, committed only once a worker backend waits on a lock
# (its INSERT on the row's id), or after 30 s. A rejected row, on a date no
# test reconciles: it moves no balance, so the ledger stays reconcilable for
# the tests that run after this one.
psql "$PAYQ_PG_PRIMARY" -X -q -v ON_ERROR_STOP=1 >"$TMP/racer.out" 2>&1 <<SQL &
BEGIN;
INSERT INTO payq.transfers (id, debit_account, credit_account, amount, currency, business_date,
                            status, reason, payload_sha256)
VALUES ('$X', '$P-acct-1', '$P-acct-2', 1, 'EUR', '2000-01-01', 'rejected', 'account_not_found',
        decode(repeat('ab', 32), 'hex'));
DO \$\$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity
                          WHERE usename = 'payq_worker' AND wait_event_type = 'Lock');
        PERFORM pg_sleep(0.1);
    END LOOP;
END
\$\$;
COMMIT;
SQL
racer=$!
BG_PIDS+=("$racer")
for ((i = 0; i < 50; i++)); do
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_stat_clear_snapshot%' AND pid <> pg_backend_pid()")" = 1 ] && break
    sleep 0.1
done
since=$(q "SELECT clock_timestamp()")
cat "$TMP/booked" "$TMP/transfers" | "$BIN/payq-rawpub" >/dev/null || fail "publish"
"$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/w1.log"
check "worker exits cleanly" "0" "$?"
wait "$racer"
check "the racing session committed" "0" "$?"
if grep -q '"event":"batch_recheck"' "$TMP/w1.log"; then
    ok "the worker's insert met the booked id and applied the batch again, every id checked"
else
    fail "no batch_recheck in the worker log: the unchecked duplicate was not exercised"
fi
if grep -q '"event":"batch_race"' "$TMP/w1.log"; then
    ok "the worker's insert met the racing row and retried the batch"
else
    fail "no batch_race in the worker log: the race was not exercised"
fi
check "the worker counted one batch applied again" "1" \
    "$(grep -o '[0-9]* batches rechecked' "$TMP/w1.log" | grep -o '^[0-9]*')"
check "the booked transfer is still booked once, with its first batch" "1" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id = '$P-t-0'")"
check "the journal: 199 posted, the booked one a duplicate, the raced one a conflict" "199|1|1" \
    "$(q "SELECT sum(posted) || '|' || sum(duplicate) || '|' || sum(conflict) FROM payq.batches
          WHERE committed_at > '$since'")"
check "the raced id is the racing session's row" "1|ab" \
    "$(q "SELECT amount || '|' || left(encode(payload_sha256, 'hex'), 2) FROM payq.transfers WHERE id = '$X'")"
check "the worker recorded the raced id as a conflict, once" "1" \
    "$(q "SELECT count(*) FROM payq.conflicts WHERE kind = 'transfer' AND entity_id = '$X'")"
{ cat "$TMP/booked"; grep -v "\"id\":\"$X\"" "$TMP/transfers"; } >"$TMP/others"
check "the other transfers posted once, and the booked one" "200" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%' AND id <> '$X' AND status = 'posted'")"
model_balances "$TMP/others" >"$TMP/model"
if diff -q "$TMP/model" <(ledger_balances "$P") >/dev/null; then
    ok "every balance equals the model without the raced transfer"
else
    fail "balances differ from the model: $(diff "$TMP/model" <(ledger_balances "$P") | head -4 | tr '\n' ' ')"
fi

# 2. A new session between two batches.
sed "s/\"id\":\"$P-t-/\"id\":\"$P-u-/" "$TMP/transfers" | head -50 >"$TMP/before"
sed "s/\"id\":\"$P-t-/\"id\":\"$P-v-/" "$TMP/transfers" | tail -50 >"$TMP/after"
booked() { q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-$1-%'"; }
wait_booked() {
    for ((i = 0; i < 300; i++)); do
        [ "$(booked "$1")" = 50 ] && return 0
        sleep 0.1
    done
    return 1
}
start_worker --exit-when-idle 15000
w=$LAST_PID
"$BIN/payq-rawpub" <"$TMP/before" >/dev/null || fail "publish before"
if wait_booked u; then ok "first batch booked"; else fail "first batch not booked ($(booked u) of 50)"; fi
check "the worker's backend terminated" "t" \
    "$(q "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'payq_worker'")"
"$BIN/payq-rawpub" <"$TMP/after" >/dev/null || fail "publish after"
if wait_booked v; then
    ok "next batch booked on a new session"
else
    fail "next batch not booked ($(booked v) of 50)"
fi
kill -TERM "$w"
for ((i = 0; i < 100; i++)); do kill -0 "$w" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$w" 2>/dev/null; then
    fail "the worker did not stop within 10 s of SIGTERM"
else
    wait "$w"
    check "worker stops cleanly" "0" "$?"
    BG_PIDS=()
fi
check "no statement missing from the new session" "0" \
    "$(cat "$TMP"/w1.log "$TMP"/worker-*.log | grep -c '"sqlstate":"26000"')"

# 3. Published again, queued before the worker starts (one batch: a batch of
# one message always reads every id).
balances=$(ledger_balances "$P")
"$BIN/payq-rawpub" <"$TMP/before" >/dev/null || fail "publish again"
MPORT=$(free_port $((17895 + ${PAYQ_STACK_PORT_OFFSET:-0})))
start_worker --exit-when-idle 15000 --metrics-listen "127.0.0.1:$MPORT"
w=$LAST_PID
rechecks() {
    curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" |
        awk '$1 == "payq_worker_batch_rechecks_total" { print $2 }'
}
wait_queue_empty payq.transfers 60 || fail "the republished transfers were not consumed"
for ((i = 0; i < 50; i++)); do
    [ "$(rechecks)" = 1 ] && break
    sleep 0.1
done
check "one batch applied again with every id read" "1" "$(rechecks)"
check "nothing booked twice" "50" "$(booked u)"
check "every balance unchanged" "$balances" "$(ledger_balances "$P")"
kill -TERM "$w"
wait "$w"
check "worker stops cleanly" "0" "$?"
BG_PIDS=()
finish

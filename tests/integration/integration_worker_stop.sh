#!/usr/bin/env bash
# integration_worker_stop: SIGTERM in the middle of a run finishes and acks
# the current batch and exits 0: nothing committed is left unacked, so the
# next worker redelivers nothing that was already applied. A second signal
# exits at once. Also checks the Prometheus endpoint, and that a bad
# --exit-when-idle is refused before the worker takes anything.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
P=st$RUN_ID
N=50000
for bad in 5s 0 -1 99999999999; do
    "$BIN/payq-worker" --exit-when-idle "$bad" 2>"$TMP/bad.log"
    check "--exit-when-idle $bad: exit 2" "2" "$?"
    grep -q "invalid --exit-when-idle \"$bad\": must be whole milliseconds" "$TMP/bad.log" &&
        ok "--exit-when-idle $bad: named in the error" || fail "--exit-when-idle $bad: $(cat "$TMP/bad.log")"
done
gen_accounts "$P" 50 | "$BIN/payq-rawpub" >/dev/null
gen_transfers "$P" "$N" 50 3 >"$TMP/transfers"
"$BIN/payq-rawpub" <"$TMP/transfers" >/dev/null
"$BIN/payq-worker" 2>"$TMP/w1.log" &
w1=$!
sleep 1.5
kill -TERM "$w1"
wait "$w1"
check "first worker exits 0 on SIGTERM" "0" "$?"
mid=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")
echo "applied before the stop: $mid"
port=$((20000 + RANDOM % 5000))
"$BIN/payq-worker" --metrics-listen 127.0.0.1:$port --exit-when-idle 3000 2>"$TMP/w2.log" &
w2=$!
sleep 1
curl -sf "http://127.0.0.1:$port/metrics" >"$TMP/metrics.early" && ok "metrics endpoint answers" || fail "metrics endpoint"
grep -q '^payq_worker_transfers_total{status="posted"}' "$TMP/metrics.early" && ok "metrics list posted transfers" || fail "no transfers metric"
# Poll the metrics while the second worker drains, keeping the last scrape.
while kill -0 "$w2" 2>/dev/null; do
    curl -sf "http://127.0.0.1:$port/metrics" >"$TMP/metrics.new" && mv "$TMP/metrics.new" "$TMP/metrics"
    sleep 0.5
done
wait "$w2"
check "second worker drains and exits 0" "0" "$?"
check "no committed batch was redelivered (duplicates seen by worker 2)" "0" \
    "$(awk '/^payq_worker_transfers_total\{status="duplicate"\}/ { print $2 }' "$TMP/metrics")"
check "worker 2 posted exactly the remainder" "$((N - mid))" \
    "$(awk '/^payq_worker_transfers_total\{status="posted"\}/ { print $2 }' "$TMP/metrics")"
check_ledger "$P" "$TMP/transfers"

# Graceful means the batch in hand is finished first: hold a lock the batch
# needs, send SIGTERM, and the worker must still be waiting; a second signal
# then exits at once with 130 ("you insist").
psql "$PAYQ_PG_PRIMARY" -X -q -c "BEGIN; LOCK TABLE payq.accounts IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(8); COMMIT;" >/dev/null 2>&1 &
locker=$!
sleep 0.5
printf 'transfer\t{"id":"%s-late","debit_account":"%s-acct-1","credit_account":"%s-acct-2","amount":"5","currency":"EUR"}\n' \
    "$P" "$P" "$P" | "$BIN/payq-rawpub" >/dev/null
"$BIN/payq-worker" 2>"$TMP/w3.log" &
w3=$!
sleep 1.5
kill -TERM "$w3"
sleep 1
kill -0 "$w3" 2>/dev/null && ok "after one SIGTERM the worker still finishes its blocked batch" ||
    fail "worker exited with its batch unfinished"
kill -TERM "$w3"
wait "$w3"
check "a second signal exits at once with 130" "130" "$?"
wait "$locker"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w4.log"
check "the interrupted transfer is applied by the next worker" "posted" \
    "$(q "SELECT status FROM payq.transfers WHERE id = '$P-late'")"
finish

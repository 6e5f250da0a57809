#!/usr/bin/env bash
# chaos_worker_failover: `scripts/stack failover` (kill -9 the Patroni
# leader's Patroni and postmaster; Patroni promotes the synchronous standby)
# in the middle of a run with 2 workers. The workers reconnect through the
# multi-host conninfo and retry their batches; then every id is on the
# promoted primary exactly once and the balances equal the model.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=cf$RUN_ID
N=60000

gen_accounts "$P" 100 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
# Accounts first: competing consumers give no order between messages.
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
gen_transfers "$P" "$N" 100 23 >"$TMP/transfers"
publish_paced "$TMP/transfers" 10 0.5
publisher=$LAST_PID
start_worker
w1=$LAST_PID
start_worker
w2=$LAST_PID
sleep 2
before=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")
echo "rows before failover: $before"
"$SRC/scripts/stack" failover >"$TMP/failover.log" 2>&1
check "scripts/stack failover succeeded" "0" "$?"
eval "$("$SRC/scripts/stack" env)"
wait "$publisher"
check "publisher succeeded" "0" "$?"
wait_transfers "id LIKE '$P-t-%'" "$N" 300 || fail "not every transfer booked within 300 s"
kill -TERM "$w1" "$w2"
wait "$w1"; r1=$?
wait "$w2"; r2=$?
check "workers stop gracefully after the failover" "0 0" "$r1 $r2"
check "queried node is the promoted primary" "f" "$(q "SELECT pg_is_in_recovery()")"
check_ledger "$P" "$TMP/transfers"
grep -q '"event":"pg_error"\|pg_connect_failed' "$TMP"/worker-*.log && ok "workers saw the failover and retried" ||
    echo "note: no worker saw the failover (it happened between batches)"
finish

#!/usr/bin/env bash
# chaos_worker_kill: while 3 workers drain 200,000 transfers, kill -9 a
# random worker every ~1.5 s and start a new one (at least 10 kills). Then
# every id is in the ledger exactly once, the posted sum and every balance
# equal the model, and debits equal credits.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
P=ck$RUN_ID
N=${CHAOS_TRANSFERS:-200000}
KILLS_MIN=10

gen_accounts "$P" 200 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
# Accounts first: competing consumers give no order between messages.
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
gen_transfers "$P" "$N" 200 11 >"$TMP/transfers"

# Publish in 20 chunks while workers are killed.
publish_under_kills "$TMP/transfers" 20 0.7 "$KILLS_MIN" 600

# Let the survivors drain, then stop them gracefully.
wait_transfers "id LIKE '$P-t-%'" "$N" 300 || fail "not every transfer booked within 300 s"
for w in "${workers[@]}"; do kill -TERM "$w" 2>/dev/null; done
for w in "${workers[@]}"; do wait "$w"; done
check_ledger "$P" "$TMP/transfers"
check "redeliveries caused no conflicts" "0" "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id LIKE '$P-%'")"
check "no worker logged an error-level problem other than lost connections" "0" \
    "$(grep '"level":"error"' "$TMP/workers.log" | grep -vc 'amqp\|pg_connect\|connection' )"
finish

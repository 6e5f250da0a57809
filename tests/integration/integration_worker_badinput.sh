#!/usr/bin/env bash
# integration_worker_badinput: every invalid transfer and account fixture,
# published straight to the exchange as an upstream system could, ends in
# payq.dead with its reason in the x-payq-reason header and a row in
# payq.dead_letters; valid traffic published around it is applied normally.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=bi$RUN_ID
FIX=$SRC/tests/fixtures/messages/invalid
MGMT=$PAYQ_AMQP_MGMT_URL

# Start from an empty payq.dead so every message in it afterwards is ours.
mgmt_curl "$MGMT/api/queues/payq/payq.dead/contents" -sf -X DELETE >/dev/null || fail "purge payq.dead"

n=0
: >"$TMP/expected_reasons"
{
    gen_accounts "$P" 10
    i=0
    for f in "$FIX"/transfer_*.json "$FIX"/account_*.json; do
        kind=$(basename "$f" | cut -d_ -f1)
        i=$((i + 1))
        printf 'transfer\t{"id":"%s-ok-%d","debit_account":"%s-acct-1","credit_account":"%s-acct-2","amount":"%d","currency":"EUR"}\n' \
            "$P" "$i" "$P" "$P" "$i"
        printf '%s\t@%s\n' "$kind" "$f"
        sed 's/^[^:]*: //' "${f%.json}.expect" >>"$TMP/expected_reasons"
    done
    echo "$i" >"$TMP/count"
} >"$TMP/stream"
n=$(cat "$TMP/count")
"$BIN/payq-rawpub" <"$TMP/stream" >/dev/null || fail "publish"
"$BIN/payq-worker" --exit-when-idle 2000 2>"$TMP/worker.log"
check "worker exits 0" "0" "$?"
check "valid transfers around the bad ones all posted" "$n" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-ok-%' AND status = 'posted'")"
check "valid transfers moved the balance" "$((n * (n + 1) / 2))" \
    "$(q "SELECT debits_posted FROM payq.accounts WHERE id = '$P-acct-1'")"

sleep 1
mgmt_curl "$MGMT/api/queues/payq/payq.dead/get" -sf -X POST -H 'content-type: application/json' \
    -d '{"count":2000,"ackmode":"ack_requeue_false","encoding":"auto","truncate":50000}' >"$TMP/dead.json" ||
    fail "read payq.dead"
check "every invalid fixture reached payq.dead" "$n" "$(jq length "$TMP/dead.json")"
jq -r '.[].properties.headers["x-payq-reason"]' "$TMP/dead.json" | LC_ALL=C sort >"$TMP/got_reasons"
LC_ALL=C sort "$TMP/expected_reasons" >"$TMP/want_reasons"
if diff -q "$TMP/want_reasons" "$TMP/got_reasons" >/dev/null; then
    ok "each dead letter carries its fixture's reason"
else
    fail "reasons differ: $(diff "$TMP/want_reasons" "$TMP/got_reasons" | head -6 | tr '\n' ' ')"
fi
recorded=0
for f in "$FIX"/transfer_*.json "$FIX"/account_*.json; do
    h=$(sha256sum "$f" | cut -d' ' -f1)
    r=$(q "SELECT reason FROM payq.dead_letters WHERE body_sha256 = decode('$h', 'hex')")
    want=$(sed 's/^[^:]*: //' "${f%.json}.expect")
    [ "$r" == "$want" ] && recorded=$((recorded + 1)) || echo "  dead_letters for $(basename "$f"): [$r] want [$want]"
done
check "every dead letter is recorded in payq.dead_letters with its reason" "$n" "$recorded"
finish

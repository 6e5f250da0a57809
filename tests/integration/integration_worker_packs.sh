#!/usr/bin/env bash
# integration_worker_packs: packs (routing key "transfers", JSON Lines of
# transfers) published straight to the exchange. Each line is applied as a
# transfer of its own: a bad line is dead-lettered alone with its reason, a
# pack published twice changes nothing, a badly framed pack is dead-lettered
# whole, and a full 1,000-line pack posts exactly its sum.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=pk$RUN_ID
MGMT=$PAYQ_AMQP_MGMT_URL

mgmt_curl "$MGMT/api/queues/payq/payq.dead/contents" -sf -X DELETE >/dev/null || fail "purge payq.dead"

tr_line() { # ID DEBIT CREDIT AMOUNT
    printf '{"id":"%s","debit_account":"%s-acct-%d","credit_account":"%s-acct-%d","amount":"%s","currency":"EUR"}' \
        "$1" "$P" "$2" "$P" "$3" "$4"
}
BAD=$(tr_line "$P-bad" 1 2 0)
{
    tr_line "$P-a1" 1 2 100; echo
    tr_line "$P-a2" 1 2 200; echo
    echo "$BAD"
    tr_line "$P-a3" 2 1 300
} >"$TMP/pack1"
{
    tr_line "$P-f1" 1 2 5; echo; echo
    tr_line "$P-f2" 1 2 7; echo
} >"$TMP/pack_framing"
awk -v p="$P" 'BEGIN { for (i = 1; i <= 1001; i++)
    printf "{\"id\":\"%s-o%d\",\"debit_account\":\"%s-acct-3\",\"credit_account\":\"%s-acct-4\",\"amount\":\"%d\",\"currency\":\"EUR\"}\n", p, i, p, p, i }' \
    >"$TMP/pack_over"
head -n 1000 "$TMP/pack_over" | sed "s/-o\([0-9]*\)\"/-k\1\"/" >"$TMP/pack_full"
{
    gen_accounts "$P" 4
    printf 'transfers\t@%s\n' "$TMP/pack1" "$TMP/pack1" "$TMP/pack_framing" "$TMP/pack_over" \
        "$TMP/pack_full"
} >"$TMP/stream"
"$BIN/payq-rawpub" <"$TMP/stream" >"$TMP/rawpub.out" 2>&1
check "rawpub confirmed the 4 accounts and 5 packs" "published 9" "$(cat "$TMP/rawpub.out")"
"$BIN/payq-worker" --exit-when-idle 2000 2>"$TMP/worker.log"
check "worker exits 0" "0" "$?"
# wait_queue_empty, not one read of queue_depth: that count can be a tick
# old and still show the 9 messages the worker acked (seen in CI).
if wait_queue_empty payq.transfers 15; then
    ok "nothing left in payq.transfers"
else
    fail "payq.transfers still holds $(queue_depth payq.transfers)"
fi

check "the good lines of pack 1 posted once, though it came twice" "3 600" \
    "$(q "SELECT count(*) || ' ' || sum(amount) FROM payq.transfers WHERE id IN ('$P-a1','$P-a2','$P-a3') AND status = 'posted'")"
check "account 1: debits 300, credits 300" "300 300" \
    "$(q "SELECT debits_posted || ' ' || credits_posted FROM payq.accounts WHERE id = '$P-acct-1'")"
check "the bad line is not in the ledger" "0" "$(q "SELECT count(*) FROM payq.transfers WHERE id = '$P-bad'")"
h=$(printf '%s' "$BAD" | sha256sum | cut -d' ' -f1)
check "the bad line alone is recorded as a dead letter, keyed by its own bytes" "$P-bad amount must be at least 1" \
    "$(q "SELECT message_id || ' ' || field || ' ' || reason FROM payq.dead_letters WHERE body_sha256 = decode('$h', 'hex')")"
check "nothing of the badly framed pack posted" "0" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id IN ('$P-f1','$P-f2')")"
h=$(sha256sum "$TMP/pack_framing" | cut -d' ' -f1)
check "the badly framed pack is one dead letter with the line it trips on" "line 2 of the pack is empty" \
    "$(q "SELECT reason FROM payq.dead_letters WHERE body_sha256 = decode('$h', 'hex')")"
check "nothing of the 1,001-line pack posted" "0" "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-o%'")"
h=$(sha256sum "$TMP/pack_over" | cut -d' ' -f1)
check "the 1,001-line pack is one dead letter" "a pack must not hold more than 1000 transfers" \
    "$(q "SELECT reason FROM payq.dead_letters WHERE body_sha256 = decode('$h', 'hex')")"
check "the 1,000-line pack posted every line: count and sum" "1000 500500" \
    "$(q "SELECT count(*) || ' ' || sum(amount) FROM payq.transfers WHERE id LIKE '$P-k%' AND status = 'posted'")"
check "account 4 credited exactly that sum" "500500" \
    "$(q "SELECT credits_posted FROM payq.accounts WHERE id = '$P-acct-4'")"

sleep 1
mgmt_curl "$MGMT/api/queues/payq/payq.dead/get" -sf -X POST -H 'content-type: application/json' \
    -d '{"count":100,"ackmode":"ack_requeue_false","encoding":"auto","truncate":5000000}' >"$TMP/dead.json" ||
    fail "read payq.dead"
# Only ours: a run that failed earlier may have left its packs behind.
jq --arg p "\"$P-" '[.[] | select(.payload | contains($p))]' "$TMP/dead.json" >"$TMP/ours.json"
check "payq.dead got the bad line twice (one per delivery of pack 1) and the two bad packs" \
    "a pack must not hold more than 1000 transfers|line 2 of the pack is empty|must be at least 1|must be at least 1" \
    "$(jq -r '[.[].properties.headers["x-payq-reason"]] | sort | join("|")' "$TMP/ours.json")"
check "the bad line's dead letter is a transfer message holding just that line" "transfer $BAD" \
    "$(jq -r '.[] | select(.properties.headers["x-payq-reason"] == "must be at least 1") | .routing_key + " " + .payload' "$TMP/ours.json" | head -n 1)"
check "a badly framed pack is dead-lettered as the pack it was" "transfers" \
    "$(jq -r '.[] | select(.properties.headers["x-payq-reason"] == "line 2 of the pack is empty") | .routing_key' "$TMP/ours.json")"
finish

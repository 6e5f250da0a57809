#!/usr/bin/env bash
# integration_worker_acache: the worker's account cache (worker/acache.c)
# changes no outcome. One worker process books a first batch (which puts its
# accounts in the cache), then a second batch of two transfers from the same
# unrestricted account whose balance is near the bigint limit: with the
# cache, the batch sees no balance, posts both in memory, the UPDATE
# overflows, the batch is split, and each transfer alone reads its exact
# balance: the first posts, the second is rejected as overflow, exactly as
# without the cache. A restricted account found through the cache is still
# locked and read: a transfer beyond its credits is rejected. The worker's
# log proves the cache answered (hits > 0) and that the split happened.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=ac$RUN_ID

tr_() { # id debit credit amount
    printf '{"id":"%s-%s","debit_account":"%s-%s","credit_account":"%s-%s","amount":"%s","currency":"EUR"}\n' \
        "$P" "$1" "$P" "$2" "$P" "$3" "$4"
}
status_of() { q "SELECT status || coalesce(':' || reason, '') FROM payq.transfers WHERE id = '$P-$1'"; }
wait_rows() { wait_transfers "id LIKE '$P-%'" "$1" 60; } # N: up to 60 s

{
    printf 'account\t{"id":"%s-X1","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-X2","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-R","currency":"EUR","flags":["debits_must_not_exceed_credits"]}\n' "$P"
} | "$BIN/payq-rawpub" >/dev/null || fail "publish accounts"
{
    # amounts have at most 18 digits: nine of them bring X1 near the limit
    for i in 1 2 3 4 5 6 7 8 9; do tr_ "a$i" X1 X2 999999999999999999; done
    tr_ r1 X2 R 100
} >"$TMP/pack_a"
printf 'transfers\t@%s\n' "$TMP/pack_a" | "$BIN/payq-rawpub" >/dev/null || fail "publish pack a"
start_worker
wait_rows 10 || fail "the first batch was not booked"
# One pack: one batch of three, after the first committed (its accounts cached).
{
    tr_ b1 X1 X2 200000000000000000
    tr_ b2 X1 X2 100000000000000000
    tr_ b3 R X2 101
} >"$TMP/pack_b"
printf 'transfers\t@%s\n' "$TMP/pack_b" | "$BIN/payq-rawpub" >/dev/null || fail "publish pack b"
wait_rows 13 || fail "the second batch was not booked"
kill -TERM "$LAST_PID"
wait "$LAST_PID"
check "worker stopped gracefully (exit 0)" "0" "$?"

check "nine near-max transfers post" "posted" "$(status_of a9)"
check "within the limit, through the cache, posts" "posted" "$(status_of b1)"
check "beyond bigint, through the cache: rejected as overflow" "rejected:overflow" "$(status_of b2)"
check "restricted account through the cache: still its exact balance" \
    "rejected:insufficient_funds" "$(status_of b3)"
check "balances of X1" "9199999999999999991|0" \
    "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-X1'")"
check "balances of R" "0|100" \
    "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-R'")"
log=$(cat "$TMP"/worker-*.log)
hits=$(grep -o 'account cache [0-9]* hits' <<<"$log" | grep -o '[0-9]*' | tail -1)
if [ "${hits:-0}" -gt 0 ]; then ok "the cache answered ($hits hits)"; else
    fail "no cache hit: $(tail -2 <<<"$log")"; fi
if grep -q '"batch_split"' <<<"$log"; then ok "the overflowing batch was split"; else
    fail "no batch_split in the worker log"; fi
finish

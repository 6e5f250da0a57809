#!/usr/bin/env bash
# integration_worker_races: overdraft checks are exact under concurrency, and
# a hot account does not deadlock or serialise into errors.
#  1. A restricted account funded with 1,000,000 is drained by 3,000
#     transfers of 500 (1,500,000 in all) across 3 workers: exactly 2,000 post,
#     1,000 are rejected insufficient_funds, and it never goes negative.
#  2. 30,000 transfers all crediting one merchant account across 3 workers:
#     all post, no deadlock, balances equal the model.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=rc$RUN_ID

{
    printf 'account\t{"id":"%s-fund","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-R","currency":"EUR","flags":["debits_must_not_exceed_credits"]}\n' "$P"
    for i in $(seq 1 30); do printf 'account\t{"id":"%s-sink-%d","currency":"EUR"}\n' "$P" "$i"; done
    printf 'transfer\t{"id":"%s-funding","debit_account":"%s-fund","credit_account":"%s-R","amount":"1000000","currency":"EUR"}\n' "$P" "$P" "$P"
} | "$BIN/payq-rawpub" >/dev/null
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
awk -v p="$P" 'BEGIN { for (i = 1; i <= 3000; i++)
    printf "transfer\t{\"id\":\"%s-drain-%d\",\"debit_account\":\"%s-R\",\"credit_account\":\"%s-sink-%d\",\"amount\":\"500\",\"currency\":\"EUR\"}\n", p, i, p, p, i % 30 + 1 }' \
    >"$TMP/drain"
"$BIN/payq-rawpub" <"$TMP/drain" >/dev/null
for i in 1 2 3; do start_worker --exit-when-idle 2000; done
for p in "${BG_PIDS[@]}"; do wait "$p"; done
BG_PIDS=()
check "restricted account: exactly the funded amount posts" "2000" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-drain-%' AND status = 'posted'")"
check "the rest is insufficient_funds" "1000" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-drain-%' AND reason = 'insufficient_funds'")"
check "restricted account ends at exactly zero, never negative" "1000000|1000000" \
    "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-R'")"

# Hot account: every transfer credits one merchant.
H=${P}h
{
    printf 'account\t{"id":"%s-acct-0","currency":"EUR"}\n' "$H"
    gen_accounts "$H" 500 | tail -n +1
} | "$BIN/payq-rawpub" >/dev/null
# Accounts first: competing consumers give no order between messages.
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
awk -v p="$H" 'BEGIN { srand(5); for (i = 1; i <= 30000; i++)
    printf "transfer\t{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-0\",\"amount\":\"%d\",\"currency\":\"EUR\"}\n", p, i, p, int(rand() * 500) + 1, p, int(rand() * 1000) + 1 }' \
    >"$TMP/hot"
"$BIN/payq-rawpub" <"$TMP/hot" >/dev/null
for i in 1 2 3; do start_worker --exit-when-idle 2000; done
rcs=""
for p in "${BG_PIDS[@]}"; do wait "$p"; rcs="$rcs$?"; done
check "hot account: workers exit cleanly" "000" "$rcs"
check_ledger "$H" "$TMP/hot"
check "hot account: no deadlock was ever reported" "0" "$(cat "$TMP"/worker-*.log | grep -c '40P01')"
finish

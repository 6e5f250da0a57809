#!/usr/bin/env bash
# integration_worker_roles: the worker's database role can open an account
# only with its identity (id, currency, flags), so every account starts with
# zero balances (schemas/sql/005_worker_account_insert.sql):
#  1. as payq_worker, an INSERT that names debits_posted, credits_posted or
#     created_at is refused (permission denied) and leaves no row;
#  2. as payq_worker, an INSERT of id, currency and flags (what the worker
#     sends) succeeds, and the row has balances 0/0;
#  3. the real worker still opens accounts from account messages and posts
#     a transfer between them, with the balances that transfer gives.
source "$(dirname "$0")/lib/common.sh"
P=wr$RUN_ID

# wq SQL: psql as payq_worker on the primary; prints output and errors.
wq() { psql "$PAYQ_PG_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
# refused DESCRIPTION SQL ID: SQL fails with permission denied, and no
# account ID exists afterwards.
refused() {
    local out
    out=$(wq "$2")
    if [[ $out == *"permission denied"* ]]; then ok "$1"; else fail "$1: got [$out]"; fi
    check "$1: no row" "0" "$(q "SELECT count(*) FROM payq.accounts WHERE id = '$3'")"
}

check "runs as payq_worker" "payq_worker" "$(wq 'SELECT current_user')"
refused "payq_worker cannot open an account with credits" \
    "INSERT INTO payq.accounts (id, currency, credits_posted) VALUES ('$P-c', 'EUR', 1000000)" "$P-c"
refused "payq_worker cannot open an account with debits" \
    "INSERT INTO payq.accounts (id, currency, debits_posted) VALUES ('$P-d', 'EUR', 5)" "$P-d"
refused "payq_worker cannot open an account with both balances" \
    "INSERT INTO payq.accounts (id, currency, flags, debits_posted, credits_posted)
     VALUES ('$P-b', 'EUR', 1, 0, 1000000)" "$P-b"
refused "payq_worker cannot forge an account's created_at" \
    "INSERT INTO payq.accounts (id, currency, created_at) VALUES ('$P-t', 'EUR', '2000-01-01')" "$P-t"
refused "payq_worker cannot insert a whole row by position" \
    "INSERT INTO payq.accounts VALUES ('$P-p', 'EUR', 0, 0, 1000000, now())" "$P-p"

check "payq_worker opens an account with id, currency and flags" "$P-ok" \
    "$(wq "INSERT INTO payq.accounts (id, currency, flags) VALUES ('$P-ok', 'EUR', 1)
           ON CONFLICT (id) DO NOTHING RETURNING id")"
check "the account starts at zero" "0|0|1" \
    "$(q "SELECT debits_posted || '|' || credits_posted || '|' || flags FROM payq.accounts WHERE id = '$P-ok'")"

# The real worker, end to end: accounts first (their own routing key), then
# the transfers.
{
    printf 'account\t{"id":"%s-src","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-dst","currency":"EUR","flags":["credits_must_not_exceed_debits"]}\n' "$P"
} | "$BIN/payq-rawpub" >/dev/null
"$BIN/payq-worker" --exit-when-idle 1000 2>"$TMP/worker.log"
check "worker exits cleanly after opening accounts" "0" "$?"
{
    printf 'transfer\t{"id":"%s-t-1","debit_account":"%s-dst","credit_account":"%s-src","amount":"700","currency":"EUR"}\n' "$P" "$P" "$P"
    printf 'transfer\t{"id":"%s-t-2","debit_account":"%s-src","credit_account":"%s-dst","amount":"500","currency":"EUR"}\n' "$P" "$P" "$P"
} | "$BIN/payq-rawpub" >/dev/null
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/worker.log"
check "worker exits cleanly" "0" "$?"
check "worker opened both accounts" "2" \
    "$(q "SELECT count(*) FROM payq.accounts WHERE id IN ('$P-src', '$P-dst')")"
check "both transfers posted" "2" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%' AND status = 'posted'")"
check "balances are what the transfers gave, from zero" "$P-dst|700|500 $P-src|500|700" \
    "$(q "SELECT string_agg(id || '|' || debits_posted || '|' || credits_posted, ' ' ORDER BY id)
          FROM payq.accounts WHERE id IN ('$P-src', '$P-dst')")"
check "no permission error in the worker's log" "0" "$(grep -c 'permission denied' "$TMP/worker.log")"
finish

#!/usr/bin/env bash
# integration_worker_ledger: payq-worker's apply semantics against the real
# stack: every rejection reason, idempotency (same payload = no-op, other
# payload = recorded conflict, original untouched), account re-opening,
# business date from the AMQP timestamp, overflow, and exactly-once effect
# when everything is published twice and a worker is killed mid-batch.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=wl$RUN_ID

pub() { "$BIN/payq-rawpub" "$@" >/dev/null || fail "publish failed"; }
drain() { "$BIN/payq-worker" --exit-when-idle 1500 2>>"$TMP/worker.log" || fail "worker exited $?"; }
status_of() { q "SELECT status || coalesce(':' || reason, '') FROM payq.transfers WHERE id = '$P-$1'"; }
tr_() { # id debit credit amount [currency]
    printf 'transfer\t{"id":"%s-%s","debit_account":"%s-%s","credit_account":"%s-%s","amount":"%s","currency":"%s"}\n' \
        "$P" "$1" "$P" "$2" "$P" "$3" "$4" "${5:-EUR}"
}

# --- rejection reasons, in delivery order on running balances -------------
{
    printf 'account\t{"id":"%s-A","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-B","currency":"EUR","flags":["debits_must_not_exceed_credits"]}\n' "$P"
    printf 'account\t{"id":"%s-C","currency":"EUR","flags":["credits_must_not_exceed_debits"]}\n' "$P"
    printf 'account\t{"id":"%s-U","currency":"USD"}\n' "$P"
    printf 'account\t{"id":"%s-O1","currency":"EUR"}\n' "$P"
    printf 'account\t{"id":"%s-O2","currency":"EUR"}\n' "$P"
} | pub
drain
{
    tr_ t1 A B 100
    tr_ t2 B A 60
    tr_ t3 B A 50
    tr_ t4 A C 10
    tr_ t5 C A 20
    tr_ t6 A C 15
    tr_ t7 A U 5
    tr_ t8 A NOPE 5
    for i in 1 2 3 4 5 6 7 8 9 10; do tr_ o$i O1 O2 999999999999999999; done
} >"$TMP/set1"
pub <"$TMP/set1"
drain
check "plain transfer posts" "posted" "$(status_of t1)"
check "restricted debit within credits posts" "posted" "$(status_of t2)"
check "restricted debit beyond credits" "rejected:insufficient_funds" "$(status_of t3)"
check "restricted credit beyond debits" "rejected:credit_limit" "$(status_of t4)"
check "restricted credit within debits posts" "posted" "$(status_of t6)"
check "currency mismatch" "rejected:currency_mismatch" "$(status_of t7)"
check "unknown account" "rejected:account_not_found" "$(status_of t8)"
check "9 near-max amounts post" "9" "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-o%' AND status = 'posted'")"
check "the 10th would leave bigint" "rejected:overflow" "$(status_of o10)"
check "balances of B" "60|100" "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-B'")"
check "balances of C" "20|15" "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-C'")"
check "balances of O1" "8999999999999999991|0" "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-O1'")"
check "every valid message is exactly one row" "18" "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-%'")"

# --- idempotency ----------------------------------------------------------
pub <"$TMP/set1"
{ tr_ t1 A B 101; printf 'account\t{"id":"%s-A","currency":"USD"}\n' "$P"; } | pub
drain
check "republished set changes no row count" "18" "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-%'")"
check "republished set changes no balance" "60|100" "$(q "SELECT debits_posted || '|' || credits_posted FROM payq.accounts WHERE id = '$P-B'")"
check "conflicting payload leaves the original" "100" "$(q "SELECT amount FROM payq.transfers WHERE id = '$P-t1'")"
check "transfer conflict recorded with the differing field" "exists_with_different_amount" \
    "$(q "SELECT reason FROM payq.conflicts WHERE kind = 'transfer' AND entity_id = '$P-t1'")"
check "account conflict recorded" "exists_with_different_currency" \
    "$(q "SELECT reason FROM payq.conflicts WHERE kind = 'account' AND entity_id = '$P-A'")"
{ tr_ t1 A B 101; } | pub
drain
check "a redelivered conflict is recorded once" "1" \
    "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id = '$P-t1'")"

# --- business date ----------------------------------------------------------
# 2030-01-02 23:59:59 UTC: no business_date in the body -> the AMQP timestamp's date.
tr_ d1 A B 1 | pub --timestamp 1893628799
printf 'transfer\t{"id":"%s-d2","debit_account":"%s-A","credit_account":"%s-B","amount":"1","currency":"EUR","business_date":"2031-05-06"}\n' "$P" "$P" "$P" | pub --timestamp 1893628799
drain
check "no business_date: UTC date of the AMQP timestamp" "2030-01-02" "$(q "SELECT business_date FROM payq.transfers WHERE id = '$P-d1'")"
check "explicit business_date wins" "2031-05-06" "$(q "SELECT business_date FROM payq.transfers WHERE id = '$P-d2'")"
check "published_at is the AMQP timestamp" "2030-01-02 23:59:59+00" "$(q "SET timezone = 'UTC'; SELECT published_at FROM payq.transfers WHERE id = '$P-d1'")"

# --- exactly once: twice published, a worker killed mid-batch --------------
E=${P}e
gen_accounts "$E" 50 | pub
gen_transfers "$E" 30000 50 7 >"$TMP/set2"
pub <"$TMP/set2"
pub <"$TMP/set2"
start_worker
w=$LAST_PID
sleep 0.7
kill -9 "$w"
wait "$w" 2>/dev/null
drain
check_ledger "$E" "$TMP/set2"
check "no conflicts from redeliveries" "0" "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id LIKE '$E-%'")"
finish

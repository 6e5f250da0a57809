#!/usr/bin/env bash
# integration_recon_fastday: the bench's fast path for large reconciliation
# days (scripts/bench.d/payqbench/reconday.py, used by
# scripts/bench.d/recon-scale for 10M-transfer days) writes what the
# pipeline writes, and is no shortcut that hides breaks:
#  1. a clean day of 5,000 transfers written by it reconciles balanced
#     (exit 0): every id, amount, account, currency and fingerprint in the
#     ledger matches the audited messages, the manifest's count and total
#     match, and the books' invariant holds;
#  2. the same kind of day with one ledger row's amount moved by 1 (the
#     accounts following it, so only the comparison can see it) and one row
#     left out is named: exit 1, content_mismatch on that id,
#     missing_in_ledger on the other, batch_totals_mismatch on the batch.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/recon_lib.sh
source "$(dirname "$0")/lib/recon_lib.sh"
recon_config
P=fd$RUN_ID
N=5000
CUR=EUR # the days are in EUR: a currency-wide imbalance of ours would show there
CUR2=EUR

# fastday PFX DATE [--amount I:DELTA] [--drop I]: the fast path's day.
fastday() {
    local pfx=$1 date=$2
    shift 2
    PYTHONPATH="$SRC/scripts/bench.d" /usr/bin/python3 -m payqbench.reconday \
        "$pfx" "$P" "$date" "$N" "$@" 2>>"$TMP/fastday.log" >/dev/null ||
        fail "reconday $pfx failed (see fastday.log): $(tail -3 "$TMP/fastday.log")"
}

# Dates nobody used: a row of another run's on D1 would be unexpected_in_ledger.
fresh_date
D1=$D
fresh_date
D2=$D

# --- 1. a clean day --------------------------------------------------------------
fastday "$P-c" "$D1"
check "clean day: ledger rows" "$N" "$(q "SELECT count(*) FROM payq.transfers WHERE business_date = '$D1' AND batch_id = '$P-c-b'")"
recon "$D1"
check "clean day: exit code" 0 "$RC"
check "clean day: result" balanced "$(jq -r .result "$TMP/$D1.json")"
check "clean day: this day's breaks" "" "$(categories "$TMP/$D1.json")"

# --- 2. one amount changed, one row left out ---------------------------------------
fastday "$P-t" "$D2" --amount 17:1 --drop 42
recon "$D2"
check "tampered day: exit code" 1 "$RC"
check "tampered day: categories" "batch_totals_mismatch,content_mismatch,missing_in_ledger" \
    "$(categories "$TMP/$D2.json")"
check "tampered day: content_mismatch names the changed row" "$P-t-17" \
    "$(keys "$TMP/$D2.json" content_mismatch)"
check "tampered day: missing_in_ledger names the dropped row" "$P-t-42" \
    "$(keys "$TMP/$D2.json" missing_in_ledger)"
check "tampered day: batch_totals_mismatch names the batch" "$P-t-b" \
    "$(keys "$TMP/$D2.json" batch_totals_mismatch)"
finish

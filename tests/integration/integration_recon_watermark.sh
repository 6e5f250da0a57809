#!/usr/bin/env bash
# integration_recon_watermark: payq.verify_books() (migration 008), the
# books' invariant with per-account checkpoints, against the real primary,
# called as payq_recon like the reconciler does.
#  1. a transfer inserted BEFORE a run but committed AFTER it (its
#     transaction still open during the run) is neither lost nor counted
#     twice: the run while it is open is clean, the next run after its
#     COMMIT is clean too, and stays incremental (no fallback to the full
#     check) when the ledger had no violation to begin with: a watermark of
#     ids or timestamps would have skipped that row for good;
#  2. stored totals moved by hand on an account whose transfers are all
#     below the watermark: named, and clean again once repaired;
#  3. fail-safe: a watermark made wrong on purpose (its window moved past
#     new rows) yields no false break: the function falls back to the full
#     check (full_at moves) and the verdict is still clean;
#  4. payq_recon cannot write the checkpoint tables itself.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=wm$RUN_ID
DAY=2089-01-01
A=$P-a
B=$P-b

# vb [full]: the violations of the function for this test's accounts
# ("account:ID" sorted, comma-separated; empty when clean).
vb() {
    psql "$PAYQ_PG_RECON_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 \
        -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
        -c "SELECT coalesce(string_agg(kind || ':' || key, ',' ORDER BY key), '')
              FROM payq.verify_books(${1:-false}) WHERE key LIKE '$P-%'" \
        -c "COMMIT"
}
# All violations of the ledger, whoever caused them.
vb_all() {
    psql "$PAYQ_PG_RECON_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 \
        -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
        -c "SELECT count(*) FROM payq.verify_books(false)" -c "COMMIT"
}
full_at() { q "SELECT coalesce(full_at::text, '') FROM payq.recon_watermark"; }
# transfer_sql ID AMOUNT: a posted transfer A -> B and its balance moves.
transfer_sql() {
    printf "INSERT INTO payq.transfers (id, debit_account, credit_account, amount, currency,
              business_date, status, payload_sha256)
            VALUES ('%s', '%s', '%s', %d, 'EUR', '%s', 'posted', sha256('%s'::bytea));
            UPDATE payq.accounts SET debits_posted = debits_posted + %d WHERE id = '%s';
            UPDATE payq.accounts SET credits_posted = credits_posted + %d WHERE id = '%s'" \
        "$1" "$A" "$B" "$2" "$DAY" "$1" "$2" "$A" "$2" "$B"
}

q "INSERT INTO payq.accounts (id, currency) VALUES ('$A', 'EUR'), ('$B', 'EUR')" >/dev/null
q "BEGIN; $(transfer_sql "$P-1" 100); COMMIT" >/dev/null
check "setup: clean" "" "$(vb)"
pre=$(vb_all)

# --- 1. inserted before a run, committed after it ------------------------------
psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 \
    -c "BEGIN; $(transfer_sql "$P-late" 250); SELECT pg_sleep(6); COMMIT" >/dev/null 2>&1 &
late=$!
BG_PIDS+=("$late")
for _ in $(seq 50); do
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%$P-late%pg_sleep%'
             AND state = 'active' AND backend_xid IS NOT NULL")" = 1 ] && break
    sleep 0.1
done
f0=$(full_at)
check "open transaction: the run meanwhile is clean" "" "$(vb)"
check "open transaction: its row was not taken into the checkpoints" "t" \
    "$(q "SELECT NOT EXISTS (SELECT 1 FROM payq.recon_checkpoints WHERE account = '$A' AND debits <> 100)")"
wait "$late"
check "open transaction: committed" 1 "$(q "SELECT count(*) FROM payq.transfers WHERE id = '$P-late'")"
check "committed after the run: the next run counts it once" "" "$(vb)"
check "committed after the run: the checkpoint holds both transfers" "350|0" \
    "$(q "SELECT debits || '|' || credits FROM payq.recon_checkpoints WHERE account = '$A'")"
if [ "$pre" = 0 ]; then
    check "committed after the run: found incrementally (no fallback to the full check)" \
        "$f0" "$(full_at)"
else
    ok "committed after the run: the shared ledger has $pre violations of other tests, so every run is full here"
fi

# --- 2. tampering below the watermark ----------------------------------------
check "below the watermark: every transfer of $A is" "t" \
    "$(q "SELECT bool_and(payq.recon_full_xid(t.xmin, pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
                         < w.xid_horizon::text::bigint)
          FROM payq.transfers t, payq.recon_watermark w WHERE t.debit_account = '$A'")"
q "UPDATE payq.accounts SET debits_posted = debits_posted + 3 WHERE id = '$A'" >/dev/null
check "below the watermark: stored debits moved by hand are named" "account:$A" "$(vb)"
q "UPDATE payq.accounts SET debits_posted = debits_posted - 3 WHERE id = '$A'" >/dev/null
check "below the watermark: clean again once repaired" "" "$(vb)"

# --- 3. a wrong watermark costs a full check, not a false break -----------------
q "BEGIN; $(transfer_sql "$P-2" 40); COMMIT" >/dev/null
q "UPDATE payq.recon_watermark SET window_from = now() + interval '1 hour'" >/dev/null
f1=$(full_at)
check "wrong window: no false break" "" "$(vb)"
check "wrong window: it fell back to the full check" "t" "$(q "SELECT full_at > '$f1' FROM payq.recon_watermark")"
check "wrong window: the checkpoint is right again" "390" \
    "$(q "SELECT debits FROM payq.recon_checkpoints WHERE account = '$A'")"
check "full check on demand: clean" "" "$(vb true)"

# --- 4. payq_recon cannot write the tables itself -------------------------------
out=$(psql "$PAYQ_PG_RECON_CONNINFO" -X -qAt -c \
    "UPDATE payq.recon_checkpoints SET debits = 0 WHERE account = '$A'" 2>&1)
check "payq_recon: no direct write to the checkpoints" 1 "$(grep -c 'permission denied' <<<"$out")"
out=$(psql "$PAYQ_PG_RECON_CONNINFO" -X -qAt -c "SELECT * FROM payq.verify_books(false)" 2>&1)
check "outside REPEATABLE READ: refused" 1 "$(grep -c 'needs a REPEATABLE READ' <<<"$out")"
finish

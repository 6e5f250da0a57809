#!/usr/bin/env bash
# shellcheck disable=SC2317 # reset_role runs from a trap
# integration_worker_plans: the plans PostgreSQL actually runs for a real
# worker batch (auto_explain on the worker's role for the length of the
# test) read and update accounts through accounts_pkey, whatever the table's
# size, and the balance UPDATE, which is also the batch's lock pass, visits
# rows in id order (worker/ledger.c, update_balances: no deadlock between
# workers):
#  1. every balance UPDATE is a nested loop with an index probe per account,
#     driven by the deltas sorted by id COLLATE "C": no hash or merge join,
#     no sequential or bitmap scan;
#  2. every account read is an index scan;
#  3. the batch still books every transfer with the right balances.
# The batch touches 3,000 accounts, a large share of the table on a fresh
# stack: where the planner, left alone, prefers a hash join over them.
# 28,000 transfers make 7 batches of 4,000: the worker's statements are
# prepared, and from the sixth execution on PostgreSQL runs their generic
# plan (planned without the arrays' values), which must keep the same shape.
source "$(dirname "$0")/lib/common.sh"
P=wp$RUN_ID
LOG=$PAYQ_PG_LOG_DIR/postgresql-$PAYQ_PG_PRIMARY_NODE.log

reset_role() { q "ALTER ROLE payq_worker RESET ALL" >/dev/null; cleanup_common; }
trap reset_role EXIT
q "ALTER ROLE payq_worker SET session_preload_libraries = 'auto_explain'" >/dev/null
q "ALTER ROLE payq_worker SET auto_explain.log_min_duration = 0" >/dev/null

q "INSERT INTO payq.accounts (id, currency) SELECT '$P-acct-' || g, 'EUR' FROM generate_series(1, 3000) g" >/dev/null
q "ANALYZE payq.accounts" >/dev/null
awk -v p="$P" 'BEGIN { srand(11); for (i = 1; i <= 28000; i++) {
    d = int(rand() * 3000) + 1; c = int(rand() * 2999) + 1; if (c >= d) c++
    printf "transfer\t{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"%d\",\"currency\":\"EUR\"}\n", p, i, p, d, p, c, int(rand() * 1000) + 1 } }' \
    >"$TMP/transfers"
start=$(($(wc -l <"$LOG") + 1))
"$BIN/payq-rawpub" --pack 100 <"$TMP/transfers" >/dev/null
"$BIN/payq-worker" --exit-when-idle 1000 2>"$TMP/worker.log"
check "worker exits cleanly" "0" "$?"
check_ledger "$P" "$TMP/transfers"

# plans PATTERN: the plan blocks whose query text matches PATTERN, one per
# line (a block ends where the next log line starts with a timestamp).
plans() {
    tail -n "+$start" "$LOG" | awk -v pat="$1" '
        /^[0-9][0-9][0-9][0-9]-/ { if (on) print blk; on = 0; blk = "" }
        on { blk = blk " " $0 }
        index($0, "Query Text: " pat) { on = 1 }
        END { if (on) print blk }' | sed 's/Index Cond: ([^)]*))/Index Cond: (...)/g'
}
plans "UPDATE payq.accounts" >"$TMP/update"
plans "SELECT id, currency, flags" >"$TMP/read"
n=$(wc -l <"$TMP/update")
# six or more: at least one ran the prepared statement's generic plan
if [ "$n" -ge 6 ]; then ok "auto_explain logged $n balance updates"; else fail "only $n balance update plans logged"; fi
check "every balance update is a nested loop" "$n" "$(grep -c 'Nested Loop' "$TMP/update")"
check "driven by the deltas sorted by id in byte order" "$n" \
    "$(grep -c 'Sort Key: u.id COLLATE "C".*Index Scan using accounts_pkey' "$TMP/update")"
check "no hash or merge join, sequential or bitmap scan in a balance update" "0" \
    "$(grep -c -E 'Hash|Merge|Seq Scan|Bitmap' "$TMP/update")"
check "every account read is an index scan on accounts_pkey" "$(wc -l <"$TMP/read")" \
    "$(grep -c 'Index Scan using accounts_pkey' "$TMP/read")"
check "no sequential or bitmap scan in an account read" "0" "$(grep -c -E 'Seq Scan|Bitmap' "$TMP/read")"
finish

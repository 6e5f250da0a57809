#!/usr/bin/env bash
# integration_reconciler: payq-reconciler against the real stack.
#  1. a clean day (batches with manifests, rejections, dead letters,
#     duplicates, transfers without batch or without business_date): exit 0
#     and JSON totals equal to a model computed here;
#  2. each break category injected alone on a fresh business date: exit 1,
#     that category naming the right id or batch, nothing unrelated
#     (invariant_violation beside it only where the tampering unbalances the
#     books, batch_totals_mismatch only where it changes a batch's ledger
#     count); every tampering is repaired before the next case;
#  3. an unreachable broker, database or management API: exit 2 and one
#     clear line naming the source;
#  4. every run is recorded in payq.reconciliations.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=lib/recon_lib.sh
source "$(dirname "$0")/lib/recon_lib.sh"
P=rc$RUN_ID
CUR=$(rand_ccy)
CUR2=$(rand_ccy)
while [ "$CUR2" = "$CUR" ]; do CUR2=$(rand_ccy); done
recon_config
echo "# prefix $P, currencies $CUR $CUR2, audit from $RECON_START"

# --- accounts ---------------------------------------------------------------
{
    printf 'account\t{"id":"%s-A","currency":"%s"}\n' "$P" "$CUR"
    printf 'account\t{"id":"%s-B","currency":"%s","flags":["debits_must_not_exceed_credits"]}\n' "$P" "$CUR"
    printf 'account\t{"id":"%s-C","currency":"%s"}\n' "$P" "$CUR"
    printf 'account\t{"id":"%s-X","currency":"%s"}\n' "$P" "$CUR2"
    printf 'account\t{"id":"%s-Y","currency":"%s"}\n' "$P" "$CUR2"
} >"$TMP/accounts"
apply "$TMP/accounts" "SELECT count(*) FROM payq.accounts WHERE id LIKE '$P-%'" 5

# --- 1. a clean day -----------------------------------------------------------
fresh_date
D0=$D
D0_NOON=$(date -u -d "$D0 12:00:00" +%s)
MODEL=$TMP/model # id currency amount status(posted|rejected) reason
: >"$MODEL"
# B may debit only what it was credited: fund it first and let it settle, so
# the rejection does not depend on how competing workers split the queue.
tr_line "$P-fund" "$P-A" "$P-B" 1000 "$CUR" "$D0" >"$TMP/fund"
echo "$P-fund $CUR 1000 posted -" >>"$MODEL"
apply "$TMP/fund" "SELECT count(*) FROM payq.transfers WHERE id = '$P-fund'" 1
{
    for i in $(seq 1 20); do
        amt=$((RANDOM * 7 + i))
        tr_line "$P-b1-$i" "$P-A" "$P-C" "$amt" "$CUR" "$D0" "$P-b1"
        echo "$P-b1-$i $CUR $amt posted -" >>"$MODEL"
    done
    manifest_line "$P-b1" "$D0" 20 "{\"$CUR\":\"$(awk -v p="$P-b1-" 'index($1,p)==1 {s+=$3} END {print s}' "$MODEL")\"}"
    s1=0 s2=0
    for i in $(seq 1 5); do
        a1=$((RANDOM + 1)) a2=$((RANDOM + 1))
        tr_line "$P-b2-c$i" "$P-C" "$P-A" "$a1" "$CUR" "$D0" "$P-b2"
        tr_line "$P-b2-x$i" "$P-X" "$P-Y" "$a2" "$CUR2" "$D0" "$P-b2"
        echo "$P-b2-c$i $CUR $a1 posted -" >>"$MODEL"
        echo "$P-b2-x$i $CUR2 $a2 posted -" >>"$MODEL"
        s1=$((s1 + a1)) s2=$((s2 + a2))
    done
    manifest_line "$P-b2" "$D0" 10 "{\"$CUR\":\"$s1\",\"$CUR2\":\"$s2\"}"
    # Two debits of 600 from B, credited 1000: one posts, one is refused.
    tr_line "$P-b3-1" "$P-B" "$P-C" 600 "$CUR" "$D0" "$P-b3"
    tr_line "$P-b3-2" "$P-B" "$P-C" 600 "$CUR" "$D0" "$P-b3"
    manifest_line "$P-b3" "$D0" 2 "{\"$CUR\":\"1200\"}"
    echo "$P-b3-x $CUR 600 posted -" >>"$MODEL"
    echo "$P-b3-y $CUR 600 rejected insufficient_funds" >>"$MODEL"
    # No batch (as from the HTTP API): no manifest needed.
    for i in 1 2 3; do
        tr_line "$P-api-$i" "$P-A" "$P-C" $((i * 111)) "$CUR" "$D0"
        echo "$P-api-$i $CUR $((i * 111)) posted -" >>"$MODEL"
    done
    # Undecodable, but the worker dead-letters it: accounted for.
    printf 'transfer\t{"id":"%s-dead-1","debit_account":"%s-A","credit_account":"%s-C","amount":"12.50","currency":"%s","business_date":"%s"}\n' \
        "$P" "$P" "$P" "$CUR" "$D0"
} >"$TMP/day0"
# Dated by their AMQP timestamp: one valid without business_date, one not JSON.
tr_line "$P-ts-1" "$P-A" "$P-C" 4242 "$CUR" "" >"$TMP/ts"
echo "$P-ts-1 $CUR 4242 posted -" >>"$MODEL"
printf 'transfer\tnot json at all %s\n' "$P" >>"$TMP/ts"
dead_sql() { # BODY: 1 once the worker has dead-lettered it
    echo "SELECT count(*) FROM payq.dead_letters WHERE body_sha256 =
          decode('$(printf '%s' "$1" | sha256sum | cut -c1-64)', 'hex')"
}
apply "$TMP/ts" "SELECT ($(dead_sql "not json at all $P")) +
    (SELECT count(*) FROM payq.transfers WHERE id = '$P-ts-1')" 2 --timestamp "$D0_NOON"
# Packs of 7 (routing key "transfers"): lines cross batch boundaries and the
# undecodable line sits inside a pack, dead-lettered alone.
pub --pack 7 <"$TMP/day0" # a publisher retry first: identical copies are no breaks
PUBLISHED=$((PUBLISHED + $(grep -c '^transfer.*"amount":"[0-9]*"' "$TMP/day0")))
apply "$TMP/day0" "SELECT ($(dead_sql "$(grep "$P-dead-1" "$TMP/day0" | cut -f2)")) +
    (SELECT count(*) FROM payq.transfers WHERE business_date = '$D0' AND id LIKE '$P-%')" \
    "$(($(wc -l <"$MODEL") + 1))" --pack 7
recon "$D0"
J=$TMP/$D0.json
if [ "$(foreign "$J")" = 0 ]; then
    check "clean day: exit code" 0 "$RC"
    check "clean day: result" balanced "$(jq -r .result "$J")"
else
    ok "clean day: exit 1 accepted, the shared ledger has invariant violations of other tests"
fi
check "clean day: no break of ours" "" "$(categories "$J")"
model_totals() { # CURRENCY -> the JSON totals object the report must hold
    awk -v c="$1" -v dead="$2" '$2 == c {
            n++; s += $3
            if ($4 == "posted") { pn++; ps += $3 } else { rn++; rs += $3; r[$5] += $3; rc[$5]++ }
        }
        END {
            printf "{\"audited\":{\"count\":%d,\"amount\":\"%d\"},", n, s
            printf "\"posted\":{\"count\":%d,\"amount\":\"%d\"},", pn, ps
            printf "\"rejected\":{\"count\":%d,\"amount\":\"%d\"},\"rejected_by_reason\":{", rn, rs
            sep = ""; for (k in r) { printf "%s\"%s\":{\"count\":%d,\"amount\":\"%d\"}", sep, k, rc[k], r[k]; sep = "," }
            printf "},\"dead_lettered\":{\"count\":%d,\"amount\":\"0\"}}", dead
        }' "$MODEL" | jq -cS .
}
check "clean day: totals of $CUR equal the model" "$(model_totals "$CUR" 1)" "$(jq -cS ".totals.$CUR" "$J")"
check "clean day: totals of $CUR2 equal the model" "$(model_totals "$CUR2" 0)" "$(jq -cS ".totals.$CUR2" "$J")"
check "clean day: unreadable body dead-lettered under ???" 1 "$(jq '.totals["???"].dead_lettered.count' "$J")"
check "clean day: the stream carried both copies of the day in packs" true \
    "$(jq --argjson n $(( 2 * ( ($(grep -c '^transfer' "$TMP/day0") + 6) / 7 ) )) '.counts.audit_packs >= $n' "$J")"
check "clean day: identical copies dropped" "$((PUBLISHED - $(wc -l <"$MODEL")))" \
    "$(jq .counts.audit_duplicates "$J")"
check "clean day: three batches, each matching its manifest" "3" \
    "$(jq --arg p "$P-" '[.batches[] | select((.batch_id | startswith($p)) and .manifest.count == .audited.count
        and .manifest.totals == .audited.totals)] | length' "$J")"
check "clean day: ledger read from the standby" "true" "$(jq .sources.ledger.standby "$J")"
check "clean day: recorded" "balanced|0" \
    "$(q "SELECT result || '|' || breaks FROM payq.reconciliations WHERE business_date = '$D0' ORDER BY seq DESC LIMIT 1")"
"$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D0" --audit-from "$RECON_START" \
    --format text >"$TMP/d0.txt" 2>/dev/null
if grep -q "^Verdict: BALANCED" "$TMP/d0.txt"; then
    ok "clean day: text verdict"
else
    fail "clean day: text report has no BALANCED verdict: $(tail -3 "$TMP/d0.txt")"
fi

# A small balanced batch of 3 on a date: ids $P-<tag>-1..3, batch $P-<tag>.
small_batch() { # TAG DATE
    {
        tr_line "$P-$1-1" "$P-A" "$P-C" 100 "$CUR" "$2" "$P-$1"
        tr_line "$P-$1-2" "$P-A" "$P-C" 200 "$CUR" "$2" "$P-$1"
        tr_line "$P-$1-3" "$P-C" "$P-A" 50 "$CUR" "$2" "$P-$1"
        manifest_line "$P-$1" "$2" 3 "{\"$CUR\":\"350\"}"
    } >"$TMP/$1"
    apply "$TMP/$1" "SELECT count(*) FROM payq.transfers WHERE batch_id = '$P-$1'" 3
}

# --- 2. one break at a time ---------------------------------------------------
# missing_in_ledger: a row deleted, balances fixed to match (books balance).
fresh_date
small_batch miss "$D"
UNDO=$(row_sql "$P-miss-2") && UNDO="$UNDO; $(moves_sql "$P-A" 200 0); $(moves_sql "$P-C" 0 200)"
tamper "DELETE FROM payq.transfers WHERE id = '$P-miss-2';
        $(moves_sql "$P-A" -200 0); $(moves_sql "$P-C" 0 -200)" "$UNDO"
recon "$D"
expect_breaks "missing_in_ledger" "$D" 1 "batch_totals_mismatch,missing_in_ledger"
check "missing_in_ledger: names the deleted id" "$P-miss-2" "$(keys "$TMP/$D.json" missing_in_ledger)"
check "missing_in_ledger: the batch's ledger count is short" "$P-miss ledger_count 3 2" \
    "$(mine "$TMP/$D.json" | jq -r '.[] | select(.category == "batch_totals_mismatch") | "\(.batch_id) \(.field) \(.expected) \(.actual)"')"
check "missing_in_ledger: recorded" "breaks|2" \
    "$(q "SELECT result || '|' || breaks FROM payq.reconciliations WHERE business_date = '$D' ORDER BY seq DESC LIMIT 1")"
untamper
recon "$D"
check "missing_in_ledger: balanced again once repaired" 0 "$RC"

# unexpected_in_ledger: a row inserted without moving balances, so the
# stored balances no longer match the posted transfers either.
fresh_date
small_batch unex "$D"
tamper "INSERT INTO payq.transfers (id, batch_id, debit_account, credit_account, amount,
        currency, business_date, status, payload_sha256) VALUES ('$P-forged', NULL, '$P-A',
        '$P-C', 999, '$CUR', '$D', 'posted', sha256('forged'))" \
    "DELETE FROM payq.transfers WHERE id = '$P-forged'"
recon "$D"
expect_breaks "unexpected_in_ledger" "$D" 1 "invariant_violation,unexpected_in_ledger"
check "unexpected_in_ledger: names the forged id" "$P-forged" "$(keys "$TMP/$D.json" unexpected_in_ledger)"
check "unexpected_in_ledger: invariant names both accounts" "$P-A,$P-C" \
    "$(keys "$TMP/$D.json" invariant_violation)"
untamper

# content_mismatch: an amount changed, balances moved to match.
fresh_date
small_batch cont "$D"
tamper "UPDATE payq.transfers SET amount = 201 WHERE id = '$P-cont-2';
        $(moves_sql "$P-A" 1 0); $(moves_sql "$P-C" 0 1)" \
    "UPDATE payq.transfers SET amount = 200 WHERE id = '$P-cont-2';
     $(moves_sql "$P-A" -1 0); $(moves_sql "$P-C" 0 -1)"
recon "$D"
expect_breaks "content_mismatch" "$D" 1 "content_mismatch"
check "content_mismatch: names id, field, expected and actual" "$P-cont-2 amount 200 201" \
    "$(mine "$TMP/$D.json" | jq -r '.[] | select(.category == "content_mismatch") | "\(.id) \(.field) \(.expected) \(.actual)"')"
untamper

# id_conflict: the same id published again with another amount.
fresh_date
small_batch conf "$D"
tr_line "$P-conf-1" "$P-A" "$P-C" 101 "$CUR" "$D" "$P-conf" >"$TMP/conf2"
apply "$TMP/conf2" "SELECT count(*) FROM payq.conflicts WHERE entity_id = '$P-conf-1'" 1
recon "$D"
expect_breaks "id_conflict" "$D" 1 "id_conflict"
check "id_conflict: names the id" "$P-conf-1" "$(keys "$TMP/$D.json" id_conflict)"
check "id_conflict: cross-checked with payq.conflicts" "amount|recorded" \
    "$(mine "$TMP/$D.json" | jq -r '.[] | select(.category == "id_conflict") |
        "\(.field)|\(if (.detail | test("is recorded in")) then "recorded" else "not" end)"')"

# batch_totals_mismatch: a manifest with a wrong total, and a batch without one.
fresh_date
{
    tr_line "$P-bat-1" "$P-A" "$P-C" 100 "$CUR" "$D" "$P-bat"
    tr_line "$P-bat-2" "$P-A" "$P-C" 200 "$CUR" "$D" "$P-bat"
    manifest_line "$P-bat" "$D" 2 "{\"$CUR\":\"301\"}"
    tr_line "$P-nom-1" "$P-A" "$P-C" 5 "$CUR" "$D" "$P-nomanifest"
} >"$TMP/bat"
apply "$TMP/bat" "SELECT count(*) FROM payq.transfers WHERE business_date = '$D' AND id LIKE '$P-%'" 3
recon "$D" --format csv
check "batch_totals_mismatch: exit code (csv)" 1 "$RC"
check "batch_totals_mismatch: csv header" "category,id,batch_id,field,expected,actual,detail" \
    "$(head -1 "$TMP/$D.json")"
check "batch_totals_mismatch: csv lines" "batch_totals_mismatch,,$P-bat,totals.$CUR,301,300|batch_totals_mismatch,,$P-nomanifest,manifest,manifest,none" \
    "$(grep -v '^invariant_violation' "$TMP/$D.json" | tail -n +2 | cut -d, -f1-6 | LC_ALL=C sort | paste -sd'|' -)"
recon "$D"
expect_breaks "batch_totals_mismatch" "$D" 1 "batch_totals_mismatch"
check "batch_totals_mismatch: names both batches" "$P-bat,$P-nomanifest" \
    "$(keys "$TMP/$D.json" batch_totals_mismatch)"

# invariant_violation: an account's stored debits moved by hand.
fresh_date
small_batch inv "$D"
tamper "$(moves_sql "$P-B" 7 0)" "$(moves_sql "$P-B" -7 0)"
recon "$D"
expect_breaks "invariant_violation" "$D" 1 "invariant_violation"
check "invariant_violation: names the account and its currency" "$(printf '%s\n' "$P-B" "$CUR" | LC_ALL=C sort | paste -sd, -)" \
    "$(keys "$TMP/$D.json" invariant_violation)"
untamper

# invariant_violation below the watermark: every transfer of the account is
# already in payq.recon_checkpoints (two runs moved the watermark past
# them), so only "stored = checkpoint + new transfers" can see the change.
fresh_date
small_batch wm "$D"
recon "$D"
recon "$D"
check "watermark: past every transfer of the account" "t" \
    "$(q "SELECT bool_and(payq.recon_full_xid(t.xmin, pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
                         < w.xid_horizon::text::bigint)
          FROM payq.transfers t, payq.recon_watermark w
          WHERE '$P-A' IN (t.debit_account, t.credit_account)")"
tamper "$(moves_sql "$P-A" 0 5)" "$(moves_sql "$P-A" 0 -5)"
recon "$D"
expect_breaks "invariant_violation below the watermark" "$D" 1 "invariant_violation"
check "invariant_violation below the watermark: names the account and its currency" \
    "$(printf '%s\n' "$P-A" "$CUR" | LC_ALL=C sort | paste -sd, -)" \
    "$(keys "$TMP/$D.json" invariant_violation)"
untamper
recon "$D"
check "invariant_violation below the watermark: balanced again once repaired" 0 "$RC"

# --- 3. sources that cannot be read ---------------------------------------------
fresh_date
PAYQ_AMQP_URL="amqp://payq:x@127.0.0.1:1/payq" \
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --format json >"$TMP/e1.json" 2>"$TMP/e1.err"
check "unreachable broker: exit 2" 2 $?
check "unreachable broker: one clear line" 1 "$(grep -c '^payq-reconciler: cannot read the audit stream: ' "$TMP/e1.err")"
check "unreachable broker: JSON says failed" failed "$(jq -r .result "$TMP/e1.json")"
check "unreachable broker: recorded as failed" failed \
    "$(q "SELECT result FROM payq.reconciliations WHERE business_date = '$D' ORDER BY seq DESC LIMIT 1")"
PAYQ_PG_READ_CONNINFO="host=127.0.0.1 port=1 dbname=payq user=payq_reader connect_timeout=3" \
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --format json >/dev/null 2>"$TMP/e2.err"
check "unreachable database: exit 2" 2 $?
check "unreachable database: one clear line" 1 "$(grep -c '^payq-reconciler: cannot read the ledger: ' "$TMP/e2.err")"
PAYQ_AMQP_MGMT_URL="http://guest:guest@127.0.0.1:1" \
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D" --audit-from "$RECON_START" \
    --format json >/dev/null 2>"$TMP/e3.err"
check "unreachable management API: exit 2" 2 $?
check "unreachable management API: one clear line" 1 "$(grep -c '^payq-reconciler: cannot read the queue depths: ' "$TMP/e3.err")"
"$BIN/payq-reconciler" --date 2091-02-30 >/dev/null 2>"$TMP/e4.err"
check "bad --date: exit 2" 2 $?
check "bad --date: one clear line" 1 "$(grep -c '^payq-reconciler: invalid --date' "$TMP/e4.err")"

# --- 4. runs recorded ------------------------------------------------------------
check "every run of this test is recorded" "0" \
    "$(q "SELECT count(*) FROM (VALUES $(for d in "${!USED_DATES[@]}"; do printf "('%s'::date)," "$d"; done | sed 's/,$//')) v(d)
          WHERE NOT EXISTS (SELECT 1 FROM payq.reconciliations r WHERE r.business_date = v.d)")"
finish

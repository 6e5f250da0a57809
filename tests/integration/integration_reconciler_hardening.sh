#!/usr/bin/env bash
# integration_reconciler_hardening: the reconciler defects of issue 17 and
# what issues 15 and 14 asked of it, against the real stack (each check
# fails without its change):
#  1. a booked transfer moved to another business_date (superuser, trigger
#     off) is a content_mismatch on business_date and its batch's ledger
#     count differs from the manifest: exit 1, never BALANCED;
#  2. the management API read through libcurl: the first URL of a list that
#     answers is used, a refused one is exit 2, no password is ever logged;
#  3. a run that cannot be recorded (bad PAYQ_PG_RECON_CONNINFO) exits 2
#     with one line naming why, although the books balance;
#  4. payq_recon cannot forge run records: no direct INSERT, and the
#     recording function refuses back-dated or self-contradicting runs and
#     stamps the ledger's rows, so a made-up "balanced" stands out;
#  5. forward-dated transfers: with default options (no --audit-from) and
#     reconciler.lookback_hours 0, a date whose transfers were published
#     before the last run's marker is read from where payq.audit_index says
#     its first message is, and balances (the lookback window alone would
#     start in the future and call all of them unexpected_in_ledger);
#  6. --metrics-textfile (issue 14): the run's result in Prometheus text
#     format with the names the alert rules use, every break category
#     present, valid for promtool, replaced whole on the next run.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/recon_lib.sh"
P=rh$RUN_ID
CUR=$(rand_ccy)
CUR2=$CUR
recon_config
echo "# prefix $P, currency $CUR"
{
    printf 'account\t{"id":"%s-A","currency":"%s"}\n' "$P" "$CUR"
    printf 'account\t{"id":"%s-C","currency":"%s"}\n' "$P" "$CUR"
} >"$TMP/accounts"
apply "$TMP/accounts" "SELECT count(*) FROM payq.accounts WHERE id LIKE '$P-%'" 2

# A batch of 3 with its manifest on DATE: ids $P-TAG-1..3, batch $P-TAG.
small_batch() { # TAG DATE
    {
        tr_line "$P-$1-1" "$P-A" "$P-C" 100 "$CUR" "$2" "$P-$1"
        tr_line "$P-$1-2" "$P-A" "$P-C" 200 "$CUR" "$2" "$P-$1"
        tr_line "$P-$1-3" "$P-C" "$P-A" 50 "$CUR" "$2" "$P-$1"
        manifest_line "$P-$1" "$2" 3 "{\"$CUR\":\"350\"}"
    } >"$TMP/$1"
    apply "$TMP/$1" "SELECT count(*) FROM payq.transfers WHERE batch_id = '$P-$1'" 3
}

# --- 1. a transfer moved to another business date -----------------------------
fresh_date
D1=$D
fresh_date
D2=$D
small_batch moved "$D1"
recon "$D1"
check "moved: balanced before the tampering" 0 "$RC"
tamper "UPDATE payq.transfers SET business_date = '$D2' WHERE id = '$P-moved-2'" \
    "UPDATE payq.transfers SET business_date = '$D1' WHERE id = '$P-moved-2'"
recon "$D1"
expect_breaks "moved" "$D1" 1 "batch_totals_mismatch,content_mismatch"
check "moved: content_mismatch names id, business_date, expected and actual" \
    "$P-moved-2 business_date $D1 $D2" \
    "$(mine "$TMP/$D1.json" | jq -r '.[] | select(.category == "content_mismatch") | "\(.id) \(.field) \(.expected) \(.actual)"')"
check "moved: the batch's ledger count differs from its manifest" "$P-moved ledger_count 3 2" \
    "$(mine "$TMP/$D1.json" | jq -r '.[] | select(.category == "batch_totals_mismatch") | "\(.batch_id) \(.field) \(.expected) \(.actual)"')"
check "moved: not balanced" breaks "$(jq -r .result "$TMP/$D1.json")"
recon "$D2"
check "moved: the other date shows the row as unexpected" "$P-moved-2" "$(keys "$TMP/$D2.json" unexpected_in_ledger)"
untamper
recon "$D1"
check "moved: balanced again once repaired" 0 "$RC"

# --- 2. the management API through libcurl, a list of URLs ---------------------
MGMT_PASS=${PAYQ_AMQP_MGMT_URL#*://*:}
MGMT_PASS=${MGMT_PASS%%@*}
PAYQ_AMQP_MGMT_URL="http://127.0.0.1:1,$PAYQ_AMQP_MGMT_URL" \
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D1" --audit-from "$RECON_START" \
    --format json --out "$TMP/mgmt.json" 2>"$TMP/mgmt.err"
check "mgmt list: the first URL that answers is used" "0 true" "$? $(jq .sources.queues.read "$TMP/mgmt.json")"
check "mgmt list: the dead URL is logged (once per queue)" 2 "$(grep -c '"event":"mgmt_api_failed".*127.0.0.1:1"' "$TMP/mgmt.err")"
PAYQ_AMQP_MGMT_URL="http://payq-admin:WRONG-$MGMT_PASS@${PAYQ_AMQP_MGMT_URL#*@}" \
    "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$D1" --audit-from "$RECON_START" \
    --format json --out "$TMP/mgmt2.json" 2>"$TMP/mgmt2.err"
check "mgmt refused: exit 2" 2 $?
check "mgmt refused: one line naming the refusal" 1 \
    "$(grep -c '^payq-reconciler: cannot read the queue depths: management API: HTTP 401' "$TMP/mgmt2.err")"
check "mgmt: no password in any log line" 0 "$(cat "$TMP/mgmt.err" "$TMP/mgmt2.err" | grep -c -- "$MGMT_PASS")"

# --- 3. a run that cannot be recorded -----------------------------------------
# Asked again for reconciler.primary_wait_s (4 s here) before it gives up.
sed 's/^reconciler:$/reconciler:\n  primary_wait_s: 4/' "$TMP/recon.yaml" >"$TMP/recon-retry.yaml"
PAYQ_PG_RECON_CONNINFO="host=127.0.0.1 port=1 dbname=payq user=payq_recon connect_timeout=3" \
    "$BIN/payq-reconciler" --config "$TMP/recon-retry.yaml" --date "$D1" --audit-from "$RECON_START" \
    --format json --out "$TMP/unrec.json" 2>"$TMP/unrec.err"
check "unrecorded: exit 2" 2 $?
check "unrecorded: one line naming why" 1 \
    "$(grep -c '^payq-reconciler: ' "$TMP/unrec.err")"
check "unrecorded: the line says the run was not recorded" 1 \
    "$(grep -c '^payq-reconciler: cannot record the run in payq.reconciliations: cannot connect' "$TMP/unrec.err")"
check "unrecorded: asked again before giving up (run_record_retry)" t \
    "$([ "$(grep -c '"event":"run_record_retry"' "$TMP/unrec.err")" -ge 1 ] && echo t || echo f)"
check "unrecorded: the report keeps the verdict and says so" "balanced false" \
    "$(jq -r '"\(.result) \(.recorded)"' "$TMP/unrec.json")"

# --- 4. forged run records ------------------------------------------------------
rq() { psql "$PAYQ_PG_RECON_CONNINFO" -X -qAt -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
recon "$D1"
check "record: the reconciler's own run is recorded" 0 "$RC"
check "record: stamped by the database (who, ledger rows of the date)" "payq_recon|3|3|true" \
    "$(q "SELECT recorded_by || '|' || (ledger_stamp->>'ledger_rows') || '|' || (counts->>'ledger_rows')
                 || '|' || (recorded_at IS NOT NULL)
          FROM payq.reconciliations WHERE business_date = '$D1' ORDER BY seq DESC LIMIT 1")"
check "forged: payq_recon cannot INSERT a run record" 1 \
    "$(rq "INSERT INTO payq.reconciliations (business_date, started_at, finished_at, result)
           VALUES ('$D2', now(), now(), 'balanced')" | grep -c 'permission denied for table reconciliations')"
check "forged: a back-dated run is refused" 1 \
    "$(rq "SELECT payq.record_reconciliation(gen_random_uuid(), '$D2', now() - interval '3 days',
               now() - interval '2 days', 'balanced', 0, '{}')" | grep -c 'a run is recorded when it ends')"
check "forged: balanced with breaks is refused" 1 \
    "$(rq "SELECT payq.record_reconciliation(gen_random_uuid(), '$D2', now(), now(), 'balanced', 2, '{}')" |
        grep -c 'contradicts its own figures')"
check "forged: a run without an id is refused" 1 \
    "$(rq "SELECT payq.record_reconciliation(NULL, '$D2', now(), now(), 'balanced', 0, '{}')" |
        grep -c 'a run record needs every field')"
# Asked again after an unknown outcome: one row, the first call's seq; the
# same id with other figures is refused.
RUN=$(rq "SELECT gen_random_uuid()")
T=$(rq "SELECT now()")
rec_again() { rq "SELECT payq.record_reconciliation('$RUN', '$D2', '$T', '$T', '$1', $2, '{}')"; }
first=$(rec_again balanced 0)
check "a run asked again: the first call's seq" "$first" "$(rec_again balanced 0)"
check "a run asked again: one row" 1 "$(q "SELECT count(*) FROM payq.reconciliations WHERE run_id = '$RUN'")"
check "a run asked again with other figures is refused" 1 \
    "$(rec_again breaks 1 | grep -c "run $RUN is recorded already, with other figures")"
check "the refusal left the first record alone" "1 balanced" \
    "$(q "SELECT count(*) || ' ' || string_agg(result, ',') FROM payq.reconciliations WHERE run_id = '$RUN'")"
# Every real run of D1 above that read the ledger claimed the rows it held; a
# made-up one that claims otherwise is the only record of D1 that stands out.
rq "SELECT payq.record_reconciliation(gen_random_uuid(), '$D1', now(), now(), 'balanced', 0, '{\"ledger_rows\":5}')" >/dev/null
check "forged: a made-up balanced run stands out against the ledger stamp" "1|5" \
    "$(q "SELECT count(*) || '|' || max(counts->>'ledger_rows') FROM payq.reconciliations
          WHERE business_date = '$D1' AND recorded_at IS NOT NULL AND result <> 'failed'
            AND (counts->>'ledger_rows')::bigint IS DISTINCT FROM (ledger_stamp->>'ledger_rows')::bigint")"

# --- 5. forward-dated transfers, default options --------------------------------
sed 's/^reconciler:$/reconciler:\n  lookback_hours: 0/' "$TMP/recon.yaml" >"$TMP/recon0.yaml"
recon_default() { # DATE: default options; JSON into $TMP/DATE.json, sets RC
    "$BIN/payq-reconciler" --config "$TMP/recon0.yaml" --date "$1" --format json \
        --out "$TMP/$1.json" 2>"$TMP/$1.err"
    RC=$?
    [ "$RC" = 2 ] && why_failed "$TMP/$1.err"
}
fresh_date
DX=$D
recon_default "$DX" # indexes the stream up to now
fresh_date
DF=$D
small_batch fwd "$DF"
T_DF=$(date +%s) # every message of DF is in the stream
recon_default "$DX" # a later nightly run: the index now ends after DF's messages
check "forward: an unrelated default run balances" 0 "$RC"
IDX=$(q "SELECT first_offset || ' ' || (first_offset < (SELECT indexed_to FROM payq.audit_index_state))
         FROM payq.audit_index WHERE business_date = '$DF'")
check "forward: the index notes where $DF starts, before the last marker" "true" "${IDX#* }"
# What the default did before the index: the window (DF 00:00 minus 0 h) is
# in the future, clamped to now, and sees none of DF's messages. Not "now"
# itself: a stream attaches by the broker's clock, and RabbitMQ's (Erlang's
# no-time-warp mode) does not follow a step of the host's clock, so a host
# clock stepped ahead after the broker started put "now" after our own
# marker (a read that never ends, CI once). 5 s after DF's messages, read
# 10 s after them: 5 s of skew either way is harmless.
sleep $((T_DF + 10 - $(date +%s) > 0 ? T_DF + 10 - $(date +%s) : 0))
"$BIN/payq-reconciler" --config "$TMP/recon0.yaml" --date "$DF" --format json \
    --audit-from "$(date -u -d "@$((T_DF + 5))" +%Y-%m-%dT%H:%M:%SZ)" --out "$TMP/old.json" \
    2>"$TMP/old.err"
RC=$?
[ "$RC" = 2 ] && why_failed "$TMP/old.err"
check "forward: a read from after their messages calls them all unexpected" "1 3" \
    "$RC $(jq .counts.breaks.unexpected_in_ledger "$TMP/old.json")"
recon_default "$DF"
check "forward: exit 0" 0 "$RC"
check "forward: read from the index" "offset ${IDX% *}" "$(jq -r .sources.audit.from "$TMP/$DF.json")"
check "forward: every transfer of the date audited and matched" "balanced 3 3" \
    "$(jq -r '"\(.result) \(.counts.audit_distinct_transfers) \(.counts.matched)"' "$TMP/$DF.json")"

# --- 6. the metrics text file -----------------------------------------------------
M=$TMP/recon.prom
recon "$D1" --metrics-textfile "$M"
check "metrics: exit 0" 0 "$RC"
END_S=$(jq -r .finished "$TMP/$D1.json" | xargs -I{} date -u -d {} +%s)
check "metrics: run end, balanced, date" "$END_S 1 1" \
    "$(awk '$1 == "payq_recon_last_run_timestamp_seconds" { split($2, t, "."); ts = t[1] }
            $1 == "payq_recon_last_run_balanced" { b = $2 }
            $1 == "payq_recon_business_date_info{date=\"'"$D1"'\"}" { d = $2 }
            END { print ts, b, d }' "$M")"
check "metrics: every category, 0 when none" \
    "batch_totals_mismatch=0,content_mismatch=0,id_conflict=0,in_flight=0,invariant_violation=0,missing_in_ledger=0,unexpected_in_ledger=0" \
    "$(sed -n 's/^payq_recon_breaks{category="\([a-z_]*\)"} \([0-9]*\)$/\1=\2/p' "$M" | LC_ALL=C sort | paste -sd, -)"
if command -v promtool >/dev/null; then
    check "metrics: promtool accepts the file" 0 "$(promtool check metrics <"$M" >/dev/null 2>&1; echo $?)"
fi
tamper "UPDATE payq.transfers SET business_date = '$D2' WHERE id = '$P-moved-2'" \
    "UPDATE payq.transfers SET business_date = '$D1' WHERE id = '$P-moved-2'"
recon "$D1" --metrics-textfile "$M"
untamper
check "metrics: a run with breaks replaces the file" "0 1 1" \
    "$(awk '$1 == "payq_recon_last_run_balanced" { b = $2 }
            $1 == "payq_recon_breaks{category=\"content_mismatch\"}" { c = $2 }
            $1 == "payq_recon_breaks{category=\"batch_totals_mismatch\"}" { t = $2 }
            END { print b, c, t }' "$M")"
check "metrics: no temporary file left" "recon.prom" "$(cd "$TMP" && ls recon.prom*)"

finish

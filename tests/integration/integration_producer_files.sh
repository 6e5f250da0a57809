#!/usr/bin/env bash
# integration_producer_files: `payq-producer publish` and `open-accounts`
# against the real broker and ledger. A file with one bad line among 10,000
# publishes nothing and names the line and field; each kind of bad line is
# reported as FILE:LINE: field: reason; a good file of 100,000 lines
# publishes exactly 100,000 transfers in packs of producer.pack_max (1,000
# "transfers" messages) and one manifest with the right count and totals
# (read back from the audit stream), which the worker books with the same
# count and sums; publishing the file again changes nothing in the ledger;
# packing: 250 transfers with pack_max 100 are 3 messages of 100/100/50
# lines, each line the canonical body, with pack_max 1 they are 250
# "transfer" messages, and a pack never passes 4 MiB; --json, --quiet,
# stdin, open-accounts and usage errors.
# Runs in a private vhost (see lib/producer_common.sh) so counts are exact.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_files
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=pf$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
export PAYQ_AMQP_URL
PAYQ_AMQP_URL=$(pv_url "$V")

# ---- one bad line among 10,000: nothing published
gen_transfers_file "$P-x" 10000 >"$TMP/bad.jsonl"
sed -i '7777s/"currency":"[A-Z]*"/"currency":"eur"/' "$TMP/bad.jsonl"
"$PRODUCER" publish "$TMP/bad.jsonl" >"$TMP/out" 2>"$TMP/err"
check "one bad line in 10,000: exit 1" 1 $?
check "one bad line: its line and field" "$TMP/bad.jsonl:7777: currency: must match ^[A-Z]{3}\$" \
    "$(grep "^$TMP/bad.jsonl:" "$TMP/err")"
check "one bad line: says nothing was published" 1 "$(grep -c 'nothing was published' "$TMP/err")"
check "one bad line: nothing on stdout" "" "$(cat "$TMP/out")"
check "one bad line: queue unchanged (empty)" 0 "$(pv_depth "$V" payq.transfers)"
check "one bad line: stream unchanged (empty)" 0 "$(pv_stream "$V" | wc -l)"

# ---- each kind of bad line, reported exactly
F=$TMP/kinds.jsonl
t() { printf '{"id":"%s","debit_account":"%s-a","credit_account":"%s-b","amount":"%s","currency":"EUR"%s}\n' "$P-k$1" "$P" "$P" "${2:-100}" "${3:-}"; }
{
    t 1                                                    # 1 good
    echo ""                                                # 2 empty line
    t 3 100 ',"foo":1'                                     # 3 unknown field
    printf '{"id":"%s-k4","debit_account":"a","credit_account":"b","currency":"EUR"}\n' "$P"
    t 5 100 ',"batch_id":"other"'                          # 5 other batch
    t 6 100 ',"business_date":"2020-01-01"'                # 6 other day
    t 1 101                                                # 7 id of line 1, other content
    echo 'not json'                                        # 8
    printf '{"id":"%s-k9","id":"x","debit_account":"a","credit_account":"b","amount":"1","currency":"EUR"}\n' "$P"
    printf '{"id":"%s-k10","debit_account":"a","credit_account":"a","amount":"1","currency":"EUR"}\n' "$P"
    printf '{"id":"%s-k11","debit_account":"a","credit_account":"b","amount":"1","currency":"EUR","reference":"%s"}\n' \
        "$P" "$(head -c 20000 /dev/zero | tr '\0' x)"                                  # 11 too long
    t 12 '0'                                               # 12 amount 0
    echo "   "                                             # 13 blank
    t 1                                                    # 14 identical repeat: fine
} >"$F"
"$PRODUCER" publish "$F" --batch-id "$P-kb" --business-date 2031-05-06 >/dev/null 2>"$TMP/err"
check "kinds: exit 1" 1 $?
grep "^$F:" "$TMP/err" >"$TMP/got"
cat >"$TMP/want" <<EOF
$F:2: : empty line
$F:3: foo: unknown field
$F:4: amount: is required
$F:5: batch_id: differs from --batch-id "$P-kb"
$F:6: business_date: differs from --business-date "2031-05-06"
$F:7: id: repeats the id of line 1 with different content
$F:8: : not valid JSON at byte 0
$F:9: id: duplicate key
$F:10: credit_account: must differ from debit_account
$F:11: : line longer than 16384 bytes
$F:12: amount: must be at least 1
$F:13: : empty line
EOF
if diff "$TMP/want" "$TMP/got" >"$TMP/diff"; then ok "kinds: every bad line reported as FILE:LINE: field: reason"
else fail "kinds: reports differ: $(tr '\n' ' ' <"$TMP/diff")"; fi

# Without the options the lines must agree among themselves.
{ t 21 1 ',"batch_id":"b1"'; t 22 1; t 23 1 ',"batch_id":"b2"'; } >"$TMP/two.jsonl"
"$PRODUCER" publish "$TMP/two.jsonl" 2>"$TMP/err" >/dev/null
check "two batch ids: exit 1" 1 $?
check "two batch ids: reported" "$TMP/two.jsonl:3: batch_id: differs from \"b1\" on line 1: one file is one batch" \
    "$(grep "^$TMP/two.jsonl:" "$TMP/err")"

# More than 100 errors: the first 100, then a count.
gen_transfers_file "$P-m" 300 | awk 'NR % 2 { sub(/"amount":"[0-9]*"/, "\"amount\":\"x\"") } { print }' >"$TMP/many.jsonl"
"$PRODUCER" publish "$TMP/many.jsonl" 2>"$TMP/err" >/dev/null
check "150 bad lines: exit 1" 1 $?
check "150 bad lines: first 100 shown" 100 "$(grep -c "^$TMP/many.jsonl:[0-9]*: amount: " "$TMP/err")"
check "150 bad lines: then the rest counted" "... and 50 more errors" "$(grep '^\.\.\.' "$TMP/err")"
check "after all bad files: queue still empty" 0 "$(pv_depth "$V" payq.transfers)"

# ---- 100,000 good lines
N=100000
B=$P-b100k
gen_transfers_file "$P-g" $N >"$TMP/good.jsonl"
file_totals "$TMP/good.jsonl" >"$TMP/totals.want"
"$PRODUCER" publish "$TMP/good.jsonl" --batch-id "$B" --json >"$TMP/json" 2>"$TMP/err"
rc=$?
check "100k: exit 0" 0 $rc
[ $rc = 0 ] || sed -n 1,20p "$TMP/err"
M=$(ceil_div $N "$PACK")
check "100k: --json parses, ok, count, confirmed transfers and messages" "true $N $N $M $PACK true" \
    "$(jq -r '"\(.ok) \(.count) \(.confirmed) \(.messages) \(.pack_max) \(.manifest_confirmed)"' "$TMP/json" 2>&1)"
check "100k: --json totals" "$(cat "$TMP/totals.want")" \
    "$(jq -r '.totals | to_entries[] | "\(.key) \(.value)"' "$TMP/json" 2>&1)"
rate=$(jq -r '.rate' "$TMP/json" 2>/dev/null)
echo "# publish rate of the 100k file: $rate transfers/s ($(jq -r .elapsed_s "$TMP/json") s, $M messages)"
check "100k: exactly $M packs in payq.transfers" "$M" "$(pv_depth "$V" payq.transfers)"
pv_stream_items "$V" $((M + 1)) >"$TMP/stream"
check "100k: exactly $M packs of $N transfers + 1 manifest in payq.audit" "$M $N 1" \
    "$(awk -F'\t' '$1 == "transfers" { t++; m[$4] = 1 } $1 == "batch" { b++ }
        END { print length(m), t + 0, b + 0 }' "$TMP/stream")"
check "100k: every id once, in file order" "$(cut -d'"' -f4 "$TMP/good.jsonl" | md5sum)" \
    "$(awk -F'\t' '$1 == "transfers" { print $3 }' "$TMP/stream" | cut -d'"' -f4 | md5sum)"
manifest=$(awk -F'\t' '$1 == "batch" { print $3 }' "$TMP/stream")
today=$(date -u +%F)
check "100k: manifest batch, date and count" "$B $today $N" \
    "$(jq -r '"\(.batch_id) \(.business_date) \(.count)"' <<<"$manifest" 2>&1)"
check "100k: manifest totals equal the file's" "$(cat "$TMP/totals.want")" \
    "$(jq -r '.totals | to_entries[] | "\(.key) \(.value)"' <<<"$manifest" 2>&1)"
check "100k: manifest is the stream's last message, message_id = batch id" "batch $B" \
    "$(tail -n 1 "$TMP/stream" | cut -f1,2 | tr '\t' ' ')"
check "100k: transfers carry the batch id and business date" "$N" \
    "$(grep -c "^transfers.*\"batch_id\":\"$B\",\"business_date\":\"$today\"}"$'\t' "$TMP/stream")"

pv_drain "$V"
check "100k: worker drained the packs" 0 "$(pv_depth "$V" payq.transfers)"
sums="SELECT currency || ' ' || sum(amount) FROM payq.transfers WHERE batch_id = '$B' GROUP BY currency ORDER BY 1"
check "100k: ledger holds $N transfers of the batch" $N \
    "$(q "SELECT count(*) FROM payq.transfers WHERE batch_id = '$B'")"
check "100k: ledger sums per currency equal the file's" "$(cat "$TMP/totals.want")" "$(q "$sums")"
before=$(q "SELECT count(*), max(committed_at) FROM payq.transfers WHERE id LIKE '$P-g-%'")

# ---- the same file again: published again, nothing changes in the ledger
"$PRODUCER" publish "$TMP/good.jsonl" --batch-id "$B" --quiet >"$TMP/out" 2>"$TMP/err"
check "again: exit 0" 0 $?
check "again: --quiet prints nothing" "" "$(cat "$TMP/out" "$TMP/err")"
pv_drain "$V"
check "again: ledger unchanged" "$before" \
    "$(q "SELECT count(*), max(committed_at) FROM payq.transfers WHERE id LIKE '$P-g-%'")"
check "again: no conflicts recorded" 0 \
    "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id LIKE '$P-g-%'")"

# ---- packing: exact framing, pack_max 1, the 4 MiB limit
pv_create "$V-pk" || fail "could not create vhost $V-pk"
pv_create "$V-p1" || fail "could not create vhost $V-p1"
gen_transfers_file "$P-pk" 250 >"$TMP/pk.jsonl"
# The canonical body of each line: its fields in order, then the stamped ones.
sed "s/}\$/,\"batch_id\":\"$P-pkb\",\"business_date\":\"2031-05-06\"}/" "$TMP/pk.jsonl" >"$TMP/pk.canon"
printf 'producer:\n  pack_max: 100\n' >"$TMP/pack100.yaml"
printf 'producer:\n  pack_max: 1\n' >"$TMP/pack1.yaml"
pk_publish() { # VHOST CONFIG
    PAYQ_AMQP_URL=$(pv_url "$1") "$PRODUCER" publish "$TMP/pk.jsonl" --config "$2" \
        --batch-id "$P-pkb" --business-date 2031-05-06 --json >"$TMP/json" 2>"$TMP/err"
    echo "$? $(jq -r '"\(.confirmed) \(.messages) \(.pack_max)"' "$TMP/json" 2>&1)"
}
check "pack 100: exit 0, 250 transfers confirmed in 3 messages" "0 250 3 100" \
    "$(pk_publish "$V-pk" "$TMP/pack100.yaml")"
check "pack 100: 3 messages queued" 3 "$(pv_depth "$V-pk" payq.transfers)"
check "pack 100: queued as \"transfers\" of 100/100/50 lines, message_id the first id" \
    "transfers $P-pk-t-1 100|transfers $P-pk-t-101 100|transfers $P-pk-t-201 50" \
    "$(pv_peek "$V-pk" payq.transfers 10 | tr '\t' ' ' | paste -sd'|')"
pv_stream_items "$V-pk" 4 >"$TMP/pk.stream"
check "pack 100: stream holds the 3 packs (100/100/50 lines) then the manifest" \
    "transfers 1 100|transfers 2 100|transfers 3 50|batch 4 1" \
    "$(awk -F'\t' '{ n[$4]++; rk[$4] = $1 } END { for (i = 1; i in n; i++) print rk[i], i, n[i] }' \
        "$TMP/pk.stream" | paste -sd'|')"
if awk -F'\t' '$1 == "transfers" { print $3 }' "$TMP/pk.stream" | diff -q - "$TMP/pk.canon" >/dev/null; then
    ok "pack 100: its lines, in order, are exactly the canonical bodies"
else fail "pack 100: lines differ from the canonical bodies"; fi
check "pack 100: manifest counts transfers, not messages" 250 \
    "$(awk -F'\t' '$1 == "batch" { print $3 }' "$TMP/pk.stream" | jq -r .count)"

check "pack 1: exit 0, 250 transfers in 250 messages" "0 250 250 1" \
    "$(pk_publish "$V-p1" "$TMP/pack1.yaml")"
check "pack 1: 250 messages queued" 250 "$(pv_depth "$V-p1" payq.transfers)"
pv_stream_items "$V-p1" 251 >"$TMP/p1.stream"
check "pack 1: 250 \"transfer\" messages and the manifest" "250 250 1" \
    "$(awk -F'\t' '$1 == "transfer" { t++; m[$4] = 1 } $1 == "batch" { b++ } END { print t + 0, length(m), b + 0 }' "$TMP/p1.stream")"
if awk -F'\t' '$1 == "transfer" { print $3 }' "$TMP/p1.stream" | diff -q - "$TMP/pk.canon" >/dev/null &&
    [ "$(awk -F'\t' '$1 == "transfer" && index($3, "{\"id\":\"" $2 "\"") != 1' "$TMP/p1.stream" | wc -l)" = 0 ]; then
    ok "pack 1: each body is one canonical transfer, message_id its id"
else fail "pack 1: bodies or message ids differ from the canonical transfers"; fi

# Lines of about 4.3 KB (metadata near its 4 KiB limit): 1,000 of them would
# pass PAYQ_PACK_MAX_BODY, so the pack is cut early, never oversized.
meta=$(head -c 4060 /dev/zero | tr '\0' m)
gen_transfers_file "$P-big" 1000 ",\"metadata\":{\"m\":\"$meta\"}" >"$TMP/big.jsonl"
printf 'producer:\n  pack_max: 1000\n' >"$TMP/pack1000.yaml"
PAYQ_AMQP_URL=$(pv_url "$V-pk") "$PRODUCER" publish "$TMP/big.jsonl" --config "$TMP/pack1000.yaml" \
    --json >"$TMP/json" 2>"$TMP/err"
check "4 MiB: exit 0, 1000 transfers in 2 messages" "0 1000 2" "$? $(jq -r '"\(.confirmed) \(.messages)"' "$TMP/json")"
pv_stream_items "$V-pk" 7 | awk -F'\t' '$4 > 4 && $1 == "transfers"' >"$TMP/big.stream"
check "4 MiB: the first pack cut just under 4194304 bytes, the rest in the second" "ok 2 1000" \
    "$(awk -F'\t' '{ size[$4] += length($3) + (size[$4] ? 1 : 0); n++ }
        END { r = "ok"; for (m in size) { k++; if (size[m] > 4194304) r = "too big " size[m]
              if (m == 5 && size[m] < 4180000) r = "cut early " size[m] }; print r, k, n }' "$TMP/big.stream")"
pv_drain "$V-pk"
check "pack 100 and 4 MiB: worker drained every pack" 0 "$(pv_depth "$V-pk" payq.transfers)"
check "pack 100: ledger holds the 250 with the file's sums" "250 $(file_totals "$TMP/pk.jsonl" | paste -sd' ')" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE batch_id = '$P-pkb'") $(q "SELECT currency || ' ' || sum(amount) FROM payq.transfers WHERE batch_id = '$P-pkb' GROUP BY currency ORDER BY 1" | paste -sd' ')"
check "4 MiB: ledger holds all 1000" 1000 "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-big-t-%'")"

# ---- stdin, identical repeats, generated batch id, human summary
{ gen_transfers_file "$P-s" 5; gen_transfers_file "$P-s" 5 | head -n 2; } >"$TMP/small.jsonl"
"$PRODUCER" publish - --json <"$TMP/small.jsonl" >"$TMP/json" 2>"$TMP/err"
check "stdin: exit 0" 0 $?
check "stdin: identical repeats published once" "5 2 5" \
    "$(jq -r '"\(.count) \(.duplicates) \(.confirmed)"' "$TMP/json")"
check "stdin: generated batch id b-YYYYMMDD-<12 hex>" "true" \
    "$(jq -r '.batch_id_generated and (.batch_id | test("^b-[0-9]{8}-[0-9a-f]{12}$"))' "$TMP/json")"
gen_transfers_file "$P-h" 3 >"$TMP/h.jsonl"
"$PRODUCER" publish "$TMP/h.jsonl" --business-date 2031-05-06 >"$TMP/out" 2>/dev/null
check "human summary: exit 0" 0 $?
check "human summary: count, batch, totals, rate" "5" \
    "$(grep -cE '^published 3 transfers|^batch b-.*business date 2031-05-06|^  total (EUR|USD) [0-9]+$|transfers/s in 1 broker message$' "$TMP/out")"

# ---- open-accounts
printf '{"id":"%s-acc-1","currency":"EUR"}\n{"id":"%s-acc-2","currency":"USD","flags":["debits_must_not_exceed_credits"]}\n' \
    "$P" "$P" >"$TMP/acc.jsonl"
"$PRODUCER" open-accounts "$TMP/acc.jsonl" --json >"$TMP/json" 2>"$TMP/err"
check "open-accounts: exit 0, 2 confirmed" "0 2" "$? $(jq -r .confirmed "$TMP/json")"
printf '{"id":"%s-acc-3","currency":"eur"}\n' "$P" >"$TMP/acc-bad.jsonl"
"$PRODUCER" open-accounts "$TMP/acc-bad.jsonl" 2>"$TMP/err" >/dev/null
check "open-accounts: bad line exit 1" 1 $?
check "open-accounts: bad line reported" 1 "$(grep -c "^$TMP/acc-bad.jsonl:1: currency: " "$TMP/err")"
pv_drain "$V"
check "open-accounts: accounts in the ledger" "$P-acc-1 EUR 0|$P-acc-2 USD 1" \
    "$(q "SELECT id || ' ' || currency || ' ' || flags FROM payq.accounts WHERE id LIKE '$P-acc-%' ORDER BY id" | paste -sd'|')"

# ---- refused by the broker: unroutable (returned) messages are errors
pv_create_bare "$V-bare" || fail "could not create vhost $V-bare"
gen_transfers_file "$P-r" 3 >"$TMP/r.jsonl"
PAYQ_AMQP_URL=$(pv_url "$V-bare") "$PRODUCER" publish "$TMP/r.jsonl" >"$TMP/out" 2>"$TMP/err"
check "returned: exit 3" 3 $?
check "returned: says why and how many were confirmed" 1 \
    "$(grep -c 'publishing failed: message .* returned by the broker: 312 NO_ROUTE; 0 of 3 transfers confirmed, manifest not confirmed' "$TMP/err")"

# ---- interrupted: exit 3 with the confirmed count. One transfer per message
# (pack_max 1): packed, the whole file is confirmed in about a second, before
# the signal could reliably arrive.
pv_create "$V-int" || fail "could not create vhost $V-int"
PAYQ_AMQP_URL=$(pv_url "$V-int") "$PRODUCER" publish "$TMP/good.jsonl" --config "$TMP/pack1.yaml" \
    --json >"$TMP/json" 2>"$TMP/err" &
ipid=$!
for i in $(seq 1 100); do
    [ "$(pv_depth "$V-int" payq.transfers)" -gt 1000 ] 2>/dev/null && break
    sleep 0.1
done
kill -INT "$ipid"
wait "$ipid"
check "SIGINT while publishing: exit 3" 3 $?
confirmed=$(jq -r .confirmed "$TMP/json" 2>/dev/null)
check "SIGINT: says it was interrupted and how many were confirmed" 1 \
    "$(grep -c "interrupted by a stop signal; $confirmed of $N transfers confirmed" "$TMP/err")"
check "SIGINT: at least the confirmed are queued" 1 \
    "$([ "$(pv_depth "$V-int" payq.transfers)" -ge "${confirmed:-1}" ] && echo 1)"

# ---- usage errors
for args in "" "publish" "publish a b" "frobnicate" "publish $F --quiet --json" \
    "publish $F --batch-id 'bad id'" "publish $F --business-date 2031-02-30" \
    "open-accounts $F --batch-id x" "serve --json" "publish $F --nope"; do
    eval "\"$PRODUCER\" $args" >/dev/null 2>&1
    check "usage error exits 2: payq-producer $args" 2 $?
done
"$PRODUCER" publish "$TMP/does-not-exist" >/dev/null 2>"$TMP/err"
check "missing file: exit 1 with the reason" "1 1" "$? $(grep -c 'could not open file' "$TMP/err")"

finish

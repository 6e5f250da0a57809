#!/usr/bin/env bash
# chaos_producer_broker_restart: `payq-producer publish` of a 200,000-line
# file while the broker restarts in the middle (scripts/stack
# restart-broker, with the producer stopped meanwhile so that it cannot
# finish first). The command must still exit 0 with every transfer and the
# manifest confirmed, having reconnected and republished only what was not
# yet confirmed (whole packs of producer.pack_max transfers); the audit
# stream holds every id; after a worker drains the queue, each id is in the
# ledger exactly once.
# Restarting the broker disturbs everyone sharing the stack: this is the one
# test allowed to do it. Runs in a private vhost (lib/producer_common.sh).
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
set -uo pipefail
export LC_ALL=C
TEST_NAME=chaos_producer_broker_restart
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=pc$RUN_ID
V=payq-test-$P
N=200000
# Small packs: at the default pack_max the whole file is confirmed in about
# two seconds, before a restart could land in the middle; packs of 5 keep it
# publishing for several seconds while still exercising republished packs.
PACK=5
printf 'producer:\n  pack_max: %s\n' "$PACK" >"$TMP/producer.yaml"
M=$(ceil_div $N "$PACK") # broker messages
B=$P-b
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
export PAYQ_AMQP_URL
PAYQ_AMQP_URL=$(pv_url "$V")

gen_transfers_file "$P-t" $N >"$TMP/file.jsonl"
file_totals "$TMP/file.jsonl" >"$TMP/totals.want"

"$PRODUCER" publish "$TMP/file.jsonl" --config "$TMP/producer.yaml" --batch-id "$B" --json \
    >"$TMP/json" 2>"$TMP/err" &
ppid=$!
# Restart once a good part, but not all, of the file is queued. The
# producer is stopped (SIGSTOP) for the restart and continued after it: on a
# quiet machine it would otherwise confirm the rest of the file before the
# broker actually goes down (seen: 10,402 of 40,000 packs queued, no
# reconnect). It resumes on a connection the broker closed, with packs
# unconfirmed: what a restart mid-publish looks like to it.
restarted=no
for i in $(seq 1 120); do
    d=$(pv_depth "$V" payq.transfers)
    if [ "${d:-0}" -ge $((M / 5)) ]; then
        echo "# restarting the broker with ${d} of $M packs queued"
        kill -STOP "$ppid"
        "$SRC/scripts/stack" restart-broker >"$TMP/restart.log" 2>&1 && restarted=yes
        kill -CONT "$ppid"
        break
    fi
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.3
done
check "broker restarted while publishing" yes "$restarted"
[ "$restarted" = yes ] || tail -5 "$TMP/restart.log"
wait "$ppid"
rc=$?
check "publish exits 0" 0 $rc
[ $rc = 0 ] || tail -5 "$TMP/err"
check "every transfer, in $M packs, and the manifest confirmed" "true $N $M true" \
    "$(jq -r '"\(.ok) \(.confirmed) \(.messages) \(.manifest_confirmed)"' "$TMP/json" 2>&1)"
reconnects=$(jq -r .reconnects "$TMP/json" 2>/dev/null)
[ "${reconnects:-0}" -ge 1 ] && ok "publisher reconnected ($reconnects times)" ||
    fail "publisher never reconnected: the restart missed the publish"
extra=$(( $(jq -r .publish_calls "$TMP/json") - M - 1 ))
echo "# republished after the restart: $extra packs (at most the confirm window each time)"
check "it logged the lost connection" 1 "$(grep -c -m1 '"event":"broker_reconnect"' "$TMP/err")"

pv_stream_items "$V" >"$TMP/stream"
check "audit stream: every id" $N \
    "$(awk -F'\t' '$1 == "transfers" { print $3 }' "$TMP/stream" | cut -d'"' -f4 | sort -u | wc -l)"
check "audit stream: a manifest with the count and totals" "$N $(paste -sd' ' "$TMP/totals.want")" \
    "$(awk -F'\t' '$1 == "batch" { print $3 }' "$TMP/stream" | tail -n 1 |
        jq -r '"\(.count) \(.totals | to_entries | map("\(.key) \(.value)") | join(" "))"' 2>&1)"

pv_drain "$V"
check "queue drained" 0 "$(pv_depth "$V" payq.transfers)"
check "ledger: each id exactly once" "$N $N" \
    "$(q "SELECT count(*) || ' ' || count(DISTINCT id) FROM payq.transfers WHERE id LIKE '$P-t-%'")"
check "ledger: sums per currency equal the file's" "$(cat "$TMP/totals.want")" \
    "$(q "SELECT currency || ' ' || sum(amount) FROM payq.transfers WHERE batch_id = '$B' GROUP BY currency ORDER BY 1")"
check "ledger: no conflicts" 0 "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id LIKE '$P-t-%'")"

finish

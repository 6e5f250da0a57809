#!/usr/bin/env bash
# integration_worker_deadid: a dead letter keeps the publisher's AMQP
# message_id when its body has no readable id (not JSON, binary, an array,
# too big, empty, a badly framed pack, a bad line of a pack), both as the
# message_id of what goes to payq.dead and in payq.dead_letters.message_id,
# so an upstream system can find its message. A body whose own id can be
# read still goes by that id; a message_id that is not printable ASCII is
# kept with '?' for the other bytes.
source "$(dirname "$0")/lib/common.sh"
MGMT=$PAYQ_AMQP_MGMT_URL

# publish ROUTING_KEY MESSAGE_ID FILE: the file's bytes as the body, through
# the management API (base64, so any bytes), persistent.
publish() {
    jq -n --arg rk "$1" --arg id "$2" --arg b "$(base64 -w0 "$3")" \
        '{properties: {message_id: $id, delivery_mode: 2}, routing_key: $rk,
          payload: $b, payload_encoding: "base64"}' |
        mgmt_curl "$MGMT/api/exchanges/payq/payq.ingress/publish" -sf -X POST \
            -H 'content-type: application/json' --data-binary @- | grep -q '"routed":true' ||
        fail "publish $2"
}

mgmt_curl "$MGMT/api/queues/payq/payq.dead/contents" -sf -X DELETE >/dev/null || fail "purge payq.dead"

# Each body is unique to the run (dead_letters is keyed by the body's hash),
# except the empty one, which only payq.dead can show.
R=$RUN_ID
printf 'not json %s' "$R" >"$TMP/notjson"
printf '\x00\xff\xfe%s\x01' "$R" >"$TMP/binary"
printf '[{"id":"%s"}]' "$R" >"$TMP/array"
{ printf '{"pad":"%s' "$R"; head -c 17000 /dev/zero | tr '\0' x; printf '"}'; } >"$TMP/toobig"
: >"$TMP/empty"
printf '\n\n%s' "$R" >"$TMP/badpack" # empty lines: dead-lettered whole
printf '{"id":"dk%s-t-1","debit_account":"dk%s-a","credit_account":"dk%s-b","amount":"1","currency":"EUR"}\nline two %s' \
    "$R" "$R" "$R" "$R" >"$TMP/packline" # line 2 alone is dead
printf '{"id":"dk%s-own","amount":12}' "$R" >"$TMP/ownid" # schema-invalid, id readable
printf 'utf8 %s' "$R" >"$TMP/utf8"

declare -A WANT=(
    [notjson]="up-$R-notjson" [binary]="up-$R-binary" [array]="up-$R-array"
    [toobig]="up-$R-toobig" [empty]="up-$R-empty" [badpack]="up-$R-badpack"
    [packline]="up-$R-packline" [ownid]="dk$R-own"
    [utf8]="up-$R-??" # bytes outside printable ASCII become '?'
)
for k in notjson binary array toobig empty ownid; do publish transfer "up-$R-$k" "$TMP/$k"; done
publish transfers "up-$R-badpack" "$TMP/badpack"
publish transfers "up-$R-packline" "$TMP/packline"
publish transfer "up-$R-é" "$TMP/utf8"
"$BIN/payq-worker" --exit-when-idle 2000 2>"$TMP/worker.log"
check "worker exits 0" 0 "$?"
sleep 1
mgmt_curl "$MGMT/api/queues/payq/payq.dead/get" -sf -X POST -H 'content-type: application/json' \
    -d '{"count":100,"ackmode":"ack_requeue_false","encoding":"base64","truncate":50000}' >"$TMP/dead.json" ||
    fail "read payq.dead"
check "every bad message reached payq.dead" 9 "$(jq length "$TMP/dead.json")"
for k in "${!WANT[@]}"; do
    check "$k: payq.dead message_id" 1 \
        "$(jq --arg id "${WANT[$k]}" '[.[] | select(.properties.message_id == $id)] | length' "$TMP/dead.json")"
done
# The dead pack line's body is the line alone.
printf 'line two %s' "$R" >"$TMP/packline"
for k in "${!WANT[@]}"; do
    [ "$k" = empty ] && continue
    h=$(sha256sum "$TMP/$k" | cut -d' ' -f1)
    check "$k: payq.dead_letters.message_id" "${WANT[$k]}" \
        "$(q "SELECT message_id FROM payq.dead_letters WHERE body_sha256 = decode('$h', 'hex')")"
done
check "the pack's good line was booked" 1 "$(q "SELECT count(*) FROM payq.transfers WHERE id = 'dk$R-t-1'")"
finish

#!/usr/bin/env bash
# integration_producer_http: `payq-producer serve` against the real broker
# and ledger. Provokes every status code of the API (202 400 401 404 405 413
# 415 422 503, GET 200 and 404) and checks each answer's JSON body and
# headers; a transfer accepted with 202 is in the ledger after the worker
# drains; 422 publishes nothing; a request goes out in packs of
# producer.pack_max (100 transfers with pack_max 40: 3 "transfers" messages
# of 40/40/20 canonical lines; pack_max 1: one "transfer" message each);
# 8 concurrent clients posting 50 requests of 20 transfers each (sharing
# packs: group commit) lose nothing (every id in the ledger exactly once); SIGTERM lets a request in flight
# finish and exits 0.
# Runs in a private vhost (see lib/producer_common.sh) so counts are exact.
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=ph$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
VURL=$(pv_url "$V")
cat >"$TMP/producer.yaml" <<EOF
producer:
  http_threads: 4
  max_request_bytes: 65536
  max_batch_items: 100
EOF

# start_server NAME PORT [VAR=VALUE...]: serve in the background (a child
# of this shell, so its exit status can be waited for: read $! after).
start_server() {
    local name=$1 port=$2
    shift 2
    env PAYQ_AMQP_URL="$VURL" "$@" "$PRODUCER" serve --listen "127.0.0.1:$port" \
        --config "$TMP/producer.yaml" >/dev/null 2>>"$TMP/$name.log" &
}

PORT=$(free_port 17181)
start_server serve "$PORT"
SPID=$!
BG_PIDS+=("$SPID")
BASE=http://127.0.0.1:$PORT
wait_http "$BASE/healthz" || { fail "server did not start: $(tail -3 "$TMP/serve.log")"; finish; }
AUTH="Authorization: Bearer $PAYQ_API_TOKEN"
JSON="Content-Type: application/json"

# req METHOD URL [curl args]: prints the status; body in $TMP/body, headers in $TMP/hdr.
req() {
    local m=$1 url=$2
    shift 2
    local how=(-X "$m")
    [ "$m" = HEAD ] && how=(-I)
    curl -s "${how[@]}" -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --max-time 30 "$url" "$@"
}
hdr() { tr -d '\r' <"$TMP/hdr" | awk -v h="$1" 'tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*: */, ""); print }'; }
# expect NAME STATUS METHOD URL [curl args]: status, JSON content type, a JSON body.
expect() {
    local name=$1 want=$2 got
    shift 2
    got=$(req "$@")
    check "$name: status" "$want" "$got"
    if [ "$1" != HEAD ]; then
        check "$name: application/json" "application/json" "$(hdr content-type)"
        jq -e . "$TMP/body" >/dev/null 2>&1 && ok "$name: JSON body" ||
            fail "$name: body is not JSON: $(head -c 200 "$TMP/body")"
    fi
}
tr1() { printf '{"id":"%s","debit_account":"%s-a1","credit_account":"%s-a2","amount":"%s","currency":"EUR"%s}' "$1" "$P" "$P" "${2:-100}" "${3:-}"; }
depth() { pv_depth "$V" payq.transfers; }

# ---- operations
expect "healthz" 200 GET "$BASE/healthz"
expect "readyz" 200 GET "$BASE/readyz"
check "readyz: broker and database ok" "ok ok" "$(jq -r '"\(.broker) \(.database)"' "$TMP/body")"
expect "unknown route" 404 GET "$BASE/v2/nothing"
expect "wrong method" 405 DELETE "$BASE/v1/transfers"
check "wrong method: Allow header" "POST" "$(hdr allow)"
expect "HEAD on a GET route" 405 HEAD "$BASE/healthz"

# ---- authentication
expect "no token" 401 POST "$BASE/v1/transfers" -H "$JSON" --data "$(tr1 "$P-u1")"
check "no token: WWW-Authenticate" 'Bearer realm="payq"' "$(hdr www-authenticate)"
expect "wrong token" 401 POST "$BASE/v1/transfers" -H "$JSON" -H "Authorization: Bearer nope" \
    --data "$(tr1 "$P-u1")"
expect "GET without token" 401 GET "$BASE/v1/transfers/$P-u1"

# ---- request shape
expect "text/plain body" 415 POST "$BASE/v1/transfers" -H "$AUTH" -H "Content-Type: text/plain" \
    --data "$(tr1 "$P-u1")"
head -c 70000 /dev/zero | tr '\0' ' ' >"$TMP/big"
expect "Content-Length over the limit" 413 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data-binary @"$TMP/big"
expect "chunked body over the limit" 413 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    -H "Transfer-Encoding: chunked" --data-binary @"$TMP/big"
expect "not JSON" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" --data 'hello'
expect "JSON but not an object or array" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" --data '"x"'
expect "empty array" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" --data '[]'
expect "empty body" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" --data ''
expect "broken item" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "[$(tr1 "$P-u1"),{\"id\":01}]"
many=$(for i in $(seq 1 101); do tr1 "$P-many-$i"; echo ,; done | paste -sd '' | sed 's/,$//')
expect "101 items (max_batch_items 100)" 400 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" --data "[$many]"

# ---- 422: every invalid item named, nothing published
d0=$(depth)
expect "invalid items" 422 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "[$(tr1 "$P-v1"),$(tr1 "$P-v2" 100 ',"foo":1'),$(tr1 "$P-v3" 0),{\"id\":\"$P-v4\",\"id\":\"$P-v4\"},$(tr1 "$P-v1" 5)]"
check "invalid items: index, field, reason of each" \
    '1 foo unknown field|2 amount must be at least 1|3 id duplicate key|4 id repeats the id of item 0 with different content' \
    "$(jq -r '.errors[] | "\(.index) \(.field) \(.reason)"' "$TMP/body" | paste -sd'|')"
expect "invalid single object" 422 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "$(tr1 "$P-v5" 1 ',"currency":"EUR"')"
check "nothing published by 400/413/415/422" "$d0" "$(depth)"

# ---- 202
PAYQ_AMQP_URL=$VURL "$PRODUCER" open-accounts - --quiet <<EOF
{"id":"$P-a1","currency":"EUR"}
{"id":"$P-a2","currency":"EUR"}
EOF
d0=$(depth)
expect "three transfers" 202 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "[$(tr1 "$P-ok1" 100),$(tr1 "$P-ok2" 200),$(tr1 "$P-ok1" 100)]"
check "three transfers: accepted ids (repeat listed once)" "[\"$P-ok1\",\"$P-ok2\"]" \
    "$(jq -c .accepted "$TMP/body")"
check "three transfers: one pack queued (pack_max $PACK)" $((d0 + 1)) "$(depth)"
expect "one transfer object" 202 POST "$BASE/v1/transfers" -H "$AUTH" -H "$JSON; charset=utf-8" \
    --data "$(tr1 "$P-ok3" 300)"
check "one transfer object: accepted" "[\"$P-ok3\"]" "$(jq -c .accepted "$TMP/body")"
expect "GET before the worker ran" 404 GET "$BASE/v1/transfers/$P-ok1" -H "$AUTH"
check "GET before the worker ran: detail" "not in the ledger; it may still be queued" \
    "$(jq -r .detail "$TMP/body")"
expect "GET invalid id" 400 GET "$BASE/v1/transfers/bad%20id" -H "$AUTH"
pv_drain "$V"
wait_ledger "SELECT count(*) FROM payq.transfers WHERE id IN ('$P-ok1','$P-ok2','$P-ok3')" 3 >/dev/null
for i in $(seq 1 20); do # the standby may be a moment behind the primary
    [ "$(req GET "$BASE/v1/transfers/$P-ok2" -H "$AUTH")" = 200 ] && break
    sleep 0.5
done
expect "GET after the worker ran" 200 GET "$BASE/v1/transfers/$P-ok2" -H "$AUTH"
check "GET: outcome fields" "$P-ok2 posted null 200 EUR $P-a1 $P-a2 true" \
    "$(jq -r '"\(.id) \(.status) \(.reason) \(.amount) \(.currency) \(.debit_account) \(.credit_account) \(.committed_at | test("Z$"))"' "$TMP/body")"
check "422 items never reached the ledger" 0 \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-v%' OR id LIKE '$P-many-%' OR id LIKE '$P-u%'")"

# ---- metrics
got=$(req GET "$BASE/metrics")
check "metrics: 200 text/plain" "200 text/plain; version=0.0.4" "$got $(hdr content-type)"
check "metrics: 202 answers counted" 2 \
    "$(awk '/^payq_producer_http_requests_total\{route="\/v1\/transfers",code="202"\}/ { print $2 }' "$TMP/body")"
check "metrics: confirmed messages counted (two packs)" 2 \
    "$(awk '/^payq_producer_messages_confirmed_total / { print $2 }' "$TMP/body")"
check "metrics: the transfers they carried counted" 3 \
    "$(awk '/^payq_producer_transfers_confirmed_total / { print $2 }' "$TMP/body")"
check "metrics: latency histogram" 1 "$(grep -c '^payq_producer_http_request_duration_seconds_count ' "$TMP/body")"

# ---- 503: a second server whose broker and database are unreachable
PORT2=$(free_port $((PORT + 1)))
start_server dead "$PORT2" PAYQ_AMQP_URL="amqp://payq:x@127.0.0.1:9/payq" \
    PAYQ_PG_READ_CONNINFO="host=127.0.0.1 port=9 dbname=payq user=payq_reader connect_timeout=2"
DPID=$!
BG_PIDS+=("$DPID")
wait_http "http://127.0.0.1:$PORT2/healthz" || fail "second server did not start"
expect "dead broker: POST" 503 POST "http://127.0.0.1:$PORT2/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "$(tr1 "$P-dead1")"
check "dead broker: says nothing was accepted" 1 "$(jq -r .detail "$TMP/body" | grep -c 'no transfer of this request was accepted')"
expect "dead broker and database: readyz" 503 GET "http://127.0.0.1:$PORT2/readyz"
check "readyz names what failed" "unreachable unreachable" "$(jq -r '"\(.broker) \(.database)"' "$TMP/body")"
expect "dead database: GET" 503 GET "http://127.0.0.1:$PORT2/v1/transfers/$P-ok1" -H "$AUTH"
check "dead database: the 503 says when to retry (Retry-After)" 1 \
    "$(curl -s -o /dev/null -D - -H "$AUTH" "http://127.0.0.1:$PORT2/v1/accounts/$P-A" | grep -ci '^retry-after: [1-9]')"
kill -TERM "$DPID"
wait "$DPID"
check "second server: SIGTERM exits 0" 0 $?

# ---- a live broker and a dead database: still ready, and a POST is taken
# (a POST needs only the broker; a lost standby must not take replicas out)
PORT3=$(free_port $((PORT + 2)))
start_server nodb "$PORT3" \
    PAYQ_PG_READ_CONNINFO="host=127.0.0.1 port=9 dbname=payq user=payq_reader connect_timeout=2"
NPID=$!
BG_PIDS+=("$NPID")
wait_http "http://127.0.0.1:$PORT3/healthz" || fail "third server did not start"
expect "dead database only: readyz" 200 GET "http://127.0.0.1:$PORT3/readyz"
check "readyz reports the database" "ready ok unreachable" \
    "$(jq -r '"\(.status) \(.broker) \(.database)"' "$TMP/body")"
expect "dead database only: POST accepted" 202 POST "http://127.0.0.1:$PORT3/v1/transfers" \
    -H "$AUTH" -H "$JSON" --data "$(tr1 "$P-nodb1")"
kill -TERM "$NPID"
wait "$NPID"
check "third server: SIGTERM exits 0" 0 $?

# ---- packing: servers with pack_max 40 and 1, each in a vhost of its own
pack_server() { # NAME PACK_MAX: starts it and sets PK_BASE, PK_PID, PK_V
    PK_V=$V-$1
    pv_create "$PK_V" || fail "could not create vhost $PK_V"
    printf 'producer:\n  max_batch_items: 100\n  pack_max: %s\n' "$2" >"$TMP/$1.yaml"
    local port
    port=$(free_port $((PORT + 10)))
    env PAYQ_AMQP_URL="$(pv_url "$PK_V")" "$PRODUCER" serve --listen "127.0.0.1:$port" \
        --config "$TMP/$1.yaml" >/dev/null 2>>"$TMP/$1.log" &
    PK_PID=$!
    BG_PIDS+=("$PK_PID")
    PK_BASE=http://127.0.0.1:$port
    wait_http "$PK_BASE/healthz" || fail "server $1 did not start: $(tail -3 "$TMP/$1.log")"
}
for i in $(seq 1 100); do tr1 "$P-pk-$i" "$i"; echo; done >"$TMP/pk.lines"
sed 's/$/,/' "$TMP/pk.lines" | paste -sd '' | sed 's/^/[/; s/,$/]/' >"$TMP/pk.json"
pack_server p40 40
expect "pack_max 40: 100 transfers" 202 POST "$PK_BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data-binary @"$TMP/pk.json"
check "pack_max 40: all 100 accepted" 100 "$(jq '.accepted | length' "$TMP/body")"
check "pack_max 40: 3 messages queued" 3 "$(pv_depth "$PK_V" payq.transfers)"
pv_stream_items "$PK_V" 3 >"$TMP/p40.stream"
check "pack_max 40: \"transfers\" packs of 40/40/20 lines, message_id the first id" \
    "transfers $P-pk-1 40|transfers $P-pk-41 40|transfers $P-pk-81 20" \
    "$(awk -F'\t' '{ n[$4]++; h[$4] = $1 " " $2 } END { for (i = 1; i in n; i++) print h[i], n[i] }' \
        "$TMP/p40.stream" | paste -sd'|')"
# Transfers are published as sent: canonical bodies equal the items here.
check "pack_max 40: the lines are the items' canonical bodies, in order" "" \
    "$(awk -F'\t' '{ print $3 }' "$TMP/p40.stream" | diff - "$TMP/pk.lines")"
kill -TERM "$PK_PID"; wait "$PK_PID"
check "pack_max 40: server exits 0" 0 $?
pv_drain "$PK_V"
check "pack_max 40: the worker booked all 100" "100 5050" \
    "$(q "SELECT count(*) || ' ' || sum(amount) FROM payq.transfers WHERE id LIKE '$P-pk-%'")"

pack_server p1 1
expect "pack_max 1: 3 transfers" 202 POST "$PK_BASE/v1/transfers" -H "$AUTH" -H "$JSON" \
    --data "[$(tr1 "$P-one1" 1),$(tr1 "$P-one2" 2),$(tr1 "$P-one3" 3)]"
check "pack_max 1: 3 messages queued" 3 "$(pv_depth "$PK_V" payq.transfers)"
check "pack_max 1: one \"transfer\" message per transfer, message_id its id" \
    "transfer $P-one1 $(tr1 "$P-one1" 1)|transfer $P-one2 $(tr1 "$P-one2" 2)|transfer $P-one3 $(tr1 "$P-one3" 3)" \
    "$(pv_stream_items "$PK_V" 3 | cut -f1-3 | tr '\t' ' ' | paste -sd'|')"
kill -TERM "$PK_PID"; wait "$PK_PID"
check "pack_max 1: server exits 0" 0 $?

# ---- 8 concurrent clients x 50 requests x 20 transfers
mkdir -p "$TMP/c"
awk -v p="$P" -v dir="$TMP/c" 'BEGIN {
    for (c = 1; c <= 8; c++) for (r = 1; r <= 50; r++) {
        f = sprintf("%s/%d-%d.json", dir, c, r)
        printf "[" > f
        for (k = 1; k <= 20; k++)
            printf "%s{\"id\":\"%s-c%d-%d-%d\",\"debit_account\":\"%s-a1\",\"credit_account\":\"%s-a2\",\"amount\":\"%d\",\"currency\":\"EUR\"}",
                (k > 1 ? "," : ""), p, c, r, k, p, p, k > f
        printf "]" > f
        close(f)
    } }'
# One curl per client, its 50 requests chained with --next over one kept-alive
# connection: spawning a curl per request would measure process creation
# (about 100 ms each on a loaded 2-core machine), not the server.
t0=${EPOCHREALTIME/./}
for c in 1 2 3 4 5 6 7 8; do
    args=()
    for r in $(seq 1 50); do
        args+=(-s -o /dev/null -w '%{http_code}\n' --max-time 60 -H "$AUTH" -H "$JSON"
            --data-binary @"$TMP/c/$c-$r.json" "$BASE/v1/transfers" --next)
    done
    curl "${args[@]:0:${#args[@]}-1}" >"$TMP/c/codes.$c" &
done
wait_clients() { local p; for p in $(jobs -p); do [ "$p" = "$SPID" ] || wait "$p"; done; }
wait_clients
t1=${EPOCHREALTIME/./}
check "8 clients: 400 requests answered 202" "400" "$(cat "$TMP"/c/codes.* | grep -c '^202$')"
# Group commit: requests of 20 share packs of up to 100, so between 80 and 400 messages.
msgs=$(depth)
check "8 clients: 80 to 400 shared packs queued" true "$([ "${msgs:-0}" -ge 80 ] && [ "$msgs" -le 400 ] && echo true)"
echo "# 8 clients: 400 requests of 20 transfers in $(( (t1 - t0) / 1000 )) ms: $(( 400 * 1000000 / (t1 - t0) )) requests/s, $(( 8000 * 1000000 / (t1 - t0) )) transfers/s"
pv_drain "$V"
check "8 clients: every id in the ledger exactly once" "8000 8000" \
    "$(q "SELECT count(*) || ' ' || count(DISTINCT id) FROM payq.transfers WHERE id LIKE '$P-c%'")"

# ---- SIGTERM with a request in flight: its body is still arriving (sent at
# 10 KB/s) when the signal comes; the server must read it, answer, then exit.
ref=$(head -c 140 /dev/zero | tr '\0' r)
for i in $(seq 1 100); do tr1 "$P-term-$i" 7 ",\"reference\":\"$ref\""; echo ,; done |
    paste -sd '' | sed 's/^/[/; s/,$/]/' >"$TMP/term.json"
curl -s -o "$TMP/term.body" -w '%{http_code}' --max-time 30 --limit-rate 10K -H "$AUTH" \
    -H "$JSON" --data-binary @"$TMP/term.json" "$BASE/v1/transfers" >"$TMP/term.code" &
cpid=$!
sleep 1
kill -TERM "$SPID"
wait "$cpid"
wait "$SPID"
src=$?
check "SIGTERM: the request in flight was answered" "202" "$(cat "$TMP/term.code")"
check "SIGTERM: server exited 0" 0 "$src"
check "SIGTERM: nothing accepted after the stop" "" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" | grep -v '^000$')"
grep -q '"level":"error"' "$TMP/serve.log" && fail "server logged errors: $(grep '"level":"error"' "$TMP/serve.log" | head -3)"

finish

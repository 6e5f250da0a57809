#!/usr/bin/env bash
# integration_producer_http_group: group commit across HTTP requests
# (issue 12) against the real broker, in private vhosts. 64 concurrent
# one-transfer requests (linger 50 ms) all answer 202 and travel in far
# fewer than 64 shared "transfers" packs, each id exactly once on the audit
# stream, each pack's message_id its first line's id. In a vhost where
# nothing is bound (every message returned by the broker), 16 concurrent
# requests all answer 503 "nothing accepted" and the server still answers
# the next request (a fresh connection per pack publisher).
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http_group
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/producer_common.sh"

P=phg$RUN_ID
V=payq-test-$P
VB=payq-test-$P-bare
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
pv_create_bare "$VB" || { fail "could not create bare vhost $VB"; finish; }
cat >"$TMP/producer.yaml" <<YAML
producer:
  http_threads: 64
  group_publishers: 2
  group_linger_us: 50000
YAML
serve() { # VHOST PORT [CONFIG]
    PAYQ_AMQP_URL=$(pv_url "$1") "$PRODUCER" serve --listen "127.0.0.1:$2" \
        --config "${3:-$TMP/producer.yaml}" >/dev/null 2>>"$TMP/serve-$2.log" &
    BG_PIDS+=("$!")
    wait_http "http://127.0.0.1:$2/healthz" || fail "server on $2 did not start"
}
# burst PORT PREFIX N: N one-transfer POSTs from N threads released at once
# (processes per request would arrive spread over seconds here); prints
# each status, one a line.
burst() {
    /usr/bin/python3 - "$@" <<'PY'
import http.client, json, sys, threading
port, prefix, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
token = __import__("os").environ["PAYQ_API_TOKEN"]
go = threading.Barrier(n)
codes = [None] * n
def one(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.connect()
    body = json.dumps({"id": "%s-%d" % (prefix, i), "debit_account": prefix + "-a",
                       "credit_account": prefix + "-b", "amount": "100", "currency": "EUR"})
    go.wait()
    try:
        c.request("POST", "/v1/transfers", body=body, headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        codes[i] = c.getresponse().status
    except OSError as e:
        codes[i] = "error"
th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in th]
[t.join() for t in th]
print("\n".join(str(c) for c in codes))
PY
}

PORT=$(free_port 17381)
serve "$V" "$PORT"
burst "$PORT" "$P-g" 64 >"$TMP/codes"
check "64 concurrent requests: all 202" "64 202" "$(sort "$TMP/codes" | uniq -c | awk '{print $1, $2}')"
msgs=$(pv_depth "$V" payq.transfers)
echo "# 64 one-transfer requests travelled in $msgs messages"
check "shared packs: fewer than 32 messages for 64 requests" true "$([ "${msgs:-99}" -lt 32 ] && echo true)"
pv_stream_items "$V" 64 >"$TMP/items"
check "every id exactly once on the audit stream" 64 "$(cut -f3 "$TMP/items" | jq -r .id | sort -u | grep -c "^$P-g-")"
check "every message is a transfers pack" "transfers" "$(cut -f1 "$TMP/items" | sort -u | paste -sd' ')"
check "each pack's message_id is its first line's id" 0 "$(awk -F'\t' '$4 != last { last = $4; split($3, a, "\""); if (a[4] != $2) bad++ } END { print bad + 0 }' "$TMP/items")"

PORT2=$(free_port $((PORT + 1)))
serve "$VB" "$PORT2"
burst "$PORT2" "$P-r" 16 >"$TMP/codes2"
check "returned packs: all 16 requests 503" "16 503" "$(sort "$TMP/codes2" | uniq -c | awk '{print $1, $2}')"
check "still answering after the failures" 503 "$(burst "$PORT2" "$P-again" 1)"

# An idle publisher keeps its broker connection: with heartbeat_s 2 and one
# publisher, a burst opens its connection, 7 s pass with nothing to publish
# (three intervals, after which RabbitMQ closes a connection that sent
# nothing), and the next burst publishes on the same connection: no loss, no
# reconnect in the log.
sed 's/group_publishers: 2/group_publishers: 1/' "$TMP/producer.yaml" >"$TMP/producer-hb.yaml"
printf 'amqp:\n  heartbeat_s: 2\n' >>"$TMP/producer-hb.yaml"
PORT3=$(free_port $((PORT + 2)))
serve "$V" "$PORT3" "$TMP/producer-hb.yaml"
burst "$PORT3" "$P-h1" 8 >"$TMP/codes3"
sleep 7
burst "$PORT3" "$P-h2" 8 >>"$TMP/codes3"
check "after an idle spell: all 16 requests 202" "16 202" "$(sort "$TMP/codes3" | uniq -c | awk '{print $1, $2}')"
check "no broker connection lost while idle" 0 \
    "$(grep -c '"event":"\(broker_reconnect\|amqp_error\)"' "$TMP/serve-$PORT3.log")"

# The same without group commit (group_publishers 0: each pool thread
# publishes its requests on a connection of its own, as it does a request
# too large for a shared pack): the server's loop heartbeats the idle
# threads' connections.
printf 'producer:\n  http_threads: 2\n  group_publishers: 0\namqp:\n  heartbeat_s: 2\n' \
    >"$TMP/producer-hb0.yaml"
PORT4=$(free_port $((PORT + 3)))
serve "$V" "$PORT4" "$TMP/producer-hb0.yaml"
burst "$PORT4" "$P-p1" 8 >"$TMP/codes4"
sleep 7
burst "$PORT4" "$P-p2" 8 >>"$TMP/codes4"
check "pool threads, after an idle spell: all 16 requests 202" "16 202" \
    "$(sort "$TMP/codes4" | uniq -c | awk '{print $1, $2}')"
check "no pool thread's broker connection lost while idle" 0 \
    "$(grep -c '"event":"\(broker_reconnect\|amqp_error\)"' "$TMP/serve-$PORT4.log")"
finish

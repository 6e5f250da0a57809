#!/usr/bin/env bash
# integration_producer_http_flood: the HTTP intake stays answerable under a
# connection flood (issue 17 item 6). 2,000 connections that never send a
# byte, from four client addresses (127.0.0.2-5; more than the per-IP limit
# of 300 from each, and together more than the 1,024 connection limit), and
# one client trickling a request's headers a byte every 200 ms. While they
# are held, GET /healthz and /readyz answer 200 and a real POST answers 202
# (its transfer is in the queue), each within 2 s, from 127.0.0.1; the
# trickler is cut off at the 3 s header deadline (it cannot extend it),
# and every idle connection is closed by the server within the deadline.
# Runs in a private vhost (see lib/producer_common.sh) so counts are exact.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http_flood
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/producer_common.sh"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

P=phf$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
cat >"$TMP/producer.yaml" <<YAML
producer:
  http_threads: 4
  http_max_connections: 1024
  http_max_per_ip: 300
  http_header_timeout_ms: 3000
  http_body_timeout_ms: 3000
YAML
start_serve "$V" 17281 "$TMP/producer.yaml" || finish

/usr/bin/python3 "$SRC/tests/tools/http_flood.py" --port "$PORT" --token "$PAYQ_API_TOKEN" \
    --id-prefix "$P" --idle 2000 --sources 4 --trickle-ms 200 --rounds 3 --wait-s 8 \
    >"$TMP/flood.json" 2>"$TMP/flood.err"
check "flood tool ran" 0 $?
cat "$TMP/flood.json"
j() { jq -r "$1" "$TMP/flood.json"; }
check "2,000 idle connections opened" 2000 "$(j .idle_opened)"
check "every /healthz answered 200" "200 200 200" "$(j '[.probes[] | select(.path == "/healthz") | .status] | join(" ")')"
check "every /readyz answered 200" "200 200 200" "$(j '[.probes[] | select(.path == "/readyz") | .status] | join(" ")')"
check "every POST answered 202" "202 202 202" "$(j '[.probes[] | select(.path == "/v1/transfers") | .status] | join(" ")')"
check "every probe answered within 2 s" 0 "$(j '[.probes[] | select(.secs > 2)] | length')"
check "the 3 posted transfers are queued" 3 "$(pv_depth "$V" payq.transfers)"
check "trickler cut off between 2.9 and 4.5 s" true "$(j '.trickle_closed_after_s != null and .trickle_closed_after_s >= 2.9 and .trickle_closed_after_s <= 4.5')"
check "every idle connection closed by the server" 0 "$(j .idle_still_open)"
check "the server is still up" 0 "$(kill -0 "$SPID" 2>/dev/null; echo $?)"
check "the flood was logged in one summary, not per connection" true \
    "$(sleep 10; [ "$(grep -c '"event":"http_library"' "$TMP/serve.log")" -lt 200 ] &&
        grep -q '"event":"http_connections_closed"' "$TMP/serve.log" && echo true)"
finish

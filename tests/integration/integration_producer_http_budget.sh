#!/usr/bin/env bash
# integration_producer_http_budget: the HTTP intake holds at most
# producer.body_memory_bytes of request bodies at once, every connection
# together. A body is read whole before it is checked, so before this bound
# slow uploads on many connections could take the replica's memory (100
# uploads of 4 MB held open took one from 13 to 394 MiB of RSS). With a
# budget of 3,000,000 bytes and one upload of 2,000,000 held half sent: a
# second of 1,500,000 is answered 503 with Retry-After from its headers
# alone, a chunked one of 1,200,000 503 once it would go over, a small one
# 202; once the held one completes (202), the second's size is taken (202).
# Exactly the three accepted transfers are queued. Runs in a private vhost
# (see lib/producer_common.sh) so counts are exact.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http_budget
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/producer_common.sh"

P=phb$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
cat >"$TMP/producer.yaml" <<YAML
producer:
  http_threads: 4
  max_request_bytes: 2000000
  body_memory_bytes: 3000000
  replay_check: false
YAML
start_serve "$V" 17291 "$TMP/producer.yaml" || finish

/usr/bin/python3 "$SRC/tests/tools/http_bodies.py" --port "$PORT" --token "$PAYQ_API_TOKEN" \
    --id-prefix "$P" --held 2000000 --second 1500000 --chunked 1200000 \
    >"$TMP/bodies.json" 2>"$TMP/bodies.err"
check "bodies tool ran" 0 $?
cat "$TMP/bodies.json"
j() { jq -r "$1" "$TMP/bodies.json"; }
check "a second body over the budget: 503 from its headers" 503 "$(j .second_while_held.status)"
check "... with Retry-After: 1" 1 "$(j .second_while_held.retry_after)"
check "... saying why" "too many request bodies at once" "$(j .second_while_held.error)"
check "... at once" true "$(j '.second_while_held.secs < 2')"
check "a chunked body that would go over: 503" 503 "$(j .chunked_while_held.status)"
check "a small body within it: 202" 202 "$(j .small_while_held.status)"
check "the held upload, once complete: 202" 202 "$(j .held.status)"
check "the second body's size after it: 202" 202 "$(j .second_after.status)"
check "the three accepted transfers are queued" 3 "$(pv_depth "$V" payq.transfers)"
check "the server is still up" 0 "$(kill -0 "$SPID" 2>/dev/null; echo $?)"
finish

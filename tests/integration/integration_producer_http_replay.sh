#!/usr/bin/env bash
# integration_producer_http_replay: POST /v1/transfers against ids the
# ledger already holds (issue 12), on the real broker, worker and ledger.
# A replay with the same payload answers 202, is published again, and the
# ledger still holds the id once with the original amount and balances
# (no conflict recorded). The same id with another amount, debit account,
# credit account or currency answers 409 naming that field; a request
# mixing a new id with a conflicting one is refused whole: in each case
# nothing is published (queue depth and audit stream unchanged), the new
# id never reaches the ledger, and the original row is unchanged. With the
# read replica unreachable a conflicting request is published (202) and the
# worker records the conflict in payq.conflicts, the original untouched; so
# it does with producer.replay_check: false, which never looks.
# Runs in a private vhost (see lib/producer_common.sh) so counts are exact.
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http_replay
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=rp$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
VURL=$(pv_url "$V")
AUTH="Authorization: Bearer $PAYQ_API_TOKEN"
JSON="Content-Type: application/json"

start_server() { # NAME PORT [VAR=VALUE...]: serve in the background
    local name=$1 port=$2
    shift 2
    env PAYQ_AMQP_URL="$VURL" "$@" "$PRODUCER" serve --listen "127.0.0.1:$port" \
        >/dev/null 2>>"$TMP/$name.log" &
}
req() { # METHOD URL [curl args]: prints the status; body in $TMP/body
    local m=$1 url=$2
    shift 2
    curl -s -X "$m" -o "$TMP/body" -w '%{http_code}' --max-time 30 "$url" "$@"
}
post() { req POST "$1/v1/transfers" -H "$AUTH" -H "$JSON" --data "$2"; }
# tr1 ID AMOUNT [DEBIT] [CREDIT] [CURRENCY]
tr1() {
    printf '{"id":"%s","debit_account":"%s","credit_account":"%s","amount":"%s","currency":"%s"}' \
        "$1" "${3:-$P-a1}" "${4:-$P-a2}" "$2" "${5:-EUR}"
}
depth() { pv_depth "$V" payq.transfers; }
# Messages in the vhost's audit stream, read until idle (not up to an
# expected count, which would miss a surplus).
stream_len() { pv_stream "$V" | grep -c $'\t'; }
row() { q "SELECT count(*) || ' ' || coalesce(max(amount), 0) || ' ' || coalesce(max(credit_account), '-') FROM payq.transfers WHERE id = '$1'"; }
balances() { q "SELECT string_agg(id || '=' || debits_posted || '/' || credits_posted, ' ' ORDER BY id) FROM payq.accounts WHERE id LIKE '$P-%'"; }
conflicts() { q "SELECT count(*) || ' ' || coalesce(string_agg(reason, ','), '-') FROM payq.conflicts WHERE entity_id = '$1'"; }

PORT=$(free_port 17191)
start_server serve "$PORT"
BG_PIDS+=("$!")
BASE=http://127.0.0.1:$PORT
wait_http "$BASE/healthz" || { fail "server did not start: $(tail -3 "$TMP/serve.log")"; finish; }

PAYQ_AMQP_URL=$VURL "$PRODUCER" open-accounts - --quiet <<EOF
{"id":"$P-a1","currency":"EUR"}
{"id":"$P-a2","currency":"EUR"}
{"id":"$P-a3","currency":"EUR"}
EOF
T=$P-t1
check "original: 202" 202 "$(post "$BASE" "$(tr1 "$T" 1250)")"
pv_drain "$V"
wait_ledger "SELECT count(*) FROM payq.transfers WHERE id = '$T'" 1 >/dev/null
for _ in $(seq 1 40); do # the replica the check reads may be a moment behind
    [ "$(req GET "$BASE/v1/transfers/$T" -H "$AUTH")" = 200 ] && break
    sleep 0.25
done
check "original: booked once, 1250 to a2" "1 1250 $P-a2" "$(row "$T")"
B0=$(balances)
check "original: balances" "$P-a1=1250/0 $P-a2=0/1250 $P-a3=0/0" "$B0"

# ---- same payload again: 202, published, nothing doubled
n0=$(stream_len)
check "audit stream: 3 accounts and the original" 4 "$n0"
check "replay: 202" 202 "$(post "$BASE" "$(tr1 "$T" 1250)")"
check "replay: accepted lists the id" "[\"$T\"]" "$(jq -c .accepted "$TMP/body")"
check "replay: published again (queued)" 1 "$(depth)"
pv_drain "$V"
check "replay: ledger holds the id once, original amount" "1 1250 $P-a2" "$(row "$T")"
check "replay: balances unchanged" "$B0" "$(balances)"
check "replay: no conflict recorded" "0 -" "$(conflicts "$T")"
check "replica up: nothing let through unchecked" 0 \
    "$(curl -s "$BASE/metrics" | awk '/^payq_producer_replay_unchecked_total / { print $2 }')"
n1=$(stream_len)
check "replay: one more message in the audit stream" $((n0 + 1)) "$n1"

# ---- different payloads: 409 naming the field, nothing published
conflict() { # NAME BODY FIELD INDEX
    local got
    got=$(post "$BASE" "$2")
    check "$1: 409" 409 "$got"
    check "$1: error, id, field, index" "conflict $T $3 $4" \
        "$(jq -r '"\(.error) \(.id) \(.field) \(.index)"' "$TMP/body")"
    check "$1: conflicts list" "[{\"index\":$4,\"id\":\"$T\",\"field\":\"$3\"}]" \
        "$(jq -c .conflicts "$TMP/body")"
    check "$1: nothing queued" 0 "$(depth)"
}
conflict "other amount" "$(tr1 "$T" 1251)" amount 0
conflict "other credit account" "$(tr1 "$T" 1250 "$P-a1" "$P-a3")" credit_account 0
conflict "other debit account" "$(tr1 "$T" 1250 "$P-a3")" debit_account 0
conflict "other currency" "$(tr1 "$T" 1250 "$P-a1" "$P-a2" USD)" currency 0
check "409 detail says nothing was published" 1 \
    "$(jq -r .detail "$TMP/body" | grep -c 'nothing of this request was published')"
conflict "a new id with a conflicting one: refused whole" \
    "[$(tr1 "$P-new1" 7),$(tr1 "$T" 1250 "$P-a1" "$P-a3"),$(tr1 "$P-new2" 8)]" credit_account 1
check "409s: audit stream unchanged" "$n1" "$(stream_len)"
pv_drain "$V"
check "409s: original row unchanged" "1 1250 $P-a2" "$(row "$T")"
check "409s: the new ids never reached the ledger" 0 \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id IN ('$P-new1', '$P-new2')")"
check "409s: balances unchanged" "$B0" "$(balances)"
check "409s: no conflict recorded (nothing reached the worker)" "0 -" "$(conflicts "$T")"

# ---- replica unreachable: published as before, the worker records the conflict
PORT2=$(free_port $((PORT + 1)))
start_server noreplica "$PORT2" \
    PAYQ_PG_READ_CONNINFO="host=127.0.0.1 port=9 dbname=payq user=payq_reader connect_timeout=2"
BG_PIDS+=("$!")
wait_http "http://127.0.0.1:$PORT2/healthz" || fail "second server did not start"
check "replica down: conflicting request published (202)" 202 \
    "$(post "http://127.0.0.1:$PORT2" "$(tr1 "$T" 999)")"
check "replica down: the skipped check is logged" 1 \
    "$(grep -c '"event":"replay_check_skipped"' "$TMP/noreplica.log" | awk '{ print ($1 > 0) }')"
check "replica down: counted in payq_producer_replay_unchecked_total" 1 \
    "$(curl -s "http://127.0.0.1:$PORT2/metrics" | awk '/^payq_producer_replay_unchecked_total / { print $2 }')"
pv_drain "$V"
check "replica down: the worker recorded the conflict" "1 exists_with_different_amount" \
    "$(conflicts "$T")"
check "replica down: original row unchanged" "1 1250 $P-a2" "$(row "$T")"
check "replica down: balances unchanged" "$B0" "$(balances)"

# ---- producer.replay_check: false publishes without looking (the worker decides)
printf 'producer:\n  replay_check: false\n' >"$TMP/nocheck.yaml"
PORT3=$(free_port $((PORT2 + 1)))
env PAYQ_AMQP_URL="$VURL" "$PRODUCER" serve --listen "127.0.0.1:$PORT3" \
    --config "$TMP/nocheck.yaml" >/dev/null 2>>"$TMP/nocheck.log" &
BG_PIDS+=("$!")
wait_http "http://127.0.0.1:$PORT3/healthz" || fail "third server did not start"
check "replay_check false: conflicting request published (202)" 202 \
    "$(post "http://127.0.0.1:$PORT3" "$(tr1 "$T" 998)")"
check "replay_check false: queued" 1 "$(depth)"
check "replay_check false: no lookup skipped (none attempted)" 0 \
    "$(grep -c replay_check_skipped "$TMP/nocheck.log")"
pv_drain "$V"
check "replay_check false: the worker recorded the second conflict" \
    "2 exists_with_different_amount,exists_with_different_amount" "$(conflicts "$T")"
check "replay_check false: original row unchanged" "1 1250 $P-a2" "$(row "$T")"
finish

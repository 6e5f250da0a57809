#!/usr/bin/env bash
# integration_producer_http_reads: GET /v1/accounts/{id} and
# GET /v1/batches/{batch_id} (issue 13) against the real ledger. A known
# batch is posted over HTTP and booked by a worker: three transfers posted
# (EUR 1000 + 250, USD 700), three rejected (insufficient funds EUR 5000,
# currency mismatch EUR 10, unknown account EUR 3). The batch read answers
# exactly booked 3 / EUR 1250 / USD 700 and rejected 3 / EUR 5013, its
# business date, declared and complete null, and agrees with the ledger's
# own sums; each account read answers its currency, flags, debits,
# credits and balance exactly (checked against payq.accounts too). Unknown
# ids answer 404, malformed ones 400 naming the field, no token 401, and
# both 503 when the ledger cannot be read.
# Runs in a private vhost (see lib/producer_common.sh); ids carry a per-run
# prefix because the ledger is shared.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_http_reads
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=rd$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
VURL=$(pv_url "$V")
AUTH="Authorization: Bearer $PAYQ_API_TOKEN"

PORT=$(free_port 17201)
env PAYQ_AMQP_URL="$VURL" "$PRODUCER" serve --listen "127.0.0.1:$PORT" >/dev/null \
    2>>"$TMP/serve.log" &
BG_PIDS+=("$!")
BASE=http://127.0.0.1:$PORT
wait_http "$BASE/healthz" || { fail "server did not start: $(tail -3 "$TMP/serve.log")"; finish; }
get() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 30 "$BASE$1" -H "$AUTH"; }

PAYQ_AMQP_URL=$VURL "$PRODUCER" open-accounts - --quiet <<EOF
{"id":"$P-a1","currency":"EUR"}
{"id":"$P-a2","currency":"EUR","flags":["debits_must_not_exceed_credits"]}
{"id":"$P-a3","currency":"USD","flags":["credits_must_not_exceed_debits"]}
{"id":"$P-a4","currency":"USD"}
EOF
B=$P-B1
tr1() { # ID DEBIT CREDIT AMOUNT CURRENCY
    printf '{"id":"%s-%s","debit_account":"%s-%s","credit_account":"%s-%s","amount":"%s","currency":"%s","batch_id":"%s","business_date":"2026-11-27"}' \
        "$P" "$1" "$P" "$2" "$P" "$3" "$4" "$5" "$B"
}
body="[$(tr1 t1 a1 a2 1000 EUR),$(tr1 t2 a1 a2 250 EUR),$(tr1 t3 a2 a1 5000 EUR),$(tr1 t4 a3 a4 700 USD),$(tr1 t5 a1 a3 10 EUR),$(tr1 t6 a1 nope 3 EUR)]"
got=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST "$BASE/v1/transfers" -H "$AUTH" \
    -H 'Content-Type: application/json' --data "$body")
check "the batch is accepted" 202 "$got"
check "before the worker: batch 404" 404 "$(get "/v1/batches/$B")"
pv_drain "$V"
wait_ledger "SELECT count(*) FROM payq.transfers WHERE batch_id = '$B'" 6 >/dev/null
for _ in $(seq 1 40); do # the standby may be a moment behind
    [ "$(get "/v1/batches/$B")" = 200 ] && [ "$(jq '.booked.count + .rejected.count' "$TMP/body")" = 6 ] && break
    sleep 0.25
done

# ---- batch
check "batch: 200" 200 "$(get "/v1/batches/$B")"
check "batch: booked, rejected, dates, declared, complete" \
    "{\"batch_id\":\"$B\",\"business_dates\":[\"2026-11-27\"],\"booked\":{\"count\":3,\"totals\":{\"EUR\":\"1250\",\"USD\":\"700\"}},\"rejected\":{\"count\":3,\"totals\":{\"EUR\":\"5013\"}},\"declared\":null,\"complete\":null}" \
    "$(jq -c . "$TMP/body")"
check "batch: the ledger's own sums agree" \
    "$(jq -r '[.booked.count, .booked.totals.EUR, .booked.totals.USD, .rejected.count, .rejected.totals.EUR] | join(" ")' "$TMP/body")" \
    "$(q "SELECT concat_ws(' ', count(*) FILTER (WHERE status = 'posted'),
                 sum(amount) FILTER (WHERE status = 'posted' AND currency = 'EUR'),
                 sum(amount) FILTER (WHERE status = 'posted' AND currency = 'USD'),
                 count(*) FILTER (WHERE status = 'rejected'),
                 sum(amount) FILTER (WHERE status = 'rejected' AND currency = 'EUR'))
            FROM payq.transfers WHERE batch_id = '$B'")"
check "batch: the rejections were the expected ones" \
    "insufficient_funds currency_mismatch account_not_found" \
    "$(q "SELECT string_agg(reason, ' ' ORDER BY id) FROM payq.transfers WHERE batch_id = '$B' AND status = 'rejected'")"

# ---- accounts
account() { # ID: currency flags debits credits balance
    get "/v1/accounts/$P-$1" >"$TMP/code"
    jq -r '"\(.currency) \(.flags | join(",")) \(.debits_posted) \(.credits_posted) \(.balance) \(.created_at | test("Z$"))"' "$TMP/body"
}
check "account a1: 200" 200 "$(get "/v1/accounts/$P-a1")"
check "account a1: id" "$P-a1" "$(jq -r .id "$TMP/body")"
check "account a1" "EUR  1250 0 -1250 true" "$(account a1)"
check "account a2 (debits within credits)" "EUR debits_must_not_exceed_credits 0 1250 1250 true" \
    "$(account a2)"
check "account a3 (credits within debits)" "USD credits_must_not_exceed_debits 700 0 -700 true" \
    "$(account a3)"
check "account a4" "USD  0 700 700 true" "$(account a4)"
check "accounts: payq.accounts agrees" \
    "1250 0 -1250|0 1250 1250|700 0 -700|0 700 700" \
    "$(q "SELECT string_agg(debits_posted || ' ' || credits_posted || ' ' || (credits_posted - debits_posted), '|' ORDER BY id) FROM payq.accounts WHERE id LIKE '$P-a_'")"
check "accounts: the API agrees with payq.accounts" \
    "$(for a in a1 a2 a3 a4; do account $a | awk '{ print $(NF-3), $(NF-2), $(NF-1) }'; done | paste -sd'|')" \
    "$(q "SELECT string_agg(debits_posted || ' ' || credits_posted || ' ' || (credits_posted - debits_posted), '|' ORDER BY id) FROM payq.accounts WHERE id LIKE '$P-a_'")"

# ---- unknown, malformed, unauthenticated
check "unknown account: 404" 404 "$(get "/v1/accounts/$P-nope")"
check "unknown batch: 404" 404 "$(get "/v1/batches/$P-nope")"
check "malformed account id: 400" 400 "$(get "/v1/accounts/bad%20id")"
check "malformed account id: names the field" "invalid id id" \
    "$(jq -r '"\(.error) \(.field)"' "$TMP/body")"
long=$(printf 'x%.0s' $(seq 1 65))
check "65-character batch id: 400" 400 "$(get "/v1/batches/$long")"
check "malformed batch id: names the field" "invalid batch_id batch_id" \
    "$(jq -r '"\(.error) \(.field)"' "$TMP/body")"
check "account without a token: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/accounts/$P-a1")"
check "batch without a token: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/batches/$B")"
check "no undeclared status logged" 0 "$(grep -c undeclared_status "$TMP/serve.log")"

# ---- ledger unreachable: 503
PORT2=$(free_port $((PORT + 1)))
env PAYQ_AMQP_URL="$VURL" \
    PAYQ_PG_READ_CONNINFO="host=127.0.0.1 port=9 dbname=payq user=payq_reader connect_timeout=2" \
    "$PRODUCER" serve --listen "127.0.0.1:$PORT2" >/dev/null 2>>"$TMP/dead.log" &
BG_PIDS+=("$!")
wait_http "http://127.0.0.1:$PORT2/healthz" || fail "second server did not start"
BASE=http://127.0.0.1:$PORT2
check "ledger unreachable: account 503" 503 "$(get "/v1/accounts/$P-a1")"
check "ledger unreachable: batch 503" 503 "$(get "/v1/batches/$B")"
finish

# shellcheck shell=bash
# Helpers for the payq-producer integration tests. Source it after
# lib/common.sh (which loads the stack's environment and gives ok/fail/check/q).
#
# Isolation: the stack is shared with other tests and engineers, whose
# publishers and workers use vhost payq at the same time, so queue depths,
# stream lengths and exchange counters there move under a test's feet. Each
# producer test therefore makes a private vhost (pv_create) holding the same
# topology (schemas/topology.json), points payq-producer (and the worker that
# drains it) at it, and deletes it at exit. Counts in it are exact; the
# ledger is shared, so ledger checks use ids with a per-run prefix.

# shellcheck disable=SC2034 # PRODUCER and PACK are used by the tests that source this file
PRODUCER=$BIN/payq-producer
PV_VHOSTS=()

pv_api() { # METHOD PATH [curl args]: management API as payq-admin
    local m=$1 p=$2
    shift 2
    mgmt_curl "$PAYQ_AMQP_MGMT_URL/api/$p" -sS --fail-with-body --max-time 30 \
        -H 'content-type: application/json' -X "$m" "$@"
}

# pv_create NAME: a vhost with payq's exchanges, queues and bindings.
pv_create() {
    local v=$1 i n
    pv_api PUT "vhosts/$v" >/dev/null || return 1
    PV_VHOSTS+=("$v")
    for u in payq payq-admin; do
        pv_api PUT "permissions/$v/$u" --data '{"configure":".*","write":".*","read":".*"}' \
            >/dev/null || return 1
    done
    jq --arg v "$v" 'del(._comment) | (.exchanges, .queues, .bindings) |= map(.vhost = $v)' \
        "$SRC/schemas/topology.json" | pv_api POST "definitions/$v" --data-binary @- >/dev/null ||
        return 1
    for ((i = 0; i < 300; i++)); do
        n=$(pv_api GET "queues/$v" 2>/dev/null |
            jq '[.[] | select(.state == null or .state == "running")] | length' 2>/dev/null)
        [ "${n:-0}" -ge 3 ] && return 0
        sleep 0.2
    done
    return 1
}

# pv_create_bare NAME: a vhost with exchange payq.ingress and nothing bound
# to it, where every message is unroutable (returned).
pv_create_bare() {
    pv_api PUT "vhosts/$1" >/dev/null || return 1
    PV_VHOSTS+=("$1")
    pv_api PUT "permissions/$1/payq" --data '{"configure":".*","write":".*","read":".*"}' \
        >/dev/null &&
        pv_api PUT "exchanges/$1/payq.ingress" --data '{"type":"topic","durable":true}' >/dev/null
}

pv_delete_all() {
    local v
    for v in "${PV_VHOSTS[@]}"; do pv_api DELETE "vhosts/$v" >/dev/null 2>&1; done
}

# pv_url NAME: PAYQ_AMQP_URL with the vhost replaced.
pv_url() { echo "${PAYQ_AMQP_URL%/*}/$1"; }

# pv_depth NAME QUEUE: live ready-message count of a queue (a passive
# queue.declare: rabbitmqctl and the management API report quorum queue
# depths from statistics that lag by seconds). No consumer runs in a private
# vhost unless a test starts one, so ready = everything queued.
pv_depth() {
    /usr/bin/python3 "$STREAM_READ" "$(pv_url "$1")" --depth "$2" 2>/dev/null
}

# pv_stream NAME [EXPECT]: every message of the vhost's payq.audit, one per
# line: ROUTING_KEY<TAB>MESSAGE_ID<TAB>BODY.
pv_stream() {
    /usr/bin/python3 "$STREAM_READ" "$(pv_url "$1")" --idle-ms 3000 ${2:+--expect "$2"}
}

# pv_stream_items NAME [EXPECT]: pv_stream with packs unfolded, one line per
# transfer (or other message): ROUTING_KEY<TAB>MESSAGE_ID<TAB>LINE<TAB>MSGNO,
# MSGNO numbering the stream's messages from 1. The reader prints a body as
# it is, so a pack's second and later lines arrive bare; they carry no tab
# (JSON escapes tabs in strings), which tells them from a message's first.
pv_stream_items() {
    pv_stream "$@" | awk -F'\t' -v OFS='\t' '
        index($0, "\t") { rk = $1; id = $2; n++; print rk, id, substr($0, length(rk) + length(id) + 3), n; next }
        { print rk, id, $0, n }'
}

# pv_peek NAME QUEUE COUNT: the first COUNT messages of a queue, read through
# the management API and requeued: ROUTING_KEY<TAB>MESSAGE_ID<TAB>LINES.
pv_peek() {
    pv_api POST "queues/$1/$2/get" \
        --data "{\"count\":$3,\"ackmode\":\"ack_requeue_true\",\"encoding\":\"auto\"}" |
        jq -r '.[] | [.routing_key, .properties.message_id, (.payload | split("\n") | length)] | @tsv'
}

# The default producer.pack_max (transfers per broker message).
# shellcheck disable=SC2034
PACK=$(awk '$1 == "pack_max:" { print $2 }' "$SRC/config/payq.yaml")

# ceil_div A B
ceil_div() { echo $((($1 + $2 - 1) / $2)); }

# pv_drain NAME: runs a worker on the vhost until it has been idle for 3 s.
pv_drain() {
    (cd "$SRC" && PAYQ_AMQP_URL=$(pv_url "$1") timeout 300 "$BIN/payq-worker" \
        --exit-when-idle 3000 2>>"$TMP/worker-$1.log")
}

# gen_transfers_file PREFIX N [EXTRA_JSON]: N valid transfers PREFIX-t-1..N
# between 50 accounts, amounts 1..100000, EUR and USD alternating.
gen_transfers_file() {
    awk -v p="$1" -v n="$2" -v extra="${3:-}" 'BEGIN {
        srand(n)
        for (i = 1; i <= n; i++) {
            d = int(rand() * 50) + 1; c = d % 50 + 1
            printf "{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-a-%d\",\"credit_account\":\"%s-a-%d\",\"amount\":\"%d\",\"currency\":\"%s\"%s}\n",
                p, i, p, d, p, c, int(rand() * 100000) + 1, (i % 2 ? "EUR" : "USD"), extra
        } }'
}

# file_totals FILE: "CUR SUM" lines, sorted. mawk's %d stops at 2^31; a
# double is exact far beyond these test sums (< 2^53), so %.0f.
file_totals() {
    sed 's/.*"amount":"\([0-9]*\)","currency":"\([A-Z]*\)".*/\2 \1/' "$1" |
        awk '{ s[$1] += $2 } END { for (c in s) printf "%s %.0f\n", c, s[c] }' | LC_ALL=C sort
}

# wait_ledger SQL EXPECTED [SECONDS]: polls a query until it prints EXPECTED.
wait_ledger() {
    local deadline=$((SECONDS + ${3:-60})) got
    while :; do
        got=$(q "$1" 2>/dev/null)
        [ "$got" = "$2" ] && { echo "$got"; return 0; }
        [ $SECONDS -ge $deadline ] && { echo "$got"; return 1; }
        sleep 1
    done
}

# wait_http URL [SECONDS]: until the URL answers at all.
wait_http() {
    local i
    for ((i = 0; i < ${2:-20} * 10; i++)); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# start_serve VHOST BASEPORT CONFIG: payq-producer serve on a free port from
# BASEPORT, publishing to VHOST, with CONFIG; sets PORT and SPID. Returns 1,
# with a failed check, when it does not answer /healthz.
start_serve() {
    PORT=$(free_port "$2")
    PAYQ_AMQP_URL=$(pv_url "$1") "$PRODUCER" serve --listen "127.0.0.1:$PORT" \
        --config "$3" >/dev/null 2>>"$TMP/serve.log" &
    SPID=$!
    BG_PIDS+=("$SPID")
    wait_http "http://127.0.0.1:$PORT/healthz" ||
        { fail "server did not start: $(tail -3 "$TMP/serve.log")"; return 1; }
}

cleanup_producer() {
    pv_delete_all
    cleanup_common
}
trap cleanup_producer EXIT
trap 'exit 143' TERM INT # so the EXIT trap still deletes the vhost

# shellcheck shell=bash
# Shared helpers for the bash integration tests. Source it; it loads the
# stack's environment and gives check/ok/fail counters and a few queries.
set -uo pipefail
SRC=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BIN=${PAYQ_BUILD_DIR:-$SRC/build}
eval "$("$SRC/scripts/stack" env)"
# shellcheck source=tests/integration/lib/mgmt.sh
source "$SRC/tests/integration/lib/mgmt.sh"
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
RUN_ID=${RUN_ID:-$(date +%s)$RANDOM}
TMP=$(mktemp -d)
PASSED=0
FAILED=0
BG_PIDS=()

cleanup_common() {
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup_common EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
# check DESCRIPTION EXPECTED ACTUAL
check() {
    if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
finish() {
    echo "$TEST_NAME: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# psql on the current primary as superuser, unaligned, tuples only.
q() { psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

# The batch journal (payq.batches) outlives tests and pids are reused, so
# a test's rows of worker process PID are only those journaled after it
# began: by_worker PID is that condition.
BATCH_SEQ0=$(q "SELECT coalesce(max(seq), 0) FROM payq.batches" 2>/dev/null)
[ -n "$BATCH_SEQ0" ] || BATCH_SEQ0=0
by_worker() { echo "worker LIKE '%:$1' AND seq > $BATCH_SEQ0"; }

# queue_depth QUEUE: ready+unacked count of a queue in vhost payq, as
# rabbitmqctl reports it. For a quorum queue that is a metric the queue
# refreshes once per Ra tick (5 s): a read can show the count of up to 5 s
# ago, in either direction (seen: 6 messages acked seconds before, and 0
# right after a publish). Assert emptiness with wait_queue_empty.
queue_depth() {
    "$PAYQ_RABBITMQCTL" list_queues -q -p payq name messages 2>/dev/null |
        awk -v n="$1" '$1 == n { print $2 }'
}

STREAM_READ=$SRC/tests/tools/producer_stream_read.py
# live_ready QUEUE: ready count of a queue in vhost payq from a passive
# queue.declare, which the queue's leader answers (live; unacked excluded).
live_ready() {
    /usr/bin/python3 "$STREAM_READ" "${PAYQ_AMQP_URL%%,*}" --depth "$1" 2>/dev/null
}

# wait_queue_empty QUEUE [SECONDS]: until nothing is ready (live) and the
# ready+unacked metric reads 0 (up to SECONDS, default 120). Neither alone
# will do: the metric may be a tick old, the live count misses what a
# consumer holds unacked.
wait_queue_empty() {
    local deadline=$((SECONDS + ${2:-120}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(live_ready "$1")" = "0" ] && [ "$(queue_depth "$1")" = "0" ] && return 0
        sleep 1
    done
    return 1
}

# wait_transfers WHERE N [SECONDS]: waits until payq.transfers holds at
# least N rows matching the SQL condition WHERE (up to SECONDS, default 120).
# A query that fails (the primary moving during a failover) counts as not yet.
wait_transfers() {
    local deadline=$((SECONDS + ${3:-120}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(q "SELECT count(*) FROM payq.transfers WHERE $1" 2>/dev/null)" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.3
    done
    return 1
}

# free_port FROM: the first port from FROM up that nothing listens on.
free_port() {
    local p=$1
    while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

# bind_dump EXCHANGE FILE [IDLE_MS]: a consumer (payq-ackdrain) of its own
# queue bound to EXCHANGE, dumping every message to FILE (its output and
# log in FILE.out, FILE.err) until IDLE_MS (default 600000) pass without
# one. Its pid is appended to BG_PIDS and left in LAST_PID (call it
# directly, not in $(...)). Returns 0 once its queue is bound (up to 5 s).
bind_dump() {
    local i
    "$BIN/payq-ackdrain" --bind "$1" --dump "$2" --idle-ms "${3:-600000}" >"$2.out" 2>"$2.err" &
    LAST_PID=$!
    BG_PIDS+=("$LAST_PID")
    for ((i = 0; i < 50; i++)); do
        grep -q ready "$2.err" && return 0
        sleep 0.1
    done
    return 1
}

# Starts a worker in the background with extra args; its pid is appended to
# BG_PIDS and left in LAST_PID (call it directly, not in $(...), so the
# bookkeeping stays in this shell). Logs go to $TMP/worker-N.log.
# shellcheck disable=SC2120 # arguments are optional: extra worker options
start_worker() {
    local n=${#BG_PIDS[@]}
    "$BIN/payq-worker" "$@" >/dev/null 2>>"$TMP/worker-$n.log" &
    LAST_PID=$!
    BG_PIDS+=("$LAST_PID")
}

# gen_accounts PREFIX N [FLAGS_JSON]: account messages for PREFIX-acct-1..N (EUR).
gen_accounts() {
    local flags=${3:-}
    awk -v p="$1" -v n="$2" -v f="$flags" 'BEGIN {
        for (i = 1; i <= n; i++) {
            if (f != "") printf "account\t{\"id\":\"%s-acct-%d\",\"currency\":\"EUR\",\"flags\":%s}\n", p, i, f
            else printf "account\t{\"id\":\"%s-acct-%d\",\"currency\":\"EUR\"}\n", p, i
        } }'
}

# gen_transfers PREFIX N ACCOUNTS SEED: N transfers between distinct random
# accounts of PREFIX, amounts 1..100000 minor units, ids PREFIX-t-1..N.
gen_transfers() {
    awk -v p="$1" -v n="$2" -v a="$3" -v seed="$4" 'BEGIN {
        srand(seed)
        for (i = 1; i <= n; i++) {
            d = int(rand() * a) + 1; c = int(rand() * (a - 1)) + 1; if (c >= d) c++
            amt = int(rand() * 100000) + 1
            printf "transfer\t{\"id\":\"%s-t-%d\",\"debit_account\":\"%s-acct-%d\",\"credit_account\":\"%s-acct-%d\",\"amount\":\"%d\",\"currency\":\"EUR\",\"batch_id\":\"%s-b\"}\n", p, i, p, d, p, c, amt, p
        } }'
}

# model_balances FILE: "account debits credits" lines, sorted, assuming
# every transfer in FILE posts (unrestricted accounts).
model_balances() {
    sed 's/.*"id":"[^"]*","debit_account":"\([^"]*\)","credit_account":"\([^"]*\)","amount":"\([0-9]*\)".*/\1 \2 \3/' "$1" |
        awk '{ d[$1] += $3; c[$2] += $3; seen[$1] = 1; seen[$2] = 1 }
             END { for (k in seen) printf "%s %.0f %.0f\n", k, d[k] + 0, c[k] + 0 }' | LC_ALL=C sort
}

ledger_balances() {
    q "SELECT id, debits_posted, credits_posted FROM payq.accounts WHERE id LIKE '$1-acct-%'
       AND (debits_posted > 0 OR credits_posted > 0)" | tr '|' ' ' | LC_ALL=C sort
}

# check_ledger PREFIX TRANSFERS_FILE: every id exactly once, posted sum and
# every balance equal to the model, debits = credits.
check_ledger() {
    local p=$1 file=$2
    local n_expect sum_expect
    n_expect=$(grep -c '^transfer' "$file")
    sum_expect=$(sed 's/.*"amount":"\([0-9]*\)".*/\1/' "$file" | awk '{ s += $1 } END { printf "%.0f", s }')
    check "$p: every transfer id exactly once" "$n_expect" \
        "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$p-t-%'")"
    check "$p: all posted" "$n_expect" \
        "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$p-t-%' AND status = 'posted'")"
    check "$p: sum of posted amounts equals the model" "$sum_expect" \
        "$(q "SELECT coalesce(sum(amount), 0) FROM payq.transfers WHERE id LIKE '$p-t-%' AND status = 'posted'")"
    model_balances "$file" >"$TMP/model.$p"
    ledger_balances "$p" >"$TMP/ledger.$p"
    if diff -q "$TMP/model.$p" "$TMP/ledger.$p" >/dev/null; then
        ok "$p: every account balance equals the model ($(wc -l <"$TMP/model.$p") accounts)"
    else
        fail "$p: balances differ from the model: $(diff "$TMP/model.$p" "$TMP/ledger.$p" | head -5 | tr '\n' ' ')"
    fi
    check "$p: sum of debits equals sum of credits" "t" \
        "$(q "SELECT sum(debits_posted) = sum(credits_posted) FROM payq.accounts WHERE id LIKE '$p-acct-%'")"
}

# committed_once PID PUBLISHER: while PUBLISHER runs, waits (up to 10 s)
# until worker PID journaled a batch.
committed_once() {
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$2" 2>/dev/null || return 0
        [ "$(q "SELECT count(*) > 0 FROM payq.batches WHERE $(by_worker "$1")")" = t ] && return 0
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.2
    done
}

# publish_paced FILE CHUNKS PAUSE: publishes FILE (payq-rawpub lines) in
# CHUNKS parts, PAUSE seconds apart, in the background, so that the run
# outlasts a fault injected meanwhile; the publisher's pid is left in
# LAST_PID (call it directly, not in $(...)), its exit status 1 if a part
# failed.
publish_paced() {
    local c
    rm -f "$TMP"/paced.*
    split -n "l/$2" "$1" "$TMP/paced."
    (
        for c in "$TMP"/paced.*; do
            "$BIN/payq-rawpub" <"$c" >/dev/null || { echo "publish failed" >&2; exit 1; }
            sleep "$3"
        done
    ) &
    LAST_PID=$!
}

# PG_FROZEN: the pids freeze_pg_node stopped; thaw_pg_nodes continues
# them. A test that freezes sets `trap 'thaw_pg_nodes; cleanup_common'
# EXIT`: no frozen node may outlive it.
PG_FROZEN=()

# freeze_pg_node NODE: stops PostgreSQL node NODE whole (kill -STOP on its
# Patroni, its postmaster and every child), as a paused VM or a stalled
# host: it answers nothing and resets nothing, and the kernel still
# acknowledges TCP for it. Returns 1 when a process is missing.
freeze_pg_node() {
    local pm pp
    pm=$(pgrep -f "postgres -D $SRC/.run/pg/$1 " | head -n1)
    pp=$(pgrep -f "patroni $SRC/.run/pg/patroni/$1.yml" | head -n1)
    [ -n "$pm" ] && [ -n "$pp" ] || return 1
    mapfile -t PG_FROZEN < <(echo "$pp"; echo "$pm"; pgrep -P "$pm")
    kill -STOP "${PG_FROZEN[@]}"
}

thaw_pg_nodes() {
    [ ${#PG_FROZEN[@]} -gt 0 ] && kill -CONT "${PG_FROZEN[@]}" 2>/dev/null
    PG_FROZEN=()
}

# check_healthy_after_thaw SECONDS: checks that within SECONDS of a thaw
# `scripts/stack status` exits 0 and the primary streams to both standbys,
# one of them synchronous (a thawed leader finds its lease gone, demotes
# itself, is rewound and follows the new one; a thawed standby catches
# up). Status alone is not enough: a node rewinding from a leader that is
# frozen next would leave the new leader no synchronous standby, and every
# commit waiting. Leaves the stack's environment current.
check_healthy_after_thaw() {
    local healthy=1 streams=""
    for _ in $(seq 1 "$1"); do
        if "$SRC/scripts/stack" status >/dev/null 2>&1; then
            eval "$("$SRC/scripts/stack" env 2>/dev/null)"
            streams=$(q "SELECT count(*) FILTER (WHERE state = 'streaming') || ' ' ||
                                count(*) FILTER (WHERE sync_state = 'sync') FROM pg_stat_replication" 2>/dev/null)
            [ "$streams" = "2 1" ] && { healthy=0; break; }
        fi
        sleep 1
    done
    check "after the thaw: stack healthy, both standbys streaming, one synchronous" 0 "$healthy"
}

# publish_under_kills FILE CHUNKS PAUSE KILLS_MIN DEADLINE_S: publishes FILE
# with publish_paced (CHUNKS parts PAUSE seconds apart, so the run
# outlasts the kills), while three payq-worker processes consume and one of
# them, chosen at random, is SIGKILLed and restarted every 1-2 s, until the
# publisher is done and at least KILLS_MIN kills happened (or DEADLINE_S).
# While publishing, a victim is killed only once it has journaled a batch
# (payq.batches, up to 10 s): on a slow machine, kills faster than a fresh
# worker can commit would redeliver the same messages until the queue's
# delivery limit dead-letters them: the broker doing its job, not a payq
# defect.
# Checks the publisher's exit and the kill count; leaves the three workers
# running in the array `workers` and the count in `kills`. Worker logs go to
# $TMP/workers.log.
publish_under_kills() {
    local kills_min=$4 deadline=$((SECONDS + $5)) publisher victim
    publish_paced "$1" "$2" "$3"
    publisher=$LAST_PID
    workers=()
    for _ in 1 2 3; do
        "$BIN/payq-worker" 2>>"$TMP/workers.log" &
        workers+=($!)
    done
    kills=0
    while [ $SECONDS -lt $deadline ]; do
        sleep 1.$((RANDOM % 10))
        victim=$((RANDOM % 3))
        committed_once "${workers[$victim]}" "$publisher"
        kill -9 "${workers[$victim]}" 2>/dev/null && kills=$((kills + 1))
        wait "${workers[$victim]}" 2>/dev/null
        "$BIN/payq-worker" 2>>"$TMP/workers.log" &
        workers[victim]=$!
        if [ $kills -ge "$kills_min" ] && ! kill -0 "$publisher" 2>/dev/null; then
            break
        fi
    done
    wait "$publisher"
    check "publisher succeeded" "0" "$?"
    echo "killed workers $kills times"
    if [ $kills -ge "$kills_min" ]; then
        ok "at least $kills_min kills ($kills)"
    else
        fail "only $kills kills"
    fi
}

#!/usr/bin/env bash
# chaos_syncrep: the worker acks only what the synchronous standby holds.
# With the standby's WAL receiver frozen (kill -STOP), a worker's COMMIT
# waits for the standby (wait_event SyncRep). Two ways an operator, pooler or
# failover tool ends that wait, each a case here:
#   cancel:    pg_cancel_backend: PostgreSQL ends the wait with a WARNING and
#              reports the COMMIT as successful;
#   terminate: pg_terminate_backend: the connection dies, the rows stay
#              committed locally, and a retry finds every id in the ledger.
# Either way, while the standby stays frozen, no message may be acked (all
# 1,000 are back in the queue once the worker is killed), and the retried
# batch must itself be waiting for the standby. After thawing, every id is
# in the ledger exactly once on both nodes and the queue drains.
# Outcome events (payq.results) likewise: none while the standby is frozen,
# although the batch's INSERT already returned them to the worker; after
# the thaw, one for every transfer.
# The worker takes its next batch while a COMMIT waits (batches of 400 here,
# so there is one): it must not be acked either, and in a third case,
#   broker:    the worker's broker connections are closed while its COMMIT
#              waits: the batch taken meanwhile dies with its connection,
# the worker reconnects after the thaw and every id is booked once. A
# fourth case kills the worker while the COMMIT that waits is a batch's
# second attempt, applied again at once because its first met a transfer
# booked before (run_recheck_case), and a fifth while it is a batch grown
# to worker.backlog_batch_max (8,000) under a backlog (run_backlog_case).
# Every replica's WAL receiver is frozen, not only the synchronous
# standby's: once wal_sender_timeout ends a frozen standby's stream, Patroni
# may name the other replica synchronous, and a commit that replica confirms
# may (rightly) be acked: the test would then measure Patroni, not payq.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/mgmt.sh"
# Each case's shape (run_backlog_case has its own): N transfers, published
# in packs of PACK (so N / PACK messages), aged AGE seconds in the queue
# before the worker starts with WCONFIG.
N=1000
PACK=1
AGE=0
DEPTH_TOOL=$SRC/tests/tools/producer_stream_read.py
FROZEN=

thaw() {
    local p
    for p in $FROZEN; do kill -CONT "$p" 2>/dev/null; done
    FROZEN=
}

# replicas: the superuser conninfo of every node but the primary, one a line
# (PAYQ_PG_CONNINFO lists every node's port).
port_of() { sed -n 's/.*port=\([0-9,]*\).*/\1/p' <<<"$1"; }
replicas() {
    local p primary standby
    primary=$(port_of "$PAYQ_PG_PRIMARY")
    standby=$(port_of "$PAYQ_PG_STANDBY")
    for p in $(port_of "$PAYQ_PG_CONNINFO" | tr , ' '); do
        [ "$p" = "$primary" ] || echo "${PAYQ_PG_STANDBY/port=$standby/port=$p}"
    done
}
trap 'thaw; cleanup_common' EXIT
trap 'exit 143' TERM INT

qs() { psql "$PAYQ_PG_STANDBY" -X -qAt -c "$1"; }
# backlog_after_ms 0: the batches stay at 400 however long their transfers
# waited, so that a next batch exists while a COMMIT waits.
printf 'worker:\n  batch_max: 400\n  backlog_after_ms: 0\n' >"$TMP/small.yaml"
WCONFIG=$TMP/small.yaml
MPORT=$(free_port $((17891 + ${PAYQ_STACK_PORT_OFFSET:-0})))
# taken_meanwhile: the worker's count of batches taken while a COMMIT waited.
taken_meanwhile() {
    curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" |
        awk '$1 == "payq_worker_batches_taken_during_commit_total" { print $2 }'
}

# freeze CASE: every replica's WAL receiver stopped (kill -STOP), in FROZEN.
freeze() {
    local ci wal
    while read -r ci; do
        wal=$(psql "$ci" -X -qAt -c "SELECT pid FROM pg_stat_wal_receiver")
        [ -n "$wal" ] || { fail "$1: no WAL receiver on a replica"; return 1; }
        FROZEN+=" $wal"
        kill -STOP "$wal"
    done < <(replicas)
    echo "# $1: WAL receivers frozen:$FROZEN"
}

# events_consumer CASE: a payq.results consumer dumping to $TMP/events.CASE;
# its pid in EVENTS.
events_consumer() {
    bind_dump payq.results "$TMP/events.$1"
    EVENTS=$LAST_PID
}

# check_meanwhile CASE: the worker took its next batch during the COMMIT.
check_meanwhile() {
    local i t=
    for ((i = 0; i < 50; i++)); do
        t=$(taken_meanwhile)
        [ "${t:-0}" -ge 1 ] 2>/dev/null && break
        sleep 0.1
    done
    check "$1: the worker took its next batch while the COMMIT waited" 1 \
        "$([ "${t:-0}" -ge 1 ] 2>/dev/null && echo 1 || echo "0 (count ${t:-none})")"
}

# check_after_thaw CASE P: the ledger, the standby and the events are whole.
check_after_thaw() {
    local how=$1 P=$2 d i
    check_ledger "$P" "$TMP/transfers.$how"
    for ((i = 0; i < 100; i++)); do
        d=$(qs "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")
        [ "$d" = "$N" ] && break
        sleep 0.1
    done
    check "$how: every id on the standby, once" "$N" "$d"
    for ((i = 0; i < 50; i++)); do
        d=$(grep -o "\"id\" : \"$P-t-[0-9]*\"" "$TMP/events.$how" | sort -u | wc -l)
        [ "$d" = "$N" ] && break
        sleep 0.1
    done
    check "$how: after the thaw, an outcome event for every transfer" "$N" "$d"
    kill "$EVENTS" 2>/dev/null
}
depth() { /usr/bin/python3 "$DEPTH_TOOL" "$PAYQ_AMQP_URL" --depth payq.transfers 2>/dev/null; }

# syncrep_waiter [EXCEPT_PID]: the pid of a payq-worker backend waiting for
# the standby, other than EXCEPT_PID; waits up to 30 s.
syncrep_waiter() {
    local pid i
    for ((i = 0; i < 300; i++)); do
        pid=$(q "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'
                 AND application_name = 'payq-worker' AND pid <> ${1:-0} LIMIT 1")
        [ -n "$pid" ] && { echo "$pid"; return 0; }
        sleep 0.1
    done
    return 1
}

# until_commit_waits CASE P: every case's start. Opens P's accounts,
# freezes the replicas, publishes N transfers and starts a worker (batches
# of 400, or as WCONFIG says) whose COMMIT then waits for the standby, with
# its next batch taken meanwhile. Leaves the worker's pid in WORKER and its log in WLOG, the
# waiting backend's pid in WAITER; 1 (standby thawed) if no COMMIT waits.
until_commit_waits() {
    local how=$1 P=$2
    echo "# case $how"
    [ "$(depth)" = 0 ] || fail "$how: payq.transfers is not empty at the start ($(depth))"
    gen_accounts "$P" 20 | "$BIN/payq-rawpub" >/dev/null || fail "$how: open accounts"
    "$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
    check "$how: accounts opened" 20 "$(q "SELECT count(*) FROM payq.accounts WHERE id LIKE '$P-acct-%'")"
    gen_transfers "$P" "$N" 20 7 >"$TMP/transfers.$how"
    if [ "$how" = recheck ]; then
        head -1 "$TMP/transfers.$how" | "$BIN/payq-rawpub" >/dev/null || fail "$how: publish the first"
        "$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
        check "$how: the first transfer booked before" 1 \
            "$(q "SELECT count(*) FROM payq.transfers WHERE id = '$P-t-1'")"
    fi
    freeze "$how" || { thaw; return 1; }
    events_consumer "$how"
    "$BIN/payq-rawpub" --pack "$PACK" <"$TMP/transfers.$how" >/dev/null || fail "$how: publish"
    sleep "$AGE"
    WLOG=$TMP/worker-${#BG_PIDS[@]}.log
    start_worker --config "$WCONFIG" --metrics-listen "127.0.0.1:$MPORT"
    WORKER=$LAST_PID
    if ! WAITER=$(syncrep_waiter); then
        fail "$how: no worker COMMIT ever waited for the standby"
        thaw
        return 1
    fi
    ok "$how: the worker's COMMIT waits for the frozen standby (backend $WAITER)"
    check_meanwhile "$how"
}

# kill_then_thaw CASE P WORKER: kills WORKER, whose COMMIT waits for the
# frozen standby; nothing may have been acked or published; then thaws and
# drains with a new worker, and checks the ledger, the standby and events.
kill_then_thaw() {
    local how=$1 P=$2 worker=$3 msgs=$((N / PACK)) d i
    sleep 2 # time enough for a worker that wrongly acks to do so
    echo "# $how: on the primary $(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'"), on the frozen standby $(qs "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")"
    kill -9 "$worker"
    wait "$worker" 2>/dev/null
    # Unacked deliveries of the dead worker return to the queue at once.
    for ((i = 0; i < 50; i++)); do
        d=$(depth)
        [ "$d" = "$msgs" ] && break
        sleep 0.1
    done
    check "$how: with the standby frozen, no message was acked, nor the batch taken meanwhile (all back in the queue)" "$msgs" "$d"
    sleep 0.5 # the events consumer flushes its dump when idle
    check "$how: with the standby frozen, no outcome event was published" 0 \
        "$(grep -c "$P-t-" "$TMP/events.$how")"
    thaw

    "$BIN/payq-worker" --exit-when-idle 3000 2>>"$TMP/w-after-$how.log"
    check "$how: the queue drains after the thaw" 0 "$(depth)"
    check_after_thaw "$how" "$P"
}

run_case() {
    local how=$1 P=sr$RUN_ID$1 pid pid2
    until_commit_waits "$how" "$P" || return
    local worker=$WORKER
    pid=$WAITER
    q "SELECT pg_${how}_backend($pid)" >/dev/null
    # The batch's outcome is unknown: the worker must retry it on a new
    # connection, and that COMMIT must wait for the standby as well, although
    # every id of the batch is already committed on the primary.
    if pid2=$(syncrep_waiter "$pid"); then
        ok "$how: the retried batch waits for the standby too (backend $pid2)"
    else
        fail "$how: after the $how, no retry waits for the standby"
    fi
    kill_then_thaw "$how" "$P" "$worker"
    # The first worker's retry, still waiting when it was killed, committed
    # once the standby caught up: its journal row says attempt 2.
    check "$how: the retry is journaled as a second attempt" 2 \
        "$(q "SELECT max(attempt) FROM payq.batches WHERE $(by_worker "$worker")")"
}

# The recheck case: the first batch starts with a transfer booked before,
# published again (not redelivered: step 3 of its first attempt does not read
# its id). The ledger INSERT refuses it, and the batch is applied again at
# once, every id read, as attempt 2 (worker/ledger.c, payq_ledger_apply):
# that attempt's COMMIT must wait for the standby too, and the worker is
# killed while it waits. Nothing may be acked; after the thaw every id is
# booked once on both nodes.
run_recheck_case() {
    local how=recheck P=sr${RUN_ID}recheck
    until_commit_waits "$how" "$P" || return
    local worker=$WORKER wlog=$WLOG
    check "$how: the waiting COMMIT is the batch applied again, every id read" 1 \
        "$(grep -c '"event":"batch_recheck"' "$wlog")"
    kill_then_thaw "$how" "$P" "$worker"
    check "$how: the killed worker's recheck committed once the standby caught up, as attempt 2" \
        "2|1" "$(q "SELECT max(attempt) || '|' || count(*) FROM payq.batches WHERE $(by_worker "$worker")")"
    check "$how: the booked transfer was a duplicate, nothing booked twice" "1|$N" \
        "$(q "SELECT count(*) FILTER (WHERE id = '$P-t-1') || '|' || count(*) FROM payq.transfers
              WHERE id LIKE '$P-t-%'")"
}

# The broker case: the worker's connections are closed by the broker while
# its COMMIT waits; it is not killed, and must finish on its own.
run_broker_case() {
    local how=broker P=sr${RUN_ID}broker names n i
    until_commit_waits "$how" "$P" || return
    local worker=$WORKER wlog=$WLOG
    # The management API lists a new connection within its statistics
    # interval (5 s): poll until one of the worker's is closed.
    n=0
    for ((i = 0; i < 40 && n == 0; i++)); do
        names=$(mgmt_curl "$PAYQ_AMQP_MGMT_URL/api/connections" -sS --max-time 10 |
            jq -r '.[] | select(.client_properties.connection_name == "payq-worker") | .name')
        while read -r c; do
            [ -n "$c" ] || continue
            mgmt_curl "$PAYQ_AMQP_MGMT_URL/api/connections/$(jq -rn --arg c "$c" '$c | @uri')" \
                -sf --max-time 10 -X DELETE >/dev/null && n=$((n + 1))
        done <<<"$names"
        [ "$n" -gt 0 ] || sleep 0.5
    done
    check "$how: the worker's broker connections closed while its COMMIT waits" 1 \
        "$([ "$n" -ge 1 ] && echo 1 || echo 0)"
    sleep 1
    thaw
    for ((i = 0; i < 300; i++)); do
        [ "$(depth)" = 0 ] && grep -q '"event":"amqp_reconnected"' "$wlog" && break
        sleep 0.1
    done
    check "$how: the worker reconnected to the broker" 1 \
        "$(grep -c '"event":"amqp_reconnected"' "$wlog" | awk '{ print ($1 >= 1) }')"
    check "$how: the queue drains after the thaw" 0 "$(depth)"
    check_after_thaw "$how" "$P"
    kill "$worker" 2>/dev/null
    wait "$worker" 2>/dev/null
    check "$how: the worker stops cleanly on SIGTERM" 0 "$?"
}

# The backlog case: the worker's own batch sizes (batch_max 4000,
# backlog_batch_max 8000, backlog_after_ms 1000, the defaults written out)
# and 12,000 transfers in packs of 100, queued 1.5 s before it starts: its
# first batch grows to 8,000 under the backlog, and the COMMIT that waits
# for the frozen standby is that batch's, with the last 4,000 taken
# meanwhile. It is killed there: nothing may be acked; after the thaw every
# id is booked once on both nodes, and the killed worker's batch of 8,000
# committed once the standby caught up.
run_backlog_case() {
    local how=backlog P=sr${RUN_ID}backlog size
    # batch_wait_ms 500 instead of 5: a batch closes wait_ms after its first
    # delivery, and on a busy machine the broker may take longer than 5 ms to
    # push the 40 packs past batch_max (one run took 5 packs, 500 transfers).
    printf 'worker:\n  batch_max: 4000\n  batch_wait_ms: 500\n  backlog_batch_max: 8000\n  backlog_after_ms: 1000\n' \
        >"$TMP/backlog.yaml"
    # Locals: the functions it calls see them, the other cases keep theirs.
    local N=12000 PACK=100 AGE=1.5 WCONFIG=$TMP/backlog.yaml
    until_commit_waits "$how" "$P" || return
    local worker=$WORKER
    kill_then_thaw "$how" "$P" "$worker"
    # The batch's journal row, written in its transaction, tells its size:
    # past batch_max only under the backlog (payq_worker_backlog_batches_total
    # counts a batch once acked, which this one never was).
    size=$(q "SELECT count(*) || '|' || max(messages) FROM payq.batches WHERE $(by_worker "$worker")")
    if [ "${size%%|*}" = 1 ] && [ "${size#*|}" -gt 4000 ] 2>/dev/null && [ "${size#*|}" -le 8000 ]; then
        ok "$how: the killed worker's one batch, grown past batch_max (count|messages $size), committed once the standby caught up"
    else
        fail "$how: the killed worker's batches (count|largest): $size, expected 1|4001..8000"
    fi
}

run_case cancel
run_case terminate
run_recheck_case
run_broker_case
run_backlog_case
check "unknown outcomes were logged as such" 1 \
    "$(grep -c '"event":"commit_outcome_unknown"' "$TMP"/worker-*.log | awk -F: '{ s += $NF } END { print (s >= 1) }')"
finish

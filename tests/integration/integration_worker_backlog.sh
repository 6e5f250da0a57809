#!/usr/bin/env bash
# integration_worker_backlog: a batch grows to worker.backlog_batch_max only
# under a backlog (worker/batch_size.h). 6,000 transfers are queued and left
# to age past backlog_after_ms before the worker starts: its batches then
# hold more than batch_max (up to backlog_batch_max, a pack taken whole) and
# payq_worker_backlog_batches_total counts them. 6,000 more, published while
# the same worker runs, are fresh: no batch holds more than batch_max plus
# one pack's lines short of it, and the counter does not move. Every
# transfer of both is posted once.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
P=bl$RUN_ID
MPORT=$(free_port $((17895 + ${PAYQ_STACK_PORT_OFFSET:-0})))
# batch_wait_ms 200: a batch closes wait_ms after its first delivery, and
# with the default 5 ms a loaded machine's broker may not push the packs past
# batch_max in time (what is tested is the limit, not the broker's pace).
printf 'worker:\n  batch_max: 1000\n  batch_wait_ms: 200\n  prefetch: 1000\n  backlog_batch_max: 3000\n  backlog_after_ms: 5000\n' \
    >"$TMP/backlog.yaml"
backlog_batches() {
    curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" |
        awk '$1 == "payq_worker_backlog_batches_total" { print $2 }'
}
POSTED="id LIKE '$P-%' AND status = 'posted'"
posted() { q "SELECT count(*) FROM payq.transfers WHERE $POSTED"; }
# The largest batch this worker committed after journal row $1 (messages
# count a pack's lines one by one).
largest_after() {
    q "SELECT coalesce(max(messages), 0) FROM payq.batches WHERE worker LIKE '%:$PID' AND seq > $1"
}

gen_accounts "$P" 200 | "$BIN/payq-rawpub" >/dev/null || fail "publish accounts"
gen_transfers "$P" 6000 200 7 | "$BIN/payq-rawpub" --pack 100 >/dev/null || fail "publish backlog"
sleep 6 # the backlog ages past backlog_after_ms (5 s)
start_worker --config "$TMP/backlog.yaml" --metrics-listen "127.0.0.1:$MPORT"
PID=$LAST_PID
wait_transfers "$POSTED" 6000 || fail "the backlog was not booked: $(posted) of 6000"
big=$(largest_after 0)
if [ "$big" -gt 1099 ] && [ "$big" -le 3099 ]; then
    ok "under a backlog a batch grew past batch_max 1000 ($big messages)"
else fail "largest backlog batch: $big messages, expected 1100..3099"; fi
grown=$(backlog_batches)
if [ "${grown:-0}" -ge 1 ]; then ok "payq_worker_backlog_batches_total counted them ($grown)"; else
    fail "payq_worker_backlog_batches_total: '${grown}'"; fi

last=$(q "SELECT coalesce(max(seq), 0) FROM payq.batches")
gen_transfers "$P-live" 6000 200 11 | sed "s/\"$P-live-acct-/\"$P-acct-/g" |
    "$BIN/payq-rawpub" --pack 100 >/dev/null || fail "publish live"
wait_transfers "$POSTED" 12000 || fail "the live transfers were not booked: $(posted) of 12000"
live=$(largest_after "$last")
if [ "$live" -ge 1 ] && [ "$live" -le 1099 ]; then
    ok "live traffic kept batch_max ($live messages at most)"
else fail "largest live batch: $live messages, expected 1..1099"; fi
check "no live batch counted as backlog" "$grown" "$(backlog_batches)"
kill -TERM "$PID"
wait "$PID"
check "worker stopped gracefully (exit 0)" "0" "$?"
check "every transfer posted once" "12000" \
    "$(q "SELECT count(DISTINCT id) || '' FROM payq.transfers WHERE id LIKE '$P-%'")"
finish

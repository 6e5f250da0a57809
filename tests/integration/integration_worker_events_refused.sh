#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # `cond && ok || fail` is safe (ok always succeeds); cleanup runs from a trap
# integration_worker_events_refused: a broker that will not confirm the
# outcome events or dead letters must not cost the transfers their
# deliveries. A policy gives payq.results.all and payq.dead a length limit
# of 0 with reject-publish, so every event pack and dead letter is nacked
# (RabbitMQ's answer to a full queue); before the fix the worker gave its
# batch back every 10 s, each time counting a delivery, until the delivery
# limit (20) dead-lettered the transfers, booked or not.
#   1. 2,000 transfers in 20 packs and one malformed message: the worker
#      books them, the broker refuses the dead letter and the events; it
#      gives its deliveries back once, then only publishes them again: 25 s
#      later one give-back and no reconnection of its consumer in its log,
#      the 21 messages ready in payq.transfers, /readyz 503.
#   2. SIGTERM while it waits: exits 0 within 3 s, the packs stay queued.
#   3. A new worker, the policy removed once it has given back: it consumes
#      again only after its events are confirmed, and the queue drains: the
#      2,000 rows booked once with the published amounts, the malformed
#      message the only dead letter, and a consumer of payq.results holds a
#      posted event for each id, identical wherever repeated.
source "$(dirname "$0")/lib/common.sh"
N=2000
POLICY=payq-test-events-refused

cleanup() {
    "$PAYQ_RABBITMQCTL" clear_policy -p payq "$POLICY" >/dev/null 2>&1
    cleanup_common
}
trap cleanup EXIT
trap 'exit 143' TERM INT

refuse_events() {
    "$PAYQ_RABBITMQCTL" set_policy -p payq --apply-to queues --priority 100 "$POLICY" \
        '^payq\.(results\.all|dead)$' '{"max-length":0,"overflow":"reject-publish"}' >/dev/null
}
# wait_log FILE EVENT SECONDS: until the worker's log has EVENT.
wait_log() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "\"event\":\"$2\"" "$1" && return 0
        sleep 0.1
    done
    return 1
}
count_log() { grep -c "\"event\":\"$2\"" "$1"; }
readyz() { curl -s -o /dev/null -w '%{http_code}' "http://$1/readyz"; }

wait_queue_empty payq.transfers 15 && ok "payq.transfers is empty at the start" ||
    fail "payq.transfers holds $(queue_depth payq.transfers) at the start"
P=er$RUN_ID
gen_accounts "$P" 20 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"

bind_dump payq.results "$TMP/events" && ok "events consumer bound" || fail "events consumer not ready"
bind_dump payq.dlx "$TMP/dead" && ok "dead letter consumer bound" || fail "dead letter consumer not ready"

refuse_events
gen_transfers "$P" "$N" 20 11 >"$TMP/transfers"
"$BIN/payq-rawpub" --pack 100 <"$TMP/transfers" >/dev/null || fail "publish"
printf 'transfer\tnot json {%s\n' "$P" | "$BIN/payq-rawpub" >/dev/null || fail "publish the malformed one"
want_sum=$(awk -F'"amount":"' '{ split($2, a, "\""); s += a[1] } END { print s }' "$TMP/transfers")

# 1. The events are refused.
port=$(free_port 29100)
W1LOG=$TMP/worker-${#BG_PIDS[@]}.log # where start_worker logs
start_worker --metrics-listen "127.0.0.1:$port"
w1=$LAST_PID
wait_log "$W1LOG" deliveries_given_back 40 && ok "refused events: the worker gives its deliveries back" ||
    fail "refused events: no deliveries_given_back in 40 s"
check "refused events: the batch was booked before its events failed" "$N" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-%'")"
sleep 25
check "refused events: given back once in 25 s" 1 "$(count_log "$W1LOG" deliveries_given_back)"
check "refused events: the consumer did not consume again" 0 "$(count_log "$W1LOG" amqp_reconnected)"
[ "$(count_log "$W1LOG" outbox_retry)" -ge 1 ] && ok "refused events: publishing them again" ||
    fail "refused events: no outbox_retry in the log"
check "refused events: every message waits ready in payq.transfers" 21 "$(live_ready payq.transfers)"
check "refused events: /readyz answers 503" 503 "$(readyz "127.0.0.1:$port")"

# 2. SIGTERM during the wait.
t0=$SECONDS
kill -TERM "$w1"
for _ in $(seq 30); do kill -0 "$w1" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$w1" 2>/dev/null; then
    fail "SIGTERM while waiting: still running after 3 s"
    kill -9 "$w1"
fi
wait "$w1"
check "SIGTERM while waiting: exits 0" 0 "$?"
echo "# stopped in about $((SECONDS - t0)) s"
check "SIGTERM while waiting: the messages stay queued" 21 "$(live_ready payq.transfers)"

# 3. The broker takes the events again.
W2LOG=$TMP/worker-${#BG_PIDS[@]}.log
start_worker
w2=$LAST_PID
wait_log "$W2LOG" deliveries_given_back 40 || fail "second worker: no deliveries_given_back in 40 s"
"$PAYQ_RABBITMQCTL" clear_policy -p payq "$POLICY" >/dev/null || fail "clear the policy"
wait_queue_empty payq.transfers 60 && ok "events taken again: payq.transfers drains" ||
    fail "events taken again: payq.transfers still holds $(queue_depth payq.transfers)"
kill -TERM "$w2"
wait "$w2"
check "second worker exits 0" 0 "$?"
grep -o '"event":"[a-z_]*"' "$W2LOG" | uniq -c | sed 's/^/# second worker: /'
# Once per refusal: the policy leaves payq.dead and payq.results.all a
# moment apart, so the broker may refuse a redelivered batch's events once
# more after it took its dead letter.
gave=$(count_log "$W2LOG" deliveries_given_back)
[ "$gave" -ge 1 ] && [ "$gave" -le 2 ] && ok "second worker: gave back $gave time(s)" ||
    fail "second worker: gave back $gave times"
check "second worker: consumed again only after each give-back's confirms" "$gave $gave" \
    "$(count_log "$W2LOG" outbox_confirmed) $(count_log "$W2LOG" amqp_reconnected)"
check "booked once, with the published amounts" "$N|$N|$want_sum" \
    "$(q "SELECT count(*), count(DISTINCT id), sum(amount) FROM payq.transfers WHERE id LIKE '$P-%'")"
check "the malformed message is recorded as a dead letter once" 1 \
    "$(q "SELECT count(*) FROM payq.dead_letters WHERE body_sha256 = sha256(convert_to('not json {$P', 'UTF8'))")"

sleep 1 # the consumers flush their dumps when idle
check "the malformed message is the only dead letter published, at least once" "0 1" \
    "$(grep -vc "not json {$P\$" "$TMP/dead") $(grep -c "not json {$P\$" "$TMP/dead" | awk '{ print ($1 >= 1) }')"
check "a posted event for each transfer, identical when repeated" "$N $N 0" \
    "$(/usr/bin/python3 - "$TMP/events" "$P" <<'PY'
import json, sys
seen = {}
for line in open(sys.argv[1], encoding="utf-8"):
    body = line.rstrip("\n").split("\t", 3)[3]
    e = json.loads(body)
    if (e.get("id") or "").startswith(sys.argv[2] + "-t-"):
        seen.setdefault(e["id"], set()).add(body)
posted = sum(1 for b in seen.values() if json.loads(next(iter(b)))["status"] == "posted")
print(len(seen), posted, sum(1 for b in seen.values() if len(b) > 1))
PY
)"
finish

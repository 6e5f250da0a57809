#!/usr/bin/env bash
# chaos_intake_drain: a replica shut down with SIGTERM under load costs not
# one failed request (issue 12). 64 clients send one transfer per request
# through HAProxy to two `payq-producer serve` replicas; 6 s in,
# `scripts/stack stop-intake 1` sends replica 1 SIGTERM and waits for it to
# exit (its /readyz answers 503 at once, HAProxy takes it out within about
# 1 s, it keeps serving for producer.http_drain_ms, answers what it holds
# and exits 0), then replica 1 is started again, and the same is done to
# replica 2, and the load goes on for 5 s more. Every attempt of every client answered 202 (none failed, none
# needed a retry), both replicas logged their drain and exited after it,
# HAProxy sent each replica requests again after its restart, and the
# ledger holds every id exactly once (as in chaos_intake_kill).
# Needs `scripts/stack up --intake 2` (skips, exit 77, otherwise).
set -uo pipefail
export LC_ALL=C
TEST_NAME=chaos_intake_drain
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/intake_common.sh
. "$here/lib/intake_common.sh"
intake_require 2
# shellcheck disable=SC2317 # called by the EXIT trap
restore() { "$STACK" start-intake 1 >/dev/null 2>&1; "$STACK" start-intake 2 >/dev/null 2>&1; cleanup_common; }
trap restore EXIT

P=id$RUN_ID
K=20
LOGDIR=$PAYQ_RUN_DIR/intake
declare -A after_start
start_worker
intake_accounts "$P" "$K" || finish
load_start "$P" "$K"
sleep 6
for r in 1 2; do
    off=$(stat -c %s "$LOGDIR/replica-$r.log" 2>/dev/null || echo 0)
    "$STACK" stop-intake "$r" >"$TMP/stop-$r.out" 2>&1
    check "replica $r: stop-intake (SIGTERM) returned once it had exited" 0 $?
    cat "$TMP/stop-$r.out"
    tail -c +"$((off + 1))" "$LOGDIR/replica-$r.log" >"$TMP/replica-$r.log"
    check "replica $r: drained, then stopped" "http_draining http_stopping http_stopped" \
        "$(jq -r 'select(.event | test("^http_(draining|stopping|stopped)$")) | .event' "$TMP/replica-$r.log" 2>/dev/null | paste -sd' ')"
    check "replica $r: logged no error" 0 "$(grep -c '"level":"error"' "$TMP/replica-$r.log")"
    "$STACK" start-intake "$r" >"$TMP/start-$r.out" 2>&1
    check "replica $r: started again and in rotation" 0 $?
    after_start[$r]=$(server_total "$r")
    sleep 5
done
load_stop
check "load generator finished" 0 $?
cat "$TMP/load.json"
check "not one failed request" 0 "$(jq .failed_attempts "$TMP/load.json")"
check "every id got a 202" 0 "$(jq .ids_never_202 "$TMP/load.json")"
for r in 1 2; do
    end_total=$(server_total "$r")
    check "HAProxy sent replica $r requests after its restart (${after_start[$r]}, then $end_total)" true \
        "$([ "${end_total:-0}" -gt "${after_start[$r]:-0}" ] && echo true)"
done
check_load_ledger "$P"
finish

#!/usr/bin/env bash
# chaos_intake_kill: a lost intake replica loses no accepted payment and
# doubles none (issue 12). 64 clients send one transfer per request through
# HAProxy to two `payq-producer serve` replicas; 8 s in, replica 2 is
# killed with SIGKILL (requests in flight on it fail: HAProxy does not
# replay a request that reached a replica), 3 s later it is started again
# (until it answers /readyz it is out of rotation), and the load goes on
# for 8 s more. Clients retry every failed request with the
# same id until it gets a 202. Once a worker has drained the queue: every
# id that ever got a 202 is in the ledger exactly once, posted with its own
# amount, nothing is there that no client sent, no retry was recorded as a
# conflict, the accounts moved by exactly the ledger's sum; HAProxy sent
# replica 2 requests again after its restart.
# Needs `scripts/stack up --intake 2` (skips, exit 77, otherwise).
set -uo pipefail
export LC_ALL=C
TEST_NAME=chaos_intake_kill
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/intake_common.sh
. "$here/lib/intake_common.sh"
intake_require 2
# shellcheck disable=SC2317 # called by the EXIT trap
restore() { "$STACK" start-intake 2 >/dev/null 2>&1; cleanup_common; }
trap restore EXIT

P=ik$RUN_ID
K=20
start_worker
intake_accounts "$P" "$K" || finish
load_start "$P" "$K"
sleep 8
"$STACK" kill-intake 2 >"$TMP/kill.out" 2>&1
check "replica 2 killed (SIGKILL)" 0 $?
sleep 3
"$STACK" start-intake 2 >"$TMP/start.out" 2>&1
check "replica 2 started again and in rotation" 0 $?
after_start=$(server_total 2)
sleep 8
load_stop
check "load generator finished" 0 $?
cat "$TMP/load.json"
check "every id got a 202 in the end (clients retried)" 0 "$(jq .ids_never_202 "$TMP/load.json")"
echo "# failed attempts (retried): $(jq -c '.statuses' "$TMP/load.json")"
end_total=$(server_total 2)
check "HAProxy sent replica 2 requests after its restart ($after_start, then $end_total)" true \
    "$([ "${end_total:-0}" -gt "${after_start:-0}" ] && echo true)"
check_load_ledger "$P"
finish

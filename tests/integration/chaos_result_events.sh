#!/usr/bin/env bash
# chaos_result_events: 20,000 transfer messages with a realistic mix
# (posted, insufficient funds, credit to a limited account that later pays
# out, unknown account, currency mismatch, duplicates, conflicting reuses of
# ids, malformed bodies) drained by 3 workers, one killed with SIGKILL about
# every 1.5 s (at least 5 kills). A consumer bound to payq.results then holds
# at least one event for every ledger row, conflict row and dead letter of
# the run; each agrees with its row (status, reason, amount, stored
# balances); repeated events are byte-identical; routing key = status; a
# message of one event is named by its id, a pack by sha256:<its body>; and,
# per account, the posted events' balances chain exactly: ordered by
# committed_at, each is the previous plus or minus the transfer's amount,
# from zero to the account's balance in payq.accounts. Events travel in
# packs (worker.result_pack_max, default 1000).
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
P=re$RUN_ID
N=${CHAOS_EVENTS_MESSAGES:-20000}
KILLS_MIN=5

bind_dump payq.results "$TMP/events" 10000 && ok "events consumer bound" || fail "events consumer not ready"
drain=$LAST_PID

{
    gen_accounts "$P" 100
    awk -v p="$P" 'BEGIN {
        for (i = 1; i <= 20; i++)
            printf "account\t{\"id\":\"%s-lim-%d\",\"currency\":\"EUR\",\"flags\":[\"debits_must_not_exceed_credits\"]}\n", p, i
        for (i = 1; i <= 10; i++) printf "account\t{\"id\":\"%s-usd-%d\",\"currency\":\"USD\"}\n", p, i }'
} | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"

# The mix, seeded: 64% plain, 6% credits to limited accounts, 8% debits
# from them (posted while funded, else insufficient_funds), 4% unknown
# account, 4% currency mismatch, 6% duplicates, 4% conflicting reuses, 4%
# malformed (bad amount, unknown field, not JSON).
/usr/bin/python3 - "$P" "$N" >"$TMP/msgs" <<'PY'
import json, random, sys
p, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(13)
sent = []
def acct(k): return f"{p}-acct-{k}"
for i in range(1, n + 1):
    r = rnd.random()
    tid = f"{p}-t-{i}"
    d, c = rnd.sample(range(1, 101), 2)
    t = {"id": tid, "debit_account": acct(d), "credit_account": acct(c),
         "amount": str(rnd.randint(1, 100000)), "currency": "EUR", "batch_id": f"{p}-b"}
    if r < 0.64:
        pass
    elif r < 0.70:
        t["credit_account"] = f"{p}-lim-{rnd.randint(1, 20)}"
    elif r < 0.78:
        t["debit_account"] = f"{p}-lim-{rnd.randint(1, 20)}"
    elif r < 0.82:
        t["credit_account"] = f"{p}-ghost-{rnd.randint(1, 50)}"
    elif r < 0.86:
        t["credit_account"] = f"{p}-usd-{rnd.randint(1, 10)}"
    elif r < 0.92 and sent:
        print("transfer\t" + rnd.choice(sent)); continue
    elif r < 0.96 and sent:
        o = json.loads(rnd.choice(sent))
        o["amount"] = str(int(o["amount"]) + 1)
        print("transfer\t" + json.dumps(o, separators=(",", ":"))); continue
    else:
        k = rnd.randint(0, 2)
        if k == 0: t["amount"] = "12.50"
        elif k == 1: t["colour"] = "blue"
        else:
            print("transfer\tnot json {" + tid); continue
        print("transfer\t" + json.dumps(t, separators=(",", ":"))); continue
    body = json.dumps(t, separators=(",", ":"))
    sent.append(body)
    print("transfer\t" + body)
PY
publish_under_kills "$TMP/msgs" 12 0.5 "$KILLS_MIN" 300
wait_queue_empty payq.transfers 300 || fail "payq.transfers did not drain"
for w in "${workers[@]}"; do kill -TERM "$w" 2>/dev/null; done
for w in "${workers[@]}"; do wait "$w"; done
# Whatever a stopping worker gave back is booked by one last worker.
"$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/workers.log"
wait "$drain"
check "events consumer ended cleanly" "0" "$?"
cat "$TMP/events.out"

q "SELECT id, status, coalesce(reason, ''), amount, debit_account, credit_account,
   coalesce(debit_balance::text, ''), coalesce(credit_balance::text, '')
   FROM payq.transfers WHERE id LIKE '$P-%'" >"$TMP/rows"
q "SELECT entity_id, reason, payload->>'amount', encode(payload_sha256, 'hex') FROM payq.conflicts
   WHERE kind = 'transfer' AND entity_id LIKE '$P-%'" >"$TMP/conflicts"
q "SELECT encode(body_sha256, 'hex'), reason FROM payq.dead_letters" >"$TMP/dead"
q "SELECT id, credits_posted - debits_posted FROM payq.accounts WHERE id LIKE '$P-%'
   AND (debits_posted > 0 OR credits_posted > 0)" >"$TMP/balances"

/usr/bin/python3 "$SRC/tests/integration/lib/check_result_events.py" "$TMP" "$P"
check "every outcome has an identical, agreeing event" "0" "$?"
finish

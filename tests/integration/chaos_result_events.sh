#!/usr/bin/env bash
# chaos_result_events: 20,000 transfer messages with a realistic mix
# (posted, insufficient funds, unknown account, currency mismatch,
# duplicates, conflicting reuses of ids, malformed bodies) drained by 3
# workers, one killed with SIGKILL about every 1.5 s (at least 5 kills). A
# consumer bound to payq.results then holds at least one event for every
# ledger row, conflict row and dead letter of the run; each agrees with its
# row (status, reason, amount); repeated events are byte-identical; and the
# balance in each account's last posted event is the account's balance.
# Events travel in packs (worker.result_pack_max, default 100).
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
P=re$RUN_ID
N=${CHAOS_EVENTS_MESSAGES:-20000}
KILLS_MIN=5

"$BIN/payq-ackdrain" --bind payq.results --dump "$TMP/events" --idle-ms 15000 \
    >"$TMP/drain.out" 2>"$TMP/drain.err" &
drain=$!
BG_PIDS+=("$drain")
for _ in $(seq 50); do grep -q ready "$TMP/drain.err" && break; sleep 0.1; done
grep -q ready "$TMP/drain.err" && ok "events consumer bound" || fail "events consumer not ready"

{
    gen_accounts "$P" 100
    awk -v p="$P" 'BEGIN {
        for (i = 1; i <= 20; i++)
            printf "account\t{\"id\":\"%s-lim-%d\",\"currency\":\"EUR\",\"flags\":[\"debits_must_not_exceed_credits\"]}\n", p, i
        for (i = 1; i <= 10; i++) printf "account\t{\"id\":\"%s-usd-%d\",\"currency\":\"USD\"}\n", p, i }'
} | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"

# The mix, seeded: 70% plain, 8% from limited accounts, 4% unknown
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
    if r < 0.70:
        pass
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
split -n l/12 "$TMP/msgs" "$TMP/chunk."
(
    for c in "$TMP"/chunk.*; do
        "$BIN/payq-rawpub" <"$c" >/dev/null || { echo "publish failed" >&2; exit 1; }
        sleep 0.5
    done
) &
publisher=$!

workers=()
for _ in 1 2 3; do
    "$BIN/payq-worker" 2>>"$TMP/workers.log" &
    workers+=($!)
done
kills=0
deadline=$((SECONDS + 300))
while [ $SECONDS -lt $deadline ]; do
    sleep 1.$((RANDOM % 10))
    victim=$((RANDOM % 3))
    kill -9 "${workers[$victim]}" 2>/dev/null && kills=$((kills + 1))
    wait "${workers[$victim]}" 2>/dev/null
    "$BIN/payq-worker" 2>>"$TMP/workers.log" &
    workers[victim]=$!
    if [ $kills -ge $KILLS_MIN ] && ! kill -0 "$publisher" 2>/dev/null; then
        break
    fi
done
wait "$publisher"
check "publisher succeeded" "0" "$?"
[ $kills -ge $KILLS_MIN ] && ok "at least $KILLS_MIN kills ($kills)" || fail "only $kills kills"
wait_queue_empty payq.transfers 300 || fail "payq.transfers did not drain"
for w in "${workers[@]}"; do kill -TERM "$w" 2>/dev/null; done
for w in "${workers[@]}"; do wait "$w"; done
# Whatever a stopping worker gave back is booked by one last worker.
"$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/workers.log"
wait "$drain"
check "events consumer ended cleanly" "0" "$?"
cat "$TMP/drain.out"

q "SELECT id, status, coalesce(reason, ''), amount FROM payq.transfers WHERE id LIKE '$P-%'" >"$TMP/rows"
q "SELECT entity_id, reason, payload->>'amount', encode(payload_sha256, 'hex') FROM payq.conflicts
   WHERE kind = 'transfer' AND entity_id LIKE '$P-%'" >"$TMP/conflicts"
q "SELECT encode(body_sha256, 'hex'), reason FROM payq.dead_letters" >"$TMP/dead"
q "SELECT id, credits_posted - debits_posted FROM payq.accounts WHERE id LIKE '$P-%'
   AND (debits_posted > 0 OR credits_posted > 0)" >"$TMP/balances"

/usr/bin/python3 - "$TMP" "$P" <<'PY'
import collections, hashlib, json, sys
tmp, p = sys.argv[1], sys.argv[2]
def rows(name): return [l.rstrip("\n").split("|") for l in open(f"{tmp}/{name}") if l.strip()]
events = collections.defaultdict(set)   # (status, key) -> bodies
bad_props = 0
first_ids, mids = set(), set()
for line in open(f"{tmp}/events", encoding="utf-8"):
    rk, mid, body = line.rstrip("\n").split("\t", 2)
    e = json.loads(body)
    if e["status"] != rk: bad_props += 1   # a pack holds one status, its routing key
    if mid: mids.add(mid)
    if e["id"]: first_ids.add(e["id"])
    if e["status"] == "conflict": key = (e["id"], e["payload_sha256"])
    elif e["status"] == "dead_lettered": key = e["body_sha256"]
    else: key = e["id"]
    events[(e["status"], key)].add(body)
def ev(status, key):
    b = events.get((status, key))
    return None if not b else json.loads(next(iter(b)))
res = collections.Counter()
mine = [r for r in rows("rows")]
for id_, status, reason, amount in mine:
    e = ev(status, id_)
    if e is None: res["ledger row without event"] += 1
    elif (e["reason"] or "") != reason or e["amount"] != int(amount): res["event disagrees with row"] += 1
for id_, reason, amount, h in rows("conflicts"):
    e = ev("conflict", (id_, h))
    if e is None: res["conflict without event"] += 1
    elif e["reason"] != reason or e["amount"] != int(amount): res["conflict event disagrees"] += 1
dead = dict(rows("dead"))
ndead = 0
for line in open(f"{tmp}/msgs", encoding="utf-8"):
    rk, body = line.rstrip("\n").split("\t", 1)
    h = hashlib.sha256(body.encode()).hexdigest()
    if h not in dead: continue
    ndead += 1
    e = ev("dead_lettered", h)
    if e is None: res["dead letter without event"] += 1
    elif e["reason"] != dead[h]: res["dead event disagrees"] += 1
res["repeated events differ"] = sum(1 for b in events.values() if len(b) > 1)
res["event routing key differs from status"] = bad_props
res["message_id naming no event of the run"] = len(mids - first_ids)
last = {}
for (status, key), bodies in events.items():
    if status != "posted" or not key.startswith(p): continue
    e = json.loads(next(iter(bodies)))
    for side in ("debit", "credit"):
        a = e[side + "_account"]
        cand = (e["committed_at"], e[side + "_balance"])
        if a not in last or cand[0] > last[a][0]: last[a] = (cand[0], {cand[1]})
        elif cand[0] == last[a][0]: last[a][1].add(cand[1])
res["final balance not in the last posted event"] = sum(
    1 for a, b in rows("balances") if int(b) not in last.get(a, ("", set()))[1])
st = collections.Counter(r[1] for r in mine)
print(f"rows {len(mine)} ({dict(st)}), conflicts {len(rows('conflicts'))}, dead letters {ndead}, "
      f"distinct events {len(events)}, events received {sum(1 for _ in open(f'{tmp}/events'))}")
for k, v in res.items(): print(f"check {k}: {v}")
sys.exit(1 if any(res.values()) or ndead == 0 or not mine else 0)
PY
check "every outcome has an identical, agreeing event" "0" "$?"
finish

"""check_result_events TMP PREFIX: the verdict of chaos_result_events.

Reads what the test collected in TMP: events (payq-ackdrain --dump: routing
key, message_id, message number, one event line), msgs (what was published),
rows / conflicts / dead / balances (the ledger, psql -At). Prints one line
per check with its count of violations and exits 1 if any is non-zero, or if
the run produced no ledger rows or no dead letters (a check that saw nothing
proves nothing)."""
import collections
import hashlib
import json
import sys


def rows(tmp, name):
    with open(f"{tmp}/{name}", encoding="utf-8") as f:
        return [line.rstrip("\n").split("|") for line in f if line.strip()]


def read_events(tmp, res):
    """(status, key) -> set of event lines; checks each message's naming."""
    events = collections.defaultdict(set)
    messages = collections.defaultdict(list)  # seq -> (rk, mid, lines)
    with open(f"{tmp}/events", encoding="utf-8") as f:
        for line in f:
            rk, mid, seq, body = line.rstrip("\n").split("\t", 3)
            messages[seq].append((rk, mid, body))
    for parts in messages.values():
        rk, mid = parts[0][0], parts[0][1]
        lines = [b for _, _, b in parts]
        body = "\n".join(lines)
        if len(lines) == 1:
            want = json.loads(body)["id"] or ""
        else:
            want = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        if mid != want:
            res["message_id not the event's id or sha256 of the pack"] += 1
        for b in lines:
            e = json.loads(b)
            if e["status"] != rk:
                res["event routing key differs from status"] += 1
            if e["status"] == "conflict":
                key = (e["id"], e["payload_sha256"])
            elif e["status"] == "dead_lettered":
                key = e["body_sha256"]
            else:
                key = e["id"]
            events[(e["status"], key)].add(b)
    return events, len(messages)


def chain_breaks(events, prefix, finals):
    """Per account, posted events ordered by committed_at must step from 0 by
    each transfer's amount to the account's final balance. Rows of one
    statement can share a microsecond: within a tie, take the event that
    continues the chain."""
    per = collections.defaultdict(list)
    for (status, key), bodies in events.items():
        if status != "posted" or not key.startswith(prefix):
            continue
        e = json.loads(next(iter(bodies)))
        amt = int(e["amount"])
        per[e["debit_account"]].append((e["committed_at"], -amt, int(e["debit_balance"])))
        per[e["credit_account"]].append((e["committed_at"], amt, int(e["credit_balance"])))
    breaks = 0
    for acct in set(per) | set(finals):
        steps = sorted(per.get(acct, []))
        cur, i = 0, 0
        while i < len(steps):
            j = i
            while j < len(steps) and steps[j][0] == steps[i][0]:
                j += 1
            group = steps[i:j]
            while group:
                nxt = next((s for s in group if cur + s[1] == s[2]), None)
                if nxt is None:
                    breaks += 1
                    nxt = group[0]
                cur = nxt[2]
                group.remove(nxt)
            i = j
        if cur != finals.get(acct, 0):
            breaks += 1
    return breaks


def main():
    tmp, prefix = sys.argv[1], sys.argv[2]
    res = collections.Counter()
    events, nmsg = read_events(tmp, res)

    def ev(status, key):
        b = events.get((status, key))
        return None if not b else json.loads(next(iter(b)))

    mine = rows(tmp, "rows")
    for id_, status, reason, amount, debit, credit, dbal, cbal in mine:
        e = ev(status, id_)
        if e is None:
            res["ledger row without event"] += 1
        elif ((e["reason"] or "") != reason or e["amount"] != amount
              or e["debit_account"] != debit or e["credit_account"] != credit
              or (e["debit_balance"] or "") != dbal or (e["credit_balance"] or "") != cbal):
            res["event disagrees with row"] += 1
        if (status == "posted") != (dbal != "" and cbal != ""):
            res["stored balances present iff posted"] += 1
    for id_, reason, amount, h in rows(tmp, "conflicts"):
        e = ev("conflict", (id_, h))
        if e is None:
            res["conflict without event"] += 1
        elif e["reason"] != reason or e["amount"] != amount:
            res["conflict event disagrees"] += 1
    dead = dict(rows(tmp, "dead"))
    ndead = 0
    with open(f"{tmp}/msgs", encoding="utf-8") as f:
        for line in f:
            _, body = line.rstrip("\n").split("\t", 1)
            h = hashlib.sha256(body.encode()).hexdigest()
            if h not in dead:
                continue
            ndead += 1
            e = ev("dead_lettered", h)
            if e is None:
                res["dead letter without event"] += 1
            elif e["reason"] != dead[h]:
                res["dead event disagrees"] += 1
    res["repeated events differ"] = sum(1 for b in events.values() if len(b) > 1)
    finals = {a: int(b) for a, b in rows(tmp, "balances")}
    res["balance chain breaks"] = chain_breaks(events, prefix, finals)
    st = collections.Counter(r[1] for r in mine)
    with open(f"{tmp}/events", encoding="utf-8") as f:
        received = sum(1 for _ in f)
    print(f"rows {len(mine)} ({dict(st)}), conflicts {len(rows(tmp, 'conflicts'))}, "
          f"dead letters {ndead}, distinct events {len(events)}, events received {received} "
          f"in {nmsg} messages, accounts chained {len(finals)}")
    for k in ("ledger row without event", "event disagrees with row",
              "stored balances present iff posted", "conflict without event",
              "conflict event disagrees", "dead letter without event", "dead event disagrees",
              "repeated events differ", "event routing key differs from status",
              "message_id not the event's id or sha256 of the pack", "balance chain breaks"):
        print(f"check {k}: {res[k]}")
    return 1 if any(res.values()) or ndead == 0 or not mine or not finals else 0


if __name__ == "__main__":
    sys.exit(main())

"""reconday: a business day written straight into the audit stream and the
ledger, for timing payq-reconciler on days too large to push through the
workers here (10M transfers would take hours on a shared 2-core machine).

What it writes is what the pipeline writes for a day of valid transfers
that were all posted: the payq.audit stream gets the same messages the
producer publishes (packs of canonical transfer bodies under the routing key
"transfers", then the batch manifest under "batch"), through an exchange of
its own bound to payq.audit only (so no worker sees them); the ledger gets,
in ONE transaction, the rows payq-worker inserts (payload_sha256 = SHA-256
of the canonical body, status posted) and the accounts' debits_posted /
credits_posted moved by the same sums, so the books balance in every
snapshot. Nothing is shortcut on the reconciler's side: it reads both
sources whole and compares every id, amount, account, currency and hash.
`tamper` writes chosen ledger rows wrong (or leaves them out) while the
stream stays right, to show that the reconciler names such breaks.

Pure parts (bodies, COPY lines, the manifest) are unit tested in
tests/tools/test_payqbench.py."""

import base64
import hashlib
import json
import os
import random
import subprocess
import urllib.parse
import urllib.request

# One exchange per process: two writers on one stack never unbind each
# other's.
EXCHANGE = "payq.bench.audit.%d" % os.getpid()
CURRENCY = "EUR"
PACK = 100


def account_id(pfx, i):
    return "%s:a%05d" % (pfx, i)


def transfer_body(tid, debit, credit, amount, batch, date):
    """The canonical transfer body (common/message.c payq_msg_encode_transfer):
    what the producer publishes and what the worker hashes."""
    return ('{"id":"%s","debit_account":"%s","credit_account":"%s","amount":"%d",'
            '"currency":"%s","batch_id":"%s","business_date":"%s"}'
            % (tid, debit, credit, amount, CURRENCY, batch, date))


def copy_line(tid, debit, credit, amount, batch, date, sha, published):
    """One payq.transfers row in COPY text format, as payq-worker inserts a
    posted transfer (columns of COPY_COLUMNS)."""
    return "%s\t%s\t%s\t%s\t%d\t%s\t%s\tposted\t\\\\x%s\t%s\n" % (
        tid, batch, debit, credit, amount, CURRENCY, date, sha, published)


COPY_COLUMNS = ("id, batch_id, debit_account, credit_account, amount, currency, "
                "business_date, status, payload_sha256, published_at")


def manifest_body(batch, date, count, total):
    """The batch manifest the producer publishes after the batch."""
    return ('{"batch_id":"%s","business_date":"%s","count":"%d","totals":{"%s":"%d"}}'
            % (batch, date, count, CURRENCY, total))


def day(pfx, acct, n, accounts, seed):
    """The day's transfers: (id, debit, credit, amount), ids pfx-N, uniform
    over the accounts acct:a00000.., two distinct accounts each, amounts
    1..100000 (deterministic for a seed)."""
    rnd = random.Random(seed)
    r = rnd.randrange
    for i in range(n):
        d = r(accounts)
        c = r(accounts - 1)
        if c >= d:
            c += 1
        yield "%s-%d" % (pfx, i), account_id(acct, d), account_id(acct, c), r(1, 100001)


class Tamper:
    """Ledger rows written wrong on purpose, by index in the day: amount
    {i: delta} (the row's amount moved by delta, the accounts following the
    row, so only the comparison can see it) and drop {i} (row left out)."""

    def __init__(self, amount=None, drop=None):
        self.amount = amount or {}
        self.drop = set(drop or ())


def write_day(env, bin_dir, pfx, acct, date, n, accounts, seed, published, tamper=None,
              log=None):
    """Publishes the day's stream and loads its ledger rows; returns
    (manifest count, manifest total) or raises RuntimeError."""
    tamper = tamper or Tamper()
    batch = pfx + "-b"
    pub_env = dict(env)
    pub_env["PAYQ_AMQP_URL"] = env["PAYQ_AMQP_ADMIN_URL"]
    pub = subprocess.Popen([os.path.join(bin_dir, "payq-rawpub"), "--exchange", EXCHANGE,
                            "--pack", str(PACK), "--window", "500"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                           env=pub_env, text=True)
    sql = subprocess.Popen(["psql", env["PAYQ_PG_PRIMARY"], "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-f", "-"], stdin=subprocess.PIPE, stdout=log, stderr=log,
                           text=True)
    sql.stdin.write("BEGIN;\nSET LOCAL synchronous_commit = local;\n"
                    "COPY payq.transfers (%s) FROM STDIN;\n" % COPY_COLUMNS)
    sums = {}
    total = 0
    out_pub, out_sql = [], []
    for i, (tid, d, c, amount) in enumerate(day(pfx, acct, n, accounts, seed)):
        body = transfer_body(tid, d, c, amount, batch, date)
        out_pub.append("transfer\t" + body + "\n")
        total += amount
        if i not in tamper.drop:
            a = amount + tamper.amount.get(i, 0)
            sha = hashlib.sha256(body.encode()).hexdigest()
            out_sql.append(copy_line(tid, d, c, a, batch, date, sha, published))
            sd = sums.setdefault(d, [0, 0])
            sd[0] += a
            sc = sums.setdefault(c, [0, 0])
            sc[1] += a
        if len(out_pub) >= 20000:
            pub.stdin.write("".join(out_pub))
            sql.stdin.write("".join(out_sql))
            out_pub, out_sql = [], []
    out_pub.append("batch\t" + manifest_body(batch, date, n, total) + "\n")
    pub.stdin.write("".join(out_pub))
    sql.stdin.write("".join(out_sql))
    sql.stdin.write("\\.\nCREATE TEMP TABLE day_sums (id text, d bigint, c bigint) "
                    "ON COMMIT DROP;\nCOPY day_sums FROM STDIN;\n")
    sql.stdin.write("".join("%s\t%d\t%d\n" % (k, v[0], v[1]) for k, v in sums.items()))
    sql.stdin.write("\\.\nUPDATE payq.accounts a SET debits_posted = a.debits_posted + s.d, "
                    "credits_posted = a.credits_posted + s.c FROM day_sums s WHERE a.id = s.id;\n"
                    "COMMIT;\n")
    pub.stdin.close()
    sql.stdin.close()
    pub_out = pub.stdout.read()
    if pub.wait() != 0:
        sql.wait()
        raise RuntimeError("payq-rawpub failed (%s)" % pub_out.strip())
    if sql.wait() != 0:
        raise RuntimeError("loading the ledger rows failed (psql)")
    return n, total


def open_accounts_sql(pfx, accounts):
    """Plain accounts (no balance rules) the days move money between."""
    return ("INSERT INTO payq.accounts (id, currency) SELECT '%s:a' || lpad(i::text, 5, '0'), "
            "'%s' FROM generate_series(0, %d) i ON CONFLICT (id) DO NOTHING"
            % (pfx, CURRENCY, accounts - 1))


def _mgmt(env, method, path, body=None):
    u = urllib.parse.urlsplit(env["PAYQ_AMQP_MGMT_URL"].split(",")[0])
    url = "%s://%s:%d%s" % (u.scheme, u.hostname, u.port, path)
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    auth = "%s:%s" % (urllib.parse.unquote(u.username or ""), urllib.parse.unquote(u.password or ""))
    req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def bind_exchange(env):
    """EXCHANGE (topic), bound to payq.audit only."""
    _mgmt(env, "PUT", "/api/exchanges/payq/" + EXCHANGE,
          {"type": "topic", "durable": False, "auto_delete": False})
    _mgmt(env, "POST", "/api/bindings/payq/e/%s/q/payq.audit" % EXCHANGE, {"routing_key": "#"})


def unbind_exchange(env):
    try:
        _mgmt(env, "DELETE", "/api/exchanges/payq/" + EXCHANGE)
    except OSError:
        pass


def main(argv):
    """python3 -m payqbench.reconday PFX ACCT DATE N [--amount I:DELTA]...
    [--drop I]...: one day written with the stack's environment (PAYQ_*),
    the accounts ACCT:a00000.. (10) opened first, through EXCHANGE (bound
    for the call, removed after). Prints "COUNT TOTAL" of the manifest."""
    import datetime
    import sys
    pfx, acct, date, n = argv[0], argv[1], argv[2], int(argv[3])
    t = Tamper()
    for flag, v in zip(argv[4::2], argv[5::2]):
        if flag == "--amount":
            i, delta = v.split(":")
            t.amount[int(i)] = int(delta)
        elif flag == "--drop":
            t.drop.add(int(v))
    env = dict(os.environ)
    bin_dir = env.get("PAYQ_BUILD_DIR", "build")
    subprocess.run(["psql", env["PAYQ_PG_PRIMARY"], "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c",
                    open_accounts_sql(acct, 10)], check=True, stdout=subprocess.DEVNULL)
    published = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
    bind_exchange(env)
    try:
        count, total = write_day(env, bin_dir, pfx, acct, date, n, 10, 1, published, t,
                                 log=sys.stderr)
    finally:
        unbind_exchange(env)
    print(count, total)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))

"""cli: the command line of scripts/bench (unchanged from the bash version:
the same options, defaults, messages and exit status 2 on a usage error)."""

import re

from . import events, ledger

USAGE = """\
scripts/bench: end-to-end benchmark of payq on the local stack, with full
durability (publisher confirms, quorum queue payq.transfers, audit stream,
PostgreSQL with a synchronous standby), against baselines measured in the
same invocation:
  broker ceiling  the same messages, same producer and topology, consumed by
                  payq-ackdrain (acks in batches of 1000, no database)
  textbook        payq-worker with batch_max 1 and prefetch 1: one
                  transaction and one ack per message
For each skew and each worker count: open accounts (and fund the restricted
ones), start N workers, publish the transfers with payq-producer, wait until
the ledger holds them all; then a shorter run paced at about half the rate
just reached (payq-rawpub --rate) for latency at half load; then reconcile
the run's business date with payq-reconciler.

  scripts/bench [--transfers N] [--accounts A] [--workers 1,2,4]
                [--skew uniform|zipf|hot[,...]] [--quick] [--out DIR]
                [--recon-sizes 100000,1000000] [--textbook-transfers N]
                [--half-load-seconds S] [--seed S] [--keep-data]
                [--brokers 1,3] [--ledger-accounts 0,1000000] [--result-events on,off]
                [--wal-as-found]
  scripts/bench --http [--http-seconds S] [--http-conns 8,64,256]
                [--http-replicas 1,2] [--http-sizes 1,100]

  --transfers N        per run (default 200000: about a minute per run here)
  --accounts A         regular accounts per run (default 10000); A/200 (at
                       least 5) more are restricted and barely funded
  --workers LIST       worker counts to run (default 1,2)
  --skew LIST          uniform (default), zipf (popularity ~ 1/rank) and/or
                       hot (every transfer credits one merchant account)
  --quick              CI size: 20000 transfers, 2000 accounts, workers 1,2,
                       uniform, textbook on 2000, half load for 6 s
  --out DIR            default bench-out/<UTC timestamp>
  --recon-sizes LIST   also time the reconciler on days of these sizes
  --textbook-transfers default min(N, 20000)
  --pack N             transfers per broker message (producer.pack_max;
                       default 100; 1 = one message per transfer). The
                       ceiling is also measured with one message per
                       transfer when N > 1: what packing buys
  --half-load-seconds  length of the half-load run (default 15)
  --keep-data          keep the generated JSON Lines files
  --brokers LIST       RabbitMQ node counts to run on (1 and/or 3). For each,
                       the stack is brought to that shape (scripts/stack
                       purge, then up --brokers N: the ledger starts empty),
                       the ceilings and the runs are measured on it, and each
                       run gets the key `brokers`; at the end the stack is
                       put back to the count it had (purge + up again).
                       Without it: the stack as it is, no `brokers` key
  --ledger-accounts LIST  accounts present in payq.accounts beyond those a
                       run touches (e.g. 0,1000000), a dimension like
                       --workers, run in ascending order: filler accounts
                       are added (one INSERT, as payq_owner) before the runs
                       of each value; with two values or more the smallest
                       value's runs are made again after the largest's
                       (A-B-A, tagged 'again'), and every size is compared
                       with the mean of both; each run gets the keys
                       ledger_accounts, ledger_accounts_present, ledger_pass,
                       drain_ratio_vs_smallest_ledger
  --wal-as-found       measure the PostgreSQL nodes' WAL as it is: without it,
                       every node is first given wal_keep_size + 32 segments
                       (pg_switch_wal on a young cluster) and before each
                       measured phase a checkpoint everywhere recycles the
                       segments the last one wrote, so no commit waits for a
                       new 16 MB file (payqbench/wal.py); each run records
                       the fewest segments any node had ready, as
                       wal_segments_ahead and half_load_wal_segments_ahead
""" + events.USAGE + """
  --http               the HTTP API through HAProxy with wrk instead (README,
                       "Intake replicas behind HAProxy"; payqbench/http.py)

Output in --out (default bench-out/<UTC timestamp>): results.json (one
object per run), bench.png (throughput against workers; latency CDFs),
table.txt (every figure), per-run files under runs/<tag>/, and the figure
of scripts/bench.d/failover under the key `failover` when that program
exists. Exit 0 when every step succeeded, 1 when one failed, 2 on a usage
error.
Binaries from ${PAYQ_BUILD_DIR:-build} (built when missing).
"""

# Options that take a value, and their attribute in Options.
VALUED = {
    "--transfers": "transfers", "--accounts": "accounts", "--workers": "workers",
    "--skew": "skews", "--skews": "skews", "--out": "out", "--recon-sizes": "recon_sizes",
    "--textbook-transfers": "textbook_transfers", "--half-load-seconds": "half_load_seconds",
    "--seed": "seed", "--pack": "pack", "--brokers": "brokers",
    "--http-seconds": "http_seconds", "--http-conns": "http_conns",
    "--http-replicas": "http_replicas", "--http-sizes": "http_sizes",
    "--ledger-accounts": "ledger_accounts",
    events.OPTION: "result_events",
}
FLAGS = {"--quick": "quick", "--keep-data": "keep", "--http": "http",
         "--wal-as-found": "wal_as_found"}
SKEWS = ("uniform", "zipf", "hot")


class UsageError(Exception):
    """A bad command line: the message is printed as "bench: ..." and the
    exit status is 2."""


class Help(Exception):
    pass


class Options:
    """The parsed command line. Lists keep the text given (workers, skews,
    recon_sizes) and the parsed values (worker_list, skew_list,
    recon_list)."""

    def __init__(self):
        self.transfers = self.accounts = self.workers = self.skews = None
        self.out = self.recon_sizes = self.textbook_transfers = self.half_load_seconds = None
        self.seed = "1"
        self.pack = "100"
        self.brokers = None
        self.ledger_accounts = None
        self.result_events = None
        self.quick = False
        self.keep = False
        self.wal_as_found = False
        self.http = False  # and http_*: checked by payqbench.http
        self.http_seconds = self.http_conns = self.http_replicas = self.http_sizes = None


def _uint(text):
    return re.fullmatch(r"[1-9][0-9]*", text or "") is not None


def parse(argv):
    """Options from argv; raises UsageError or Help."""
    o = Options()
    args = list(argv)
    while args:
        opt = args.pop(0)
        val = None
        if opt.startswith("--") and "=" in opt:
            opt, val = opt.split("=", 1)
        elif opt in VALUED:
            if not args:
                raise UsageError("%s needs a value" % opt)
            val = args.pop(0)
        if opt in ("-h", "--help"):
            raise Help()
        if opt in FLAGS:
            setattr(o, FLAGS[opt], True)
        elif opt in VALUED:
            setattr(o, VALUED[opt], val)
        else:
            raise UsageError("unknown option %s (see --help)" % opt)
    return _defaults(o)


def _defaults(o):
    if o.quick:
        o.transfers = o.transfers or "20000"
        o.accounts = o.accounts or "2000"
        o.workers = o.workers or "1,2"
        o.skews = o.skews or "uniform"
        o.textbook_transfers = o.textbook_transfers or "2000"
        o.half_load_seconds = o.half_load_seconds or "6"
    o.transfers = o.transfers or "200000"
    o.accounts = o.accounts or "10000"
    o.workers = o.workers or "1,2"
    o.skews = o.skews or "uniform"
    o.half_load_seconds = o.half_load_seconds or "15"
    o.recon_sizes = o.recon_sizes or ""
    for name, text in (("--transfers", o.transfers), ("--accounts", o.accounts),
                       ("--textbook-transfers", o.textbook_transfers),
                       ("--half-load-seconds", o.half_load_seconds), ("--seed", o.seed),
                       ("--pack", o.pack)):
        if text is not None and not _uint(text):
            raise UsageError("%s takes a positive integer, not '%s'" % (name, text))
    o.transfers, o.accounts = int(o.transfers), int(o.accounts)
    o.half_load_seconds, o.seed, o.pack = int(o.half_load_seconds), int(o.seed), int(o.pack)
    if o.textbook_transfers is None:
        o.textbook_transfers = min(o.transfers, 20000)
    o.textbook_transfers = int(o.textbook_transfers)
    o.worker_list = _split(o.workers)
    o.skew_list = _split(o.skews)
    o.recon_list = _split(o.recon_sizes)
    if not o.worker_list or not o.skew_list:
        raise UsageError("empty --workers or --skew")
    for w in o.worker_list:
        if not _uint(w) or int(w) > 64:
            raise UsageError("bad worker count '%s' in --workers" % w)
    for s in o.skew_list:
        if s not in SKEWS:
            raise UsageError("--skew takes uniform, zipf or hot, not '%s'" % s)
    if o.pack > 1000:
        raise UsageError("--pack takes 1..1000")
    for r in o.recon_list:
        if not _uint(r):
            raise UsageError("bad size '%s' in --recon-sizes" % r)
    o.worker_list = [int(w) for w in o.worker_list]
    o.recon_list = [int(r) for r in o.recon_list]
    o.textbook_transfers = min(o.textbook_transfers, o.transfers)
    o.broker_list = []
    if o.brokers is not None:
        o.broker_list = _split(o.brokers)
        if not o.broker_list:
            raise UsageError("empty --brokers")
        for n in o.broker_list:
            if n not in ("1", "3"):
                raise UsageError("--brokers takes 1 and/or 3 (scripts/stack up --brokers), "
                                 "not '%s'" % n)
        o.broker_list = [int(n) for n in o.broker_list]
    try:
        o.ledger_list = ledger.parse_list(o.ledger_accounts)
    except ValueError as e:
        raise UsageError(str(e))
    o.events_list = []
    if o.result_events is not None:
        try:
            o.events_list = events.parse(o.result_events)
        except ValueError as e:
            raise UsageError(str(e))
    return o


def _split(text):
    """"a,b" -> ['a', 'b'] as bash's `IFS=, read -a` does ('' -> [])."""
    if text == "":
        return []
    parts = text.split(",")
    if parts and parts[-1] == "":
        parts.pop()
    return parts

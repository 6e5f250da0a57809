"""ledger: --ledger-accounts LIST, the size of the ledger as a run
dimension. A value V is the number of accounts present in payq.accounts
beyond those the run itself opens and touches: before the runs of that
value, filler accounts (ids bench-ledger:N, EUR, unrestricted, zero
balances) are added until the table holds at least V accounts. They are
inserted in one INSERT ... SELECT generate_series as payq_owner (not through
the pipeline: a million accounts take seconds, not minutes), then VACUUM
(ANALYZE): a ledger that has held a million accounts for a while has them
vacuumed, and a run should not pay for autovacuum's first pass over them.

The runs' own accounts are never deleted, so the values run in ascending
order, outermost after --brokers (a shape change purges the ledger, and each
shape starts again from its smallest value); filler left above V by an
earlier invocation is removed (filler only: no transfer names it). Accounts
that earlier runs opened count towards V; the count actually present is
recorded with each run as ledger_accounts_present. What the
dimension proves: a batch's cost does not depend on the ledger's size
(issue 16: the drain rate at 1,000,000 within 10% of the rate at 10,000);
drain_ratio_vs_smallest_ledger in results.json is that comparison, and
backend_cpu_ratio_vs_smallest_ledger and db_blocks_ratio_vs_smallest_ledger
the same for the work behind it (dbwork), which noise moves far less.

With two sizes or more, the smallest size's runs are made again after the
largest's (A-B-A; the filler above it is removed first, and the runs are
tagged 'again', key ledger_pass 2): a run made later on the same stack
drained 10-14% slower whatever its size, so a larger size run only after
the smallest would carry that order effect as if it were the size's. The
ratios' base is the mean of the smallest size's runs before and after.
"""

import re

from . import matrix

LEDGER = matrix.Dimension("ledger_accounts", lambda v: "la%d" % v)
# 1: the runs in ascending order of size; 2: the smallest size's again, after
# the largest's. Only with two sizes or more.
PASS = matrix.Dimension("ledger_pass", lambda v: "" if v == 1 else "again")
FILLER = "bench-ledger:"
MAX = 100000000


def parse_list(text):
    """'0,1000000' -> [0, 1000000], ascending, each once. None -> []
    (no such dimension). Raises ValueError with the usage message."""
    if text is None:
        return []
    parts = [p for p in text.split(",") if p != ""]
    if not parts:
        raise ValueError("empty --ledger-accounts")
    out = []
    for p in parts:
        if not re.fullmatch(r"0|[1-9][0-9]*", p) or int(p) > MAX:
            raise ValueError("--ledger-accounts takes account counts 0..%d, not '%s'" % (MAX, p))
        out.append(int(p))
    return sorted(set(out))


def id_suffix(value, pass_=1):
    """What a run's id prefix gets for its ledger size: the runs of every
    size share one stack (no purge between them), so their ids, accounts
    and batch ids must differ. Zero-padded to one width (MAX has 9 digits),
    so that every size's rows and index entries are as long as the others':
    '-la0' against '-la1000000' made each transfer 18 bytes longer (its id
    and two account ids) in the larger ledger's runs only. The second pass
    of a size ('-lb...') is as long as the first."""
    return "-l%s%09d" % ("a" if pass_ == 1 else "b", value)


def add_dimension(dims, ledger_list):
    """dims (matrix order, brokers first when present, workers last) with
    LEDGER inserted right after brokers: every run of one ledger size
    before the next, larger one."""
    if not ledger_list:
        return dims
    at = 1 if dims and dims[0][0] is matrix.BROKERS else 0
    return dims[:at] + [(LEDGER, ledger_list)] + dims[at:]


def with_pass(spec, pass_):
    """A copy of spec with ledger_pass = pass_ (tagged after its size)."""
    dims = list(spec.dims)
    at = dims.index(LEDGER) + 1 if LEDGER in dims else 0
    dims = dims[:at] + [PASS] + [d for d in dims[at:] if d is not PASS]
    return matrix.RunSpec(spec.kind, dict(spec.values, ledger_pass=pass_), spec.n, dims)


def with_return(specs, ledger_list):
    """matrix.plan's specs with, at the end of each stack shape's (brokers),
    the smallest size's payq runs again (ledger_pass 2; the textbook
    baseline is not made again). Every run then has a ledger_pass. With
    fewer than two sizes, specs as they are."""
    if len(ledger_list) < 2:
        return specs
    out = []

    def close(group):
        out.extend(group)
        out.extend(with_pass(s, 2) for s in group
                   if s.kind == "payq" and s.values[LEDGER.name] == ledger_list[0])

    group = []
    for s in specs:
        if group and s.values.get("brokers") != group[0].values.get("brokers"):
            close(group)
            group = []
        group.append(with_pass(s, 1))
    close(group)
    return out


def group_dims(names, ledger_list):
    """The names that group runs (all but workers), with ledger_pass when
    there is a second pass: its runs get their own scaling base."""
    return tuple(names) + ((PASS.name,) if len(ledger_list) >= 2 else ())


def share_textbook(textbook, names):
    """The second pass has no textbook run of its own: its groups use the
    first pass's. textbook: group tuple (values of names) -> figures."""
    if PASS.name not in names:
        return textbook
    at = names.index(PASS.name)
    for key, fig in list(textbook.items()):
        if key[at] == 1:
            textbook.setdefault(key[:at] + (2,) + key[at + 1:], fig)
    return textbook


def fill_sql(have_filler, need):
    """The statement adding `need` filler accounts after the `have_filler`
    ones already there (ids continue the sequence)."""
    return ("SET ROLE payq_owner; "
            "INSERT INTO payq.accounts (id, currency) "
            "SELECT '%s' || g, 'EUR' FROM generate_series(%d, %d) g; "
            "RESET ROLE"
            % (FILLER, have_filler + 1, have_filler + need))


def shrink_sql(have_filler, drop):
    """The statement removing the last `drop` of the `have_filler` filler
    accounts. Only filler rows: no transfer ever names them (their balances
    are zero), so the ledger's books are unchanged."""
    return ("SET ROLE payq_owner; "
            "DELETE FROM payq.accounts WHERE id LIKE '%s%%' "
            "AND substr(id, %d)::bigint > %d; "
            "RESET ROLE"
            % (FILLER, len(FILLER) + 1, have_filler - drop))


# After filling or shrinking; on its own: VACUUM cannot run in the implicit
# transaction of a multi-statement psql -c.
VACUUM_SQL = "VACUUM (ANALYZE) payq.accounts"


def ensure(stack, target, ui):
    """As close to `target` accounts in payq.accounts as filler allows,
    before the run opens its own: filler is added up to target, and filler
    left by an earlier invocation above target is removed (other accounts
    are never touched). Returns the count present, or None (and an error)
    on failure."""
    try:
        present = int(stack.q1("SELECT count(*) FROM payq.accounts"))
        have = int(stack.q1("SELECT count(*) FROM payq.accounts WHERE id LIKE '%s%%'"
                            % FILLER))
        if present < target:
            need = target - present
            ui.log("  ledger: %d accounts present, adding %d filler accounts (%s*)"
                   % (present, need, FILLER))
            stack.q(fill_sql(have, need), timeout=1800)
            stack.q(VACUUM_SQL, timeout=1800)
            present = int(stack.q1("SELECT count(*) FROM payq.accounts"))
        elif present > target and have > 0:
            drop = min(have, present - target)
            ui.log("  ledger: %d accounts present, removing %d filler accounts (%s*)"
                   % (present, drop, FILLER))
            stack.q(shrink_sql(have, drop), timeout=1800)
            stack.q(VACUUM_SQL, timeout=1800)
            present = int(stack.q1("SELECT count(*) FROM payq.accounts"))
    except Exception as e:  # QueryError, or a count that is not a number
        ui.err("ledger: could not bring payq.accounts to %d accounts: %s" % (target, e))
        return None
    return present


# (key of the ratio, key of the figure): the rate, and the two counts of a
# batch's work (dbwork) that the shared machine's noise does not move.
RATIOS = (("drain_ratio_vs_smallest_ledger", "drain_tps"),
          ("backend_cpu_ratio_vs_smallest_ledger", "backend_cpu_us_per_transfer"),
          ("db_blocks_ratio_vs_smallest_ledger", "db_blocks_per_transfer"))


def add_comparisons(results):
    """Each run object with a ledger_accounts key gets the RATIOS: its figure
    over the mean of the runs agreeing on every other dimension (skew,
    workers, brokers, result_events) at the smallest ledger_accounts (both
    passes, when the smallest size ran again after the largest: that mean
    is what every size is compared with), and ledger_ratio_base_runs, how
    many runs that mean has. Objects without the key are left as they
    are."""
    def others(r):
        return (r.get("skew"), r.get("workers"), r.get("brokers"), r.get("result_events"))

    for r in results:
        if "ledger_accounts" not in r:
            continue
        same = [x for x in results if "ledger_accounts" in x and others(x) == others(r)]
        least = min(x["ledger_accounts"] for x in same)
        base = [x for x in same if x["ledger_accounts"] == least]
        r["ledger_ratio_base_runs"] = len(base)
        for ratio, key in RATIOS:
            vals = [x[key] for x in base if x.get(key) is not None]
            mean = sum(vals) / len(vals) if vals else None
            a = r.get(key)
            r[ratio] = round(a / mean, 2) if a is not None and mean else None
    return results

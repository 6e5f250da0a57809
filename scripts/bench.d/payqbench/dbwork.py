"""dbwork: what the workers' statements cost the primary in a run's
full-load phase, as counts per transfer rather than a rate.

- pg_stat_statements (scripts/stack preloads it and creates its view in
  the payq database on every `up`) over the role payq_worker:
  shared buffers touched (hit + read), WAL bytes and records, statement time.
- /proc: the CPU (user + system) of the workers' own backends
  (application_name payq-worker), read just before the workers stop: since
  they connected, which is the run (an idle backend costs nothing).

Why counts: the drain rate of one run on this shared 2-core machine moves by
tens of percent with whatever else runs. Buffers and WAL per transfer do not
move with it, and backend CPU per transfer moves far less than a rate. So
they show whether a batch's work grows with the ledger (--ledger-accounts)
where a 10% target on a rate cannot be resolved.

Reading before and after, not resetting: the bench must not wipe statistics
an operator is looking at. A delta that goes down (the leader changed, or
someone reset the view) gives None, never a wrong figure. Each run also
keeps the per-statement view (runs/<tag>/db-statements.txt): where a
difference between two runs comes from."""

import os

from .stack import QueryError

# One row per statement: queryid, calls, buffers, WAL bytes, WAL records,
# milliseconds, the text (whitespace folded, cut: it names no values, the
# worker binds them as parameters).
STATEMENTS_SQL = ("SELECT queryid, calls, shared_blks_hit + shared_blks_read, wal_bytes, "
                  "wal_records, total_exec_time, "
                  "left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
                  "FROM pg_stat_statements WHERE userid = 'payq_worker'::regrole")
BACKENDS_SQL = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'payq-worker' "
                "AND backend_type = 'client backend'")
KEYS = ("db_blocks_per_transfer", "db_wal_bytes_per_transfer", "db_wal_records_per_transfer",
        "db_exec_us_per_transfer", "backend_cpu_us_per_transfer")
TICKS = os.sysconf("SC_CLK_TCK")


def statements(stack):
    """{queryid: (calls, blocks, wal bytes, wal records, ms, text)} of
    payq_worker's statements so far, or None when pg_stat_statements cannot
    be read."""
    try:
        rows = stack.q(STATEMENTS_SQL, timeout=30)
        return {r[0]: tuple(float(v) for v in r[1:6]) + ("|".join(r[6:]),) for r in rows}
    except (QueryError, ValueError):
        return None


def delta(before, after):
    """{queryid: the same tuple, counted between two statements() readings},
    statements that ran in between only; None when a reading is missing or
    any count went down (a reset, or a new leader)."""
    if before is None or after is None:
        return None
    out = {}
    for qid, a in after.items():
        b = before.get(qid, (0.0,) * 5)
        d = tuple(x - y for x, y in zip(a[:5], b[:5]))
        if any(v < 0 for v in d):
            return None
        if d[0] > 0:
            out[qid] = d + (a[5],)
    return out


def format_statements(d, n):
    """Per statement, most time first: calls, then per transfer the
    buffers, WAL bytes and statement time (runs/<tag>/db-statements.txt)."""
    lines = ["calls  blocks/transfer  wal_bytes/transfer  us/transfer  statement"]
    for v in sorted(d.values(), key=lambda v: -v[4]):
        lines.append("%5d  %15.2f  %18.1f  %11.2f  %s" % (v[0], v[1] / n, v[2] / n,
                                                          v[4] * 1000 / n, v[5]))
    return "\n".join(lines) + "\n"


def cpu_ticks(stat_line):
    """utime + stime of one /proc/<pid>/stat line (fields 14 and 15; the
    command in parentheses may hold spaces, so count from its end)."""
    rest = stat_line[stat_line.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def backend_cpu_s(stack):
    """CPU seconds of the workers' backends so far, or None when they cannot
    be read (a remote primary, no backend)."""
    try:
        pids = [r[0] for r in stack.q(BACKENDS_SQL, timeout=30)]
    except QueryError:
        return None
    ticks = 0
    for pid in pids:
        try:
            # A pid of another host's PostgreSQL may name some local process.
            with open("/proc/%s/comm" % pid) as f:
                if f.read().strip() != "postgres":
                    return None
            with open("/proc/%s/stat" % pid) as f:
                ticks += cpu_ticks(f.read())
        except (OSError, ValueError, IndexError):
            return None
    return ticks / TICKS if pids else None


def per_transfer(d, cpu_s, n):
    """The KEYS as a dict from a delta() and backend_cpu_s(): None where
    one is missing."""
    out = dict.fromkeys(KEYS)
    if d is not None and n:
        blocks, wal, recs, ms = (sum(v[i] for v in d.values()) for i in (1, 2, 3, 4))
        out.update(db_blocks_per_transfer=round(blocks / n, 2),
                   db_wal_bytes_per_transfer=round(wal / n, 1),
                   db_wal_records_per_transfer=round(recs / n, 2),
                   db_exec_us_per_transfer=round(ms * 1000 / n, 2))
    if cpu_s is not None and n:
        out["backend_cpu_us_per_transfer"] = round(cpu_s * 1e6 / n, 2)
    return out

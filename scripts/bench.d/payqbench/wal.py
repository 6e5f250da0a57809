"""wal: every PostgreSQL node's WAL in its steady state before a run.

A commit waits for its WAL to be flushed on the primary and on the
synchronous standby. When either has to create the next 16 MB segment file
(written full of zeros, then fsynced), every commit behind it waits: here
100-600 ms, once per 16 MB of WAL (every ~3 s at half load). A cluster that
has run for a while does not create segments: at each checkpoint (on a
standby, each restartpoint) it renames segments it no longer needs to the
names of segments to come (recycling), and writes into those. A young one
does, until more than wal_keep_size (2 GB here) of WAL lies behind it, so a
bench on a fresh stack measured segment creation, not payq. Two steps:

- age(): once per stack, switch segments (pg_switch_wal) until every node
  holds wal_keep_size plus POOL segments, so that there is WAL to recycle;
- settle(): before each measured phase, CHECKPOINT on the leader, wait
  until every replica has replayed it, then CHECKPOINT on each replica (a
  restartpoint): each recycles what the last phase wrote into segments
  ahead, and the phase starts with clean buffers, like every other phase.

pool() reports, per node, the segments ready ahead of the one being
written: what a phase can write before any node creates a file again.
"""

import json
import re
import subprocess
import time
import urllib.request

POOL = 32  # segments (512 MB) beyond wal_keep_size: what a checkpoint can recycle
SEGMENT_NAME = re.compile(r"^[0-9A-F]{24}$")


class WalError(Exception):
    pass


def segment_of(lsn, seg_bytes):
    """The log/segment part of a WAL file name (the last 16 of its 24 hex
    digits, timeline left out) holding LSN 'X/Y'."""
    hi, lo = lsn.split("/")
    segno = ((int(hi, 16) << 32) | int(lo, 16)) // seg_bytes
    per_log = 0x100000000 // seg_bytes
    return "%08X%08X" % (segno // per_log, segno % per_log)


def count_segments(names, current):
    """(at or behind, ahead of) `current` (as segment_of gives it) among WAL
    file names; other files (.history, .partial, ...) are not counted."""
    behind = ahead = 0
    for n in names:
        if not SEGMENT_NAME.match(n):
            continue
        if n[8:] > current:
            ahead += 1
        else:
            behind += 1
    return behind, ahead


def switches_needed(totals, keep_segments, pool=POOL):
    """Segment switches that leave the node with the fewest segment files
    holding keep_segments + pool of them; none while every node holds at
    least half the pool beyond keep_segments. A checkpoint renames the
    segments it recycles and removes only those beyond what it expects the
    next phase to need, so an aged node stays near that count."""
    if not totals or min(totals) >= keep_segments + pool // 2:
        return 0
    return keep_segments + pool - min(totals)


class Cluster:
    """The stack's PostgreSQL nodes as Patroni lists them now (a failover
    moves the leader), each reached as superuser through the passfile of
    PAYQ_PG_PRIMARY with its own port."""

    def __init__(self, env):
        self.env = env

    def members(self):
        url = self.env["PAYQ_PATRONI_URL"] + "/cluster"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                members = json.load(r)["members"]
        except (OSError, ValueError, KeyError) as e:
            raise WalError("Patroni %s: %s" % (url, e))
        return [(m["name"], m["role"], m["port"]) for m in members
                if m.get("state") in ("running", "streaming")]

    def q(self, port, sql, timeout=300):
        conn = re.sub(r"port=\d+", "port=%d" % port, self.env["PAYQ_PG_PRIMARY"])
        try:
            out = subprocess.run(["psql", conn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                 capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WalError("port %d: no answer in %d s to %s" % (port, timeout, sql))
        if out.returncode != 0:
            raise WalError("port %d: %s" % (port, out.stderr.strip()))
        return out.stdout.strip()

    def leader(self, members):
        for name, role, port in members:
            if role == "leader":
                return name, port
        raise WalError("Patroni names no leader")

    def counts(self, members):
        """{node: (segments at or behind the one it writes, segments ahead)}."""
        seg_bytes = None
        out = {}
        for name, role, port in members:
            if seg_bytes is None:
                seg_bytes = int(self.q(port, "SELECT setting FROM pg_settings "
                                             "WHERE name = 'wal_segment_size'"))
            lsn = self.q(port, "SELECT CASE WHEN pg_is_in_recovery() "
                               "THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
                               "ELSE pg_current_wal_lsn() END")
            names = self.q(port, "SELECT name FROM pg_ls_waldir()").split()
            out[name] = count_segments(names, segment_of(lsn, seg_bytes))
        return out


def pool(env):
    """{node: segments recycled ahead of the one it writes}."""
    c = Cluster(env)
    return {n: ahead for n, (_, ahead) in c.counts(c.members()).items()}


def age(env, ui):
    """Switches segments until every node holds wal_keep_size + POOL
    segments; the number of switches (0 on a cluster that has them)."""
    c = Cluster(env)
    members = c.members()
    _, lport = c.leader(members)
    keep_mb = int(c.q(lport, "SELECT setting FROM pg_settings WHERE name = 'wal_keep_size'"))
    seg_mb = int(c.q(lport, "SELECT setting FROM pg_settings "
                            "WHERE name = 'wal_segment_size'")) // (1024 * 1024)
    need = switches_needed([b + a for b, a in c.counts(members).values()], keep_mb // seg_mb)
    if need:
        ui.log("  wal: %d segment switches, so that every node holds wal_keep_size (%d MB) "
               "+ %d segments to recycle" % (need, keep_mb, POOL))
        # A switch needs WAL since the last one: a non-transactional message.
        c.q(lport, "DO $$ BEGIN FOR i IN 1..%d LOOP "
                   "PERFORM pg_logical_emit_message(false, 'payq-bench', 'wal'); "
                   "PERFORM pg_switch_wal(); END LOOP; END $$" % need, timeout=1800)
    return need


def settle(env, timeout=120):
    """CHECKPOINT on the leader, then on every replica once it has replayed
    it. Returns the seconds taken."""
    t0 = time.monotonic()
    c = Cluster(env)
    members = c.members()
    _, lport = c.leader(members)
    c.q(lport, "CHECKPOINT")
    lsn = c.q(lport, "SELECT pg_current_wal_lsn()")
    replicas = [(n, p) for n, role, p in members if role != "leader"]
    for name, port in replicas:
        while c.q(port, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn) != "t":
            if time.monotonic() - t0 > timeout:
                raise WalError("replica %s has not replayed %s after %d s" % (name, lsn, timeout))
            time.sleep(0.2)
        c.q(port, "CHECKPOINT")
    return round(time.monotonic() - t0, 1)

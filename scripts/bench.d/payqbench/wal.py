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

- switch segments (pg_switch_wal) until every node holds wal_keep_size
  plus POOL segments, so that there is WAL to recycle (on a young cluster;
  an aged one already holds them);
- CHECKPOINT on the leader, wait until every replica has replayed it, then
  CHECKPOINT on each replica (a restartpoint): each recycles what the last
  phase wrote into segments ahead, and the phase starts with clean
  buffers, like every other phase.

steady() does both before each measured phase and reports, per node, the
segments ready ahead of the one being written: what a phase can write
before any node creates a file again.
"""

import json
import re
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


def members(env):
    """(name, role, port) of the PostgreSQL nodes Patroni lists as running
    now (a failover moves the leader)."""
    url = env["PAYQ_PATRONI_URL"] + "/cluster"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            nodes = json.load(r)["members"]
    except (OSError, ValueError, KeyError) as e:
        raise WalError("Patroni %s: %s" % (url, e))
    out = [(m["name"], m["role"], m["port"]) for m in nodes
           if m.get("state") in ("running", "streaming")]
    if not any(role == "leader" for _, role, _ in out):
        raise WalError("Patroni names no leader")
    return out


def counts(stack, nodes, seg_bytes):
    """{node: (segments at or behind the one it writes, segments ahead)}."""
    out = {}
    for name, _, port in nodes:
        lsn = stack.q("SELECT CASE WHEN pg_is_in_recovery() "
                      "THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) "
                      "ELSE pg_current_wal_lsn() END", port=port)[0][0]
        names = [r[0] for r in stack.q("SELECT name FROM pg_ls_waldir()", port=port)]
        out[name] = count_segments(names, segment_of(lsn, seg_bytes))
    return out


def checkpoint_everywhere(stack, nodes, timeout=120):
    """CHECKPOINT on the leader, then on every replica once it has replayed
    it (a restartpoint)."""
    t0 = time.monotonic()
    lport = next(port for _, role, port in nodes if role == "leader")
    stack.q("CHECKPOINT", port=lport)
    lsn = stack.q("SELECT pg_current_wal_lsn()", port=lport)[0][0]
    for name, role, port in nodes:
        if role == "leader":
            continue
        sql = "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn
        while stack.q(sql, port=port)[0][0] != "t":
            if time.monotonic() - t0 > timeout:
                raise WalError("replica %s has not replayed %s after %d s" % (name, lsn, timeout))
            time.sleep(0.2)
        stack.q("CHECKPOINT", port=port)


def steady(stack, ui):
    """Switches segments on a young cluster (switches_needed), then
    checkpoint_everywhere(): the seconds taken and {node:
    segments ready ahead of the one it writes}. Raises WalError (a node or
    Patroni does not answer as expected) or QueryError."""
    t0 = time.monotonic()
    nodes = members(stack.env)
    lport = next(port for _, role, port in nodes if role == "leader")
    keep_mb, seg_bytes = (int(v) for v in stack.q(  # units: MB, bytes
        "SELECT (SELECT setting FROM pg_settings WHERE name = 'wal_keep_size'), "
        "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')", port=lport)[0])
    before = counts(stack, nodes, seg_bytes)
    need = switches_needed([b + a for b, a in before.values()],
                           keep_mb * 1024 * 1024 // seg_bytes)
    if need:
        ui.log("  wal: %d segment switches, so that every node holds wal_keep_size (%d MB) "
               "+ %d segments to recycle" % (need, keep_mb, POOL))
        # A switch needs WAL since the last one: a non-transactional message.
        stack.q("DO $$ BEGIN FOR i IN 1..%d LOOP "
                "PERFORM pg_logical_emit_message(false, 'payq-bench', 'wal'); "
                "PERFORM pg_switch_wal(); END LOOP; END $$" % need, timeout=1800, port=lport)
    checkpoint_everywhere(stack, nodes)
    ahead = {n: a for n, (_, a) in counts(stack, nodes, seg_bytes).items()}
    return round(time.monotonic() - t0, 1), ahead

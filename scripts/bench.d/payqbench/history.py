"""history: docs/bench-history.md, every published full run's key figures.

A run is published by committing its results.json as docs/bench-results.json,
so that file's git history is the list of published runs. This module reads
each version (and the working tree's, when it is not yet committed) and
writes the table from the figures themselves, so none is retyped.

Run from the repository after copying a new results.json into docs/:
    PYTHONPATH=scripts/bench.d python3 -m payqbench.history > docs/bench-history.md
bench_py_unit checks that the committed file is what this writes."""

import json
import subprocess
import sys

RESULTS = "docs/bench-results.json"

HEADER = """# Published benchmark runs

Every full run whose `results.json` was published as `docs/bench-results.json`, newest
first, read from that file's git history (so each figure is the bench's own, not retyped).
Written by `PYTHONPATH=scripts/bench.d python3 -m payqbench.history > docs/bench-history.md`;
`bench_py_unit` fails when this file is not what that writes. The command was the same for
all of them, `scripts/bench --workers 1,2,4 --skew uniform,zipf,hot --textbook-transfers
5000 --recon-sizes 100000,1000000`, on this project's shared 2-vCPU, 23.5 GiB machines; the
bench itself grew between them (the WAL aged and checkpointed before each phase from
2026-12-02, the failover figure from 2026-12-01, the backlog drain from 2026-12-05, the
outcome events consumed from 2026-12-06). The README's "Results" has the newest in full and
"What bounds each figure" what moved the figures between runs.

How to read it:
- **The machine moves the figures as much as the code does.** The last two columns are
  baselines measured in the same run (RabbitMQ's one-transfer-per-message ceiling and a
  textbook one-transaction-per-transfer worker): compare payq against them, not one row's
  absolute rate against another's.
- **HEAD when run** is what `git rev-parse` said as the bench started. Where the publishing
  commit's message names another commit, the run measured that one (committed just after).
- **Cells under 100 ms** counts the worker/skew runs whose half-load p99 after the first
  3 s met issue 16's target.
- The uniform one-worker columns are the ones issue 16 sets targets for (40,000/s drained,
  25,000/s end to end); "backlog drain" exists from 2026-12-05.
"""

COLUMNS = ["run on", "CPU", "HEAD when run", "load at start", "uniform/1w end to end, /s",
           "drained while publishing, /s", "backlog drain, /s", "half-load p99 after 3 s, ms",
           "cells under 100 ms", "1M-transfer day reconciled, s",
           "broker ceiling, 1 per message, /s", "textbook worker, /s"]


def _count(v):
    return "-" if v is None else "{:,}".format(int(round(v)))


def _fixed(v):
    return "-" if v is None else "%.1f" % v


def row(results):
    """The table's cells for one results.json (a list of run objects), or
    None when it has no one-worker uniform payq run."""
    runs = [r for r in results if r.get("kind", "payq") == "payq"]
    u = next((r for r in runs if r.get("skew") == "uniform" and r.get("workers") == 1), None)
    if u is None:
        return None
    m = u.get("machine") or {}
    p = u.get("params") or {}
    steady = [r.get("half_load_steady_latency_p99_ms") for r in runs]
    met = ("-" if any(s is None for s in steady)
           else "%d of %d" % (sum(1 for s in steady if s < 100), len(steady)))
    recon = next((x for x in u.get("recon_scaling") or [] if x.get("size") == 1000000), None)
    cpu = (m.get("cpu") or "-").replace("(R)", "").replace("(TM)", "").replace(" Processor", "")
    load = (m.get("loadavg_at_start") or "-").split(" ")[0]
    return [(m.get("date") or "-")[:10], " ".join(cpu.split()), p.get("git_revision", "-"), load,
            _count(u.get("e2e_tps")), _count(u.get("drain_tps")),
            _count(u.get("backlog_drain_tps")),
            _fixed(u.get("half_load_steady_latency_p99_ms")), met,
            _fixed(recon.get("seconds") if recon else None),
            _count(u.get("broker_ceiling_one_per_message_tps")), _count(u.get("textbook_tps"))]


def render(versions):
    """The whole document from results.json versions, newest first."""
    lines = [HEADER, "| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for results in versions:
        cells = row(results)
        if cells:
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _git(src, *args):
    return subprocess.run(["git", "-C", src] + list(args), check=True, capture_output=True,
                          text=True).stdout


def published(src, worktree=True):
    """Every committed version of docs/bench-results.json, newest first,
    preceded by the working tree's when it differs from HEAD's."""
    texts = []
    for commit in _git(src, "log", "--format=%H", "--", RESULTS).split():
        try:
            texts.append(_git(src, "show", "%s:%s" % (commit, RESULTS)))
        except subprocess.CalledProcessError:  # the commit deleted it
            continue
    if worktree:
        with open("%s/%s" % (src, RESULTS)) as f:
            current = f.read()
        if not texts or current != texts[0]:
            texts.insert(0, current)
    return [json.loads(t) for t in texts]


def main():
    sys.stdout.write(render(published(".")))


if __name__ == "__main__":
    main()

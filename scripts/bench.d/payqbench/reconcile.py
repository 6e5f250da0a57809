"""reconcile: payq-reconciler on one business date, timed, and the figures
of the reconciler-scaling runs (pure parts unit tested)."""

import json
import os

from . import procs
from .latency import round_half_away


def run_reconciler(bench, date, audit_from, run_dir):
    """payq-reconciler --date DATE as JSON into run_dir/reconcile.json,
    under /usr/bin/time -f '%e %M' (run_dir/reconcile.time); returns (exit,
    seconds, peak_rss_kb, result)."""
    tfile = os.path.join(run_dir, "reconcile.time")
    p = bench.procs.start([os.path.join(bench.bin, "payq-reconciler"), "--date", date,
                           "--format", "json", "--audit-from", audit_from, "--out",
                           os.path.join(run_dir, "reconcile.json"), "--config", bench.cfg],
                          stderr=open(os.path.join(run_dir, "reconcile.log"), "w"),
                          time_file=tfile, time_fmt="%e %M")
    rc = p.wait()
    bench.procs.forget(p)
    f = procs.time_figures(tfile) or [None, None]
    secs = f[0]
    rss = int(f[1]) if f[1] is not None else None
    return rc, secs, rss, result_of(os.path.join(run_dir, "reconcile.json"))


def result_of(path):
    """The report's .result ("unknown" when absent, "none" when unreadable)."""
    try:
        with open(path) as f:
            r = json.load(f).get("result")
    except (OSError, ValueError, AttributeError):
        return "none"
    return "unknown" if r is None or r is False else r


def breaks_text(report, prefix):
    """What payq-reconciler reported, for the log: the non-zero counts, up
    to 8 examples, and a note when none names an id of this run."""
    counts = (report.get("counts") or {}).get("breaks") or {}
    lines = ["  breaks: " + " ".join("%s=%s" % (k, v) for k, v in counts.items() if v > 0)]
    breaks = report.get("breaks") or []
    for b in breaks[:8]:
        lines.append("    %s %s %s: %s" % (b.get("category"), b.get("id") or "",
                                           b.get("batch_id") or "", b.get("detail") or ""))
    if breaks and all(not (b.get("id") or "").startswith(prefix)
                      and not (b.get("batch_id") or "").startswith(prefix) for b in breaks):
        lines.append("  (no example names an id of this run: another test sharing the stack "
                     "may have caused them)")
    return "\n".join(lines) + "\n"


def print_breaks(ui, run_dir, prefix):
    try:
        with open(os.path.join(run_dir, "reconcile.json")) as f:
            ui.raw(breaks_text(json.load(f), prefix))
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(run_dir, "reconcile.log")) as f:
            lines = [ln for ln in f if '"level":"info"' not in ln]
        ui.raw("".join(lines[-5:]))
    except OSError:
        pass


def scaling_entry(size, day, date, secs, rss, rc, result):
    """One reconciler-scaling object of results.json."""
    return {"size": size, "transfers_on_date": day, "business_date": date, "seconds": secs,
            "peak_rss_kb": rss, "exit": rc, "result": result,
            "seconds_per_million": None if secs is None
            else round_half_away(secs * 1000000 / day * 100) / 100}


def with_marginals(entries):
    """entries sorted by transfers_on_date, each with the seconds per extra
    million transfers since the previous size (the constant part, reading
    the stream and connecting, cancels out) and whether a day of at least a
    million transfers met the target: under 30 s and 512 MiB."""
    a = sorted(entries, key=lambda e: e["transfers_on_date"])
    out = []
    for i, e in enumerate(a):
        e = dict(e)
        if i == 0 or e["seconds"] is None or a[i - 1]["seconds"] is None:
            e["marginal_seconds_per_million"] = None
        else:
            d = (e["seconds"] - a[i - 1]["seconds"]) / \
                (e["transfers_on_date"] - a[i - 1]["transfers_on_date"])
            e["marginal_seconds_per_million"] = round_half_away(d * 1000000 * 100) / 100
        if e["size"] >= 1000000 and e["seconds"] is not None and e["peak_rss_kb"] is not None:
            e["target_1m_under_30s_512mib"] = e["seconds"] < 30 and e["peak_rss_kb"] < 524288
        else:
            e["target_1m_under_30s_512mib"] = None
        out.append(e)
    return out

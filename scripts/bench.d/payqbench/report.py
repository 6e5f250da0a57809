"""report: results.json, table.txt and the chart, from the runs' figures.
build_results and table are pure (unit tested): the keys, their order and
the table rows are those of the bash bench."""

import json
import os
import subprocess

from . import latency, ledger
from .latency import round_half_away

TEXTBOOK_KEYS = ["transfers", "e2e_tps", "e2e_seconds", "publish_tps", "drain_tps",
                 "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "worker_cpu_s_per_1k",
                 "worker_peak_rss_kb", "worker_mean_batch_size",
                 "transfers_taken_by_other_consumers", "business_date"]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return round_half_away(a / b * 1000) / 1000


def build_results(runs, textbook, ceiling, ceiling1, machine, params, loadavg_end,
                  recon=None, failover=None, dims=("skew",)):
    """The results.json array: one object per payq run with its baselines
    and comparisons. runs: the payq runs' figures in plan order; textbook:
    group -> the textbook run's figures; ceiling / ceiling1: {e2e_tps,
    e2e_seconds, publish_tps} or None; recon: the reconciler-scaling list
    (None: not asked); failover: the failover figure (None: not measured).
    dims: the names of the dimensions that group runs (all but workers)."""
    grp = lambda r: tuple(r.get(d) for d in dims)  # noqa: E731
    c = ceiling or {}
    c1 = ceiling1 or {}
    out = []
    for r in runs:
        same = [x for x in runs if grp(x) == grp(r)]
        base = min(same, key=lambda x: x["workers"])
        uni = next((x for x in runs if x["skew"] == "uniform" and x["workers"] == r["workers"]
                    and all(x.get(d) == r.get(d) for d in dims if d != "skew")), None)
        tb = textbook.get(grp(r))
        tb_tps = tb["e2e_tps"] if tb else None
        o = dict(r)
        o.update({
            "pack": params["worker_config"]["pack_max"],
            "broker_ceiling_tps": c.get("e2e_tps"),
            "broker_ceiling_one_per_message_tps": c1.get("e2e_tps"),
            "ratio_vs_broker_one_per_message": ratio(r["e2e_tps"], c1.get("e2e_tps")),
            "textbook_tps": tb_tps,
            "ratio_vs_broker": ratio(r["e2e_tps"], c.get("e2e_tps")),
            "ratio_vs_textbook": ratio(r["e2e_tps"], tb_tps),
            "scaling_vs_min_workers": ratio(r["e2e_tps"], base["e2e_tps"]),
            "scaling_base_workers": base["workers"],
            "ratio_vs_uniform": None if uni is None else ratio(r["e2e_tps"], uni["e2e_tps"]),
            "clean": (c.get("e2e_tps") is not None
                      and _or1(r.get("transfers_taken_by_other_consumers")) == 0
                      and _or1((tb or {}).get("transfers_taken_by_other_consumers")) == 0),
            "baselines": {
                "broker_ceiling": {"transfers": params["transfers"], "e2e_tps": c.get("e2e_tps"),
                                   "e2e_seconds": c.get("e2e_seconds"),
                                   "publish_tps": c.get("publish_tps"),
                                   "pack_max": params["worker_config"]["pack_max"],
                                   "consumer": "payq-ackdrain --batch 1000 --prefetch 2000"},
                "broker_ceiling_one_per_message": {
                    "transfers": params["transfers"], "e2e_tps": c1.get("e2e_tps"),
                    "e2e_seconds": c1.get("e2e_seconds"), "publish_tps": c1.get("publish_tps"),
                    "pack_max": 1},
                "textbook": None if tb is None else dict(
                    [(k, tb.get(k)) for k in TEXTBOOK_KEYS]
                    + [("config", "worker.batch_max 1, worker.prefetch 1")]),
            },
            "machine": dict(machine, loadavg_at_end=loadavg_end),
            "params": params,
        })
        if recon is not None:
            o["recon_scaling"] = recon
        if failover is not None:
            o["failover"] = failover
        out.append(o)
    return out


def _or1(v):
    """jq's `// 1`: null and false count as 1."""
    return 1 if v is None or v is False else v


def fmt(v):
    """A cell of the table, as the bash bench's jq `f` wrote it: '-' for
    null, integers plain, |x| < 1 to 4 decimals, others to 2."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if float(v).is_integer():
            return str(int(v))
        if -1 < v < 1:
            return jq_num(round_half_away(v * 10000) / 10000)
        return jq_num(round_half_away(v * 100) / 100)
    return str(v)


def jq_num(v):
    """A number as jq 1.6 prints it (shortest round trip, integral values
    without a decimal point)."""
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


# (row label, key path) of the table, in order.
ROWS = [
    ("transfers", "transfers"), ("clean (no other consumer)", "clean"),
    ("business_date", "business_date"), ("e2e_tps", "e2e_tps"), ("publish_tps", "publish_tps"),
    ("drain_tps", "drain_tps"), ("drain_whole_batches_tps", "drain_whole_batches_tps"),
    ("backlog_drain_tps", "backlog_drain_tps"),
    ("backlog_drain_whole_batches", "backlog_drain_whole_batches_tps"),
    ("backlog_backend_cpu_us", "backlog_backend_cpu_us_per_transfer"),
    ("pack (transfers per message)", "pack"),
    ("broker_ceiling_tps", "broker_ceiling_tps"),
    ("broker_ceiling_1_per_msg_tps", "broker_ceiling_one_per_message_tps"),
    ("textbook_tps", "textbook_tps"), ("ratio_vs_broker", "ratio_vs_broker"),
    ("ratio_vs_broker_1_per_msg", "ratio_vs_broker_one_per_message"),
    ("ratio_vs_textbook", "ratio_vs_textbook"),
    ("scaling_vs_min_workers", "scaling_vs_min_workers"), ("ratio_vs_uniform", "ratio_vs_uniform"),
    ("latency_p50_ms", "latency_p50_ms"), ("latency_p99_ms", "latency_p99_ms"),
    ("latency_max_ms", "latency_max_ms"), ("half_load_tps", "half_load_tps"),
    ("half_load_latency_p50_ms", "half_load_latency_p50_ms"),
    ("half_load_latency_p99_ms", "half_load_latency_p99_ms"),
    ("half_load_latency_max_ms", "half_load_latency_max_ms"),
    ("half_load_after_3s_p50_ms", "half_load_steady_latency_p50_ms"),
    ("half_load_after_3s_p99_ms", "half_load_steady_latency_p99_ms"),
    ("half_load_after_3s_max_ms", "half_load_steady_latency_max_ms"),
    ("rejected_pct", "rejected_pct"), ("worker_cpu_s_per_1k", "worker_cpu_s_per_1k"),
    ("worker_peak_rss_kb", "worker_peak_rss_kb"),
    ("worker_mean_batch_size", "worker_mean_batch_size"),
    ("worker_mean_commit_ms", "worker_mean_commit_ms"),
    ("backend_cpu_us_per_transfer", "backend_cpu_us_per_transfer"),
    ("db_statement_us_per_transfer", "db_exec_us_per_transfer"),
    ("db_blocks_per_transfer", "db_blocks_per_transfer"),
    ("db_wal_bytes_per_transfer", "db_wal_bytes_per_transfer"),
    ("taken_by_other_consumers", "transfers_taken_by_other_consumers"),
    ("reconcile_seconds", "reconcile_seconds"), ("reconcile_peak_rss_kb", "reconcile_peak_rss_kb"),
    ("reconcile_exit", "reconcile_exit"),
    ("textbook_latency_p50_ms", "baselines.textbook.latency_p50_ms"),
    ("textbook_latency_p99_ms", "baselines.textbook.latency_p99_ms"),
    ("textbook_taken_by_others", "baselines.textbook.transfers_taken_by_other_consumers"),
]


# Rows shown only when some run has the key: the --ledger-accounts ratios.
OPTIONAL_ROWS = [(ratio, ratio) for ratio, _ in ledger.RATIOS]


def _get(obj, path):
    for k in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def columns(rows):
    """`column -t -s TAB`: each column padded to its widest cell plus two
    spaces, the last one not padded."""
    if not rows:
        return ""
    ncol = max(len(r) for r in rows)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(ncol)]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"


def table(results, recon=None, extra_dims=()):
    """table.txt: one column per run, one row per figure; then the
    reconciler-scaling table when sizes were asked for. extra_dims: keys
    named in each column's head as name=value (brokers=3)."""
    head = ["figure"] + ["%s/%sw%s" % (r["skew"], r["workers"],
                                        "".join("/%s=%s" % (k, r.get(k)) for k in extra_dims))
                         for r in results]
    rows = [head]
    optional = [(label, path) for label, path in OPTIONAL_ROWS
                if any(_get(r, path) is not None for r in results)]
    for label, path in ROWS + optional:
        cells = []
        for r in results:
            v = _get(r, path)
            cells.append(("" if v is None else str(v)) if path == "business_date" else fmt(v))
        rows.append([label] + cells)
    text = columns(rows)
    if recon:
        rrows = [["recon_size", "transfers_on_date", "seconds", "peak_rss_kb",
                  "seconds_per_million", "marginal_s_per_million", "exit"]]
        for e in recon:
            rrows.append(["-" if e.get(k) is None else jq_text(e.get(k))
                          for k in ("size", "transfers_on_date", "seconds", "peak_rss_kb",
                                    "seconds_per_million", "marginal_seconds_per_million",
                                    "exit")])
        text += "\n" + columns(rrows)
    return text


def jq_text(v):
    """jq's tostring."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return jq_num(v)
    return str(v)


def jq_normal(obj):
    """obj with integral floats as ints, as jq writes numbers."""
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    if isinstance(obj, dict):
        return {k: jq_normal(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jq_normal(v) for v in obj]
    return obj


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(jq_normal(obj), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def chart(out, here, results, skews, workers, textbook_tps, ceiling, ceiling1, machine):
    """bench.png through scripts/bench.d/chart.gp: throughput against
    workers per skew, and the latency CDFs (full and half load). True when
    gnuplot succeeded."""
    d = os.path.join(out, "chart-data")
    os.makedirs(d, exist_ok=True)
    sk, tbs, runs = [], [], []
    for s in skews:
        pts = ["%s %s\n" % (r["workers"], jq_text(r["e2e_tps"])) for r in results
               if r["skew"] == s and r["e2e_tps"] is not None]
        with open(os.path.join(d, "tput-%s.dat" % s), "w") as f:
            f.write("".join(pts))
        if not pts:
            continue
        sk.append(s)
        tbs.append(jq_text(textbook_tps.get(s) or 0))
        for w in workers:
            for name, suffix in (("latency.txt", ""), ("latency-half.txt", "-half")):
                src = os.path.join(out, "runs", "%s-%dw" % (s, w), name)
                try:
                    with open(src) as f:
                        vals = [float(x) for x in f.read().split()]
                except OSError:
                    continue
                if not vals:
                    continue
                tag = "%s-%dw%s" % (s, w, suffix)
                with open(os.path.join(d, "cdf-%s.dat" % tag), "w") as f:
                    f.write(latency.format_cdf(latency.cdf_points(vals)))
                runs.append(tag)
    subtitle = "%s cores, %s GiB, %s, %s" % (machine["cores"], jq_text(machine["memory_gib"]),
                                             machine["kernel"], machine["date"])
    expr = ("outfile='%s'; dir='%s'; skews='%s'; textbooks='%s'; runs='%s'; ceiling=%s; "
            "ceiling1=%s; maxw=%d; subtitle='%s'"
            % (os.path.join(out, "bench.png"), d, " ".join(sk) + " ", " ".join(tbs) + " ",
               " ".join(runs) + " ", jq_text(ceiling or 0), jq_text(ceiling1 or 0), max(workers),
               subtitle))
    with open(os.path.join(out, "gnuplot.log"), "w") as log:
        rc = subprocess.call(["gnuplot", "-e", expr, os.path.join(here, "chart.gp")],
                             stdout=log, stderr=subprocess.STDOUT)
    return rc == 0

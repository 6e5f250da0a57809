"""events: the --result-events dimension of scripts/bench (issue 13: what
the outcome events to payq.results cost). `--result-events on,off` runs
every combination twice, with worker.result_events true (the default) and
false; each run object gets the key `result_events` ("on"/"off"), the tag
ev-on/ev-off, and the table gets one more section: per pair of runs that
agree on everything else, the end-to-end figures side by side. Without the
option nothing changes (no key, the configs as they were).

Kept apart from cli/main/runs so that other options touch those files only
where they are wired in."""

import os

from . import matrix
from .stack import set_yaml_key

OPTION = "--result-events"
VALUES = ("on", "off")
DIMENSION = matrix.Dimension("result_events", lambda v: "ev-" + v)

USAGE = """\
  --result-events LIST on and/or off (e.g. on,off): run every combination
                       with worker.result_events true and/or false; the
                       table then shows, per pair, the end-to-end figure
                       with outcome events beside the one without (their
                       cost). Without it: events on (the default), no key
"""


def parse(text):
    """["on", "off"] from "on,off" (each once, in the order given); raises
    ValueError with the usage message."""
    values = [v for v in (text or "").split(",") if v != ""]
    if not values:
        raise ValueError("empty %s" % OPTION)
    for v in values:
        if v not in VALUES:
            raise ValueError("%s takes on and/or off, not '%s'" % (OPTION, v))
    return matrix.dedup(values)


def id_part(spec):
    """What a run's id prefix adds for the dimension ('' without it): runs
    that differ only in result_events share a stack and must not share
    account and transfer ids."""
    value = spec.values.get(DIMENSION.name)
    return "" if value is None else "-ev" + value


def config_text(text, value):
    """A worker config's text with worker.result_events set for value."""
    out, n = set_yaml_key(text, "result_events", "true" if value == "on" else "false")
    if n != 1:
        raise ValueError("could not set worker.result_events in the config")
    return out


def config_for(cfg, spec):
    """The config file a run uses: cfg itself without the dimension, else
    its variant for the run's value, written next to it on first use."""
    value = spec.values.get(DIMENSION.name)
    if value is None:
        return cfg
    root, ext = os.path.splitext(cfg)
    path = "%s-events-%s%s" % (root, value, ext)
    if not os.path.exists(path):
        with open(cfg) as f:
            text = config_text(f.read(), value)
        with open(path, "w") as f:
            f.write(text)
    return path


def pairs(results):
    """[(on, off)] run objects that agree on every key but result_events
    and the measured figures (skew, workers, brokers...), in plan order."""
    def key(r):
        return tuple((k, r.get(k)) for k in ("skew", "workers", "brokers"))
    on = [r for r in results if r.get(DIMENSION.name) == "on"]
    off = {key(r): r for r in results if r.get(DIMENSION.name) == "off"}
    return [(r, off[key(r)]) for r in on if key(r) in off]


def cost_rows(results, ratio):
    """The table's section: one row per pair, e2e with and without events
    and their ratio (ratio: report.ratio). [] when nothing pairs."""
    ps = pairs(results)
    if not ps:
        return []
    rows = [["result_events_cost", "e2e_tps_events_on", "e2e_tps_events_off", "on_vs_off",
             "p99_ms_on", "p99_ms_off"]]
    for on, off in ps:
        name = "%s/%sw%s" % (on["skew"], on["workers"],
                             "" if on.get("brokers") is None else "/brokers=%s" % on["brokers"])
        rows.append([name] + ["-" if v is None else str(v) for v in (
            on.get("e2e_tps"), off.get("e2e_tps"), ratio(on.get("e2e_tps"), off.get("e2e_tps")),
            on.get("latency_p99_ms"), off.get("latency_p99_ms"))])
    return rows


def charted(results, values):
    """The runs the chart draws: with the dimension, those of its first
    value only (the chart has one line per skew)."""
    if not values:
        return results
    return [r for r in results if r.get(DIMENSION.name) == values[0]]

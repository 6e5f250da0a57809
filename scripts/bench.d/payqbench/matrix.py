"""matrix: which runs the bench makes, as data. A dimension is a
Dimension (its name: the key in RunSpec.values and results.json; how its
value shows in a run's tag); the plan is the product of the dimensions asked
for, in the order given, with `workers` innermost and one textbook baseline
before each group of worker counts.

Adding a dimension (e.g. --ledger-accounts, --brokers, --http) is one
Dimension(...) here, one entry in main.dimensions() from its option in cli,
and its effect where a run is set up (RunSpec.values carries the value).
The reporting picks it up: ratios compare runs that agree on every other
dimension, and its value becomes a key of each run object (runs.Runner.payq
adds every value but skew and workers), so an invocation without the new
option keeps exactly the keys it had.
"""

import itertools


class Dimension:
    """name: the key in results.json (and RunSpec.values); tag(value): the
    fragment of the run's tag (runs/<tag>/), '' to leave it out."""

    def __init__(self, name, tag):
        self.name = name
        self.tag = tag


SKEW = Dimension("skew", lambda v: v)
WORKERS = Dimension("workers", lambda v: "%dw" % v)
# RabbitMQ nodes of the stack (scripts/stack up --brokers N). Outermost in
# the plan: the stack changes shape (a purge) once per count, not per run.
BROKERS = Dimension("brokers", lambda v: "%db" % v)


def dedup(values):
    """Each value once, in the order given."""
    seen, out = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


class RunSpec:
    """One run to make. kind: payq (measured publish, half load, reconcile)
    or textbook (batch_max 1, one worker, measured publish only). values:
    dimension name -> value. n: transfers. dims: the plan's dimensions, in
    tag order."""

    def __init__(self, kind, values, n, dims=(SKEW, WORKERS)):
        self.kind = kind
        self.values = dict(values)
        self.n = n
        self.dims = list(dims)

    @property
    def skew(self):
        return self.values["skew"]

    @property
    def workers(self):
        return self.values["workers"]

    def group(self):
        """The values of every dimension but workers: runs of one group
        share a textbook baseline and a scaling base."""
        return tuple((k, v) for k, v in self.values.items() if k != "workers")

    def tag(self):
        parts = [d.tag(self.values[d.name]) for d in self.dims
                 if d.name in self.values and d is not WORKERS]
        parts = [p for p in parts if p]
        if self.kind == "textbook":
            parts.append("textbook")
        else:
            parts.append(WORKERS.tag(self.workers))
        return "-".join(parts)

    def __repr__(self):
        return "RunSpec(%s, %s, %d)" % (self.kind, self.values, self.n)


def plan(dims, n, n_textbook):
    """dims: ordered list of (Dimension, [values]) with WORKERS last.
    Returns the RunSpecs in the order they run: for each combination of the
    outer dimensions, its textbook baseline (1 worker, n_textbook transfers)
    then one payq run per worker count."""
    outer = [(d, dedup(v)) for d, v in dims if d is not WORKERS]
    workers = dedup(dict((d.name, v) for d, v in dims)["workers"])
    order = [d for d, _ in outer] + [WORKERS]
    specs = []
    for combo in itertools.product(*[v for _, v in outer]):
        values = dict(zip([d.name for d, _ in outer], combo))
        specs.append(RunSpec("textbook", dict(values, workers=1), n_textbook, order))
        for w in workers:
            specs.append(RunSpec("payq", dict(values, workers=w), n, order))
    return specs

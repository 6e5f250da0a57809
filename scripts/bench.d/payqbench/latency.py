"""latency: the figures of a set of ledger rows (pure functions, unit
tested): percentiles as PostgreSQL's percentile_cont computes them, rounding
as numeric round() does, and the subsampled CDF the chart draws."""

import decimal
import math


def round_half_away(x, digits=0):
    """x rounded to digits decimals, halves away from zero (PostgreSQL's
    round(numeric), not Python's banker's rounding). None stays None."""
    if x is None:
        return None
    q = decimal.Decimal(1).scaleb(-digits)
    r = decimal.Decimal(repr(x)).quantize(q, rounding=decimal.ROUND_HALF_UP)
    return int(r) if digits == 0 else float(r)


def percentile_cont(sorted_values, fraction):
    """The value at fraction (0..1) of sorted_values, interpolated linearly
    between the two nearest ranks (percentile_cont); None when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = fraction * (n - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Row:
    """One ledger row: published and committed (epoch ms, float), latency
    (ms), status, reason, whether published_at is a whole second, and the
    transaction that wrote it (xmin, or None when unknown)."""

    __slots__ = ("published_ms", "committed_ms", "lat_ms", "status", "reason", "whole_second",
                 "txid")

    def __init__(self, published_ms, committed_ms, lat_ms, status, reason, whole_second,
                 txid=None):
        self.published_ms = published_ms
        self.committed_ms = committed_ms
        self.lat_ms = lat_ms
        self.status = status
        self.reason = reason
        self.whole_second = whole_second
        self.txid = txid


def whole_batches(rows):
    """(rows, ms): the rows written between the first batch's start and the
    last batch's start, and that time. A batch is a transaction (txid); its
    start is its first row's committed_at (clock_timestamp() as the ledger
    INSERT runs). From the first to the last committed_at, a drain's window
    leaves out about one batch's time while counting every batch's rows, so
    the bigger the batches the higher that rate reads (with 200,000
    transfers in batches of 8,000, about 4%); between two batch starts, a
    worker's window holds whole batch cycles only. None when the rows have no
    txid or come from fewer than two transactions."""
    start = {}
    for r in rows:
        if r.txid is None:
            return None
        if r.txid not in start or r.committed_ms < start[r.txid]:
            start[r.txid] = r.committed_ms
    if len(start) < 2:
        return None
    t0, t1 = min(start.values()), max(start.values())
    if t1 <= t0:
        return None
    return sum(1 for r in rows if t0 <= r.committed_ms < t1), t1 - t0


def measure(rows):
    """The figures of rows, as the bash bench's SQL computed them: count,
    first/last committed and published (epoch ms, rounded), p50, p99 and max
    latency (ms, one decimal), rejections by reason, and whether every
    published_at is a whole second (None when there are no rows)."""
    lats = sorted(r.lat_ms for r in rows)
    ms = lambda v: round_half_away(v) if v is not None else None  # noqa: E731
    return {
        "count": len(rows),
        "first_committed_ms": ms(min((r.committed_ms for r in rows), default=None)),
        "last_committed_ms": ms(max((r.committed_ms for r in rows), default=None)),
        "first_published_ms": ms(min((r.published_ms for r in rows), default=None)),
        "last_published_ms": ms(max((r.published_ms for r in rows), default=None)),
        "p50": round_half_away(percentile_cont(lats, 0.5), 1),
        "p99": round_half_away(percentile_cont(lats, 0.99), 1),
        "max": round_half_away(lats[-1], 1) if lats else None,
        "rejected": sum(1 for r in rows if r.status == "rejected"),
        "insufficient": sum(1 for r in rows if r.reason == "insufficient_funds"),
        "not_found": sum(1 for r in rows if r.reason == "account_not_found"),
        "seconds_only": all(r.whole_second for r in rows) if rows else None,
        "whole_batches": whole_batches(rows),
    }


def windows(rows, width_ms=500):
    """The latency of rows over time: one (offset ms from the first
    published_at, count, p50, p99, max) per width_ms of publishing that
    holds rows, in order, each as measure() computes them. A whole run's
    p99 cannot tell a steady tail from one stall; these can (a stall is one
    or two windows far above the rest)."""
    if not rows:
        return []
    t0 = min(r.published_ms for r in rows)
    by = {}
    for r in rows:
        by.setdefault(int((r.published_ms - t0) // width_ms), []).append(r)
    out = []
    for k in sorted(by):
        m = measure(by[k])
        out.append((k * width_ms, m["count"], m["p50"], m["p99"], m["max"]))
    return out


def format_windows(wins):
    """windows() as the text file a run keeps: a header, then one
    tab-separated line per window."""
    lines = ["offset_ms\tcount\tp50_ms\tp99_ms\tmax_ms\n"]
    lines += ["%d\t%d\t%s\t%s\t%s\n" % (o, n, fmt_ms(a), fmt_ms(b), fmt_ms(c))
              for o, n, a, b, c in wins]
    return "".join(lines)


def cdf_points(sorted_ms, target=1000):
    """About target (ms, fraction) points of the CDF of sorted_ms: every
    s-th value (s = n // target, at least 1) plus the first and the last,
    with a 0.1 ms floor for the log axis."""
    n = len(sorted_ms)
    step = max(1, n // target)
    pts = []
    for i, v in enumerate(sorted_ms, start=1):
        if i % step == 0 or i == n or i == 1:
            pts.append((v if v >= 0.1 else 0.1, i / n))
    return pts


def format_cdf(points):
    """The chart's data lines: "ms fraction" with awk's %s of the value and
    %.5f of the fraction."""
    return "".join("%s %.5f\n" % (fmt_ms(v), f) for v, f in points)


def fmt_ms(v):
    """A latency as psql printed it from round(..., 1): one decimal."""
    return "%.1f" % v

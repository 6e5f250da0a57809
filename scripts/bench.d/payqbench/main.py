"""main: the order of a bench invocation. Options, lock, build, stack,
configs, the broker ceilings, the matrix of runs, the reconciler scaling,
the failover figure; then results.json, the chart and the table. Exit 0
when every step succeeded, 1 when one failed, 2 on a usage error."""

import datetime
import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from . import cli, events, failover, http, ledger, matrix, reconcile, report, upstream
from .procs import Ports, Procs
from .runs import Runner
from .stack import QueryError, Stack, write_configs, yaml_value
from .ui import Fatal, Ui

TOOLS = ["psql", "gnuplot", "awk"]
BINARIES = ["payq-worker", "payq-producer", "payq-reconciler", "payq-rawpub", "payq-ackdrain"]


class Bench:
    """What every run shares: options, paths, processes, the stack, the
    configs, the account counts, the id stamp and the business dates."""

    def __init__(self, opts, root, ui):
        self.opts = opts
        self.root = root
        self.here = os.path.join(root, "scripts", "bench.d")
        b = os.environ.get("PAYQ_BUILD_DIR") or os.path.join(root, "build")
        self.bin = b if os.path.isabs(b) else os.path.join(root, b)
        self.ui = ui
        self.procs = Procs()
        self.ports = Ports()
        self.stack = Stack(root, ui)
        self.n = opts.transfers
        self.A = opts.accounts
        self.R = max(opts.accounts // 200, 5)  # restricted accounts
        self.keep = opts.keep
        self.stamp = datetime.datetime.utcnow().strftime("%m%d%H%M%S") + \
            "%04x" % random.randrange(65536)
        self.dates = []
        self.brokers_at_start = 1
        self.date_i = 0
        self.out = self.cfg = self.cfg_pack1 = self.cfg_textbook = None

    def next_date(self):
        d = self.dates[self.date_i]
        self.date_i += 1
        return d


def main(argv):
    try:
        opts = cli.parse(argv)
    except cli.Help:
        sys.stdout.write(cli.USAGE)
        return 0
    except cli.UsageError as e:
        sys.stderr.write("bench: %s\n" % e)
        return 2
    os.environ["LC_ALL"] = "C"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    ui = Ui()
    bench = Bench(opts, root, ui)

    def interrupted(signum, frame):
        ui.log("interrupted")
        raise SystemExit(130)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    try:
        return run(bench)
    except Fatal as e:
        ui.log("ERROR: %s" % e)
        return 1
    except QueryError as e:
        ui.log("ERROR: a query failed: %s" % e)
        return 1
    finally:
        ui.clear_line()
        bench.procs.stop_all()


def prepare(b):
    """Lock, output directory, binaries, stack, configs, dates."""
    ui, opts = b.ui, b.opts
    for t in TOOLS:
        if shutil.which(t) is None:
            raise Fatal("%s is missing (scripts/setup installs it)" % t)
    out = opts.out or os.path.join(b.root, "bench-out",
                                   datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ"))
    try:
        os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    except OSError:
        raise Fatal("cannot create %s" % out)
    b.out = os.path.abspath(out)
    # One bench at a time on this machine (2 cores: a second one would only
    # measure the first). Python opens files close-on-exec: the broker and
    # database that scripts/stack starts never inherit the lock.
    lock_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "payq-bench.lock")
    b.lock = open(lock_path, "w")
    try:
        fcntl.flock(b.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        ui.log("another scripts/bench holds %s: waiting (up to 1 h)" % lock_path)
        if not _flock_wait(b.lock, 3600):
            raise Fatal("still locked after 1 h")
    ui.log("output in %s" % b.out)
    _build(b)
    ui.log("stack: scripts/stack up")
    if not b.stack.up(os.path.join(b.out, "stack-up.log")):
        raise Fatal("scripts/stack up failed (see %s/stack-up.log)" % b.out)
    b.brokers_at_start = b.stack.brokers()
    try:
        b.cfg, b.cfg_pack1, b.cfg_textbook, b.cfg_text = write_configs(b.root, b.out, opts.pack)
    except (OSError, ValueError) as e:
        raise Fatal("cannot write the configs: %s" % e)


def _flock_wait(f, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            time.sleep(1)
    return False


def _build(b):
    if all(os.access(os.path.join(b.bin, x), os.X_OK) for x in BINARIES):
        return
    if not os.environ.get("PAYQ_BUILD_DIR"):
        b.ui.log("binaries missing in %s: scripts/setup" % b.bin)
        if subprocess.call([os.path.join(b.root, "scripts/setup")], stdout=sys.stderr) != 0:
            raise Fatal("scripts/setup failed")
    else:
        b.ui.log("binaries missing in %s: building" % b.bin)
        if subprocess.call(["cmake", "-S", b.root, "-B", b.bin,
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], stdout=subprocess.DEVNULL) \
                or subprocess.call(["cmake", "--build", b.bin, "-j%d" % os.cpu_count()],
                                   stdout=sys.stderr):
            raise Fatal("build failed")


def machine_info():
    def first(path, prefix):
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line
        return ""
    u = os.uname()
    mem = int(first("/proc/meminfo", "MemTotal").split()[1])
    cpu = first("/proc/cpuinfo", "model name").split(": ", 1)[-1].strip()
    return {"cores": len(os.sched_getaffinity(0)), "memory_kb": mem,
            "memory_gib": round(mem / 1048576 * 10) / 10,
            "kernel": "%s %s" % (u.sysname, u.release), "cpu": cpu, "host": u.nodename,
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "loadavg_at_start": loadavg()}


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def git_rev(root):
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def params_of(b):
    o = b.opts
    p = {"transfers": b.n, "accounts": b.A, "restricted_accounts": b.R,
            "textbook_transfers": o.textbook_transfers, "half_load_seconds": o.half_load_seconds,
            "seed": o.seed, "quick": o.quick, "wal_steady": not o.wal_as_found,
            "workers": [int(w) for w in o.workers.split(",") if w != ""],
            "skews": [s for s in o.skews.split(",")],
            "recon_sizes": [int(r) for r in o.recon_list],
            "worker_config": {"batch_max": yaml_value(b.cfg_text, "batch_max"),
                              "prefetch": yaml_value(b.cfg_text, "prefetch"),
                              "batch_wait_ms": yaml_value(b.cfg_text, "batch_wait_ms"),
                              "backlog_batch_max": yaml_value(b.cfg_text, "backlog_batch_max"),
                              "backlog_after_ms": yaml_value(b.cfg_text, "backlog_after_ms"),
                              "pack_max": o.pack},
            "textbook_config": {"batch_max": 1, "prefetch": 1, "pack_max": 1},
            "id_stamp": b.stamp, "git_revision": git_rev(b.root), "build_dir": b.bin}
    if o.broker_list:
        p["brokers"] = matrix.dedup(o.broker_list)
    if o.ledger_list:
        p["ledger_accounts"] = o.ledger_list
    if o.events_list:
        p["result_events"] = o.events_list
    return p


def dimensions(opts):
    """The matrix asked for: (Dimension, values), workers last. A new
    dimension is one more entry here (see matrix)."""
    dims = [(matrix.SKEW, opts.skew_list), (matrix.WORKERS, opts.worker_list)]
    if opts.events_list:
        dims.insert(0, (events.DIMENSION, opts.events_list))
    if opts.broker_list:
        dims.insert(0, (matrix.BROKERS, opts.broker_list))
    return ledger.add_dimension(dims, opts.ledger_list)


def shapes(specs, broker_list):
    """The plan cut by stack shape: [(brokers, specs)] in the order asked
    for; [(None, specs)] (the stack as it is) without --brokers."""
    if not broker_list:
        return [(None, specs)]
    return [(n, [s for s in specs if s.values["brokers"] == n])
            for n in matrix.dedup(broker_list)]


def reshape(b, brokers, restoring=False):
    """The stack with `brokers` RabbitMQ nodes (None: as it is). False (and
    an error) when it could not be brought to that shape."""
    if brokers is None:
        return True
    if b.stack.brokers() != brokers:
        b.ui.log("stack: %d RabbitMQ node(s) -> %d: scripts/stack purge, then up --brokers %d "
                 "(the ledger starts empty)" % (b.stack.brokers(), brokers, brokers))
    if not b.stack.reshape(brokers, os.path.join(b.out, "stack-up.log")):
        b.ui.err("could not bring the stack to %d RabbitMQ node(s) (see %s/stack-up.log)"
                 % (brokers, b.out))
        return False
    nodes = b.stack.env.get("PAYQ_AMQP_NODES", "?")
    if restoring:
        b.ui.log("stack: %d RabbitMQ node(s) (%s) again, as found: only the reconciler scaling "
                 "and the failover figure (when asked for) run on it" % (brokers, nodes))
    else:
        b.ui.log("== shape: %d RabbitMQ node(s) (%s): the runs tagged %db-* and their broker "
                 "ceilings run on it" % (brokers, nodes, brokers))
    return True


def restore(b):
    """The stack back to the RabbitMQ node count it had when the bench
    started (at least one node)."""
    n = max(b.brokers_at_start, 1)
    if b.stack.brokers() == n:
        return True
    b.ui.log("stack: back to %d RabbitMQ node(s), as found" % n)
    return reshape(b, n, restoring=True)


def run_group(b, runner, specs, group_dims):
    """The broker ceilings, then the runs of one stack shape. Returns (payq
    runs, textbook runs by group, ceiling, ceiling1, aborted)."""
    # A failed ceiling leaves nothing behind in the queue: the payq runs go
    # on (and the exit status says it failed).
    ceiling1 = None
    brokers = specs[0].values.get("brokers") if specs else None
    pfx = "" if brokers is None else "%db-" % brokers  # a tag as the runs' (3b-uniform-1w)
    with upstream.EventsConsumer(b):
        if b.opts.pack > 1:
            # One message per transfer: the broker's own limit, which packs lift.
            ceiling1 = runner.ceiling(b.cfg_pack1, pfx + "ceiling-pack1", 1)
        ceiling = runner.ceiling(b.cfg, pfx + "ceiling", b.opts.pack)
        payq_runs, textbook = [], {}
        for spec in specs:
            fig = runner.payq(spec)
            if fig is None:
                return payq_runs, textbook, ceiling, ceiling1, True
            if spec.kind == "textbook":
                textbook[tuple(spec.values[d] for d in group_dims)] = fig
            else:
                payq_runs.append(fig)
    return payq_runs, ledger.share_textbook(textbook, group_dims), ceiling, ceiling1, False


def run(b):
    ui, opts = b.ui, b.opts
    prepare(b)
    if opts.http:
        return http.run(b, Runner(b))
    machine = machine_info()
    params = params_of(b)
    dims = dimensions(opts)
    specs = ledger.with_return(matrix.plan(dims, b.n, opts.textbook_transfers), opts.ledger_list)
    # + 1: the failover figure's day.
    ndates = 4 * max(len(opts.broker_list), 1) + len(specs) + len(opts.recon_list) + 1
    try:
        b.dates = b.stack.unused_dates(ndates)
    except QueryError as e:
        raise Fatal("could not list business dates: %s" % e)
    if len(b.dates) != ndates:
        raise Fatal("could not find %d unused business dates in 2090-2099" % ndates)

    msgs, cons = b.stack.queue_state()
    ui.log("payq.transfers: %s messages, %s consumers; load average %s" % (msgs, cons, loadavg()))
    if cons != "0":
        ui.warn("payq.transfers has %s other consumer(s): someone else is using the shared "
                "stack, figures will be noisy" % cons)
    skews = matrix.dedup(opts.skew_list)
    workers = matrix.dedup(opts.worker_list)
    ui.log("plan: %d transfers, %d accounts (+%d restricted), skews %s, workers %s, textbook on "
           "%d%s" % (b.n, b.A, b.R, " ".join(skews), " ".join(map(str, workers)),
                     opts.textbook_transfers,
                     ", reconcile sizes " + " ".join(map(str, opts.recon_list))
                     if opts.recon_sizes else ""))

    if len(opts.ledger_list) >= 2:
        ui.log("ledger: the runs at %d accounts are made again after those at %d (A-B-A); each "
               "size is compared with the mean of both" % (opts.ledger_list[0],
                                                           opts.ledger_list[-1]))
    runner = Runner(b)
    group_dims = ledger.group_dims((d.name for d, _ in dims if d is not matrix.WORKERS),
                                   opts.ledger_list)
    results, aborted = [], False
    shape_results = []  # per shape: (payq runs, textbook runs, ceiling, ceiling1)
    try:
        for brokers, group in shapes(specs, opts.broker_list):
            if not reshape(b, brokers):
                aborted = True
                break
            g_runs, g_textbook, ceiling, ceiling1, aborted = run_group(b, runner, group,
                                                                       group_dims)
            shape_results.append((g_runs, g_textbook, ceiling, ceiling1))
            if aborted:
                break
        recon = []
        if opts.broker_list and not restore(b):
            aborted = True
        for size in ([] if aborted else opts.recon_list):
            e = runner.recon_size(size)
            if e is None:
                aborted = True
                break
            recon.append(e)
    finally:
        if opts.broker_list and b.stack.brokers() != b.brokers_at_start:
            restore(b)
    if aborted:
        ui.err("a run failed: the remaining runs were skipped")
    recon = reconcile.with_marginals(recon)
    fo = failover.measure(b.here, b.out, b.stack.env, b.next_date(), ui)

    for g_runs, g_textbook, ceiling, ceiling1 in shape_results:
        results += report.build_results(g_runs, g_textbook, ceiling, ceiling1, machine, params,
                                        loadavg(), recon=recon if opts.recon_list else None,
                                        failover=fo, dims=group_dims)
    results = ledger.add_comparisons(results)
    rpath = os.path.join(b.out, "results.json")
    try:
        report.write_json(rpath, results)
    except OSError:
        ui.err("could not write results.json")
    if not results:
        ui.err("results.json holds no run")

    # The chart draws one shape: the first asked for, at the smallest ledger
    # size (the whole table has every shape and size).
    first = shape_results[0] if shape_results else ([], {}, None, None)
    si = group_dims.index("skew")
    tb_tps = {k[si]: v["e2e_tps"] for k, v in first[1].items()}
    charted = [r for r in events.charted(results, opts.events_list)
               if (not opts.broker_list or r.get("brokers") == opts.broker_list[0])
               and (not opts.ledger_list or r.get("ledger_accounts") == opts.ledger_list[0])
               and r.get("ledger_pass", 1) == 1]
    ok = report.chart(b.out, b.here, report.jq_normal(charted), skews, workers, tb_tps,
                      (first[2] or {}).get("e2e_tps"), (first[3] or {}).get("e2e_tps"), machine)
    png = os.path.join(b.out, "bench.png")
    if not ok:
        ui.err("gnuplot failed (see %s/gnuplot.log)" % b.out)
    if os.path.exists(png):
        with open(png, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                ui.err("bench.png is not a PNG")
    else:
        ui.err("no bench.png")

    if results:
        text = report.table(report.jq_normal(results),
                            report.jq_normal(recon) if opts.recon_list else None,
                            extra_dims=(("brokers",) if opts.broker_list else ())
                            + (("ledger_accounts",) if opts.ledger_list else ())
                            + (("ledger_pass",) if len(opts.ledger_list) >= 2 else ())
                            + (("result_events",) if opts.events_list else ()))
        cost = events.cost_rows(results, report.ratio)
        if cost:
            text += "\n" + report.columns(cost)
        with open(os.path.join(b.out, "table.txt"), "w") as f:
            f.write(text)
        ui.clear_line()
        sys.stdout.write("\n" + text + "\n")
    for w in ui.warnings:
        sys.stdout.write("warning: %s\n" % w)
    for e in ui.errors:
        sys.stdout.write("error: %s\n" % e)
    sys.stdout.flush()
    ui.log("done in %s s: %s, %s, %s%s" % (ui.elapsed(), rpath, png,
                                           os.path.join(b.out, "table.txt"),
                                           " (FAILED)" if ui.failed else ""))
    return 1 if ui.failed else 0

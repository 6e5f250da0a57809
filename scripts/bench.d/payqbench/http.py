"""http: `scripts/bench --http`, the HTTP API through HAProxy (issue 12).

For each replica count (scripts/stack up --intake R: R `payq-producer
serve` replicas behind HAProxy on the API port), each request size (1 or
100 transfers a request) and each connection count, wrk drives POST
/v1/transfers through HAProxy for --http-seconds with unique ids
(scripts/bench.d/http.lua), while one payq-worker books what arrives.
Reported per cell: requests/s, transfers/s, latency p50/p99/max, non-202
answers and socket errors, the CPU seconds each process used during the
cell (the replicas, HAProxy, the broker, PostgreSQL, the worker, wrk), and
each replica's peak RSS during the cell (what sizes its memory request).
Beside them the raw-broker ceilings of the same invocation: payq-producer
-> payq-ackdrain with one message per transfer and in packs of 100.

Options (cli.py only collects them; they are checked here):
  --http                run this instead of the end-to-end matrix
  --http-seconds S      per cell (default 20)
  --http-conns LIST     default 8,64,256
  --http-replicas LIST  default 1,2
  --http-sizes LIST     transfers per request, default 1,100
The stack keeps the last replica count asked for."""

import json
import os
import re
import subprocess
import time

from . import upstream
from .ui import Fatal

DEFAULTS = {"http_seconds": "20", "http_conns": "8,64,256", "http_replicas": "1,2",
            "http_sizes": "1,100"}
CEILING_TRANSFERS = 20000
ACCOUNTS = 1000


class HttpOptions:
    def __init__(self, seconds, conns, replicas, sizes):
        self.seconds, self.conns, self.replicas, self.sizes = seconds, conns, replicas, sizes


def _ints(name, text, lo, hi):
    vals = []
    for part in (text or "").split(","):
        if not re.fullmatch(r"[1-9][0-9]*", part) or not lo <= int(part) <= hi:
            raise ValueError("%s takes numbers %d..%d separated by commas, not '%s'"
                             % (name, lo, hi, text))
        vals.append(int(part))
    return vals


def parse(opts):
    """HttpOptions from the collected option texts; ValueError on a bad one."""
    def get(k):
        v = getattr(opts, k, None)
        return DEFAULTS[k] if v is None else v
    seconds = _ints("--http-seconds", get("http_seconds"), 1, 3600)
    if len(seconds) != 1:
        raise ValueError("--http-seconds takes one number")
    return HttpOptions(seconds[0], _ints("--http-conns", get("http_conns"), 1, 4096),
                       _ints("--http-replicas", get("http_replicas"), 1, 8),
                       _ints("--http-sizes", get("http_sizes"), 1, 1000))


# ------------------------------------------------------------ CPU of processes

def proc_ticks(pid):
    """utime + stime + cutime + cstime of pid in clock ticks (its reaped
    children included), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(x) for x in f[11:15])


def descendants(pid):
    """pid and every live process under it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def tree_ticks(pid):
    """CPU ticks of a process tree: the root's own and reaped children's,
    plus each live descendant's own (utime + stime only, so nothing is
    counted twice)."""
    total = proc_ticks(pid) or 0
    for p in descendants(pid)[1:]:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def cpu_seconds(before, after, hz=None):
    """{name: seconds} between two {name: ticks} samples (names in both)."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    return {k: round((after[k] - before[k]) / hz, 2) for k in after if k in before}


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stack_pids(run_dir, replicas):
    """{name: root pid} of the stack's processes: replica-I, haproxy,
    rabbitmq (beam.smp), postgres-a/b/c (each postmaster)."""
    pids = {}
    for i in range(1, replicas + 1):
        pids["replica-%d" % i] = read_pid(os.path.join(run_dir, "intake", "replica-%d.pid" % i))
    pids["haproxy"] = read_pid(os.path.join(run_dir, "intake", "haproxy.pid"))
    pids["rabbitmq"] = read_pid(os.path.join(run_dir, "rabbitmq", "payq.pid"))
    for n in "abc":
        pids["postgres-" + n] = read_pid(os.path.join(run_dir, "pg", n, "postmaster.pid"))
    return {k: v for k, v in pids.items() if v}


def sample(pids):
    return {k: tree_ticks(v) for k, v in pids.items()}


def reset_peak_rss(pid):
    """Starts pid's peak RSS (VmHWM) again from its RSS now (Linux's
    clear_refs 5); False when that is not allowed."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kb(pid):
    """pid's peak RSS in KiB (VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def replica_pids(pids):
    return {k: v for k, v in pids.items() if k.startswith("replica-")}


# ------------------------------------------------------------ wrk

def wrk_argv(url, conns, seconds, script, threads=None):
    """wrk with enough threads for the connections (at most 2: two cores)."""
    t = threads or max(1, min(2, conns))
    return ["wrk", "-t", str(t), "-c", str(conns), "-d", "%ds" % seconds, "--timeout", "30s",
            "-s", script, url + "/v1/transfers"]


def parse_wrk(stdout):
    """The JSON line http.lua's done() prints (the last line starting with
    {"wrk":), or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"wrk":'):
            try:
                return json.loads(line)["wrk"]
            except ValueError:
                return None
    return None


def cell_figures(w, size, cpu):
    """One cell's figures from wrk's JSON (latencies in microseconds)."""
    secs = w["duration_us"] / 1e6 if w.get("duration_us") else None
    ok = w["requests"] - w["non_2xx"]
    rps = round(w["requests"] / secs, 1) if secs else None
    return {"requests": w["requests"], "requests_per_s": rps,
            "transfers_per_s": round(ok * size / secs, 1) if secs else None,
            "non_2xx": w["non_2xx"], "socket_errors": w["socket_errors"],
            "p50_ms": round(w["p50_us"] / 1000, 2), "p99_ms": round(w["p99_us"] / 1000, 2),
            "max_ms": round(w["max_us"] / 1000, 2), "cpu_s": cpu}


def peak_rss_mib(cell):
    """The largest replica peak RSS of a cell in MiB ("-" if none was read;
    "<=" when it counts from the replica's start)."""
    vals = [v for v in (cell.get("replica_peak_rss_kb") or {}).values() if v]
    if not vals:
        return "-"
    return ("<=" if cell.get("replica_peak_rss_since_start") else "") + \
        "%.1f" % (max(vals) / 1024)


def table(cells, ceilings):
    """Markdown table of the cells, then the ceilings."""
    procs = []
    for c in cells:
        for k in c["cpu_s"]:
            if k not in procs:
                procs.append(k)
    head = ["replicas", "transfers/request", "connections", "requests/s", "transfers/s",
            "p50 ms", "p99 ms", "max ms", "non-202", "errors", "replica peak RSS MiB"] + \
        ["CPU s " + p for p in procs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cells:
        row = [c["replicas"], c["size"], c["connections"], c["requests_per_s"],
               c["transfers_per_s"], c["p50_ms"], c["p99_ms"], c["max_ms"], c["non_2xx"],
               c["socket_errors"], peak_rss_mib(c)] + [c["cpu_s"].get(p, "-") for p in procs]
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    for name, fig in ceilings.items():
        lines.append("")
        tps = (fig or {}).get("e2e_tps")
        lines.append("raw-broker ceiling, %s: %s" %
                     (name, "%s transfers/s" % tps if tps is not None else "failed"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ the run

def _stack_cmd(b, args, log):
    with open(log, "a") as f:
        return subprocess.call([os.path.join(b.root, "scripts/stack")] + args, stdout=f,
                               stderr=subprocess.STDOUT, env=b.stack.base_env)


def _wait_queue_empty(b, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msgs, _ = b.stack.queue_state()
        if msgs == "0":
            return True
        time.sleep(2)
    return False


def _open_accounts(b, runner, run_dir, pfx):
    path = os.path.join(run_dir, "accounts.jsonl")
    with open(path, "w") as f:
        for i in range(1, ACCOUNTS + 1):
            f.write('{"id":"%s-acct-%d","currency":"EUR"}\n' % (pfx, i))
    return runner.producer(["open-accounts", path, "--quiet"], run_dir, b.cfg) == 0


def run(b, runner):
    """The --http bench; returns the exit status."""
    ui = b.ui
    try:
        ho = parse(b.opts)
    except ValueError as e:
        raise Fatal(str(e))
    if subprocess.call(["which", "wrk", "haproxy"], stdout=subprocess.DEVNULL) != 0:
        raise Fatal("wrk or haproxy is missing (scripts/setup installs them)")
    run_dir = os.path.join(b.out, "runs", "http")
    os.makedirs(run_dir, exist_ok=True)
    b.n = min(b.n, CEILING_TRANSFERS)
    b.dates = b.stack.unused_dates(2)
    with upstream.EventsConsumer(b):  # the worker's outcome events
        ceilings, cells = _measure(b, runner, ho, run_dir)
    with open(os.path.join(b.out, "http.json"), "w") as f:
        json.dump({"cells": cells, "ceilings": ceilings, "seconds_per_cell": ho.seconds}, f,
                  indent=1)
    text = table(cells, ceilings)
    with open(os.path.join(b.out, "http-table.md"), "w") as f:
        f.write(text)
    print(text)
    ui.log("done: %s/http.json, %s/http-table.md" % (b.out, b.out))
    return 1 if ui.failed or not cells else 0


def _measure(b, runner, ho, run_dir):
    """The broker ceilings, then one worker and every wrk cell: (ceilings,
    cells)."""
    ui = b.ui
    ceilings = {"1 transfer per message": runner.ceiling(b.cfg_pack1, "ceiling-pack1", 1),
                "packs of 100": runner.ceiling(b.cfg, "ceiling", 100)}
    pfx = "bh%s" % b.stamp
    ws = runner.start_workers(1, b.cfg, run_dir)
    if ws is None:
        raise Fatal("the worker did not start")
    if not _open_accounts(b, runner, run_dir, pfx):
        raise Fatal("could not open the bench's accounts (see %s/producer.log)" % run_dir)
    script = os.path.join(b.here, "http.lua")
    env = dict(b.stack.env, PAYQ_BENCH_PREFIX=pfx, PAYQ_BENCH_ACCOUNTS=str(ACCOUNTS))
    cells = []
    for replicas in ho.replicas:
        ui.log("http: scripts/stack up --intake %d" % replicas)
        if _stack_cmd(b, ["up", "--intake", str(replicas)], os.path.join(b.out, "stack-up.log")):
            ui.err("scripts/stack up --intake %d failed (see %s/stack-up.log)" % (replicas, b.out))
            break
        url = "http://127.0.0.1:%d" % (17080 + int(os.environ.get("PAYQ_STACK_PORT_OFFSET", "0")))
        for size in ho.sizes:
            for conns in ho.conns:
                if not _wait_queue_empty(b, 120):
                    ui.warn("payq.transfers not drained after 120 s: the next cell shares the "
                            "worker with the backlog")
                pids = stack_pids(b.stack.env.get("PAYQ_RUN_DIR", os.path.join(b.root, ".run")),
                                  replicas)
                pids["worker"] = ws[0][0].pid
                reset = all([reset_peak_rss(p) for p in replica_pids(pids).values()])
                before = sample(pids)
                env["PAYQ_BENCH_SIZE"] = str(size)
                env["PAYQ_BENCH_RUN"] = "r%ds%dc%d" % (replicas, size, conns)
                argv = wrk_argv(url, conns, ho.seconds, script)
                w0, t0 = time.monotonic(), os.times()
                out = subprocess.run(argv, capture_output=True, text=True, env=env)
                t1 = os.times()
                after = sample(pids)
                tag = "r%d-s%d-c%d" % (replicas, size, conns)
                with open(os.path.join(run_dir, tag + ".wrk"), "w") as f:
                    f.write(out.stdout + out.stderr)
                w = parse_wrk(out.stdout)
                if out.returncode != 0 or w is None:
                    ui.err("wrk failed for %s (see %s/%s.wrk)" % (tag, run_dir, tag))
                    continue
                cpu = cpu_seconds(before, after)
                cpu["wrk"] = round(t1.children_user + t1.children_system -
                                   t0.children_user - t0.children_system, 2)
                fig = cell_figures(w, size, cpu)
                rss = {k: peak_rss_kb(v) for k, v in replica_pids(pids).items()}
                # Without the reset, VmHWM is the peak since the replica started.
                fig["replica_peak_rss_kb"] = rss
                fig["replica_peak_rss_since_start"] = not reset
                fig.update({"replicas": replicas, "size": size, "connections": conns,
                            "seconds": round(time.monotonic() - w0, 1)})
                cells.append(fig)
                ui.log("http %s: %s req/s, %s transfers/s, p50 %s ms, p99 %s ms, max %s ms, "
                       "non-202 %s, errors %s" % (tag, fig["requests_per_s"],
                                                  fig["transfers_per_s"], fig["p50_ms"],
                                                  fig["p99_ms"], fig["max_ms"], fig["non_2xx"],
                                                  fig["socket_errors"]))
    # What the last cell's requests published is booked before the worker
    # stops: a message left in payq.transfers stops the next bench's ceiling.
    if not _wait_queue_empty(b, 120):
        ui.warn("payq.transfers not drained 120 s after the last cell")
    runner.stop_workers(ws)
    return ceilings, cells

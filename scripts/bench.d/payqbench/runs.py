"""runs: one measured run each. The broker ceiling (payq-producer ->
payq-ackdrain, no database), a payq run (accounts, N workers, measured
publish, half load, reconcile) or a textbook run (batch_max 1), and a
reconciler-scaling run. Each returns its figures as a dict (the keys of
results.json) or None when it failed (the error is logged once, here)."""

import datetime
import json
import os
import re
import subprocess
import time
import urllib.request

from . import dbwork, events, latency, ledger, procs, reconcile, wal
from .stack import QueryError

HALF_WARMUP_MS = 3000
# The figures of a payq run's backlog drain (Runner._backlog_drain).
BACKLOG_KEYS = ("backlog_drain_tps", "backlog_drain_whole_batches_tps",
                "backlog_backend_cpu_us_per_transfer")
# How often wait_rows counts the ledger while the workers' metrics say the
# run is not done (only then: each count costs the database real time).
LEDGER_POLL_S = 10


def now_ms():
    return int(time.time() * 1000)


def fdiv(a, b, digits=1):
    """a / b rounded to digits (int when 0), None when b is 0 or missing."""
    if a is None or b is None or b == 0:
        return None
    v = float("%.*f" % (digits, a / b))
    return int(v) if digits == 0 else v


def iso_utc_ms(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def read_rate(path):
    """.rate of payq-producer --json / payq-rawpub output, or None."""
    try:
        with open(path) as f:
            v = json.load(f).get("rate")
    except (OSError, ValueError, AttributeError):
        return None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def funding_for(n, restricted):
    """Funding of each restricted account: about a third of what the 3% of
    transfers that debit restricted accounts ask for (mean amount 50,000)."""
    return (n * 3 // 100) * 50000 // 3 // restricted + 1


def scrape_sum(texts):
    """(transfers, batches, mean batch size, mean commit ms) summed over the
    workers' /metrics texts (transfers: any outcome)."""
    t = b = bs = bc = cs = cc = 0.0
    for text in texts:
        for line in text.splitlines():
            f = line.split()
            if not f:
                continue
            name, v = f[0], f[-1]
            try:
                v = float(v)
            except ValueError:
                continue
            if re.match(r"payq_worker_transfers_total[{ ]", line):
                t += v
            elif re.match(r"payq_worker_batches_total[{ ]", line):
                b += v
            elif name.startswith("payq_worker_batch_size_sum"):
                bs += v
            elif name.startswith("payq_worker_batch_size_count"):
                bc += v
            elif name.startswith("payq_worker_commit_ms_sum"):
                cs += v
            elif name.startswith("payq_worker_commit_ms_count"):
                cc += v
    return (int(t), int(b), float("%.1f" % (bs / bc)) if bc else None,
            float("%.2f" % (cs / cc)) if cc else None)


def rows_where(stack, where):
    """The ledger rows of payq.transfers WHERE ... as latency.Row."""
    rows = stack.q("""SELECT extract(epoch FROM published_at) * 1000,
                             extract(epoch FROM committed_at) * 1000,
                             extract(epoch FROM committed_at - published_at) * 1000,
                             status, coalesce(reason, ''),
                             date_trunc('second', published_at) = published_at, xmin
                      FROM payq.transfers WHERE %s""" % where)
    return [latency.Row(float(r[0]), float(r[1]), float(r[2]), r[3], r[4], r[5] == "t", r[6])
            for r in rows]


def write_latencies(path, rows):
    """Per-row latencies (ms, one decimal, sorted) for the chart."""
    vals = sorted(latency.round_half_away(r.lat_ms, 1) for r in rows)
    with open(path, "w") as f:
        f.write("".join(latency.fmt_ms(v) + "\n" for v in vals))
    return vals


class Runner:
    """The runs of one invocation, over the shared Bench context."""

    def __init__(self, bench):
        self.b = bench

    # ---------------------------------------------------------------- helpers
    def gen(self, path, mode, pfx, **kv):
        args = ["awk", "-f", os.path.join(self.b.here, "gen.awk"), "-v", "mode=" + mode,
                "-v", "pfx=" + pfx]
        for k, v in kv.items():
            args += ["-v", "%s=%s" % (k, v)]
        with open(path, "w") as out:
            return subprocess.call(args, stdout=out) == 0

    def gen_transfers(self, pfx, skew, count, seed, path, rawpub_date=None):
        extra = {}
        if rawpub_date:
            extra = {"rk": "transfer", "tid": "h", "date": rawpub_date}
        return self.gen(path, "transfers", pfx, A=self.b.A, R=self.b.R, N=count, skew=skew,
                        seed=seed, **extra)

    def producer(self, args, run_dir, cfg, json_out=None, wait=True):
        """payq-producer ARGS --config cfg (stderr appended to producer.log)."""
        argv = [os.path.join(self.b.bin, "payq-producer")] + args + ["--config", cfg]
        err = open(os.path.join(run_dir, "producer.log"), "a")
        out = open(json_out, "w") if json_out else subprocess.DEVNULL
        p = self.b.procs.start(argv, stdout=out, stderr=err)
        if not wait:
            return p
        rc = p.wait()
        self.b.procs.forget(p)
        return rc

    def start_workers(self, count, cfg, run_dir, name="worker"):
        """count payq-worker, each with a metrics port; None when one
        exited at start. Connected and consuming before the clock starts."""
        ws = []
        for i in range(1, count + 1):
            port = self.b.ports.take()
            log = open(os.path.join(run_dir, "%s.%d.log" % (name, i)), "a")
            tfile = os.path.join(run_dir, "%s.%d.time" % (name, i))
            p = self.b.procs.start([os.path.join(self.b.bin, "payq-worker"), "--config", cfg,
                                    "--metrics-listen", "127.0.0.1:%d" % port],
                                   stdout=log, stderr=subprocess.STDOUT, time_file=tfile)
            ws.append((p, port, tfile))
        time.sleep(1)
        if any(not p.running() for p, _, _ in ws):
            self.b.ui.err("a worker exited at start (see %s/%s.*.log)" % (run_dir, name))
            self.stop_workers(ws)
            return None
        return ws

    def worker_metrics(self, ws):
        """The workers' /metrics texts ("" for one that did not answer)."""
        texts = []
        for _, port, _ in ws:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                            timeout=5) as r:
                    texts.append(r.read().decode())
            except OSError:
                texts.append("")
        return texts

    def scrape_workers(self, ws, run_dir, name):
        texts = self.worker_metrics(ws)
        for i, text in enumerate(texts, start=1):
            with open(os.path.join(run_dir, "%s.%d.metrics" % (name, i)), "w") as f:
                f.write(text)
        return scrape_sum(texts)

    def stop_workers(self, ws):
        """SIGTERM each worker, wait up to 30 s (then KILL, with a warning);
        each one's CPU and peak RSS are then in its .time file."""
        for p in self.b.procs.stop([p for p, _, _ in ws], 30):
            self.b.ui.warn("worker under pid %d did not stop within 30 s: killed" % p.pid)

    def count(self, sql_from):
        try:
            c = self.b.stack.q1("SELECT count(*) " + sql_from)
            return int(c)
        except (QueryError, ValueError, IndexError):
            return None

    def wait_rows(self, label, total, where, t0, stall, pub, ws):
        """Waits until the ledger holds total rows WHERE ..., and the
        publisher pub finished (None: published before); False when nothing
        moved for stall seconds or the publisher exited non-zero. A progress
        line meanwhile.

        Progress comes from the workers' /metrics, not from the ledger:
        counting a run's rows costs the database about 1 ms per thousand
        (an index scan and a heap visit each, since fresh rows are not yet
        all-visible), so polling the count every 0.5 s took up to a quarter
        of a core from the PostgreSQL it measures, more as the run grew.
        The ledger is counted only to confirm the end, and every
        LEDGER_POLL_S in case another consumer books some of the run."""
        ui = self.b.ui
        ui.progress_reset()
        last, last_t, state = -1, time.monotonic(), "running" if pub is not None else "done"
        counted, counted_t = 0, 0.0
        while True:
            booked = scrape_sum(self.worker_metrics(ws))[0]
            if state == "running" and not pub.running():
                self.b.procs.forget(pub)
                state = "done"
                if pub.status != 0:
                    ui.clear_line()
                    ui.err("%s: publisher exited with status %d" % (label, pub.status))
                    return False
            if state != "running" and (booked >= total
                                       or time.monotonic() - counted_t >= LEDGER_POLL_S):
                c = self.count("FROM payq.transfers WHERE " + where)
                counted, counted_t = max(counted, c or 0), time.monotonic()
                if counted >= total:
                    break
            c = max(booked, counted)
            if c != last:
                last, last_t = c, time.monotonic()
            if time.monotonic() - last_t >= stall:
                ui.clear_line()
                ui.err("%s: only %d of %d in the ledger, no progress for %d s"
                       % (label, c, total, stall))
                return False
            dt = now_ms() - t0
            ui.progress("  %s: %d / %d booked (%d%%), %.1f s, %d/s, publisher %s"
                        % (label, c, total, min(c, total) * 100 // total, dt / 1000,
                           c * 1000 // dt if dt > 0 else 0, state))
            time.sleep(0.5)
        ui.clear_line()
        return True

    def drain_setup(self, label, total, sql_from, run_dir):
        """The unmeasured part (accounts, funding): payq-worker
        --exit-when-idle 1000 until the ledger holds total rows."""
        p, last, last_t, c = None, -1, time.monotonic(), 0
        log = open(os.path.join(run_dir, "setup-worker.log"), "a")
        while True:
            c = self.count(sql_from) or 0
            if c >= total:
                break
            if c != last:
                last, last_t = c, time.monotonic()
            if time.monotonic() - last_t >= 120:
                self.b.ui.err("%s: %d of %d after 120 s without progress" % (label, c, total))
                break
            if p is None or not p.running():
                if p is not None:
                    self.b.procs.forget(p)
                p = self.b.procs.start([os.path.join(self.b.bin, "payq-worker"), "--config",
                                        self.b.cfg, "--exit-when-idle", "1000"],
                                       stdout=log, stderr=subprocess.STDOUT)
            time.sleep(0.3)
        if p is not None:
            self.b.procs.stop([p], 30)
        return c >= total

    def setup_accounts(self, pfx, run_dir, fund, date):
        """Accounts (A regular, R restricted, treasury, merchant) opened and
        the restricted ones funded (batch PFX-fund on date) before the
        measured part."""
        b = self.b
        acc = os.path.join(run_dir, "accounts.jsonl")
        self.gen(acc, "accounts", pfx, A=b.A, R=b.R)
        if self.producer(["open-accounts", acc, "--quiet"], run_dir, b.cfg) != 0:
            b.ui.err("%s: open-accounts failed (see %s/producer.log)" % (pfx, run_dir))
            return False
        if not self.drain_setup("%s accounts" % pfx, b.A + b.R + 2,
                                "FROM payq.accounts WHERE id >= '%s:' AND id < '%s;'"
                                % (pfx, pfx), run_dir):
            return False
        fnd = os.path.join(run_dir, "funding.jsonl")
        self.gen(fnd, "funding", pfx, R=b.R, fund=fund)
        if self.producer(["publish", fnd, "--batch-id", pfx + "-fund", "--business-date", date,
                          "--quiet"], run_dir, b.cfg) != 0:
            b.ui.err("%s: funding publish failed (see %s/producer.log)" % (pfx, run_dir))
            return False
        return self.drain_setup("%s funding" % pfx, b.R,
                                "FROM payq.transfers WHERE business_date = '%s' AND "
                                "batch_id = '%s-fund'" % (date, pfx), run_dir)

    def remove(self, run_dir, *names):
        if not self.b.keep:
            for n in names:
                try:
                    os.remove(os.path.join(run_dir, n))
                except OSError:
                    pass

    # ---------------------------------------------------------------- ceiling
    def ceiling(self, cfg, name, pack):
        """The broker ceiling with cfg (pack transfers per message); one more
        attempt when another consumer took messages. Returns
        {e2e_tps, publish_tps, e2e_seconds} or None."""
        for attempt in (1, 2):
            fig, why = self._ceiling_once(attempt, cfg, name, pack)
            if fig:
                return fig
            for d in os.listdir(os.path.join(self.b.out, "runs")):
                if d.startswith(name):
                    self.remove(os.path.join(self.b.out, "runs", d), "transfers.jsonl")
            if attempt == 1:
                self.b.ui.warn("broker ceiling (%s), attempt 1: %s; trying again" % (name, why))
            else:
                self.b.ui.err("broker ceiling (%s): %s" % (name, why))
        return None

    def _ceiling_once(self, attempt, cfg, name, pack):
        b, ui = self.b, self.b.ui
        run_dir = os.path.join(b.out, "runs", name if attempt == 1 else "%s-%d" % (name, attempt))
        pfx = "bench-%s-%sc%d" % (b.stamp, name[-1], attempt)
        os.makedirs(run_dir, exist_ok=True)
        date = b.next_date()
        ui.log("broker ceiling (%s): %d transfers (uniform) in messages of %d, payq-producer -> "
               "quorum queue + stream -> payq-ackdrain, date %s" % (name, b.n, pack, date))
        self.gen_transfers(pfx, "uniform", b.n, b.opts.seed,
                           os.path.join(run_dir, "transfers.jsonl"))
        msgs, cons = b.stack.queue_state()
        deadline = time.monotonic() + 120
        while (msgs != "0" or cons != "0") and time.monotonic() < deadline:
            ui.log("  payq.transfers holds %s messages and has %s consumers: waiting for it to "
                   "be empty and idle" % (msgs, cons))
            time.sleep(5)
            msgs, cons = b.stack.queue_state()
        if msgs != "0":
            return None, "payq.transfers is not empty (%s messages)" % msgs
        if cons != "0":
            ui.warn("broker ceiling: payq.transfers still has %s other consumer(s)" % cons)
        nmsg = (b.n + pack - 1) // pack
        drain = b.procs.start([os.path.join(b.bin, "payq-ackdrain"), "--batch", "1000",
                               "--prefetch", "2000", "--expect", str(nmsg), "--idle-ms", "120000"],
                              stdout=open(os.path.join(run_dir, "ackdrain.out"), "w"),
                              stderr=open(os.path.join(run_dir, "ackdrain.log"), "w"))
        time.sleep(1)
        t0 = now_ms()
        pub = self.producer(["publish", os.path.join(run_dir, "transfers.jsonl"), "--batch-id",
                             pfx, "--business-date", date, "--json"], run_dir, cfg,
                            json_out=os.path.join(run_dir, "publish.json"), wait=False)
        prc, pend, why = None, None, None
        while drain.running():
            if prc is None and not pub.running():
                prc, pend = pub.status, now_ms()
                b.procs.forget(pub)
                if prc != 0:
                    break
            # Consuming takes far less time than publishing; a drain still
            # going long after the publisher finished means some other
            # consumer took messages (a shared stack).
            if pend is not None and now_ms() - pend > 60000 + (pend - t0) * 2:
                why = ("payq-ackdrain still draining %d s after the publisher finished "
                       "(another consumer on payq.transfers?)" % ((now_ms() - pend) // 1000))
                break
            if ui.tty:
                ui.progress("  broker ceiling (%s): draining, %.1f s" % (name,
                                                                         (now_ms() - t0) / 1000))
            time.sleep(0.05)
        t1 = now_ms()
        b.procs.stop([drain], 30)
        arc = drain.status
        if prc is None:
            prc = pub.wait()
            b.procs.forget(pub)
        ui.clear_line()
        if prc != 0:
            return None, "payq-producer exited %d (see %s/producer.log)" % (prc, run_dir)
        if why:
            return None, why
        n = None
        with open(os.path.join(run_dir, "ackdrain.out")) as f:
            for line in f:
                if line.startswith("drained"):
                    n = line.split()[1]
        if arc != 0 or (n or "0") != str(nmsg):
            return None, ("payq-ackdrain exited %d after %s of %d messages (see %s/ackdrain.log)"
                          % (arc, n or "0", nmsg, run_dir))
        secs = fdiv(t1 - t0, 1000, 3)
        fig = {"e2e_seconds": secs, "e2e_tps": fdiv(b.n, secs, 0),
               "publish_tps": read_rate(os.path.join(run_dir, "publish.json"))}
        # The broker's count of a quorum queue lags by seconds: look again later.
        msgs, _ = b.stack.queue_state()
        if msgs != "0":
            time.sleep(8)
            msgs, _ = b.stack.queue_state()
        if msgs != "0":
            ui.warn("broker ceiling: payq.transfers holds %s messages after the drain" % msgs)
        ui.log("  broker ceiling (%s): %d in %s s = %s/s end to end (producer alone: %s/s)"
               % (name, b.n, secs, fig["e2e_tps"], fig["publish_tps"]))
        self.remove(run_dir, "transfers.jsonl")
        return fig, None

    def steady_wal(self, phase):
        """Every node's WAL as a cluster in service has it (wal.steady):
        aged when young, then a checkpoint everywhere. The fewest segments any node has
        ready ahead, or None with --wal-as-found or when that could not be
        done (the phase still runs, warned)."""
        ui = self.b.ui
        if self.b.opts.wal_as_found:
            return None
        try:
            secs, ahead = wal.steady(self.b.stack, ui)
        except (wal.WalError, QueryError) as e:
            ui.warn("%s: WAL not settled (%s): segment creation may stall commits" % (phase, e))
            return None
        ui.log("  wal: checkpoint on every node in %s s; segments ready ahead: %s"
               % (secs, ", ".join("%s %d" % kv for kv in sorted(ahead.items()))))
        return min(ahead.values()) if ahead else None

    # ---------------------------------------------------------------- payq
    def payq(self, spec):
        """One payq or textbook run of the matrix; its figures (also written
        to runs/<tag>/run.json) or None."""
        b, ui = self.b, self.b.ui
        kind, skew, w, n = spec.kind, spec.skew, spec.workers, spec.n
        tag = spec.tag()
        cfg = events.config_for(b.cfg_textbook if kind == "textbook" else b.cfg, spec)
        run_dir = os.path.join(b.out, "runs", tag)
        pfx = "bench-%s-%s%s%d%s" % (b.stamp, skew[0], kind[0], w, events.id_part(spec))
        os.makedirs(run_dir, exist_ok=True)
        present = None
        if "ledger_accounts" in spec.values:  # one stack for every size: ids apart
            pfx += ledger.id_suffix(spec.values["ledger_accounts"],
                                   spec.values.get("ledger_pass", 1))
            present = ledger.ensure(b.stack, spec.values["ledger_accounts"], ui)
            if present is None:
                return None
        date = b.next_date()
        batch = pfx + "-b"
        run_t0 = now_ms()
        run_start_iso = iso_utc_ms(run_t0 - 60000)
        ui.log("== %s: %d transfers, %d worker(s)%s, skew %s, date %s, ids %s:*"
               % (tag, n, w, ", batch_max 1 prefetch 1" if kind == "textbook" else "", skew,
                  date, pfx))
        ui.log("  generating accounts and transfers")
        self.gen_transfers(pfx, skew, n, b.opts.seed + b.date_i,
                           os.path.join(run_dir, "transfers.jsonl"))
        ui.log("  opening %d accounts, funding %d restricted ones" % (b.A + b.R + 2, b.R))
        if not self.setup_accounts(pfx, run_dir, funding_for(n, b.R), date):
            return None

        wal_ahead = self.steady_wal(tag)
        ui.log("  starting %d worker(s); publishing %d transfers (batch %s)" % (w, n, batch))
        work0 = dbwork.statements(b.stack)
        ws = self.start_workers(w, cfg, run_dir)
        if ws is None:
            return None
        t0 = now_ms()
        pub = self.producer(["publish", os.path.join(run_dir, "transfers.jsonl"), "--batch-id",
                             batch, "--business-date", date, "--json"], run_dir, cfg,
                            json_out=os.path.join(run_dir, "publish.json"), wait=False)
        where = "business_date = '%s' AND batch_id = '%s'" % (date, batch)
        if not self.wait_rows(tag, n, where, t0, 120, pub, ws):
            self.stop_workers(ws)
            return None
        mine, batches, mean_batch, mean_commit = self.scrape_workers(ws, run_dir, "worker")
        backend_s = dbwork.backend_cpu_s(b.stack)  # before the workers (and backends) go
        self.stop_workers(ws)
        stmts = dbwork.delta(work0, dbwork.statements(b.stack))
        work = dbwork.per_transfer(stmts, backend_s, n)
        if stmts:
            with open(os.path.join(run_dir, "db-statements.txt"), "w") as f:
                f.write(dbwork.format_statements(stmts, n))
        foreign = n - mine if n > mine else 0
        if foreign:
            ui.warn("%s: the bench's workers handled %d of %d transfers: some other consumer of "
                    "payq.transfers took %d (shared stack): these figures are not clean"
                    % (tag, mine, n, foreign))
        try:
            rows = rows_where(b.stack, where)
        except QueryError:
            ui.err("%s: measurement query failed" % tag)
            return None
        m = latency.measure(rows)
        if m["count"] != n:
            ui.err("%s: %d rows in the ledger, expected %d" % (tag, m["count"], n))
            return None
        e2e_s = fdiv(m["last_committed_ms"] - t0, 1000, 3)
        e2e = fdiv(n, e2e_s, 0)
        drain = drain_rates(m, n)[0]
        pub_tps = read_rate(os.path.join(run_dir, "publish.json"))
        cpu, rss = worker_usage([path for _, _, path in ws])
        if m["seconds_only"]:
            ui.warn("%s: every published_at is a whole second (the producer sends "
                    "second-resolution intake times): full-load latencies are overstated by up "
                    "to 1 s" % tag)
        ui.log("  %s: e2e %s/s (%d in %s s), publish %s/s, drain %s/s, latency p50 %s p99 %s "
               "max %s ms, rejected %d" % (tag, txt(e2e), n, txt(e2e_s), txt(pub_tps), txt(drain),
                                           txt(m["p50"]), txt(m["p99"]), txt(m["max"]),
                                           m["rejected"]))
        ui.log("  %s: per transfer: backend CPU %s us, statement time %s us, %s buffers, "
               "%s WAL bytes in %s records" % (
                   tag, txt(work["backend_cpu_us_per_transfer"]),
                   txt(work["db_exec_us_per_transfer"]), txt(work["db_blocks_per_transfer"]),
                   txt(work["db_wal_bytes_per_transfer"]),
                   txt(work["db_wal_records_per_transfer"])))
        write_latencies(os.path.join(run_dir, "latency.txt"), rows)

        half = {"hm": None, "hrate": None, "hreal": None, "h50": None, "h99": None,
                "hmax": None, "hs50": None, "hs99": None, "hsmax": None, "hwal": None}
        backlog = dict.fromkeys(BACKLOG_KEYS)
        rec = {"secs": None, "rss": None, "exit": None, "result": None}
        if kind == "payq":
            if not self._backlog_drain(spec, run_dir, pfx, date, cfg, backlog):
                return None
            if not self._half_load(spec, run_dir, pfx, date, cfg, e2e, half):
                return None
            rec = self._reconcile(tag, run_dir, pfx, date, run_start_iso)

        fig = run_object(kind, skew, w, n, date, batch, pfx, e2e, e2e_s, pub_tps, drain, m,
                         cpu, rss, mine, foreign, batches, mean_batch, mean_commit, half, rec,
                         run_start_iso, wal_ahead, work, backlog)
        fig.update({k: v for k, v in spec.values.items() if k not in ("skew", "workers")})
        if present is not None:
            fig["ledger_accounts_present"] = present
        with open(os.path.join(run_dir, "run.json"), "w") as f:
            json.dump(fig, f, indent=2)
            f.write("\n")
        self.remove(run_dir, "transfers.jsonl", "half.tsv", "accounts.jsonl", "funding.jsonl")
        return fig

    def _backlog_drain(self, spec, run_dir, pfx, date, cfg, out):
        """The drain of a backlog: as many transfers again (ids PFX:q:I,
        batch PFX-bq), all published and confirmed before the workers start,
        so that nothing but the workers, their backends and what the ledger
        replicates shares the machine while it is timed. The full-load run
        times its drain while payq-producer and the broker's intake still
        run for its first second or so; this is issue 16's "drain". Fills
        out (BACKLOG_KEYS); False on failure."""
        b, ui = self.b, self.b.ui
        tag, w, n = spec.tag(), spec.workers, spec.n
        ui.log("  settled: no autovacuum after %d s" % b.stack.settle())
        self.steady_wal(tag + " backlog")
        path = os.path.join(run_dir, "backlog.jsonl")
        self.gen(path, "transfers", pfx, A=b.A, R=b.R, N=n, skew=spec.skew,
                 seed=b.opts.seed + 3000 + b.date_i, tid="q")
        batch = pfx + "-bq"
        ui.log("  backlog: publishing %d transfers (batch %s) before %d worker(s) start"
               % (n, batch, w))
        if self.producer(["publish", path, "--batch-id", batch, "--business-date", date,
                          "--json"], run_dir, cfg,
                         json_out=os.path.join(run_dir, "backlog-publish.json")) != 0:
            ui.err("%s backlog: publish failed (see %s/producer.log)" % (tag, run_dir))
            return False
        self.remove(run_dir, "backlog.jsonl")
        where = "business_date = '%s' AND batch_id = '%s'" % (date, batch)
        work0 = dbwork.statements(b.stack)
        ws = self.start_workers(w, cfg, run_dir, "backlog-worker")
        if ws is None:
            return False
        if not self.wait_rows(tag + " backlog", n, where, now_ms(), 120,
                              None, ws):
            self.stop_workers(ws)
            return False
        mine = self.scrape_workers(ws, run_dir, "backlog-worker")[0]
        backend_s = dbwork.backend_cpu_s(b.stack)
        self.stop_workers(ws)
        if mine < n:
            ui.warn("%s backlog: the bench's workers handled %d of %d transfers (another "
                    "consumer took the rest)" % (tag, mine, n))
        work = dbwork.per_transfer(dbwork.delta(work0, dbwork.statements(b.stack)),
                                   backend_s, n)
        drain, whole = drain_rates(latency.measure(rows_where(b.stack, where)), n)
        out.update({
            "backlog_drain_tps": drain, "backlog_drain_whole_batches_tps": whole,
            "backlog_backend_cpu_us_per_transfer": work.get("backend_cpu_us_per_transfer"),
        })
        ui.log("  %s backlog: drain %s/s, %s/s over whole batch cycles, backend CPU %s us a "
               "transfer" % (tag, txt(out["backlog_drain_tps"]),
                             txt(out["backlog_drain_whole_batches_tps"]),
                             txt(out["backlog_backend_cpu_us_per_transfer"])))
        return True

    def _half_load(self, spec, run_dir, pfx, date, cfg, e2e, half):
        """Latency at about half load, on a settled system: the full-load run
        just left autovacuum work (a burst's dead account versions) that a
        steady half load would spread out. Fills half; False on failure."""
        b, ui = self.b, self.b.ui
        tag, w, n = spec.tag(), spec.workers, spec.n
        ui.log("  settled: no autovacuum after %d s" % b.stack.settle())
        half["hwal"] = self.steady_wal(tag + " half load")
        hrate = max(1, int((e2e or 0) / 2))
        hm = min(max(int(hrate * b.opts.half_load_seconds), 200), n)
        ui.log("  half load: %d transfers paced at %d/s (payq-rawpub --rate), %d worker(s)"
               % (hm, hrate, w))
        tsv = os.path.join(run_dir, "half.tsv")
        self.gen_transfers(pfx, spec.skew, hm, b.opts.seed + 1000 + b.date_i, tsv,
                           rawpub_date=date)
        ws = self.start_workers(w, cfg, run_dir, "half-worker")
        if ws is None:
            return False
        ht0 = now_ms()
        pub = b.procs.start([os.path.join(b.bin, "payq-rawpub"), "--rate", str(hrate), "--pack",
                             str(b.opts.pack)], stdin=open(tsv),
                            stdout=open(os.path.join(run_dir, "rawpub.out"), "w"),
                            stderr=open(os.path.join(run_dir, "rawpub.log"), "w"))
        where = ("business_date = '%s' AND batch_id IS NULL AND id >= '%s:h:' AND id < '%s:h;'"
                 % (date, pfx, pfx))
        if not self.wait_rows(tag + " half load", hm, where, ht0, 120, pub, ws):
            self.stop_workers(ws)
            return False
        hmine = self.scrape_workers(ws, run_dir, "half-worker")[0]
        self.stop_workers(ws)
        if hmine < hm:
            ui.warn("%s half load: the bench's workers handled %d of %d transfers (another "
                    "consumer took the rest)" % (tag, hmine, hm))
        rows = rows_where(b.stack, where)
        hmeas = latency.measure(rows)
        hreal = fdiv(hmeas["count"], fdiv(hmeas["last_published_ms"] - hmeas["first_published_ms"],
                                          1000, 3), 0)
        # The same without the first HALF_WARMUP_MS of publishing: fresh
        # workers and the tail of the full-load burst dominate those seconds.
        cut = hmeas["first_published_ms"] + HALF_WARMUP_MS
        steady = latency.measure([r for r in rows if r.published_ms >= cut])
        write_latencies(os.path.join(run_dir, "latency-half.txt"), rows)
        wins = latency.windows(rows)
        with open(os.path.join(run_dir, "latency-half-windows.txt"), "w") as f:
            f.write(latency.format_windows(wins))
        worst = max((w for w in wins if w[0] >= HALF_WARMUP_MS), key=lambda w: w[3],
                    default=None)
        half.update(hm=hm, hrate=hrate, hreal=hreal, h50=hmeas["p50"], h99=hmeas["p99"],
                    hmax=hmeas["max"], hs50=steady["p50"], hs99=steady["p99"],
                    hsmax=steady["max"])
        ui.log("  half load: %d at %s/s: latency p50 %s p99 %s max %s ms"
               % (hmeas["count"], txt(hreal), txt(hmeas["p50"]), txt(hmeas["p99"]),
                  txt(hmeas["max"])))
        if worst:
            ui.log("  half load after %d s: p99 %s ms; worst 0.5 s window at +%.1f s: p99 %s ms "
                   "(every window: latency-half-windows.txt)"
                   % (HALF_WARMUP_MS // 1000, txt(steady["p99"]), worst[0] / 1000,
                      txt(worst[3])))
        return True

    def _reconcile(self, tag, run_dir, pfx, date, run_start_iso):
        ui = self.b.ui
        ui.log("  reconciling %s (payq-reconciler --audit-from %s)" % (date, run_start_iso))
        rc, secs, rss, result = reconcile.run_reconciler(self.b, date, run_start_iso, run_dir)
        if rc == 0:
            ui.log("  reconciled: %s in %s s, peak RSS %s KB" % (result, secs, rss))
        else:
            ui.err("%s: payq-reconciler exited %d (%s) on %s: a bug somewhere"
                   % (tag, rc, result, date))
            reconcile.print_breaks(ui, run_dir, pfx)
        return {"secs": secs, "rss": rss, "exit": rc, "result": result}

    # ---------------------------------------------------------------- reconciler scaling
    def recon_size(self, size):
        """A day of size transfers (2 workers), then payq-reconciler on it;
        its results.json entry or None."""
        b, ui = self.b, self.b.ui
        run_dir = os.path.join(b.out, "runs", "recon-%d" % size)
        pfx = "bench-%s-r%d" % (b.stamp, size)
        os.makedirs(run_dir, exist_ok=True)
        date = b.next_date()
        batch = pfx + "-b"
        audit_from = iso_utc_ms(now_ms() - 60000)
        ui.log("== reconciler scaling: %d transfers on %s (2 workers)" % (size, date))
        self.gen_transfers(pfx, "uniform", size, b.opts.seed + 2000 + b.date_i,
                           os.path.join(run_dir, "transfers.jsonl"))
        if not self.setup_accounts(pfx, run_dir, funding_for(size, b.R), date):
            return None
        ws = self.start_workers(2, b.cfg, run_dir)
        if ws is None:
            return None
        t0 = now_ms()
        pub = self.producer(["publish", os.path.join(run_dir, "transfers.jsonl"), "--batch-id",
                             batch, "--business-date", date, "--json"], run_dir, b.cfg,
                            json_out=os.path.join(run_dir, "publish.json"), wait=False)
        ok = self.wait_rows("recon %d" % size, size,
                            "business_date = '%s' AND batch_id = '%s'" % (date, batch), t0, 120,
                            pub, ws)
        self.stop_workers(ws)
        if not ok:
            return None
        self.remove(run_dir, "transfers.jsonl", "accounts.jsonl", "funding.jsonl")
        ui.log("  reconciling %s (%d transfers that day)" % (date, size + b.R))
        rc, secs, rss, result = reconcile.run_reconciler(b, date, audit_from, run_dir)
        ui.log("  %d: %s in %s s, peak RSS %s KB" % (size, result, secs, rss))
        if rc != 0:
            ui.err("reconciler scaling: payq-reconciler exited %d (%s) on %s" % (rc, result, date))
            reconcile.print_breaks(ui, run_dir, pfx)
        return reconcile.scaling_entry(size, size + b.R, date, secs, rss, rc, result)


def drain_rates(m, n):
    """(drain_tps, drain_whole_batches_tps) of n rows measured by
    latency.measure: n over the first to the last committed_at, and the
    rows of whole batch cycles over their time (latency.whole_batches)."""
    wb = m.get("whole_batches")
    first, last = m.get("first_committed_ms"), m.get("last_committed_ms")
    drain = fdiv(n, fdiv(last - first, 1000, 3), 0) if first is not None else None
    return drain, fdiv(wb[0], fdiv(wb[1], 1000, 3), 0) if wb else None


def worker_usage(time_files):
    """(CPU seconds, user + system, summed; the largest peak RSS in KB) of
    the workers' /usr/bin/time files ('%e %U %S %M %x')."""
    cpu, rss = 0.0, 0
    for path in time_files:
        f = procs.time_figures(path)
        if f and len(f) >= 4:
            cpu += f[1] + f[2]
            rss = max(rss, int(f[3]))
    return float("%.2f" % cpu), rss


def txt(v):
    """A figure in a log line: null when missing, as the bash bench wrote."""
    return "null" if v is None else str(v)


def run_object(kind, skew, w, n, date, batch, pfx, e2e, e2e_s, pub, drain, m, cpu, rss, mine,
               foreign, batches, mean_batch, mean_commit, half, rec, rec_from, wal_ahead, work,
               backlog=None):
    """The per-run object of results.json (before the comparisons), keys in
    the order of the bash bench."""
    payq = kind == "payq"
    rnd = latency.round_half_away
    return {
        "kind": kind, "skew": skew, "workers": w, "transfers": n, "business_date": date,
        "batch_id": batch, "id_prefix": pfx,
        "e2e_tps": e2e, "e2e_seconds": e2e_s, "publish_tps": pub, "drain_tps": drain,
        "drain_whole_batches_tps": drain_rates(m, n)[1],
        **{k: (backlog or {}).get(k) for k in BACKLOG_KEYS},
        "latency_p50_ms": m["p50"], "latency_p99_ms": m["p99"], "latency_max_ms": m["max"],
        "published_at_whole_seconds": bool(m["seconds_only"]),
        "rejected": m["rejected"],
        "rejected_pct": None if m["rejected"] is None else rnd(m["rejected"] * 10000 / n) / 100,
        "rejected_insufficient_funds": m["insufficient"],
        "rejected_account_not_found": m["not_found"],
        "worker_cpu_s": cpu,
        "worker_cpu_s_per_1k": None if cpu is None else rnd(cpu * 1000 / n * 1000) / 1000,
        "worker_peak_rss_kb": rss,
        "worker_batches": batches, "worker_mean_batch_size": mean_batch,
        "worker_mean_commit_ms": mean_commit,
        "transfers_handled_by_bench_workers": mine, "transfers_taken_by_other_consumers": foreign,
        "half_load_transfers": half["hm"], "half_load_target_tps": half["hrate"],
        "half_load_tps": half["hreal"],
        "half_load_latency_p50_ms": half["h50"], "half_load_latency_p99_ms": half["h99"],
        "half_load_latency_max_ms": half["hmax"],
        "half_load_warmup_ms": HALF_WARMUP_MS if payq else None,
        "half_load_steady_latency_p50_ms": half["hs50"],
        "half_load_steady_latency_p99_ms": half["hs99"],
        "half_load_steady_latency_max_ms": half["hsmax"],
        "reconcile_seconds": rec["secs"], "reconcile_peak_rss_kb": rec["rss"],
        "reconcile_exit": rec["exit"],
        "reconcile_result": rec["result"] if payq else None,
        "reconcile_audit_from": rec_from if payq else None,
        "wal_segments_ahead": wal_ahead,
        "half_load_wal_segments_ahead": half.get("hwal") if payq else None,
        **{k: work.get(k) for k in dbwork.KEYS},
    }

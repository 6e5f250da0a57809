"""Unit tests of the pure parts of scripts/bench (scripts/bench.d/payqbench):
percentiles and rounding as PostgreSQL computes them, the CDF the chart
draws, the command line, the run matrix, the reconciler-scaling figures,
results.json (keys and comparisons) and the table. No servers.
Run: ctest --test-dir build -R bench_py_unit, or PYTHONPATH=scripts/bench.d
python3 -m unittest discover -s tests/tools -p test_payqbench.py"""

import io
import json
import os
import tempfile
import unittest

from payqbench import cli, events, failover, latency, main, matrix, reconcile, report, runs, ui

SRC = os.environ.get("PAYQ_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class Percentiles(unittest.TestCase):
    def test_percentile_cont_interpolates_like_postgres(self):
        # SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM
        # (VALUES (1),(2),(3),(4)) v(x) -> 2.5; 0.99 of 1..100 -> 99.01
        self.assertEqual(latency.percentile_cont([1, 2, 3, 4], 0.5), 2.5)
        self.assertAlmostEqual(latency.percentile_cont(list(range(1, 101)), 0.99), 99.01)
        self.assertEqual(latency.percentile_cont([7], 0.99), 7)
        self.assertIsNone(latency.percentile_cont([], 0.5))

    def test_round_half_away_from_zero(self):
        self.assertEqual(latency.round_half_away(2.5), 3)
        self.assertEqual(latency.round_half_away(-2.5), -3)
        self.assertEqual(latency.round_half_away(0.25, 1), 0.3)
        self.assertEqual(latency.round_half_away(1049.149, 1), 1049.1)
        self.assertIsNone(latency.round_half_away(None, 1))

    def test_measure(self):
        rows = [latency.Row(1000.0 + i, 2000.4 + i, 1000.4 + i * 10, "posted", "", True)
                for i in range(10)]
        rows.append(latency.Row(1500.0, 2600.6, 1100.6, "rejected", "insufficient_funds", False))
        m = latency.measure(rows)
        self.assertEqual(m["count"], 11)
        self.assertEqual(m["first_committed_ms"], 2000)
        self.assertEqual(m["last_committed_ms"], 2601)
        self.assertEqual(m["first_published_ms"], 1000)
        self.assertEqual(m["p50"], 1050.4)
        self.assertEqual(m["max"], 1100.6)
        self.assertEqual((m["rejected"], m["insufficient"], m["not_found"]), (1, 1, 0))
        self.assertFalse(m["seconds_only"])
        self.assertIsNone(latency.measure([])["p50"])

    def test_cdf_subsamples_to_about_target(self):
        vals = [i / 10 for i in range(5000)]
        pts = latency.cdf_points(vals, target=1000)
        self.assertEqual(len(pts), 1001)  # every 5th, plus the first
        self.assertEqual(pts[0], (0.1, 1 / 5000))  # 0.0 floored to 0.1
        self.assertEqual(pts[-1], (499.9, 1.0))
        self.assertEqual(latency.format_cdf([(0.1, 0.5)]), "0.1 0.50000\n")


class CommandLine(unittest.TestCase):
    def test_defaults_and_quick(self):
        o = cli.parse([])
        self.assertEqual((o.transfers, o.accounts, o.worker_list, o.skew_list), (200000, 10000,
                                                                               [1, 2], ["uniform"]))
        self.assertEqual((o.textbook_transfers, o.half_load_seconds, o.pack), (20000, 15, 100))
        q = cli.parse(["--quick", "--out=/x"])
        self.assertEqual((q.transfers, q.accounts, q.textbook_transfers, q.half_load_seconds,
                          q.out, q.quick), (20000, 2000, 2000, 6, "/x", True))

    def test_textbook_never_above_transfers(self):
        self.assertEqual(cli.parse(["--transfers", "500"]).textbook_transfers, 500)

    def test_usage_errors(self):
        for argv, msg in ((["--workers", "0"], "bad worker count '0' in --workers"),
                          (["--workers", "65"], "bad worker count '65' in --workers"),
                          (["--skew", "flat"], "--skew takes uniform, zipf or hot, not 'flat'"),
                          (["--pack", "1001"], "--pack takes 1..1000"),
                          (["--transfers", "1e3"],
                           "--transfers takes a positive integer, not '1e3'"),
                          (["--seed"], "--seed needs a value"),
                          (["--bogus"], "unknown option --bogus (see --help)"),
                          (["--recon-sizes", "1,x"], "bad size 'x' in --recon-sizes")):
            with self.assertRaises(cli.UsageError) as e:
                cli.parse(argv)
            self.assertEqual(str(e.exception), msg)
        with self.assertRaises(cli.Help):
            cli.parse(["--help"])

    def test_brokers(self):
        self.assertEqual(cli.parse([]).broker_list, [])
        self.assertEqual(cli.parse(["--brokers", "1,3"]).broker_list, [1, 3])
        self.assertEqual(cli.parse(["--brokers=3"]).broker_list, [3])
        for argv, msg in ((["--brokers", "2"], "--brokers takes 1 and/or 3 (scripts/stack up "
                                               "--brokers), not '2'"),
                          (["--brokers", ""], "empty --brokers"),
                          (["--brokers"], "--brokers needs a value")):
            with self.assertRaises(cli.UsageError) as e:
                cli.parse(argv)
            self.assertEqual(str(e.exception), msg)


class Matrix(unittest.TestCase):
    def test_plan_order_and_tags(self):
        dims = [(matrix.SKEW, ["uniform", "hot", "uniform"]), (matrix.WORKERS, [1, 2, 1])]
        specs = matrix.plan(dims, 1000, 100)
        self.assertEqual([(s.kind, s.tag(), s.n) for s in specs], [
            ("textbook", "uniform-textbook", 100), ("payq", "uniform-1w", 1000),
            ("payq", "uniform-2w", 1000), ("textbook", "hot-textbook", 100),
            ("payq", "hot-1w", 1000), ("payq", "hot-2w", 1000)])

    def test_a_new_dimension_is_one_entry(self):
        brokers = matrix.Dimension("brokers", lambda v: "" if v == 1 else "%db" % v)
        specs = matrix.plan([(matrix.SKEW, ["zipf"]), (brokers, [1, 3]),
                             (matrix.WORKERS, [2])], 10, 5)
        self.assertEqual([s.tag() for s in specs],
                         ["zipf-textbook", "zipf-2w", "zipf-3b-textbook", "zipf-3b-2w"])
        self.assertEqual(specs[3].values, {"skew": "zipf", "brokers": 3, "workers": 2})
        self.assertEqual(specs[3].group(), (("skew", "zipf"), ("brokers", 3)))

    def test_no_brokers_option_no_brokers_dimension(self):
        dims = main.dimensions(cli.parse(["--workers", "1,2"]))
        self.assertEqual([d.name for d, _ in dims], ["skew", "workers"])
        specs = matrix.plan(dims, 10, 5)
        self.assertEqual([s.tag() for s in specs], ["uniform-textbook", "uniform-1w",
                                                    "uniform-2w"])
        self.assertTrue(all("brokers" not in s.values for s in specs))
        self.assertEqual(main.shapes(specs, []), [(None, specs)])

    def test_brokers_outermost_one_shape_at_a_time(self):
        opts = cli.parse(["--brokers", "3,1,3", "--skew", "uniform,hot", "--workers", "1,2"])
        dims = main.dimensions(opts)
        self.assertEqual([d.name for d, _ in dims], ["brokers", "skew", "workers"])
        specs = matrix.plan(dims, 10, 5)
        self.assertEqual([s.tag() for s in specs], [
            "3b-uniform-textbook", "3b-uniform-1w", "3b-uniform-2w",
            "3b-hot-textbook", "3b-hot-1w", "3b-hot-2w",
            "1b-uniform-textbook", "1b-uniform-1w", "1b-uniform-2w",
            "1b-hot-textbook", "1b-hot-1w", "1b-hot-2w"])
        self.assertEqual(specs[4].values, {"brokers": 3, "skew": "hot", "workers": 1})
        self.assertEqual(specs[4].group(), (("brokers", 3), ("skew", "hot")))
        shapes = main.shapes(specs, opts.broker_list)
        self.assertEqual([(n, [s.tag() for s in g]) for n, g in shapes],
                         [(3, [s.tag() for s in specs[:6]]), (1, [s.tag() for s in specs[6:]])])


def run_fig(skew, workers, tps, taken=0):
    return {"kind": "payq", "skew": skew, "workers": workers, "transfers": 1000,
            "business_date": "2091-01-29", "e2e_tps": tps, "latency_p50_ms": 10.5,
            "transfers_taken_by_other_consumers": taken}


PARAMS = {"transfers": 1000, "worker_config": {"pack_max": 100}}
MACHINE = {"cores": 2, "memory_gib": 23.5, "kernel": "Linux x", "date": "2026-01-01T00:00:00Z"}


class Results(unittest.TestCase):
    def build(self, **kw):
        runs_ = [run_fig("uniform", 1, 1000), run_fig("uniform", 2, 1500),
                 run_fig("zipf", 1, 800), run_fig("zipf", 2, 900, taken=3)]
        tb = {("uniform",): dict(run_fig("uniform", 1, 20), kind="textbook"),
              ("zipf",): dict(run_fig("zipf", 1, 16), kind="textbook")}
        return report.build_results(runs_, tb, {"e2e_tps": 4000, "e2e_seconds": 0.25,
                                                "publish_tps": 9000}, None, MACHINE, PARAMS,
                                    "1.0 1.0 1.0", **kw)

    def test_comparisons(self):
        r = self.build()
        self.assertEqual([x["ratio_vs_broker"] for x in r], [0.25, 0.375, 0.2, 0.225])
        self.assertEqual([x["ratio_vs_textbook"] for x in r], [50, 75, 50, 56.25])
        self.assertEqual([x["scaling_vs_min_workers"] for x in r], [1, 1.5, 1, 1.125])
        self.assertEqual([x["ratio_vs_uniform"] for x in r], [1, 1, 0.8, 0.6])
        self.assertEqual([x["clean"] for x in r], [True, True, True, False])
        self.assertIsNone(r[0]["ratio_vs_broker_one_per_message"])
        self.assertEqual(r[0]["baselines"]["textbook"]["config"],
                         "worker.batch_max 1, worker.prefetch 1")
        self.assertEqual(r[0]["machine"]["loadavg_at_end"], "1.0 1.0 1.0")
        self.assertNotIn("recon_scaling", r[0])
        self.assertNotIn("failover", r[0])
        r = self.build(recon=[], failover={"recovery_s": 21.5})
        self.assertEqual(r[0]["recon_scaling"], [])
        self.assertEqual(r[3]["failover"], {"recovery_s": 21.5})

    def test_keys_are_those_of_the_published_results(self):
        with open(os.path.join(SRC, "docs", "bench-results.json")) as f:
            published = json.load(f)[0]
        fig = runs.run_object("payq", "uniform", 1, 1000, "2091-01-29", "b", "p", 10, 1.0, 5, 5,
                              latency.measure([latency.Row(1, 2, 1, "posted", "", False)]),
                              1.0, 100, 1000, 0, 1, 1.0, 1.0,
                              dict.fromkeys(["hm", "hrate", "hreal", "h50", "h99", "hmax",
                                             "hs50", "hs99", "hsmax"]),
                              {"secs": 1, "rss": 1, "exit": 0, "result": "balanced"}, "t")
        tb = {("uniform",): dict(fig, kind="textbook")}
        r = report.build_results([fig], tb, {}, {}, MACHINE, dict(published["params"]),
                                 "0 0 0", recon=[])[0]
        self.assertEqual(list(r), list(published))
        self.assertEqual(list(r["baselines"]), list(published["baselines"]))
        for k in r["baselines"]:
            self.assertEqual(list(r["baselines"][k]), list(published["baselines"][k]), k)

    def test_brokers_key_and_per_shape_comparisons(self):
        # main builds results.json one shape at a time (its own ceilings and
        # textbook runs); a run's only new key is `brokers`, at the end.
        dims = ("brokers", "skew")
        out = []
        for n, tps, ceiling in ((1, 1000, 4000), (3, 500, 1000)):
            fig = dict(run_fig("uniform", 1, tps), brokers=n)
            tb = {(n, "uniform"): dict(run_fig("uniform", 1, tps / 50), kind="textbook",
                                       brokers=n)}
            out += report.build_results([fig], tb, {"e2e_tps": ceiling}, None, MACHINE, PARAMS,
                                        "0 0 0", dims=dims)
        plain = report.build_results([run_fig("uniform", 1, 1000)],
                                     {("uniform",): run_fig("uniform", 1, 20)}, {}, None,
                                     MACHINE, PARAMS, "0 0 0")[0]
        self.assertEqual(list(out[0]), list(plain)[:len(run_fig("uniform", 1, 1))] + ["brokers"]
                         + list(plain)[len(run_fig("uniform", 1, 1)):])
        self.assertNotIn("brokers", plain)
        self.assertEqual([(r["brokers"], r["ratio_vs_broker"], r["ratio_vs_textbook"],
                           r["ratio_vs_uniform"]) for r in out], [(1, 0.25, 50, 1),
                                                                  (3, 0.5, 50, 1)])
        t = report.table(report.jq_normal(out), extra_dims=("brokers",)).splitlines()
        self.assertEqual(t[0].split(), ["figure", "uniform/1w/brokers=1",
                                        "uniform/1w/brokers=3"])

    def test_table(self):
        r = report.jq_normal(self.build())
        t = report.table(r).splitlines()
        self.assertEqual(t[0].split(), ["figure", "uniform/1w", "uniform/2w", "zipf/1w",
                                        "zipf/2w"])
        self.assertEqual(t[4].split(), ["e2e_tps", "1000", "1500", "800", "900"])
        self.assertEqual(t[2].split()[-4:], ["true", "true", "true", "false"])
        self.assertTrue(t[2].startswith("clean (no other consumer)     true  "))
        self.assertIn("ratio_vs_broker_1_per_msg", t[12])
        self.assertEqual(t[12].split()[1:], ["-"] * 4)
        self.assertEqual(len(t), 1 + len(report.ROWS))

    def test_fmt_as_jq(self):
        self.assertEqual([report.fmt(v) for v in (None, 3, 3.0, 0.123456, 12.345, True)],
                         ["-", "3", "3", "0.1235", "12.35", "true"])

    def test_columns_as_column_t(self):
        self.assertEqual(report.columns([["a", "bb", "c"], ["ccc", "", "dd"]]),
                         "a    bb  c\nccc      dd\n")


class Reconciler(unittest.TestCase):
    def test_marginals_and_target(self):
        a = reconcile.scaling_entry(1000000, 1000050, "d2", 31.31, 39316, 0, "balanced")
        b = reconcile.scaling_entry(100000, 100050, "d1", 24.72, 39360, 0, "balanced")
        self.assertEqual(b["seconds_per_million"], 247.08)
        out = reconcile.with_marginals([a, b])
        self.assertEqual([e["size"] for e in out], [100000, 1000000])
        self.assertIsNone(out[0]["marginal_seconds_per_million"])
        self.assertEqual(out[1]["marginal_seconds_per_million"], 7.32)
        self.assertIs(out[1]["target_1m_under_30s_512mib"], False)
        self.assertIsNone(out[0]["target_1m_under_30s_512mib"])

    def test_breaks_text(self):
        t = reconcile.breaks_text({"counts": {"breaks": {"missing": 2, "extra": 0}},
                                   "breaks": [{"category": "missing", "id": "other:1"}]}, "p:")
        self.assertIn("breaks: missing=2\n", t)
        self.assertIn("no example names an id of this run", t)


class Figures(unittest.TestCase):
    def test_scrape_sum(self):
        m1 = ('payq_worker_transfers_total{status="posted"} 90\n'
              'payq_worker_transfers_total{status="rejected"} 10\n'
              "payq_worker_batches_total 4\npayq_worker_batch_size_sum 100\n"
              "payq_worker_batch_size_count 4\npayq_worker_commit_ms_sum 10\n"
              "payq_worker_commit_ms_count 3\n")
        self.assertEqual(runs.scrape_sum([m1, m1]), (200, 8, 25.0, 3.33))
        self.assertEqual(runs.scrape_sum([""]), (0, 0, None, None))

    def test_fdiv_and_funding(self):
        self.assertEqual(runs.fdiv(2000, 1.718, 0), 1164)
        self.assertEqual(runs.fdiv(1718, 1000, 3), 1.718)
        self.assertIsNone(runs.fdiv(1, 0))
        self.assertEqual(runs.funding_for(200000, 50), 2000001)


class Failover(unittest.TestCase):
    """scripts/bench.d/failover is optional: absent, nothing; present, its
    JSON object; a failure or non-object output is an error of the bench."""

    def run_with(self, script):
        here = tempfile.mkdtemp()
        out = tempfile.mkdtemp()
        if script is not None:
            path = os.path.join(here, "failover")
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + script)
            os.chmod(path, 0o755)
        u = ui.Ui(io.StringIO())
        return failover.measure(here, out, dict(os.environ), u), u, out

    def test_absent_is_skipped(self):
        obj, u, _ = self.run_with(None)
        self.assertIsNone(obj)
        self.assertFalse(u.failed)

    def test_present_gives_its_object(self):
        obj, u, out = self.run_with('echo "{\\"recovery_s\\": 21.5, \\"out\\": \\"$PAYQ_BENCH_OUT\\"}"')
        self.assertEqual(obj, {"recovery_s": 21.5, "out": os.path.join(out, "runs", "failover")})
        self.assertFalse(u.failed)

    def test_failure_and_bad_output_are_errors(self):
        for script in ("exit 3", "echo '[1]'"):
            obj, u, _ = self.run_with(script)
            self.assertIsNone(obj)
            self.assertTrue(u.failed, script)


if __name__ == "__main__":
    unittest.main()


class ResultEvents(unittest.TestCase):
    """--result-events (payqbench/events.py): the outcome events' cost."""

    def test_option(self):
        self.assertEqual(cli.parse([]).events_list, [])
        self.assertEqual(cli.parse(["--result-events", "on,off,on"]).events_list, ["on", "off"])
        self.assertEqual(cli.parse(["--result-events=off"]).events_list, ["off"])
        for argv, msg in ((["--result-events", "yes"],
                           "--result-events takes on and/or off, not 'yes'"),
                          (["--result-events", ""], "empty --result-events"),
                          (["--result-events"], "--result-events needs a value")):
            with self.assertRaises(cli.UsageError) as e:
                cli.parse(argv)
            self.assertEqual(str(e.exception), msg)

    def test_dimension_outside_skew_inside_brokers(self):
        dims = main.dimensions(cli.parse(["--result-events", "on,off", "--brokers", "1",
                                          "--workers", "2"]))
        self.assertEqual([d.name for d, _ in dims], ["brokers", "result_events", "skew",
                                                     "workers"])
        specs = matrix.plan(dims, 10, 5)
        self.assertEqual([s.tag() for s in specs],
                         ["1b-ev-on-uniform-textbook", "1b-ev-on-uniform-2w",
                          "1b-ev-off-uniform-textbook", "1b-ev-off-uniform-2w"])
        self.assertEqual(specs[3].values["result_events"], "off")
        self.assertNotIn("result_events",
                         [d.name for d, _ in main.dimensions(cli.parse([]))])

    def test_config_variants(self):
        with open(os.path.join(SRC, "config", "payq.yaml")) as f:
            base = f.read()
        self.assertIn("\n  result_events: true\n", base)
        off = events.config_text(base, "off")
        self.assertIn("\n  result_events: false\n", off)
        self.assertEqual(off.replace("result_events: false", "result_events: true"), base)
        with self.assertRaises(ValueError):
            events.config_text("worker:\n  batch_max: 1\n", "off")
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "payq.yaml")
            with open(cfg, "w") as f:
                f.write(base)
            plain = matrix.RunSpec("payq", {"skew": "uniform", "workers": 1}, 1)
            self.assertEqual(events.config_for(cfg, plain), cfg)
            self.assertEqual(events.id_part(plain), "")
            spec = matrix.RunSpec("payq", {"result_events": "off", "skew": "uniform",
                                           "workers": 1}, 1)
            path = events.config_for(cfg, spec)
            self.assertEqual(events.id_part(spec), "-evoff")
            self.assertEqual(path, os.path.join(d, "payq-events-off.yaml"))
            with open(path) as f:
                self.assertEqual(f.read(), off)

    def test_cost_rows_pair_runs_that_agree_on_the_rest(self):
        res = [dict(run_fig("uniform", 1, 1000), result_events="on"),
               dict(run_fig("uniform", 2, 1600), result_events="on"),
               dict(run_fig("uniform", 1, 1250), result_events="off"),
               dict(run_fig("uniform", 2, 2000), result_events="off"),
               dict(run_fig("zipf", 1, 900), result_events="on")]
        rows = events.cost_rows(res, report.ratio)
        self.assertEqual(rows[0][:4], ["result_events_cost", "e2e_tps_events_on",
                                       "e2e_tps_events_off", "on_vs_off"])
        self.assertEqual([r[:4] for r in rows[1:]], [["uniform/1w", "1000", "1250", "0.8"],
                                                     ["uniform/2w", "1600", "2000", "0.8"]])
        self.assertEqual(events.cost_rows([run_fig("uniform", 1, 1)], report.ratio), [])
        self.assertEqual(events.charted(res, ["on", "off"]), [res[0], res[1], res[4]])
        self.assertEqual(events.charted(res, []), res)

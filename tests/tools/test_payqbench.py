"""Unit tests of the pure parts of scripts/bench (scripts/bench.d/payqbench):
percentiles and rounding as PostgreSQL computes them, the CDF the chart
draws, the command line, the run matrix, the reconciler-scaling figures,
results.json (keys and comparisons), the table and the WAL segment
arithmetic. No servers.
Run: ctest --test-dir build -R bench_py_unit, or PYTHONPATH=scripts/bench.d
python3 -m unittest discover -s tests/tools -p test_payqbench.py"""

import io
import json
import os
import subprocess
import tempfile
import time
import unittest

from payqbench import (cli, dbwork, events, failover, history, http, latency, ledger, main,
                       matrix, reconcile, reconday, report, runs, ui, wal)

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

    def test_whole_batches(self):
        # Three batches of 4 rows, one every 100 ms, each written over 40 ms:
        # first to last committed_at is 240 ms for 12 rows (50/s), the two
        # whole cycles 200 ms for 8 (40/s, the real rate).
        rows = [latency.Row(0.0, 1000.0 + b * 100 + i * 10, 0.0, "posted", "", False, str(b))
                for b in range(3) for i in range(5) if i != 2]
        self.assertEqual(latency.whole_batches(rows), (8, 200.0))
        self.assertEqual(latency.measure(rows)["whole_batches"], (8, 200.0))
        self.assertIsNone(latency.whole_batches(rows[:4]))  # one transaction
        self.assertIsNone(latency.whole_batches([latency.Row(0, 1, 1, "posted", "", False)]))

    def test_windows_show_a_stall(self):
        # 1 ms apart, latency 10 ms, except 400 ms for those published
        # between 1000 and 1099 ms: only the third window shows it.
        rows = [latency.Row(5000.0 + i, 0.0, 400.0 if 1000 <= i < 1100 else 10.0, "posted", "",
                            False) for i in range(1500)]
        wins = latency.windows(rows)
        self.assertEqual([w[0] for w in wins], [0, 500, 1000])
        self.assertEqual([w[1] for w in wins], [500, 500, 500])
        self.assertEqual(wins[0][2:], (10.0, 10.0, 10.0))
        self.assertEqual(wins[2][3:], (400.0, 400.0))
        self.assertEqual(wins[2][2], 10.0)  # the median of that window is still fast
        self.assertEqual(latency.windows([]), [])
        self.assertEqual(latency.format_windows(wins[:1]),
                         "offset_ms\tcount\tp50_ms\tp99_ms\tmax_ms\n0\t500\t10.0\t10.0\t10.0\n")

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

    def test_wal_as_found(self):
        self.assertFalse(cli.parse([]).wal_as_found)
        self.assertTrue(cli.parse(["--wal-as-found"]).wal_as_found)

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



class LedgerAccounts(unittest.TestCase):
    def test_option_parses_ascending_once(self):
        self.assertEqual(cli.parse([]).ledger_list, [])
        self.assertEqual(cli.parse(["--ledger-accounts", "1000000,0,1000000"]).ledger_list,
                         [0, 1000000])
        self.assertEqual(cli.parse(["--ledger-accounts=0"]).ledger_list, [0])
        for bad in ("", "-1", "1e6", "01", "x", "200000000"):
            with self.assertRaises(cli.UsageError, msg=bad):
                cli.parse(["--ledger-accounts", bad])

    def test_dimension_after_brokers_before_skew(self):
        dims = main.dimensions(cli.parse(["--ledger-accounts", "1000000,0", "--skew",
                                          "uniform,hot", "--workers", "1,2"]))
        self.assertEqual([d.name for d, _ in dims], ["ledger_accounts", "skew", "workers"])
        specs = matrix.plan(dims, 10, 5)
        # every run of the small ledger before any of the large one
        self.assertEqual([s.tag() for s in specs], [
            "la0-uniform-textbook", "la0-uniform-1w", "la0-uniform-2w",
            "la0-hot-textbook", "la0-hot-1w", "la0-hot-2w",
            "la1000000-uniform-textbook", "la1000000-uniform-1w", "la1000000-uniform-2w",
            "la1000000-hot-textbook", "la1000000-hot-1w", "la1000000-hot-2w"])
        self.assertEqual(specs[7].values, {"ledger_accounts": 1000000, "skew": "uniform",
                                           "workers": 1})
        dims = main.dimensions(cli.parse(["--ledger-accounts", "0,5", "--brokers", "1,3"]))
        self.assertEqual([d.name for d, _ in dims],
                         ["brokers", "ledger_accounts", "skew", "workers"])

    def test_smallest_size_again_after_the_largest(self):
        opts = cli.parse(["--ledger-accounts", "1000000,0", "--workers", "1,2",
                          "--brokers", "1,3"])
        specs = ledger.with_return(matrix.plan(main.dimensions(opts), 10, 5), opts.ledger_list)
        self.assertEqual([s.tag() for s in specs], [
            "1b-la0-uniform-textbook", "1b-la0-uniform-1w", "1b-la0-uniform-2w",
            "1b-la1000000-uniform-textbook", "1b-la1000000-uniform-1w",
            "1b-la1000000-uniform-2w", "1b-la0-again-uniform-1w", "1b-la0-again-uniform-2w",
            "3b-la0-uniform-textbook", "3b-la0-uniform-1w", "3b-la0-uniform-2w",
            "3b-la1000000-uniform-textbook", "3b-la1000000-uniform-1w",
            "3b-la1000000-uniform-2w", "3b-la0-again-uniform-1w", "3b-la0-again-uniform-2w"])
        self.assertEqual([s.values["ledger_pass"] for s in specs[:8]], [1] * 6 + [2] * 2)
        self.assertEqual(specs[6].values, {"brokers": 1, "ledger_accounts": 0,
                                           "ledger_pass": 2, "skew": "uniform", "workers": 1})
        self.assertEqual(specs[6].kind, "payq")
        # one shape stays one block of runs (main.shapes cuts by brokers)
        self.assertEqual([n for n, _ in main.shapes(specs, opts.broker_list)], [1, 3])
        self.assertEqual(len(main.shapes(specs, opts.broker_list)[0][1]), 8)
        # one size: nothing again, no ledger_pass key
        one = cli.parse(["--ledger-accounts", "0"]).ledger_list
        plain = matrix.plan(main.dimensions(cli.parse(["--ledger-accounts", "0"])), 10, 5)
        self.assertIs(ledger.with_return(plain, one), plain)
        self.assertNotIn("ledger_pass", plain[1].values)
        self.assertEqual(ledger.group_dims(["ledger_accounts", "skew"], [0]),
                         ("ledger_accounts", "skew"))
        self.assertEqual(ledger.group_dims(["ledger_accounts", "skew"], [0, 5]),
                         ("ledger_accounts", "skew", "ledger_pass"))

    def test_second_pass_shares_the_textbook(self):
        names = ("ledger_accounts", "skew", "ledger_pass")
        tb = ledger.share_textbook({(0, "uniform", 1): "t0", (5, "uniform", 1): "t5"}, names)
        self.assertEqual(tb, {(0, "uniform", 1): "t0", (5, "uniform", 1): "t5",
                              (0, "uniform", 2): "t0", (5, "uniform", 2): "t5"})
        self.assertEqual(ledger.share_textbook({(0, "uniform"): "t"}, names[:2]),
                         {(0, "uniform"): "t"})

    def test_ratios_against_the_mean_of_both_passes(self):
        runs_ = []
        for la, p, tps, cpu in ((0, 1, 20000, 20.0), (1000000, 1, 17000, 21.0),
                                (0, 2, 16000, None)):
            runs_.append(dict(run_fig("uniform", 1, 1000), ledger_accounts=la, ledger_pass=p,
                              drain_tps=tps, backend_cpu_us_per_transfer=cpu,
                              db_blocks_per_transfer=20.0))
        tb = ledger.share_textbook({(la, "uniform", 1): dict(run_fig("uniform", 1, 20),
                                                             kind="textbook")
                                    for la in (0, 1000000)},
                                   ("ledger_accounts", "skew", "ledger_pass"))
        res = report.build_results(runs_, tb, None, None, MACHINE, PARAMS, "1",
                                   dims=("ledger_accounts", "skew", "ledger_pass"))
        res = ledger.add_comparisons(res)
        # the base is (20000 + 16000) / 2: the larger ledger is 17000 / 18000
        self.assertEqual([r["drain_ratio_vs_smallest_ledger"] for r in res], [1.11, 0.94, 0.89])
        # a base run without the figure leaves the mean of the others
        self.assertEqual([r["backend_cpu_ratio_vs_smallest_ledger"] for r in res],
                         [1.0, 1.05, None])
        self.assertEqual([r["ledger_ratio_base_runs"] for r in res], [2, 2, 2])
        self.assertEqual(res[2]["textbook_tps"], 20)
        self.assertEqual(res[2]["scaling_base_workers"], 1)
        text = report.table(report.jq_normal(res), extra_dims=("ledger_accounts", "ledger_pass"))
        self.assertIn("uniform/1w/ledger_accounts=0/ledger_pass=2", text)

    def test_id_suffix_keeps_sizes_apart(self):
        self.assertNotEqual(ledger.id_suffix(0), ledger.id_suffix(1000000))
        # one length for every size: the compared runs' rows are equally long
        self.assertEqual(len(ledger.id_suffix(0)), len(ledger.id_suffix(ledger.MAX)))
        self.assertEqual(ledger.id_suffix(1000000), "-la001000000")
        self.assertEqual(ledger.id_suffix(0, 2), "-lb000000000")  # the second pass, as long
        self.assertRegex("bench-12011812160348-up1" + ledger.id_suffix(1000000),
                         r"^[A-Za-z0-9._:-]{1,40}$")

    def test_fill_sql_continues_the_filler_ids_as_owner(self):
        sql = ledger.fill_sql(5, 1000000)
        self.assertIn("SET ROLE payq_owner", sql)
        self.assertIn("generate_series(6, 1000005)", sql)
        self.assertIn("'bench-ledger:' || g", sql)
        self.assertNotIn("VACUUM", sql)  # not in psql -c's implicit transaction

    def test_ensure_adds_only_what_is_missing(self):
        class FakeStack:
            def __init__(self, present, filler):
                self.present, self.filler, self.sql = present, filler, []

            def q1(self, sql):
                return str(self.filler if "LIKE" in sql else self.present)

            def q(self, sql, timeout=None):
                self.sql.append(sql)
                self.present += 700 if "INSERT" in sql else 0

        log = ui.Ui(io.StringIO())
        st = FakeStack(300, 10)
        self.assertEqual(ledger.ensure(st, 1000, log), 1000)
        self.assertEqual(st.sql, [ledger.fill_sql(10, 700), ledger.VACUUM_SQL])
        st = FakeStack(5000, 0)  # no filler to remove: other accounts stay
        self.assertEqual(ledger.ensure(st, 1000, log), 5000)
        self.assertEqual(st.sql, [])
        st = FakeStack(1005000, 1000000)
        st.q = lambda sql, timeout=None: (st.sql.append(sql), setattr(st, "present", 5000))
        self.assertEqual(ledger.ensure(st, 0, log), 5000)
        self.assertEqual(st.sql, [ledger.shrink_sql(1000000, 1000000), ledger.VACUUM_SQL])
        self.assertIn("substr(id, 14)::bigint > 0", st.sql[0])
        self.assertIn("id LIKE 'bench-ledger:%'", st.sql[0])

    def test_results_carry_the_size_and_the_comparison(self):
        runs_ = []
        for la in (0, 1000000):
            for w in (1, 2):
                r = dict(run_fig("uniform", w, 1000), ledger_accounts=la,
                         drain_tps=10000 * w - (1000 if la else 0),
                         backend_cpu_us_per_transfer=(22.0 if la else 20.0) if w == 1 else None,
                         db_blocks_per_transfer=20.4 if la else 20.0)
                runs_.append(r)
        tb = {(la, "uniform"): dict(run_fig("uniform", 1, 20), kind="textbook")
              for la in (0, 1000000)}
        res = report.build_results(runs_, tb, None, None, MACHINE, PARAMS, "1",
                                   dims=("ledger_accounts", "skew"))
        res = ledger.add_comparisons(res)
        self.assertEqual([(r["ledger_accounts"], r["workers"], r["drain_ratio_vs_smallest_ledger"])
                          for r in res], [(0, 1, 1.0), (0, 2, 1.0), (1000000, 1, 0.9),
                                          (1000000, 2, 0.95)])
        self.assertEqual([(r["backend_cpu_ratio_vs_smallest_ledger"],
                           r["db_blocks_ratio_vs_smallest_ledger"]) for r in res],
                         [(1.0, 1.0), (None, 1.0), (1.1, 1.02), (None, 1.02)])
        self.assertEqual(res[3]["scaling_base_workers"], 1)  # per ledger size
        self.assertEqual(res[2]["textbook_tps"], 20)
        plain = ledger.add_comparisons([run_fig("uniform", 1, 1000)])
        self.assertNotIn("drain_ratio_vs_smallest_ledger", plain[0])
        text = report.table(report.jq_normal(res), extra_dims=("ledger_accounts",))
        self.assertIn("uniform/1w/ledger_accounts=1000000", text)
        rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()}
        self.assertEqual(rows["drain_ratio_vs_smallest_ledger"], ["1", "1", "0.9", "0.95"])
        self.assertEqual(rows["backend_cpu_ratio_vs_smallest_ledger"], ["1", "-", "1.1", "-"])
        self.assertEqual(rows["backend_cpu_us_per_transfer"], ["20", "-", "22", "-"])
        self.assertNotIn("drain_ratio_vs_smallest_ledger",
                         report.table(report.jq_normal([run_fig("uniform", 1, 1000)])))


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

    # Keys the bench writes that docs/bench-results.json (the last published
    # full run) does not have yet: none since the 2026-12-05 run.
    ADDED_SINCE_PUBLISHED = set()

    def test_keys_are_those_of_the_published_results(self):
        with open(os.path.join(SRC, "docs", "bench-results.json")) as f:
            published = json.load(f)[0]
        fig = runs.run_object("payq", "uniform", 1, 1000, "2091-01-29", "b", "p", 10, 1.0, 5, 5,
                              latency.measure([latency.Row(1, 2, 1, "posted", "", False)]),
                              1.0, 100, 1000, 0, 1, 1.0, 1.0,
                              dict.fromkeys(["hm", "hrate", "hreal", "h50", "h99", "hmax",
                                             "hs50", "hs99", "hsmax", "hwal"]),
                              {"secs": 1, "rss": 1, "exit": 0, "result": "balanced"}, "t", 26,
                              dbwork.per_transfer(None, None, 1000))
        tb = {("uniform",): dict(fig, kind="textbook")}
        r = report.build_results([fig], tb, {}, {}, MACHINE, dict(published["params"]),
                                 "0 0 0", recon=[], failover=published.get("failover"))[0]
        # Every published key, in its order; a key added since is listed
        # here, so that none is renamed or dropped unnoticed.
        self.assertEqual([k for k in r if k not in self.ADDED_SINCE_PUBLISHED], list(published))
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
        self.assertIn("ratio_vs_broker_1_per_msg", t[16])
        self.assertEqual(t[16].split()[1:], ["-"] * 4)
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


class ReconDay(unittest.TestCase):
    """The fast path writes the producer's canonical bodies and the worker's
    rows; integration_recon_fastday proves it against the real reconciler."""

    def test_body_is_the_canonical_encoding(self):
        # common/message.c payq_msg_encode_transfer: keys in schema order,
        # amount as a digit string, batch_id and business_date present.
        self.assertEqual(reconday.transfer_body("t-1", "a:a00001", "a:a00002", 5, "b", "2090-01-29"),
                         '{"id":"t-1","debit_account":"a:a00001","credit_account":"a:a00002",'
                         '"amount":"5","currency":"EUR","batch_id":"b","business_date":"2090-01-29"}')
        self.assertEqual(reconday.manifest_body("b", "2090-01-29", 2, 15),
                         '{"batch_id":"b","business_date":"2090-01-29","count":"2",'
                         '"totals":{"EUR":"15"}}')

    def test_copy_line_fields(self):
        f = reconday.copy_line("t-1", "d", "c", 7, "b", "2090-01-29", "ab" * 32,
                               "2026-12-01 00:00:00+00").rstrip("\n").split("\t")
        self.assertEqual(len(f), len(reconday.COPY_COLUMNS.split(",")))
        self.assertEqual(f[:8], ["t-1", "b", "d", "c", "7", "EUR", "2090-01-29", "posted"])
        self.assertEqual(f[8], "\\\\x" + "ab" * 32)  # COPY text: \\x -> bytea hex

    def test_day_is_deterministic_and_never_self_transfers(self):
        a = list(reconday.day("p", "acct", 2000, 3, 5))
        self.assertEqual(a, list(reconday.day("p", "acct", 2000, 3, 5)))
        self.assertEqual(len({t[0] for t in a}), 2000)
        self.assertTrue(all(d != c and 1 <= amt <= 100000 for _, d, c, amt in a))
        self.assertEqual({t[1] for t in a}, {"acct:a00000", "acct:a00001", "acct:a00002"})


class Figures(unittest.TestCase):
    def test_scrape_sum(self):
        m1 = ('payq_worker_transfers_total{status="posted"} 90\n'
              'payq_worker_transfers_total{status="rejected"} 10\n'
              "payq_worker_batches_total 4\npayq_worker_batch_size_sum 100\n"
              "payq_worker_batch_size_count 4\npayq_worker_commit_ms_sum 10\n"
              "payq_worker_commit_ms_count 3\n")
        self.assertEqual(runs.scrape_sum([m1, m1]), (200, 8, 25.0, 3.33))
        self.assertEqual(runs.scrape_sum([""]), (0, 0, None, None))

    def test_drain_rates(self):
        # Two batches (transactions) of two rows: 4 rows over 1.1 s; whole
        # batch cycles are the first batch's 2 rows over the 1 s to the next.
        rows = [latency.Row(0, c, 1, "posted", "", False, txid=t)
                for c, t in ((0, "1"), (100, "1"), (1000, "2"), (1100, "2"))]
        self.assertEqual(runs.drain_rates(latency.measure(rows), 4), (4, 2))
        self.assertEqual(runs.drain_rates(latency.measure([]), 0), (None, None))

    def test_fdiv_and_funding(self):
        self.assertEqual(runs.fdiv(2000, 1.718, 0), 1164)
        self.assertEqual(runs.fdiv(1718, 1000, 3), 1.718)
        self.assertIsNone(runs.fdiv(1, 0))
        self.assertEqual(runs.funding_for(200000, 50), 2000001)


class Http(unittest.TestCase):
    """scripts/bench --http: its options, wrk's line, a cell's figures,
    CPU accounting of process trees and the table."""

    def test_options(self):
        o = cli.parse(["--http"])
        self.assertTrue(o.http)
        h = http.parse(o)
        self.assertEqual((h.seconds, h.conns, h.replicas, h.sizes),
                         (20, [8, 64, 256], [1, 2], [1, 100]))
        o = cli.parse(["--http", "--http-seconds=5", "--http-conns", "64",
                       "--http-replicas", "2", "--http-sizes", "1"])
        h = http.parse(o)
        self.assertEqual((h.seconds, h.conns, h.replicas, h.sizes), (5, [64], [2], [1]))
        for bad in (["--http-replicas", "9"], ["--http-conns", "0"], ["--http-sizes", "1,x"],
                    ["--http-seconds", "5,6"]):
            with self.assertRaises(ValueError):
                http.parse(cli.parse(["--http"] + bad))
        self.assertFalse(cli.parse([]).http)

    def test_wrk_line_and_figures(self):
        out = "Running 5s test\n  2 threads\n" + json.dumps({"wrk": {
            "requests": 30000, "duration_us": 5000000, "non_2xx": 10, "socket_errors": 2,
            "p50_us": 8123, "p99_us": 45000, "max_us": 120500}}) + "\n"
        w = http.parse_wrk(out)
        self.assertEqual(w["requests"], 30000)
        self.assertIsNone(http.parse_wrk("no json here\n"))
        f = http.cell_figures(w, 100, {"haproxy": 1.5})
        self.assertEqual((f["requests_per_s"], f["transfers_per_s"]), (6000.0, 599800.0))
        self.assertEqual((f["p50_ms"], f["p99_ms"], f["max_ms"]), (8.12, 45.0, 120.5))
        self.assertEqual(f["cpu_s"], {"haproxy": 1.5})
        argv = http.wrk_argv("http://127.0.0.1:17080", 256, 5, "x.lua")
        self.assertEqual(argv[:7], ["wrk", "-t", "2", "-c", "256", "-d", "5s"])
        self.assertEqual(argv[-1], "http://127.0.0.1:17080/v1/transfers")
        self.assertEqual(http.wrk_argv("u", 1, 5, "x.lua")[2], "1")

    def test_cpu_of_this_process_tree(self):
        me = os.getpid()
        a = http.sample({"me": me})
        t = time.process_time() + 0.2
        while time.process_time() < t:
            pass
        b = http.sample({"me": me, "gone": 2 ** 22 + 7})
        cpu = http.cpu_seconds(a, b)
        self.assertEqual(list(cpu), ["me"])
        self.assertGreaterEqual(cpu["me"], 0.1)
        self.assertIsNone(http.proc_ticks(2 ** 22 + 7))
        self.assertIn(me, http.descendants(me))

    def test_table(self):
        cells = [{"replicas": 1, "size": 1, "connections": 64, "requests_per_s": 900.5,
                  "transfers_per_s": 900.5, "p50_ms": 60, "p99_ms": 200, "max_ms": 300,
                  "non_2xx": 0, "socket_errors": 0, "cpu_s": {"replica-1": 3.2, "haproxy": 0.4}}]
        t = http.table(cells, {"1 transfer per message": {"e2e_tps": 4719},
                               "packs of 100": None})
        self.assertIn("| replicas | transfers/request | connections |", t)
        self.assertIn("CPU s replica-1 | CPU s haproxy |", t)
        self.assertIn("| errors | replica peak RSS MiB | CPU s", t)
        self.assertIn("| 1 | 1 | 64 | 900.5 | 900.5 | 60 | 200 | 300 | 0 | 0 | - | 3.2 | 0.4 |", t)
        self.assertIn("raw-broker ceiling, 1 transfer per message: 4719 transfers/s", t)
        self.assertIn("raw-broker ceiling, packs of 100: failed\n", t)


    def test_peak_rss(self):
        cell = {"replica_peak_rss_kb": {"replica-1": 20480, "replica-2": 31744, "replica-3": None},
                "replica_peak_rss_since_start": False}
        self.assertEqual(http.peak_rss_mib(cell), "31.0")
        cell["replica_peak_rss_since_start"] = True
        self.assertEqual(http.peak_rss_mib(cell), "<=31.0")
        self.assertEqual(http.peak_rss_mib({"replica_peak_rss_kb": {"replica-1": None}}), "-")
        # This process: a peak at least its RSS now, and one that can start again.
        me = os.getpid()
        before = http.peak_rss_kb(me)
        self.assertGreater(before, 0)
        self.assertTrue(http.reset_peak_rss(me))
        self.assertLessEqual(http.peak_rss_kb(me), before)
        self.assertIsNone(http.peak_rss_kb(2 ** 22 + 7))
        self.assertFalse(http.reset_peak_rss(2 ** 22 + 7))
        self.assertEqual(http.replica_pids({"replica-1": 5, "haproxy": 6}), {"replica-1": 5})


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
        return failover.measure(here, out, dict(os.environ), "2091-01-30", u), u, out

    def test_absent_is_skipped(self):
        obj, u, _ = self.run_with(None)
        self.assertIsNone(obj)
        self.assertFalse(u.failed)

    def test_present_gives_its_object(self):
        obj, u, out = self.run_with('echo "{\\"recovery_s\\": 21.5, \\"out\\": \\"$PAYQ_BENCH_OUT\\", '
                                    '\\"date\\": \\"$PAYQ_BENCH_DATE\\"}"')
        self.assertEqual(obj, {"recovery_s": 21.5, "out": os.path.join(out, "runs", "failover"),
                               "date": "2091-01-30"})
        self.assertFalse(u.failed)

    def test_failure_and_bad_output_are_errors(self):
        for script in ("exit 3", "echo '[1]'"):
            obj, u, _ = self.run_with(script)
            self.assertIsNone(obj)
            self.assertTrue(u.failed, script)



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


class Wal(unittest.TestCase):
    SEG = 16 * 1024 * 1024

    def test_segment_of_matches_pg_walfile_name(self):
        # SELECT pg_walfile_name('0/1D824CB8') -> 00000001000000000000001D;
        # '1/FF000001' -> ...00000001000000FF; '2/10' -> ...0000000200000000.
        self.assertEqual(wal.segment_of("0/1D824CB8", self.SEG), "000000000000001D")
        self.assertEqual(wal.segment_of("1/FF000001", self.SEG), "00000001000000FF")
        self.assertEqual(wal.segment_of("2/10", self.SEG), "0000000200000000")
        # At a boundary, the segment that begins there (pg_walfile_name names
        # the one that ends there): the next byte is written into it.
        self.assertEqual(wal.segment_of("2/0", self.SEG), "0000000200000000")
        # 64 MB segments: 0x100000000 / 64 MB = 64 segments per log file.
        self.assertEqual(wal.segment_of("0/C0000000", 64 * 1024 * 1024), "0000000000000030")

    def test_count_segments_splits_at_the_current_one_across_timelines(self):
        names = ["00000001000000000000001C", "00000001000000000000001D",
                 "00000002000000000000001E", "00000001000000000000001F",
                 "00000002.history", "00000001000000000000001B.partial", "archive_status"]
        self.assertEqual(wal.count_segments(names, "000000000000001D"), (2, 2))

    def test_switches_needed(self):
        self.assertEqual(wal.switches_needed([40, 60, 60], 128, 32), 120)
        self.assertEqual(wal.switches_needed([170, 200], 128, 32), 0)
        # An aged node a checkpoint left a little short: no churn.
        self.assertEqual(wal.switches_needed([150, 160], 128, 32), 0)
        self.assertEqual(wal.switches_needed([143, 160], 128, 32), 17)
        self.assertEqual(wal.switches_needed([], 128, 32), 0)


class DbWork(unittest.TestCase):
    """dbwork: a batch's work per transfer from two pg_stat_statements
    totals and the backends' CPU."""

    def test_cpu_ticks_counts_past_a_command_with_spaces_and_parens(self):
        line = ("4242 (postgres: payq_worker payq (x) 127.0.0.1(5) idle) S 1 4242 4242 0 -1 "
                "4194304 900 0 0 0 1234 56 0 0 20 0 1 0 100 0 0")
        self.assertEqual(dbwork.cpu_ticks(line), 1234 + 56)

    BEFORE = {"1": (10, 100, 1000, 10, 5.0, "INSERT INTO payq.transfers"),
              "2": (10, 0, 0, 0, 0.5, "COMMIT")}
    AFTER = {"1": (36, 30100, 1001000, 6410, 4005.0, "INSERT INTO payq.transfers"),
             "2": (36, 0, 0, 0, 1000.5, "COMMIT"),
             "3": (26, 10000, 260000, 4000, 1000.0, "UPDATE payq.accounts"),
             "4": (2, 10, 0, 0, 0.1, "SELECT 1")}

    def test_delta_keeps_what_ran_in_between(self):
        d = dbwork.delta(dict(self.BEFORE, **{"4": (2, 10, 0, 0, 0.1, "SELECT 1")}), self.AFTER)
        self.assertEqual(sorted(d), ["1", "2", "3"])
        self.assertEqual(d["1"], (26, 30000, 1000000, 6400, 4000.0, "INSERT INTO payq.transfers"))
        self.assertEqual(d["3"], self.AFTER["3"])

    def test_per_transfer(self):
        d = dbwork.delta(self.BEFORE, self.AFTER)
        w = dbwork.per_transfer(d, 2.5, 200000)
        self.assertEqual(w, {"db_blocks_per_transfer": 0.2, "db_wal_bytes_per_transfer": 6.3,
                             "db_wal_records_per_transfer": 0.05,
                             "db_exec_us_per_transfer": 30.0,
                             "backend_cpu_us_per_transfer": 12.5})
        self.assertEqual(list(w), list(dbwork.KEYS))
        text = dbwork.format_statements(d, 200000)
        self.assertEqual(text.splitlines()[1].split()[:4], ["26", "0.15", "5.0", "20.00"])
        self.assertTrue(text.splitlines()[1].endswith("INSERT INTO payq.transfers"))

    def test_a_count_that_went_down_gives_none_not_a_wrong_figure(self):
        # a reset or a new leader between the two readings
        self.assertIsNone(dbwork.delta(self.AFTER, self.BEFORE))
        self.assertIsNone(dbwork.delta(None, self.AFTER))
        w = dbwork.per_transfer(None, 1.0, 1000)
        self.assertIsNone(w["db_blocks_per_transfer"])
        self.assertEqual(w["backend_cpu_us_per_transfer"], 1000.0)
        self.assertEqual(dbwork.per_transfer(dbwork.delta(self.BEFORE, self.AFTER), 1.0, 0),
                         dict.fromkeys(dbwork.KEYS))


class History(unittest.TestCase):
    RUN = {"kind": "payq", "skew": "uniform", "workers": 1, "e2e_tps": 29099.4,
           "drain_tps": 31148, "backlog_drain_tps": None,
           "half_load_steady_latency_p99_ms": 41.66, "broker_ceiling_one_per_message_tps": 14045,
           "textbook_tps": 238.2,
           "machine": {"date": "2026-12-06T04:31:48Z", "cpu": "Intel(R) Xeon(R) Processor",
                       "loadavg_at_start": "1.55 2.00 2.07"},
           "params": {"git_revision": "cdc6421"},
           "recon_scaling": [{"size": 100000, "seconds": 3.64}, {"size": 1000000, "seconds": 8.74}]}

    def test_row_from_the_one_worker_uniform_run(self):
        other = dict(self.RUN, skew="hot", half_load_steady_latency_p99_ms=140.0)
        textbook = dict(self.RUN, kind="textbook", half_load_steady_latency_p99_ms=None)
        self.assertEqual(history.row([self.RUN, other, textbook]),
                         ["2026-12-06", "Intel Xeon", "cdc6421", "1.55", "29,099", "31,148", "-",
                          "41.7", "1 of 2", "8.7", "14,045", "238"])
        # A run without the steady p99 (older benches): not counted as met.
        old = dict(self.RUN, half_load_steady_latency_p99_ms=None, recon_scaling=[])
        self.assertEqual(history.row([old])[7:10], ["-", "-", "-"])
        self.assertIsNone(history.row([other]))

    def test_render_newest_first(self):
        older = dict(self.RUN, machine=dict(self.RUN["machine"], date="2026-12-05T21:21:50Z"))
        doc = history.render([[self.RUN], [older], [dict(self.RUN, workers=2)]])
        rows = [line for line in doc.splitlines() if line.startswith("| 2026")]
        self.assertEqual([r.split(" | ")[0] for r in rows], ["| 2026-12-06", "| 2026-12-05"])
        self.assertIn("| " + " | ".join(history.COLUMNS) + " |", doc)

    def test_published_document_is_current(self):
        # docs/bench-history.md is what the module writes from the git
        # history of docs/bench-results.json: publishing a run without
        # regenerating it fails here. Needs the whole history.
        try:
            shallow = subprocess.run(["git", "-C", SRC, "rev-parse", "--is-shallow-repository"],
                                     capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            self.skipTest("not a git checkout")
        if shallow == "true":
            self.skipTest("a shallow clone has not the whole history")
        with open(os.path.join(SRC, "docs", "bench-history.md")) as f:
            self.assertEqual(f.read(), history.render(history.published(SRC)))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""Offline checks of deploy/prometheus and deploy/grafana with promtool.

  check_prometheus.py rules      promtool check rules and check config; every
                                 alert has summary, reason and runbook_url and a
                                 runbook line in the README; promtool test rules
                                 on tests/deploy/prometheus_rules.test.yml; then,
                                 alert by alert, a copy of the rules where the
                                 alert never fires and one where it always fires
                                 must each FAIL the tests (so every alert has a
                                 case that fires and one that stays quiet).
  check_prometheus.py dashboard  every PromQL expression of
                                 deploy/grafana/payq.json, as a recording rule
                                 in a generated file, passes promtool check rules.
Exit 0 when every check passes, 1 otherwise (each failure printed).
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("PAYQ_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(SRC, "deploy/prometheus/payq.rules.yml")
PROM_YML = os.path.join(SRC, "deploy/prometheus/prometheus.yml")
TESTS = [os.path.join(SRC, "tests/deploy", f)
         for f in ("prometheus_rules.test.yml", "prometheus_rules_daily.test.yml")]
DASHBOARD = os.path.join(SRC, "deploy/grafana/payq.json")
README = os.path.join(SRC, "README.md")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL - " + msg, flush=True)


def ok(msg):
    print("ok   - " + msg, flush=True)


def promtool(*args):
    p = subprocess.run(["promtool", *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def alerts_of(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def write_yaml(path, doc):
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)


def tests_with_annotations(path, rules, rules_path, only=None):
    """The test file with rule_files pointing at rules_path and every expected
    alert given its rule's annotations (static prose, copied verbatim). With
    only, just the test groups that check that alert."""
    with open(path) as f:
        spec = yaml.safe_load(f)
    ann = {a["alert"]: a.get("annotations", {}) for a in alerts_of(rules)}
    spec["rule_files"] = [rules_path]
    if only:
        spec["tests"] = [t for t in spec["tests"]
                         if any(c["alertname"] == only for c in t.get("alert_rule_test", []))]
    for t in spec["tests"]:
        for case in t.get("alert_rule_test", []):
            for exp in case.get("exp_alerts") or []:
                exp.setdefault("exp_annotations", ann.get(case["alertname"], {}))
    return spec


def run_tests(tmp, rules, tag, only=None):
    """promtool test rules on every test file; (0, out) if all pass."""
    rpath = os.path.join(tmp, "rules-%s.yml" % tag)
    write_yaml(rpath, rules)
    rc_all, outs = 0, []
    for i, path in enumerate(TESTS):
        spec = tests_with_annotations(path, rules, rpath, only)
        if not spec["tests"]:
            continue
        tpath = os.path.join(tmp, "tests-%s-%d.yml" % (tag, i))
        write_yaml(tpath, spec)
        rc, out = promtool("test", "rules", tpath)
        rc_all |= rc
        outs.append(out)
    return rc_all, "".join(outs)


def check_rules():
    rc, out = promtool("check", "rules", RULES)
    (ok if rc == 0 else fail)("promtool check rules %s: %s" % (RULES, out.strip().splitlines()[-1]))
    with open(RULES) as f:
        rules = yaml.safe_load(f)
    with open(README) as f:
        readme = f.read()
    section = readme.split("## Operating payq", 1)[-1].split("\n## ", 1)[0]
    names = [a["alert"] for a in alerts_of(rules)]
    for a in alerts_of(rules):
        missing = [k for k in ("summary", "reason", "runbook_url") if not a.get("annotations", {}).get(k)]
        if missing:
            fail("%s lacks annotations %s" % (a["alert"], missing))
        if not re.search(r"^\|?\s*`%s`" % a["alert"], section, re.M):
            fail("%s has no runbook line in README 'Operating payq'" % a["alert"])
    ok("%d alerts checked for annotations and README runbook lines" % len(names))

    with tempfile.TemporaryDirectory() as tmp:
        # promtool check config resolves rule_files relative to the config.
        with open(PROM_YML) as f:
            conf = f.read()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(conf)
        write_yaml(os.path.join(tmp, "payq.rules.yml"), rules)
        rc, out = promtool("check", "config", os.path.join(tmp, "prometheus.yml"))
        (ok if rc == 0 else fail)("promtool check config prometheus.yml" + ("" if rc == 0 else ": " + out))

        rc, out = run_tests(tmp, rules, "real")
        (ok if rc == 0 else fail)("promtool test rules: every case passes" + ("" if rc == 0 else ":\n" + out))
        for name in names:
            for mode, expr in (("never fires", "vector(1) == 0"), ("always fires", "vector(1)")):
                mutant = copy.deepcopy(rules)
                for a in alerts_of(mutant):
                    if a["alert"] == name:
                        a["expr"] = expr
                        a.pop("for", None)
                rc, out = run_tests(tmp, mutant, "mutant", only=name)
                if rc == 0:
                    fail("%s: the tests still pass when it %s (no case catches it)" % (name, mode))
        ok("each of %d alerts: the tests fail when it never fires and when it always fires" % len(names))


# Grafana's template variables, replaced by values promtool accepts.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                "${__rate_interval}": "5m", "$instance": ".*", "$job": ".*"}


def dashboard_exprs(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    return out


def promql_for_rules(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    return expr


def check_dashboard():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = dashboard_exprs(dash)
    if len(exprs) < 10:
        fail("dashboard has only %d expressions" % len(exprs))
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "payq_dashboard:expr_%d" % i, "expr": promql_for_rules(e)}
        for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard.rules.yml")
        write_yaml(path, rules)
        rc, out = promtool("check", "rules", path)
        if rc == 0:
            ok("promtool check rules: all %d dashboard expressions parse" % len(exprs))
        else:
            fail("dashboard expressions do not parse:\n" + out)
            for i, (title, e) in enumerate(exprs):
                print("  expr_%d (%s): %s" % (i, title, e))
        # The same check must refuse a broken expression (promtool really ran).
        write_yaml(path, {"groups": [{"name": "broken", "rules": [
            {"record": "payq_dashboard:broken", "expr": "sum(rate(payq_worker_batches_total[5m])"}]}]})
        rc, _ = promtool("check", "rules", path)
        (ok if rc != 0 else fail)("a broken expression fails the same check")
    # What the dashboard must show, by the series it reads.
    text = "\n".join(e for _, e in exprs)
    for what, series in (
            ("intake rate", "payq_producer_http_requests_total"),
            ("intake latency", "payq_producer_http_request_duration_seconds_bucket"),
            ("queue depth", "payq:transfers_depth"),
            ("queue age", "payq_worker_intake_to_commit_seconds_bucket"),
            ("commit rate", "payq_worker_batches_total"),
            ("batch size", "payq_worker_batch_size_sum"),
            ("rejection reasons", 'status="rejected"'),
            ("dead letters", "payq_worker_dead_letters_total"),
            ("dead letters queued", "payq:dead_depth"),
            ("replication state", "pg_payq_node_sync_standbys"),
            ("reconciliation result", "payq_recon_last_run_balanced"),
            ("reconciliation breaks", "payq_recon_breaks")):
        if series not in text:
            fail("dashboard shows no %s (%s)" % (what, series))
    titles = {p.get("title") for p in dash["panels"]}
    ok("dashboard panels: %s" % ", ".join(sorted(t for t in titles if t)))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "rules":
        check_rules()
    elif mode == "dashboard":
        check_dashboard()
    elif mode == "exprs":  # for the integration test: one expression a line
        with open(DASHBOARD) as f:
            for _, e in dashboard_exprs(json.load(f)):
                print(json.dumps(promql_for_rules(e)))
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print("%s: %d failure(s)" % (mode, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

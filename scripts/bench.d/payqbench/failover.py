"""failover: the optional failover figure. When scripts/bench.d/failover
exists (another part of payq provides it), it runs once against the same
stack (its environment, plus PAYQ_BENCH_OUT: a directory for its own
files, and PAYQ_BENCH_DATE: a business date no other run of the bench, and
no test, uses), with no arguments, and prints one JSON object on stdout; the object goes under the key `failover`
of every run in results.json. Absent: skipped, and the keys stay as they
were."""

import json
import os
import subprocess


def measure(here, out, env, date, ui):
    """The object printed by here/failover, None when the program is absent
    or failed (a failure is an error of the bench; absence is not)."""
    prog = os.path.join(here, "failover")
    if not os.access(prog, os.X_OK):
        return None
    run_dir = os.path.join(out, "runs", "failover")
    os.makedirs(run_dir, exist_ok=True)
    ui.log("== failover: %s" % prog)
    with open(os.path.join(run_dir, "failover.log"), "w") as log:
        p = subprocess.run([prog], stdout=subprocess.PIPE, stderr=log,
                           env=dict(env, PAYQ_BENCH_OUT=run_dir, PAYQ_BENCH_DATE=str(date)))
    if p.returncode != 0:
        ui.err("failover: %s exited %d (see %s/failover.log)" % (prog, p.returncode, run_dir))
        return None
    try:
        obj = json.loads(p.stdout.decode())
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        ui.err("failover: %s did not print one JSON object" % prog)
        return None
    with open(os.path.join(run_dir, "failover.json"), "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    return obj

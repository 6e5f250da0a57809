"""payqbench: the orchestration and reporting of scripts/bench.

One module per concern: cli (options), ui (log lines, warnings, errors),
procs (the processes the bench starts, and stops on exit), stack (the local
broker and database: queries, queue state, business dates), matrix (the runs
to make: one entry per dimension), runs (one measured run: ceiling, payq,
reconciler scaling), latency (percentiles and CDFs), reconcile (the
reconciler's figures), report (results.json, table.txt, the chart), failover
(the optional figure of scripts/bench.d/failover), main (the order of it all).
Standard library only: Debian's /usr/bin/python3.
"""

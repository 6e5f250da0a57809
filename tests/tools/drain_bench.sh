#!/usr/bin/env bash
# tests/tools/drain_bench.sh: one worker's drain rate over pre-queued
# transfers, with a chosen number of extra accounts in payq.accounts (accounts
# the run never touches: what a ledger of that size costs a batch). Not a
# test and not scripts/bench: a small, repeatable before/after measurement
# for worker and schema changes. Needs `scripts/stack up` and build/.
#
#   tests/tools/drain_bench.sh [-n TRANSFERS] [-a ACCOUNTS] [-x EXTRA] [-w WORKERS]
#                              [-k uniform|hot] [-e] [-s] [-c CONFIG] [-r RATE]
#     -n  transfers to pre-queue (default 200000), uniform over
#     -a  accounts opened for the run (default 10000)
#     -w  workers draining at once (default 1)
#     -k  hot: every transfer credits one account (debits stay uniform)
#     -e  sample what the workers' backends wait for (pg_stat_activity,
#         every 0.1 s while any is in a transaction) and print the shares:
#         why a second worker adds what it adds
#     -x  extra accounts kept in the table (default 0; created or deleted
#         to match, ids xtra:N, then ANALYZE)
#     -c  the worker's configuration file (default config/payq.yaml), e.g.
#         one with worker.result_events: false to price the outcome events
#     -r  latency mode: start the workers first, then publish at RATE
#         transfers/s (payq-rawpub --rate) and print intake-to-commit p50,
#         p99 and max (the first 3 s left out, as scripts/bench does)
#     -s  print pg_stat_statements per statement (scripts/stack preloads the
#         library and creates the extension in the payq database)
# Prints: extra=E transfers=N seconds=S rate=R/s backend_cpu=C, where S is
# first to last committed_at of the run's transfers (publishing and start-up
# excluded) and C the CPU time of the workers' PostgreSQL backends; then the
# batches and the rate over whole batch cycles (unbiased by batch size).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PAYQ_BUILD_DIR:-$ROOT/build}
eval "$("$ROOT/scripts/stack" env)"
N=200000 A=10000 X=0 W=1 SKEW=uniform WAITS=0 STATS=0 RATE=0 CONFIG=$ROOT/config/payq.yaml
while getopts "n:a:x:w:k:esc:r:" o; do
    case $o in
    n) N=$OPTARG ;;
    a) A=$OPTARG ;;
    x) X=$OPTARG ;;
    w) W=$OPTARG ;;
    k) SKEW=$OPTARG ;;
    e) WAITS=1 ;;
    s) STATS=1 ;;
    c) CONFIG=$OPTARG ;;
    r) RATE=$OPTARG ;;
    *) exit 2 ;;
    esac
done
q() { psql "$PAYQ_PG_PRIMARY" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
P=db$(date +%s)$RANDOM
# Upstream consumes the outcome events (README, "Outcome events"); here
# payq-ackdrain stands in for it, as in scripts/bench (payqbench/upstream.py
# says what an unconsumed payq.results.all does to the broker's Raft log and
# so to the workers' commits). What earlier runs left there is purged first,
# so that consuming it does not load this run.
"$PAYQ_RABBITMQCTL" purge_queue -q -p payq payq.results.all >/dev/null
"$BIN/payq-ackdrain" --queue payq.results.all --batch 50 --prefetch 100 --idle-ms 0 \
    >/dev/null 2>"${TMPDIR:-/tmp}/drain_bench.$P.events.log" &
epid=$!
trap 'kill "$epid" 2>/dev/null || true' EXIT

have=$(q "SELECT count(*) FROM payq.accounts WHERE id LIKE 'xtra:%'")
if [ "$have" -lt "$X" ]; then
    q "INSERT INTO payq.accounts (id, currency) SELECT 'xtra:' || g, 'EUR'
       FROM generate_series($have + 1, $X) g ON CONFLICT DO NOTHING" >/dev/null
elif [ "$have" -gt "$X" ]; then
    q "DELETE FROM payq.accounts WHERE id LIKE 'xtra:%' AND substr(id, 6)::bigint > $X" >/dev/null
fi
q "INSERT INTO payq.accounts (id, currency) SELECT '$P:a:' || g, 'EUR' FROM generate_series(0, $A - 1) g" >/dev/null
q "VACUUM ANALYZE payq.accounts" >/dev/null

gen() {
    awk -v p="$P" -v n="$N" -v a="$A" -v hot="$([ "$SKEW" = hot ] && echo 1)" 'BEGIN {
    srand(7)
    for (i = 1; i <= n; i++) {
        d = int(rand() * a); c = int(rand() * (a - 1)); if (c >= d) c++
        if (hot) { d = 1 + int(rand() * (a - 1)); c = 0 }
        printf "transfer\t{\"id\":\"%s:t:%d\",\"debit_account\":\"%s:a:%d\",\"credit_account\":\"%s:a:%d\",\"amount\":\"%d\",\"currency\":\"EUR\",\"business_date\":\"2026-01-02\"}\n", p, i, p, d, p, c, int(rand() * 99999) + 1
    } }'
}
if [ "$RATE" = 0 ]; then
    gen | "$BIN/payq-rawpub" --pack 100 >/dev/null
fi

[ "$STATS" = 1 ] && q "SELECT pg_stat_statements_reset()" >/dev/null
wpids=()
for ((w = 0; w < W; w++)); do
    "$BIN/payq-worker" --config "$CONFIG" --exit-when-idle 2000 2>"${TMPDIR:-/tmp}/drain_bench.$P.$w.log" &
    wpids+=($!)
done
if [ "$RATE" != 0 ]; then
    gen | "$BIN/payq-rawpub" --pack 100 --rate "$RATE" >/dev/null
fi
# CPU seconds of the workers' PostgreSQL backends (user + system), sampled
# until every worker exits: the last sample falls in their final idle wait,
# after the last commit. Unlike the rate, it hardly moves with other load.
declare -A ticks=()
alive() {
    local p
    for p in "${wpids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
    return 1
}
# One psql session samples every 50 ms (a psql per sample would itself
# load the two cores it measures).
waits=$(mktemp)
spid=""
if [ "$WAITS" = 1 ]; then
    while :; do
        echo "SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'CPU')
                          ELSE 'idle in transaction (worker computing, or round trip)' END
              FROM pg_stat_activity WHERE usename = 'payq_worker' AND state <> 'idle';"
        sleep 0.05
    done | psql "$PAYQ_PG_PRIMARY" -X -qAt >"$waits" 2>/dev/null &
    spid=$!
fi
while alive; do
    for bpid in $(q "SELECT pid FROM pg_stat_activity WHERE usename = 'payq_worker'"); do
        if read -r st 2>/dev/null <"/proc/$bpid/stat"; then
            read -r -a f <<<"${st##*) }"
            ticks[$bpid]=$((f[11] + f[12]))
        fi
    done
    sleep 0.5
done
for p in "${wpids[@]}"; do wait "$p"; done
[ -z "$spid" ] || kill "$spid" 2>/dev/null || true
bticks=0
for t in "${ticks[@]}"; do bticks=$((bticks + t)); done
q "SELECT 'workers=$W skew=$SKEW extra=$X transfers=' || count(*) || ' posted=' || count(*) FILTER (WHERE status = 'posted')
          || ' seconds=' || round(extract(epoch FROM max(committed_at) - min(committed_at))::numeric, 2)
          || ' rate=' || round(count(*) / extract(epoch FROM max(committed_at) - min(committed_at))::numeric) || '/s'
          || ' backend_cpu=' || round($bticks / $(getconf CLK_TCK).0, 2) || 's ('
          || round($bticks * 1000000.0 / $(getconf CLK_TCK).0 / count(*), 1) || ' us/transfer)'
   FROM payq.transfers WHERE id LIKE '$P:t:%'"
# The same over whole batch cycles, as scripts/bench's drain_whole_batches_tps:
# the rows written from the first batch's start to the last one's
# (payqbench/latency.py, whole_batches, says why).
q "WITH r AS (SELECT xmin::text AS tx, committed_at FROM payq.transfers WHERE id LIKE '$P:t:%'),
        s AS (SELECT min(committed_at) AS t FROM r GROUP BY tx),
        w AS (SELECT min(t) AS t0, max(t) AS t1, count(*) AS batches FROM s)
   SELECT 'batches=' || batches || ' rate_whole_batches='
          || round((SELECT count(*) FROM r WHERE committed_at >= t0 AND committed_at < t1)
                   / nullif(extract(epoch FROM t1 - t0), 0)::numeric) || '/s' FROM w"
if [ "$RATE" != 0 ]; then
    q "WITH t AS (SELECT extract(epoch FROM committed_at - published_at) * 1000 AS ms
                  FROM payq.transfers WHERE id LIKE '$P:t:%'
                   AND published_at >= (SELECT min(published_at) + interval '3 s'
                                        FROM payq.transfers WHERE id LIKE '$P:t:%'))
       SELECT 'latency after 3 s at $RATE/s: p50=' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)
              || ' p99=' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)
              || ' max=' || round(max(ms)::numeric, 1) || ' ms' FROM t"
fi
if [ "$STATS" = 1 ]; then
    q "SELECT calls || ' calls, ' || round(mean_exec_time::numeric, 2) || ' ms mean, '
              || round((shared_blks_hit + shared_blks_read) / greatest(calls, 1)) || ' blocks/call: '
              || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
       FROM pg_stat_statements WHERE userid = 'payq_worker'::regrole AND calls > 1
       ORDER BY total_exec_time DESC LIMIT 10"
fi
if [ "$WAITS" = 1 ]; then
    echo "what the workers' backends were doing, share of $(wc -l <"$waits") samples in a transaction:"
    sort "$waits" | uniq -c | sort -rn | awk -v t="$(wc -l <"$waits")" '{ c = $1; $1 = ""; printf "  %5.1f%%%s\n", 100 * c / t, $0 }'
fi
rm -f "$waits"

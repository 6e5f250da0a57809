#!/usr/bin/env bash
# bench_quick: scripts/bench --quick runs end to end on the local stack and
# leaves a well-formed results.json (with each run's work per transfer on the
# primary), a PNG chart and a table. No performance
# thresholds: only that every figure is there and plausible (rates > 0,
# latencies >= 0 and ordered, the reconciliation balanced, nothing left
# running).
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

OUT=$TMP/bench
QUICK_TRANSFERS=20000
export PAYQ_BUILD_DIR=$BIN
"$SRC/scripts/bench" --quick --out "$OUT" >"$TMP/bench.out" 2>"$TMP/bench.err"
rc=$?
check "scripts/bench --quick exits 0" 0 "$rc"
if [ "$rc" != 0 ]; then
    echo "--- last lines of scripts/bench output:"
    tail -n 30 "$TMP/bench.err"
    tail -n 40 "$TMP/bench.out"
fi

R=$OUT/results.json
check "results.json exists" yes "$([ -s "$R" ] && echo yes || echo no)"
check "results.json is a JSON array" array "$(jq -r type "$R" 2>/dev/null)"
check "one object per (skew, workers) run: uniform x 1,2" "uniform:1 uniform:2" \
    "$(jq -r '[.[] | "\(.skew):\(.workers)"] | sort | join(" ")' "$R" 2>/dev/null)"

REQUIRED="workers skew transfers e2e_tps broker_ceiling_tps textbook_tps latency_p50_ms latency_p99_ms
  worker_peak_rss_kb reconcile_seconds publish_tps drain_tps latency_max_ms half_load_latency_p50_ms
  half_load_latency_p99_ms half_load_latency_max_ms worker_cpu_s_per_1k reconcile_peak_rss_kb
  reconcile_exit ratio_vs_broker ratio_vs_textbook machine params"
for k in $REQUIRED; do
    check "every run has key $k" 0 \
        "$(jq --arg k "$k" '[.[] | select(has($k) | not)] | length' "$R" 2>/dev/null || echo error)"
done
# Figures that must be numbers > 0, and those that must be numbers >= 0.
for k in e2e_tps broker_ceiling_tps textbook_tps publish_tps drain_tps drain_whole_batches_tps backlog_drain_tps \
    backlog_drain_whole_batches_tps backlog_backend_cpu_us_per_transfer worker_peak_rss_kb \
    reconcile_seconds reconcile_peak_rss_kb ratio_vs_broker ratio_vs_textbook workers; do
    check "$k is a number > 0 in every run" 0 \
        "$(jq --arg k "$k" '[.[] | select((.[$k] | type) != "number" or .[$k] <= 0)] | length' "$R" 2>/dev/null || echo error)"
done
for k in latency_p50_ms latency_p99_ms latency_max_ms half_load_latency_p50_ms half_load_latency_p99_ms \
    half_load_latency_max_ms worker_cpu_s_per_1k; do
    check "$k is a number >= 0 in every run" 0 \
        "$(jq --arg k "$k" '[.[] | select((.[$k] | type) != "number" or .[$k] < 0)] | length' "$R" 2>/dev/null || echo error)"
done
check "latencies are ordered: p50 <= p99 <= max (full and half load)" 0 \
    "$(jq '[.[] | select(.latency_p50_ms > .latency_p99_ms or .latency_p99_ms > .latency_max_ms
                  or .half_load_latency_p50_ms > .half_load_latency_p99_ms
                  or .half_load_latency_p99_ms > .half_load_latency_max_ms)] | length' "$R" 2>/dev/null || echo error)"
check "transfers == $QUICK_TRANSFERS (what --quick asks for)" 0 \
    "$(jq --argjson n "$QUICK_TRANSFERS" '[.[] | select(.transfers != $n)] | length' "$R" 2>/dev/null || echo error)"
check "skew is uniform" 0 "$(jq '[.[] | select(.skew != "uniform")] | length' "$R" 2>/dev/null || echo error)"
check "every run's day reconciled balanced (exit 0)" 0 \
    "$(jq '[.[] | select(.reconcile_exit != 0)] | length' "$R" 2>/dev/null || echo error)"
check "machine names cores, memory, kernel and date" 0 \
    "$(jq '[.[] | select((.machine.cores | type) != "number" or .machine.cores < 1 or (.machine.memory_kb // 0) <= 0
                  or (.machine.kernel | type) != "string" or (.machine.date | type) != "string")] | length' "$R" 2>/dev/null || echo error)"
check "params is an object with the transfers asked for" 0 \
    "$(jq --argjson n "$QUICK_TRANSFERS" '[.[] | select((.params | type) != "object" or .params.transfers != $n)] | length' "$R" 2>/dev/null || echo error)"
check "rejections are a few percent (0.5-10%)" 0 \
    "$(jq '[.[] | select((.rejected_pct // -1) < 0.5 or (.rejected_pct // 100) > 10)] | length' "$R" 2>/dev/null || echo error)"

# wal.py: every node had recycled segments ready before each measured phase
# (at least the pool a checkpoint leaves), so no phase waited on a new file.
check "wal_segments_ahead and half_load_wal_segments_ahead are numbers >= 1" 0 \
    "$(jq '[.[] | select((.wal_segments_ahead | type) != "number" or .wal_segments_ahead < 1
                  or (.half_load_wal_segments_ahead | type) != "number"
                  or .half_load_wal_segments_ahead < 1)] | length' "$R" 2>/dev/null || echo error)"

# dbwork.py: the work behind each full-load phase, counted on the primary.
# Every transfer inserts a row (WAL, buffers) and runs on a backend (CPU).
for k in db_blocks_per_transfer db_wal_bytes_per_transfer db_wal_records_per_transfer \
    db_exec_us_per_transfer backend_cpu_us_per_transfer; do
    check "$k is a number > 0 in every run" 0 \
        "$(jq --arg k "$k" '[.[] | select((.[$k] | type) != "number" or .[$k] <= 0)] | length' "$R" 2>/dev/null || echo error)"
done
check "a transfer's row, index entries and account updates write at least 200 bytes of WAL" 0 \
    "$(jq '[.[] | select(.db_wal_bytes_per_transfer < 200)] | length' "$R" 2>/dev/null || echo error)"
for tag in uniform-1w uniform-2w; do
    check "runs/$tag/db-statements.txt names the ledger INSERT" 1 \
        "$(grep -c 'INSERT INTO payq.transfers' "$OUT/runs/$tag/db-statements.txt" 2>/dev/null)"
done

check "bench.png exists" yes "$([ -s "$OUT/bench.png" ] && echo yes || echo no)"
check "bench.png is a PNG (file magic)" 89504e470d0a1a0a \
    "$(head -c 8 "$OUT/bench.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')"
check "table.txt lists every run" 1 \
    "$(grep -c '^figure  *uniform/1w  *uniform/2w$' "$OUT/table.txt" 2>/dev/null)"
check "the table is printed on stdout" 1 "$(grep -c '^e2e_tps ' "$TMP/bench.out")"
# The bench consumes the outcome events as upstream would (payqbench/upstream.py).
check "the bench consumed payq.results.all during its runs" 1 \
    "$(grep -c 'events: payq-ackdrain consumes payq.results.all' "$TMP/bench.err")"
check "its events consumer logged no error" 0 \
    "$(if [ -e "$OUT/events-consumer.log" ]; then wc -c <"$OUT/events-consumer.log"; else echo missing; fi)"
# The bench stops every process it started (its workers read $OUT/payq*.yaml).
check "no process of the bench is left running" 0 \
    "$(pgrep -fc -- "$OUT/")"
check "no events consumer of the bench is left running" 0 \
    "$(pgrep -fc -- "--queue payq.results.all")"
finish

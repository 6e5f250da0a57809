#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup runs from a trap
# integration_observability: the local observability stack end to end. With
# the stack running, starts Prometheus and the exporters (obs_up), two
# workers (workers_up 2) and one intake replica, pushes a demo-sized load
# (2,000 transfers from a file in packs, 30 HTTP requests of 10, transfers to
# an unknown account, a 422 and a 401), then proves through Prometheus's API:
# every scrape target is up (RabbitMQ twice, each PostgreSQL node's exporter,
# both workers, the intake, the reconciler's textfile); the payq series count
# what was sent (HTTP codes exactly, worker outcomes and intake-to-commit
# observations at least); the synchronous standby and both consumers are
# seen; the recording rules evaluate; and every PromQL expression of
# deploy/grafana/payq.json evaluates without error against the live data.
# shellcheck disable=SC1091
source "$(dirname "$0")/lib/common.sh"
# shellcheck disable=SC1091
source "$SRC/scripts/stack.d/observability.sh"
eval "$(obs_env)"
P=ob$RUN_ID
INTAKE=127.0.0.1:$((17697 + ${PAYQ_STACK_PORT_OFFSET:-0}))

# Leave running what the stack had started (scripts/stack up --observability
# --workers M); stop what this test started.
had_obs=$(_obs_pid prometheus || true)
had_workers=$(_obs_pid worker-1 || true)
cleanup() {
    [ -n "$had_workers" ] || workers_down
    [ -n "$had_obs" ] || obs_down
    cleanup_common
}
trap cleanup EXIT

# atleast DESCRIPTION MIN VALUE
atleast() {
    if [ -n "$3" ] && awk -v v="$3" -v m="$2" 'BEGIN { exit !(v + 0 >= m + 0) }'; then
        ok "$1: $3 (>= $2)"
    else
        fail "$1: ${3:-none} < $2"
    fi
}

prom() { curl -sf --max-time 10 --data-urlencode "query=$1" "$PAYQ_PROM_URL/api/v1/query"; }
# scalar EXPR: the single value of an instant query ("" if none).
scalar() { prom "$1" | jq -r '.data.result[0].value[1] // empty'; }

# --- start -----------------------------------------------------------------
wait_queue_empty payq.transfers 120 || fail "payq.transfers not empty before the test"
"$BIN/payq-producer" serve --listen "$INTAKE" >/dev/null 2>>"$TMP/intake.log" &
BG_PIDS+=($!)
export OBS_INTAKE_TARGETS=$INTAKE
t0=$SECONDS
obs_up || { fail "obs_up"; finish; }
workers_up 2 || { fail "workers_up 2"; finish; }
ok "obs_up and workers_up 2 in $((SECONDS - t0)) s"
# What the reconciler writes after a run (its textfile), as a fixture here.
printf '%s\n' '# TYPE payq_recon_last_run_balanced gauge' 'payq_recon_last_run_balanced 1' \
    '# TYPE payq_recon_last_run_timestamp_seconds gauge' "payq_recon_last_run_timestamp_seconds $(date +%s)" \
    '# TYPE payq_recon_breaks gauge' 'payq_recon_breaks{category="missing_in_ledger"} 0' \
    >"$PAYQ_PROM_TEXTFILE_DIR/.payq_recon.tmp"
mv "$PAYQ_PROM_TEXTFILE_DIR/.payq_recon.tmp" "$PAYQ_PROM_TEXTFILE_DIR/payq_recon.prom"

# --- load ------------------------------------------------------------------
for ((i = 1; i <= 40; i++)); do printf '{"id":"%s-acct-%d","currency":"EUR"}\n' "$P" "$i"; done >"$TMP/acc.jsonl"
"$BIN/payq-producer" open-accounts "$TMP/acc.jsonl" --quiet || fail "open-accounts"
wait_queue_empty payq.transfers 60 || fail "accounts not applied"
gen_transfers "$P" 2000 40 7 | cut -f2 >"$TMP/t.jsonl"
for ((i = 1; i <= 5; i++)); do
    printf '{"id":"%s-nf-%d","debit_account":"%s-acct-1","credit_account":"%s-nobody","amount":"5","currency":"EUR"}\n' "$P" "$i" "$P" "$P"
done >>"$TMP/t.jsonl"
"$BIN/payq-producer" publish "$TMP/t.jsonl" --batch-id "$P-b" --quiet || fail "publish"
code202=0
for ((r = 1; r <= 30; r++)); do
    body=$(for ((k = 1; k <= 10; k++)); do
        printf '{"id":"%s-h-%d-%d","debit_account":"%s-acct-%d","credit_account":"%s-acct-%d","amount":"%d","currency":"EUR"}\n' \
            "$P" "$r" "$k" "$P" "$k" "$P" $((k + 10)) $((r * 100 + k))
    done | jq -cs .)
    c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$INTAKE/v1/transfers" \
        -H "Authorization: Bearer $PAYQ_API_TOKEN" -H 'Content-Type: application/json' -d "$body")
    [ "$c" = 202 ] && code202=$((code202 + 1))
done
check "30 HTTP requests of 10 transfers accepted" 30 "$code202"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$INTAKE/v1/transfers" \
    -H "Authorization: Bearer $PAYQ_API_TOKEN" -H 'Content-Type: application/json' -d '{"id":"x"}')
check "a schema-invalid request answers 422" 422 "$c"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$INTAKE/v1/transfers" -H 'Content-Type: application/json' -d '{}')
check "a request without a token answers 401" 401 "$c"
wait_queue_empty payq.transfers 180 || fail "the workers did not drain payq.transfers"
n_ours=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-%'")
check "every transfer of the load is in the ledger" 2305 "$n_ours"
n_rej=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-%' AND reason = 'account_not_found'")
check "the 5 transfers to an unknown account were rejected" 5 "$n_rej"
# Two scrapes after the last commit (scrape interval 5 s), so rate() has data.
sleep 12

# --- targets ---------------------------------------------------------------
tgt_json=$(curl -sf --max-time 10 "$PAYQ_PROM_URL/api/v1/targets?state=active")
echo "$tgt_json" | jq -r '.data.activeTargets[] | "  target \(.labels.job) \(.labels.instance) \(.health) \(.lastError)"'
npg=$(_obs_pg_nodes | wc -w)
check "active scrape targets: rabbitmq x2, postgres x$npg, workers x2, intake, recon" $((2 + npg + 2 + 1 + 1)) \
    "$(echo "$tgt_json" | jq '.data.activeTargets | length')"
check "every scrape target is up" 0 \
    "$(echo "$tgt_json" | jq '[.data.activeTargets[] | select(.health != "up")] | length')"
for job in rabbitmq rabbitmq-queues postgres payq-worker payq-intake payq-recon; do
    check "job $job has an up target" 1 \
        "$(echo "$tgt_json" | jq --arg j "$job" '[.data.activeTargets[] | select(.labels.job == $j and .health == "up")] | length > 0 | if . then 1 else 0 end')"
done

# --- payq series -----------------------------------------------------------
check "intake: 30 answers 202 on /v1/transfers" 30 \
    "$(scalar 'sum(payq_producer_http_requests_total{route="/v1/transfers",code="202"})')"
check "intake: one 422" 1 "$(scalar 'sum(payq_producer_http_requests_total{route="/v1/transfers",code="422"})')"
check "intake: one 401" 1 "$(scalar 'sum(payq_producer_http_requests_total{route="/v1/transfers",code="401"})')"
check "intake: 300 transfers confirmed" 300 "$(scalar 'sum(payq_producer_transfers_confirmed_total)')"
atleast "workers: transfers posted" 2300 "$(scalar 'sum(payq_worker_transfers_total{status="posted"})')"
atleast "workers: rejected account_not_found" 5 \
    "$(scalar 'sum(payq_worker_transfers_total{status="rejected",reason="account_not_found"})')"
atleast "workers: intake-to-commit observations" 2305 "$(scalar 'sum(payq_worker_intake_to_commit_seconds_count)')"
v=$(scalar 'histogram_quantile(0.99, sum by (le) (payq_worker_intake_to_commit_seconds_bucket))')
if awk -v v="${v:-0}" 'BEGIN { exit !(v > 0 && v < 300) }'; then
    ok "intake-to-commit p99 over the run: $v s"
else
    fail "intake-to-commit p99 not in (0, 300): ${v:-none}"
fi
atleast "workers: batches committed" 1 "$(scalar 'sum(payq_worker_batches_total)')"
atleast "consumers of payq.transfers (recording rule)" 2 "$(scalar 'payq:transfers_consumers')"
check "payq.transfers drained (recording rule)" 0 "$(scalar 'payq:transfers_depth')"
check "the primary has its synchronous standby" 1 "$(scalar 'max(pg_payq_node_sync_standbys * on (instance) (pg_payq_node_is_primary == 1))')"
check "one node is primary" 1 "$(scalar 'sum(pg_payq_node_is_primary)')"
check "broker memory alarm clear" 0 "$(scalar 'max(rabbitmq_alarms_memory_used_watermark)')"
check "reconciler textfile read" 1 "$(scalar 'payq_recon_last_run_balanced')"
check "rules loaded: 2 groups" 2 "$(curl -sf "$PAYQ_PROM_URL/api/v1/rules" | jq '.data.groups | length')"
check "no rule evaluation error" 0 \
    "$(curl -sf "$PAYQ_PROM_URL/api/v1/rules" | jq '[.data.groups[].rules[] | select(.health != "ok")] | length')"

# --- dashboard expressions -------------------------------------------------
n=0 bad=0 nonempty=0
while IFS= read -r expr; do
    expr=$(jq -r . <<<"$expr")
    n=$((n + 1))
    r=$(prom "$expr") || r=
    if [ "$(jq -r '.status // "error"' <<<"$r" 2>/dev/null)" != success ]; then
        bad=$((bad + 1))
        fail "dashboard expression does not evaluate: $expr: $(jq -r '.error // empty' <<<"$r" 2>/dev/null)"
    elif [ "$(jq '.data.result | length' <<<"$r")" -gt 0 ]; then
        nonempty=$((nonempty + 1))
    fi
done < <(python3 "$SRC/tests/deploy/check_prometheus.py" exprs)
atleast "dashboard expressions evaluated" 30 "$n"
check "dashboard expressions that fail to evaluate" 0 "$bad"
atleast "dashboard expressions with data" $((n * 3 / 4)) "$nonempty"
finish

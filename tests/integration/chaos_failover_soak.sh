#!/usr/bin/env bash
# chaos_failover_soak: payq-producer publishes batches continuously and two
# payq-workers drain them while `scripts/stack failover` kills the Patroni
# leader hard (Patroni and postmaster, SIGKILL) three times in a row (set
# SOAK_FAILOVERS for more), each time as soon as the cluster is whole
# again; the killed node changes every time. Then every transfer of every
# confirmed batch is in the ledger exactly once, every account's balance
# equals the sum of its posted transfers (and the model of the confirmed
# batches), and payq-reconciler reconciles the day `balanced`. Prints each
# failover's write outage (time until a write commits again) with p50 and
# max. Needs the stack up; leaves it up and healthy.
source "$(dirname "$0")/lib/common.sh"
P=soak$RUN_ID
FAILOVERS=${SOAK_FAILOVERS:-3}
CHUNK=200          # transfers per batch file
ACCOUNTS=100
# A date of its own, far ahead: the reconciliation sees only this run.
DAY=$(date -u -d "+$((3000 + RANDOM % 20000)) days" +%Y-%m-%d)
START=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)

gen_accounts "$P" "$ACCOUNTS" | cut -f2 >"$TMP/accounts"
"$BIN/payq-producer" open-accounts "$TMP/accounts" --quiet 2>>"$TMP/producer.log" || fail "open accounts"
# Accounts first: competing consumers give no order between messages.
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
check "accounts opened" "$ACCOUNTS" "$(q "SELECT count(*) FROM payq.accounts WHERE id LIKE '$P-acct-%'")"

# 400 batches of 200 (more than the run needs): ids $P-t-N, no batch_id in
# the body (the producer stamps --batch-id).
gen_transfers "$P" $((400 * CHUNK)) "$ACCOUNTS" 17 | cut -f2 | sed 's/,"batch_id":"[^"]*"//' >"$TMP/all"
split -l "$CHUNK" -d -a 3 "$TMP/all" "$TMP/batch."

# publisher: one batch about every second until told to stop; a batch whose
# publish exits 0 (every message confirmed by the broker) goes to confirmed.
(
    for f in "$TMP"/batch.*; do
        [ -e "$TMP/stop" ] && break
        b=$P-b${f##*.}
        if "$BIN/payq-producer" publish "$f" --batch-id "$b" --business-date "$DAY" --quiet \
            2>>"$TMP/producer.log"; then
            echo "$f" >>"$TMP/confirmed"
        else
            echo "$f" >>"$TMP/unconfirmed"
        fi
        sleep 1
    done
) &
publisher=$!
BG_PIDS+=("$publisher")
start_worker
w1=$LAST_PID
start_worker
w2=$LAST_PID

sleep 5
killed=()
outages=()
for ((i = 1; i <= FAILOVERS; i++)); do
    if ! out=$("$SRC/scripts/stack" failover --json 2>>"$TMP/failover.log"); then
        fail "failover $i: scripts/stack failover failed: $(tail -n 3 "$TMP/failover.log" | tr '\n' ' ')"
        break
    fi
    k=$(jq -r .killed <<<"$out")
    o=$(jq -r .write_outage_s <<<"$out")
    killed+=("$k")
    outages+=("$o")
    echo "# failover $i: killed $k, new leader $(jq -r .leader <<<"$out"), writes refused ${o} s," \
        "rejoin $(jq -r .rejoin_s <<<"$out") s (pg_rewind $(jq -r .pg_rewind <<<"$out")), ledger rows $(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")"
    sleep 3
done
touch "$TMP/stop"
wait "$publisher"
check "$FAILOVERS failovers done" "$FAILOVERS" "${#outages[@]}"
same=0
for ((i = 1; i < ${#killed[@]}; i++)); do [ "${killed[i]}" != "${killed[i - 1]}" ] || same=$((same + 1)); done
check "each failover killed another node than the one before (${killed[*]})" 0 "$same"
if [ "${#outages[@]}" -gt 0 ]; then
    printf '%s\n' "${outages[@]}" | sort -n >"$TMP/outages"
    p50=$(awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }' "$TMP/outages")
    max=$(tail -n1 "$TMP/outages")
    echo "# write outage per failover, s: $(tr '\n' ' ' <"$TMP/outages")(p50 $p50, max $max)"
fi

touch "$TMP/confirmed" "$TMP/unconfirmed"
check "every batch publish was confirmed (the broker is not failed over)" 0 "$(wc -l <"$TMP/unconfirmed")"
xargs -r cat <"$TMP/confirmed" >"$TMP/model"
n=$(wc -l <"$TMP/model")
echo "# $(wc -l <"$TMP/confirmed") batches, $n transfers confirmed by the broker"
if [ "$n" -ge 2000 ]; then ok "at least 2000 transfers confirmed ($n)"; else fail "only $n transfers confirmed"; fi

# Let the workers finish, then stop them.
wait_transfers "id LIKE '$P-t-%'" "$n" 180 || fail "not every confirmed transfer booked within 180 s"
kill -TERM "$w1" "$w2"
wait "$w1"; r1=$?
wait "$w2"; r2=$?
check "workers stop gracefully after $FAILOVERS failovers" "0 0" "$r1 $r2"
eval "$("$SRC/scripts/stack" env)"

# Every confirmed id exactly once, nothing else.
sed 's/^{"id":"\([^"]*\)".*/\1/' "$TMP/model" | sort >"$TMP/ids.confirmed"
q "SELECT id FROM payq.transfers WHERE id LIKE '$P-t-%'" | sort >"$TMP/ids.ledger"
check "every confirmed id is in the ledger (missing)" 0 "$(comm -23 "$TMP/ids.confirmed" "$TMP/ids.ledger" | wc -l)"
check "the ledger holds no id that was not confirmed (extra)" 0 "$(comm -13 "$TMP/ids.confirmed" "$TMP/ids.ledger" | wc -l)"
check "no id twice in the ledger" 0 "$(uniq -d "$TMP/ids.ledger" | wc -l)"
check "every transfer posted" "$n" \
    "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%' AND status = 'posted' AND business_date = '$DAY'")"
check "every balance equals the sum of its posted transfers (accounts that differ)" 0 \
    "$(q "SELECT count(*) FROM payq.accounts a
          LEFT JOIN (SELECT debit_account AS id, sum(amount) AS s FROM payq.transfers
                     WHERE status = 'posted' AND id LIKE '$P-t-%' GROUP BY 1) d USING (id)
          LEFT JOIN (SELECT credit_account AS id, sum(amount) AS s FROM payq.transfers
                     WHERE status = 'posted' AND id LIKE '$P-t-%' GROUP BY 1) c USING (id)
          WHERE a.id LIKE '$P-acct-%'
            AND (a.debits_posted <> coalesce(d.s, 0) OR a.credits_posted <> coalesce(c.s, 0))")"
sed 's/^/transfer\t/' "$TMP/model" >"$TMP/model.tsv"
model_balances "$TMP/model.tsv" >"$TMP/model.bal"
ledger_balances "$P" >"$TMP/ledger.bal"
if diff -q "$TMP/model.bal" "$TMP/ledger.bal" >/dev/null; then
    ok "every balance equals the model of the confirmed batches ($(wc -l <"$TMP/model.bal") accounts)"
else
    fail "balances differ from the model: $(diff "$TMP/model.bal" "$TMP/ledger.bal" | head -5 | tr '\n' ' ')"
fi

"$BIN/payq-reconciler" --date "$DAY" --audit-from "$START" --format json >"$TMP/recon.json" 2>"$TMP/recon.err"
check "payq-reconciler exits 0 for $DAY" 0 "$?"
check "the day reconciles balanced" balanced "$(jq -r .result "$TMP/recon.json" 2>/dev/null)"
[ "$(jq -r .result "$TMP/recon.json" 2>/dev/null)" = balanced ] || head -c 600 "$TMP/recon.json" "$TMP/recon.err"

if out=$("$SRC/scripts/stack" status 2>&1); then ok "scripts/stack status exits 0 at the end"
else fail "scripts/stack status exits 0 at the end: $out"; fi
finish

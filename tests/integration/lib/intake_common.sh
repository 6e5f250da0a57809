# shellcheck shell=bash
# Helpers for the intake replica tests (chaos_intake_*.sh): load through
# HAProxy from tests/tools/http_load.py and the ledger checks of what it
# recorded. Source it after lib/common.sh. The tests need a stack started
# with `scripts/stack up --intake 2` (or more); on any other they skip
# (exit 77). scripts/test runs them on such a stack (its intake step).

STACK=$SRC/scripts/stack
LOAD=$SRC/tests/tools/http_load.py

# intake_require N: skip (exit 77) unless HAProxy and replicas 1..N run
# and HAProxy sees each of them up.
intake_require() {
    local st i
    if [ -z "${PAYQ_API_URL:-}" ]; then
        echo "skipped: the stack runs no intake replicas (scripts/stack up --intake $1)"
        exit 77
    fi
    st=$("$STACK" status 2>/dev/null)
    for ((i = 1; i <= $1; i++)); do
        if ! grep -q "^intake    up    replica $i .*haproxy: UP$" <<<"$st"; then
            echo "skipped: intake replica $i is not up behind HAProxy (scripts/stack up --intake $1):"
            grep '^intake\|^haproxy' <<<"$st"
            exit 77
        fi
    done
}

# server_total I: requests HAProxy has sent to replica I so far (stot).
server_total() {
    curl -s --max-time 5 "$PAYQ_API_STATS_URL;csv" |
        awk -F, -v s="r$1" '$1 == "payq_intake" && $2 == s { print $8 }'
}

# intake_accounts PREFIX K: opens PREFIX-acct-1..K (EUR) and waits until the
# ledger holds them (a worker must be running).
intake_accounts() {
    gen_accounts "$1" "$2" | cut -f2 >"$TMP/accounts"
    "$BIN/payq-producer" open-accounts "$TMP/accounts" --quiet 2>>"$TMP/producer.log" ||
        { fail "open accounts"; return 1; }
    wait_ledger_accounts "$1" "$2"
}

wait_ledger_accounts() {
    local i
    for ((i = 0; i < 120; i++)); do
        [ "$(q "SELECT count(*) FROM payq.accounts WHERE id LIKE '$1-acct-%'")" = "$2" ] && return 0
        sleep 1
    done
    fail "accounts $1-acct-* not in the ledger after 120 s"
    return 1
}

# load_start PREFIX K: http_load in the background through HAProxy, 64
# clients, one transfer a request, failed requests retried with the same id,
# until load_stop (at most 300 s); attempts in $TMP/attempts, summary in
# $TMP/load.json, pid in LOAD_PID. (Until a stop, not for a fixed time: on
# this shared machine a replica's restart has taken from 2 to 20 s.) With
# LOAD_READERS set, that many clients GET accounts meanwhile, 200 ms apart
# (GETs in $TMP/reads).
load_start() {
    /usr/bin/python3 "$LOAD" --url "$PAYQ_API_URL" --token "$PAYQ_API_TOKEN" --prefix "$1" \
        --clients 64 --seconds 300 --stop-file "$TMP/load.stop" --accounts "$2" \
        --log "$TMP/attempts" --readers "${LOAD_READERS:-0}" --read-pause-ms 200 \
        --read-log "$TMP/reads" >"$TMP/load.json" 2>"$TMP/load.err" &
    LOAD_PID=$!
    BG_PIDS+=("$LOAD_PID")
}

# load_stop: the clients finish the id they are at (retrying it if needed)
# and stop; 0 when the load generator exited 0.
load_stop() {
    touch "$TMP/load.stop"
    wait "$LOAD_PID"
}

# wait_ledger_stable PREFIX: until the worker has drained payq.transfers and
# the ledger count for PREFIX has not moved for 5 s (up to 180 s); prints it.
wait_ledger_stable() {
    local n last=-1 still=0 i
    for ((i = 0; i < 180; i++)); do
        n=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$1-%' AND id NOT LIKE '$1-acct-%'")
        if [ "$n" = "$last" ] && [ "$(queue_depth payq.transfers)" = 0 ]; then
            still=$((still + 1))
            [ $still -ge 5 ] && break
        else
            still=0
        fi
        last=$n
        sleep 1
    done
    echo "$n"
}

# check_load_ledger PREFIX: what the clients were told against the ledger.
# Every id that got a 202 is in the ledger, exactly once, posted with the
# amount it was sent with; nothing is there that no client sent; no
# conflict was recorded for a retry; debits equal credits and the accounts
# moved by exactly the ledger's transfers.
check_load_ledger() {
    local p=$1 n
    awk '$2 == 202 { print $1 }' "$TMP/attempts" | sort -u >"$TMP/ok_ids"
    awk '{ print $1 }' "$TMP/attempts" | sort -u >"$TMP/sent_ids"
    n=$(wait_ledger_stable "$p")
    q "SELECT id, amount, status FROM payq.transfers WHERE id LIKE '$p-%' AND id NOT LIKE '$p-acct-%'" |
        tr '|' ' ' | sort >"$TMP/ledger"
    cut -d' ' -f1 "$TMP/ledger" >"$TMP/ledger_ids"
    echo "# $(wc -l <"$TMP/ok_ids") ids answered 202, $(wc -l <"$TMP/sent_ids") sent, $n in the ledger"
    check "every id that got a 202 is in the ledger" 0 "$(comm -23 "$TMP/ok_ids" "$TMP/ledger_ids" | wc -l)"
    check "no id is in the ledger twice" 0 "$(uniq -d "$TMP/ledger_ids" | wc -l)"
    check "nothing in the ledger that no client sent" 0 "$(comm -13 "$TMP/sent_ids" "$TMP/ledger_ids" | wc -l)"
    check "every transfer posted" 0 "$(awk '$3 != "posted"' "$TMP/ledger" | wc -l)"
    # The amount each id was sent with: 1 + n % 997 for id PREFIX-c-n.
    check "each posted with the amount it was sent with" 0 \
        "$(awk '{ split($1, f, "-"); if ($2 != 1 + f[3] % 997) bad++ } END { print bad + 0 }' "$TMP/ledger")"
    check "no conflict recorded (a retry is the same payload)" 0 \
        "$(q "SELECT count(*) FROM payq.conflicts WHERE entity_id LIKE '$p-%'")"
    check "accounts: debits = credits = the ledger's sum" \
        "$(awk '{ s += $2 } END { printf "%.0f %.0f", s, s }' "$TMP/ledger")" \
        "$(q "SELECT coalesce(sum(debits_posted), 0) || ' ' || coalesce(sum(credits_posted), 0)
              FROM payq.accounts WHERE id LIKE '$p-acct-%'")"
}

#!/usr/bin/env bash
# chaos_intake_frozen_standby: a frozen standby does not stop intake. The
# replicas read the ledger from a standby (pg.read_conninfo,
# target_session_attrs=prefer-standby): for the replay check of every POST
# (is this id booked already, with the same payload?), for GET reads and
# for the database line of /readyz. 64 clients send one transfer per
# request through HAProxy to two `payq-producer serve` replicas, and 128
# more GET accounts (enough to fill every connection HAProxy allows the
# replicas, producer.http_threads each, had each GET waited); 6 s in, the
# whole node the replicas read from (its Patroni, postmaster and every
# PostgreSQL process) is frozen with SIGSTOP for 20 s, as a paused VM is:
# it answers nothing and resets nothing, so no connection breaks. POSTs
# need only the broker: the replay check gives the standby REPLAY_WAIT_MS
# (500 ms) and then publishes without it (the worker's duplicate check
# still holds), /readyz gives it 1.5 s (HAProxy's check allows 3), and a GET
# producer.read_timeout_ms (2 s); after a read that failed, reads pause
# (GETs answer 503 at once) while one request at a time probes. Proves: the
# frozen seconds still answered 202s (after the first one, at least half of
# the rate before the freeze), HAProxy took no replica out, every attempt
# answered 202 (none needed a retry), every GET answered 200 or 503 within
# 10 s, 200s again before the thaw (a bounded connect that gave up on the
# frozen node, or a read that got no answer from it, tries it last, so reads
# move to the other standby), no GET begun from 3 s into the freeze waiting
# 1.8 s (the other threads dropped their connections to the frozen node),
# 200s within 30 s of the thaw, and every id that
# got a 202 is in the ledger exactly once with its amount (as in
# chaos_intake_kill). Before the fix of the replay check it waited for the
# frozen node: no 202 for the whole freeze, and /readyz hung, so HAProxy
# took both replicas out; before the fix of GETs each waited up to
# pg.statement_timeout_ms plus 10 s, HAProxy's every connection to the
# replicas held a GET, and POSTs queued behind them.
# Needs `scripts/stack up --intake 2` (skips, exit 77, otherwise).
set -uo pipefail
export LC_ALL=C
TEST_NAME=chaos_intake_frozen_standby
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/intake_common.sh
. "$here/lib/intake_common.sh"
intake_require 2
trap 'thaw_pg_nodes; cleanup_common' EXIT
FREEZE_S=20

# chkdown I: how many times HAProxy has taken replica I out (UP to DOWN).
chkdown() {
    curl -s --max-time 5 "$PAYQ_API_STATS_URL;csv" |
        awk -F, -v s="r$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "chkdown") c = i }
                            $1 == "payq_intake" && $2 == s { print $c }'
}

P=fs$RUN_ID
K=20
start_worker
intake_accounts "$P" "$K" || finish
down_before="$(chkdown 1) $(chkdown 2)"
t_load=$(date +%s.%N)
LOAD_READERS=128 load_start "$P" "$K"
sleep 6

# The node the replicas read from: the one holding most of their backends.
node=
most=0
primary_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PAYQ_PG_PRIMARY")
for port in $(sed -n 's/.*port=\([0-9,]*\).*/\1/p' <<<"$PAYQ_PG_READ_CONNINFO" | tr , ' '); do
    n=$(psql "${PAYQ_PG_PRIMARY/port=$primary_port/port=$port}" -X -qAt -c \
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'payq-producer'" 2>/dev/null)
    if [ "${n:-0}" -gt "$most" ]; then
        most=$n
        node=$(pgrep -af -- "--port=$port " | sed -n 's|.* -D [^ ]*/pg/\([a-c]\) .*|\1|p' | head -n1)
    fi
done
t_freeze=$(date +%s.%N)
if [ -z "$node" ] || ! freeze_pg_node "$node"; then
    fail "no node found holding the replicas' read connections (${node:-none})"
    load_stop
    finish
fi
echo "# froze node $node (${#PG_FROZEN[@]} processes), which $most of the replicas' read connections used"
sleep "$FREEZE_S"
t_thaw=$(date +%s.%N)
thaw_pg_nodes
sleep 6
load_stop
check "load generator finished" 0 $?
cat "$TMP/load.json"

# Seconds since the load started (the attempts' T column).
f0=$(awk -v a="$t_freeze" -v b="$t_load" 'BEGIN { print a - b }')
f1=$(awk -v a="$t_thaw" -v b="$t_load" 'BEGIN { print a - b }')
before=$(awk -v a="$f0" '$2 == 202 && $4 >= a - 5 && $4 < a' "$TMP/attempts" | wc -l)
during=$(awk -v a="$f0" -v b="$f1" '$2 == 202 && $4 >= a + 1 && $4 < b' "$TMP/attempts" | wc -l)
rate_before=$((before / 5))
rate_during=$((during / (FREEZE_S - 1)))
echo "# 202s per second: $rate_before in the 5 s before the freeze, $rate_during while frozen (after its first second)"
check "202s kept coming while the standby was frozen (at least half the rate before)" true \
    "$([ $((rate_during * 2)) -ge "$rate_before" ] && [ "$rate_during" -gt 0 ] && echo true)"
check "HAProxy took no replica out (chkdown of r1 r2)" "$down_before" "$(chkdown 1) $(chkdown 2)"
check "every attempt answered 202 (none failed)" 0 \
    "$(awk '$2 != 202' "$TMP/attempts" | wc -l)"
# Which ones, when (seconds from the freeze) and after how long: what a
# failure here needs to be told apart (a POST behind a read, a reset).
awk -v a="$f0" '$2 != 202 { printf "#   %s %s after %.0f ms, at freeze%+.2f s\n", $1, $2, $3, $4 - a }' \
    "$TMP/attempts" | head -n 20
grep -q '"event":"pg_unresponsive"' "$SRC"/.run/intake/*.log 2>/dev/null &&
    ok "a replica gave up the frozen node's connection (pg_unresponsive)" ||
    echo "# note: no replica log under .run/intake names pg_unresponsive"

# GETs: ACCOUNT STATUS MS T.
echo "# GETs by status: $(jq -c .reads "$TMP/load.json")"
check "every GET answered 200 or 503" 0 "$(awk '$2 != 200 && $2 != 503' "$TMP/reads" | wc -l)"
gmax=$(awk '$3 > m { m = $3 } END { printf "%d", m }' "$TMP/reads")
check "no GET waited over 10 s (the longest: $gmax ms)" true "$([ "$gmax" -le 10000 ] && echo true)"
echo "# GETs while frozen: $(awk -v a="$f0" -v b="$f1" '$4 >= a && $4 < b { n[$2]++ }
    END { for (s in n) printf "%s %d  ", s, n[s] }' "$TMP/reads")"
# The stack has another standby: a bounded connect that gave up on the
# frozen node tries it last next time, so reads move there.
check "GETs answered 200 again in the freeze's last 10 s (from another standby)" true \
    "$(awk -v a="$f1" '$2 == 200 && $4 >= a - 10 && $4 < a' "$TMP/reads" | wc -l |
        awk '{ print ($1 > 0) ? "true" : "false" }')"
# Once a read got no answer from the frozen node (by 2 s into the freeze: a
# GET in flight then waits out read_timeout_ms, a POST's replay check 0.5
# s), a replica's other threads drop their connections to it before their
# next read, instead of each waiting out its 2 s there once: no GET begun
# from 3 s into the freeze on waits that long. Before, each thread that
# still held a connection to the frozen node waited 2 s once.
slow=$(awk -v a="$f0" -v b="$f1" '$4 - $3 / 1000 >= a + 3 && $4 < b && $3 >= 1800' "$TMP/reads" | wc -l)
after=$(awk -v a="$f0" -v b="$f1" '$4 - $3 / 1000 >= a + 3 && $4 < b' "$TMP/reads" | wc -l)
echo "# GETs begun from 3 s into the freeze: $after, $slow of them 1.8 s or longer"
check "no GET begun from 3 s into the freeze waited 1.8 s or longer" 0 "$slow"
# Reads pause for up to 8 s after a failure, then one probes: the first 200
# after the thaw, from the GETs of the load or, after it stopped, polled.
back=$(awk -v b="$f1" '$2 == 200 && $4 >= b { print $4 - b; exit }' "$TMP/reads")
for ((i = 0; i < 40 && ${#back} == 0; i++)); do
    st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
        -H "Authorization: Bearer $PAYQ_API_TOKEN" "$PAYQ_API_URL/v1/accounts/$P-acct-1")
    [ "$st" = 200 ] && back=$(awk -v a="$(date +%s.%N)" -v b="$t_thaw" 'BEGIN { print a - b }')
    [ -n "$back" ] || sleep 1
done
echo "# the first GET answered 200 ${back:-never} s after the thaw"
check "GETs answer 200 again within 30 s of the thaw" true \
    "$([ -n "$back" ] && awk -v x="$back" 'BEGIN { exit !(x <= 30) }' && echo true)"
check_load_ledger "$P"
finish

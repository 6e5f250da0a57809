#!/usr/bin/env bash
# chaos_pg_freeze: the Patroni leader's whole node (its Patroni, its
# postmaster and every PostgreSQL process) is frozen with SIGSTOP while a
# worker books transfers, as a paused VM or a host cut off by a partition
# is: it answers nothing and resets nothing, and the kernel still
# acknowledges TCP for it, so no connection breaks. Patroni promotes the
# synchronous standby once the frozen leader's lease runs out. Proves that
# the worker does not wait for the frozen node: its statement, unanswered
# for statement_timeout plus 10 s (pg_unresponsive), is given up, and it
# books every transfer on the promoted primary while the old one is still
# frozen. Then the old leader is thawed, rejoins as a replica holding every
# id, and the ledger equals the model: every id once, the balances, debits
# = credits. The worker runs with statement_timeout_ms 2000 (answers given
# up after 12 s), so the test takes about a minute. Before the fix the
# worker waited for the frozen leader as long as it stayed frozen. Needs
# the stack up (three PostgreSQL nodes); leaves it up and healthy.
# shellcheck source=lib/common.sh
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
source "$(dirname "$0")/lib/common.sh"
P=fz$RUN_ID
N=30000
FREEZE_MAX=90 # seconds the leader stays frozen at most

trap 'thaw_pg_nodes; cleanup_common' EXIT

sed 's/^\(  statement_timeout_ms:\).*/\1 2000/' "$SRC/config/payq.yaml" >"$TMP/payq.yaml"
grep -q '^  statement_timeout_ms: 2000$' "$TMP/payq.yaml" || fail "test config: statement_timeout_ms not set"

gen_accounts "$P" 100 | "$BIN/payq-rawpub" >/dev/null || fail "open accounts"
"$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/w0.log"
gen_transfers "$P" "$N" 100 31 >"$TMP/transfers"
# 30 s of publishing: the freeze lands in the middle of the run.
publish_paced "$TMP/transfers" 30 1
publisher=$LAST_PID
start_worker --config "$TMP/payq.yaml"
worker=$LAST_PID
committed_once "$worker" "$publisher" || fail "the worker journaled no batch before the freeze"

old=$PAYQ_PG_PRIMARY_NODE
before=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'")
t0=$(date +%s)
if ! freeze_pg_node "$old"; then
    fail "leader $old: no postmaster or Patroni found"
    finish
fi
echo "# froze leader $old (${#PG_FROZEN[@]} processes) with $before of $N transfers booked"

# A new leader: Patroni's lease (PAYQ_PATRONI_TTL, 15 s) runs out first.
new=$old
while [ "$new" = "$old" ] && [ $(($(date +%s) - t0)) -lt 60 ]; do
    sleep 1
    eval "$("$SRC/scripts/stack" env 2>/dev/null)"
    new=$PAYQ_PG_PRIMARY_NODE
done
t_promoted=$(date +%s)
if [ "$new" = "$old" ] || [ -z "$new" ]; then
    fail "no node promoted within 60 s of freezing $old"
    finish
fi
echo "# $new promoted $((t_promoted - t0)) s after the freeze"

booked=0
while [ $(($(date +%s) - t0)) -lt "$FREEZE_MAX" ]; do
    booked=$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'" 2>/dev/null) || booked=0
    [ "$booked" = "$N" ] && break
    sleep 1
done
t_booked=$(date +%s)
check "every transfer booked on $new while $old is still frozen" "$N" "$booked"
echo "# $booked of $N booked after $((t_booked - t0)) s of freeze"
grep -q '"event":"pg_unresponsive"' "$TMP"/worker-*.log &&
    ok "the worker gave up the frozen leader's connection (pg_unresponsive)" ||
    fail "the worker logged no pg_unresponsive"
check "the worker is still running" "0" "$(kill -0 "$worker" 2>/dev/null; echo $?)"

thaw_pg_nodes
wait "$publisher"
check "publisher succeeded" "0" "$?"
# The thawed node finds its lease gone, demotes itself and rejoins.
check_healthy_after_thaw 180
eval "$("$SRC/scripts/stack" env)"
wait_queue_empty payq.transfers 60 || fail "payq.transfers not empty"
kill -TERM "$worker"
wait "$worker"
check "worker stops gracefully" "0" "$?"
check "queried node is the promoted primary" "f" "$(q "SELECT pg_is_in_recovery()")"
check_ledger "$P" "$TMP/transfers"
# The old leader, now a replica, holds every id once it has replayed.
on_old=0
for _ in $(seq 1 120); do
    old_port=$(pgrep -af "postgres -D $SRC/.run/pg/$old " | sed -n 's/.*--port=\([0-9]*\).*/\1/p' | head -n1)
    new_port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PAYQ_PG_PRIMARY")
    on_old=$(psql "${PAYQ_PG_PRIMARY/port=$new_port/port=$old_port}" -X -qAt \
        -c "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-t-%'" 2>"$TMP/old.err") || on_old=0
    [ "$on_old" = "$N" ] && break
    sleep 1
done
[ "$on_old" = "$N" ] || cat "$TMP/old.err"
check "the thawed old leader $old holds every id" "$N" "$on_old"
finish

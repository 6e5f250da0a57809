#!/usr/bin/env bash
# chaos_producer_frozen_peer: `payq-producer publish` of 500,000 transfers
# whose first broker URL is a TCP relay (socat) that is frozen (SIGSTOP)
# mid-publish, as a frozen broker node or a host gone without a reset would
# be: it accepts nothing more, answers nothing, and sends no reset. The
# producer is stopped for the instant of the freeze and continued after it,
# so it is writing, not reading, when the relay stops: its packs fill the
# socket buffers and the write blocks. librabbitmq writes without a deadline
# and checks heartbeats only while reading, so only the socket's
# TCP_USER_TIMEOUT (common/broker.c) ends that write. Proves: the write fails
# (logged as a basic.publish error, not a heartbeat on a read), the producer
# reconnects to the next URL, republishes what was unconfirmed, and exits 0
# with every transfer and the manifest confirmed; the queue holds at least
# every pack. Without the timeout the producer blocks until the relay thaws:
# the test fails at its 120 s limit. Runs in a private vhost.
# shellcheck disable=SC2015 # `cond && ok .. || fail ..` is safe: ok() always succeeds
set -uo pipefail
export LC_ALL=C
TEST_NAME=chaos_producer_frozen_peer
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

P=pz$RUN_ID
V=payq-test-$P
N=500000
PACK=50
M=$(ceil_div $N "$PACK")
# The whole file may be in flight (85 MB, far more than the socket buffers
# hold), and the heartbeat is 5 s, so the write times out after 10 s.
printf 'amqp:\n  heartbeat_s: 5\nproducer:\n  pack_max: %s\n  confirm_window: 20000\n' "$PACK" \
    >"$TMP/producer.yaml"
# One broker is enough (on a cluster stack, the first node).
PAYQ_AMQP_URL=${PAYQ_AMQP_URL%%,*}
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
real=$(pv_url "$V")

# The relay on a free port, in front of the real broker.
port=$(free_port 17581)
hostport=$(sed -E 's#^amqps?://[^@]*@([^/]*)/.*#\1#' <<<"$real")
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "TCP:$hostport" 2>"$TMP/socat.err" &
relay=$!
disown "$relay" # killed at exit without a "Killed" notice
BG_PIDS+=("$relay")
relay_pids() { echo "$relay" $(pgrep -P "$relay"); }
for ((i = 0; i < 50; i++)); do
    ss -Htln "sport = :$port" | grep -q . && break
    sleep 0.1
done
proxy=$(sed -E "s#@[^/]*/#@127.0.0.1:$port/#" <<<"$real")

gen_transfers_file "$P" $N >"$TMP/file.jsonl"

PAYQ_AMQP_URL="$proxy,$real" "$PRODUCER" publish "$TMP/file.jsonl" --config "$TMP/producer.yaml" --batch-id "$P-b" --json \
    >"$TMP/json" 2>"$TMP/err" &
ppid=$!
# Freeze the relay once the broker holds some packs (the login through it is
# done), with the producer stopped meanwhile so that it resumes writing into
# a peer that no longer reads.
frozen=no
for ((i = 0; i < 600; i++)); do
    d=$(pv_depth "$V" payq.transfers)
    if [ "${d:-0}" -gt 0 ]; then
        kill -STOP "$ppid"
        # shellcheck disable=SC2046 # one pid per word
        kill -STOP $(relay_pids)
        kill -CONT "$ppid"
        frozen=yes
        echo "# froze the relay with $d of $M packs queued"
        break
    fi
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.05
done
check "relay frozen while publishing" yes "$frozen"

for ((i = 0; i < 1200; i++)); do
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$ppid" 2>/dev/null; then
    fail "the producer still runs 120 s after the freeze (blocked writing to the frozen peer)"
    kill -9 "$ppid"
fi
wait "$ppid"
rc=$?
# shellcheck disable=SC2046
kill -9 $(relay_pids) 2>/dev/null
check "publish exits 0" 0 $rc
[ $rc = 0 ] || tail -5 "$TMP/err"
check "every transfer, in $M packs, and the manifest confirmed" "true $N $M true" \
    "$(jq -r '"\(.ok) \(.confirmed) \(.messages) \(.manifest_confirmed)"' "$TMP/json" 2>&1)"
reconnects=$(jq -r .reconnects "$TMP/json" 2>/dev/null)
[ "${reconnects:-0}" -ge 1 ] && ok "publisher reconnected ($reconnects times)" ||
    fail "publisher never reconnected"
check "the blocked write failed (basic.publish error), not a read" 1 \
    "$(grep -c -m1 '"event":"amqp_error","op":"basic.publish"' "$TMP/err")"
grep -m2 '"amqp_error"\|"confirm_timeout"' "$TMP/err" | sed 's/^/# log: /'
d=$(pv_depth "$V" payq.transfers)
[ "${d:-0}" -ge "$M" ] && ok "the queue holds every pack ($d messages for $M packs)" ||
    fail "the queue holds every pack: $d messages for $M packs"
finish

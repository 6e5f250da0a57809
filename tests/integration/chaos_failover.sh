#!/usr/bin/env bash
# chaos_failover: inserts accounts one transaction at a time through the
# multi-host PAYQ_PG_CONNINFO while `scripts/stack failover` kills the
# Patroni leader (its Patroni and its postmaster, SIGKILL) and Patroni
# promotes the synchronous standby. Asserts that no acknowledged commit is
# lost, that commits resume within Patroni's ttl plus 15 s, that `env` names
# the promoted node, that the cluster again has a synchronous standby, and
# that the old leader rejoined (pg_rewind) holding every acknowledged insert.
# Needs the stack up; leaves it up and healthy. PAYQ_SOURCE_DIR = repo root.
set -uo pipefail
export LC_ALL=C
# The real psql, not Debian's perl wrapper (0.1 s less per connection).
[ -x /usr/lib/postgresql/15/bin/psql ] && PATH=/usr/lib/postgresql/15/bin:$PATH
src=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
stack=$src/scripts/stack
env_out=$("$stack" env) || { echo "FAIL: scripts/stack env"; exit 1; }
eval "$env_out"

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi; }
q() { local c=$1; shift; PGCONNECT_TIMEOUT=5 psql "$c" -X -q -At -v ON_ERROR_STOP=1 "$@" 2>&1; }
now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%03d' $(($1 / 1000000)) $(($1 / 1000 % 1000)); }

work=$(mktemp -d /tmp/chaos_failover.XXXXXX)
prefix="fo-$(date +%s)-$$"
old_primary=$PAYQ_PG_PRIMARY_NODE
old_port=$(grep -o 'port=[0-9]*' <<<"$PAYQ_PG_PRIMARY" | cut -d= -f2)
conninfo=$PAYQ_PG_CONNINFO
cleanup() { touch "$work/stop"; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# insert_loop W: one psql per INSERT: rc 0 means the commit was acknowledged
# (and, with the synchronous standby, flushed there too). Appends "id time_us"
# per success to $work/ok.
insert_loop() {
    local i=0 id out
    while [ ! -e "$work/stop" ]; do
        i=$((i + 1))
        id=$prefix-w$1-$i
        if out=$(timeout 20 psql "$conninfo" -X -q -At -v ON_ERROR_STOP=1 \
                 -c "INSERT INTO payq.accounts (id, currency) VALUES ('$id', 'EUR')" 2>&1); then
            echo "$id $(now_us)" >>"$work/ok"
        else
            echo "$id $(now_us) ${out//$'\n'/ }" >>"$work/failed"
            sleep 0.05
        fi
    done
}

echo "# primary before: $old_primary (port $old_port), id prefix $prefix"
writers=3
loop_pids=()
for ((w = 1; w <= writers; w++)); do
    insert_loop "$w" &
    loop_pids+=($!)
done
sleep 4
t_fo0=$(now_us)
"$stack" failover >"$work/failover.log" 2>&1
fo_rc=$?
t_fo1=$(now_us)
sleep 4
touch "$work/stop"
wait "${loop_pids[@]}"
sort -k2,2n -o "$work/ok" "$work/ok" 2>/dev/null
sed 's/^/# failover: /' "$work/failover.log"
check "scripts/stack failover exits 0" 0 "$fo_rc"
echo "# failover took $(secs $((t_fo1 - t_fo0))) s (including the old leader's rejoin)"

touch "$work/ok" "$work/failed"
n_ok=$(wc -l <"$work/ok")
n_failed=$(wc -l <"$work/failed")
echo "# inserts acknowledged: $n_ok, failed attempts: $n_failed ($writers writers, one psql per INSERT)"
[ "$n_failed" -gt 0 ] && echo "# first failure: $(sort -k2,2n "$work/failed" | head -n1 | cut -c1-300)"
if [ "$n_ok" -ge 20 ]; then ok "inserts acknowledged ($n_ok)"; else bad "at least 20 inserts acknowledged" "$n_ok"; fi
after=$(awk -v t="$t_fo1" '$2 > t' "$work/ok" | wc -l)
if [ "$after" -gt 0 ]; then ok "inserts acknowledged after failover returned ($after)"
else bad "inserts acknowledged after failover returned" 0; fi

# Longest stretch without an acknowledged commit, and the first commit after the kill.
gap=$(awk 'NR > 1 && $2 - p > g { g = $2 - p } { p = $2 } END { print g + 0 }' "$work/ok")
echo "# longest gap between acknowledged commits: $(secs "$gap") s"
ttl=$(curl -sS --max-time 5 "$PAYQ_PATRONI_URL/config" | jq -r '.ttl // 30' 2>/dev/null) || ttl=30
limit=$((ttl + 15))
if [ "$gap" -lt $((limit * 1000000)) ]; then ok "commits resumed within ttl $ttl s + 15 s (gap $(secs "$gap") s)"
else bad "commits resumed within ttl $ttl s + 15 s" "gap $(secs "$gap") s"; fi
grep -o 'writes refused for [0-9.]* s' "$work/failover.log" | sed 's/^/# scripts\/stack failover: /'

# env names the promoted node.
env_out=$("$stack" env) && eval "$env_out"
new_port=$(grep -o 'port=[0-9]*' <<<"$PAYQ_PG_PRIMARY" | cut -d= -f2)
if [ "$PAYQ_PG_PRIMARY_NODE" != "$old_primary" ] && [ "$new_port" != "$old_port" ]; then
    ok "env names the promoted node $PAYQ_PG_PRIMARY_NODE (port $new_port) as primary"
else
    bad "env names the promoted node as primary" "node $PAYQ_PG_PRIMARY_NODE port $new_port"
fi
check "PAYQ_PG_PRIMARY is not in recovery" f "$(q "$PAYQ_PG_PRIMARY" -c 'SELECT pg_is_in_recovery()')"

# Every acknowledged id is on the promoted primary.
q "$PAYQ_PG_PRIMARY" -c "SELECT id FROM payq.accounts WHERE id LIKE '$prefix-%'" | sort >"$work/present"
cut -d' ' -f1 "$work/ok" | sort >"$work/acked"
missing=$(comm -23 "$work/acked" "$work/present" | wc -l)
check "all $n_ok acknowledged inserts are on the promoted primary (missing)" 0 "$missing"
[ "$missing" = 0 ] || comm -23 "$work/acked" "$work/present" | head -n 5 | sed 's/^/# missing: /'

# The promoted leader has a synchronous standby again, and the old leader
# streams from it.
check "the new leader has a synchronous standby" "1" \
    "$(q "$PAYQ_PG_PRIMARY" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'")"
check "old leader $old_primary streams from the new leader" "$old_primary|streaming" \
    "$(q "$PAYQ_PG_PRIMARY" -c "SELECT application_name, state FROM pg_stat_replication WHERE application_name = '$old_primary'")"
if grep -q 'pg_rewind: yes' "$work/failover.log"; then ok "the old leader rejoined with pg_rewind"
else bad "the old leader rejoined with pg_rewind" "$(grep 'rejoined' "$work/failover.log" | tail -n1)"; fi
old_conninfo=${PAYQ_PG_PRIMARY/port=$new_port/port=$old_port}
check "the old leader is in recovery" t "$(q "$old_conninfo" -c 'SELECT pg_is_in_recovery()')"
check "PAYQ_PG_STANDBY is in recovery" t "$(q "$PAYQ_PG_STANDBY" -c 'SELECT pg_is_in_recovery()')"
# ...and has replayed every acknowledged insert (streaming means received,
# not yet applied: allow it a few seconds).
for _ in $(seq 50); do
    q "$old_conninfo" -c "SELECT id FROM payq.accounts WHERE id LIKE '$prefix-%'" | sort >"$work/on_standby"
    [ "$(comm -23 "$work/acked" "$work/on_standby" | wc -l)" = 0 ] && break
    sleep 0.1
done
check "the rejoined old leader has every acknowledged insert (missing)" 0 "$(comm -23 "$work/acked" "$work/on_standby" | wc -l)"

if out=$("$stack" status 2>&1); then
    ok "scripts/stack status exits 0 after failover"
else
    bad "scripts/stack status exits 0 after failover" "$out"
    echo "# repairing the stack for the tests that follow: scripts/stack up"
    "$stack" up >/dev/null 2>&1 || echo "# scripts/stack up failed too"
fi

echo "chaos_failover: $pass passed, $fail failed"
[ "$fail" = 0 ]

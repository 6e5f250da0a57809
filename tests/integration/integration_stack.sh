#!/usr/bin/env bash
# integration_stack: checks the stack that `scripts/stack up` built: Patroni
# runs the PostgreSQL nodes in strict synchronous mode with pg_rewind and
# `env` names its leader, the synchronous standby streams, bind parameters
# stay out of the server log settings, the RabbitMQ topology of
# schemas/topology.json, the ledger's role privileges and append-only
# trigger, that the superuser conninfos name a passfile, not the password,
# and that a second `up` is quick and `status` healthy. Needs the stack up;
# PAYQ_SOURCE_DIR = repo root.
set -uo pipefail
export LC_ALL=C
# The real psql, not Debian's perl wrapper (0.1 s less per connection).
[ -x /usr/lib/postgresql/15/bin/psql ] && PATH=/usr/lib/postgresql/15/bin:$PATH
src=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
stack=$src/scripts/stack
env_out=$("$stack" env) || { echo "FAIL: scripts/stack env"; exit 1; }
eval "$env_out"
# shellcheck source=tests/integration/lib/mgmt.sh
source "$src/tests/integration/lib/mgmt.sh"

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1${2:+: $2}"; }
# check NAME EXPECTED ACTUAL
check() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi; }
q() { local c=$1; shift; PGCONNECT_TIMEOUT=5 psql "$c" -X -q -At -v ON_ERROR_STOP=1 "$@" 2>&1; }
# denied NAME CONNINFO SQL PATTERN: the statement must fail with an error matching PATTERN.
denied() {
    local out rc
    out=$(q "$2" -c "$3")
    rc=$?
    if [ "$rc" != 0 ] && grep -qiE "$4" <<<"$out"; then ok "$1"; else bad "$1" "rc=$rc, output: $out"; fi
}
api() { mgmt_curl "$PAYQ_AMQP_MGMT_URL/api/$1" -sS --max-time 10; }

# --- PostgreSQL under Patroni
cluster=$(curl -sS --max-time 5 "$PAYQ_PATRONI_URL/cluster")
check "Patroni names PAYQ_PG_PRIMARY_NODE ($PAYQ_PG_PRIMARY_NODE) leader" "$PAYQ_PG_PRIMARY_NODE" \
    "$(jq -r '.members[] | select(.role == "leader") | .name' <<<"$cluster" 2>/dev/null)"
check "Patroni names PAYQ_PG_STANDBY_NODE ($PAYQ_PG_STANDBY_NODE) synchronous standby" "$PAYQ_PG_STANDBY_NODE" \
    "$(jq -r '[.members[] | select(.role == "sync_standby") | .name][0]' <<<"$cluster" 2>/dev/null)"
nodes=$(jq '.members | length' <<<"$cluster" 2>/dev/null)
check "every node runs ($nodes)" "$nodes" \
    "$(jq '[.members[] | select(.state == "running" or .state == "streaming")] | length' <<<"$cluster" 2>/dev/null)"
check "Patroni: synchronous_mode and synchronous_mode_strict, pg_rewind" "true|true|true" \
    "$(curl -sS --max-time 5 "$PAYQ_PATRONI_URL/config" |
       jq -r '"\(.synchronous_mode)|\(.synchronous_mode_strict)|\(.postgresql.use_pg_rewind)"' 2>/dev/null)"
check "PAYQ_PG_PRIMARY is on the leader's port" \
    "$(jq -r '.members[] | select(.role == "leader") | .port' <<<"$cluster" 2>/dev/null)" \
    "$(q "$PAYQ_PG_PRIMARY" -c 'SHOW port')"
check "primary: standby $PAYQ_PG_STANDBY_NODE is streaming and sync" "$PAYQ_PG_STANDBY_NODE|streaming|sync" \
    "$(q "$PAYQ_PG_PRIMARY" -c "SELECT application_name, state, sync_state FROM pg_stat_replication
                               WHERE sync_state = 'sync'")"
check "primary: every other node streams from it" "$((nodes - 1))" \
    "$(q "$PAYQ_PG_PRIMARY" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")"
# psql takes these conninfos as arguments (ps shows them): a passfile, no password.
check "PAYQ_PG_PRIMARY and PAYQ_PG_STANDBY carry no password" "0" \
    "$(grep -c 'password=' <<<"$PAYQ_PG_PRIMARY $PAYQ_PG_STANDBY")"
check "their passfile is the owner's only (600)" "600" \
    "$(stat -c %a "$(grep -o 'passfile=[^ ]*' <<<"$PAYQ_PG_PRIMARY" | cut -d= -f2)")"
# The management URLs carry the admin password: tests reach them through
# mgmt_curl, which hands it to curl on a pipe. Its argv, seen here, must not
# hold the password, and the call must still authenticate.
mgmt_pass=${PAYQ_AMQP_MGMT_URL#http://*:}
mgmt_pass=${mgmt_pass%@*}
curl() { printf '%s\n' "$@" >"$argv_file"; command curl "$@"; }
argv_file=$(mktemp)
check "mgmt_curl authenticates with the URL's credentials" "payq-admin" \
    "$(api whoami | jq -r .name 2>/dev/null)"
check "mgmt_curl ran curl with the URL, without its credentials" "1" \
    "$(grep -c '^http://127\.0\.0\.1:[0-9]*/api/whoami$' "$argv_file")"
check "mgmt_curl's curl argv holds no password" "0" "$(grep -cF -- "$mgmt_pass" "$argv_file")"
check "the password tested is the stack's admin password" "1" \
    "$(grep -c "^PAYQ_RMQ_ADMIN_PASSWORD=.\?$mgmt_pass.\?\$" "$PAYQ_RUN_DIR/secrets.env")"
unset -f curl
rm -f "$argv_file"
check "pg_stat_statements is readable in payq (scripts/bench's work counts)" "t" \
    "$(q "$PAYQ_PG_PRIMARY" -c 'SELECT count(*) >= 0 FROM pg_stat_statements')"
check "primary is not in recovery" f "$(q "$PAYQ_PG_PRIMARY" -c 'SELECT pg_is_in_recovery()')"
check "standby is in recovery" t "$(q "$PAYQ_PG_STANDBY" -c 'SELECT pg_is_in_recovery()')"
check "PAYQ_PG_CONNINFO reaches the primary as payq_worker" "payq_worker|f" \
    "$(q "$PAYQ_PG_CONNINFO" -c 'SELECT current_user, pg_is_in_recovery()')"
check "PAYQ_PG_READ_CONNINFO prefers the standby" "payq_reader|t" \
    "$(q "$PAYQ_PG_READ_CONNINFO" -c 'SELECT current_user, pg_is_in_recovery()')"
# #17 item 4: a statement logged as slow or failed carries no bind parameters.
for c in "$PAYQ_PG_PRIMARY" "$PAYQ_PG_STANDBY"; do
    check "log_parameter_max_length and ..._on_error are 0 ($(grep -o "port=[0-9]*" <<<"$c"))" "0|0" \
        "$(q "$c" -c "SELECT current_setting('log_parameter_max_length') || '|' ||
                           current_setting('log_parameter_max_length_on_error')")"
done

# --- RabbitMQ topology (management API)
queues=$(api queues/payq) || queues='[]'
qj() { jq -c --arg n "$1" ".[] | select(.name == \$n) | $2" <<<"$queues" 2>/dev/null; }
check "payq.transfers is a quorum queue" '"quorum"' "$(qj payq.transfers .type)"
check "payq.transfers has delivery-limit and DLX payq.dlx" '[true,"payq.dlx"]' \
    "$(qj payq.transfers '[(.arguments["x-delivery-limit"] | type == "number"), .arguments["x-dead-letter-exchange"]]')"
check "payq.dead is a quorum queue" '"quorum"' "$(qj payq.dead .type)"
check "payq.audit is a stream" '"stream"' "$(qj payq.audit .type)"
check "exchange payq.ingress is a durable topic" '["topic",true]' \
    "$(api exchanges/payq/payq.ingress | jq -c '[.type, .durable]' 2>/dev/null)"
check "exchange payq.dlx is a fanout" '"fanout"' "$(api exchanges/payq/payq.dlx | jq -c .type 2>/dev/null)"
check "exchange payq.results is a durable topic" '["topic",true]' \
    "$(api exchanges/payq/payq.results | jq -c '[.type, .durable]' 2>/dev/null)"
check "payq.results.all is a quorum queue" '"quorum"' "$(qj payq.results.all .type)"
bindings=$(api bindings/payq | jq -c '[.[] | select(.source != "") | "\(.source)>\(.destination):\(.routing_key)"] | sort' 2>/dev/null)
check "bindings" '["payq.dlx>payq.dead:","payq.ingress>payq.audit:#","payq.ingress>payq.transfers:account","payq.ingress>payq.transfers:transfer","payq.ingress>payq.transfers:transfers","payq.results>payq.results.all:#"]' "$bindings"
check "app user payq may use vhost payq" '[".*",".*",".*"]' \
    "$(api permissions/payq/payq | jq -c '[.configure, .write, .read]' 2>/dev/null)"

# --- ledger privileges
worker=$PAYQ_PG_CONNINFO
# On the primary: a standby would refuse any INSERT as read-only, privileges or not.
reader=${PAYQ_PG_READ_CONNINFO/target_session_attrs=prefer-standby/target_session_attrs=read-write}
recon=$PAYQ_PG_RECON_CONNINFO
denied "payq_worker cannot DELETE transfers" "$worker" "DELETE FROM payq.transfers" 'permission denied'
denied "payq_worker cannot UPDATE transfers" "$worker" "UPDATE payq.transfers SET amount = amount" 'permission denied'
denied "payq_reader cannot INSERT accounts" "$reader" \
    "INSERT INTO payq.accounts (id, currency) VALUES ('it-reader', 'EUR')" 'permission denied'
denied "payq_reader cannot INSERT transfers" "$reader" \
    "INSERT INTO payq.transfers (id, debit_account, credit_account, amount, currency, business_date, status,
     payload_sha256) VALUES ('it-reader', 'x', 'y', 1, 'EUR', current_date, 'posted', sha256('x'))" 'permission denied'
denied "payq_recon cannot SELECT transfers" "$recon" "SELECT count(*) FROM payq.transfers" 'permission denied'
# The append-only trigger fires per row: insert one and delete it in a
# transaction that never commits (the ledger stays untouched).
row="INSERT INTO payq.transfers (id, debit_account, credit_account, amount, currency,
       business_date, status, payload_sha256)
     VALUES ('it-append-only-$$', 'x', 'y', 1, 'EUR', current_date, 'posted', sha256('x'))"
out=$(q "$PAYQ_PG_PRIMARY" -c "BEGIN" -c "$row" -c "DELETE FROM payq.transfers WHERE id = 'it-append-only-$$'")
if grep -q 'append-only' <<<"$out"; then ok "superuser DELETE on transfers fails (append-only trigger)"
else bad "superuser DELETE on transfers fails (append-only trigger)" "$out"; fi
out=$(q "$PAYQ_PG_PRIMARY" -c "BEGIN" -c "$row" -c "UPDATE payq.transfers SET amount = 2 WHERE id = 'it-append-only-$$'")
if grep -q 'append-only' <<<"$out"; then ok "superuser UPDATE on transfers fails (append-only trigger)"
else bad "superuser UPDATE on transfers fails (append-only trigger)" "$out"; fi
check "no test row left in transfers" 0 \
    "$(q "$PAYQ_PG_PRIMARY" -c "SELECT count(*) FROM payq.transfers WHERE id LIKE 'it-append-only-%'")"

# --- secrets and idempotent up
check "secrets.env is mode 600" 600 "$(stat -c %a "$PAYQ_RUN_DIR/secrets.env")"
check "PAYQ_API_TOKEN_SHA256 is the token's sha256" "$PAYQ_API_TOKEN_SHA256" \
    "$(printf '%s' "$PAYQ_API_TOKEN" | sha256sum | cut -d' ' -f1)"
t0=${EPOCHREALTIME/./}
if out=$("$stack" up 2>&1); then
    ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
    # Nothing to start or initialise. (About 3 s on an idle machine; its
    # checks slow down with the machine's load: 12-22 s at load 15-25.)
    started=$(grep -cE 'starting|initdb|creating database|applied ' <<<"$out")
    if [ "$started" = 0 ] && [ "$ms" -lt 30000 ]; then ok "second scripts/stack up starts nothing and is quick (${ms} ms)"
    else bad "second scripts/stack up starts nothing and is quick" "took ${ms} ms: $(grep -E 'starting|initdb|creating database|applied ' <<<"$out" | head -3)"; fi
else
    bad "second scripts/stack up succeeds" "$out"
fi
# A cluster bootstrapped by an older scripts/stack keeps that day's dynamic
# configuration in etcd: `up` brings it to today's (pg_sync_dcs).
keep() { curl -sS --max-time 5 "$PAYQ_PATRONI_URL/config" | jq -r '.postgresql.parameters.wal_keep_size'; }
want=$(keep)
curl -sS --max-time 10 -X PATCH -H 'Content-Type: application/json' \
    -d '{"postgresql":{"parameters":{"wal_keep_size":"64MB"}}}' "$PAYQ_PATRONI_URL/config" >/dev/null
check "drifted: the cluster's wal_keep_size is 64MB" 64MB "$(keep)"
out=$("$stack" up 2>&1)
check "up says it updates the dynamic configuration" 1 \
    "$(grep -c "updating the cluster's dynamic configuration: {\"wal_keep_size\":\"$want\"}" <<<"$out")"
check "up brings wal_keep_size back to $want" "$want" "$(keep)"
if out=$("$stack" status 2>&1); then ok "scripts/stack status exits 0"; else bad "scripts/stack status exits 0" "rc=$?: $out"; fi

echo "integration_stack: $pass passed, $fail failed"
[ "$fail" = 0 ]

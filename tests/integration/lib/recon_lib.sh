# shellcheck shell=bash
# Helpers for integration_reconciler.sh. Source after lib/common.sh (which
# loads the stack's environment and gives check/ok/fail/q and $TMP, $BIN).
#
# The stack is shared with other tests that put traffic on today's date:
# every case here uses its own business date far in the future, its own
# account ids ($P-...) and its own currencies, reads the audit stream only
# from the test's start, and repairs any ledger tampering before the next
# case (invariants are checked over all dates).

RECON_START=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)

# recon_config: a config with every example listed and a few buckets, so
# the Grace join really partitions and no break hides behind the cap.
recon_config() {
    mkdir -p "$TMP/spill"
    cat >"$TMP/recon.yaml" <<EOF
reconciler:
  examples: 10000
  buckets: 16
  spill_dir: "$TMP/spill"
EOF
}

# pub [rawpub args]: publishes "ROUTING_KEY<TAB>BODY" lines from stdin.
pub() { "$BIN/payq-rawpub" "$@" >/dev/null 2>>"$TMP/rawpub.log" || fail "publish failed (see rawpub.log)"; }

# drain: lets a worker apply everything queued, then exit.
drain() {
    "$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/worker.log" || fail "payq-worker exited $?"
}

# wait_for SQL EXPECTED [SECONDS] [quiet]: polls until the query gives
# EXPECTED. Other tests run workers too: they may still be applying our
# messages when our own worker goes idle and exits.
wait_for() {
    local deadline=$((SECONDS + ${3:-60}))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(q "$1" 2>/dev/null)" = "$2" ] && return 0
        sleep 0.5
    done
    [ -n "${4:-}" ] || fail "waited in vain for [$1] to give [$2]"
    return 1
}

# apply FILE SQL EXPECTED [rawpub args]: publishes FILE, drains, and waits
# until SQL gives EXPECTED. Messages can vanish on this shared stack (a
# benchmark's ack-only consumer on payq.transfers eats whatever it gets):
# then publish again, which is harmless because ids are idempotency keys.
# PUBLISHED counts the transfer messages with a valid amount sent in all.
PUBLISHED=0
apply() {
    local file=$1 sql=$2 want=$3 attempt
    shift 3
    for attempt in 1 2 3; do
        # Our worker subscribes first, so it competes for the messages.
        "$BIN/payq-worker" --exit-when-idle 2000 2>>"$TMP/worker.log" &
        local worker=$!
        sleep 0.5
        pub "$@" <"$file"
        PUBLISHED=$((PUBLISHED + $(grep -c '^transfer.*"amount":"[0-9]*"' "$file")))
        wait "$worker" || fail "payq-worker exited $?"
        wait_for "$sql" "$want" 30 quiet && return 0
        echo "# $(basename "$file"): not applied after attempt $attempt (eaten by another consumer?)"
    done
    fail "$(basename "$file") never applied: [$sql] did not give [$want]"
    return 1
}

# tr_line ID DEBIT CREDIT AMOUNT CUR DATE [BATCH]: one transfer line.
tr_line() {
    local batch=""
    [ -n "${7:-}" ] && batch=",\"batch_id\":\"$7\""
    local date=""
    [ -n "$6" ] && date=",\"business_date\":\"$6\""
    printf 'transfer\t{"id":"%s","debit_account":"%s","credit_account":"%s","amount":"%s","currency":"%s"%s%s}\n' \
        "$1" "$2" "$3" "$4" "$5" "$batch" "$date"
}

# manifest_line BATCH DATE COUNT TOTALS_JSON
manifest_line() {
    printf 'batch\t{"batch_id":"%s","business_date":"%s","count":"%s","totals":%s}\n' "$1" "$2" "$3" "$4"
}

# in_flight REPORT: how many transfers a JSON or CSV report lists in flight.
in_flight() {
    if [ "$(head -c1 "$1")" = "{" ]; then jq '.counts.breaks.in_flight' "$1"; else grep -c '^in_flight,' "$1"; fi
}

# recon DATE [args]: runs the reconciler (JSON into $TMP/DATE.json, stderr
# into $TMP/DATE.err) and sets RC. While other tests leave messages queued
# the verdict may be in_flight: drain and run again, a few times.
# why_failed LOG: what a run that could not run (exit 2) logged, in the
# test's output: its temporary directory is gone by the time CI shows it.
why_failed() {
    grep -E '"level":"(warn|error)"' "$1" | tail -n 5 | sed 's/^/# /'
}

recon() {
    local date=$1 attempt
    shift
    for attempt in 1 2 3 4; do
        "$BIN/payq-reconciler" --config "$TMP/recon.yaml" --date "$date" \
            --audit-from "$RECON_START" --format json --out "$TMP/$date.json" "$@" \
            2>"$TMP/$date.err"
        RC=$?
        [ "$RC" = 2 ] && why_failed "$TMP/$date.err"
        [ "$RC" = 1 ] && [ "$(in_flight "$TMP/$date.json")" != 0 ] || return 0
        echo "# $date: transfers in flight (others' traffic?), draining for attempt $((attempt + 1))"
        drain
    done
}

# mine FILE: breaks made by this test (invariant checks are global; other
# tests may have tampered with their own accounts).
mine() {
    jq -c --arg p "$P-" --arg c1 "$CUR" --arg c2 "$CUR2" \
        '[.breaks[] | select(.category != "invariant_violation" or (.id | startswith($p))
                             or .id == $c1 or .id == $c2)]' "$1"
}

# categories FILE: the distinct categories of this test's breaks, sorted.
categories() { mine "$1" | jq -r 'map(.category) | unique | join(",")'; }

# foreign FILE: how many invariant breaks are not this test's.
foreign() {
    jq --arg p "$P-" --arg c1 "$CUR" --arg c2 "$CUR2" \
        '[.breaks[] | select(.category == "invariant_violation" and (.id | startswith($p) | not)
                             and .id != $c1 and .id != $c2)] | length' "$1"
}

# keys FILE CATEGORY: "id" or "batch_id" of each break of a category, sorted.
keys() {
    mine "$1" | jq -r --arg c "$2" '.[] | select(.category == $c) | if .id != "" then .id else .batch_id end' |
        LC_ALL=C sort -u | paste -sd, -
}

# expect_breaks NAME DATE RC CATEGORIES: exit code and category set.
expect_breaks() {
    check "$1: exit code" "$3" "$RC"
    check "$1: break categories" "$4" "$(categories "$TMP/$2.json")"
}

# Superuser tampering on the primary; session_replication_role = replica
# bypasses the ledger's append-only trigger. Each tampering runs as one
# transaction together with its balance moves, and its undo is queued so
# that untamper (or the EXIT trap, if the test dies half-way) puts the
# shared ledger back: invariants are checked over all dates, for everyone.
REPAIRS=()
q_replica() { q "SET session_replication_role = replica; $1"; }

# tamper SQL UNDO_SQL: refuses to tamper without an undo (e.g. the row to
# save was not there).
tamper() {
    [ -n "$2" ] || { fail "not tampering without an undo: $1"; return 1; }
    q_replica "BEGIN; $1; COMMIT" >/dev/null || { fail "tampering failed: $1"; return 1; }
    REPAIRS+=("$2")
}

# untamper: undoes every queued tampering, newest first, retrying while the
# primary is away (other tests fail it over or restart the stack). An undo
# that still fails stays queued for the EXIT trap to try again.
untamper() {
    local i deadline=$((SECONDS + 180)) left=()
    for ((i = ${#REPAIRS[@]} - 1; i >= 0; i--)); do
        until q_replica "BEGIN; ${REPAIRS[i]}; COMMIT" >/dev/null 2>&1; do
            if [ $SECONDS -ge $deadline ]; then
                fail "could not undo: ${REPAIRS[i]}"
                left=("${REPAIRS[i]}" "${left[@]}")
                break
            fi
            sleep 1
            eval "$("$SRC/scripts/stack" env)"
        done
    done
    REPAIRS=("${left[@]}")
}
trap 'untamper; cleanup_common' EXIT

# row_sql ID: an INSERT that puts the row back as it is now.
row_sql() {
    local json
    json=$(q "SELECT row_to_json(t) FROM payq.transfers t WHERE id = '$1'")
    [ -n "$json" ] || return 1
    printf "INSERT INTO payq.transfers SELECT * FROM json_populate_record(NULL::payq.transfers, '%s')" \
        "${json//\'/\'\'}"
}

# moves_sql ACCOUNT DEBIT_DELTA CREDIT_DELTA
moves_sql() {
    printf "UPDATE payq.accounts SET debits_posted = debits_posted + (%s), credits_posted = credits_posted + (%s) WHERE id = '%s'" \
        "$2" "$3" "$1"
}

# rand_date: a random business date in 2090-2099 (the bench picks its own
# dates there too: use fresh_date for one nobody has used).
rand_date() {
    printf '%d-%02d-%02d' $((2090 + RANDOM % 10)) $((1 + RANDOM % 12)) $((1 + RANDOM % 28))
}

declare -A USED_DATES
# fresh_date: sets D (not in a subshell: USED_DATES must keep it) to a date
# no transfer, no reconciliation and no earlier call has used: the ledger
# outlives runs, and two random dates among the 3,360 collide often enough
# across a suite that also runs the bench.
fresh_date() {
    local tries=0
    D=$(rand_date)
    while [ -n "${USED_DATES[$D]:-}" ] || [ "$(q "SELECT
            EXISTS (SELECT 1 FROM payq.transfers WHERE business_date = '$D') OR
            EXISTS (SELECT 1 FROM payq.reconciliations WHERE business_date = '$D')")" != f ]; do
        [ $((tries += 1)) -lt 100 ] || { fail "no unused business date found"; break; }
        D=$(rand_date)
    done
    USED_DATES[$D]=1
}

# rand_ccy: a made-up currency code ([A-Z]{3}) so per-currency sums are ours.
rand_ccy() {
    local a=ABCDEFGHIJKLMNOPQRSTUVWXYZ
    printf 'Q%s%s' "${a:RANDOM%26:1}" "${a:RANDOM%26:1}"
}

# node_sql PORT SQL: as the superuser on the node listening on PORT.
node_sql() {
    psql "host=127.0.0.1 port=$1 dbname=payq user=postgres passfile=$PAYQ_RUN_DIR/super.pgpass" \
        -X -qAt -v ON_ERROR_STOP=1 -c "$2"
}
# Every PostgreSQL node's port, from the read conninfo's list (for the tests).
# shellcheck disable=SC2034 # used by the tests that source this file
PG_PORTS=$(sed -n 's/.* port=\([0-9,]*\) .*/\1/p' <<<"$PAYQ_PG_READ_CONNINFO" | tr , ' ')

# wait_replayed WHAT: waits (30 s at most per node) until every node has
# replayed what the primary has flushed now; fails naming WHAT otherwise.
wait_replayed() {
    local lsn port replayed
    lsn=$(q 'SELECT pg_current_wal_flush_lsn()')
    for port in $PG_PORTS; do
        replayed=""
        for _ in $(seq 1 300); do
            replayed=$(node_sql "$port" "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null)
            [ "$replayed" = t ] && break
            sleep 0.1
        done
        [ "$replayed" = t ] || fail "the node on port $port did not replay $1 within 30 s"
    done
}

# sessions_on_nodes WHERE: pg_stat_activity's rows matching WHERE, on
# every node together.
sessions_on_nodes() {
    local port n total=0
    for port in $PG_PORTS; do
        n=$(node_sql "$port" "SELECT count(*) FROM pg_stat_activity WHERE $1" 2>/dev/null) || n=0
        total=$((total + n))
    done
    echo "$total"
}
# waiting_on_lock APP: how many of APP's sessions wait on a lock, on any node.
waiting_on_lock() { sessions_on_nodes "application_name = '$1' AND wait_event_type = 'Lock'"; }

# hold_lock SQL: runs SQL on the primary in a transaction of its own that
# then sleeps (two minutes at most) until release_lock; returns once that
# session sleeps (0), or 1 after 10 s. LOCKER_PID is its psql.
LOCKER_APP=payq-test-locker-$RUN_ID
LOCKER_PID=""
hold_lock() {
    PGAPPNAME=$LOCKER_APP psql "$PAYQ_PG_PRIMARY" -X -q -v ON_ERROR_STOP=1 \
        -c "BEGIN; $1; SELECT pg_sleep(120)" >/dev/null 2>&1 &
    LOCKER_PID=$!
    BG_PIDS+=("$LOCKER_PID")
    for _ in $(seq 1 100); do
        [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$LOCKER_APP' AND state = 'active' AND query LIKE '%pg_sleep%'")" = 1 ] && return 0
        sleep 0.1
    done
    return 1
}
# release_lock: ends the locker's session on whichever node still runs it
# (a leader frozen and thawed before any promotion keeps it).
release_lock() {
    [ -n "$LOCKER_PID" ] || return 0
    local port
    for port in $PG_PORTS; do
        node_sql "$port" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$LOCKER_APP'" >/dev/null 2>&1
    done
    wait "$LOCKER_PID" 2>/dev/null
    LOCKER_PID=""
}

#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2016 # cleanup runs from a trap; $1 is a literal in the log
# integration_pg_log_params (#17 item 4): a worker batch that PostgreSQL logs
# as slow leaves no full account id in the server log. The stack sets
# log_parameter_max_length = 0 (and ..._on_error = 0), so a logged statement
# carries no bind parameters. To make every worker statement "slow", the
# test sets log_min_duration_statement = 0 for the payq_worker role. As a
# control, the same batch with log_parameter_max_length = -1 (PostgreSQL's
# default) for that role must put the ids into the log: the check can fail.
source "$(dirname "$0")/lib/common.sh"
P=lp$RUN_ID

reset_role() {
    q "ALTER ROLE payq_worker RESET log_min_duration_statement" >/dev/null
    q "ALTER ROLE payq_worker RESET log_parameter_max_length" >/dev/null
}
trap 'reset_role; cleanup_common' EXIT

log_file=$PAYQ_PG_LOG_DIR/postgresql-$PAYQ_PG_PRIMARY_NODE.log
[ -f "$log_file" ] || fail "no server log at $log_file"
check "the stack sets log_parameter_max_length and ..._on_error to 0" "0|0" \
    "$(q "SELECT current_setting('log_parameter_max_length') || '|' || current_setting('log_parameter_max_length_on_error')")"

# run_batch TAG: opens 20 accounts $P-TAG-acct-N and books 200 transfers
# between them with one worker; prints the bytes the server log grew by
# into $TMP/TAG.log.
run_batch() {
    local tag=$1 off
    off=$(stat -c %s "$log_file")
    gen_accounts "$P-$tag" 20 | "$BIN/payq-rawpub" >/dev/null || fail "$tag: publish accounts"
    "$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/worker.log"
    gen_transfers "$P-$tag" 200 20 5 | "$BIN/payq-rawpub" >/dev/null || fail "$tag: publish transfers"
    "$BIN/payq-worker" --exit-when-idle 1000 2>>"$TMP/worker.log"
    check "$tag: 200 transfers booked" 200 "$(q "SELECT count(*) FROM payq.transfers WHERE id LIKE '$P-$tag-t-%'")"
    sleep 1 # the logging collector writes asynchronously
    tail -c +"$((off + 1))" "$log_file" >"$TMP/$tag.log"
}

q "ALTER ROLE payq_worker SET log_min_duration_statement = 0" >/dev/null

# Control: with parameters logged, the ids do show up.
q "ALTER ROLE payq_worker SET log_parameter_max_length = -1" >/dev/null
run_batch control
control_ids=$(grep -oE "$P-control-acct-[0-9]+" "$TMP/control.log" | sort -u | wc -l)
if [ "$control_ids" -gt 0 ]; then ok "control: with log_parameter_max_length = -1 the log shows $control_ids full account ids"
else fail "control: no account id in the log even with parameters logged (the check below could not fail)"; fi

# The stack's setting.
q "ALTER ROLE payq_worker RESET log_parameter_max_length" >/dev/null
run_batch real
n=$(grep -c 'payq_worker@payq.*duration:' "$TMP/real.log")
if [ "$n" -gt 0 ]; then ok "the worker's statements were logged as slow ($n lines)"
else fail "no worker statement was logged (log_min_duration_statement = 0 for payq_worker)"; fi
check "no full account id in the server log" 0 "$(grep -cE "$P-real-acct-[0-9]+" "$TMP/real.log")"
check "no bind parameters in the server log" 0 "$(grep -c 'parameters: \$1' "$TMP/real.log")"
finish

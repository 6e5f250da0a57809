#!/usr/bin/env bash
# check_asyncapi: schemas/asyncapi.yaml agrees with schemas/topology.json,
# the message schemas, worker/events.c and common/broker.h
# (tests/tools/asyncapi_check.py), and the checker notices each of four
# mutations of a copy: a message dropped from payq.ingress, payq.results
# renamed, an event field undocumented, a dead-letter header renamed.
set -uo pipefail
SRC=${PAYQ_SOURCE_DIR:?}
CHECK=$SRC/tests/tools/asyncapi_check.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp "$SRC"/schemas/*.json "$TMP/"
failed=0
if /usr/bin/python3 "$CHECK" "$SRC"; then
    echo "ok   - asyncapi.yaml agrees with the topology, schemas and code"
else
    echo "FAIL - asyncapi.yaml disagrees"; failed=1
fi
mutate() { # DESCRIPTION SED_EXPRESSION
    sed "$2" "$SRC/schemas/asyncapi.yaml" >"$TMP/asyncapi.yaml"
    if cmp -s "$SRC/schemas/asyncapi.yaml" "$TMP/asyncapi.yaml"; then
        echo "FAIL - mutation '$1' changed nothing"; failed=1
    elif /usr/bin/python3 "$CHECK" "$SRC" "$TMP/asyncapi.yaml" >"$TMP/out"; then
        echo "FAIL - mutation '$1' not noticed"; failed=1
    else
        echo "ok   - noticed: $1 ($(head -n 1 "$TMP/out"))"
    fi
}
mutate "transfers message dropped" "/- \$ref: '#\/components\/messages\/transfers'/d"
mutate "payq.results renamed" "s/name: payq.results$/name: payq.result/"
mutate "debit_balance undocumented" "s/^        debit_balance:/        debit_bal:/"
mutate "dead-letter header renamed" "s/required: \[x-payq-reason, x-payq-field\]/required: [x-payq-why, x-payq-field]/; s/^          x-payq-reason:/          x-payq-why:/"
exit $failed

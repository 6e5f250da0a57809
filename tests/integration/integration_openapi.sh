#!/usr/bin/env bash
# integration_openapi: keeps schemas/openapi.yaml true. The server routes
# with one table (producer/http_routes.c) and refuses to answer a status the
# table does not declare; `payq-producer routes` prints that table as
# `METHOD PATH STATUS` lines. The document must declare exactly those
# answers: no fewer (an undocumented answer) and no more (a documented one
# the server cannot give). The document is read by a small line-based
# reader (tests/tools/openapi_routes.py) and, when PyYAML is installed, by a
# real YAML parser too, which must agree and find every $ref resolvable. A
# running server is then probed for the answers that need no broker or
# database (every 405, the unmatched 404, every 401), and the checker is
# shown to notice a response removed from a copy of the document.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_openapi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=lib/producer_common.sh
. "$here/lib/producer_common.sh"

DOC=$SRC/schemas/openapi.yaml
READER=$SRC/tests/tools/openapi_routes.py

"$PRODUCER" routes | sort >"$TMP/table"
check "route table is not empty" 1 "$([ "$(wc -l <"$TMP/table")" -gt 10 ] && echo 1)"
/usr/bin/python3 "$READER" "$DOC" >"$TMP/doc" 2>"$TMP/err"
check "openapi.yaml can be read" 0 $?
if diff "$TMP/table" "$TMP/doc" >"$TMP/diff"; then
    ok "openapi.yaml declares exactly the answers of the route table ($(wc -l <"$TMP/table") lines)"
else
    fail "openapi.yaml and the route table differ (< table only, > document only): $(grep '^[<>]' "$TMP/diff" | tr '\n' ' ')"
fi

if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    /usr/bin/python3 "$READER" "$DOC" --parser yaml >"$TMP/doc.yaml"
    check "a real YAML parser reads the same answers" "" "$(diff "$TMP/doc" "$TMP/doc.yaml")"
    /usr/bin/python3 - "$DOC" >"$TMP/refs" 2>&1 <<'EOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert str(doc['openapi']).startswith('3.0'), 'not OpenAPI 3.0'
bad = []
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == '$ref':
                node = doc
                for part in x.lstrip('#/').split('/'):
                    node = node.get(part) if isinstance(node, dict) else None
                if node is None:
                    bad.append(x)
            else:
                walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(doc)
for p, item in doc['paths'].items():
    for m, op in item.items():
        if m in ('get', 'post') and op.get('security') != [] and '401' not in op['responses']:
            bad.append('%s %s needs the token but declares no 401' % (m, p))
print(' '.join(bad) if bad else 'ok')
EOF
    check "every \$ref resolves; token routes declare 401" ok "$(cat "$TMP/refs")"
else
    echo "# PyYAML not installed: checked with the line-based reader only"
fi

# The checker notices drift: drop the 415 of POST /v1/transfers from a copy.
awk '/^        .415.:/ { skip = 1; next } skip && /^         / { next } { skip = 0; print }' \
    "$DOC" >"$TMP/broken.yaml"
/usr/bin/python3 "$READER" "$TMP/broken.yaml" >"$TMP/doc.broken"
check "a response removed from the document is noticed" "< POST /v1/transfers 415" \
    "$(diff "$TMP/table" "$TMP/doc.broken" | grep '^[<>]')"

# Probe a running server for the answers that need no broker or database.
PORT=$(free_port 17281)
"$PRODUCER" serve --listen "127.0.0.1:$PORT" >/dev/null 2>"$TMP/serve.log" &
spid=$!
BG_PIDS+=("$spid")
BASE=http://127.0.0.1:$PORT
wait_http "$BASE/healthz" || { fail "server did not start: $(tail -3 "$TMP/serve.log")"; finish; }
code() { # METHOD PATH
    local how=(-X "$1")
    [ "$1" = HEAD ] && how=(-I)
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${how[@]}" "$BASE$2"
}
bad=()
n=0
while read -r method path status; do
    url=${path//\{id\}/probe-id}
    case $status in
    405 | 401) ;;
    404) [ "$method" = "*" ] || continue ;;
    *) continue ;;
    esac
    [ "$method" = "*" ] && { method=GET; url=/no/such/route; }
    got=$(code "$method" "$url")
    n=$((n + 1))
    [ "$got" = "$status" ] || bad+=("$method $path: $got, want $status")
done <"$TMP/table"
check "server answers every 405, 401 and the unmatched 404 as declared ($n probes)" "" "${bad[*]:-}"
kill -TERM "$spid"
wait "$spid"
check "server stops with exit 0" 0 $?

finish

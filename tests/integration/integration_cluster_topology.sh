#!/usr/bin/env bash
# integration_cluster_topology: on a three-node broker stack (scripts/stack up
# --brokers 3), the management API of every node shows one cluster of the
# three nodes of PAYQ_AMQP_NODES, all running; payq.transfers and payq.dead
# are quorum queues whose members and online members are exactly those three
# nodes; payq.audit is a stream with three replicas; and every node serves
# the payq vhost (aliveness test: declare, publish, consume on that node).
# Exits 77 (skipped) on a single-broker stack.
set -uo pipefail
export LC_ALL=C
src=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
env_out=$("$src/scripts/stack" env) || { echo "FAIL: scripts/stack env"; exit 1; }
eval "$env_out"
# shellcheck source=tests/integration/lib/mgmt.sh
source "$src/tests/integration/lib/mgmt.sh"
if [ "${PAYQ_STACK_BROKERS:-1}" != 3 ]; then
    echo "skipped: the stack runs ${PAYQ_STACK_BROKERS:-1} broker(s), not 3 (scripts/stack up --brokers 3)"
    exit 77
fi

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi; }
# api MGMT_URL PATH
api() { mgmt_curl "$1/api/$2" -sS --max-time 10; }

IFS=, read -r -a names <<<"$PAYQ_AMQP_NODES"
IFS=, read -r -a mgmts <<<"$PAYQ_AMQP_MGMT_URLS"
IFS=, read -r -a urls <<<"$PAYQ_AMQP_URL"
check "PAYQ_AMQP_NODES names three nodes" 3 "${#names[@]}"
check "PAYQ_AMQP_URL lists three URLs" 3 "${#urls[@]}"
check "PAYQ_AMQP_MGMT_URLS lists three URLs" 3 "${#mgmts[@]}"
want=$(printf '%s\n' "${names[@]}" | sort | paste -sd' ')

for i in "${!mgmts[@]}"; do
    m=${mgmts[$i]}
    check "node $((i + 1)): its management API is node ${names[$i]}" "${names[$i]}" \
        "$(api "$m" overview | jq -r .node 2>/dev/null)"
    check "node $((i + 1)): sees the cluster of the three nodes, all running" "$want" \
        "$(api "$m" nodes | jq -r '[.[] | select(.running) | .name] | sort | join(" ")' 2>/dev/null)"
    check "node $((i + 1)): serves vhost payq (aliveness test)" ok \
        "$(api "$m" aliveness-test/payq | jq -r .status 2>/dev/null)"
done

m=$PAYQ_AMQP_MGMT_URL
for qn in payq.transfers payq.dead; do
    j=$(api "$m" "queues/payq/$qn")
    check "$qn is a quorum queue" quorum "$(jq -r .type <<<"$j" 2>/dev/null)"
    check "$qn has the three nodes as members" "$want" "$(jq -r '.members // [] | sort | join(" ")' <<<"$j" 2>/dev/null)"
    check "$qn has the three members online" "$want" "$(jq -r '.online // [] | sort | join(" ")' <<<"$j" 2>/dev/null)"
    l=$(jq -r '.leader // empty' <<<"$j" 2>/dev/null)
    if [[ " $want " == *" $l "* ]]; then ok "$qn has a leader among them ($l)"; else bad "$qn has a leader among them" "leader '$l'"; fi
done
j=$(api "$m" queues/payq/payq.audit)
check "payq.audit is a stream" stream "$(jq -r .type <<<"$j" 2>/dev/null)"
check "payq.audit has three replicas (members)" "$want" "$(jq -r '.members // [] | sort | join(" ")' <<<"$j" 2>/dev/null)"
check "payq.audit was declared for three replicas" 3 "$(jq -r '.arguments["x-initial-cluster-size"] // empty' <<<"$j" 2>/dev/null)"

echo "integration_cluster_topology: $pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# check_k8s: every manifest in deploy/k8s validates against the Kubernetes and
# KEDA schemas (tests/tools/k8s-validate/validate.mjs: types, enums, required
# fields, and no unknown field), and every document of the deliberately broken
# manifests in tests/deploy/k8s-broken/ fails validation. Missing node or npm
# packages fail the test: it never skips.
set -uo pipefail
SRC=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
V=$SRC/tests/tools/k8s-validate/validate.mjs
failed=0
fail() { echo "FAIL - $*"; failed=1; }

command -v node >/dev/null || { echo "FAIL - node not found (scripts/setup installs nodejs)"; exit 1; }
[ -d "$SRC/tests/tools/k8s-validate/node_modules/@kubernetes-models/keda" ] ||
    { echo "FAIL - npm packages missing: run tests/tools/k8s-validate/install (scripts/setup does)"; exit 1; }

out=$(node "$V" "$SRC"/deploy/k8s/*.yaml 2>&1)
rc=$?
echo "$out"
n=$(grep -c '^ok ' <<<"$out")
if [ "$rc" -eq 0 ] && [ "$n" -ge 9 ]; then
    echo "ok   - deploy/k8s: $n documents valid"
else
    fail "deploy/k8s: validation exit $rc with $n valid documents"
fi
# Every kind the README promises is there.
for k in Deployment/payq-worker Deployment/payq-intake Service/ PodDisruptionBudget/ CronJob/ Secret/ \
    ScaledObject/ TriggerAuthentication/; do
    grep -q "^ok .*: $k" <<<"$out" || fail "deploy/k8s has no valid $k"
done

for f in "$SRC"/tests/deploy/k8s-broken/*.yaml; do
    out=$(node "$V" "$f" 2>&1)
    rc=$?
    echo "$out"
    docs=$(sed -n 's/^\([0-9]*\) documents, \([0-9]*\) invalid$/\1 \2/p' <<<"$out")
    if [ "$rc" -eq 1 ] && [ -n "$docs" ] && [ "${docs% *}" = "${docs#* }" ] && [ "${docs% *}" -gt 0 ]; then
        echo "ok   - $(basename "$f"): all ${docs% *} broken documents rejected"
        # ... each for the reason its "# expect:" line gives.
        while IFS= read -r e; do
            grep -qF -- "$e" <<<"$out" || fail "$(basename "$f"): no complaint '$e'"
        done < <(sed -n 's/^# expect: //p' "$f")
    else
        fail "$(basename "$f"): expected every document rejected, got exit $rc and '$docs'"
    fi
done
exit "$failed"

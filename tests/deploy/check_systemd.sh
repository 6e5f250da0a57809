#!/usr/bin/env bash
# check_systemd: the systemd units in config/ (payq-worker@.service as
# instance @1, payq-intake.service, payq-reconcile.service and .timer) pass
# `systemd-analyze verify` without a single complaint, with ExecStart pointed
# at the built binaries (they are not installed in /usr/local/bin here). A
# copy with a misspelt key must draw a complaint, so the check can fail.
# No systemd-analyze fails the test: it never skips.
set -uo pipefail
SRC=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PAYQ_BUILD_DIR:-$SRC/build}
command -v systemd-analyze >/dev/null || { echo "FAIL - systemd-analyze not found (scripts/setup installs systemd)"; exit 1; }
[ -x "$BIN/payq-worker" ] || { echo "FAIL - $BIN/payq-worker not built"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0
units=(payq-worker@.service payq-intake.service payq-reconcile.service payq-reconcile.timer)
for u in "${units[@]}"; do
    [ -f "$SRC/config/$u" ] || { echo "FAIL - config/$u missing"; failed=1; continue; }
    sed "s|/usr/local/bin/|$BIN/|g" "$SRC/config/$u" >"$T/$u"
done
cp "$T/payq-worker@.service" "$T/payq-worker@1.service"
cd "$T" || exit 1
out=$(systemd-analyze verify ./payq-worker@1.service ./payq-intake.service ./payq-reconcile.service \
    ./payq-reconcile.timer 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
    echo "ok   - systemd-analyze verify: ${units[*]} (worker as @1) without a complaint"
else
    echo "FAIL - systemd-analyze verify exit $rc: $out"
    failed=1
fi
sed 's/^TimeoutStopSec=/TimeoutStopSek=/' payq-worker@.service >payq-bad@.service
out=$(systemd-analyze verify ./payq-bad@1.service 2>&1)
if grep -q "Unknown key.*TimeoutStopSek" <<<"$out"; then
    echo "ok   - a misspelt key is reported: $(head -n1 <<<"$out")"
else
    echo "FAIL - a misspelt key was not reported: $out"
    failed=1
fi
exit "$failed"

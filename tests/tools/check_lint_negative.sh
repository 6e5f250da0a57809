#!/usr/bin/env bash
# check_lint_negative: proves that the static checks of scripts/test can fail.
# It runs the very commands scripts/test runs (scripts/lint format / shell) on
# small files in a temp dir: a well-formatted C file and a clean script must
# pass, and the same files with one defect each (a misplaced brace, an
# unquoted variable) must fail and name the file. No build, no servers.
set -uo pipefail
src=${PAYQ_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
lint=$src/scripts/lint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect WANT_RC NAME CMD...: runs CMD, checks its exit status. Both tools
# exit 1 on a finding; any other status (2, 3: usage or missing tool) is a
# broken check, not a finding, and fails this test.
expect() {
    local want=$1 name=$2 rc
    shift 2
    "$@" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq "$want" ]; then
        echo "ok   - $name (rc $rc)"
    else
        echo "FAIL - $name: rc $rc, wanted $want"
        cat "$tmp/out"
        failures=$((failures + 1))
    fi
}

cat >"$tmp/good.c" <<'C'
/* good.c: formatted as the repo's .clang-format wants. */
int payq_lint_sample(int a);

int payq_lint_sample(int a)
{
    if (a > 0) {
        return a * 2;
    }
    return 0;
}
C
# Same code, K&R brace on the function and a two-space indent.
cat >"$tmp/bad.c" <<'C'
/* bad.c: formatted as the repo's .clang-format wants. */
int payq_lint_sample(int a);

int payq_lint_sample(int a) {
  if (a > 0) {
    return a * 2;
  }
  return 0;
}
C
cat >"$tmp/good.sh" <<'SH'
#!/usr/bin/env bash
# good.sh: clean for shellcheck.
dir=${1:-.}
ls -- "$dir"
SH
# Same script with the variable unquoted (SC2086).
cat >"$tmp/bad.sh" <<'SH'
#!/usr/bin/env bash
# bad.sh: clean for shellcheck.
dir=${1:-.}
ls -- $dir
SH

expect 0 "clang-format accepts a formatted file" "$lint" format "$tmp/good.c"
expect 1 "clang-format rejects a misformatted file" "$lint" format "$tmp/good.c" "$tmp/bad.c"
if grep -q 'bad\.c:4:' "$tmp/out"; then
    echo "ok   - clang-format names bad.c:4"
else
    echo "FAIL - clang-format did not name bad.c:4"; cat "$tmp/out"; failures=$((failures + 1))
fi
expect 0 "shellcheck accepts a clean script" "$lint" shell "$tmp/good.sh"
expect 1 "shellcheck rejects an unquoted variable" "$lint" shell "$tmp/good.sh" "$tmp/bad.sh"
if grep -q 'SC2086' "$tmp/out" && grep -q 'bad\.sh line 4' "$tmp/out"; then
    echo "ok   - shellcheck names bad.sh line 4 and SC2086"
else
    echo "FAIL - shellcheck did not name bad.sh line 4"; cat "$tmp/out"; failures=$((failures + 1))
fi
# scripts/test takes its file lists from here: they must not be empty.
n=$("$lint" list-shell | grep -c '^scripts/lint$')
if [ "$n" -eq 1 ]; then
    echo "ok   - scripts/lint list-shell includes scripts/lint"
else
    echo "FAIL - scripts/lint list-shell misses scripts/lint"; failures=$((failures + 1))
fi

[ $failures -eq 0 ] && echo "check_lint_negative: all passed" && exit 0
echo "check_lint_negative: $failures failed"
exit 1

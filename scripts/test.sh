#!/usr/bin/env bash
# Set up, build and run every test suite (the quick ones and the slow end-to-end ones).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 --suite vit --suite slow
rc=$?
# print each suite's Check summary so the log ends with the counts
grep -h -E "^[0-9]+%: Checks: [0-9]+" build/meson-logs/testlog.txt || true
ok=$(awk '/^Ok:/{print $2}' build/meson-logs/testlog.txt | tail -1)
bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/{n+=$NF} END{print n+0}' build/meson-logs/testlog.txt)
echo "${ok:-0} passed, ${bad:-0} failed"
exit $rc

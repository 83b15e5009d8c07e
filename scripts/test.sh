#!/usr/bin/env bash
# Set up, build and run every test suite (the quick ones and the slow end-to-end ones).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 --suite vit --suite slow
rc=$?
# print each suite's Check summary so the log ends with the counts
grep -h -E "^[0-9]+%: Checks: [0-9]+" build/meson-logs/testlog.txt || true
python3 - <<'PY' 2>/dev/null || true
import json
p = f = 0
for line in open("build/meson-logs/testlog.json"):
    r = json.loads(line)
    if r.get("result") == "OK": p += 1
    elif r.get("result") not in ("SKIP",): f += 1
print(f"{p} passed, {f} failed")
PY
exit $rc

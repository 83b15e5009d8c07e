#!/usr/bin/env bash
# Set up, build and run every test suite (the quick ones and the slow end-to-end ones), then the quick
# suites again under AddressSanitizer + UBSan.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
meson test -C build --print-errorlogs --num-processes 2 --suite vit --suite slow
rc=$?
LOGS="build/meson-logs/testlog.txt"

# ---- sanitizers: the quick suites built with AddressSanitizer + UBSan in ./build-asan (gcc, the same
# sources, -O1 -g); any report (a bad access, a leak, undefined behaviour) fails the test that made it
GOLDENS="${VIT_GOLDENS:-$(cd .. && pwd)/shared/goldens}"
OMP_PC="/usr/lib/$(gcc -print-multiarch)/openblas-openmp/pkgconfig"
[ -d "$OMP_PC" ] || OMP_PC=""
if [ ! -f build-asan/build.ninja ]; then
    rm -rf build-asan
    meson setup build-asan --buildtype=debug --optimization=1 -Db_sanitize=address,undefined -Db_lundef=false \
        -Dgoldens="$GOLDENS" -Dpkg_config_path="$OMP_PC" >/dev/null
fi
if ninja -C build-asan >/dev/null; then
    ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
        meson test -C build-asan --print-errorlogs --num-processes 2 --suite vit --timeout-multiplier 3 || rc=1
    LOGS="$LOGS build-asan/meson-logs/testlog.txt"
else
    echo "the sanitizer build failed"
    rc=1
fi
# ---- end of the sanitizer block

# print each suite's Check summary (every build's) so the log ends with the counts
grep -h -E "^[0-9]+%: Checks: [0-9]+" $LOGS || true
ok=0
bad=0
for log in $LOGS; do
    o=$(awk '/^Ok:/{print $2}' "$log" | tail -1)
    b=$(awk '/^(Fail|Timeout|Unexpected Pass):/{n+=$NF} END{print n+0}' "$log")
    ok=$((ok + ${o:-0}))
    bad=$((bad + ${b:-0}))
done
[ $rc -ne 0 ] && [ $bad -eq 0 ] && bad=1   # a build that failed counts
echo "$ok passed, $bad failed"
exit $rc

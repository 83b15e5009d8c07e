#!/usr/bin/env bash
# Set up, build and run every test suite (all in 'vit') in the native build, then the same suites
# again in two more builds of the same sources: with -march=x86-64-v3 (the AVX2 kernels)
# and under AddressSanitizer + UBSan.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
GOLDENS="${VIT_GOLDENS:-$(cd .. && pwd)/shared/goldens}"
OMP_PC="/usr/lib/$(gcc -print-multiarch)/openblas-openmp/pkgconfig"
[ -d "$OMP_PC" ] || OMP_PC=""
rc=0
LOGS=""

# run_suites BUILD_DIR [meson test options...]: run the tests there and remember its log
run_suites() {
    local dir=$1; shift
    echo "=== tests in $dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || rc=1
    LOGS="$LOGS $dir/meson-logs/testlog.txt"
}

# extra_build DIR MESON_SETUP_OPTIONS...: configure (once) and build another configuration of the tree
extra_build() {
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        rm -rf "$dir"
        meson setup "$dir" -Dgoldens="$GOLDENS" -Dpkg_config_path="$OMP_PC" "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" >/dev/null || { ninja -C "$dir" | tail -20; return 1; }
}

run_suites build --suite vit

# ---- the AVX2 (x86-64-v3) kernels: register tiles and vector widths differ from an AVX-512 build's,
# so the kernel, autograd and golden checks run on them too (an AVX-512 CPU runs AVX2 code)
if [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    if extra_build build-x86-64-v3 --buildtype=release -Dmarch=x86-64-v3; then
        run_suites build-x86-64-v3 --suite vit
    else
        echo "the x86-64-v3 build failed"; rc=1
    fi
else
    echo "=== the x86-64-v3 build is skipped: this CPU has no AVX2+FMA"
fi

# ---- sanitizers: the quick suites built with AddressSanitizer + UBSan in ./build-asan (gcc, the same
# sources, -O1 -g); any report (a bad access, a leak, undefined behaviour) fails the test that made it
if extra_build build-asan --buildtype=debug --optimization=1 -Db_sanitize=address,undefined -Db_lundef=false; then
    ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" CK_TIMEOUT_MULTIPLIER=3 \
        run_suites build-asan --suite vit --timeout-multiplier 3
else
    echo "the sanitizer build failed"; rc=1
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

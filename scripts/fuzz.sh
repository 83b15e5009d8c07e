#!/usr/bin/env bash
# Fuzz every parser: build the libFuzzer targets of tests/fuzz (clang, AddressSanitizer + UBSan) into
# ./build-fuzz and run each for SECONDS (default 60), one after the other at nice 19, one process each.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]        (targets: config idx cifar safetensors npz ckpt h5data png jpeg)
# Each target starts from its seed corpus (tests/fuzz/corpus/<target>/) and its regression inputs, and keeps
# what it finds in build-fuzz/corpus/<target>/. A crash, a hang (> 1 s an input), a leak or a sanitizer report
# stops that target and leaves the input in build-fuzz/crashes/<target>/: once fixed, copy it to
# tests/fuzz/regressions/<target>/, which the normal test suite replays. Logs: build-fuzz/logs/<target>.log.
# FUZZ_TIMEOUT=N (seconds, default 1) is the hang limit; libFuzzer measures it on the wall clock, so on a
# loaded machine at nice 19 a larger one avoids false hangs (recheck the slowest inputs' time then).
# FUZZ_RUNS=N stops a target after N executions (issue 20's bar: 10,000,000, or SECONDS = 3600).
# Needs clang and libfuzzer-14-dev (installed here when missing; the normal build never needs them).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
[ $# -gt 0 ] && shift
TARGETS="${*:-config idx cifar safetensors npz ckpt h5data png jpeg}"
missing=""
for p in clang libfuzzer-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null || exit 1
fi
bash scripts/setup.sh >/dev/null || exit 1   # the project's own packages (and a normal build)
OMP_PC="/usr/lib/$(gcc -print-multiarch)/openblas-openmp/pkgconfig"
[ -d "$OMP_PC" ] || OMP_PC=""
if [ ! -f build-fuzz/build.ninja ]; then
    rm -rf build-fuzz
    CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Dtests=disabled \
        -Db_sanitize=address,undefined -Db_lundef=false -Dpkg_config_path="$OMP_PC" >/dev/null || exit 1
fi
nice -n 5 ninja -C build-fuzz fuzzers >/dev/null || { ninja -C build-fuzz fuzzers; exit 1; }
mkdir -p build-fuzz/logs
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TMPDIR="${TMPDIR:-/tmp}"
[ -d /dev/shm ] && [ -w /dev/shm ] && TMPDIR=/dev/shm   # the targets write their input to a file each run
failed=0
for t in $TARGETS; do
    exe="build-fuzz/tests/fuzz/fuzz_$t"
    [ -x "$exe" ] || { echo "$t: no such target"; failed=1; continue; }
    dict="tests/fuzz/dict/$t.dict"
    case "$t" in ckpt|h5data) dict="tests/fuzz/dict/h5.dict" ;; esac
    mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
    dirs=("build-fuzz/corpus/$t" "tests/fuzz/corpus/$t")
    [ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
    nice -n 19 "$exe" "${dirs[@]}" -dict="$dict" -max_total_time="$SECS" -runs="${FUZZ_RUNS:--1}" -timeout="${FUZZ_TIMEOUT:-1}" -rss_limit_mb=2048 \
        -max_len=16384 -artifact_prefix="build-fuzz/crashes/$t/" -print_final_stats=1 >"build-fuzz/logs/$t.log" 2>&1
    rc=$?
    last=$(grep -E "^#[0-9]+" "build-fuzz/logs/$t.log" | tail -1)
    runs=$(awk '/^stat::number_of_executed_units:/{print $2}' "build-fuzz/logs/$t.log")
    if [ $rc -ne 0 ]; then
        failed=1
        echo "$t: FAILED after ${runs:-?} executions: $(grep -m1 -E "ERROR|SUMMARY|fuzz $t" "build-fuzz/logs/$t.log")"
        ls build-fuzz/crashes/$t/ | sed "s|^|    build-fuzz/crashes/$t/|"
    else
        secs=$(awk '/^Done [0-9]+ runs in/ {for (i = 1; i <= NF; i++) if ($i == "in") print $(i + 1)}' "build-fuzz/logs/$t.log" | tail -1)
        echo "$t: ok, ${runs:-?} executions in ${secs:-$SECS} s; last: $last"
    fi
done
exit $failed

#!/usr/bin/env bash
# rss_run.sh - does a long training run hold its memory flat? Trains STEPS steps (default 10,000) of a
# small version of configs/fashion_mnist.ini (patch 7, dim 32, depth 2, one thread and one replica, so
# that it gets on at nice 19 on a busy machine; warmup a tenth of the run; evaluation on the 10,000 test
# images and a checkpoint every EVERY steps) at nice 19 and samples the trainer's VmRSS every second,
# with the step it had reached (metrics.csv). Prints the RSS after warm-up (the first sample past the
# first evaluation and checkpoint, when every graph and buffer exists) against the last sample while
# it still trained (before the final evaluation and the teardown), the range in between and the slope
# of a least-squares line through those samples (kB per 1,000 steps).
#
#   bash bench/rss_run.sh [STEPS] [EVERY]     (VIT_TRAIN=path/to/vit-train, OUT=folder; default build/, a temp folder)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-10000}"
EVERY="${2:-2500}"
BIN="${VIT_TRAIN:-build/tools/vit-train}"
OUT="${OUT:-$(mktemp -d /tmp/vit-rss-XXXXXX)}"
[ -x "$BIN" ] || { echo "rss_run.sh: $BIN not built (bash scripts/setup.sh)" >&2; exit 2; }
mkdir -p "$OUT"
SAMPLES="$OUT/rss.csv"
echo "seconds,step,rss_kb" > "$SAMPLES"
nice -n 19 "$BIN" --config configs/fashion_mnist.ini --out "$OUT/run" \
    --set model.patch_size=7 --set model.embed_dim=32 --set model.depth=2 --set model.num_heads=2 \
    --set train.threads=1 --set train.replicas=1 --set train.max_steps="$STEPS" \
    --set train.eval_every_steps="$EVERY" --set checkpoint.every_steps="$EVERY" \
    --set train.log_every_steps=100 --set schedule.warmup_steps=$(( STEPS / 10 )) > "$OUT/train.log" 2>&1 &
PID=$!
T0=$(date +%s)
while kill -0 "$PID" 2>/dev/null; do
    RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
    STEP=$(tail -n 1 "$OUT/run/metrics.csv" 2>/dev/null | cut -d, -f1 || true)
    case "$STEP" in ''|*[!0-9]*) STEP=0 ;; esac
    [ -n "$RSS" ] && echo "$(( $(date +%s) - T0 )),$STEP,$RSS" >> "$SAMPLES"
    sleep 1
done
wait "$PID" && RC=0 || RC=$?
echo "vit-train exit $RC after $(( $(date +%s) - T0 )) s; samples in $SAMPLES; log $OUT/train.log"
tail -n 3 "$OUT/train.log"
awk -F, -v warm="$EVERY" -v last="$STEPS" 'NR > 1 && $2 > warm && $2 < last {
        if (!n) { s0 = $1; st0 = $2; r0 = $3; lo = hi = $3 }
        n++; x = $2 / 1000; sx += x; sy += $3; sxx += x * x; sxy += x * $3
        if ($3 < lo) lo = $3; if ($3 > hi) hi = $3; s1 = $1; st1 = $2; r1 = $3 }
    END {
        if (n < 2) { print "too few samples after warm-up (step " warm ")"; exit 1 }
        d = n * sxx - sx * sx; slope = d > 0 ? (n * sxy - sx * sy) / d : 0
        printf "after warm-up (%d s, step %d): %d kB; at the end of training (%d s, step %d): %d kB; change %+d kB\n", s0, st0, r0, s1, st1, r1, r1 - r0
        printf "%d samples from step %d to %d: min %d kB, max %d kB; least-squares slope %+.1f kB per 1,000 steps\n", n, warm, last, lo, hi, slope
    }' "$SAMPLES"
exit "$RC"

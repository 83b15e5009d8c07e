#!/usr/bin/env bash
# Same run, two binaries: is a change bitwise neutral for training?
#   bash bench/compare_runs.sh OLD_VIT_TRAIN NEW_VIT_TRAIN [--set section.key=value ...]
# Trains 2,000 steps of configs/fashion_mnist.ini (an evaluation at step 1000) with each binary into a
# temporary folder, then compares metrics.csv without its img/s column and the final checkpoint's
# /model and /optimizer datasets (h5diff each; attributes are not compared). Exit status 0 only when
# both are identical.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD_VIT_TRAIN NEW_VIT_TRAIN [--set ...]" >&2; exit 2; }
OLD=$1; NEW=$2; shift 2
CFG="$(cd "$(dirname "$0")/.." && pwd)/configs/fashion_mnist.ini"
D=$(mktemp -d "${TMPDIR:-/tmp}/compare_runs.XXXX")
for w in old new; do
    BIN=$OLD; [ $w = new ] && BIN=$NEW
    "$BIN" --config "$CFG" --out "$D/$w" --set train.max_steps=2000 --set train.eval_every_steps=1000 "$@" \
        > "$D/$w.log" 2>&1 || { echo "the $w run failed: $D/$w.log"; exit 1; }
done
col=$(head -1 "$D/old/metrics.csv" | tr ',' '\n' | grep -n '^img_per_s$' | cut -d: -f1)
cut -d, -f"1-$((col - 1)),$((col + 1))-" "$D/old/metrics.csv" > "$D/old.csv"
cut -d, -f"1-$((col - 1)),$((col + 1))-" "$D/new/metrics.csv" > "$D/new.csv"
rc=0
if cmp -s "$D/old.csv" "$D/new.csv"; then echo "metrics.csv identical apart from img/s"
else echo "metrics.csv DIFFER:"; diff "$D/old.csv" "$D/new.csv" | head; rc=1; fi
co=$(ls "$D"/old/ckpt-*2000.h5) cn=$(ls "$D"/new/ckpt-*2000.h5)
# every dataset of /model and /optimizer, value by value: attributes a newer format adds (a new
# [model] key written as 0) do not make two equal runs differ
sets() { h5ls -r "$1" | awk '$2 == "Dataset" && ($1 ~ "^/model/" || $1 ~ "^/optimizer/") {print $1}' | sort; }
same=1
if [ "$(sets "$co")" != "$(sets "$cn")" ]; then
    echo "checkpoint datasets differ:"; diff <(sets "$co") <(sets "$cn") | head; same=0
else
    for d in $(sets "$co"); do
        h5diff -q "$co" "$cn" "$d" "$d" >/dev/null || { echo "dataset $d differs"; same=0; }
    done
fi
if [ $same = 1 ]; then echo "checkpoint /model and /optimizer datasets identical ($(sets "$co" | wc -l) of them)"
else echo "checkpoint DIFFERS"; rc=1; fi
echo "runs in $D"
exit $rc

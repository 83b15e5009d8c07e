#!/usr/bin/env bash
# Set up, build and train the default config (configs/fashion_mnist.ini) on Fashion-MNIST.
# Extra arguments go to vit-train; without any, a run already in runs/fashion_mnist is continued
# (--resume auto: a finished one is evaluated again), since a new run never writes over an old one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ $# -eq 0 ] && set -- --resume auto
exec build/tools/vit-train --config configs/fashion_mnist.ini "$@"

#!/usr/bin/env bash
# Set up, build and train the default config (configs/fashion_mnist.ini) on Fashion-MNIST.
# Extra arguments go to vit-train (e.g. --resume auto).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec build/tools/vit-train --config configs/fashion_mnist.ini "$@"

#!/usr/bin/env bash
# Set up, build and train the default config (configs/fashion_mnist.ini) on Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x build/tools/vit-train ]; then
    exec build/tools/vit-train --config configs/fashion_mnist.ini "$@"
fi
echo "vit-train is not built yet (coming); checking the model against timm instead:"
GOLDENS="${VIT_GOLDENS:-$(cd .. && pwd)/shared/goldens}"
exec build/tools/vit-golden "$GOLDENS/vit_reference.h5"

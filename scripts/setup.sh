#!/usr/bin/env bash
# Install the Debian packages vit needs (idempotent) and configure + build into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="meson ninja-build pkg-config gcc libopenblas-dev libopenblas-openmp-dev libhdf5-dev hdf5-tools zlib1g-dev check libzip-dev libjpeg62-turbo-dev libpng-dev libcairo2-dev dataset-fashion-mnist openmpi-bin libopenmpi-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
GOLDENS="${VIT_GOLDENS:-$(cd .. && pwd)/shared/goldens}"
# OpenBLAS built on OpenMP shares the compute threads with our own kernels (the pthread build's
# spinning workers fight them for the 2 cores: measured 267 vs 382 images/s on the default model)
OMP_PC="/usr/lib/$(gcc -print-multiarch)/openblas-openmp/pkgconfig"
[ -d "$OMP_PC" ] || OMP_PC=""
if [ ! -f build/build.ninja ]; then
    rm -rf build
    meson setup build --buildtype=release -Dgoldens="$GOLDENS" -Dpkg_config_path="$OMP_PC"
else
    meson configure build -Dgoldens="$GOLDENS" -Dpkg_config_path="$OMP_PC" >/dev/null
fi
ninja -C build

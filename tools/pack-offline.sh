#!/usr/bin/env bash
# Packs what the benchmark tools need to run on an offline x86-64 Linux machine that has a GPU
# driver but no Node, no npm and no internet (a lent GPU node, an air-gapped cluster):
#
#   .offline/bench.js, profile.js, gradcheck.js, bench/compare-torch.js
#       tools/*.ts bundled by esbuild (our engine and tfjs inside; `webgpu` and onnxruntime stay out)
#   .offline/node_modules/webgpu   the `webgpu` package with only its linux-x64 dawn.node
#   .offline/node.xz               this machine's Node binary, compressed (unpacked by bench-gpu.sh)
#   .offline/debs/*.deb            the Vulkan loader (libvulkan1) and glvnd, for hosts without them
#
# The bundles find shaders/ by walking up from .offline/, so keep .offline/ in the repository root.
# Then, on the GPU machine, in the repository root: OFFLINE=1 bash tools/bench-gpu.sh
#
#   bash tools/pack-offline.sh            # about 35 MiB
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.offline
[ -x node_modules/.bin/esbuild ] || { echo "pack-offline: run npm ci first (needs esbuild from node_modules)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "pack-offline: the packed Node and dawn.node are x86-64 only; run this on an x86-64 machine" >&2; exit 1; }

rm -rf "$DEST/bench" "$DEST"/*.js "$DEST/node_modules"
mkdir -p "$DEST/node_modules/webgpu/dist/linux-x64" "$DEST/debs"
echo '{ "type": "module", "private": true }' > "$DEST/package.json"

echo "pack-offline: bundling tools (esbuild)"
node_modules/.bin/esbuild tools/bench.ts tools/profile.ts tools/gradcheck.ts tools/bench/compare-torch.ts \
  --bundle --platform=node --format=esm --target=node20 --outdir="$DEST" --log-level=warning \
  --external:webgpu --external:onnxruntime-node \
  "--banner:js=import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"

echo "pack-offline: webgpu package (linux-x64 only)"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/LICENSE.md "$DEST/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$DEST/node_modules/webgpu/dist/linux-x64/"
# tfjs is inside bench.js; its package.json files only tell the report which version that is.
for pkg in @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu; do
  mkdir -p "$DEST/node_modules/$pkg" && cp "node_modules/$pkg/package.json" "$DEST/node_modules/$pkg/"
done

NODE_BIN=$(command -v node)
if [ ! -f "$DEST/node.xz" ] || [ "$NODE_BIN" -nt "$DEST/node.xz" ]; then
  echo "pack-offline: compressing $NODE_BIN ($(node --version))"
  xz -T0 -6 -c "$NODE_BIN" > "$DEST/node.xz.tmp" && mv "$DEST/node.xz.tmp" "$DEST/node.xz"
fi

# NVIDIA's Vulkan ICD (libGLX_nvidia) also needs glvnd's dispatch libraries.
if command -v apt-get >/dev/null && [ -z "$(ls "$DEST"/debs/libvulkan1_*.deb 2>/dev/null)" ]; then
  echo "pack-offline: downloading the Vulkan loader and glvnd (Debian packages)"
  (cd "$DEST/debs" && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libopengl0 libgles2 2>/dev/null) ||
    echo "pack-offline: warning: could not download the Vulkan loader packages" >&2
fi
du -sh "$DEST"
